//! The Telegram adapter against Telegram's documented sample updates, updates built with
//! python-telegram-bot (fixtures/telegram/generate.py), and a local fake of the Bot API that
//! checks paths, tokens and body schemas the way Telegram does.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_core::domain::Attachment;
use switchboard_gateway::telegram::TelegramAdapter;
use switchboard_gateway::{
    ChannelAdapter, ChannelConfig, ContentKind, DeliveryError, InboundEvent, NormalizedMessage, OutboundMessage,
    WebhookAnswer, WebhookError, WebhookRequest,
};

use crate::fake::{self, Log, Recorded};

const TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
const SECRET: &str = "s3cret_Token-for-tests";

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/telegram")
}

fn read_fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(rel))
        .unwrap_or_else(|e| panic!("fixture {rel}: {e} (run fixtures/telegram/generate.py)"))
}

fn json_fixture(rel: &str) -> Value {
    serde_json::from_slice(&read_fixture(rel)).expect("fixture is JSON")
}

fn webhook_config(secret: &str) -> ChannelConfig {
    ChannelConfig { settings: json!({}), secrets: json!({ "bot_token": TOKEN, "webhook_secret_token": secret }) }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            v.parse().expect("header value"),
        );
    }
    map.insert("content-type", "application/json".parse().expect("header value"));
    map
}

fn deliver(config: &ChannelConfig, headers: &HeaderMap, body: &[u8]) -> Result<Vec<InboundEvent>, WebhookError> {
    let request = WebhookRequest { method: "POST", query: "", headers, body };
    let outcome = TelegramAdapter.handle_webhook(config, &request)?;
    assert_eq!(outcome.answer, WebhookAnswer::ok_empty(), "Telegram is answered 200 with an empty body");
    Ok(outcome.events)
}

fn deliver_one(body: &[u8]) -> Option<NormalizedMessage> {
    let events = deliver(&webhook_config(SECRET), &headers(&[("X-Telegram-Bot-Api-Secret-Token", SECRET)]), body)
        .expect("accepted");
    assert!(events.len() <= 1);
    events.into_iter().next().map(|e| match e {
        InboundEvent::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    })
}

fn kind_name(kind: ContentKind) -> String {
    serde_json::to_value(kind).expect("kind").as_str().expect("kind is a string").to_owned()
}

// ---------------------------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------------------------

#[test]
fn sdk_built_updates_parse_as_the_generator_expects() {
    let manifest = json_fixture("sdk/manifest.json");
    let secret = manifest["secret_token"].as_str().expect("secret");
    let config = webhook_config(secret);
    let cases = manifest["cases"].as_object().expect("cases");
    assert!(cases.len() >= 19, "every kind is covered");
    let mut kinds_seen = std::collections::BTreeSet::new();
    for (name, case) in cases {
        let body = read_fixture(&format!("sdk/{}", case["file"].as_str().expect("file")));
        let pairs: Vec<(String, String)> = case["headers"]
            .as_object()
            .expect("headers")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("header").to_owned()))
            .collect();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let events = deliver(&config, &headers(&pairs), &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expect = &case["expect"];
        if expect["ignored"] == json!(true) {
            assert!(events.is_empty(), "{name} must be ignored, got {events:?}");
            continue;
        }
        assert_eq!(events.len(), 1, "{name}");
        let InboundEvent::Message(m) = &events[0] else { panic!("{name}: not a message") };
        kinds_seen.insert(kind_name(m.kind));
        assert_eq!(json!(kind_name(m.kind)), expect["kind"], "{name}: kind");
        assert_eq!(json!(m.platform_message_id), expect["platform_message_id"], "{name}: id");
        assert_eq!(json!(m.contact_external_id), expect["contact_external_id"], "{name}: contact");
        assert_eq!(json!(m.contact_name), expect["contact_name"], "{name}: name");
        assert_eq!(json!(m.text), expect["text"], "{name}: text");
        let attachment = m
            .attachments
            .first()
            .map(|a| json!({"kind": a.kind, "url": a.url, "name": a.name, "mime": a.mime, "size": a.size}));
        assert_eq!(attachment.unwrap_or(Value::Null), expect["attachment"], "{name}: attachment");
        assert!(m.attachments.len() <= 1, "{name}: one attachment per Telegram message");
        let original: Value = serde_json::from_slice(&body).expect("json");
        let inner = original.get("message").or_else(|| original.get("edited_message")).expect("message");
        assert_eq!(&m.raw, inner, "{name}: the raw message is kept");
    }
    let all: Vec<&str> = vec!["audio", "file", "image", "location", "sticker", "text", "unsupported", "video"];
    assert_eq!(kinds_seen.iter().map(String::as_str).collect::<Vec<_>>(), all);
}

