//! The LINE adapter against LINE's documented sample webhooks, webhooks built and signed with
//! the official SDK (fixtures/line/generate.py, line-bot-sdk v3), and a local fake of the
//! Messaging API that checks paths, bearer token, retry key and body schema the way LINE does.

use std::collections::VecDeque;
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
use switchboard_gateway::line::{self, LineAdapter};
use switchboard_gateway::{
    ChannelAdapter, ChannelConfig, ContentKind, DeliveryError, InboundEvent, NormalizedMessage, OutboundMessage,
    ReplyContext, WebhookAnswer, WebhookError, WebhookRequest,
};

use crate::fake::{self, Log, Recorded};

/// Must match CHANNEL_SECRET in fixtures/line/generate.py.
const CHANNEL_SECRET: &str = "8c7a3b5e1f0d4c2a9b6e7f1a2d3c4b5e";
const ACCESS_TOKEN: &str = "line-channel-access-token/abc+def=";

fn cases() -> serde_json::Map<String, Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/line/cases.json");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run fixtures/line/generate.py)", path.display()));
    match serde_json::from_slice(&bytes).expect("cases.json is JSON") {
        Value::Object(map) => map,
        _ => panic!("cases.json is an object"),
    }
}

fn case(name: &str) -> (Vec<u8>, String) {
    let all = cases();
    let c = all.get(name).unwrap_or_else(|| panic!("no case {name}"));
    (c["body"].as_str().expect("body").as_bytes().to_vec(), c["signature"].as_str().expect("signature").to_owned())
}

fn config() -> ChannelConfig {
    ChannelConfig {
        settings: json!({}),
        secrets: json!({ "channel_secret": CHANNEL_SECRET, "channel_access_token": ACCESS_TOKEN }),
    }
}

