//! Runs one check against one backend, and the fixtures the checks share.

use futures::future::LocalBoxFuture;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;
use switchboard_core::time::Millis;
use switchboard_core::StoreError;
use switchboard_storage::{testkit, Dialect};

/// A fixed "now" so that tests read as a timeline: T0, T0 + 1000, ...
pub const T0: Millis = 1_763_700_000_000;

pub async fn run<F>(kind: Dialect, check: F)
where
    F: for<'a> FnOnce(&'a dyn Store) -> LocalBoxFuture<'a, ()>,
{
    if !testkit::server_reachable(kind).await {
        let url = testkit::server_url(kind);
        if testkit::require_all() {
            panic!("{kind} test server at {url} is unreachable and SWITCHBOARD_TEST_REQUIRE_ALL is set");
        }
        eprintln!("note: skipping {kind}: test server at {url} is unreachable");
        return;
    }
    let url = testkit::scratch_database_url(kind).await;
    let store = switchboard_storage::connect(&url).await.expect("connect to scratch database");
    assert_eq!(store.backend(), kind.name());
    check(&store).await;
    store.close().await;
    testkit::drop_scratch_database(&url).await;
}

pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

pub fn assert_invalid_state<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::InvalidState(_)) => {}
        other => panic!("{what}: expected InvalidState, got {other:?}"),
    }
}

/// A list call another tenant makes: it may say NotFound or return nothing, never rows.
pub fn assert_not_found_or_empty<T: std::fmt::Debug>(result: Result<Vec<T>, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        Ok(rows) if rows.is_empty() => {}
        other => panic!("{what}: expected NotFound or nothing, got {other:?}"),
    }
}

pub async fn tenant(store: &dyn Store, slug: &str) -> Tenant {
    store.create_tenant(&format!("Tenant {slug}"), slug, T0).await.expect("create tenant")
}

pub fn new_user(tenant: TenantId, email: &str, capacity: i64) -> NewUser {
    NewUser {
        tenant_id: tenant,
        email: email.to_owned(),
        name: format!("User {email}"),
        role: Role::Agent,
        password_hash: "$argon2id$fake".to_owned(),
        capacity,
    }
}

/// An agent who is `available` with the given capacity.
pub async fn agent(store: &dyn Store, tenant: TenantId, email: &str, capacity: i64) -> User {
    let user = store.create_user(new_user(tenant, email, capacity), T0).await.expect("create user");
    store.set_agent_status(tenant, user.id, AgentStatus::Available, T0).await.expect("set available")
}

pub async fn inbox(store: &dyn Store, tenant: TenantId, team: Option<TeamId>) -> Inbox {
    store
        .create_inbox(
            NewInbox {
                tenant_id: tenant,
                name: "Website".to_owned(),
                kind: ChannelKind::Api,
                settings: serde_json::json!({"webhook_url": "http://127.0.0.1:9/hook"}),
                secrets: serde_json::json!({"signing_secret": "s3cr3t-value"}),
                mask_identifiers: false,
                team_id: team,
                token_hash: Some("ab".repeat(32)),
            },
            T0,
        )
        .await
        .expect("create inbox")
}

pub fn inbound(tenant: TenantId, inbox: InboxId, contact: &str, platform_id: &str, now: Millis) -> InboundMessage {
    InboundMessage {
        tenant_id: tenant,
        inbox_id: inbox,
        contact_external_id: contact.to_owned(),
        contact_name: Some(format!("Customer {contact}")),
        platform_message_id: platform_id.to_owned(),
        text: Some(format!("hello from {contact} ({platform_id})")),
        attachments: vec![],
        now,
    }
}

/// A new queued conversation of a new contact.
pub async fn conversation(
    store: &dyn Store,
    tenant: TenantId,
    inbox: InboxId,
    contact: &str,
    now: Millis,
) -> Conversation {
    let out =
        store.ingest_inbound(inbound(tenant, inbox, contact, &format!("{contact}-first"), now)).await.expect("ingest");
    assert!(out.conversation_created, "{contact} should open a new conversation");
    out.conversation
}

pub fn agent_reply(
    tenant: TenantId,
    conversation: ConversationId,
    agent: UserId,
    client_id: Option<&str>,
    outbox: bool,
    now: Millis,
) -> NewReply {
    NewReply {
        tenant_id: tenant,
        conversation_id: conversation,
        sender_kind: SenderKind::Agent,
        sender_user_id: Some(agent),
        text: Some("how can I help?".to_owned()),
        attachments: vec![],
        client_message_id: client_id.map(str::to_owned),
        outbox: outbox.then(|| NewOutbox { kind: "api_webhook".to_owned(), payload: serde_json::json!({"n": 1}) }),
        now,
    }
}
