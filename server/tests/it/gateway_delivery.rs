//! Gateway delivery through the real server against local fakes of the platforms: the fallback
//! inbox while a circuit is open, per-chat rate limits, LINE reply tokens, the WeChat access
//! token shared by two nodes on Redis, durable inbound media jobs across a restart, and
//! re-signing expired media links.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp, TEST_MEDIA_SIGNING_KEY};

/// One request a fake platform received, and when.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

impl Call {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A fake of every platform API this file needs: it records each request and answers as the
/// platform would; paths containing a string in `failing` answer 500.
#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
    failing: Arc<Mutex<HashSet<String>>>,
    token_fetches: Arc<AtomicUsize>,
}

impl Fake {
    fn calls_to(&self, needle: &str) -> Vec<Call> {
        self.calls.lock().expect("lock").iter().filter(|c| c.path.contains(needle)).cloned().collect()
    }

    fn fail(&self, needle: &str, on: bool) {
        let mut failing = self.failing.lock().expect("lock");
        if on {
            failing.insert(needle.to_owned());
        } else {
            failing.remove(needle);
        }
    }
}

async fn answer(State(fake): State<Fake>, _method: HttpMethod, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    fake.calls.lock().expect("lock").push(Call {
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    if fake.failing.lock().expect("lock").iter().any(|f| path.contains(f.as_str())) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"ok": false, "error_code": 500, "description": "Internal Server Error"})),
        )
            .into_response();
    }
    let n = fake.calls.lock().expect("lock").len();
    let answer = if path.ends_with("/getFile") {
        json!({"ok": true, "result": {"file_id": "AgAD-big", "file_unique_id": "u", "file_path": "photos/p.png"}})
    } else if path.starts_with("/file/") {
        return ([("content-type", "image/png")], png()).into_response();
    } else if path.starts_with("/bot") {
        json!({"ok": true, "result": {"message_id": n, "date": 1, "chat": {"id": 99, "type": "private"}}})
    } else if path == "/cgi-bin/token" {
        fake.token_fetches.fetch_add(1, Ordering::SeqCst);
        // Slow, like a real token endpoint: a second node that does not wait for the first
        // one's fetch would call here too.
        tokio::time::sleep(Duration::from_millis(300)).await;
        json!({"access_token": "WX-TOKEN-1", "expires_in": 7200})
    } else if path == "/cgi-bin/message/custom/send" {
        json!({"errcode": 0, "errmsg": "ok"})
    } else if path.starts_with("/v2/bot/message/") {
        json!({"sentMessages": [{"id": format!("L{n}"), "quoteToken": "q"}]})
    } else {
        json!({})
    };
    axum::Json(answer).into_response()
}

async fn start_fake() -> (String, Fake) {
    let fake = Fake::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = Router::new().fallback(answer).with_state(fake.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, fake)
}

fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend(std::iter::repeat_n(7u8, 200));
    bytes
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Polls until `check` yields a value.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn create_inbox(app: &TestApp, admin: &str, body: Value) -> i64 {
    let (status, inbox) = app.send_json(Method::POST, admin, "/api/v1/inboxes", body).await;
    assert_eq!(status, 201, "create inbox: {inbox}");
    inbox["id"].as_i64().expect("inbox id")
}

async fn telegram(app: &TestApp, admin: &str, name: &str, base: &str, extra: Value) -> i64 {
    let mut settings = json!({"api_base_url": base, "mode": "webhook"});
    if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    create_inbox(app, admin, json!({"name": name, "kind": "telegram", "settings": settings, "secrets": {"bot_token": "1:T", "webhook_secret_token": "tg-secret"}})).await
}

async fn telegram_update(app: &TestApp, inbox: i64, update: Value) {
    let r = app
        .client
        .post(app.url(&format!("/webhooks/{inbox}")))
        .header("x-telegram-bot-api-secret-token", "tg-secret")
        .json(&update)
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200, "webhook");
}

fn text_update(update_id: i64, chat: i64, text: &str) -> Value {
    json!({"update_id": update_id, "message": {"message_id": update_id, "date": 1_763_700_000,
        "chat": {"id": chat, "type": "private", "first_name": "Ada"}, "from": {"id": chat, "is_bot": false, "first_name": "Ada"}, "text": text}})
}