#[test]
fn telegrams_documented_sample_updates_parse() {
    let samples = json_fixture("docs_samples.json");
    let body = |name: &str| serde_json::to_vec(&samples[name]).expect("json");

    for name in [
        "message_with_text",
        "forwarded_message",
        "forwarded_channel_message",
        "message_with_a_reply",
        "message_with_entities",
    ] {
        let m = deliver_one(&body(name)).unwrap_or_else(|| panic!("{name} yields a message"));
        assert_eq!(m.kind, ContentKind::Text, "{name}");
        assert_eq!(m.platform_message_id, "1111111:1365", "{name}");
        assert_eq!(m.contact_external_id, "1111111", "{name}");
        assert_eq!(m.contact_name.as_deref(), Some("Test Firstname Test Lastname"), "{name}");
    }
    assert_eq!(deliver_one(&body("message_with_entities")).expect("msg").text.as_deref(), Some("Bold and italics"));

    let edited = deliver_one(&body("edited_message")).expect("edit");
    assert_eq!(edited.platform_message_id, "1111111:1365:edit:1441646600");
    assert_eq!(edited.text.as_deref(), Some("Edited text"));

    let audio = deliver_one(&body("message_with_audio")).expect("audio");
    assert_eq!(audio.kind, ContentKind::Audio);
    assert_eq!(audio.attachments[0].url.as_deref(), Some("AwADBAADbXXXXXXXXXXXGBdhD2l6_XX"));
    assert_eq!(audio.attachments[0].mime.as_deref(), Some("audio/mpeg"));
    assert_eq!(audio.attachments[0].size, Some(3_897_500));

    let voice = deliver_one(&body("voice_message")).expect("voice");
    assert_eq!((voice.kind, voice.attachments[0].kind.as_str()), (ContentKind::Audio, "audio"));

    let doc = deliver_one(&body("message_with_a_document")).expect("document");
    assert_eq!(doc.kind, ContentKind::File);
    assert_eq!(
        doc.attachments,
        vec![Attachment {
            kind: "file".into(),
            url: Some("AwADBAADbXXXXXXXXXXXGBdhD2l6_XX".into()),
            name: Some("Testfile.pdf".into()),
            mime: Some("application/pdf".into()),
            size: Some(536_392),
        }]
    );

    for name in ["inline_query", "chosen_inline_query", "callback_query"] {
        assert_eq!(deliver_one(&body(name)), None, "{name} is not a customer message");
    }
}

#[test]
fn a_message_id_is_only_unique_within_its_chat() {
    let update = |chat: i64| {
        serde_json::to_vec(&json!({"update_id": 1, "message": {"message_id": 5, "date": 0, "chat": {"id": chat, "type": "private"}, "text": "x"}})).expect("json")
    };
    let a = deliver_one(&update(1)).expect("a");
    let b = deliver_one(&update(2)).expect("b");
    assert_ne!(a.platform_message_id, b.platform_message_id);
}

