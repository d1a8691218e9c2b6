//! The unified gateway through the real server: a Telegram inbox fed by webhook and by polling,
//! replies sent to a local fake of the Bot API, and refusals that store nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::routing::post;
use axum::{Json, Router};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

const BOT_TOKEN: &str = "123456:TEST-token";
pub(crate) const SECRET: &str = "webhook-secret-value";

/// A fake Telegram Bot API: records sendMessage calls and serves getUpdates from a list,
/// honouring `offset` the way Telegram does.
#[derive(Clone, Default)]
pub(crate) struct FakeTelegram {
    pub(crate) sent: Arc<Mutex<Vec<Value>>>,
    /// When set, sendMessage answers 500 (and counts the attempt).
    failing: Arc<std::sync::atomic::AtomicBool>,
    send_attempts: Arc<std::sync::atomic::AtomicUsize>,
    updates: Arc<Mutex<Vec<Value>>>,
    offsets_seen: Arc<Mutex<Vec<i64>>>,
}

async fn bot_method(
    State(fake): State<FakeTelegram>,
    Path((token, method)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: Option<Json<Value>>,
) -> Json<Value> {
    if token != format!("bot{BOT_TOKEN}") {
        return Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"}));
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    match method.as_str() {
        "sendMessage" if fake.failing.load(std::sync::atomic::Ordering::SeqCst) => {
            fake.send_attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Json(json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}))
        }
        "sendMessage" => {
            fake.send_attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert!(body["chat_id"].is_number() || body["chat_id"].is_string(), "chat_id missing: {body}");
            assert!(body["text"].is_string(), "text missing: {body}");
            let mut sent = fake.sent.lock().expect("lock");
            sent.push(body.clone());
            let n = i64::try_from(sent.len()).unwrap_or(0);
            Json(json!({"ok": true, "result": {"message_id": 1000 + n, "date": 1_763_700_000, "chat": {"id": body["chat_id"], "type": "private"}, "text": body["text"]}}))
        }
        "getUpdates" => {
            let offset = body.get("offset").and_then(Value::as_i64).or_else(|| query.get("offset").and_then(|o| o.parse().ok())).unwrap_or(0);
            fake.offsets_seen.lock().expect("lock").push(offset);
            let pending: Vec<Value> = fake
                .updates
                .lock()
                .expect("lock")
                .iter()
                .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                .cloned()
                .collect();
            if pending.is_empty() {
                // Long poll, shortened for the test.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Json(json!({"ok": true, "result": pending}))
        }
        other => Json(json!({"ok": false, "error_code": 404, "description": format!("no method {other}")})),
    }
}

pub(crate) async fn start_fake() -> (String, FakeTelegram) {
    let fake = FakeTelegram::default();
    let router = Router::new().route("/{token}/{method}", post(bot_method).get(bot_method)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), fake)
}

pub(crate) fn update(update_id: i64, chat_id: i64, message_id: i64, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": 1_763_700_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
            "from": {"id": chat_id, "is_bot": false, "first_name": "Ada"},
            "text": text
        }
    })
}

pub(crate) async fn telegram_inbox(app: &TestApp, admin: &str, base: &str, mode: &str) -> i64 {
    let (status, body) = app
        .send_json(
            Method::POST,
            admin,
            "/api/v1/inboxes",
            json!({
                "name": format!("Telegram {mode}"),
                "kind": "telegram",
                "settings": {"api_base_url": base, "mode": mode, "poll_timeout_secs": 1},
                "secrets": {"bot_token": BOT_TOKEN, "webhook_secret_token": SECRET},
            }),
        )
        .await;
    assert_eq!(status, 201, "create telegram inbox: {body}");
    body["id"].as_i64().expect("inbox id")
}