/// The conversation of the inbox's first message, once an agent holds it.
async fn assigned_conversation(app: &TestApp, admin: &str, inbox: i64) -> i64 {
    wait_for("an assigned conversation", || async {
        let (_, list) = app.get_json(admin, &format!("/api/v1/conversations?inbox_id={inbox}")).await;
        list.as_array().and_then(|l| l.first()).filter(|c| c["state"] == "assigned").and_then(|c| c["id"].as_i64())
    })
    .await
}

async fn reply(app: &TestApp, agent: &str, conversation: i64, text: &str) {
    let (status, body) = app
        .send_json(
            Method::POST,
            agent,
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": text}),
        )
        .await;
    assert!(status.is_success(), "reply: {status} {body}");
}

fn fast_outbox(s: &mut switchboard_server::settings::Settings) {
    s.outbox.poll_interval_ms = 50;
    s.outbox.base_backoff_ms = 50;
    s.outbox.max_backoff_ms = 200;
}

/// The primary's platform fails, its circuit opens, and the reply goes out through the fallback
/// inbox; the message records which inbox delivered it and health shows the fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_sends_through_the_fallback_inbox() {
    let (primary_base, primary) = start_fake().await;
    let (fallback_base, fallback) = start_fake().await;
    primary.fail("/sendMessage", true);
    let app = spawn_app_with(fast_outbox).await;
    let admin = app.admin_token().await;
    let backup = telegram(&app, &admin, "Backup bot", &fallback_base, json!({})).await;
    let main = telegram(&app, &admin, "Main bot", &primary_base, json!({"fallback_inbox_id": backup})).await;

    // The setting is validated: the inbox itself, an unknown inbox, another kind: 422.
    let api = create_inbox(&app, &admin, json!({"name": "API", "kind": "api", "settings": {}})).await;
    for bad in [json!(main), json!(999_999), json!(api), json!("x")] {
        let (status, body) = app
            .send_json(
                Method::PATCH,
                &admin,
                &format!("/api/v1/inboxes/{main}"),
                json!({"settings": {"fallback_inbox_id": bad}}),
            )
            .await;
        assert_eq!(status, 422, "fallback {bad}: {body}");
    }
    let (_, unchanged) = app.get_json(&admin, &format!("/api/v1/inboxes/{main}")).await;
    assert_eq!(unchanged["settings"]["fallback_inbox_id"], backup, "a refused change changes nothing");

    telegram_update(&app, main, text_update(1, 99, "hello?")).await;
    let (_, agent) = app.available_agent(&admin, "fb-agent@example.com", 3).await;
    let conversation = assigned_conversation(&app, &admin, main).await;
    reply(&app, &agent, conversation, "sent by the backup").await;

    wait_until("the fallback to deliver", || async { !fallback.calls_to("/sendMessage").is_empty() }).await;
    assert_eq!(
        primary.calls_to("/sendMessage").len(),
        5,
        "five failures open the circuit, then the primary is left alone"
    );
    let sent = fallback.calls_to("/sendMessage")[0].json();
    assert_eq!(sent["chat_id"], 99, "the customer's Telegram id reaches them through the other bot");
    assert_eq!(sent["text"], "sent by the backup");
    wait_until("the delivery to be recorded", || async {
        let (_, messages) = app.get_json(&admin, &format!("/api/v1/conversations/{conversation}/messages")).await;
        messages.as_array().is_some_and(|m| {
            m.iter().any(|m| {
                m["text"] == "sent by the backup" && m["delivered_via_inbox_id"] == backup && m["status"] == "sent"
            })
        })
    })
    .await;
    let (_, health) = app.get_json(&admin, "/api/v1/supervisor/channels").await;
    let view = health
        .as_array()
        .and_then(|h| h.iter().find(|v| v["inbox_id"] == main).cloned())
        .expect("health of the primary");
    assert_eq!(view["state"], "open");
    assert_eq!(view["fallback_inbox_id"], backup);
    assert_eq!(view["fallback_active"], true);
    assert_eq!(view["sent_via_fallback"], 1);
    app.stop().await;
}