#[test]
fn a_forged_or_missing_secret_token_is_unauthorized() {
    let body = read_fixture("sdk/text.json");
    let config = webhook_config(SECRET);
    for presented in ["wrong", "s3cret_Token-for-test", "s3cret_Token-for-tests2", ""] {
        let got = deliver(&config, &headers(&[("X-Telegram-Bot-Api-Secret-Token", presented)]), &body);
        assert!(matches!(got, Err(WebhookError::Unauthorized(_))), "{presented:?}: {got:?}");
    }
    let got = deliver(&config, &headers(&[]), &body);
    assert!(matches!(got, Err(WebhookError::Unauthorized(_))), "{got:?}");
    // The header name is matched case-insensitively, as HTTP says.
    assert!(deliver(&config, &headers(&[("x-telegram-bot-api-secret-token", SECRET)]), &body).is_ok());
}

#[test]
fn an_inbox_without_a_secret_token_accepts_nothing() {
    let body = read_fixture("sdk/text.json");
    let config = ChannelConfig { settings: json!({}), secrets: json!({ "bot_token": TOKEN }) };
    let got = deliver(&config, &headers(&[("X-Telegram-Bot-Api-Secret-Token", "")]), &body);
    assert!(matches!(got, Err(WebhookError::NotConfigured(_))), "{got:?}");
    let config =
        ChannelConfig { settings: json!({}), secrets: json!({ "bot_token": TOKEN, "webhook_secret_token": "" }) };
    let got = deliver(&config, &headers(&[("X-Telegram-Bot-Api-Secret-Token", "")]), &body);
    assert!(matches!(got, Err(WebhookError::NotConfigured(_))), "{got:?}");
}