fn deliver_with(
    config: &ChannelConfig,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Vec<NormalizedMessage>, WebhookError> {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json; charset=utf-8".parse().expect("header"));
    if let Some(sig) = signature {
        headers.insert("x-line-signature", sig.parse().expect("header"));
    }
    let request = WebhookRequest { method: "POST", query: "", headers: &headers, body };
    let outcome = LineAdapter.handle_webhook(config, &request)?;
    assert_eq!(outcome.answer, WebhookAnswer::ok_empty(), "LINE is answered 200");
    Ok(outcome
        .events
        .into_iter()
        .map(|e| match e {
            InboundEvent::Message(m) => m,
            other => panic!("LINE yields messages only, got {other:?}"),
        })
        .collect())
}

fn deliver_case(name: &str) -> Vec<NormalizedMessage> {
    let (body, signature) = case(name);
    deliver_with(&config(), Some(&signature), &body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn only(name: &str) -> NormalizedMessage {
    let mut messages = deliver_case(name);
    assert_eq!(messages.len(), 1, "{name}: one message");
    messages.remove(0)
}

// ---------------------------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------------------------

#[test]
fn every_fixture_verifies_with_the_sdk_signature() {
    let all = cases();
    assert!(all.len() >= 20, "generator wrote {} cases", all.len());
    for (name, c) in &all {
        let body = c["body"].as_str().expect("body").as_bytes();
        let sig = c["signature"].as_str().expect("signature");
        // The SDK's signature equals ours, and the adapter accepts it.
        assert_eq!(line::sign(CHANNEL_SECRET, body), sig, "{name}");
        deliver_with(&config(), Some(sig), body).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn sdk_messages_of_every_kind_are_normalized() {
    let text = only("sdk_text");
    assert_eq!(text.kind, ContentKind::Text);
    assert_eq!(text.platform_message_id, "500000000000000001");
    assert_eq!(text.contact_external_id, "U4af4980629a1b2c3d4e5f6a7b8c9d0e1");
    assert_eq!(text.text.as_deref(), Some("Hello, I need help with my order 🙂"));
    assert_eq!(
        text.reply_context,
        Some(ReplyContext {
            token: "replytoken0000000000000000000001".into(),
            expires_at_ms: 1_700_000_000_001 + 50_000
        })
    );
    assert_eq!(text.raw["webhookEventId"], "01HSDKEVENT000000000000001");

    let image = only("sdk_image");
    assert_eq!(image.kind, ContentKind::Image);
    assert_eq!(
        image.attachments,
        vec![Attachment {
            kind: "image".into(),
            url: Some("500000000000000002".into()),
            name: None,
            mime: None,
            size: None
        }]
    );

    let external = only("sdk_image_external");
    assert_eq!(
        external.attachments[0].url.as_deref(),
        Some("https://cdn.example.com/original.jpg"),
        "external content is referenced by its URL"
    );

    let video = only("sdk_video");
    assert_eq!(
        (video.kind, video.attachments[0].kind.as_str(), video.attachments[0].url.as_deref()),
        (ContentKind::Video, "video", Some("500000000000000004"))
    );

    let audio = only("sdk_audio");
    assert_eq!((audio.kind, audio.attachments[0].kind.as_str()), (ContentKind::Audio, "audio"));

    let file = only("sdk_file");
    assert_eq!(file.kind, ContentKind::File);
    assert_eq!(
        file.attachments,
        vec![Attachment {
            kind: "file".into(),
            url: Some("500000000000000006".into()),
            name: Some("invoice-2024.pdf".into()),
            mime: None,
            size: Some(48213)
        }]
    );

    let location = only("sdk_location");
    assert_eq!(location.kind, ContentKind::Location);
    assert_eq!(location.text.as_deref(), Some("LINE Yahoo\nTokyo, Chiyoda, Kioicho 1-3"));
    assert_eq!(location.attachments[0].url.as_deref(), Some("geo:35.67966,139.73669"));

    let sticker = only("sdk_sticker");
    assert_eq!(sticker.kind, ContentKind::Sticker);
    assert_eq!(
        (sticker.raw["message"]["packageId"].as_str(), sticker.raw["message"]["stickerId"].as_str()),
        (Some("446"), Some("1988"))
    );

    let group = only("sdk_group_text");
    assert_eq!(
        group.contact_external_id, "Ca56f94637cc4347f90a25382909b24b9",
        "group messages are answered in the group"
    );
}

#[test]
fn docs_samples_of_every_kind_are_normalized() {
    let text = only("docs_text");
    assert_eq!((text.kind, text.platform_message_id.as_str()), (ContentKind::Text, "444573844083572737"));
    assert_eq!(text.text.as_deref(), Some("@All @example Good Morning!! (love)"));
    assert_eq!(text.contact_external_id, "U4af4980629...");
    assert_eq!(text.reply_context.as_ref().map(|r| r.expires_at_ms), Some(1_462_629_479_859 + 50_000));

    let image = only("docs_image");
    assert_eq!((image.kind, image.attachments[0].url.as_deref()), (ContentKind::Image, Some("354718705033693859")));
    let video = only("docs_video");
    assert_eq!(
        (video.kind, video.attachments[0].url.as_deref()),
        (ContentKind::Video, Some("https://example.com/original.mp4"))
    );
    assert_eq!(only("docs_audio").kind, ContentKind::Audio);
    let file = only("docs_file");
    assert_eq!(
        (file.kind, file.attachments[0].name.as_deref(), file.attachments[0].size),
        (ContentKind::File, Some("file.txt"), Some(2138))
    );
    let location = only("docs_location");
    assert_eq!(location.kind, ContentKind::Location);
    assert_eq!(location.attachments[0].url.as_deref(), Some("geo:35.67966,139.73669"));
    let sticker = only("docs_sticker");
    assert_eq!((sticker.kind, sticker.platform_message_id.as_str()), (ContentKind::Sticker, "1501597916"));
}

#[test]
fn non_message_events_are_acknowledged_and_skipped() {
    assert!(deliver_case("sdk_non_message_events").is_empty(), "follow, unfollow, postback are not messages");
    assert!(deliver_case("docs_follow").is_empty());
    assert!(deliver_case("docs_verify_button").is_empty(), "the console's Verify button sends no events");
    let batch = deliver_case("sdk_mixed_batch");
    let ids: Vec<_> = batch.iter().map(|m| m.platform_message_id.as_str()).collect();
    assert_eq!(ids, ["500000000000000014", "500000000000000016"], "messages around a follow event, in order");
}

#[test]
fn a_redelivery_keeps_the_message_id_and_its_stale_token_is_expired() {
    let first = only("sdk_text");
    let again = only("sdk_redelivered_text");
    assert_eq!(again.raw["deliveryContext"]["isRedelivery"], true);
    assert_eq!(first.platform_message_id, again.platform_message_id, "the server dedupes on message.id");
}

#[test]
fn unknown_message_kinds_are_kept_as_unsupported() {
    let body = json!({
        "destination": "Ub0f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9",
        "events": [{
            "type": "message", "mode": "active", "timestamp": 1_700_000_000_000_i64,
            "source": { "type": "user", "userId": "Uabc" },
            "webhookEventId": "01X", "deliveryContext": { "isRedelivery": false },
            "replyToken": "tok",
            "message": { "type": "hologram", "id": "777", "payload": { "x": 1 } }
        }]
    })
    .to_string();
    let messages =
        deliver_with(&config(), Some(&line::sign(CHANNEL_SECRET, body.as_bytes())), body.as_bytes()).expect("accepted");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].kind, ContentKind::Unsupported);
    assert_eq!(messages[0].platform_message_id, "777");
    assert_eq!(messages[0].raw["message"]["payload"]["x"], 1, "the raw payload is kept");
}

#[test]
fn forged_or_missing_signatures_are_unauthorized() {
    let (body, signature) = case("sdk_text");
    let unauthorized = |r: Result<Vec<NormalizedMessage>, WebhookError>| {
        assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "{r:?}")
    };

    unauthorized(deliver_with(&config(), None, &body));
    unauthorized(deliver_with(&config(), Some(""), &body));
    unauthorized(deliver_with(&config(), Some(&line::sign("another-secret", &body)), &body));
    let mut tampered = body.clone();
    let at = tampered.iter().position(|&b| b == b'H').expect("an H in the text");
    tampered[at] = b'J';
    unauthorized(deliver_with(&config(), Some(&signature), &tampered));
    // A signature over re-serialized JSON is not a signature over the raw body.
    let reserialized = serde_json::to_vec(&serde_json::from_slice::<Value>(&body).expect("json")).expect("json");
    assert_ne!(reserialized, body);
    unauthorized(deliver_with(&config(), Some(&signature), &reserialized));

    let unconfigured = ChannelConfig { settings: json!({}), secrets: json!({}) };
    assert!(matches!(deliver_with(&unconfigured, Some(&signature), &body), Err(WebhookError::NotConfigured(_))));
}

#[test]
fn signed_garbage_is_malformed_not_a_panic() {
    for body in [&b"not json"[..], b"{}", b"{\"events\": 3}", b"[]"] {
        let r = deliver_with(&config(), Some(&line::sign(CHANNEL_SECRET, body)), body);
        assert!(matches!(r, Err(WebhookError::Malformed(_))), "{r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A fake of the Messaging API
// ---------------------------------------------------------------------------------------------

/// A scripted answer: status, JSON body, extra headers.
type Answer = (u16, Value, Vec<(&'static str, String)>);

#[derive(Clone, Default)]
struct FakeLine {
    log: Log,
    /// Answers to give, in order, to reply/push requests that pass validation; then 200.
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// Reply tokens LINE considers already used.
    spent_tokens: Arc<Mutex<Vec<String>>>,
}

fn line_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// Checks one message object the way LINE's schema does for the kinds we send.
fn valid_message(m: &Value) -> Result<(), String> {
    let https = |key: &str| match m.get(key).and_then(Value::as_str) {
        Some(u) if u.starts_with("https://") || u.starts_with("http://127.0.0.1") => Ok(()),
        _ => Err(format!("{key} must be an HTTPS URL")),
    };
    match m.get("type").and_then(Value::as_str) {
        Some("text") => match m.get("text").and_then(Value::as_str) {
            Some(t) if !t.is_empty() && t.chars().count() <= 5000 => {}
            _ => return Err("text must be 1..5000 characters".into()),
        },
        Some("image") => {
            https("originalContentUrl")?;
            https("previewImageUrl")?;
        }
        other => return Err(format!("unexpected message type {other:?}")),
    }
    let allowed: &[&str] = &["type", "text", "originalContentUrl", "previewImageUrl"];
    match m.as_object() {
        Some(obj) if obj.keys().all(|k| allowed.contains(&k.as_str())) => Ok(()),
        _ => Err(format!("unexpected properties in {m}")),
    }
}

async fn fake_line_api(
    State(fake): State<FakeLine>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    fake.log.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: body.to_vec(),
    });
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {ACCESS_TOKEN}")) {
        return line_error(
            StatusCode::UNAUTHORIZED,
            "Authentication failed. Confirm that the access token in the authorization header is valid.",
        );
    }
    let path = uri.path();
    if method == Method::GET {
        return match path.strip_prefix("/v2/bot/message/").and_then(|p| p.strip_suffix("/content")) {
            Some("500000000000000002") => {
                ([("content-type", "image/jpeg")], &b"\xFF\xD8\xFFfake-jpeg"[..]).into_response()
            }
            Some("500000000000000004") => StatusCode::ACCEPTED.into_response(),
            _ => line_error(StatusCode::NOT_FOUND, "Not found"),
        };
    }
    if method != Method::POST || headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return line_error(StatusCode::BAD_REQUEST, "expected a JSON POST");
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return line_error(StatusCode::BAD_REQUEST, "The request body could not be parsed as JSON");
    };
    let messages = payload.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    if messages.is_empty() || messages.len() > 5 {
        return line_error(StatusCode::BAD_REQUEST, "messages must contain 1 to 5 items");
    }
    if let Some(err) = messages.iter().find_map(|m| valid_message(m).err()) {
        return line_error(StatusCode::BAD_REQUEST, &err);
    }
    match path {
        "/v2/bot/message/reply" => {
            let Some(token) = payload.get("replyToken").and_then(Value::as_str) else {
                return line_error(StatusCode::BAD_REQUEST, "replyToken is required");
            };
            if payload.as_object().map(|o| o.len()) != Some(2) {
                return line_error(StatusCode::BAD_REQUEST, "unexpected properties");
            }
            let mut spent = fake.spent_tokens.lock().expect("lock");
            if spent.iter().any(|t| t == token) {
                return line_error(StatusCode::BAD_REQUEST, "Invalid reply token");
            }
            spent.push(token.to_owned());
        }
        "/v2/bot/message/push" => {
            if payload.get("to").and_then(Value::as_str).is_none_or(str::is_empty)
                || payload.as_object().map(|o| o.len()) != Some(2)
            {
                return line_error(StatusCode::BAD_REQUEST, "to is required");
            }
            let key = headers.get("x-line-retry-key").and_then(|v| v.to_str().ok());
            if key.is_some_and(|k| uuid::Uuid::parse_str(k).is_err()) {
                return line_error(StatusCode::BAD_REQUEST, "The value for the 'X-Line-Retry-Key' header is invalid");
            }
        }
        _ => return line_error(StatusCode::NOT_FOUND, "Not found"),
    }
    let (status, answer, extra) = fake.script.lock().expect("lock").pop_front().unwrap_or_else(|| {
        let sent: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, _)| json!({ "id": format!("46183813{i:010}"), "quoteToken": "IStG5h1Tz7b..." }))
            .collect();
        (200, json!({ "sentMessages": sent }), Vec::new())
    });
    let mut response = (StatusCode::from_u16(status).expect("status"), axum::Json(answer)).into_response();
    for (k, v) in extra {
        response.headers_mut().insert(k, v.parse().expect("header"));
    }
    response
}

async fn start_fake() -> (FakeLine, ChannelConfig) {
    let fake = FakeLine::default();
    let router = Router::new().fallback(fake_line_api).with_state(fake.clone());
    let (base, _) = fake::serve(router).await;
    let config = ChannelConfig {
        settings: json!({ "api_base_url": base, "data_api_base_url": format!("{base}/") }),
        secrets: json!({ "channel_secret": CHANNEL_SECRET, "channel_access_token": ACCESS_TOKEN }),
    };
    (fake, config)
}

fn outbound(text: &str, delivery_id: &str, reply: Option<ReplyContext>, now_ms: i64) -> OutboundMessage {
    OutboundMessage {
        to: "U4af4980629a1b2c3d4e5f6a7b8c9d0e1".into(),
        text: Some(text.into()),
        attachments: Vec::new(),
        delivery_id: delivery_id.into(),
        reply_context: reply,
        last_inbound_at_ms: None,
        now_ms,
        files: Vec::new(),
    }
}

fn header<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn body_json(r: &Recorded) -> Value {
    serde_json::from_slice(&r.body).expect("JSON body")
}

// ---------------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_fresh_reply_token_uses_the_reply_api() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let reply = Some(ReplyContext { token: "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA".into(), expires_at_ms: 1_000_050_000 });
    let receipt = LineAdapter
        .send(&http, &config, &outbound("Hello from support", "d-1", reply, 1_000_010_000))
        .await
        .expect("sent");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("461838130000000000"));

    let log = fake.log.all();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/v2/bot/message/reply");
    assert_eq!(
        body_json(&log[0]),
        json!({ "replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", "messages": [{ "type": "text", "text": "Hello from support" }] })
    );
}