/// Telegram allows about one message a second to a chat: five quick replies leave one by one,
/// in order, none dropped, and never two within one refill of the chat's bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_one_chat_leave_no_faster_than_its_limit() {
    let (base, fake) = start_fake().await;
    let app = spawn_app_with(fast_outbox).await;
    let admin = app.admin_token().await;
    let inbox =
        telegram(&app, &admin, "Limited", &base, json!({"rate_limits": {"chat_per_sec": 1, "chat_burst": 1}})).await;
    let (status, body) = app
        .send_json(
            Method::PATCH,
            &admin,
            &format!("/api/v1/inboxes/{inbox}"),
            json!({"settings": {"rate_limits": {"chat_per_sec": 0}}}),
        )
        .await;
    assert_eq!(status, 422, "a zero rate is refused: {body}");
    let (status, body) = app
        .send_json(
            Method::PATCH,
            &admin,
            &format!("/api/v1/inboxes/{inbox}"),
            json!({"settings": {"rate_limits": {"per_minute": 5}}}),
        )
        .await;
    assert_eq!(status, 422, "an unknown limit is refused: {body}");

    telegram_update(&app, inbox, text_update(1, 99, "hi")).await;
    let (_, agent) = app.available_agent(&admin, "rl-agent@example.com", 3).await;
    let conversation = assigned_conversation(&app, &admin, inbox).await;
    for i in 1..=5 {
        reply(&app, &agent, conversation, &format!("reply {i}")).await;
    }
    wait_until("all five replies", || async { fake.calls_to("/sendMessage").len() == 5 }).await;
    let sent = fake.calls_to("/sendMessage");
    let texts: Vec<String> = sent.iter().map(|c| c.json()["text"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(texts, (1..=5).map(|i| format!("reply {i}")).collect::<Vec<_>>(), "in the order written, none dropped");
    // One a second with a burst of one: the k-th send is granted no sooner than (k-1) s after
    // the first, so within the first second after the first send arrived at most one more can
    // arrive (only the first send's own delay, far below a second, is slack); unlimited, all
    // five would be there.
    let first = sent[0].at;
    let early = sent.iter().filter(|c| c.at.duration_since(first) < Duration::from_secs(1)).count();
    assert!(early <= 2, "{early} sends within the first second");
    // And nothing was spent from the retry budget: every entry delivered on its first attempt.
    let (_, delivered) = app.get_json(&admin, "/api/v1/outbox?status=delivered").await;
    let attempts: Vec<i64> =
        delivered.as_array().into_iter().flatten().map(|e| e["attempts"].as_i64().unwrap_or(0)).collect();
    assert_eq!(attempts, vec![1; 5], "deferrals are not attempts");
    app.stop().await;
}

/// A LINE reply token is used once, by the first reply within its minute; later replies push
/// with an X-Line-Retry-Key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_replies_use_the_reply_token_once_then_push() {
    let (base, fake) = start_fake().await;
    let app = spawn_app_with(fast_outbox).await;
    let admin = app.admin_token().await;
    let inbox = create_inbox(
        &app,
        &admin,
        json!({"name": "LINE", "kind": "line", "settings": {"api_base_url": base, "data_api_base_url": base},
               "secrets": {"channel_secret": "line-secret", "channel_access_token": "line-access"}}),
    )
    .await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let body = json!({"destination": "Ubot", "events": [{"type": "message", "mode": "active", "timestamp": now,
        "webhookEventId": "01HTEST", "deliveryContext": {"isRedelivery": false}, "replyToken": "reply-token-1",
        "source": {"type": "user", "userId": "U4af4980629"}, "message": {"id": "468789577898262530", "type": "text", "quoteToken": "q", "text": "hello"}}]})
    .to_string();
    let signature = switchboard_gateway::line::sign("line-secret", body.as_bytes());
    let r = app
        .client
        .post(app.url(&format!("/webhooks/{inbox}")))
        .header("x-line-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200);
    let (_, agent) = app.available_agent(&admin, "line-agent@example.com", 3).await;
    let conversation = assigned_conversation(&app, &admin, inbox).await;
    reply(&app, &agent, conversation, "first").await;
    wait_until("the first reply", || async { fake.calls_to("/v2/bot/message/").len() == 1 }).await;
    reply(&app, &agent, conversation, "second").await;
    wait_until("the second reply", || async { fake.calls_to("/v2/bot/message/").len() == 2 }).await;

    let calls = fake.calls_to("/v2/bot/message/");
    assert_eq!(calls[0].path, "/v2/bot/message/reply", "the first reply takes the token");
    assert_eq!(calls[0].json()["replyToken"], "reply-token-1");
    assert_eq!(calls[0].json()["messages"][0]["text"], "first");
    assert_eq!(calls[1].path, "/v2/bot/message/push", "the token works once: the next reply pushes");
    assert_eq!(calls[1].json()["to"], "U4af4980629");
    assert!(calls[1].headers.get("x-line-retry-key").is_some_and(|v| v.len() == 36), "push carries a retry key");
    app.stop().await;
}

/// Two nodes on one Redis, each with a WeChat inbox of the same account, reply at the same
/// time: the token endpoint is called once, and both replies carry that token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_fetch_the_wechat_token_once() {
    let redis = std::env::var("SWITCHBOARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if switchboard_bus::RedisBus::connect(&redis, "sb-probe:").await.is_err() {
        eprintln!("skipped: no Redis at {redis}");
        return;
    }
    let (base, fake) = start_fake().await;
    let prefix = format!("sbtest:{:016x}:", rand::random::<u64>());
    let mut nodes = Vec::new();
    for node in ["node-a", "node-b"] {
        let (redis, prefix) = (redis.clone(), prefix.clone());
        nodes.push(
            spawn_app_with(move |s| {
                fast_outbox(s);
                s.node_id = Some(node.into());
                s.redis_url = Some(redis.into());
                s.redis_prefix = prefix;
            })
            .await,
        );
    }
    let mut conversations = Vec::new();
    for (n, app) in nodes.iter().enumerate() {
        let admin = app.admin_token().await;
        let inbox = create_inbox(
            app,
            &admin,
            json!({"name": "WeChat", "kind": "wechat", "settings": {"api_base_url": base, "app_id": "wx-shared"},
                   "secrets": {"token": "wx-verify", "app_secret": "wx-secret", "encoding_aes_key": ""}}),
        )
        .await;
        // A current timestamp: WeChat's is signed, and old ones are refused as replays.
        let (timestamp, nonce) = ((switchboard_server::time::now_ms() / 1000).to_string(), format!("nonce{n}"));
        let signature = switchboard_gateway::wechat::signature(&["wx-verify", &timestamp, &nonce]);
        let xml = format!("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[OPENID_{n}]]></FromUserName><CreateTime>1763700000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>{}</MsgId></xml>", 1000 + n);
        let r = app
            .client
            .post(app.url(&format!("/webhooks/{inbox}?signature={signature}&timestamp={timestamp}&nonce={nonce}")))
            .body(xml)
            .send()
            .await
            .expect("webhook");
        assert_eq!(r.status(), 200, "wechat webhook");
        let (_, agent) = app.available_agent(&admin, "wx-agent@example.com", 3).await;
        let conversation = assigned_conversation(app, &admin, inbox).await;
        conversations.push((agent, conversation));
    }
    let (a, b) = (&nodes[0], &nodes[1]);
    tokio::join!(
        reply(a, &conversations[0].0, conversations[0].1, "from node A"),
        reply(b, &conversations[1].0, conversations[1].1, "from node B")
    );
    wait_until("both replies", || async { fake.calls_to("/cgi-bin/message/custom/send").len() == 2 }).await;
    assert_eq!(fake.token_fetches.load(Ordering::SeqCst), 1, "one token fetch for the account across both nodes");
    for call in fake.calls_to("/cgi-bin/message/custom/send") {
        assert!(call.query.contains("access_token=WX-TOKEN-1"), "{}", call.query);
    }
    for app in nodes {
        app.stop().await;
    }
}

