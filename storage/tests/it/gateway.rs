//! What the gateway's delivery side stores: reply tokens taken at most once (newest wins,
//! expiry honoured, tenant-scoped), the inbox that delivered a message, deferring an outbox
//! entry without spending an attempt, the per-conversation order check, and job entries queued
//! once per payload.

use crate::harness::*;
use futures::future::join_all;
use serde_json::json;
use switchboard_core::domain::*;
use switchboard_core::store::Store;

async fn check_reply_tokens_are_taken_once(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let web = inbox(store, a.id, None).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    let message = store.list_messages(a.id, conv.id, None, 10).await.unwrap()[0].id;
    assert_eq!(store.take_reply_token(a.id, conv.id, T0).await.unwrap(), None, "none yet");

    store.set_reply_token(a.id, conv.id, web.id, message, "old", T0 + 50_000, T0).await.unwrap();
    store.set_reply_token(a.id, conv.id, web.id, message, "new", T0 + 60_000, T0 + 10).await.unwrap();
    // A token expiring sooner never replaces a later one (two nodes committing out of order).
    store.set_reply_token(a.id, conv.id, web.id, message, "stale", T0 + 55_000, T0 + 20).await.unwrap();
    assert_eq!(store.take_reply_token(b.id, conv.id, T0 + 30).await.unwrap(), None, "another tenant's conversation");
    assert_eq!(store.take_reply_token(a.id, conv.id, T0 + 60_000).await.unwrap(), None, "expired");

    // Eight concurrent replies: exactly one gets the token.
    let takes = join_all((0..8).map(|_| store.take_reply_token(a.id, conv.id, T0 + 40))).await;
    let got: Vec<String> = takes.into_iter().filter_map(|t| t.unwrap()).collect();
    assert_eq!(got, vec!["new".to_string()]);
    assert_eq!(store.take_reply_token(a.id, conv.id, T0 + 41).await.unwrap(), None, "used up");
}

async fn check_delivered_via_and_defer(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let backup = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    let first = store.append_reply(agent_reply(a.id, conv.id, ann.id, Some("r1"), true, T0)).await.unwrap();
    let second = store.append_reply(agent_reply(a.id, conv.id, ann.id, Some("r2"), true, T0)).await.unwrap();
    let (e1, e2) = (first.outbox.clone().unwrap(), second.outbox.clone().unwrap());

    // Order: the second waits while the first is pending; not the other way round.
    let kind = e1.kind.clone();
    assert_eq!(store.earlier_pending_delivery(a.id, web.id, conv.id, &kind, e2.id).await.unwrap(), Some(T0));
    assert_eq!(store.earlier_pending_delivery(a.id, web.id, conv.id, &kind, e1.id).await.unwrap(), None);

    // A deferral gives the claim's attempt back and reschedules.
    let claimed = store.claim_outbox("w1", T0, T0 + 1000, 1).await.unwrap();
    assert_eq!((claimed[0].id, claimed[0].attempts), (e1.id, 1));
    store.defer_outbox(e1.id, T0 + 700, T0 + 1).await.unwrap();
    let pending = store.list_outbox(a.id, Some(OutboxStatus::Pending), 10).await.unwrap();
    let after = pending.iter().find(|e| e.id == e1.id).unwrap();
    assert_eq!((after.attempts, after.next_attempt_at), (0, T0 + 700));
    assert_eq!(store.earlier_pending_delivery(a.id, web.id, conv.id, &kind, e2.id).await.unwrap(), Some(T0 + 700));
    // The lease is gone: claimable again once due, not before.
    let due = store.claim_outbox("w2", T0 + 699, T0 + 2000, 10).await.unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![e2.id]);
    let again = store.claim_outbox("w2", T0 + 700, T0 + 2000, 10).await.unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), vec![e1.id]);
    store.complete_outbox(e1.id, T0 + 701).await.unwrap();
    assert_eq!(store.earlier_pending_delivery(a.id, web.id, conv.id, &kind, e2.id).await.unwrap(), None, "delivered");
    assert_not_found(store.defer_outbox(e1.id, T0 + 900, T0 + 702).await, "a delivered entry is not deferred");

    assert!(store.get_message(a.id, first.message.id).await.unwrap().delivered_via_inbox_id.is_none());
    store.set_delivered_via(a.id, first.message.id, backup.id, T0 + 702).await.unwrap();
    assert_eq!(store.get_message(a.id, first.message.id).await.unwrap().delivered_via_inbox_id, Some(backup.id));
    let other = tenant(store, "other").await;
    assert_not_found(
        store.set_delivered_via(other.id, first.message.id, backup.id, T0).await,
        "another tenant's message",
    );
}

async fn check_jobs_are_queued_once_per_payload(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let payload = json!({"message_id": 7, "refs": [{"index": 0, "ref": "AgAD"}]});
    let (job, created) = store.enqueue_outbox_once(a.id, web.id, "media_fetch", &payload, T0).await.unwrap();
    assert!(created);
    assert_eq!(
        (job.kind.as_str(), job.message_id, job.attempts, job.status),
        ("media_fetch", None, 0, OutboxStatus::Pending)
    );
    assert_eq!(job.payload, payload);
    let (again, created) = store.enqueue_outbox_once(a.id, web.id, "media_fetch", &payload, T0 + 5).await.unwrap();
    assert!(!created, "a redelivered webhook finds the job");
    assert_eq!(again.id, job.id);
    let other = json!({"message_id": 8, "refs": [{"index": 0, "ref": "AgAD"}]});
    assert!(store.enqueue_outbox_once(a.id, web.id, "media_fetch", &other, T0).await.unwrap().1);
    // A job has no message: failing it for good marks nothing failed.
    let claimed = store.claim_outbox("w", T0, T0 + 100, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    store.fail_outbox(job.id, "gone", None, T0 + 1).await.unwrap();
    assert_eq!(store.list_outbox(a.id, Some(OutboxStatus::Dead), 10).await.unwrap().len(), 1);
}

conformance!(check_reply_tokens_are_taken_once, check_delivered_via_and_defer, check_jobs_are_queued_once_per_payload);
