//! Agent replies: outbox in the same transaction, client id dedupe, first reply time, paging.

use crate::harness::*;
use futures::future::join_all;
use std::collections::HashSet;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;

async fn check_reply_with_outbox(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    store.try_assign(a.id, conv.id, ann.id, T0 + 1).await.unwrap().expect("assigned");

    let out = store.append_reply(agent_reply(a.id, conv.id, ann.id, Some("cm-1"), true, T0 + 10)).await.unwrap();
    assert!(out.created);
    let m = &out.message;
    assert_eq!(
        (m.direction, m.sender_kind, m.sender_user_id),
        (MessageDirection::Outbound, SenderKind::Agent, Some(ann.id))
    );
    assert_eq!(m.status, DeliveryStatus::Pending, "waits for the outbox");
    assert_eq!(m.client_message_id.as_deref(), Some("cm-1"));
    assert_eq!(m.platform_message_id, None);
    let entry = out.outbox.expect("outbox entry");
    assert_eq!((entry.tenant_id, entry.inbox_id, entry.message_id), (a.id, web.id, Some(m.id)));
    assert_eq!(
        (entry.kind.as_str(), entry.status, entry.attempts, entry.next_attempt_at),
        ("api_webhook", OutboxStatus::Pending, 0, T0 + 10)
    );
    assert_eq!(entry.payload, serde_json::json!({"n": 1}));
    assert_eq!(store.list_outbox(a.id, None, 10).await.unwrap().len(), 1);

    let conv_now = store.get_conversation(a.id, conv.id).await.unwrap();
    assert_eq!(conv_now.first_agent_reply_at, Some(T0 + 10));
    store.append_reply(agent_reply(a.id, conv.id, ann.id, None, false, T0 + 20)).await.unwrap();
    assert_eq!(
        store.get_conversation(a.id, conv.id).await.unwrap().first_agent_reply_at,
        Some(T0 + 10),
        "first reply only"
    );

    // A bot reply does not count as the first agent reply; without outbox it is simply sent.
    let conv2 = conversation(store, a.id, web.id, "c2", T0).await;
    let bot = store
        .append_reply(NewReply {
            sender_kind: SenderKind::Bot,
            sender_user_id: None,
            ..agent_reply(a.id, conv2.id, ann.id, None, false, T0 + 30)
        })
        .await
        .unwrap();
    assert!(bot.outbox.is_none());
    assert_eq!(bot.message.status, DeliveryStatus::Sent);
    assert_eq!(store.get_conversation(a.id, conv2.id).await.unwrap().first_agent_reply_at, None);
}

async fn check_client_message_id_dedupe(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    let first = store.append_reply(agent_reply(a.id, conv.id, ann.id, Some("cm-1"), true, T0 + 1)).await.unwrap();
    let again = store.append_reply(agent_reply(a.id, conv.id, ann.id, Some("cm-1"), true, T0 + 2)).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.message.id, first.message.id);
    assert_eq!(again.outbox.map(|o| o.id), first.outbox.map(|o| o.id));
    assert_eq!(store.list_outbox(a.id, None, 10).await.unwrap().len(), 1, "one outbox entry");

    // Eight resends racing: one message, one outbox entry.
    let outs = join_all(
        (0..8).map(|i| store.append_reply(agent_reply(a.id, conv.id, ann.id, Some("cm-race"), true, T0 + 10 + i))),
    )
    .await;
    let outs: Vec<_> = outs.into_iter().map(|o| o.expect("reply")).collect();
    assert_eq!(outs.iter().filter(|o| o.created).count(), 1);
    assert_eq!(outs.iter().map(|o| o.message.id).collect::<HashSet<_>>().len(), 1);
    assert_eq!(store.list_outbox(a.id, None, 10).await.unwrap().len(), 2);

    // The same client id in another conversation is another message.
    let conv2 = conversation(store, a.id, web.id, "c2", T0).await;
    let other = store.append_reply(agent_reply(a.id, conv2.id, ann.id, Some("cm-1"), false, T0 + 3)).await.unwrap();
    assert!(other.created);
    assert_ne!(other.message.id, first.message.id);
    let ids: Vec<_> = store.list_messages(a.id, conv.id, None, 100).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 3, "inbound + cm-1 + cm-race");
}

async fn check_reply_needs_open_conversation(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    store.resolve(a.id, conv.id, Some(ann.id), CloseReason::Resolved, T0 + 1).await.unwrap();
    assert_invalid_state(
        store.append_reply(agent_reply(a.id, conv.id, ann.id, Some("x"), true, T0 + 2)).await,
        "closed conversation",
    );
    assert!(store.list_outbox(a.id, None, 10).await.unwrap().is_empty(), "nothing committed");
    assert_not_found(
        store.append_reply(agent_reply(a.id, ConversationId(999_999), ann.id, None, false, T0)).await,
        "unknown conversation",
    );
}

async fn check_list_messages_after(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let mut ids = vec![];
    for i in 0..5 {
        let out = store.ingest_inbound(inbound(a.id, web.id, "c1", &format!("pm-{i}"), T0 + i)).await.unwrap();
        ids.push(out.message.id);
    }
    let conv = store.get_message(a.id, ids[0]).await.unwrap().conversation_id;
    let all: Vec<_> = store.list_messages(a.id, conv, None, 100).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(all, ids, "oldest first");
    let page: Vec<_> = store.list_messages(a.id, conv, Some(ids[1]), 2).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(page, vec![ids[2], ids[3]]);
    assert!(store.list_messages(a.id, conv, Some(ids[4]), 10).await.unwrap().is_empty());
}

async fn check_message_status_and_biz_data(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    let reply = store.append_reply(agent_reply(a.id, conv.id, ann.id, None, false, T0 + 1)).await.unwrap();
    store.set_message_status(a.id, reply.message.id, DeliveryStatus::Read, T0 + 2).await.unwrap();
    assert_eq!(store.get_message(a.id, reply.message.id).await.unwrap().status, DeliveryStatus::Read);
    assert_not_found(
        store.set_message_status(a.id, MessageId(999_999), DeliveryStatus::Read, T0).await,
        "unknown message",
    );

    let data = serde_json::json!({"order": "A-17", "tags": ["vip"], "nested": {"n": 1.5}});
    let updated = store.set_biz_data(a.id, conv.id, data.clone(), T0 + 3).await.unwrap();
    assert_eq!(updated.biz_data, data);
    assert_eq!(updated.updated_at, T0 + 3);
    assert_eq!(store.get_conversation(a.id, conv.id).await.unwrap().biz_data, data);
}

conformance!(
    check_reply_with_outbox,
    check_client_message_id_dedupe,
    check_reply_needs_open_conversation,
    check_list_messages_after,
    check_message_status_and_biz_data,
);