#[test]
fn bodies_that_are_not_updates_are_malformed() {
    let h = headers(&[("X-Telegram-Bot-Api-Secret-Token", SECRET)]);
    let config = webhook_config(SECRET);
    for body in
        [&b"not json"[..], b"[]", b"{}", br#"{"update_id":"1"}"#, br#"{"update_id":1,"message":{"text":"no chat"}}"#]
    {
        let got = deliver(&config, &h, body);
        assert!(matches!(got, Err(WebhookError::Malformed(_))), "{}: {got:?}", String::from_utf8_lossy(body));
    }
    let request = WebhookRequest { method: "GET", query: "", headers: &h, body: b"" };
    assert!(matches!(TelegramAdapter.handle_webhook(&config, &request), Err(WebhookError::Malformed(_))));
}

// ---------------------------------------------------------------------------------------------
// A fake Bot API
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct FakeTelegram {
    log: Log,
    /// Pending updates; getUpdates returns those with update_id >= offset.
    updates: Arc<Mutex<Vec<Value>>>,
    next_message_id: Arc<Mutex<i64>>,
}

fn tg_error(status: StatusCode, description: &str) -> Response {
    (status, axum::Json(json!({"ok": false, "error_code": status.as_u16(), "description": description})))
        .into_response()
}

fn tg_ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

/// Checks a sendX body: exactly `chat_id` (integer), the media field (non-empty string) and an
/// optional `caption`, nothing else.
fn check_body(body: &Value, field: &str, optional: &[&str]) -> Result<i64, String> {
    let obj = body.as_object().ok_or("body is not a JSON object")?;
    for key in obj.keys() {
        if key != "chat_id" && key != field && !optional.contains(&key.as_str()) {
            return Err(format!("unexpected field {key}"));
        }
    }
    match obj.get(field) {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err(format!("Bad Request: {field} is empty")),
    }
    for key in optional {
        if obj.get(*key).is_some_and(|v| !v.is_string()) {
            return Err(format!("{key} must be a string"));
        }
    }
    obj.get("chat_id").and_then(Value::as_i64).ok_or_else(|| "Bad Request: chat_id must be an integer".into())
}

async fn fake_bot_api(
    State(fake): State<FakeTelegram>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    fake.log.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: body.to_vec(),
    });
    let path = uri.path();
    if let Some(rest) = path.strip_prefix("/file/") {
        return match rest.strip_prefix(&format!("bot{TOKEN}/")) {
            Some("photos/file_7.jpg") => {
                ([("content-type", "application/octet-stream")], b"\xFF\xD8\xFFjpeg-bytes".to_vec()).into_response()
            }
            Some(_) => tg_error(StatusCode::NOT_FOUND, "Not Found"),
            None => tg_error(StatusCode::UNAUTHORIZED, "Unauthorized"),
        };
    }
    let Some((bot, api_method)) = path.trim_start_matches('/').split_once('/') else {
        return tg_error(StatusCode::NOT_FOUND, "Not Found");
    };
    if bot != format!("bot{TOKEN}") {
        return tg_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());

    match (method.as_str(), api_method) {
        ("GET", "getUpdates") => {
            let offset = match param("offset").map(|o| o.parse::<i64>()) {
                None => i64::MIN,
                Some(Ok(o)) => o,
                Some(Err(_)) => return tg_error(StatusCode::BAD_REQUEST, "Bad Request: invalid offset"),
            };
            if param("timeout").and_then(|t| t.parse::<u64>().ok()).is_none() {
                return tg_error(StatusCode::BAD_REQUEST, "Bad Request: timeout expected");
            }
            if param("allowed_updates").as_deref() != Some(r#"["message","edited_message"]"#) {
                return tg_error(StatusCode::BAD_REQUEST, "Bad Request: allowed_updates expected");
            }
            let mut updates = fake.updates.lock().expect("updates");
            // Like Telegram: an offset confirms (and forgets) every update below it.
            updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            tg_ok(Value::Array(updates.clone()))
        }
        ("GET", "getFile") => match param("file_id").as_deref() {
            Some("AgAD-photo-large") => axum::Json(json_fixture("sdk/get_file.json")).into_response(),
            Some("BIG-file") => tg_ok(json!({"file_id": "BIG-file", "file_unique_id": "u", "file_size": 30_000_000})),
            _ => tg_error(StatusCode::BAD_REQUEST, "Bad Request: invalid file_id"),
        },
        ("POST", "sendMessage" | "sendPhoto" | "sendDocument" | "sendSticker") => {
            if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
                return tg_error(StatusCode::BAD_REQUEST, "Bad Request: expected a JSON body");
            }
            let Ok(body) = serde_json::from_slice::<Value>(&body) else {
                return tg_error(StatusCode::BAD_REQUEST, "Bad Request: body is not JSON");
            };
            let checked = match api_method {
                "sendMessage" => check_body(&body, "text", &[]),
                "sendPhoto" => check_body(&body, "photo", &["caption"]),
                "sendDocument" => check_body(&body, "document", &["caption"]),
                _ => check_body(&body, "sticker", &[]),
            };
            let chat_id = match checked {
                Ok(id) => id,
                Err(e) => return tg_error(StatusCode::BAD_REQUEST, &e),
            };
            match chat_id {
                500 => tg_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
                502 => (StatusCode::BAD_GATEWAY, "<html><body>502 Bad Gateway</body></html>").into_response(),
                429 => (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}})),
                )
                    .into_response(),
                403 => tg_error(StatusCode::FORBIDDEN, "Forbidden: bot was blocked by the user"),
                400 => tg_error(StatusCode::BAD_REQUEST, "Bad Request: chat not found"),
                _ => {
                    // Answer with the SDK-built Message, re-addressed to this chat.
                    let mut sent = json_fixture("sdk/sent_message.json");
                    let mut next = fake.next_message_id.lock().expect("id");
                    *next += 1;
                    sent["result"]["message_id"] = json!(*next);
                    sent["result"]["chat"]["id"] = json!(chat_id);
                    axum::Json(sent).into_response()
                }
            }
        }
        _ => tg_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn start_fake() -> (FakeTelegram, String) {
    let updates = json_fixture("sdk/get_updates.json")["result"].as_array().expect("updates").clone();
    let fake = FakeTelegram {
        log: Log::default(),
        updates: Arc::new(Mutex::new(updates)),
        next_message_id: Arc::new(Mutex::new(4241)),
    };
    let router = Router::new().fallback(fake_bot_api).with_state(fake.clone());
    let (base, _) = fake::serve(router).await;
    (fake, base)
}

fn api_config(base: &str, extra: Value) -> ChannelConfig {
    let mut settings = json!({ "api_base_url": base });
    if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    ChannelConfig { settings, secrets: json!({ "bot_token": TOKEN, "webhook_secret_token": SECRET }) }
}