/// An inbound photo whose download keeps failing stays a placeholder in a durable job; after a
/// restart (a new server on the same database) the job runs again and links the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_media_jobs_survive_a_restart() {
    let (base, fake) = start_fake().await;
    fake.fail("/getFile", true);
    let db = std::env::temp_dir().join(format!(
        "switchboard-gw-media-{}-{:x}.db",
        std::process::id(),
        rand::random::<u32>()
    ));
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let tune = |url: String| {
        move |s: &mut switchboard_server::settings::Settings| {
            fast_outbox(s);
            s.outbox.max_attempts = 1_000;
            s.database_url = Some(url.into());
        }
    };
    let app = spawn_app_with(tune(url.clone())).await;
    let admin = app.admin_token().await;
    let inbox = telegram(&app, &admin, "Photos", &base, json!({})).await;
    telegram_update(&app, inbox, json!({"update_id": 5, "message": {"message_id": 5, "date": 1_763_700_000,
        "chat": {"id": 77, "type": "private", "first_name": "Ada"}, "from": {"id": 77, "is_bot": false, "first_name": "Ada"},
        "photo": [{"file_id": "AgAD-big", "file_unique_id": "u2", "width": 900, "height": 600}]}}))
    .await;
    wait_until("failed download attempts", || async { fake.calls_to("/getFile").len() >= 2 }).await;
    let (_, conversations) = app.get_json(&admin, &format!("/api/v1/conversations?inbox_id={inbox}")).await;
    let conversation = conversations[0]["id"].as_i64().expect("conversation");
    let (_, messages) = app.get_json(&admin, &format!("/api/v1/conversations/{conversation}/messages")).await;
    assert_eq!(messages[0]["attachments"][0]["kind"], "image");
    assert!(messages[0]["attachments"][0]["url"].is_null(), "a placeholder until the file lands: {}", messages[0]);
    let (_, pending) = app.get_json(&admin, "/api/v1/outbox?status=pending").await;
    assert!(
        pending.as_array().is_some_and(|p| p
            .iter()
            .any(|e| e["kind"] == "media_fetch" && e["payload"]["refs"][0]["ref"] == "AgAD-big")),
        "{pending}"
    );
    app.stop().await;

    // The platform recovers while no node runs; the next node finds the job and finishes it.
    fake.fail("/getFile", false);
    let restarted = spawn_app_with(tune(url)).await;
    let admin = restarted.admin_token().await;
    let link = wait_for("the photo to be linked", || async {
        let (_, messages) = restarted.get_json(&admin, &format!("/api/v1/conversations/{conversation}/messages")).await;
        messages[0]["attachments"][0]["url"].as_str().map(str::to_owned)
    })
    .await;
    let r = restarted.client.get(restarted.url(&link)).send().await.expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), png());
    restarted.stop().await;
    let _ = std::fs::remove_file(&db);
}

