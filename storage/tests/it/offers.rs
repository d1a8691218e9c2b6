//! Offers: an offer holds the agent's slot, accept keeps it, reject / expiry / withdrawal give it
//! back and requeue the conversation in its old place; races between nodes settle once.

use crate::harness::*;
use futures::future::join_all;
use switchboard_core::domain::*;
use switchboard_core::store::Store;

async fn check_offer_accept_and_reject(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 1).await;
    let bob = agent(store, a.id, "bob@example.com", 2).await;
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    let c2 = conversation(store, a.id, web.id, "c2", T0 + 1).await;

    let offered = store.try_offer(a.id, c1.id, ann.id, T0 + 10, T0 + 30_010).await.unwrap().expect("offered");
    assert_eq!((offered.state, offered.assignee_id, offered.offer_expires_at), (ConversationState::Offered, Some(ann.id), Some(T0 + 30_010)));
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 1, "an offer holds a slot");
    assert!(store.try_offer(a.id, c2.id, ann.id, T0 + 11, T0 + 100).await.unwrap().is_none(), "full: no second offer");
    assert!(store.try_assign(a.id, c2.id, ann.id, T0 + 11).await.unwrap().is_none(), "full: no assignment either");
    assert!(store.try_offer(a.id, c1.id, bob.id, T0 + 11, T0 + 100).await.unwrap().is_none(), "already offered");
    assert_eq!(store.get_user(a.id, bob.id).await.unwrap().active_load, 0, "bob's slot was given back");

    // Only the offered agent may accept or reject.
    assert_invalid_state(store.accept_offer(a.id, c1.id, bob.id, T0 + 12).await, "accept by another agent");
    assert_invalid_state(store.decline_offer(a.id, c1.id, bob.id, "rejected", T0 + 12).await, "reject by another agent");

    // Reject: back in the queue with its original place, the slot free, ann remembered.
    let back = store.decline_offer(a.id, c1.id, ann.id, "rejected", T0 + 20).await.unwrap();
    assert_eq!((back.state, back.assignee_id, back.offer_expires_at), (ConversationState::Queued, None, None));
    assert_eq!(back.queued_at, c1.queued_at, "keeps its place");
    assert_eq!(back.declined_by, vec![ann.id]);
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 0);
    assert_invalid_state(store.decline_offer(a.id, c1.id, ann.id, "rejected", T0 + 21).await, "second reject");

    // Bob accepts: assigned, load unchanged by the accept.
    store.try_offer(a.id, c1.id, bob.id, T0 + 30, T0 + 1_000).await.unwrap().expect("offered to bob");
    let taken = store.accept_offer(a.id, c1.id, bob.id, T0 + 40).await.unwrap();
    assert_eq!((taken.state, taken.assignee_id, taken.assigned_at, taken.offer_expires_at), (ConversationState::Assigned, Some(bob.id), Some(T0 + 40), None));
    assert_eq!(store.get_user(a.id, bob.id).await.unwrap().active_load, 1);
    assert_invalid_state(store.accept_offer(a.id, c1.id, bob.id, T0 + 41).await, "accepting twice");
    let kinds: Vec<String> = store.list_conversation_events(a.id, c1.id).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["created", "offered", "offer_rejected", "offered", "offer_accepted"]);
}

async fn check_expiry_and_slot_release(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 3).await;
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    let c2 = conversation(store, a.id, web.id, "c2", T0).await;
    let c3 = conversation(store, a.id, web.id, "c3", T0).await;
    store.try_offer(a.id, c1.id, ann.id, T0, T0 + 100).await.unwrap().expect("c1");
    store.try_offer(a.id, c2.id, ann.id, T0, T0 + 200).await.unwrap().expect("c2");
    store.try_offer(a.id, c3.id, ann.id, T0, T0 + 300).await.unwrap().expect("c3");
    assert_eq!(store.offers_for_agent(a.id, ann.id).await.unwrap().len(), 3);

    let due: Vec<_> = store.expired_offers(T0 + 150, 10).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(due, vec![c1.id]);
    let expired = store.decline_offer(a.id, c1.id, ann.id, "expired", T0 + 150).await.unwrap();
    assert_eq!(expired.state, ConversationState::Queued);
    // A late accept after the expiry fails and changes nothing.
    assert_invalid_state(store.accept_offer(a.id, c1.id, ann.id, T0 + 151).await, "late accept");
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 2);

    // Requeue (agent gone) and resolve also give an offer's slot back.
    let requeued = store.requeue(a.id, c2.id, T0 + 160).await.unwrap();
    assert_eq!((requeued.state, requeued.offer_expires_at), (ConversationState::Queued, None));
    store.resolve(a.id, c3.id, None, CloseReason::Spam, T0 + 170).await.unwrap();
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 0);
    assert!(store.expired_offers(T0 + 10_000, 10).await.unwrap().is_empty());
    let events = store.list_conversation_events(a.id, c1.id).await.unwrap();
    assert_eq!(events.last().map(|e| e.kind.as_str()), Some("offer_expired"));
}

