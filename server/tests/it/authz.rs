//! The authorization matrix: every REST operation called as every kind of caller, checked against
//! one table of expected answers (401 without credentials, 403 for a role that may not, 404 for
//! another tenant's rows, 2xx when allowed). Also: another tenant can neither read nor reference
//! this tenant's rows, and every `/api/v1` answer carries the security headers and no CORS grant.

use std::collections::HashMap;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard_server::settings::{Overrides, Settings};

use crate::helpers::{spawn_app_with, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// The callers, in the table's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Agent,
    Supervisor,
    Admin,
    /// The admin of another tenant.
    OtherAdmin,
    /// An API key (`sbk_`) with the agent role.
    AgentKey,
    /// An API key with the admin role.
    AdminKey,
    /// An API inbox's ingestion token (`sbi_`): good for that inbox's channel and nothing else.
    InboxToken,
}

const CALLERS: [Caller; 8] = [
    Caller::Anonymous,
    Caller::Agent,
    Caller::Supervisor,
    Caller::Admin,
    Caller::OtherAdmin,
    Caller::AgentKey,
    Caller::AdminKey,
    Caller::InboxToken,
];

impl Caller {
    fn slug(self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::Agent => "agent",
            Caller::Supervisor => "supervisor",
            Caller::Admin => "admin",
            Caller::OtherAdmin => "other-admin",
            Caller::AgentKey => "agent-key",
            Caller::AdminKey => "admin-key",
            Caller::InboxToken => "inbox-token",
        }
    }

    /// Logged in with a password (so it has a session to end).
    fn has_session(self) -> bool {
        matches!(self, Caller::Agent | Caller::Supervisor | Caller::Admin | Caller::OtherAdmin)
    }
}

/// The class of answer expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 2xx.
    A,
    /// Allowed, but the row's resource may already have been changed by an earlier caller:
    /// 2xx or 409. Authorization is decided before state, so a denial never hides in here.
    S,
    /// 401.
    U,
    /// 403.
    F,
    /// 404: another tenant's row does not exist for this caller.
    N,
}

impl Expect {
    fn matches(self, status: StatusCode) -> bool {
        match self {
            Expect::A => status.is_success(),
            Expect::S => status.is_success() || status == StatusCode::CONFLICT,
            Expect::U => status == StatusCode::UNAUTHORIZED,
            Expect::F => status == StatusCode::FORBIDDEN,
            Expect::N => status == StatusCode::NOT_FOUND,
        }
    }
}

use Expect::{A, F, N, S, U};

/// How a row authenticates: with the caller's token, or (logout) with a fresh session of the
/// caller's so that ending it does not end the caller's other rows.
#[derive(Clone, Copy, PartialEq)]
enum Auth {
    Token,
    FreshSession,
}

struct Row {
    method: Method,
    /// With `{name}` placeholders for the fixture's ids; `{caller}` is the caller's slug.
    path: &'static str,
    body: Option<&'static str>,
    auth: Auth,
    /// One per caller, in `CALLERS` order:
    /// anonymous, agent, supervisor, admin, other admin, agent key, admin key, inbox token.
    expect: [Expect; 8],
}

fn row(method: Method, path: &'static str, body: Option<&'static str>, expect: [Expect; 8]) -> Row {
    Row { method, path, body, auth: Auth::Token, expect }
}

