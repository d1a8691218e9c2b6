//! Inboxes: settings and secrets round trip, secrets never serialized, patches.

use crate::harness::*;
use serde_json::json;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;

async fn check_inboxes(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let team = store.create_team(a.id, "Support", T0).await.unwrap();
    let web = inbox(store, a.id, Some(team.id)).await;
    assert_eq!(web.tenant_id, a.id);
    assert_eq!(web.kind, ChannelKind::Api);
    assert_eq!(web.settings, json!({"webhook_url": "http://127.0.0.1:9/hook"}));
    assert_eq!(web.secrets, json!({"signing_secret": "s3cr3t-value"}));
    assert_eq!(web.team_id, Some(team.id));
    assert!(!web.mask_identifiers);
    assert_eq!((web.created_at, web.updated_at), (T0, T0));

    // Secrets are stored and returned to the server, but never serialized.
    let fetched = store.get_inbox(a.id, web.id).await.unwrap();
    assert_eq!(fetched.secrets, json!({"signing_secret": "s3cr3t-value"}));
    for shown in [
        serde_json::to_string(&fetched).unwrap(),
        serde_json::to_string(&store.list_inboxes(a.id).await.unwrap()).unwrap(),
    ] {
        assert!(!shown.contains("s3cr3t-value"), "secret leaked: {shown}");
        assert!(!shown.contains("signing_secret"), "secret leaked: {shown}");
        assert!(!shown.contains(&"ab".repeat(32)), "token hash leaked: {shown}");
    }

    let (unscoped, token_hash) = store.get_inbox_unscoped(web.id).await.unwrap().expect("inbox");
    assert_eq!(unscoped.id, web.id);
    assert_eq!(token_hash, Some("ab".repeat(32)));
    assert!(store.get_inbox_unscoped(InboxId(123_456)).await.unwrap().is_none());

    let plain = store
        .create_inbox(
            NewInbox {
                tenant_id: a.id,
                name: "Telegram".into(),
                kind: ChannelKind::Telegram,
                settings: json!({}),
                secrets: json!({"bot_token": "123:abc"}),
                mask_identifiers: true,
                team_id: None,
                token_hash: None,
            },
            T0,
        )
        .await
        .unwrap();
    assert!(plain.mask_identifiers);
    assert_eq!(store.get_inbox_unscoped(plain.id).await.unwrap().map(|(_, h)| h), Some(None));
    let listed = store.list_inboxes(a.id).await.unwrap();
    assert_eq!(listed.iter().map(|i| i.id).collect::<Vec<_>>(), vec![web.id, plain.id]);

    let patched = store
        .update_inbox(
            a.id,
            web.id,
            InboxPatch {
                name: Some("Site".into()),
                settings: Some(json!({"webhook_url": "http://example.invalid/new"})),
                secrets: Some(json!({"signing_secret": "rotated"})),
                mask_identifiers: Some(true),
                team_id: Some(None),
                token_hash: Some("cd".repeat(32)),
            },
            T0 + 5,
        )
        .await
        .unwrap();
    assert_eq!(patched.name, "Site");
    assert_eq!(patched.settings, json!({"webhook_url": "http://example.invalid/new"}));
    assert_eq!(patched.secrets, json!({"signing_secret": "rotated"}));
    assert!(patched.mask_identifiers);
    assert_eq!(patched.team_id, None);
    assert_eq!(patched.updated_at, T0 + 5);
    assert_eq!(store.get_inbox_unscoped(web.id).await.unwrap().and_then(|(_, h)| h), Some("cd".repeat(32)));
    let unchanged = store.update_inbox(a.id, web.id, InboxPatch::default(), T0 + 6).await.unwrap();
    assert_eq!(unchanged.name, "Site");
    let reteamed = store
        .update_inbox(a.id, web.id, InboxPatch { team_id: Some(Some(team.id)), ..Default::default() }, T0 + 7)
        .await
        .unwrap();
    assert_eq!(reteamed.team_id, Some(team.id));

    let b = tenant(store, "b").await;
    let foreign_team = store.create_team(b.id, "Theirs", T0).await.unwrap();
    assert_not_found(
        store
            .update_inbox(a.id, web.id, InboxPatch { team_id: Some(Some(foreign_team.id)), ..Default::default() }, T0)
            .await,
        "another tenant's team",
    );
    let mut bad = NewInbox {
        tenant_id: a.id,
        name: "x".into(),
        kind: ChannelKind::Web,
        settings: json!({}),
        secrets: json!({}),
        mask_identifiers: false,
        team_id: Some(foreign_team.id),
        token_hash: None,
    };
    assert_not_found(store.create_inbox(bad.clone(), T0).await, "inbox on another tenant's team");
    bad.tenant_id = TenantId(424_242);
    bad.team_id = None;
    assert_not_found(store.create_inbox(bad, T0).await, "inbox of unknown tenant");
}

conformance!(check_inboxes);
