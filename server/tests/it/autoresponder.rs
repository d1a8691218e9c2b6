//! The auto-responder through the real server: flows saved and refused over REST, every step
//! type answering a customer on the API channel and on Telegram (replies through the outbox to a
//! fake Bot API), handoff to the queue with the gathered routing, and the decision hook against a
//! real local HTTP server that answers, is slow, fails, talks nonsense or names a missing team.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

const HOOK_SECRET: &str = "hook-secret-for-tests";

async fn api_inbox(app: &TestApp, admin: &str, settings: Value, secrets: Value) -> (i64, String) {
    let (status, inbox) = app
        .send_json(
            Method::POST,
            admin,
            "/api/v1/inboxes",
            json!({"name": "Shop", "kind": "api", "settings": settings, "secrets": secrets}),
        )
        .await;
    assert_eq!(status, 201, "{inbox}");
    (inbox["id"].as_i64().expect("id"), inbox["inbound_token"].as_str().expect("token").to_owned())
}

async fn put_flow(app: &TestApp, admin: &str, inbox: i64, flow: Value) -> (StatusCode, Value) {
    let (status, body) = app.send_json(Method::PUT, admin, &format!("/api/v1/inboxes/{inbox}/flow"), json!({"flow": flow})).await;
    (StatusCode::from_u16(status.as_u16()).expect("status"), body)
}

/// Posts a customer message on the API channel; returns the conversation id.
async fn say(app: &TestApp, inbox: i64, token: &str, contact: &str, id: &str, text: &str) -> i64 {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/channels/api/{inbox}/messages")))
        .bearer_auth(token)
        .json(&json!({"message_id": id, "contact": {"id": contact, "name": "Ada"}, "text": text}))
        .send()
        .await
        .expect("post");
    assert!(r.status().is_success(), "{}", r.status());
    let body: Value = r.json().await.expect("json");
    body["conversation_id"].as_i64().or_else(|| body["conversation"]["id"].as_i64()).expect("conversation id")
}

async fn messages(app: &TestApp, admin: &str, conversation: i64) -> Vec<Value> {
    let (status, msgs) = app.get_json(admin, &format!("/api/v1/conversations/{conversation}/messages")).await;
    assert_eq!(status, 200, "{msgs}");
    msgs.as_array().cloned().unwrap_or_default()
}