async fn check_concurrent_offers_and_settlements(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let c = conversation(store, a.id, web.id, "c1", T0).await;
    let mut agents = Vec::new();
    for i in 0..8 {
        agents.push(agent(store, a.id, &format!("a{i}@example.com"), 1).await);
    }
    // Eight nodes offer the same conversation to eight agents at once: one offer stands.
    let results = join_all(agents.iter().map(|u| store.try_offer(a.id, c.id, u.id, T0, T0 + 1000))).await;
    let winners: Vec<_> = results.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(winners.len(), 1);
    let holder = winners[0].assignee_id.expect("holder");
    let mut loads = 0;
    for u in &agents {
        loads += store.get_user(a.id, u.id).await.unwrap().active_load;
    }
    assert_eq!(loads, 1, "exactly one slot taken");

    // Accept and expiry race: exactly one of them settles the offer.
    let (accept, expire) = futures::join!(
        store.accept_offer(a.id, c.id, holder, T0 + 999),
        store.decline_offer(a.id, c.id, holder, "expired", T0 + 1001)
    );
    assert!(accept.is_ok() != expire.is_ok(), "accept {accept:?} / expire {expire:?}");
    let after = store.get_conversation(a.id, c.id).await.unwrap();
    let load = store.get_user(a.id, holder).await.unwrap().active_load;
    match after.state {
        ConversationState::Assigned => assert_eq!(load, 1),
        ConversationState::Queued => assert_eq!(load, 0),
        other => panic!("unexpected state {other}"),
    }
}

/// A conversation an agent already answered, requeued (they left) and offered to someone else,
/// can still be rejected; and an answered assignment is never taken back as "unanswered".
async fn check_answered_conversations_settle_too(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let bob = agent(store, a.id, "bob@example.com", 2).await;
    let c = conversation(store, a.id, web.id, "c1", T0).await;
    store.try_assign(a.id, c.id, ann.id, T0 + 1).await.unwrap().expect("assigned");
    store.append_reply(agent_reply(a.id, c.id, ann.id, Some("r1"), false, T0 + 2)).await.unwrap();
    assert_invalid_state(store.requeue_unanswered(a.id, c.id, ann.id, T0 + 3).await, "answered");
    store.requeue(a.id, c.id, T0 + 4).await.unwrap();
    store.try_offer(a.id, c.id, bob.id, T0 + 5, T0 + 1000).await.unwrap().expect("offered");
    let back = store.decline_offer(a.id, c.id, bob.id, "rejected", T0 + 6).await.unwrap();
    assert_eq!((back.state, back.declined_by), (ConversationState::Queued, vec![bob.id]));
    assert_eq!(store.get_user(a.id, bob.id).await.unwrap().active_load, 0);
    // Unanswered: taken back, in its place, slot freed.
    let c2 = conversation(store, a.id, web.id, "c2", T0 + 10).await;
    store.try_assign(a.id, c2.id, bob.id, T0 + 11).await.unwrap().expect("assigned");
    let back = store.requeue_unanswered(a.id, c2.id, bob.id, T0 + 20).await.unwrap();
    assert_eq!((back.state, back.queued_at, back.declined_by), (ConversationState::Queued, c2.queued_at, vec![bob.id]));
    assert_eq!(store.get_user(a.id, bob.id).await.unwrap().active_load, 0);
}



/// Caps per channel kind hold like the total: a WhatsApp cap of 1 refuses a second WhatsApp
/// chat (assignment or offer) while other kinds still fit, and a resolve frees it.
async fn check_channel_caps(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let api = inbox(store, a.id, None).await;
    let wa = store
        .create_inbox(
            NewInbox {
                tenant_id: a.id,
                name: "WhatsApp".into(),
                kind: ChannelKind::Whatsapp,
                settings: serde_json::json!({}),
                secrets: serde_json::json!({}),
                mask_identifiers: false,
                team_id: None,
                token_hash: None,
            },
            T0,
        )
        .await
        .unwrap();
    let ann = agent(store, a.id, "ann@example.com", 3).await;
    let w1 = conversation(store, a.id, wa.id, "w1", T0).await;
    let w2 = conversation(store, a.id, wa.id, "w2", T0).await;
    let w3 = conversation(store, a.id, wa.id, "w3", T0).await;
    let c1 = conversation(store, a.id, api.id, "c1", T0).await;
    // Ann already holds one WhatsApp chat when the cap is set: it counts.
    store.try_assign(a.id, w1.id, ann.id, T0 + 1).await.unwrap().expect("w1");
    store.set_channel_capacity(a.id, ann.id, &[(ChannelKind::Whatsapp, 1)], T0 + 2).await.unwrap();
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().channel_capacity.get("whatsapp"), Some(&1));
    assert!(store.try_assign(a.id, w2.id, ann.id, T0 + 3).await.unwrap().is_none(), "whatsapp full");
    assert!(store.try_offer(a.id, w2.id, ann.id, T0 + 3, T0 + 100).await.unwrap().is_none(), "no offer either");
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 1, "the refused attempts gave the slot back");
    store.try_assign(a.id, c1.id, ann.id, T0 + 4).await.unwrap().expect("another kind still fits");
    store.resolve(a.id, w1.id, Some(ann.id), CloseReason::Resolved, T0 + 5).await.unwrap();
    store.try_offer(a.id, w2.id, ann.id, T0 + 6, T0 + 100).await.unwrap().expect("room again");
    assert!(store.try_assign(a.id, w3.id, ann.id, T0 + 7).await.unwrap().is_none(), "the offer holds the whatsapp slot");
    store.decline_offer(a.id, w2.id, ann.id, "rejected", T0 + 8).await.unwrap();
    store.try_assign(a.id, w3.id, ann.id, T0 + 9).await.unwrap().expect("the reject freed it");
    // Concurrent attempts on the last WhatsApp slot: one wins.
    store.resolve(a.id, w3.id, Some(ann.id), CloseReason::Resolved, T0 + 10).await.unwrap();
    let wins = futures::future::join_all([w2.id].iter().chain([w2.id, w2.id].iter()).map(|id| store.try_assign(a.id, *id, ann.id, T0 + 11)))
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Some(_))))
        .count();
    assert_eq!(wins, 1);
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 2);
}

conformance!(
    check_offer_accept_and_reject,
    check_expiry_and_slot_release,
    check_concurrent_offers_and_settlements,
    check_answered_conversations_settle_too,
    check_channel_caps
);