fn reply(to: &str, text: Option<&str>, attachments: Vec<Attachment>) -> OutboundMessage {
    OutboundMessage {
        to: to.into(),
        text: text.map(str::to_owned),
        attachments,
        delivery_id: "delivery-1".into(),
        reply_context: None,
        last_inbound_at_ms: None,
        now_ms: 1_714_564_800_000,
        files: Vec::new(),
    }
}

fn media(kind: &str, url: &str) -> Attachment {
    Attachment { kind: kind.into(), url: Some(url.into()), name: None, mime: None, size: None }
}

fn sent_bodies(log: &Log) -> Vec<(String, Value)> {
    log.all().iter().map(|r| (r.path.clone(), serde_json::from_slice(&r.body).unwrap_or(Value::Null))).collect()
}

// ---------------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn text_goes_out_as_send_message_and_returns_the_receipt() {
    let (fake, base) = start_fake().await;
    let http = reqwest::Client::new();
    let receipt = TelegramAdapter
        .send(&http, &api_config(&base, json!({})), &reply("123456789", Some("Hi Ada, on it!"), vec![]))
        .await
        .expect("sent");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("123456789:4242"));
    assert_eq!(
        sent_bodies(&fake.log),
        vec![(format!("/bot{TOKEN}/sendMessage"), json!({"chat_id": 123456789, "text": "Hi Ada, on it!"}))]
    );
    let request = &fake.log.all()[0];
    assert_eq!(request.method, "POST");
    assert!(
        request.headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"),
        "{:?}",
        request.headers
    );
}

#[tokio::test]
async fn media_goes_out_as_send_photo_and_send_document_with_the_caption_once() {
    let (fake, base) = start_fake().await;
    let http = reqwest::Client::new();
    let message = reply(
        "-1001234567890",
        Some("Your invoice"),
        vec![media("image", "https://media.example/p.png"), media("file", "BQAD-doc")],
    );
    let receipt = TelegramAdapter.send(&http, &api_config(&base, json!({})), &message).await.expect("sent");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("-1001234567890:4242"));
    assert_eq!(
        sent_bodies(&fake.log),
        vec![
            (
                format!("/bot{TOKEN}/sendPhoto"),
                json!({"chat_id": -1001234567890_i64, "photo": "https://media.example/p.png", "caption": "Your invoice"})
            ),
            (format!("/bot{TOKEN}/sendDocument"), json!({"chat_id": -1001234567890_i64, "document": "BQAD-doc"})),
        ]
    );
}

#[tokio::test]
async fn a_wrong_token_is_refused_by_the_fake_and_permanent() {
    let (_fake, base) = start_fake().await;
    let mut config = api_config(&base, json!({}));
    config.secrets["bot_token"] = json!("999:wrong");
    let got = TelegramAdapter.send(&reqwest::Client::new(), &config, &reply("1", Some("x"), vec![])).await;
    assert_eq!(got, Err(DeliveryError::Permanent("Telegram 401: Unauthorized".into())));
}

