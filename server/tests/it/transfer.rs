//! Transfers and internal notes over REST, with a widget customer on a real Socket.IO
//! connection (Engine.IO long-polling, spoken by hand below): who may transfer, the slot moving
//! between agents, the note reaching agents and never the customer (neither pushed nor on resync).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard_server::settings::{Overrides, Settings};

use crate::helpers::{spawn_app_with, TestApp};

/// A `/widget` Socket.IO client over Engine.IO v4 long-polling: enough to connect, emit with an
/// ack, and collect every event the server pushes.
struct WidgetClient {
    client: reqwest::Client,
    url: String,
    /// Every `42` event received so far, as `[name, payload]`.
    events: Vec<Value>,
    acks: std::collections::HashMap<u64, Value>,
    next_ack: u64,
}

impl WidgetClient {
    async fn connect(app: &TestApp, auth: Value) -> WidgetClient {
        let client = reqwest::Client::new();
        let base = app.url("/socket.io/?EIO=4&transport=polling");
        let open = client.get(&base).send().await.expect("open").text().await.expect("open body");
        let handshake: Value = serde_json::from_str(open.trim_start_matches('0')).expect("handshake");
        let sid = handshake["sid"].as_str().expect("sid");
        let mut widget = WidgetClient { client, url: format!("{base}&sid={sid}"), events: vec![], acks: Default::default(), next_ack: 1 };
        widget.post(&format!("40/widget,{auth}")).await;
        // Wait for the namespace's connect answer and the `session` event.
        widget.poll_until(|w| w.events.iter().any(|e| e[0] == "session")).await;
        widget
    }

    async fn post(&self, packet: &str) {
        let r = self.client.post(&self.url).body(packet.to_string()).send().await.expect("post");
        assert!(r.status().is_success(), "engine.io post: {}", r.status());
    }

    /// One long-poll: reads what the server has queued (or a ping), answering pings.
    async fn poll_once(&mut self) {
        let r = tokio::time::timeout(Duration::from_secs(30), self.client.get(&self.url).send()).await;
        let body = r.expect("poll timed out").expect("poll").text().await.expect("poll body");
        for packet in body.split('\u{1e}') {
            if packet == "2" {
                self.post("3").await;
            } else if let Some(rest) = packet.strip_prefix("44/widget,") {
                panic!("widget connect refused: {rest}");
            } else if let Some(rest) = packet.strip_prefix("42/widget,") {
                self.events.push(serde_json::from_str(rest).expect("event"));
            } else if let Some(rest) = packet.strip_prefix("43/widget,") {
                let split = rest.find('[').expect("ack payload");
                let id: u64 = rest[..split].parse().expect("ack id");
                let payload: Value = serde_json::from_str(&rest[split..]).expect("ack json");
                self.acks.insert(id, payload[0].clone());
            }
        }
    }

    async fn poll_until(&mut self, done: impl Fn(&WidgetClient) -> bool) {
        for _ in 0..20 {
            if done(self) {
                return;
            }
            self.poll_once().await;
        }
        panic!("the widget did not get what it waited for; events: {:?}", self.events);
    }

    /// Emits an event and waits for its acknowledgement.
    async fn request(&mut self, event: &str, body: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.post(&format!("42/widget,{id}{}", json!([event, body]))).await;
        self.poll_until(|w| w.acks.contains_key(&id)).await;
        self.acks.remove(&id).unwrap_or_default()
    }

    fn messages(&self) -> Vec<&Value> {
        self.events.iter().filter(|e| e[0] == "message").map(|e| &e[1]).collect()
    }
}

