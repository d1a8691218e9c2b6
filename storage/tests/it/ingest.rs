//! Inbound ingestion: contacts, conversations, and deduplication — also under concurrency.

use crate::harness::*;
use futures::future::join_all;
use std::collections::HashSet;
use switchboard_core::domain::*;
use switchboard_core::store::Store;

async fn check_first_message_creates_contact_and_conversation(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let team = store.create_team(a.id, "Support", T0).await.unwrap();
    let web = inbox(store, a.id, Some(team.id)).await;
    let mut msg = inbound(a.id, web.id, "+15550001", "pm-1", T0 + 1);
    msg.attachments = vec![Attachment {
        kind: "image".into(),
        url: Some("http://x/y.png".into()),
        name: None,
        mime: Some("image/png".into()),
        size: Some(42),
    }];
    let out = store.ingest_inbound(msg.clone()).await.unwrap();
    assert!(out.message_created && out.conversation_created);

    let conv = &out.conversation;
    assert_eq!((conv.tenant_id, conv.inbox_id), (a.id, web.id));
    assert_eq!(conv.state, ConversationState::Queued);
    assert_eq!(conv.team_id, Some(team.id), "joins the inbox's team queue");
    assert_eq!(conv.assignee_id, None);
    assert_eq!((conv.created_at, conv.queued_at), (T0 + 1, Some(T0 + 1)));
    assert!((1..=5).contains(&conv.priority));
    assert_eq!(conv.biz_data, serde_json::json!({}));

    let m = &out.message;
    assert_eq!((m.conversation_id, m.inbox_id, m.tenant_id), (conv.id, web.id, a.id));
    assert_eq!((m.direction, m.sender_kind, m.sender_user_id), (MessageDirection::Inbound, SenderKind::Contact, None));
    assert_eq!(m.text.as_deref(), Some("hello from +15550001 (pm-1)"));
    assert_eq!(m.attachments, msg.attachments);
    assert_eq!(m.platform_message_id.as_deref(), Some("pm-1"));
    assert_eq!(m.client_message_id, None);
    assert_eq!(m.created_at, T0 + 1);

    let contact = store.get_contact(a.id, conv.contact_id).await.unwrap();
    assert_eq!(contact.name.as_deref(), Some("Customer +15550001"));
    let ids = store.list_contact_identities(a.id, contact.id).await.unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!((ids[0].inbox_id, ids[0].external_id.as_str()), (web.id, "+15550001"));

    let events = store.list_conversation_events(a.id, conv.id).await.unwrap();
    assert_eq!(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), vec!["created"]);
    assert_eq!(store.get_message(a.id, m.id).await.unwrap().id, m.id);
    assert_eq!(store.get_conversation(a.id, conv.id).await.unwrap().id, conv.id);
}

async fn check_next_message_reuses_open_conversation(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let first = store.ingest_inbound(inbound(a.id, web.id, "c1", "pm-1", T0)).await.unwrap();
    let second = store.ingest_inbound(inbound(a.id, web.id, "c1", "pm-2", T0 + 5)).await.unwrap();
    assert!(second.message_created && !second.conversation_created);
    assert_eq!(second.conversation.id, first.conversation.id);
    assert_eq!(second.conversation.contact_id, first.conversation.contact_id);
    assert!(second.message.id > first.message.id);
    // Another customer gets their own conversation; the same customer on another inbox too.
    let other = store.ingest_inbound(inbound(a.id, web.id, "c2", "pm-3", T0 + 6)).await.unwrap();
    assert!(other.conversation_created);
    assert_ne!(other.conversation.id, first.conversation.id);
    let web2 = inbox(store, a.id, None).await;
    let elsewhere = store.ingest_inbound(inbound(a.id, web2.id, "c1", "pm-1", T0 + 7)).await.unwrap();
    assert!(elsewhere.conversation_created && elsewhere.message_created, "platform ids are per inbox");
}

async fn check_same_platform_id_twice_stores_one_message(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let first = store.ingest_inbound(inbound(a.id, web.id, "c1", "pm-1", T0)).await.unwrap();
    let mut again = inbound(a.id, web.id, "c1", "pm-1", T0 + 10);
    again.text = Some("redelivered".into());
    let second = store.ingest_inbound(again).await.unwrap();
    assert!(!second.message_created && !second.conversation_created);
    assert_eq!(second.message.id, first.message.id);
    assert_eq!(second.message.text, first.message.text, "the stored message is returned");
    assert_eq!(second.conversation.id, first.conversation.id);
    let messages = store.list_messages(a.id, first.conversation.id, None, 100).await.unwrap();
    assert_eq!(messages.len(), 1);
}