#[tokio::test]
async fn platform_errors_map_to_transient_throttled_and_permanent() {
    let (_fake, base) = start_fake().await;
    let http = reqwest::Client::new();
    let config = api_config(&base, json!({}));
    let send = |to: &'static str| {
        let (http, config) = (http.clone(), config.clone());
        async move { TelegramAdapter.send(&http, &config, &reply(to, Some("hello"), vec![])).await }
    };
    assert!(matches!(send("500").await, Err(DeliveryError::Transient(_))));
    assert!(matches!(send("502").await, Err(DeliveryError::Transient(_))));
    match send("429").await {
        Err(DeliveryError::Throttled { retry_after_ms, detail }) => {
            assert_eq!(retry_after_ms, 7000);
            assert!(detail.contains("Too Many Requests"), "{detail}");
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert_eq!(
        send("403").await,
        Err(DeliveryError::Permanent("Telegram 403: Forbidden: bot was blocked by the user".into()))
    );
    assert_eq!(send("400").await, Err(DeliveryError::Permanent("Telegram 400: Bad Request: chat not found".into())));
}

#[tokio::test]
async fn transport_failures_are_transient_and_never_reveal_the_token() {
    // A port nothing listens on: bind one, note it, close it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let config = api_config(&format!("http://{addr}"), json!({}));
    let got = TelegramAdapter.send(&reqwest::Client::new(), &config, &reply("1", Some("x"), vec![])).await;
    match got {
        Err(DeliveryError::Transient(detail)) => assert!(!detail.contains(TOKEN), "token leaked: {detail}"),
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test]
async fn sending_without_a_bot_token_is_permanent() {
    let config = ChannelConfig { settings: json!({}), secrets: json!({}) };
    let got = TelegramAdapter.send(&reqwest::Client::new(), &config, &reply("1", Some("x"), vec![])).await;
    assert!(matches!(got, Err(DeliveryError::Permanent(_))), "{got:?}");
}

// ---------------------------------------------------------------------------------------------
// Media download
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn media_downloads_through_get_file_and_the_file_endpoint() {
    let (fake, base) = start_fake().await;
    let http = reqwest::Client::new();
    let (bytes, mime) =
        TelegramAdapter.download(&http, &api_config(&base, json!({})), "AgAD-photo-large").await.expect("downloaded");
    assert_eq!(bytes, b"\xFF\xD8\xFFjpeg-bytes");
    assert_eq!(mime.as_deref(), Some("image/jpeg"), "octet-stream is refined from the file path");
    let log = fake.log.all();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].method.as_str(), log[0].path.clone()), ("GET", format!("/bot{TOKEN}/getFile")));
    assert_eq!(log[0].query.as_deref(), Some("file_id=AgAD-photo-large"));
    assert_eq!(log[1].path, format!("/file/bot{TOKEN}/photos/file_7.jpg"));

    let got = TelegramAdapter.download(&http, &api_config(&base, json!({})), "nope").await;
    assert_eq!(got, Err(DeliveryError::Permanent("Telegram 400: Bad Request: invalid file_id".into())));
    let got = TelegramAdapter.download(&http, &api_config(&base, json!({})), "BIG-file").await;
    assert!(matches!(got, Err(DeliveryError::Permanent(_))), "{got:?}");
}

#[tokio::test]
async fn file_base_url_is_its_own_setting() {
    let (files, files_base) = start_fake().await;
    let (api, api_base) = start_fake().await;
    let config = api_config(&api_base, json!({ "file_base_url": format!("{files_base}/") }));
    TelegramAdapter.download(&reqwest::Client::new(), &config, "AgAD-photo-large").await.expect("downloaded");
    assert_eq!(api.log.all().len(), 1);
    assert_eq!(files.log.all().len(), 1);
    assert!(files.log.all()[0].path.starts_with("/file/"));
}

// ---------------------------------------------------------------------------------------------
// Long polling
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn polling_walks_the_offset_and_never_skips_or_repeats() {
    let (fake, base) = start_fake().await;
    let http = reqwest::Client::new();
    let config = api_config(&base, json!({ "mode": "polling", "poll_timeout_secs": 0 }));

    let page = TelegramAdapter.poll(&http, &config, None).await.expect("page 1");
    let ids: Vec<String> = page
        .events
        .iter()
        .map(|e| match e {
            InboundEvent::Message(m) => m.platform_message_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec!["123456789:11", "123456789:12", "123456789:13", "123456789:14"]);
    assert_eq!(page.next_cursor.as_deref(), Some("1005"));
    let first = &fake.log.all()[0];
    assert_eq!((first.method.as_str(), first.path.clone()), ("GET", format!("/bot{TOKEN}/getUpdates")));
    assert_eq!(first.query.as_deref(), Some("timeout=0&allowed_updates=%5B%22message%22%2C%22edited_message%22%5D"));

    // A server that crashed before persisting the cursor asks again with the old one: the same
    // page comes back (the dedupe key drops the repeats).
    let again = TelegramAdapter.poll(&http, &config, None).await.expect("replay");
    assert_eq!(again.events, page.events);

    // Nothing new: the cursor stays where it was.
    let empty = TelegramAdapter.poll(&http, &config, Some("1005")).await.expect("empty page");
    assert!(empty.events.is_empty());
    assert_eq!(empty.next_cursor.as_deref(), Some("1005"));
    assert!(fake.log.all()[2].query.as_deref().unwrap_or("").starts_with("offset=1005&"));

    // New updates: a channel post (ignored, but its id still advances the cursor) and a message.
    fake.updates.lock().expect("updates").extend([
        serde_json::from_slice::<Value>(&read_fixture("sdk/channel_post.json")).expect("json"),
        serde_json::from_slice::<Value>(&read_fixture("sdk/voice.json")).expect("json"),
    ]);
    let page = TelegramAdapter.poll(&http, &config, Some("1005")).await.expect("page 2");
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.next_cursor.as_deref(), Some("1019"));
}