/// A server on a file database (so a second tenant can be made beside it) with a web inbox.
async fn setup() -> (TestApp, String, i64, String, std::path::PathBuf) {
    let db = std::env::temp_dir().join(format!(
        "switchboard-transfer-it-{}-{}.db",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
    ));
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let app = spawn_app_with(move |s| s.database_url = Some(url.into())).await;
    let admin = app.admin_token().await;
    let (status, inbox) = app.send_json(Method::POST, &admin, "/api/v1/inboxes", json!({"name": "Site", "kind": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let key = inbox["settings"]["widget_key"].as_str().expect("widget key").to_string();
    (app, admin, inbox["id"].as_i64().expect("inbox id"), key, db)
}

async fn set_status(app: &TestApp, token: &str, user: i64, status: &str) {
    let (code, body) = app.send_json(Method::PUT, token, &format!("/api/v1/users/{user}/status"), json!({"status": status})).await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

async fn load(app: &TestApp, admin: &str, user: i64) -> i64 {
    let (_, u) = app.get_json(admin, &format!("/api/v1/users/{user}")).await;
    u["active_load"].as_i64().expect("active_load")
}

/// Waits until the conversation is assigned to `agent`; returns it.
async fn assigned_to(app: &TestApp, token: &str, conversation: i64, agent: i64) -> Value {
    for _ in 0..100 {
        let (status, c) = app.get_json(token, &format!("/api/v1/conversations/{conversation}")).await;
        if status == StatusCode::OK && c["assignee_id"].as_i64() == Some(agent) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("conversation {conversation} was not assigned to {agent}");
}

async fn other_tenant_admin(app: &TestApp, db: &std::path::Path) -> String {
    let mut settings = Settings::load(&Overrides { database_url: Some(format!("sqlite://{}?mode=rwc", db.display())), ..Default::default() })
        .expect("settings");
    settings.security.secrets_key = Some(crate::helpers::TEST_SECRETS_KEY.to_string().into());
    let store = switchboard_server::open_store(&settings).await.expect("store");
    let now = switchboard_server::time::now_ms();
    let tenant = store.create_tenant("Other", "other", now).await.expect("tenant");
    let user = switchboard_core::domain::NewUser {
        tenant_id: tenant.id,
        email: "admin-b@example.com".into(),
        name: "B".into(),
        role: switchboard_core::domain::Role::Admin,
        password_hash: switchboard_server::auth::hash_password("tenant-b-password").expect("hash"),
        capacity: 5,
    };
    store.create_user(user, now).await.expect("admin b");
    app.login("admin-b@example.com", "tenant-b-password").await
}

#[tokio::test]
async fn an_agent_transfers_to_another_with_a_note_the_customer_never_sees() {
    let (app, admin, inbox, key, db) = setup().await;
    let (ann, ann_token) = app.available_agent(&admin, "ann@example.com", 2).await;
    let (bob, bob_token) = app.available_agent(&admin, "bob@example.com", 2).await;
    set_status(&app, &bob_token, bob, "away").await;

    // The customer writes; the conversation goes to ann (bob is away).
    let mut widget = WidgetClient::connect(&app, json!({"inbox_id": inbox, "widget_key": key, "name": "Cleo"})).await;
    let sent = widget.request("message", json!({"client_message_id": "w-1", "text": "my order is late"})).await;
    assert_eq!(sent["ok"], true, "{sent}");
    let conversation = sent["message"]["conversation_id"].as_i64().expect("conversation id");
    assigned_to(&app, &ann_token, conversation, ann).await;
    set_status(&app, &bob_token, bob, "available").await;
    let path = format!("/api/v1/conversations/{conversation}/transfer");

    // Who may not: another agent (403), another tenant (404); nothing changes.
    let body = json!({"to": {"agent": bob}, "note": "stolen"});
    let (status, answer) = app.send_json(Method::POST, &bob_token, &path, body.clone()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{answer}");
    let (status, _) = app.send_json(Method::POST, &bob_token, &format!("/api/v1/conversations/{conversation}/notes"), json!({"text": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = other_tenant_admin(&app, &db).await;
    let (status, answer) = app.send_json(Method::POST, &other, &path, body).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!((load(&app, &admin, ann).await, load(&app, &admin, bob).await), (1, 0));
    // Bad bodies.
    let (status, _) = app.send_json(Method::POST, &ann_token, &path, json!({"to": {"queue": false}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app.send_json(Method::POST, &ann_token, &path, json!({"to": {"nowhere": 1}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Ann's picker lists bob (with his load) and not herself; bob may not see it.
    let targets_path = format!("/api/v1/conversations/{conversation}/transfer-targets");
    let (status, targets) = app.get_json(&ann_token, &targets_path).await;
    assert_eq!(status, StatusCode::OK, "{targets}");
    let listed: Vec<_> = targets["agents"].as_array().expect("agents").iter().map(|a| a["id"].as_i64()).collect();
    assert!(listed.contains(&Some(bob)) && !listed.contains(&Some(ann)), "{targets}");
    assert_eq!(app.get_json(&bob_token, &targets_path).await.0, StatusCode::FORBIDDEN);

    // Ann transfers to bob with a note.
    let note_text = "Refund approved by finance, just confirm the address";
    let (status, moved) = app.send_json(Method::POST, &ann_token, &path, json!({"to": {"agent": bob}, "note": note_text})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!((moved["conversation"]["assignee_id"].as_i64(), moved["conversation"]["state"].as_str()), (Some(bob), Some("assigned")));
    assert_eq!((moved["note"]["private"].as_bool(), moved["note"]["text"].as_str()), (Some(true), Some(note_text)));
    assert_eq!((load(&app, &admin, ann).await, load(&app, &admin, bob).await), (0, 1), "the slot moved");

    // Ann has let go of it; bob reads it with the note.
    let (status, _) = app.get_json(&ann_token, &format!("/api/v1/conversations/{conversation}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, messages) = app.get_json(&bob_token, &format!("/api/v1/conversations/{conversation}/messages")).await;
    assert_eq!(status, StatusCode::OK);
    let notes: Vec<_> = messages.as_array().expect("messages").iter().filter(|m| m["private"] == true).collect();
    assert_eq!(notes.len(), 1, "{messages}");
    assert_eq!(notes[0]["text"], note_text);
    let (_, events) = app.get_json(&bob_token, &format!("/api/v1/conversations/{conversation}/events")).await;
    let transferred: Vec<_> = events.as_array().expect("events").iter().filter(|e| e["kind"] == "transferred").collect();
    assert_eq!(transferred.len(), 1, "{events}");
    assert_eq!(transferred[0]["actor_user_id"].as_i64(), Some(ann));
    let detail: Value = serde_json::from_str(transferred[0]["detail"].as_str().expect("detail")).expect("detail json");
    assert_eq!(detail["to"], json!({"agent": bob}));

    // Bob adds a note of his own, then replies. The bus delivers in order, so once the widget
    // has the reply, it would have had both notes before it.
    let (status, own) = app.send_json(Method::POST, &bob_token, &format!("/api/v1/conversations/{conversation}/notes"), json!({"text": "customer sounds upset"})).await;
    assert_eq!((status, own["private"].as_bool()), (StatusCode::CREATED, Some(true)), "{own}");
    let (status, reply) = app.send_json(Method::POST, &bob_token, &format!("/api/v1/conversations/{conversation}/messages"), json!({"text": "Hi Cleo, I am on it"})).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    widget.poll_until(|w| w.messages().iter().any(|m| m["text"] == "Hi Cleo, I am on it")).await;
    assert!(widget.messages().iter().all(|m| m["private"] != true), "a note was pushed to the customer: {:?}", widget.messages());

    // Nor does the customer's resync return them.
    let synced = widget.request("sync", json!({"after": null})).await;
    assert_eq!(synced["ok"], true, "{synced}");
    let texts: Vec<_> = synced["messages"].as_array().expect("messages").iter().map(|m| m["text"].clone()).collect();
    assert_eq!(texts, vec![json!("my order is late"), json!("Hi Cleo, I am on it")]);
    // A page as small as one message skips the notes too.
    let first = synced["messages"][0]["id"].clone();
    let synced = widget.request("sync", json!({"after": first, "limit": 1})).await;
    assert_eq!(synced["messages"].as_array().map(|m| m.iter().map(|m| m["text"].clone()).collect::<Vec<_>>()), Some(vec![json!("Hi Cleo, I am on it")]));

    app.stop().await;
    let _ = std::fs::remove_file(&db);
}

#[tokio::test]
async fn supervisors_reassign_and_refusals_change_nothing() {
    let (app, admin, inbox, key, db) = setup().await;
    let (ann, _ann_token) = app.available_agent(&admin, "ann@example.com", 1).await;
    let (bob, bob_token) = app.available_agent(&admin, "bob@example.com", 1).await;
    set_status(&app, &bob_token, bob, "away").await;
    let (status, sup) = app
        .send_json(Method::POST, &admin, "/api/v1/users", json!({"email": "sue@example.com", "name": "Sue", "role": "supervisor", "password": "supervisor-pw-123"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sup}");
    let sue = app.login("sue@example.com", "supervisor-pw-123").await;
    let (_, team) = app.send_json(Method::POST, &admin, "/api/v1/teams", json!({"name": "Billing"})).await;
    let team = team["id"].as_i64().expect("team id");

    let mut widget = WidgetClient::connect(&app, json!({"inbox_id": inbox, "widget_key": key})).await;
    let sent = widget.request("message", json!({"client_message_id": "w-1", "text": "hello"})).await;
    let conversation = sent["message"]["conversation_id"].as_i64().expect("conversation id");
    let queued_at = assigned_to(&app, &sue, conversation, ann).await["queued_at"].clone();
    let path = format!("/api/v1/conversations/{conversation}/transfer");

    // Bob is away: refused with 409, nothing changed.
    let (status, answer) = app.send_json(Method::POST, &sue, &path, json!({"to": {"agent": bob}, "note": "n"})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{answer}");
    assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains("not available")), "{answer}");
    let (_, messages) = app.get_json(&sue, &format!("/api/v1/conversations/{conversation}/messages")).await;
    assert_eq!(messages.as_array().map(Vec::len), Some(1), "no note was stored: {messages}");
    assert_eq!(load(&app, &admin, ann).await, 1);
    let (status, _) = app.send_json(Method::POST, &sue, &path, json!({"to": {"agent": 999_999}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.send_json(Method::POST, &sue, &path, json!({"to": {"team": 999_999}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The supervisor moves it into the Billing queue: ann's slot is freed, the customer keeps
    // their place, and with nobody in Billing it waits.
    let (status, moved) = app.send_json(Method::POST, &sue, &path, json!({"to": {"team": team}})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let c = &moved["conversation"];
    assert_eq!((c["state"].as_str(), c["team_id"].as_i64(), c["assignee_id"].as_i64()), (Some("queued"), Some(team), None));
    assert_eq!(c["queued_at"], queued_at, "the customer keeps their place");
    assert_eq!(load(&app, &admin, ann).await, 0);
    // Bob joins Billing and becomes available: the dispatcher hands it to him.
    let (status, _) = app.send_json(Method::POST, &admin, &format!("/api/v1/teams/{team}/members"), json!({"user_id": bob})).await;
    assert!(status.is_success());
    set_status(&app, &bob_token, bob, "available").await;
    assigned_to(&app, &sue, conversation, bob).await;

    // Back to the queue (the holder may): it goes to the other Billing agent with room, not back
    // to bob, who still has room too. Then resolved: no more transfers.
    let (status, _) = app.send_json(Method::POST, &admin, &format!("/api/v1/teams/{team}/members"), json!({"user_id": ann})).await;
    assert!(status.is_success());
    let (status, moved) = app.send_json(Method::POST, &bob_token, &path, json!({"to": {"queue": true}})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["conversation"]["assignee_id"].as_i64(), Some(ann), "placed at once with the other agent: {moved}");
    assert_eq!((load(&app, &admin, ann).await, load(&app, &admin, bob).await), (1, 0));
    let (status, _) = app.send_json(Method::POST, &sue, &format!("/api/v1/conversations/{conversation}/resolve"), json!({"reason": "resolved"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = app.send_json(Method::POST, &sue, &path, json!({"to": {"queue": true}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, _) = app.send_json(Method::POST, &sue, &format!("/api/v1/conversations/{conversation}/notes"), json!({"text": "late"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!((load(&app, &admin, ann).await, load(&app, &admin, bob).await), (0, 0));

    app.stop().await;
    let _ = std::fs::remove_file(&db);
}