#[tokio::test]
async fn an_expired_or_missing_token_pushes_with_a_stable_retry_key() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let expired = Some(ReplyContext { token: "old".into(), expires_at_ms: 1_000_000_000 });
    LineAdapter.send(&http, &config, &outbound("one", "delivery-42", expired, 1_000_000_000)).await.expect("sent");
    LineAdapter.send(&http, &config, &outbound("one", "delivery-42", None, 1_000_000_000)).await.expect("sent again");
    LineAdapter.send(&http, &config, &outbound("two", "delivery-43", None, 1_000_000_000)).await.expect("sent");

    let log = fake.log.all();
    assert!(log.iter().all(|r| r.path == "/v2/bot/message/push"), "{log:?}");
    assert_eq!(
        body_json(&log[0]),
        json!({ "to": "U4af4980629a1b2c3d4e5f6a7b8c9d0e1", "messages": [{ "type": "text", "text": "one" }] })
    );
    let keys: Vec<_> = log.iter().map(|r| header(r, "x-line-retry-key").expect("retry key").to_owned()).collect();
    assert_eq!(keys[0], keys[1], "a retry of the same delivery reuses its key");
    assert_ne!(keys[0], keys[2]);
    assert_eq!(keys[0], line::retry_key("delivery-42"));
    assert_eq!(header(&log[0], "authorization"), Some(format!("Bearer {ACCESS_TOKEN}").as_str()));
}

