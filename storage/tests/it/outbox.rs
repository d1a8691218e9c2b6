//! The outbox: leases, expiry, completion, failure with retry and death, revival.

use crate::harness::*;
use futures::future::join_all;
use std::collections::HashSet;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;

/// A tenant with one conversation and `n` agent replies, each with an outbox entry at T0.
async fn with_entries(store: &dyn Store, n: usize) -> (TenantId, Vec<ReplyOutcome>) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    let mut out = vec![];
    for i in 0..n {
        out.push(
            store.append_reply(agent_reply(a.id, conv.id, ann.id, Some(&format!("cm-{i}")), true, T0)).await.unwrap(),
        );
    }
    (a.id, out)
}

async fn check_claim_and_lease_expiry(store: &dyn Store) {
    let (_, replies) = with_entries(store, 1).await;
    let entry = replies[0].outbox.clone().unwrap();
    assert!(store.claim_outbox("w1", T0 - 1, T0 + 1000, 10).await.unwrap().is_empty(), "not due yet");
    let got = store.claim_outbox("w1", T0, T0 + 1000, 10).await.unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![entry.id]);
    assert_eq!(got[0].attempts, 1);
    assert!(store.claim_outbox("w2", T0 + 500, T0 + 1500, 10).await.unwrap().is_empty(), "leased");
    // w1 crashed: once its lease has passed, w2 gets the entry.
    let again = store.claim_outbox("w2", T0 + 1001, T0 + 2000, 10).await.unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), vec![entry.id]);
    assert_eq!(again[0].attempts, 2);
    // w1 comes back to its (long lapsed) batch: the renewal fails, so it must not deliver.
    assert!(!store.renew_outbox_lease(entry.id, "w1", T0 + 1100, T0 + 3000).await.unwrap(), "taken over");
    // w2 holds it: renewing keeps others out past the first lease.
    assert!(store.renew_outbox_lease(entry.id, "w2", T0 + 1900, T0 + 4000).await.unwrap());
    assert!(store.claim_outbox("w3", T0 + 2500, T0 + 5000, 10).await.unwrap().is_empty(), "renewed");
    // A lease that ran out cannot be renewed, even by its owner (someone may be claiming it).
    assert!(!store.renew_outbox_lease(entry.id, "w2", T0 + 4001, T0 + 6000).await.unwrap(), "ran out");
    assert!(!store.renew_outbox_lease(OutboxId(987_654), "w2", T0, T0 + 1).await.unwrap(), "unknown entry");
    store.complete_outbox(entry.id, T0 + 4002).await.unwrap();
    assert!(!store.renew_outbox_lease(entry.id, "w2", T0 + 4002, T0 + 9000).await.unwrap(), "delivered");
}

async fn check_complete(store: &dyn Store) {
    let (tenant, replies) = with_entries(store, 2).await;
    let claimed = store.claim_outbox("w1", T0, T0 + 1000, 1).await.unwrap();
    assert_eq!(claimed.len(), 1, "limit respected");
    store.complete_outbox(claimed[0].id, T0 + 10).await.unwrap();
    let delivered = store.list_outbox(tenant, Some(OutboxStatus::Delivered), 10).await.unwrap();
    assert_eq!(delivered.iter().map(|e| e.id).collect::<Vec<_>>(), vec![claimed[0].id]);
    assert_eq!(delivered[0].updated_at, T0 + 10);
    let message = claimed[0].message_id.unwrap();
    assert_eq!(store.get_message(tenant, message).await.unwrap().status, DeliveryStatus::Sent);
    // Never handed out again, even after its lease would have passed.
    let later = store.claim_outbox("w2", T0 + 5000, T0 + 6000, 10).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_ne!(later[0].id, claimed[0].id);
    assert_eq!(store.list_outbox(tenant, Some(OutboxStatus::Pending), 10).await.unwrap().len(), 1);
    assert_eq!(store.list_outbox(tenant, None, 10).await.unwrap().len(), replies.len());
    assert_not_found(store.complete_outbox(OutboxId(999_999), T0).await, "unknown entry");
}

async fn check_fail_retry_and_dead(store: &dyn Store) {
    let (tenant, replies) = with_entries(store, 1).await;
    let entry = replies[0].outbox.clone().unwrap();
    let message = replies[0].message.id;
    store.claim_outbox("w1", T0, T0 + 1000, 10).await.unwrap();
    store.fail_outbox(entry.id, "HTTP 502", Some(T0 + 5000), T0 + 1).await.unwrap();
    let listed = store.list_outbox(tenant, None, 10).await.unwrap();
    assert_eq!((listed[0].status, listed[0].next_attempt_at), (OutboxStatus::Pending, T0 + 5000));
    assert_eq!(listed[0].last_error.as_deref(), Some("HTTP 502"));
    assert!(store.claim_outbox("w1", T0 + 4999, T0 + 9000, 10).await.unwrap().is_empty(), "backing off");
    // The failure cleared the lease: claimable as soon as it is due, before the old lease ends.
    let got = store.claim_outbox("w2", T0 + 5000, T0 + 9000, 10).await.unwrap();
    assert_eq!((got.len(), got[0].attempts), (1, 2));

    store.fail_outbox(entry.id, "HTTP 410", None, T0 + 5001).await.unwrap();
    let dead = store.list_outbox(tenant, Some(OutboxStatus::Dead), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 410"));
    assert_eq!(store.get_message(tenant, message).await.unwrap().status, DeliveryStatus::Failed);
    assert!(store.claim_outbox("w3", T0 + 99_999, T0 + 200_000, 10).await.unwrap().is_empty(), "dead entries stay put");

    let revived = store.retry_outbox(tenant, entry.id, T0 + 6000).await.unwrap();
    assert_eq!((revived.status, revived.attempts, revived.next_attempt_at), (OutboxStatus::Pending, 0, T0 + 6000));
    assert_eq!(store.get_message(tenant, message).await.unwrap().status, DeliveryStatus::Pending);
    assert_invalid_state(store.retry_outbox(tenant, entry.id, T0 + 6001).await, "not dead");
    let got = store.claim_outbox("w3", T0 + 6000, T0 + 7000, 10).await.unwrap();
    assert_eq!((got.len(), got[0].attempts), (1, 1));
    store.complete_outbox(entry.id, T0 + 6500).await.unwrap();
    assert_eq!(store.get_message(tenant, message).await.unwrap().status, DeliveryStatus::Sent);
}

/// Four workers claiming twelve due entries at once: each entry goes to exactly one worker.
async fn check_concurrent_claims(store: &dyn Store) {
    let (_, replies) = with_entries(store, 12).await;
    let claims = join_all((0..4).map(|w| {
        let owner = format!("w{w}");
        async move { store.claim_outbox(&owner, T0, T0 + 1000, 12).await.unwrap() }
    }))
    .await;
    let all: Vec<_> = claims.iter().flatten().map(|e| e.id).collect();
    let distinct: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "an entry was leased twice: {all:?}");
    assert_eq!(distinct.len(), replies.len());
}

conformance!(check_claim_and_lease_expiry, check_complete, check_fail_retry_and_dead, check_concurrent_claims);