#[tokio::test]
async fn polling_reads_its_timeout_and_refuses_webhook_mode() {
    let (fake, base) = start_fake().await;
    let http = reqwest::Client::new();
    let default_timeout = api_config(&base, json!({ "mode": "polling" }));
    // The fake answers at once, so the default 25 s long poll does not slow the test.
    TelegramAdapter.poll(&http, &default_timeout, Some("99999")).await.expect("page");
    assert!(fake.log.all()[0].query.as_deref().unwrap_or("").contains("timeout=25&"));
    let as_string = api_config(&base, json!({ "mode": "polling", "poll_timeout_secs": "3" }));
    TelegramAdapter.poll(&http, &as_string, Some("99999")).await.expect("page");
    assert!(fake.log.all()[1].query.as_deref().unwrap_or("").contains("timeout=3&"));

    let webhook = api_config(&base, json!({}));
    assert!(matches!(TelegramAdapter.poll(&http, &webhook, None).await, Err(DeliveryError::Permanent(_))));
    let bad_cursor = api_config(&base, json!({ "mode": "polling" }));
    assert!(matches!(TelegramAdapter.poll(&http, &bad_cursor, Some("abc")).await, Err(DeliveryError::Permanent(_))));
    assert_eq!(fake.log.all().len(), 2, "refused polls never reach Telegram");
}

// ---------------------------------------------------------------------------------------------
// Fuzz
// ---------------------------------------------------------------------------------------------

fn arbitrary_json() -> impl Strategy<Value = Value> {
    fake::arbitrary_json(&["message_id", "chat", "id", "photo", "file_id", "location", "venue", "sticker", "from", "text"], &[])
}

fn must_not_panic(body: &[u8]) {
    let h = headers(&[("X-Telegram-Bot-Api-Secret-Token", SECRET)]);
    let request = WebhookRequest { method: "POST", query: "", headers: &h, body };
    let _ = TelegramAdapter.handle_webhook(&webhook_config(SECRET), &request);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        must_not_panic(&body);
    }

    #[test]
    fn arbitrary_json_never_panics(value in arbitrary_json(), update_id in any::<i64>(), as_edit in any::<bool>()) {
        must_not_panic(&serde_json::to_vec(&value).expect("json"));
        let key = if as_edit { "edited_message" } else { "message" };
        let update = json!({ "update_id": update_id, key: value });
        must_not_panic(&serde_json::to_vec(&update).expect("json"));
    }

    #[test]
    fn arbitrary_messages_with_a_chat_always_parse(value in arbitrary_json(), chat in any::<i64>(), id in any::<i64>()) {
        let mut message = if value.is_object() { value } else { json!({ "payload": value }) };
        message["chat"] = json!({ "id": chat, "type": "private" });
        message["message_id"] = json!(id);
        let body = serde_json::to_vec(&json!({ "update_id": 1, "message": message })).expect("json");
        let m = deliver_one(&body).expect("a message with chat and id is always kept");
        prop_assert_eq!(m.platform_message_id, format!("{chat}:{id}"));
    }
}