/// The bot's texts so far, in order.
async fn bot_said(app: &TestApp, admin: &str, conversation: i64) -> Vec<String> {
    messages(app, admin, conversation)
        .await
        .into_iter()
        .filter(|m| m["sender_kind"] == "bot")
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until the bot has sent `n` messages in the conversation and returns them.
async fn wait_bot(app: &TestApp, admin: &str, conversation: i64, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let said = bot_said(app, admin, conversation).await;
        if said.len() >= n {
            return said;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the bot did not send {n} messages; it sent {:?}", bot_said(app, admin, conversation).await);
}

async fn conversation(app: &TestApp, admin: &str, id: i64) -> Value {
    let (status, c) = app.get_json(admin, &format!("/api/v1/conversations/{id}")).await;
    assert_eq!(status, 200, "{c}");
    c
}

async fn wait_state(app: &TestApp, admin: &str, id: i64, state: &str) -> Value {
    for _ in 0..200 {
        let c = conversation(app, admin, id).await;
        if c["state"] == state {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("conversation {id} never became {state}: {}", conversation(app, admin, id).await);
}

/// Open every day, all day, in a zone with DST: the steps after it run whenever the test does.
fn always_open() -> Value {
    json!({"time_zone": "Europe/Berlin",
           "weekly": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "from": "00:00", "to": "24:00"}]})
}

fn shop_flow() -> Value {
    json!({
        "start": "hello",
        "handoff": {"keywords": ["agent", "人工", "转人工"], "reply": "Connecting you with a person…"},
        "calendars": {"open": always_open(), "never": {"time_zone": "Asia/Shanghai", "weekly": []}},
        "steps": [
            {"type": "greeting", "id": "hello", "text": "Hi! I'm the shop assistant.", "next": "hours"},
            {"type": "business_hours", "id": "hours", "calendar": "open", "next": "menu",
             "out_of_office": "We're closed.", "when_closed": "queue"},
            {"type": "menu", "id": "menu", "prompt": "How can we help?", "max_invalid": 2,
             "options": [
                {"key": "1", "label": "Sales", "route": {"team": "Sales", "priority": 4, "tags": ["sales"],
                                                        "skills": [{"skill": "spanish", "min_proficiency": 3}]},
                 "next": "details"},
                {"key": "2", "label": "Questions", "next": "faq"},
                {"key": "3", "label": "Night shift", "next": "night"}
             ]},
            {"type": "collect", "id": "details", "next": "to_agent",
             "fields": [
                {"name": "name", "prompt": "What's your name?", "scope": "contact"},
                {"name": "order_number", "prompt": "Your order number?", "validate": {"regex": "^[A-Z]{2}[0-9]{6}$"},
                 "invalid_reply": "Order numbers look like AB123456."}
             ]},
            {"type": "handoff", "id": "to_agent", "text": "Thanks {name}, an agent will be with you shortly."},
            {"type": "faq", "id": "faq", "prompt": "Ask me about delivery.",
             "entries": [{"keywords": ["delivery", "发货"], "answer": "Orders ship within 2 days."}],
             "resolved_text": "Glad I could help!"},
            {"type": "business_hours", "id": "night", "calendar": "never", "next": "menu",
             "out_of_office": "The night shift is closed; next opening {next_opening}.",
             "when_closed": "callback", "callback_text": "We'll call you back."}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_are_validated_with_paths_and_only_admins_save_them() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (inbox, _) = api_inbox(&app, &admin, json!({"webhook_url": "http://127.0.0.1:9/x"}), json!({})).await;
    let path = format!("/api/v1/inboxes/{inbox}/flow");

    let (status, body) = app.get_json(&admin, &path).await;
    assert_eq!((status.as_u16(), &body["flow"]), (200, &Value::Null), "{body}");

    // Every problem is listed with its path, and nothing is saved.
    let (status, body) = put_flow(
        &app,
        &admin,
        inbox,
        json!({"steps": [
            {"type": "greeting", "id": "a", "text": "hi", "next": "nowhere"},
            {"type": "teleport", "id": "b"},
            {"type": "faq", "id": "c", "entries": [{"regex": "(unclosed", "answer": "x"}]}
        ]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_flow");
    let paths: Vec<&str> = body["error"]["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(paths.contains(&"steps[1].type"), "{paths:?}");
    let (_, body) = put_flow(&app, &admin, inbox, json!({"steps": [{"type": "greeting", "id": "a", "text": "hi", "next": "nowhere"}]})).await;
    assert_eq!(body["error"]["errors"][0]["path"], "steps[0].next", "{body}");
    let (_, body) = put_flow(&app, &admin, inbox, json!({"steps": [{"type": "faq", "id": "c", "entries": [{"regex": "(unclosed", "answer": "x"}]}]})).await;
    assert!(body["error"]["errors"][0]["path"].as_str().unwrap_or_default().starts_with("steps[0].entries[0].regex"), "{body}");

    // A route to a team the tenant does not have.
    let (status, body) = put_flow(&app, &admin, inbox, shop_flow()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["errors"][0]["path"], "steps[2].options[0].route.team", "{body}");
    let (status, _) = app.get_json(&admin, &path).await;
    assert_eq!(status, 200);
    assert_eq!(app.get_json(&admin, &path).await.1["flow"], Value::Null, "a refused flow changes nothing");

    let (status, _) = app.send_json(Method::POST, &admin, "/api/v1/teams", json!({"name": "Sales"})).await;
    assert_eq!(status, 201);
    let (status, saved) = put_flow(&app, &admin, inbox, shop_flow()).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(app.get_json(&admin, &path).await.1["flow"], shop_flow());

    // Agents may not read or change flows.
    let (_, agent) = app.available_agent(&admin, "agent@example.com", 2).await;
    assert_eq!(app.get_json(&agent, &path).await.0, 403);
    let (status, _) = app.send_json(Method::PUT, &agent, &path, json!({"flow": {"steps": []}})).await;
    assert_eq!(status, 403);

    let r = app.client.delete(app.url(&path)).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(r.status(), 204);
    assert_eq!(app.get_json(&admin, &path).await.1["flow"], Value::Null);
    let r = app.client.delete(app.url(&path)).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(r.status(), 204, "idempotent");
    let r = app.client.delete(app.url("/api/v1/inboxes/999999/flow")).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(r.status(), 404);
    app.stop().await;
}

/// Where the customers write from: the API channel, or Telegram (webhooks signed with the
/// secret token; the bot's answers go out through the fake Bot API).
#[derive(Clone, Copy)]
enum Via {
    Api,
    Telegram,
}

struct Shop<'a> {
    app: &'a TestApp,
    admin: String,
    inbox: i64,
    token: Option<String>,
    telegram: Option<crate::gateway::FakeTelegram>,
    /// Telegram chat ids by contact name, and the next update / message id.
    chats: Mutex<(std::collections::HashMap<String, i64>, i64)>,
}

impl<'a> Shop<'a> {
    async fn open(app: &'a TestApp, admin: &str, via: Via) -> Shop<'a> {
        let (inbox, token, telegram) = match via {
            Via::Api => {
                let (inbox, token) = api_inbox(app, admin, json!({"webhook_url": "http://127.0.0.1:9/x"}), json!({})).await;
                (inbox, Some(token), None)
            }
            Via::Telegram => {
                let (base, fake) = crate::gateway::start_fake().await;
                (crate::gateway::telegram_inbox(app, admin, &base, "webhook").await, None, Some(fake))
            }
        };
        Shop { app, admin: admin.to_owned(), inbox, token, telegram, chats: Mutex::new((Default::default(), 1)) }
    }

    /// The customer `contact` writes `text`; returns the conversation it landed in.
    async fn say(&self, contact: &str, id: &str, text: &str) -> i64 {
        let Some(token) = &self.token else { return self.say_on_telegram(contact, text).await };
        say(self.app, self.inbox, token, contact, id, text).await
    }

    async fn say_on_telegram(&self, contact: &str, text: &str) -> i64 {
        let (chat, n) = {
            let mut chats = self.chats.lock().expect("lock");
            let next_chat = 5000 + i64::try_from(chats.0.len()).unwrap_or(0);
            let chat = *chats.0.entry(contact.to_owned()).or_insert(next_chat);
            chats.1 += 1;
            (chat, chats.1)
        };
        let r = self
            .app
            .client
            .post(self.app.url(&format!("/webhooks/{}", self.inbox)))
            .header("x-telegram-bot-api-secret-token", crate::gateway::SECRET)
            .header("content-type", "application/json")
            .body(crate::gateway::update(n, chat, n, text).to_string())
            .send()
            .await
            .expect("post");
        assert!(r.status().is_success(), "{}", r.status());
        // The committed message names its conversation.
        let platform_id = format!("{chat}:{n}");
        let (_, convs) = self.app.get_json(&self.admin, &format!("/api/v1/conversations?inbox_id={}&limit=100", self.inbox)).await;
        for c in convs.as_array().cloned().unwrap_or_default() {
            let id = c["id"].as_i64().expect("id");
            if messages(self.app, &self.admin, id).await.iter().any(|m| m["platform_message_id"] == platform_id.as_str()) {
                return id;
            }
        }
        panic!("telegram message {platform_id} was not stored");
    }

    /// On Telegram every bot message (of every conversation) reached the Bot API, in order.
    async fn check_platform_got_every_bot_message(&self, admin: &str) {
        let Some(fake) = &self.telegram else { return };
        let (_, convs) = self.app.get_json(admin, &format!("/api/v1/conversations?inbox_id={}&limit=100", self.inbox)).await;
        let mut expected = Vec::new();
        for c in convs.as_array().cloned().unwrap_or_default() {
            expected.extend(bot_said(self.app, admin, c["id"].as_i64().expect("id")).await);
        }
        let sent = || fake.sent.lock().expect("lock").iter().map(|b| b["text"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>();
        // Telegram's per-chat limit (1 a second after a burst of 3, `gateway::RateLimits`) paces
        // a chat's bot messages, so the last ones may leave seconds after the script ends.
        for _ in 0..800 {
            if sent().len() >= expected.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let (mut got, mut want) = (sent(), expected);
        got.sort();
        want.sort();
        assert_eq!(got, want, "the Bot API received exactly the bot's messages");
    }
}

/// Greeting, business hours (open), menu (invalid answer, full-width pick), collect (with an
/// invalid value), handoff with the menu's routing, assignment, and contact fields remembered.
async fn greeting_hours_menu_collect_and_handoff(via: Via) {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, team) = app.send_json(Method::POST, &admin, "/api/v1/teams", json!({"name": "Sales"})).await;
    let shop = Shop::open(&app, &admin, via).await;
    let (inbox, token) = (shop.inbox, &shop);
    assert_eq!(put_flow(&app, &admin, inbox, shop_flow()).await.0, 200);

    let c = token.say("ada", "m1", "hello").await;
    let said = wait_bot(&app, &admin, c, 2).await;
    assert_eq!(said[0], "Hi! I'm the shop assistant.");
    assert!(said[1].starts_with("How can we help?") && said[1].contains("1 Sales"), "{said:?}");
    let conv = conversation(&app, &admin, c).await;
    assert_eq!(conv["state"], "bot", "with the bot, not in the queue");

    // An answer that picks nothing re-prompts.
    token.say("ada", "m2", "pizza").await;
    let said = wait_bot(&app, &admin, c, 3).await;
    assert!(said[2].starts_with("Sorry") && said[2].ends_with("3 Night shift"), "{said:?}");
    // "１" (full width) picks Sales; then the collect step asks for the fields.
    token.say("ada", "m3", "１").await;
    assert_eq!(wait_bot(&app, &admin, c, 4).await[3], "What's your name?");
    token.say("ada", "m4", "Ada").await;
    assert_eq!(wait_bot(&app, &admin, c, 5).await[4], "Your order number?");
    token.say("ada", "m5", "12345").await;
    assert_eq!(wait_bot(&app, &admin, c, 6).await[5], "Order numbers look like AB123456.");
    token.say("ada", "m6", "AB123456").await;
    let said = wait_bot(&app, &admin, c, 7).await;
    assert_eq!(said[6], "Thanks Ada, an agent will be with you shortly.");
    assert_eq!(said.len(), 7, "each message answered once: {said:?}");

    // Handed off with the menu's routing and the collected fields.
    let conv = wait_state(&app, &admin, c, "queued").await;
    assert_eq!(conv["team_id"], team["id"]);
    assert_eq!(conv["priority"], 4);
    assert_eq!(conv["tags"], json!(["sales"]));
    assert_eq!(conv["required_skills"], json!([{"skill": "spanish", "min_proficiency": 3}]));
    assert_eq!(conv["attributes"]["order_number"], "AB123456");
    let (_, events) = app.get_json(&admin, &format!("/api/v1/conversations/{c}/events")).await;
    assert!(events.as_array().expect("events").iter().any(|e| e["kind"] == "bot_handoff" && e["detail"] == "step"), "{events}");
    // The bot's messages go out like an agent's: through the outbox.
    let (_, outbox) = app.get_json(&admin, "/api/v1/outbox?limit=100").await;
    assert!(outbox.as_array().expect("outbox").len() >= 7, "{outbox}");

    // An agent of the team who becomes available gets it, with the bot transcript.
    let (agent_id, _) = app.available_agent(&admin, "sam@example.com", 2).await;
    let (status, _) = app.send_json(Method::POST, &admin, &format!("/api/v1/teams/{}/members", team["id"]), json!({"user_id": agent_id})).await;
    assert!(status.is_success(), "{status}");
    // The menu's route requires Spanish ≥ 3: giving Sam the skill makes it his at once.
    let (status, _) = app.send_json(Method::PATCH, &admin, &format!("/api/v1/users/{agent_id}"), json!({"skills": {"spanish": 3}})).await;
    assert_eq!(status, 200);
    let conv = wait_state(&app, &admin, c, "assigned").await;
    assert_eq!(conv["assignee_id"], agent_id);

    // The name was kept on the contact: the customer's next conversation does not ask again.
    let (status, _) = app.send_json(Method::POST, &admin, &format!("/api/v1/conversations/{c}/resolve"), json!({"reason": "resolved"})).await;
    assert!(status.is_success(), "{status}");
    let c2 = token.say("ada", "m7", "hi again").await;
    assert_ne!(c2, c);
    wait_bot(&app, &admin, c2, 2).await;
    token.say("ada", "m8", "Sales").await;
    assert_eq!(wait_bot(&app, &admin, c2, 3).await[2], "Your order number?", "the name is known");
    shop.check_platform_got_every_bot_message(&admin).await;
    app.stop().await;
}

/// FAQ answered and resolved, a handoff keyword in Chinese, and out-of-hours with a callback.
async fn faq_keywords_and_callbacks(via: Via) {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.send_json(Method::POST, &admin, "/api/v1/teams", json!({"name": "Sales"})).await;
    let shop = Shop::open(&app, &admin, via).await;
    let (inbox, token) = (shop.inbox, &shop);
    assert_eq!(put_flow(&app, &admin, inbox, shop_flow()).await.0, 200);

    // FAQ: answered, "did that help?", yes → resolved by the bot.
    let c = token.say("faq", "f1", "hi").await;
    wait_bot(&app, &admin, c, 2).await;
    token.say("faq", "f2", "2").await;
    assert_eq!(wait_bot(&app, &admin, c, 3).await[2], "Ask me about delivery.");
    token.say("faq", "f3", "when is 发货?").await;
    let said = wait_bot(&app, &admin, c, 5).await;
    assert_eq!(said[3], "Orders ship within 2 days.");
    token.say("faq", "f4", "yes!").await;
    assert_eq!(wait_bot(&app, &admin, c, 6).await[5], "Glad I could help!");
    let conv = wait_state(&app, &admin, c, "resolved").await;
    assert_eq!(conv["close_reason"], "resolved");

    // A handoff keyword at any step goes to a person at once.
    let c = token.say("kw", "k1", "hello").await;
    wait_bot(&app, &admin, c, 2).await;
    token.say("kw", "k2", "我要转人工服务").await;
    assert_eq!(wait_bot(&app, &admin, c, 3).await[2], "Connecting you with a person…");
    wait_state(&app, &admin, c, "queued").await;

    // Out of hours with "callback": the out-of-office text, the promise, and a close.
    let c = token.say("night", "n1", "hello").await;
    wait_bot(&app, &admin, c, 2).await;
    token.say("night", "n2", "3").await;
    let said = wait_bot(&app, &admin, c, 4).await;
    assert!(said[2].starts_with("The night shift is closed; next opening"), "{said:?}");
    assert_eq!(said[3], "We'll call you back.");
    let conv = wait_state(&app, &admin, c, "closed").await;
    assert_eq!(conv["attributes"]["callback_requested"], true, "{conv}");
    shop.check_platform_got_every_bot_message(&admin).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_hours_menu_collect_and_handoff_on_the_api_channel() {
    greeting_hours_menu_collect_and_handoff(Via::Api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_hours_menu_collect_and_handoff_on_telegram() {
    greeting_hours_menu_collect_and_handoff(Via::Telegram).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faq_keywords_and_callbacks_on_the_api_channel() {
    faq_keywords_and_callbacks(Via::Api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faq_keywords_and_callbacks_on_telegram() {
    faq_keywords_and_callbacks(Via::Telegram).await;
}

/// The business system behind the decision hook. Checks the signature like a real receiver,
/// and answers by the contact's external id: `ok-*`, `slow-*`, `e500-*`, `bad-*`, `team-*`.
#[derive(Clone, Default)]
struct Crm {
    requests: Arc<Mutex<Vec<Value>>>,
}

async fn crm_hook(State(crm): State<Crm>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let ts: i64 = headers.get("x-switchboard-timestamp").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let sig = headers.get("x-switchboard-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    if !switchboard_gateway::api_channel::verify(HOOK_SECRET, ts, &body, sig, now, 300) {
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    crm.requests.lock().expect("lock").push(request.clone());
    let who = request["contact"]["external_id"].as_str().unwrap_or_default().to_owned();
    match who.split('-').next().unwrap_or_default() {
        "ok" => (
            StatusCode::OK,
            json!({"reply": "Welcome back, gold member.", "attributes": {"tier": "gold"},
                   "contact_attributes": {"crm_id": 1234}, "route": {"team": "VIP", "priority": 5}})
            .to_string(),
        ),
        "slow" => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            (StatusCode::OK, json!({"reply": "too late"}).to_string())
        }
        "e500" => (StatusCode::INTERNAL_SERVER_ERROR, "boom".into()),
        "bad" => (StatusCode::OK, "{not json".into()),
        "team" => (StatusCode::OK, json!({"route": {"team": "Nope"}}).to_string()),
        _ => (StatusCode::OK, "{}".into()),
    }
}

async fn start_crm() -> (String, Crm) {
    let crm = Crm::default();
    let router = Router::new().route("/decide", post(crm_hook)).with_state(crm.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}/decide"), crm)
}

fn hook_flow() -> Value {
    json!({"steps": [
        {"type": "greeting", "id": "hi", "text": "Hello!", "next": "crm"},
        {"type": "decision_hook", "id": "crm", "timeout_ms": 400, "next": "routed", "fallback": "down"},
        {"type": "message", "id": "down", "text": "Our systems are slow; a person will help.", "next": "to_agent"},
        {"type": "handoff", "id": "to_agent", "text": "Connecting you."},
        {"type": "handoff", "id": "routed", "text": "Routed by the CRM."}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_hook_decides_or_the_fallback_runs_and_every_call_is_logged() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, vip) = app.send_json(Method::POST, &admin, "/api/v1/teams", json!({"name": "VIP"})).await;
    let (url, crm) = start_crm().await;
    let (inbox, token) = api_inbox(
        &app,
        &admin,
        json!({"webhook_url": "http://127.0.0.1:9/x", "decision_hook_url": url}),
        json!({"decision_hook_secret": HOOK_SECRET}),
    )
    .await;
    assert_eq!(put_flow(&app, &admin, inbox, hook_flow()).await.0, 200);

    // Success: the answer's reply, attributes, contact attributes and route are applied, and
    // the routed handoff follows (no fallback text).
    let c = say(&app, inbox, &token, "ok-1", "o1", "hi, order AB123456").await;
    let conv = wait_state(&app, &admin, c, "queued").await;
    assert_eq!(bot_said(&app, &admin, c).await, ["Hello!", "Welcome back, gold member."]);
    assert_eq!((conv["team_id"].clone(), conv["priority"].clone()), (vip["id"].clone(), json!(5)));
    assert_eq!(conv["attributes"]["tier"], "gold");
    let request = crm.requests.lock().expect("lock")[0].clone();
    assert_eq!(request["event"], "decision.requested");
    assert_eq!(request["conversation_id"], c);
    assert_eq!(request["inbox"]["channel"], "api");
    assert_eq!(request["contact"]["external_id"], "ok-1");
    assert_eq!(request["first_message"], "hi, order AB123456");

    // Slow, 500, invalid JSON and a team that does not exist: the fallback step runs.
    let fallback = ["Hello!", "Our systems are slow; a person will help.", "Connecting you."];
    for who in ["slow-1", "e500-1", "bad-1", "team-1"] {
        let c = say(&app, inbox, &token, who, &format!("{who}-m"), "hi").await;
        let conv = wait_state(&app, &admin, c, "queued").await;
        assert_eq!(bot_said(&app, &admin, c).await, fallback, "{who}");
        assert_eq!(conv["team_id"], Value::Null, "{who}: nothing of a failed answer is applied");
        assert!(conv["attributes"].as_object().is_none_or(|a| a.is_empty()), "{who}: {conv}");
    }

    // Every call is in the log with its outcome and latency.
    let (status, calls) = app.get_json(&admin, &format!("/api/v1/inboxes/{inbox}/decision-hook-calls")).await;
    assert_eq!(status, 200, "{calls}");
    let outcomes: Vec<&str> = calls.as_array().expect("calls").iter().rev().filter_map(|c| c["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["ok", "timeout", "http_status", "invalid_response", "invalid_response"], "{calls}");
    let calls = calls.as_array().expect("calls");
    let slow = &calls[3];
    assert!((350..1500).contains(&slow["latency_ms"].as_i64().unwrap_or(0)), "the timeout cut the wait: {slow}");
    assert_eq!(calls[2]["http_status"], 500);
    assert!(calls[0]["error"].as_str().unwrap_or_default().contains("does not exist"), "{}", calls[0]);

    // A late answer after the timeout changed nothing: still exactly the fallback messages.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let slow_conv = calls[3]["conversation_id"].as_i64().expect("id");
    assert_eq!(bot_said(&app, &admin, slow_conv).await, fallback);
    app.stop().await;
}

/// Greeting → decision hook (none configured) → message → handoff.
async fn no_hook_takes_the_fallback(via: Via) {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let shop = Shop::open(&app, &admin, via).await;
    let inbox = shop.inbox;
    assert_eq!(put_flow(&app, &admin, inbox, hook_flow()).await.0, 200);
    let c = shop.say("x", "x1", "hi").await;
    wait_state(&app, &admin, c, "queued").await;
    assert_eq!(bot_said(&app, &admin, c).await, ["Hello!", "Our systems are slow; a person will help.", "Connecting you."]);
    let (_, calls) = app.get_json(&admin, &format!("/api/v1/inboxes/{inbox}/decision-hook-calls")).await;
    assert_eq!(calls[0]["outcome"], "not_configured", "{calls}");
    shop.check_platform_got_every_bot_message(&admin).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_without_a_hook_takes_the_fallback() {
    no_hook_takes_the_fallback(Via::Api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_without_a_hook_takes_the_fallback_on_telegram() {
    no_hook_takes_the_fallback(Via::Telegram).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_customer_is_answered_through_the_bot_api() {
    use crate::gateway::{start_fake, telegram_inbox, update, SECRET};
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (base, fake) = start_fake().await;
    let inbox = telegram_inbox(&app, &admin, &base, "webhook").await;
    let flow = json!({"steps": [
        {"type": "greeting", "id": "hi", "text": "Hi from the bot!", "next": "menu"},
        {"type": "menu", "id": "menu", "prompt": "Pick one:", "options": [
            {"key": "1", "label": "Orders", "reply": "Let me find someone for orders."}]}
    ]});
    assert_eq!(put_flow(&app, &admin, inbox, flow).await.0, 200);

    let hook = app.url(&format!("/webhooks/{inbox}"));
    let post = |body: Value| {
        app.client
            .post(&hook)
            .header("x-telegram-bot-api-secret-token", SECRET)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    assert!(post(update(1, 777, 10, "hello")).await.expect("post").status().is_success());
    // Telegram redelivers: the bot still answers once.
    assert!(post(update(1, 777, 10, "hello")).await.expect("post").status().is_success());
    let sent_texts = || fake.sent.lock().expect("lock").iter().map(|b| b["text"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>();
    for _ in 0..200 {
        if sent_texts().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let sent = sent_texts();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], "Hi from the bot!");
    assert!(sent[1].starts_with("Pick one:") && sent[1].contains("1 Orders"), "{sent:?}");
    assert!(fake.sent.lock().expect("lock").iter().all(|b| b["chat_id"] == 777));

    assert!(post(update(2, 777, 11, "1")).await.expect("post").status().is_success());
    for _ in 0..200 {
        if sent_texts().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(sent_texts()[2], "Let me find someone for orders.");
    let (_, convs) = app.get_json(&admin, &format!("/api/v1/conversations?inbox_id={inbox}")).await;
    let c = convs[0]["id"].as_i64().expect("conversation");
    wait_state(&app, &admin, c, "queued").await;
    app.stop().await;
}
