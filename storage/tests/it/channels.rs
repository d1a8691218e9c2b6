//! The gateway's needs: receipts that only move forward, platform ids on sent messages,
//! inboxes by kind across tenants, poll cursors, inbound media linked to its message.

use crate::harness::*;
use switchboard_core::domain::*;
use switchboard_core::store::Store;

async fn check_receipts_move_forward_only(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    store.try_assign(a.id, conv.id, ann.id, T0 + 1).await.unwrap().expect("assigned");
    let sent = store.append_reply(agent_reply(a.id, conv.id, ann.id, None, false, T0 + 2)).await.unwrap().message;
    store.set_platform_message_id(a.id, sent.id, "wamid.1", T0 + 3).await.unwrap();
    assert_eq!(store.get_message(a.id, sent.id).await.unwrap().platform_message_id.as_deref(), Some("wamid.1"));

    let read = store.apply_receipt(a.id, web.id, "wamid.1", DeliveryStatus::Read, T0 + 4).await.unwrap();
    assert_eq!(read.map(|m| m.status), Some(DeliveryStatus::Read));
    // A late `delivered` does not undo `read`, and `failed` cannot follow `read`.
    let late = store.apply_receipt(a.id, web.id, "wamid.1", DeliveryStatus::Delivered, T0 + 5).await.unwrap();
    assert_eq!(late.map(|m| m.status), Some(DeliveryStatus::Read));
    let failed = store.apply_receipt(a.id, web.id, "wamid.1", DeliveryStatus::Failed, T0 + 6).await.unwrap();
    assert_eq!(failed.map(|m| m.status), Some(DeliveryStatus::Read));
    // Unknown ids and other tenants find nothing and change nothing.
    assert!(store.apply_receipt(a.id, web.id, "wamid.404", DeliveryStatus::Read, T0).await.unwrap().is_none());
    assert!(store.apply_receipt(b.id, web.id, "wamid.1", DeliveryStatus::Failed, T0).await.unwrap().is_none());
    assert_not_found(store.set_platform_message_id(b.id, sent.id, "x", T0).await, "other tenant's message");
}

async fn check_inboxes_by_kind_and_cursors(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let ia = inbox(store, a.id, None).await;
    let ib = inbox(store, b.id, None).await;
    let kind = ia.kind;
    let found: Vec<_> = store.list_inboxes_by_kind_unscoped(kind).await.unwrap().into_iter().map(|i| i.id).collect();
    assert!(found.contains(&ia.id) && found.contains(&ib.id), "both tenants' inboxes: {found:?}");
    let other = ChannelKind::ALL.iter().copied().find(|k| *k != kind).unwrap();
    assert!(store.list_inboxes_by_kind_unscoped(other).await.unwrap().iter().all(|i| i.kind == other));

    assert_eq!(store.get_channel_cursor(ia.id).await.unwrap(), None);
    store.set_channel_cursor(ia.id, "101", T0).await.unwrap();
    store.set_channel_cursor(ia.id, "205", T0 + 1).await.unwrap();
    assert_eq!(store.get_channel_cursor(ia.id).await.unwrap().as_deref(), Some("205"));
    assert_eq!(store.get_channel_cursor(ib.id).await.unwrap(), None, "cursors are per inbox");
}

async fn check_message_attachments_are_replaced(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let web = inbox(store, a.id, None).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    let first = store.list_messages(a.id, conv.id, None, 10).await.unwrap().remove(0);
    let stored = vec![Attachment {
        kind: "image".into(),
        url: Some("/media/1/abc?exp=1&sig=00".into()),
        name: Some("photo.jpg".into()),
        mime: Some("image/jpeg".into()),
        size: Some(1234),
    }];
    store.set_message_attachments(a.id, first.id, &stored, T0 + 1).await.unwrap();
    assert_eq!(store.get_message(a.id, first.id).await.unwrap().attachments, stored);
    assert_not_found(store.set_message_attachments(b.id, first.id, &[], T0 + 2).await, "other tenant's message");
    assert_eq!(store.get_message(a.id, first.id).await.unwrap().attachments, stored, "unchanged by the other tenant");
}

conformance!(check_receipts_move_forward_only, check_inboxes_by_kind_and_cursors, check_message_attachments_are_replaced);