#[tokio::test]
async fn a_spent_reply_token_falls_back_to_push() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let reply = ReplyContext { token: "once".into(), expires_at_ms: 2_000 };
    LineAdapter.send(&http, &config, &outbound("first", "d-a", Some(reply.clone()), 1_000)).await.expect("replied");
    let receipt =
        LineAdapter.send(&http, &config, &outbound("second", "d-b", Some(reply), 1_500)).await.expect("pushed");
    assert!(receipt.platform_message_id.is_some());
    let paths: Vec<_> = fake.log.all().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v2/bot/message/reply", "/v2/bot/message/reply", "/v2/bot/message/push"]);
}

#[tokio::test]
async fn images_are_sent_as_image_messages_and_other_files_as_links() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let mut message = outbound("Here you go", "d-img", None, 0);
    message.attachments = vec![
        Attachment {
            kind: "image".into(),
            url: Some("https://media.example.com/a.jpg".into()),
            name: None,
            mime: Some("image/jpeg".into()),
            size: None,
        },
        Attachment {
            kind: "file".into(),
            url: Some("https://media.example.com/manual.pdf".into()),
            name: Some("manual.pdf".into()),
            mime: None,
            size: None,
        },
    ];
    LineAdapter.send(&http, &config, &message).await.expect("sent");
    let log = fake.log.all();
    assert_eq!(
        body_json(&log[0])["messages"],
        json!([
            { "type": "text", "text": "Here you go\nmanual.pdf: https://media.example.com/manual.pdf" },
            { "type": "image", "originalContentUrl": "https://media.example.com/a.jpg", "previewImageUrl": "https://media.example.com/a.jpg" }
        ])
    );

    let mut no_url = outbound("x", "d-bad", None, 0);
    no_url.attachments = vec![Attachment { kind: "image".into(), url: None, name: None, mime: None, size: None }];
    assert!(matches!(LineAdapter.send(&http, &config, &no_url).await, Err(DeliveryError::Permanent(_))));
    assert_eq!(fake.log.all().len(), 1, "nothing sent for an attachment LINE cannot take");
}