async fn messages_of_inbox(app: &TestApp, admin: &str, inbox: i64) -> Vec<Value> {
    let (_, convs) = app.get_json(admin, &format!("/api/v1/conversations?inbox_id={inbox}&limit=100")).await;
    let mut all = Vec::new();
    for c in convs.as_array().cloned().unwrap_or_default() {
        let id = c["id"].as_i64().expect("conversation id");
        let (_, msgs) = app.get_json(admin, &format!("/api/v1/conversations/{id}/messages")).await;
        all.extend(msgs.as_array().cloned().unwrap_or_default());
    }
    all
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_webhook_verifies_dedupes_and_replies_go_out() {
    let (base, fake) = start_fake().await;
    let app = spawn_app_with(|s| {
        s.outbox.poll_interval_ms = 100;
        s.outbox.base_backoff_ms = 100;
    })
    .await;
    let admin = app.admin_token().await;
    let inbox = telegram_inbox(&app, &admin, &base, "webhook").await;
    let hook = app.url(&format!("/webhooks/{inbox}"));
    let body = update(1, 4242, 7, "Hello from Telegram").to_string();

    // A forged secret token is refused and stores nothing.
    let r = app.client.post(&hook).header("x-telegram-bot-api-secret-token", "forged").header("content-type", "application/json").body(body.clone()).send().await.expect("post");
    assert_eq!(r.status(), 401);
    let err: Value = r.json().await.expect("json");
    assert_eq!(err["error"]["code"], "invalid_signature");
    assert!(messages_of_inbox(&app, &admin, inbox).await.is_empty(), "nothing stored on a forged request");

    // The genuine update, delivered twice (Telegram redelivers until it gets a 200): one message.
    for _ in 0..2 {
        let r = app.client.post(&hook).header("x-telegram-bot-api-secret-token", SECRET).header("content-type", "application/json").body(body.clone()).send().await.expect("post");
        assert_eq!(r.status(), 200);
    }
    let stored = messages_of_inbox(&app, &admin, inbox).await;
    assert_eq!(stored.len(), 1, "redelivery stored once: {stored:?}");
    assert_eq!(stored[0]["text"], "Hello from Telegram");
    assert_eq!(stored[0]["platform_message_id"], "4242:7");

    // An agent takes the conversation and replies; the outbox sends it through the Bot API.
    let (_, agent) = app.available_agent(&admin, "tg-agent@example.com", 3).await;
    let conversation = stored[0]["conversation_id"].as_i64().expect("conversation id");
    wait_until("assignment", || async {
        let (_, c) = app.get_json(&admin, &format!("/api/v1/conversations/{conversation}")).await;
        c["state"] == "assigned"
    })
    .await;
    let (status, reply) = app
        .send_json(Method::POST, &agent, &format!("/api/v1/conversations/{conversation}/messages"), json!({"text": "Hi Ada, how can I help?"}))
        .await;
    assert!(status.is_success(), "reply: {reply}");
    wait_until("the reply reaching Telegram", || async { !fake.sent.lock().expect("lock").is_empty() }).await;
    let sent = fake.sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["chat_id"].to_string().trim_matches('"'), "4242");
    assert_eq!(sent[0]["text"], "Hi Ada, how can I help?");
    // The platform's id is recorded and the message marked sent.
    let reply_id = reply["id"].as_i64().expect("reply id");
    wait_until("the reply marked sent", || async {
        let msgs = messages_of_inbox(&app, &admin, inbox).await;
        msgs.iter().any(|m| m["id"].as_i64() == Some(reply_id) && m["status"] == "sent" && m["platform_message_id"] == "4242:1001")
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_polling_ingests_once_and_persists_the_offset() {
    let (base, fake) = start_fake().await;
    fake.updates.lock().expect("lock").extend([update(500, 77, 1, "first"), update(501, 77, 2, "second")]);
    let app = spawn_app_with(|_| {}).await;
    let admin = app.admin_token().await;
    let inbox = telegram_inbox(&app, &admin, &base, "polling").await;

    wait_until("both polled messages stored", || async { messages_of_inbox(&app, &admin, inbox).await.len() == 2 }).await;
    // The next poll asks for what comes after the last update: the offset was saved.
    wait_until("the poller to ask from offset 502", || async { fake.offsets_seen.lock().expect("lock").contains(&502) }).await;
    fake.updates.lock().expect("lock").push(update(502, 77, 3, "third"));
    wait_until("the third message", || async { messages_of_inbox(&app, &admin, inbox).await.len() == 3 }).await;
    // Updates re-served by the fake (everything from an old offset) are not stored twice.
    let texts: Vec<String> = messages_of_inbox(&app, &admin, inbox).await.iter().map(|m| m["text"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(texts, ["first", "second", "third"]);
    app.stop().await;
}

/// Every platform adapter, reached through the real webhook route: a request with a forged or
/// missing signature is refused with 401 `invalid_signature` and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_webhooks_are_refused_for_every_platform() {
    let app = spawn_app_with(|_| {}).await;
    let admin = app.admin_token().await;
    let secrets = json!({
        "bot_token": BOT_TOKEN, "webhook_secret_token": SECRET,
        "app_secret": "meta-app-secret", "verify_token": "meta-verify", "access_token": "meta-access",
        "channel_secret": "line-channel-secret", "channel_access_token": "line-access",
        "token": "wechat-token", "encoding_aes_key": "",
    });
    let body = r#"{"object":"page","entry":[],"events":[],"update_id":1,"message":{"message_id":1,"chat":{"id":1},"text":"hi"}}"#;
    for (kind, forged_header) in [
        ("telegram", ("x-telegram-bot-api-secret-token", "forged")),
        ("whatsapp", ("x-hub-signature-256", "sha256=0000")),
        ("messenger", ("x-hub-signature-256", "sha256=0000")),
        ("instagram", ("x-hub-signature-256", "sha256=0000")),
        ("line", ("x-line-signature", "Zm9yZ2Vk")),
        ("wechat", ("x-unused", "forged")),
    ] {
        let (status, inbox) = app
            .send_json(Method::POST, &admin, "/api/v1/inboxes", json!({"name": kind, "kind": kind, "settings": {"app_id": "wx123", "phone_number_id": "1"}, "secrets": secrets}))
            .await;
        assert_eq!(status, 201, "create {kind} inbox: {inbox}");
        let id = inbox["id"].as_i64().expect("inbox id");
        // WeChat signs the query string; a wrong signature there is its forgery.
        let url = app.url(&format!("/webhooks/{id}?signature=forged&timestamp=1&nonce=2"));
        for with_header in [true, false] {
            let mut request = app.client.post(&url).header("content-type", "application/json").body(body);
            if with_header {
                request = request.header(forged_header.0, forged_header.1);
            }
            let r = request.send().await.expect("post");
            assert_eq!(r.status(), 401, "{kind} (header present: {with_header}) must refuse a forged request");
            let err: Value = r.json().await.expect("json");
            assert_eq!(err["error"]["code"], "invalid_signature", "{kind}");
        }
        assert!(messages_of_inbox(&app, &admin, id).await.is_empty(), "{kind}: nothing stored");
    }
    app.stop().await;
}

/// A platform that keeps failing opens the inbox's circuit: after five failed sends the node
/// stops calling it (the outbox defers instead), and supervisors see why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_platform_opens_the_circuit_and_shows_in_health() {
    let (base, fake) = start_fake().await;
    fake.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let app = spawn_app_with(|s| {
        s.outbox.poll_interval_ms = 50;
        s.outbox.base_backoff_ms = 50;
        s.outbox.max_backoff_ms = 200;
    })
    .await;
    let admin = app.admin_token().await;
    let inbox = telegram_inbox(&app, &admin, &base, "webhook").await;
    let body = update(1, 99, 1, "hello?").to_string();
    let r = app.client.post(app.url(&format!("/webhooks/{inbox}"))).header("x-telegram-bot-api-secret-token", SECRET).header("content-type", "application/json").body(body).send().await.expect("post");
    assert_eq!(r.status(), 200);
    let (_, agent) = app.available_agent(&admin, "cb-agent@example.com", 3).await;
    let conversation = messages_of_inbox(&app, &admin, inbox).await[0]["conversation_id"].as_i64().expect("conversation");
    wait_until("assignment", || async {
        let (_, c) = app.get_json(&admin, &format!("/api/v1/conversations/{conversation}")).await;
        c["state"] == "assigned"
    })
    .await;
    let (status, _) = app.send_json(Method::POST, &agent, &format!("/api/v1/conversations/{conversation}/messages"), json!({"text": "are you there?"})).await;
    assert!(status.is_success());

    wait_until("the circuit to open", || async {
        let (_, health) = app.get_json(&admin, "/api/v1/supervisor/channels").await;
        health.as_array().is_some_and(|h| h.iter().any(|v| v["inbox_id"] == inbox && v["state"] == "open"))
    })
    .await;
    let attempts = fake.send_attempts.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(attempts, 5, "five failures open the circuit");
    // While open, the outbox keeps the reply pending and the platform is left alone.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fake.send_attempts.load(std::sync::atomic::Ordering::SeqCst), attempts, "no calls while the circuit is open");
    let (_, health) = app.get_json(&admin, "/api/v1/supervisor/channels").await;
    let view = health.as_array().and_then(|h| h.iter().find(|v| v["inbox_id"] == inbox).cloned()).expect("health of the inbox");
    assert!(view["last_error"].as_str().is_some_and(|e| e.contains("500") || e.contains("Internal")), "{view}");
    assert_eq!(view["success_rate"], 0.0);
    let (_, pending) = app.get_json(&admin, "/api/v1/outbox?status=pending").await;
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "the reply is kept, not dead-lettered: {pending}");
    app.stop().await;
}