/// An expired link is refused with 410 media_link_expired and traded for a fresh one; a link
/// of another tenant is not found, a forged one is not a link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_links_are_resigned_on_demand() {
    let app = spawn_app_with(|_| {}).await;
    let admin = app.admin_token().await;
    let part = reqwest::multipart::Part::bytes(png()).file_name("p.png");
    let r = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&admin)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload");
    let uploaded: Value = r.json().await.expect("json");
    let parsed = switchboard_media::parse_media_url(uploaded["url"].as_str().expect("url")).expect("ours");
    let signer = switchboard_media::UrlSigner::new(TEST_MEDIA_SIGNING_KEY.as_bytes());
    let expired = signer.sign("", parsed.tenant, &parsed.sha256, Some("p.png"), 1_000);
    let r = app.client.get(app.url(&expired)).send().await.expect("download");
    assert_eq!(r.status(), 410);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "media_link_expired");

    let (status, fresh) = app.send_json(Method::POST, &admin, "/api/v1/media/links", json!({"url": expired})).await;
    assert_eq!(status, 200, "{fresh}");
    let r = app.client.get(app.url(fresh["url"].as_str().expect("url"))).send().await.expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), png());

    let forged = expired.replace("sig=", "sig=00");
    let (status, body) = app.send_json(Method::POST, &admin, "/api/v1/media/links", json!({"url": forged})).await;
    assert_eq!(status, 422, "{body}");
    let other_tenant = signer.sign("", parsed.tenant + 1000, &parsed.sha256, None, 1_000);
    let (status, body) = app.send_json(Method::POST, &admin, "/api/v1/media/links", json!({"url": other_tenant})).await;
    assert_eq!(status, 404, "{body}");
    app.stop().await;
}