/// The table. Ids: `{agent}` and `{supervisor}` are users; `{conv}` is assigned to the agent,
/// `{resolvable}` too (rows resolve it), `{queued}` is nobody's; `{inbox}` is the API inbox the
/// conversations came through, `{inbox2}` another one (rows rotate its token); `{team}`,
/// `{outbox}`, and `{victim}` an API key made for each caller to delete.
fn table() -> Vec<Row> {
    use Method as M;
    let mut rows = vec![
        //                                                                                  anon agent sup admin other akey kadm inbox
        row(M::POST, "/auth/login", Some(r#"{"email": "admin@example.com", "password": "correct-horse-battery"}"#), [A, A, A, A, A, A, A, A]),
        row(M::GET, "/me", None, [U, A, A, A, A, F, F, U]),
        row(M::GET, "/users", None, [U, F, A, A, A, F, A, U]),
        row(M::POST, "/users", Some(r#"{"email": "new-{caller}@example.com", "name": "N", "role": "agent", "password": "long-enough-pw"}"#), [U, F, F, A, A, F, A, U]),
        row(M::GET, "/users/{agent}", None, [U, A, A, A, N, F, A, U]),
        row(M::GET, "/users/{supervisor}", None, [U, F, A, A, N, F, A, U]),
        row(M::PATCH, "/users/{supervisor}", Some(r#"{"name": "Sam"}"#), [U, F, F, A, N, F, A, U]),
        row(M::PATCH, "/users/{agent}", Some(r#"{"role": "agent", "capacity": 5}"#), [U, F, F, A, N, F, A, U]),
        row(M::PUT, "/users/{agent}/status", Some(r#"{"status": "away"}"#), [U, A, A, A, N, F, A, U]),
        row(M::PUT, "/users/{supervisor}/status", Some(r#"{"status": "away"}"#), [U, F, A, A, N, F, A, U]),
        row(M::GET, "/teams", None, [U, A, A, A, A, A, A, U]),
        row(M::POST, "/teams", Some(r#"{"name": "Team {caller}"}"#), [U, F, F, A, A, F, A, U]),
        row(M::POST, "/teams/{team}/members", Some(r#"{"user_id": {agent}}"#), [U, F, F, A, N, F, A, U]),
        row(M::GET, "/teams/{team}/members", None, [U, A, A, A, N, A, A, U]),
        row(M::GET, "/inboxes", None, [U, F, A, A, A, F, A, U]),
        row(M::POST, "/inboxes", Some(r#"{"name": "Web {caller}", "kind": "web"}"#), [U, F, F, A, A, F, A, U]),
        row(M::GET, "/inboxes/{inbox}", None, [U, F, A, A, N, F, A, U]),
        row(M::PATCH, "/inboxes/{inbox}", Some(r#"{"name": "CRM"}"#), [U, F, F, A, N, F, A, U]),
        row(M::POST, "/inboxes/{inbox2}/rotate-token", None, [U, F, F, A, N, F, A, U]),
        row(M::GET, "/inboxes/{inbox}/flow", None, [U, F, A, A, N, F, A, U]),
        row(M::PUT, "/inboxes/{inbox2}/flow", Some(r#"{"flow": {"steps": [{"type": "handoff", "id": "h"}]}}"#), [U, F, F, A, N, F, A, U]),
        row(M::DELETE, "/inboxes/{inbox2}/flow", None, [U, F, F, A, N, F, A, U]),
        row(M::GET, "/inboxes/{inbox}/decision-hook-calls", None, [U, F, A, A, N, F, A, U]),
        row(M::POST, "/channels/api/{inbox}/messages", Some(r#"{"message_id": "authz-{caller}", "contact": {"id": "c-1"}, "text": "hi"}"#), [U, U, U, U, U, U, U, A]),
        row(M::GET, "/conversations", None, [U, A, A, A, A, F, A, U]),
        row(M::GET, "/conversations/{conv}", None, [U, A, A, A, N, F, A, U]),
        row(M::GET, "/conversations/{queued}", None, [U, F, A, A, N, F, A, U]),
        row(M::GET, "/conversations/{conv}/messages", None, [U, A, A, A, N, F, A, U]),
        row(M::GET, "/conversations/{queued}/messages", None, [U, F, A, A, N, F, A, U]),
        row(M::GET, "/conversations/{conv}/events", None, [U, A, A, A, N, F, A, U]),
        row(M::GET, "/conversations/{queued}/events", None, [U, F, A, A, N, F, A, U]),
        row(M::POST, "/conversations/{conv}/messages", Some(r#"{"text": "hi", "client_message_id": "authz-{caller}"}"#), [U, A, A, A, N, F, A, U]),
        row(M::POST, "/conversations/{queued}/messages", Some(r#"{"text": "hi", "client_message_id": "authz-q-{caller}"}"#), [U, F, S, S, N, F, S, U]),
        row(M::POST, "/conversations/{resolvable}/resolve", Some(r#"{"reason": "resolved"}"#), [U, S, S, S, N, F, S, U]),
        row(M::POST, "/conversations/{queued}/assign", Some(r#"{"user_id": {agent}}"#), [U, F, S, S, N, F, S, U]),
        row(M::PUT, "/conversations/{conv}/biz_data", Some(r#"{"order": 1}"#), [U, F, F, A, N, A, A, U]),
        row(M::GET, "/outbox", None, [U, F, F, A, A, F, A, U]),
        // Each tenant's admin reads its own tenant's log (other-admin: 200 with B's entries).
        row(M::GET, "/audit-log", None, [U, F, F, A, A, F, A, U]),
        row(M::POST, "/outbox/{outbox}/retry", None, [U, F, F, S, N, F, S, U]),
        row(M::GET, "/api-tokens", None, [U, F, F, A, A, F, A, U]),
        row(M::POST, "/api-tokens", Some(r#"{"name": "key {caller}", "role": "agent"}"#), [U, F, F, A, A, F, A, U]),
        row(M::DELETE, "/api-tokens/{victim}", None, [U, F, F, A, N, F, A, U]),
        row(M::GET, "/supervisor/queues", None, [U, F, A, A, A, F, A, U]),
        row(M::GET, "/supervisor/channels", None, [U, F, A, A, A, F, A, U]),
        row(M::GET, "/teams/{team}/policy", None, [U, F, A, A, N, F, A, U]),
        row(M::PUT, "/teams/{team}/policy", Some(r#"{"strategy": "least_loaded"}"#), [U, F, F, A, N, F, A, U]),
        // The fixture's queue is not a manual-pick queue: nobody may claim from it.
        row(M::POST, "/conversations/{queued}/claim", None, [U, F, F, F, N, F, F, U]),
        // Nobody holds an offer of it: users get 409 (allowed, wrong state); keys hold no offers.
        row(M::POST, "/conversations/{queued}/accept", None, [U, S, S, S, N, F, F, U]),
        row(M::POST, "/conversations/{queued}/reject", None, [U, S, S, S, N, F, F, U]),
        // Uploads go to the caller's own tenant, so another tenant's admin may upload too.
        row(M::POST, "/uploads", Some(MULTIPART_FILE), [U, A, A, A, A, A, A, U]),
        // Widget customers authenticate with the widget key and session headers, never a bearer.
        row(M::POST, "/widget/uploads", Some(MULTIPART_FILE), [U, U, U, U, U, U, U, U]),
        // A link of tenant A: re-signed for A's users and keys, not found for B's admin.
        row(M::POST, "/media/links", Some(r#"{"url": "{media_link}"}"#), [U, A, A, A, N, A, A, U]),
        // Transfer to the agent who holds it: refused (409) for whoever may transfer, so the row
        // changes nothing; the holder may, other agents and agent keys may not.
        row(M::POST, "/conversations/{conv}/transfer", Some(r#"{"to": {"agent": {agent}}, "note": "authz {caller}"}"#), [U, S, S, S, N, F, S, U]),
        // Nobody's: supervisors and admins move it to the team's queue (where it keeps waiting).
        row(M::POST, "/conversations/{queued}/transfer", Some(r#"{"to": {"team": {team}}}"#), [U, F, A, A, N, F, A, U]),
        row(M::GET, "/conversations/{conv}/transfer-targets", None, [U, A, A, A, N, F, A, U]),
        row(M::GET, "/conversations/{queued}/transfer-targets", None, [U, F, A, A, N, F, A, U]),
        row(M::POST, "/conversations/{conv}/notes", Some(r#"{"text": "note by {caller}"}"#), [U, A, A, A, N, F, A, U]),
        row(M::POST, "/conversations/{queued}/notes", Some(r#"{"text": "note by {caller}"}"#), [U, F, A, A, N, F, A, U]),
        row(M::GET, "/canned-responses", None, [U, A, A, A, A, A, A, U]),
        row(M::POST, "/canned-responses", Some(r#"{"shortcut": "authz-{caller}", "title": "T", "body": "B"}"#), [U, F, A, A, A, F, A, U]),
        row(M::PUT, "/canned-responses/{canned}", Some(r#"{"shortcut": "greet", "title": "Greeting", "body": "Hello"}"#), [U, F, A, A, N, F, A, U]),
        row(M::DELETE, "/canned-responses/{canned_victim}", None, [U, F, A, A, N, F, A, U]),
        row(M::GET, "/teams/{team}/wrap-up-template", None, [U, A, A, A, N, A, A, U]),
        row(M::PUT, "/teams/{team}/wrap-up-template", Some(r#"{"fields": []}"#), [U, F, F, A, N, F, A, U]),
        // An agent sees a contact's history only while holding one of their conversations.
        row(M::GET, "/contacts/{contact}/conversations", None, [U, A, A, A, N, F, A, U]),
        row(M::GET, "/contacts/{queued_contact}/conversations", None, [U, F, A, A, N, F, A, U]),
        row(M::GET, "/contacts/{contact}/conversations/{conv}/messages", None, [U, A, A, A, N, F, A, U]),
        row(M::GET, "/contacts/{queued_contact}/conversations/{queued}/messages", None, [U, F, A, A, N, F, A, U]),
        // Late: once a supervisor resolves it, the rows above about `{queued}` would see 409.
        row(M::POST, "/conversations/{queued}/resolve", Some(r#"{"reason": "spam"}"#), [U, F, S, S, N, F, S, U]),
    ];
    // Last: ends a fresh session of each session caller; API keys have none to end (a no-op).
    rows.push(Row {
        method: M::POST,
        path: "/auth/logout",
        body: None,
        auth: Auth::FreshSession,
        expect: [U, A, A, A, A, A, A, U],
    });
    rows
}

struct Fixture {
    app: TestApp,
    tokens: HashMap<&'static str, String>,
    passwords: HashMap<&'static str, (String, String)>,
    ids: HashMap<&'static str, i64>,
    victims: HashMap<&'static str, i64>,
    /// A canned response per caller for the DELETE row (`{canned_victim}`).
    canned_victims: HashMap<&'static str, i64>,
    /// A media link signed for tenant A (`{media_link}`).
    media_link: String,
    db: std::path::PathBuf,
}

impl Fixture {
    fn token(&self, caller: Caller) -> Option<&str> {
        self.tokens.get(caller.slug()).map(String::as_str)
    }

    fn fill(&self, template: &str, caller: Caller) -> String {
        let mut out = template.replace("{caller}", caller.slug());
        for (name, id) in &self.ids {
            out = out.replace(&format!("{{{name}}}"), &id.to_string());
        }
        if let Some(victim) = self.victims.get(caller.slug()) {
            out = out.replace("{victim}", &victim.to_string());
        }
        if let Some(victim) = self.canned_victims.get(caller.slug()) {
            out = out.replace("{canned_victim}", &victim.to_string());
        }
        out = out.replace("{media_link}", &self.media_link);
        out
    }
}

/// A row body sent as `multipart/form-data` with one small text file in the field `file`.
const MULTIPART_FILE: &str = "<multipart file>";

/// Any request: (status, headers, JSON body or null).
async fn call(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: Option<String>) -> (StatusCode, HeaderMap, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if body.as_deref() == Some(MULTIPART_FILE) {
        let part = reqwest::multipart::Part::bytes(b"authorization matrix".to_vec()).file_name("matrix.txt");
        request = request.multipart(reqwest::multipart::Form::new().part("file", part));
    } else if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body);
    }
    let response = request.send().await.expect("request");
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

async fn created_id(app: &TestApp, token: &str, path: &str, body: Value) -> (i64, Value) {
    let (status, created) = app.send_json(Method::POST, token, path, body).await;
    assert!(status.is_success(), "POST {path}: {status} {created}");
    (created["id"].as_i64().expect("id"), created)
}

async fn user(app: &TestApp, admin: &str, email: &str, role: &str) -> (i64, String) {
    let password = format!("{role}-password-123");
    let body = json!({"email": email, "name": role, "role": role, "password": password, "capacity": 5});
    let (id, _) = created_id(app, admin, "/api/v1/users", body).await;
    (id, app.login(email, &password).await)
}

async fn post_inbound(app: &TestApp, inbox: i64, token: &str, message_id: &str, contact: &str) -> i64 {
    let body = json!({"message_id": message_id, "contact": {"id": contact}, "text": "help"});
    let (status, answer) = app.send_json(Method::POST, token, &format!("/api/v1/channels/api/{inbox}/messages"), body).await;
    assert!(status.is_success(), "ingest: {status} {answer}");
    answer["conversation_id"].as_i64().expect("conversation id")
}

async fn wait_until_assigned(app: &TestApp, agent: &str, count: usize) {
    for _ in 0..100 {
        let (_, mine) = app.get_json(agent, "/api/v1/conversations").await;
        if mine.as_array().is_some_and(|a| a.len() == count) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the agent was not given {count} conversations");
}

/// Tenant A with an agent, a supervisor, API keys, two API inboxes, a team, three conversations
/// and an outbox entry; tenant B with its admin, in the same (file) database.
async fn fixture() -> Fixture {
    let db = std::env::temp_dir().join(format!(
        "switchboard-authz-it-{}-{}.db",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
    ));
    let database_url = format!("sqlite://{}?mode=rwc", db.display());
    let url = database_url.clone();
    let app = spawn_app_with(move |s| s.database_url = Some(url.into())).await;
    let admin = app.admin_token().await;
    let mut tokens = HashMap::new();
    let mut ids = HashMap::new();
    let mut passwords = HashMap::new();

    let (agent_id, agent) = user(&app, &admin, "agent@example.com", "agent").await;
    let (supervisor_id, supervisor) = user(&app, &admin, "supervisor@example.com", "supervisor").await;
    passwords.insert("agent", ("agent@example.com".to_string(), "agent-password-123".to_string()));
    passwords.insert("supervisor", ("supervisor@example.com".to_string(), "supervisor-password-123".to_string()));
    passwords.insert("admin", (ADMIN_EMAIL.to_string(), ADMIN_PASSWORD.to_string()));
    for (slug, role) in [("agent-key", "agent"), ("admin-key", "admin")] {
        let (_, created) = created_id(&app, &admin, "/api/v1/api-tokens", json!({"name": slug, "role": role})).await;
        tokens.insert(slug, created["token"].as_str().expect("key").to_string());
    }
    let mut victims = HashMap::new();
    for caller in CALLERS {
        let (id, _) = created_id(&app, &admin, "/api/v1/api-tokens", json!({"name": format!("victim {}", caller.slug()), "role": "agent"})).await;
        victims.insert(caller.slug(), id);
    }
    let mut canned_victims = HashMap::new();
    for caller in CALLERS {
        let body = json!({"shortcut": format!("victim-{}", caller.slug()), "title": "Victim", "body": "to delete"});
        let (id, _) = created_id(&app, &admin, "/api/v1/canned-responses", body).await;
        canned_victims.insert(caller.slug(), id);
    }
    let (canned, _) = created_id(&app, &admin, "/api/v1/canned-responses", json!({"shortcut": "greet", "title": "Greeting", "body": "Hi"})).await;
    let (team, _) = created_id(&app, &admin, "/api/v1/teams", json!({"name": "Sales"})).await;
    let api_inbox = json!({"name": "CRM", "kind": "api", "settings": {"webhook_url": "http://127.0.0.1:9/hook"}});
    let (inbox, created) = created_id(&app, &admin, "/api/v1/inboxes", api_inbox.clone()).await;
    let inbox_token = created["inbound_token"].as_str().expect("inbound token").to_string();
    let (inbox2, _) = created_id(&app, &admin, "/api/v1/inboxes", api_inbox).await;

    // Two conversations for the agent, then one nobody holds.
    let conv = post_inbound(&app, inbox, &inbox_token, "m-1", "c-1").await;
    let resolvable = post_inbound(&app, inbox, &inbox_token, "m-2", "c-2").await;
    let (status, body) = app.send_json(Method::PUT, &agent, &format!("/api/v1/users/{agent_id}/status"), json!({"status": "available"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_until_assigned(&app, &agent, 2).await;
    let (status, body) = app.send_json(Method::PUT, &agent, &format!("/api/v1/users/{agent_id}/status"), json!({"status": "away"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let queued = post_inbound(&app, inbox, &inbox_token, "m-3", "c-3").await;
    // A reply to the API inbox leaves an outbox entry (its webhook is unreachable).
    let (status, body) = app.send_json(Method::POST, &agent, &format!("/api/v1/conversations/{conv}/messages"), json!({"text": "on it"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, outbox) = app.get_json(&admin, "/api/v1/outbox").await;
    let outbox_id = outbox[0]["id"].as_i64().expect("an outbox entry");
    let contact_of = |view: &Value| view["contact"]["id"].as_i64().expect("contact id");
    let contact = contact_of(&app.get_json(&admin, &format!("/api/v1/conversations/{conv}")).await.1);
    let queued_contact = contact_of(&app.get_json(&admin, &format!("/api/v1/conversations/{queued}")).await.1);

    // Tenant B and its admin, created straight in the same database.
    let mut settings = Settings::load(&Overrides { database_url: Some(database_url), ..Default::default() }).expect("settings");
    settings.security.secrets_key = Some(crate::helpers::TEST_SECRETS_KEY.to_string().into());
    let store = switchboard_server::open_store(&settings).await.expect("store");
    let now = switchboard_server::time::now_ms();
    let tenant_b = store.create_tenant("Other", "other", now).await.expect("tenant b");
    let hash = switchboard_server::auth::hash_password("tenant-b-password").expect("hash");
    let new_admin = switchboard_core::domain::NewUser {
        tenant_id: tenant_b.id,
        email: "admin-b@example.com".into(),
        name: "B".into(),
        role: switchboard_core::domain::Role::Admin,
        password_hash: hash,
        capacity: 5,
    };
    store.create_user(new_admin, now).await.expect("admin b");
    passwords.insert("other-admin", ("admin-b@example.com".to_string(), "tenant-b-password".to_string()));
    let other_admin = app.login("admin-b@example.com", "tenant-b-password").await;

    let media_link = {
        let part = reqwest::multipart::Part::bytes(b"a file to link".to_vec()).file_name("link.txt");
        let r = app.client.post(app.url("/api/v1/uploads")).bearer_auth(&admin).multipart(reqwest::multipart::Form::new().part("file", part)).send().await.expect("upload");
        let body: Value = r.json().await.expect("upload body");
        body["url"].as_str().expect("media url").to_owned()
    };
    tokens.insert("agent", agent);
    tokens.insert("supervisor", supervisor);
    tokens.insert("admin", admin);
    tokens.insert("other-admin", other_admin);
    tokens.insert("inbox-token", inbox_token);
    for (name, id) in [
        ("agent", agent_id),
        ("supervisor", supervisor_id),
        ("team", team),
        ("inbox", inbox),
        ("inbox2", inbox2),
        ("conv", conv),
        ("resolvable", resolvable),
        ("queued", queued),
        ("outbox", outbox_id),
        ("canned", canned),
        ("contact", contact),
        ("queued_contact", queued_contact),
    ] {
        ids.insert(name, id);
    }
    Fixture { app, tokens, passwords, ids, victims, canned_victims, media_link, db }
}

fn assert_security_headers(what: &str, headers: &HeaderMap) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{what}: {name}");
    }
    assert!(headers.get("access-control-allow-origin").is_none(), "{what}: no cross-origin grant");
}

#[tokio::test]
async fn every_endpoint_answers_every_caller_as_the_table_says() {
    let f = fixture().await;
    let rows = table();
    let mut failures = Vec::new();
    let mut cells = 0;
    for row in &rows {
        for (caller, expect) in CALLERS.into_iter().zip(row.expect) {
            let path = format!("/api/v1{}", f.fill(row.path, caller));
            let token = match row.auth {
                Auth::FreshSession if caller.has_session() => {
                    let (email, password) = &f.passwords[caller.slug()];
                    Some(f.app.login(email, password).await)
                }
                _ => f.token(caller).map(str::to_string),
            };
            let body = row.body.map(|b| f.fill(b, caller));
            let (status, headers, answer) = call(&f.app, row.method.clone(), &path, token.as_deref(), body).await;
            cells += 1;
            assert_security_headers(&format!("{} {path}", row.method), &headers);
            assert!(!status.is_server_error(), "{} {path} as {caller:?}: {status} {answer}", row.method);
            if !expect.matches(status) {
                failures.push(format!("{} {path} as {caller:?}: expected {expect:?}, got {status} {answer}", row.method));
            } else if !status.is_success() && answer["error"]["code"].as_str().is_none() {
                failures.push(format!("{} {path} as {caller:?}: {status} without an error code: {answer}", row.method));
            }
        }
    }
    // Every operation of the OpenAPI document is in the table.
    let documented: Vec<(String, String)> = {
        let doc = switchboard_server::api::openapi();
        let value: Value = serde_json::from_str(&doc.to_json().expect("json")).expect("doc");
        let mut ops = Vec::new();
        for (path, item) in value["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("item").keys() {
                ops.push((method.to_uppercase(), path.trim_start_matches("/api/v1").to_string()));
            }
        }
        ops
    };
    for (method, path) in &documented {
        let covered = rows.iter().any(|r| r.method.as_str() == method && same_template(r.path, path));
        assert!(covered, "{method} {path} is not in the authorization table");
    }
    eprintln!("authorization matrix: {} operations × {} callers = {cells} cells", rows.len(), CALLERS.len());
    assert!(failures.is_empty(), "{} of {cells} cells differ from the table:\n{}", failures.len(), failures.join("\n"));
    f.app.stop().await;
    let _ = std::fs::remove_file(&f.db);
}

/// `/users/{agent}` covers the document's `/users/{id}`: the same path with any placeholders.
fn same_template(ours: &str, documented: &str) -> bool {
    let parts = |p: &str| p.split('/').map(|s| if s.starts_with('{') { "{}".to_string() } else { s.to_string() }).collect::<Vec<_>>();
    parts(ours) == parts(documented)
}

#[tokio::test]
async fn another_tenant_can_neither_list_nor_reference_our_rows() {
    let f = fixture().await;
    let other = f.token(Caller::OtherAdmin).expect("other admin");
    let (_, me) = f.app.get_json(other, "/api/v1/me").await;
    let tenant_b = me["tenant_id"].as_i64().expect("tenant id");

    // Listings show only the caller's tenant.
    for path in ["/api/v1/users", "/api/v1/teams", "/api/v1/inboxes", "/api/v1/conversations", "/api/v1/outbox", "/api/v1/api-tokens"] {
        let (status, listed) = f.app.get_json(other, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let rows = listed.as_array().expect("list");
        assert!(rows.iter().all(|r| r["tenant_id"].as_i64() == Some(tenant_b)), "{path} shows another tenant's rows: {listed}");
    }

    // Our ids inside the other tenant's own requests are unknown to it.
    let (team_b, _) = created_id(&f.app, other, "/api/v1/teams", json!({"name": "B team"})).await;
    let agent = f.ids["agent"];
    let (status, body) = f.app.send_json(Method::POST, other, &format!("/api/v1/teams/{team_b}/members"), json!({"user_id": agent})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "added another tenant's agent to a team: {body}");
    let team_a = f.ids["team"];
    let (status, body) = f.app.send_json(Method::POST, other, "/api/v1/inboxes", json!({"name": "x", "kind": "web", "team_id": team_a})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an inbox fed another tenant's team: {body}");
    let (inbox_b, _) = created_id(&f.app, other, "/api/v1/inboxes", json!({"name": "B web", "kind": "web"})).await;
    let (status, body) = f.app.send_json(Method::PATCH, other, &format!("/api/v1/inboxes/{inbox_b}"), json!({"team_id": team_a})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an inbox moved to another tenant's team: {body}");

    // Nothing of ours changed: the agent is still an agent, in no team of B, the inbox still ours.
    let admin = f.token(Caller::Admin).expect("admin");
    let (_, user) = f.app.get_json(admin, &format!("/api/v1/users/{agent}")).await;
    assert_eq!(user["role"], "agent");
    assert_eq!(user["name"], "agent");
    let (_, members) = f.app.get_json(other, &format!("/api/v1/teams/{team_b}/members")).await;
    assert_eq!(members, json!([]));

    // Another tenant's inbox token does not post into our inbox.
    let (_, created) = created_id(&f.app, other, "/api/v1/inboxes", json!({"name": "B api", "kind": "api"})).await;
    let token_b = created["inbound_token"].as_str().expect("token").to_string();
    let inbox_a = f.ids["inbox"];
    let body = json!({"message_id": "cross", "contact": {"id": "c-9"}, "text": "hi"});
    let (status, _) = f.app.send_json(Method::POST, &token_b, &format!("/api/v1/channels/api/{inbox_a}/messages"), body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    f.app.stop().await;
    let _ = std::fs::remove_file(&f.db);
}

#[tokio::test]
async fn api_answers_carry_security_headers_and_no_cors_grant() {
    let f = fixture().await;
    let admin = f.token(Caller::Admin).expect("admin");

    let (status, headers, body) = call(&f.app, Method::GET, "/api/v1/no-such-thing", Some(admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert_security_headers("unknown path", &headers);

    let (status, headers, body) = call(&f.app, Method::DELETE, "/api/v1/users", Some(admin), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let allow = headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");
    assert_security_headers("wrong method", &headers);

    // A cross-origin preflight and a cross-origin read get no grant.
    let preflight = f
        .app
        .client
        .request(Method::OPTIONS, f.app.url("/api/v1/users"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("preflight");
    assert!(!preflight.status().is_success(), "preflight answered {}", preflight.status());
    assert!(preflight.headers().get("access-control-allow-origin").is_none());
    assert!(preflight.headers().get("access-control-allow-headers").is_none());
    let read = f.app.client.get(f.app.url("/api/v1/users")).header("origin", "https://evil.example").bearer_auth(admin).send().await.expect("get");
    assert_eq!(read.status(), StatusCode::OK);
    assert_security_headers("cross-origin read", read.headers());
    f.app.stop().await;
    let _ = std::fs::remove_file(&f.db);
}