async fn check_resolved_conversation_is_not_reused(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let first = store.ingest_inbound(inbound(a.id, web.id, "c1", "pm-1", T0)).await.unwrap();
    store.resolve(a.id, first.conversation.id, None, CloseReason::Resolved, T0 + 1).await.unwrap();
    // A redelivery of the old message still finds the old message, opening nothing.
    let redelivered = store.ingest_inbound(inbound(a.id, web.id, "c1", "pm-1", T0 + 2)).await.unwrap();
    assert!(!redelivered.message_created && !redelivered.conversation_created);
    assert_eq!(redelivered.conversation.id, first.conversation.id);
    // A new message opens a new conversation for the same contact.
    let next = store.ingest_inbound(inbound(a.id, web.id, "c1", "pm-2", T0 + 3)).await.unwrap();
    assert!(next.conversation_created && next.message_created);
    assert_ne!(next.conversation.id, first.conversation.id);
    assert_eq!(next.conversation.contact_id, first.conversation.contact_id);
    assert_eq!(next.conversation.state, ConversationState::Queued);
}

async fn check_find_conversation_for_identity(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    assert!(store.find_conversation_for_identity(a.id, web.id, "c1").await.unwrap().is_none());
    let first = store.ingest_inbound(inbound(a.id, web.id, "c1", "pm-1", T0)).await.unwrap();
    let found = store.find_conversation_for_identity(a.id, web.id, "c1").await.unwrap().unwrap();
    assert_eq!(found.id, first.conversation.id);
    store.resolve(a.id, first.conversation.id, None, CloseReason::Resolved, T0 + 1).await.unwrap();
    let found = store.find_conversation_for_identity(a.id, web.id, "c1").await.unwrap().unwrap();
    assert_eq!(found.id, first.conversation.id, "the most recent one when none is open");
    let next = store.ingest_inbound(inbound(a.id, web.id, "c1", "pm-2", T0 + 2)).await.unwrap();
    let found = store.find_conversation_for_identity(a.id, web.id, "c1").await.unwrap().unwrap();
    assert_eq!(found.id, next.conversation.id);
}

/// Sixteen deliveries of the same platform message at once (a webhook retried by several
/// gateway nodes): exactly one message is stored and everyone gets it back.
async fn check_concurrent_same_platform_id(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let outcomes =
        join_all((0..16).map(|_| store.ingest_inbound(inbound(a.id, web.id, "new-customer", "pm-dup", T0)))).await;
    let outcomes: Vec<_> = outcomes.into_iter().map(|o| o.expect("ingest")).collect();
    assert_eq!(outcomes.iter().filter(|o| o.message_created).count(), 1, "exactly one insert");
    assert_eq!(outcomes.iter().filter(|o| o.conversation_created).count(), 1, "exactly one new conversation");
    let ids: HashSet<_> = outcomes.iter().map(|o| o.message.id).collect();
    assert_eq!(ids.len(), 1, "everyone sees the same message");
    let conv = outcomes[0].conversation.id;
    assert!(outcomes.iter().all(|o| o.conversation.id == conv));
    assert_eq!(store.list_messages(a.id, conv, None, 100).await.unwrap().len(), 1);
    assert_eq!(
        store.list_conversations(a.id, ConversationFilter { limit: 100, ..Default::default() }).await.unwrap().len(),
        1
    );
}

/// Sixteen different first messages of one new customer at once: one contact, one open
/// conversation, sixteen messages in it.
async fn check_concurrent_first_contact(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let outcomes =
        join_all((0..16).map(|i| store.ingest_inbound(inbound(a.id, web.id, "burst", &format!("pm-{i}"), T0 + i))))
            .await;
    let outcomes: Vec<_> = outcomes.into_iter().map(|o| o.expect("ingest")).collect();
    assert!(outcomes.iter().all(|o| o.message_created));
    assert_eq!(outcomes.iter().filter(|o| o.conversation_created).count(), 1, "exactly one new conversation");
    let contacts: HashSet<_> = outcomes.iter().map(|o| o.conversation.contact_id).collect();
    assert_eq!(contacts.len(), 1, "one contact");
    let convs: HashSet<_> = outcomes.iter().map(|o| o.conversation.id).collect();
    assert_eq!(convs.len(), 1, "one conversation");
    let open = store
        .list_conversations(a.id, ConversationFilter { open_only: true, limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(store.list_messages(a.id, open[0].id, None, 100).await.unwrap().len(), 16);
    let contact = outcomes[0].conversation.contact_id;
    assert_eq!(store.list_contact_identities(a.id, contact).await.unwrap().len(), 1);
}

conformance!(
    check_first_message_creates_contact_and_conversation,
    check_next_message_reuses_open_conversation,
    check_same_platform_id_twice_stores_one_message,
    check_resolved_conversation_is_not_reused,
    check_find_conversation_for_identity,
    check_concurrent_same_platform_id,
    check_concurrent_first_contact,
);