/// The account budget spans chats: replies to two customers share the inbox's per-account
/// bucket (the per-chat budgets here are generous), and each chat keeps its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_several_chats_share_the_account_limit() {
    let (base, fake) = start_fake().await;
    let app = spawn_app_with(fast_outbox).await;
    let admin = app.admin_token().await;
    let limits =
        json!({"rate_limits": {"chat_per_sec": 100, "chat_burst": 100, "account_per_sec": 1, "account_burst": 1}});
    let inbox = telegram(&app, &admin, "Account limited", &base, limits).await;
    let (_, agent) = app.available_agent(&admin, "acct-agent@example.com", 5).await;
    let mut conversations = Vec::new();
    for (i, chat) in [(1, 501), (2, 502)] {
        telegram_update(&app, inbox, text_update(i, chat, "hi")).await;
        let id = wait_for("the conversation to be assigned", || async {
            let (_, list) = app.get_json(&admin, &format!("/api/v1/conversations?inbox_id={inbox}")).await;
            let assigned: Vec<i64> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["state"] == "assigned")
                .filter_map(|c| c["id"].as_i64())
                .collect();
            assigned.into_iter().find(|id| !conversations.contains(id))
        })
        .await;
        conversations.push(id);
    }
    for round in 1..=3 {
        for (n, conversation) in conversations.iter().enumerate() {
            reply(&app, &agent, *conversation, &format!("chat {n} reply {round}")).await;
        }
    }
    wait_until("all six replies", || async { fake.calls_to("/sendMessage").len() == 6 }).await;
    let sent = fake.calls_to("/sendMessage");
    let first = sent[0].at;
    let early = sent.iter().filter(|c| c.at.duration_since(first) < Duration::from_secs(1)).count();
    assert!(early <= 2, "{early} sends within the first second for an account limited to 1/s");
    for chat in [501, 502] {
        let texts: Vec<String> = sent
            .iter()
            .filter(|c| c.json()["chat_id"] == chat)
            .map(|c| c.json()["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        let n = if chat == 501 { 0 } else { 1 };
        assert_eq!(texts, (1..=3).map(|r| format!("chat {n} reply {r}")).collect::<Vec<_>>(), "chat {chat} in order");
    }
    app.stop().await;
}

/// An agent's uploaded file in a reply goes to Telegram as a multipart upload of the stored
/// bytes (the server has no public URL here, so a link could not reach it anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_attachment_is_uploaded_to_the_platform() {
    let (base, fake) = start_fake().await;
    let app = spawn_app_with(fast_outbox).await;
    let admin = app.admin_token().await;
    let inbox = telegram(&app, &admin, "Files", &base, json!({})).await;
    telegram_update(&app, inbox, text_update(1, 99, "send me the picture")).await;
    let (_, agent) = app.available_agent(&admin, "file-agent@example.com", 3).await;
    let conversation = assigned_conversation(&app, &admin, inbox).await;
    let part = reqwest::multipart::Part::bytes(png()).file_name("picture.png");
    let r = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&agent)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload");
    let uploaded: Value = r.json().await.expect("json");
    let attachment = json!({"kind": uploaded["kind"], "url": uploaded["url"], "name": uploaded["name"], "mime": uploaded["mime"], "size": uploaded["size"]});
    let (status, body) = app
        .send_json(
            Method::POST,
            &agent,
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": "here", "attachments": [attachment]}),
        )
        .await;
    assert!(status.is_success(), "reply: {body}");
    let call = wait_for("the photo upload", || async { fake.calls_to("/sendPhoto").first().cloned() }).await;
    let content_type = call.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(content_type.starts_with("multipart/form-data"), "{content_type}");
    let body = call.body.as_slice();
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"name=\"photo\"; filename=\"picture.png\""), "the file part");
    assert!(has(&png()), "the stored bytes");
    assert!(has(b"name=\"caption\"") && has(b"here"), "the text as caption");
    app.stop().await;
}