#[tokio::test]
async fn platform_errors_are_classified() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let script = |answers: Vec<Answer>| *fake.script.lock().expect("lock") = answers.into();
    let message = outbound("hi", "d-err", None, 0);
    let send = || LineAdapter.send(&http, &config, &message);

    script(vec![(500, json!({ "message": "An error occurred in the API server" }), vec![])]);
    assert!(matches!(send().await, Err(DeliveryError::Transient(_))));

    script(vec![(
        429,
        json!({ "message": "The API rate limit has been exceeded. Try again later." }),
        vec![("retry-after", "3".into())],
    )]);
    assert_eq!(
        send().await,
        Err(DeliveryError::Throttled {
            retry_after_ms: 3_000,
            detail: "LINE HTTP 429: The API rate limit has been exceeded. Try again later.".into()
        })
    );

    script(vec![(429, json!({ "message": "Too many requests" }), vec![])]);
    assert!(matches!(send().await, Err(DeliveryError::Throttled { retry_after_ms: 5_000, .. })));

    script(vec![(429, json!({ "message": "You have reached your monthly limit." }), vec![])]);
    assert!(matches!(send().await, Err(DeliveryError::Permanent(_))));

    script(vec![(
        400,
        json!({ "message": "The property, 'to', in the request body is invalid (line: -, column: -)" }),
        vec![],
    )]);
    assert!(matches!(send().await, Err(DeliveryError::Permanent(m)) if m.contains("'to'")));

    script(vec![(403, json!({ "message": "Access to this API is not available for your account" }), vec![])]);
    assert!(matches!(send().await, Err(DeliveryError::Permanent(_))));

    // The retry key was accepted by an earlier attempt whose answer we lost: delivered once.
    script(vec![(
        409,
        json!({ "message": "The retry key is already accepted", "sentMessages": [{ "id": "461230966842064897", "quoteToken": "q" }] }),
        vec![],
    )]);
    assert_eq!(send().await.expect("already delivered").platform_message_id.as_deref(), Some("461230966842064897"));

    let bad_token = ChannelConfig {
        secrets: json!({ "channel_secret": CHANNEL_SECRET, "channel_access_token": "wrong" }),
        ..config.clone()
    };
    assert!(
        matches!(LineAdapter.send(&http, &bad_token, &outbound("hi", "d", None, 0)).await, Err(DeliveryError::Permanent(m)) if m.contains("401"))
    );

    let unreachable = ChannelConfig { settings: json!({ "api_base_url": "http://127.0.0.1:9" }), ..config.clone() };
    assert!(matches!(
        LineAdapter.send(&http, &unreachable, &outbound("hi", "d", None, 0)).await,
        Err(DeliveryError::Transient(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn media_is_downloaded_from_the_content_api() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let image = only("sdk_image");
    let media_ref = image.attachments[0].url.as_deref().expect("ref");
    let (bytes, mime) = LineAdapter.download(&http, &config, media_ref).await.expect("downloaded");
    assert_eq!(bytes, b"\xFF\xD8\xFFfake-jpeg");
    assert_eq!(mime.as_deref(), Some("image/jpeg"));
    let log = fake.log.all();
    assert_eq!((log[0].method.as_str(), log[0].path.as_str()), ("GET", "/v2/bot/message/500000000000000002/content"));

    // A video still being prepared (202) is retried later; an unknown id is gone for good.
    assert!(matches!(
        LineAdapter.download(&http, &config, "500000000000000004").await,
        Err(DeliveryError::Transient(_))
    ));
    assert!(matches!(LineAdapter.download(&http, &config, "404404").await, Err(DeliveryError::Permanent(_))));
}

#[tokio::test]
async fn external_content_is_fetched_without_line_credentials() {
    let log = Log::default();
    let seen = log.clone();
    let router = Router::new().route(
        "/original.jpg",
        axum::routing::get(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.push(Recorded {
                    method: "GET".into(),
                    path: "/original.jpg".into(),
                    query: None,
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                        .collect(),
                    body: Vec::new(),
                });
                ([("content-type", "image/jpeg")], "external-bytes")
            }
        }),
    );
    let (base, _) = fake::serve(router).await;
    let (bytes, _) = LineAdapter
        .download(&reqwest::Client::new(), &config(), &format!("{base}/original.jpg"))
        .await
        .expect("downloaded");
    assert_eq!(bytes, b"external-bytes");
    assert!(header(&log.all()[0], "authorization").is_none(), "the channel token never leaves for a third-party host");
}

// ---------------------------------------------------------------------------------------------
// Fuzz
// ---------------------------------------------------------------------------------------------

fn arbitrary_json() -> impl Strategy<Value = Value> {
    fake::arbitrary_json(&["type", "events", "message", "source", "id", "userId", "replyToken", "timestamp", "latitude", "contentProvider"], &["message", "text", "image", "location"])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn signed_arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = deliver_with(&config(), Some(&line::sign(CHANNEL_SECRET, &body)), &body);
    }

    #[test]
    fn signed_arbitrary_json_never_panics(events in prop::collection::vec(arbitrary_json(), 0..4), top in arbitrary_json()) {
        for value in [json!({ "destination": "U", "events": events }), top] {
            let body = serde_json::to_vec(&value).expect("json");
            let _ = deliver_with(&config(), Some(&line::sign(CHANNEL_SECRET, &body)), &body);
        }
    }
}
