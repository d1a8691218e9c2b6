//! Inbox secrets at rest, on every backend: the raw column holds no plaintext, rows written before
//! encryption are read and resealed, rotation moves rows to the new key, and a store without the
//! sealing key fails closed with an error naming the key.

use crate::harness::*;
use serde_json::json;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;
use switchboard_core::StoreError;
use switchboard_storage::secrets::{key_id, SecretsKeyring};
use switchboard_storage::{testkit, Dialect, SqlStore};

const KEY_A: [u8; 32] = [0x11; 32];
const KEY_B: [u8; 32] = [0x22; 32];

/// Like `harness::run`, but hands the check the `SqlStore` itself (it needs `with_secrets` and
/// the raw column), on a scratch database of `kind`.
async fn run_sql(kind: Dialect, check: impl AsyncFnOnce(SqlStore)) {
    if !testkit::server_reachable(kind).await {
        assert!(!testkit::require_all(), "{kind} test server is unreachable and SWITCHBOARD_TEST_REQUIRE_ALL is set");
        eprintln!("note: skipping {kind}: test server unreachable");
        return;
    }
    let url = testkit::scratch_database_url(kind).await;
    let store = switchboard_storage::connect(&url).await.expect("connect to scratch database");
    check(store.clone()).await;
    store.close().await;
    testkit::drop_scratch_database(&url).await;
}

fn telegram(tenant: TenantId, token: &str) -> NewInbox {
    NewInbox {
        tenant_id: tenant,
        name: "Telegram".into(),
        kind: ChannelKind::Telegram,
        settings: json!({}),
        secrets: json!({"bot_token": token, "webhook_secret": format!("{token}-hook")}),
        mask_identifiers: false,
        team_id: None,
        token_hash: None,
    }
}

async fn check_secrets_at_rest(plain: SqlStore) {
    let sealed = plain.clone().with_secrets(SecretsKeyring::new(&KEY_A, &[]));
    let t = tenant(&sealed, "sec").await;

    // Written with a key: the column is ciphertext under key A, the API type gets the plaintext.
    let inbox = sealed.create_inbox(telegram(t.id, "123:SECRET-create"), T0).await.unwrap();
    assert_eq!(inbox.secrets["bot_token"], "123:SECRET-create");
    let raw = sealed.stored_inbox_secrets(inbox.id).await.unwrap().unwrap();
    assert!(raw.starts_with(&format!("sbenc:v1:{}:", key_id(&KEY_A))), "{raw}");
    assert!(!raw.contains("SECRET") && !raw.contains("bot_token"), "plaintext at rest: {raw}");
    assert_eq!(sealed.get_inbox(t.id, inbox.id).await.unwrap().secrets["webhook_secret"], "123:SECRET-create-hook");
    assert_eq!(sealed.list_inboxes_by_kind_unscoped(ChannelKind::Telegram).await.unwrap()[0].secrets, inbox.secrets);

    // Updates seal too.
    let patch = InboxPatch { secrets: Some(json!({"bot_token": "456:SECRET-rotated"})), ..Default::default() };
    sealed.update_inbox(t.id, inbox.id, patch, T0 + 1).await.unwrap();
    let raw = sealed.stored_inbox_secrets(inbox.id).await.unwrap().unwrap();
    assert!(raw.starts_with("sbenc:v1:") && !raw.contains("SECRET"), "{raw}");
    let (opened, _) = sealed.get_inbox_unscoped(inbox.id).await.unwrap().unwrap();
    assert_eq!(opened.secrets, json!({"bot_token": "456:SECRET-rotated"}));

    // A row from before encryption (the keyless store writes plain JSON) is read as is, and the
    // start-up reseal encrypts it without touching the sealed one.
    let old = plain.create_inbox(telegram(t.id, "789:SECRET-legacy"), T0 + 2).await.unwrap();
    assert!(plain.stored_inbox_secrets(old.id).await.unwrap().unwrap().contains("SECRET-legacy"));
    assert_eq!(sealed.get_inbox(t.id, old.id).await.unwrap().secrets["bot_token"], "789:SECRET-legacy");
    let report = sealed.reseal_inbox_secrets(false).await.unwrap();
    assert_eq!((report.inboxes, report.resealed), (2, 1));
    let raw = sealed.stored_inbox_secrets(old.id).await.unwrap().unwrap();
    assert!(raw.starts_with("sbenc:v1:") && !raw.contains("SECRET"), "{raw}");
    assert_eq!(sealed.get_inbox(t.id, old.id).await.unwrap().secrets["bot_token"], "789:SECRET-legacy");
    assert_eq!(sealed.reseal_inbox_secrets(false).await.unwrap().resealed, 0, "nothing left to seal");

    // A store without key A fails closed, naming the key; nothing is returned, nothing changed.
    let wrong = plain.clone().with_secrets(SecretsKeyring::new(&KEY_B, &[]));
    match wrong.get_inbox(t.id, inbox.id).await {
        Err(StoreError::Unavailable(m)) => assert!(m.contains(&key_id(&KEY_A)) && m.contains("not configured"), "{m}"),
        other => panic!("expected a fail-closed error, got {other:?}"),
    }
    match wrong.reseal_inbox_secrets(true).await {
        Err(StoreError::Unavailable(m)) => assert!(m.contains(&format!("inbox {}", inbox.id.0)), "{m}"),
        other => panic!("expected the reseal to refuse, got {other:?}"),
    }
    assert!(plain.stored_inbox_secrets(inbox.id).await.unwrap().unwrap().contains(&key_id(&KEY_A)));

    // Rotation: B primary, A previous; rotate-secrets moves every row to B, then A can go.
    let rotating = plain.clone().with_secrets(SecretsKeyring::new(&KEY_B, &[KEY_A]));
    assert_eq!(rotating.reseal_inbox_secrets(false).await.unwrap().resealed, 0, "start-up leaves old-key rows");
    assert_eq!(rotating.reseal_inbox_secrets(true).await.unwrap().resealed, 2);
    for id in [inbox.id, old.id] {
        let raw = plain.stored_inbox_secrets(id).await.unwrap().unwrap();
        assert!(raw.starts_with(&format!("sbenc:v1:{}:", key_id(&KEY_B))), "{raw}");
    }
    let only_b = plain.clone().with_secrets(SecretsKeyring::new(&KEY_B, &[]));
    assert_eq!(only_b.get_inbox(t.id, inbox.id).await.unwrap().secrets["bot_token"], "456:SECRET-rotated");
    assert_eq!(only_b.get_inbox(t.id, old.id).await.unwrap().secrets["bot_token"], "789:SECRET-legacy");
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn check_secrets_at_rest() {
        super::run_sql(super::Dialect::Sqlite, super::check_secrets_at_rest).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn check_secrets_at_rest() {
        super::run_sql(super::Dialect::Postgres, super::check_secrets_at_rest).await;
    }
}

mod mysql {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn check_secrets_at_rest() {
        super::run_sql(super::Dialect::Mysql, super::check_secrets_at_rest).await;
    }
}
