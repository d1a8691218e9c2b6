//! WhatsApp Cloud API adapter: Meta's documented webhook samples (signed here), forged
//! signatures, every message kind, sends and media downloads against a local fake of Graph.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_core::domain::{Attachment, ChannelKind, DeliveryStatus};
use switchboard_gateway::meta;
use switchboard_gateway::whatsapp::{WhatsappAdapter, TEMPLATE_REQUIRED};
use switchboard_gateway::{
    ChannelAdapter, ChannelConfig, ContentKind, DeliveryError, InboundEvent, NormalizedMessage, OutboundMessage,
    WebhookError, WebhookOutcome, WebhookRequest,
};

use crate::fake::{self, Log, Recorded};

const APP_SECRET: &str = "wa-app-secret";
const VERIFY_TOKEN: &str = "wa-verify-token";
const ACCESS_TOKEN: &str = "wa-access-token";
const PHONE_NUMBER_ID: &str = "106540352242922";
const CUSTOMER: &str = "16505551234";
const HOUR_MS: i64 = 60 * 60 * 1000;

fn config(base: &str) -> ChannelConfig {
    ChannelConfig {
        settings: json!({ "api_base_url": base, "api_version": "v21.0", "phone_number_id": PHONE_NUMBER_ID }),
        secrets: json!({ "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "access_token": ACCESS_TOKEN }),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/whatsapp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn post(config: &ChannelConfig, body: &[u8], signature: Option<&str>) -> Result<WebhookOutcome, WebhookError> {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", http::HeaderValue::from_static("application/json"));
    if let Some(sig) = signature {
        headers.insert("x-hub-signature-256", http::HeaderValue::from_str(sig).expect("header value"));
    }
    WhatsappAdapter.handle_webhook(config, &WebhookRequest { method: "POST", query: "", headers: &headers, body })
}

fn post_signed(body: &[u8]) -> Result<WebhookOutcome, WebhookError> {
    post(&config("http://unused"), body, Some(&meta::sign(APP_SECRET, body)))
}

fn only_message(name: &str) -> NormalizedMessage {
    let outcome = post_signed(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(outcome.answer.status, 200);
    match outcome.events.as_slice() {
        [InboundEvent::Message(m)] => m.clone(),
        other => panic!("{name}: expected one message, got {other:?}"),
    }
}

fn get(config: &ChannelConfig, query: &str) -> Result<WebhookOutcome, WebhookError> {
    let headers = http::HeaderMap::new();
    WhatsappAdapter.handle_webhook(config, &WebhookRequest { method: "GET", query, headers: &headers, body: b"" })
}

#[test]
fn handshake_echoes_the_challenge_for_the_right_verify_token() {
    let cfg = config("http://unused");
    let ok = get(&cfg, &format!("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"))
        .expect("handshake");
    assert_eq!(ok.answer.status, 200);
    assert_eq!(ok.answer.content_type, "text/plain");
    assert_eq!(ok.answer.body, b"1158201444");
    assert!(ok.events.is_empty());

    let wrong = get(&cfg, "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess");
    assert!(matches!(wrong, Err(WebhookError::Unauthorized(_))), "{wrong:?}");
    let missing = get(&cfg, "hub.mode=subscribe&hub.challenge=1158201444");
    assert!(matches!(missing, Err(WebhookError::Unauthorized(_))), "{missing:?}");

    let unconfigured = ChannelConfig { settings: cfg.settings.clone(), secrets: json!({ "app_secret": APP_SECRET }) };
    let r = get(&unconfigured, &format!("hub.mode=subscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}"));
    assert!(matches!(r, Err(WebhookError::NotConfigured(_))), "{r:?}");
}

#[test]
fn signature_matches_an_independent_implementation() {
    // Computed with Python: hmac.new(b"wa-app-secret", body, hashlib.sha256).hexdigest()
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    assert_eq!(meta::sign(APP_SECRET, body), "sha256=5d8600dd18d931fa54fbc46cd5f6ee9caca30e6f09a2ad538012d04401e3b5a9");
    let outcome = post(
        &config("http://unused"),
        body,
        Some("sha256=5d8600dd18d931fa54fbc46cd5f6ee9caca30e6f09a2ad538012d04401e3b5a9"),
    );
    assert_eq!(outcome.expect("valid signature").events, vec![]);
}

#[test]
fn forged_or_missing_signatures_are_refused() {
    let cfg = config("http://unused");
    let body = fixture("text.json");
    let good = meta::sign(APP_SECRET, &body);
    assert!(post(&cfg, &body, Some(&good)).is_ok());

    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'?').expect("a ? in the text fixture");
    tampered[at] = b'!';
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("missing header", body.clone(), None),
        ("other secret", body.clone(), Some(meta::sign("not-the-secret", &body))),
        ("tampered body", tampered, Some(good.clone())),
        ("no sha256= prefix", body.clone(), Some(good.trim_start_matches("sha256=").to_owned())),
        ("sha1 header", body.clone(), Some(format!("sha1={}", &good[7..47]))),
        ("not hex", body.clone(), Some("sha256=zz".into())),
        ("truncated", body.clone(), Some(good[..good.len() - 2].to_owned())),
        ("empty", body.clone(), Some(String::new())),
    ];
    for (name, b, sig) in cases {
        let r = post(&cfg, &b, sig.as_deref());
        assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "{name}: {r:?}");
    }

    let no_secret = ChannelConfig { settings: cfg.settings.clone(), secrets: json!({ "verify_token": VERIFY_TOKEN }) };
    assert!(matches!(post(&no_secret, &body, Some(&good)), Err(WebhookError::NotConfigured(_))));
}

#[test]
fn text_message_carries_wamid_phone_and_profile_name() {
    let m = only_message("text.json");
    assert_eq!(m.platform_message_id, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
    assert_eq!(m.contact_external_id, CUSTOMER);
    assert_eq!(m.contact_name.as_deref(), Some("Kerry Fisher"));
    assert_eq!(m.kind, ContentKind::Text);
    assert_eq!(m.text.as_deref(), Some("Does it come in another color?"));
    assert!(m.attachments.is_empty());
    assert_eq!(m.raw["type"], "text");
}

#[test]
fn every_media_kind_maps_to_its_content_kind_with_the_media_id() {
    let cases = [
        (
            "image.json",
            ContentKind::Image,
            "image",
            "1003383421387256",
            Some("image/jpeg"),
            Some("Sample caption"),
            None,
        ),
        (
            "document.json",
            ContentKind::File,
            "file",
            "1376223850470843",
            Some("application/pdf"),
            Some("Receipt"),
            Some("receipt.pdf"),
        ),
        ("audio.json", ContentKind::Audio, "audio", "1591389068159798", Some("audio/ogg; codecs=opus"), None, None),
        ("video.json", ContentKind::Video, "video", "1166846181421424", Some("video/mp4"), Some("How it looks"), None),
        ("sticker.json", ContentKind::Sticker, "sticker", "1628216724776829", Some("image/webp"), None, None),
    ];
    for (file, kind, attachment_kind, media_id, mime, caption, filename) in cases {
        let m = only_message(file);
        assert_eq!(m.kind, kind, "{file}");
        assert_eq!(m.contact_external_id, CUSTOMER, "{file}");
        assert_eq!(m.text.as_deref(), caption, "{file}");
        assert_eq!(
            m.attachments,
            vec![Attachment {
                kind: attachment_kind.into(),
                url: Some(media_id.into()),
                name: filename.map(str::to_owned),
                mime: mime.map(str::to_owned),
                size: None
            }],
            "{file}"
        );
    }
}

#[test]
fn location_becomes_a_geo_attachment_with_its_label() {
    let m = only_message("location.json");
    assert_eq!(m.kind, ContentKind::Location);
    assert_eq!(m.text.as_deref(), Some("Solomon R. Guggenheim Museum\n1071 5th Ave, New York, NY 10128"));
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].kind, "location");
    assert_eq!(m.attachments[0].url.as_deref(), Some("geo:40.782910059774,-73.959075808525"));
    assert_eq!(m.attachments[0].name.as_deref(), Some("Solomon R. Guggenheim Museum"));
}

#[test]
fn interactive_button_reaction_contacts_and_unknown_are_unsupported_with_raw() {
    for (file, text) in [
        ("interactive.json", Some("Cancel")),
        ("button.json", Some("Stop promotions")),
        ("reaction.json", None),
        ("contacts.json", None),
        ("unsupported.json", None),
    ] {
        let m = only_message(file);
        assert_eq!(m.kind, ContentKind::Unsupported, "{file}");
        assert_eq!(m.text.as_deref(), text, "{file}");
        assert!(m.attachments.is_empty(), "{file}");
        assert_eq!(m.contact_external_id, CUSTOMER, "{file}");
        assert!(m.platform_message_id.starts_with("wamid."), "{file}");
        // The platform's payload is kept whole.
        let original: Value = serde_json::from_slice(&fixture(file)).expect("json");
        assert_eq!(m.raw, original["entry"][0]["changes"][0]["value"]["messages"][0], "{file}");
    }
}

#[test]
fn statuses_become_delivery_events() {
    let outcome = post_signed(&fixture("statuses.json")).expect("statuses");
    let id = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA".to_owned();
    assert_eq!(
        outcome.events,
        vec![
            InboundEvent::Status { platform_message_id: id.clone(), status: DeliveryStatus::Sent },
            InboundEvent::Status { platform_message_id: id.clone(), status: DeliveryStatus::Delivered },
            InboundEvent::Status { platform_message_id: id, status: DeliveryStatus::Read },
            InboundEvent::Status {
                platform_message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RDZCNUFBQjVGMUQyMEVBQjEA".into(),
                status: DeliveryStatus::Failed
            },
        ]
    );
}

#[test]
fn batches_are_flattened_and_other_numbers_skipped() {
    let outcome = post_signed(&fixture("batch.json")).expect("batch");
    let summary: Vec<(String, Option<String>)> = outcome
        .events
        .iter()
        .map(|e| match e {
            InboundEvent::Message(m) => (m.platform_message_id.clone(), m.contact_name.clone()),
            InboundEvent::Status { platform_message_id, .. } => (platform_message_id.clone(), None),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("wamid.BATCH1".into(), Some("Kerry Fisher".into())),
            ("wamid.BATCH2".into(), Some("Pablo Morales".into())),
            ("wamid.OUT1".into(), None),
        ]
    );
}

#[test]
fn other_fields_are_acknowledged_and_foreign_objects_refused() {
    assert_eq!(post_signed(&fixture("template_status_update.json")).expect("template update").events, vec![]);
    let page = br#"{"object":"page","entry":[]}"#;
    assert!(matches!(post_signed(page), Err(WebhookError::Malformed(_))));
    assert!(matches!(post_signed(b"not json"), Err(WebhookError::Malformed(_))));
    assert!(matches!(post_signed(br#"{"object":"whatsapp_business_account"}"#), Err(WebhookError::Malformed(_))));
}

// ---------------------------------------------------------------------------------------------
// The fake Graph API.

#[derive(Clone)]
struct Graph {
    log: Log,
    sent: Arc<AtomicUsize>,
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body =
        json!({ "error": { "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGh123" } });
    (status, axum::Json(body)).into_response()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    k.sort_unstable();
    k
}

/// Checks a Cloud API `messages` body the way Graph does; `Err` is Graph's complaint.
fn check_message_body(body: &Value) -> Result<String, String> {
    let kind = body["type"].as_str().ok_or("type missing")?;
    let mut expected = vec!["messaging_product", "recipient_type", "to", "type", kind];
    expected.sort_unstable();
    if keys(body) != expected {
        return Err(format!("unexpected top-level keys {:?}", keys(body)));
    }
    if body["messaging_product"] != "whatsapp" || body["recipient_type"] != "individual" {
        return Err("messaging_product / recipient_type".into());
    }
    let to = body["to"].as_str().filter(|t| !t.is_empty()).ok_or("to missing")?;
    let part = &body[kind];
    let allowed: &[&str] = match kind {
        "text" => &["body", "preview_url"],
        "image" | "video" => &["caption", "link"],
        "document" => &["caption", "filename", "link"],
        "audio" | "sticker" => &["link"],
        other => return Err(format!("unexpected type {other}")),
    };
    if keys(part).iter().any(|k| !allowed.contains(k)) {
        return Err(format!("unexpected {kind} keys {:?}", keys(part)));
    }
    let required = if kind == "text" { "body" } else { "link" };
    if part[required].as_str().is_none_or(str::is_empty) {
        return Err(format!("{kind}.{required} missing"));
    }
    Ok(to.to_owned())
}

async fn graph(State(state): State<Graph>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    state.log.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: body.to_vec(),
    });
    let authorized =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {ACCESS_TOKEN}"));
    if !authorized {
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token - Cannot parse access token");
    }
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1").to_owned();
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v21.0", number, "messages"]) => {
            if *number != PHONE_NUMBER_ID {
                return graph_error(StatusCode::BAD_REQUEST, 100, "Unsupported post request. Object does not exist");
            }
            if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
                return graph_error(StatusCode::BAD_REQUEST, 100, "content-type must be application/json");
            }
            let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
                return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid JSON");
            };
            let to = match check_message_body(&parsed) {
                Ok(to) => to,
                Err(why) => return graph_error(StatusCode::BAD_REQUEST, 100, &format!("(#100) Invalid parameter: {why}")),
            };
            match to.as_str() {
                "15550000500" => graph_error(StatusCode::INTERNAL_SERVER_ERROR, 1, "An unknown error has occurred."),
                "15550000429" => {
                    let mut r = graph_error(StatusCode::TOO_MANY_REQUESTS, 130429, "(#130429) Rate limit hit");
                    r.headers_mut().insert("retry-after", "7".parse().expect("header"));
                    r
                }
                "15550131056" => graph_error(StatusCode::BAD_REQUEST, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
                "15550000400" => graph_error(StatusCode::BAD_REQUEST, 131030, "(#131030) Recipient phone number not in allowed list"),
                "15550131047" => graph_error(StatusCode::BAD_REQUEST, 131047, "(#131047) Re-engagement message"),
                _ => {
                    let n = state.sent.fetch_add(1, Ordering::SeqCst) + 1;
                    let answer = json!({
                        "messaging_product": "whatsapp",
                        "contacts": [{ "input": to, "wa_id": to }],
                        "messages": [{ "id": format!("wamid.SENT{n}") }]
                    });
                    axum::Json(answer).into_response()
                }
            }
        }
        ("GET", ["v21.0", "1003383421387256"]) => axum::Json(json!({
            "messaging_product": "whatsapp",
            "url": format!("http://{host}/whatsapp_business/attachments/?mid=1003383421387256&ext=1739321024&hash=ATtest"),
            "mime_type": "image/jpeg",
            "sha256": "0nZcqsShsl/BYmZTn9Mi/1oiO8/wKYVTldmmrWEJJjM=",
            "file_size": 5,
            "id": "1003383421387256"
        }))
        .into_response(),
        ("GET", ["v21.0", _]) => graph_error(StatusCode::BAD_REQUEST, 100, "Unsupported get request. Object with ID does not exist"),
        ("GET", ["whatsapp_business", "attachments", ""]) => ([("content-type", "application/octet-stream")], b"JPEG!".to_vec()).into_response(),
        _ => (StatusCode::NOT_FOUND, "no such route").into_response(),
    }
}

async fn fake_graph() -> (String, Log) {
    let log = Log::default();
    let state = Graph { log: log.clone(), sent: Arc::default() };
    let (base, _) = fake::serve(Router::new().fallback(graph).with_state(state)).await;
    (base, log)
}

fn reply(to: &str, text: Option<&str>, attachments: Vec<Attachment>) -> OutboundMessage {
    let now = 1_739_321_024_000;
    OutboundMessage {
        to: to.into(),
        text: text.map(str::to_owned),
        attachments,
        delivery_id: "d-1".into(),
        reply_context: None,
        last_inbound_at_ms: Some(now - HOUR_MS),
        now_ms: now,
        files: Vec::new(),
    }
}

fn attachment(kind: &str, url: &str, name: Option<&str>, mime: Option<&str>) -> Attachment {
    Attachment {
        kind: kind.into(),
        url: Some(url.into()),
        name: name.map(str::to_owned),
        mime: mime.map(str::to_owned),
        size: None,
    }
}

fn bodies(log: &Log) -> Vec<Value> {
    log.all().iter().map(|r| serde_json::from_slice(&r.body).expect("json body")).collect()
}

#[tokio::test]
async fn sends_text_with_bearer_to_the_phone_number_and_returns_the_wamid() {
    let (base, log) = fake_graph().await;
    let http = reqwest::Client::new();
    let receipt = WhatsappAdapter
        .send(&http, &config(&base), &reply(CUSTOMER, Some("Yes, in green."), vec![]))
        .await
        .expect("sent");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("wamid.SENT1"));
    let requests = log.all();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(
        bodies(&log)[0],
        json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "text", "text": { "body": "Yes, in green." } })
    );
    assert_eq!(WhatsappAdapter.kind(), ChannelKind::Whatsapp);
}

#[tokio::test]
async fn sends_media_by_link_with_caption_and_filename() {
    let (base, log) = fake_graph().await;
    let http = reqwest::Client::new();
    let cfg = config(&base);

    let image = attachment("image", "https://files.example.com/a.jpg", None, Some("image/jpeg"));
    let receipt =
        WhatsappAdapter.send(&http, &cfg, &reply(CUSTOMER, Some("Here it is"), vec![image])).await.expect("image");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("wamid.SENT1"));
    assert_eq!(bodies(&log)[0]["image"], json!({ "link": "https://files.example.com/a.jpg", "caption": "Here it is" }));

    // Text plus two attachments: three messages, the text first; the receipt is the last one.
    let pdf = attachment("file", "https://files.example.com/invoice.pdf", Some("invoice.pdf"), Some("application/pdf"));
    let voice = attachment("file", "https://files.example.com/note.ogg", None, Some("audio/ogg"));
    let receipt =
        WhatsappAdapter.send(&http, &cfg, &reply(CUSTOMER, Some("Two files"), vec![pdf, voice])).await.expect("files");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("wamid.SENT4"));
    let sent = bodies(&log);
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[1]["text"], json!({ "body": "Two files" }));
    assert_eq!(sent[2]["type"], "document");
    assert_eq!(
        sent[2]["document"],
        json!({ "link": "https://files.example.com/invoice.pdf", "filename": "invoice.pdf" })
    );
    assert_eq!(sent[3]["type"], "audio");
    assert_eq!(sent[3]["audio"], json!({ "link": "https://files.example.com/note.ogg" }));
}

#[tokio::test]
async fn replies_outside_the_24_hour_window_need_a_template() {
    let (base, log) = fake_graph().await;
    let http = reqwest::Client::new();
    let mut late = reply(CUSTOMER, Some("Still there?"), vec![]);
    late.last_inbound_at_ms = Some(late.now_ms - 25 * HOUR_MS);
    let r = WhatsappAdapter.send(&http, &config(&base), &late).await;
    assert_eq!(r, Err(DeliveryError::Permanent(TEMPLATE_REQUIRED.into())));
    assert!(log.all().is_empty(), "no request outside the window");

    // Graph's own verdict (the clock disagreed) maps the same way.
    let r = WhatsappAdapter.send(&http, &config(&base), &reply("15550131047", Some("hi"), vec![])).await;
    assert!(matches!(&r, Err(DeliveryError::Permanent(m)) if m.starts_with(TEMPLATE_REQUIRED)), "{r:?}");
}

#[tokio::test]
async fn graph_errors_are_classified() {
    let (base, _log) = fake_graph().await;
    let http = reqwest::Client::new();
    let cfg = config(&base);
    let send = |to: &'static str| {
        let (http, cfg) = (http.clone(), cfg.clone());
        async move { WhatsappAdapter.send(&http, &cfg, &reply(to, Some("hi"), vec![])).await }
    };
    assert!(matches!(send("15550000500").await, Err(DeliveryError::Transient(m)) if m.contains("unknown error")));
    assert!(matches!(send("15550000429").await, Err(DeliveryError::Throttled { retry_after_ms: 7_000, .. })));
    assert!(matches!(send("15550131056").await, Err(DeliveryError::Throttled { retry_after_ms: 60_000, .. })));
    assert!(
        matches!(send("15550000400").await, Err(DeliveryError::Permanent(m)) if m.contains("131030") && m.contains("not in allowed list"))
    );

    let wrong_token = ChannelConfig { settings: cfg.settings.clone(), secrets: json!({ "access_token": "expired" }) };
    let r = WhatsappAdapter.send(&http, &wrong_token, &reply(CUSTOMER, Some("hi"), vec![])).await;
    assert!(matches!(&r, Err(DeliveryError::Permanent(m)) if m.contains("190")), "{r:?}");

    let no_number = ChannelConfig { settings: json!({ "api_base_url": base }), secrets: cfg.secrets.clone() };
    assert!(matches!(
        WhatsappAdapter.send(&http, &no_number, &reply(CUSTOMER, Some("hi"), vec![])).await,
        Err(DeliveryError::Permanent(_))
    ));

    // Nobody listening: retry later.
    let dead = config("http://127.0.0.1:9");
    assert!(matches!(
        WhatsappAdapter.send(&http, &dead, &reply(CUSTOMER, Some("hi"), vec![])).await,
        Err(DeliveryError::Transient(_))
    ));
}

#[tokio::test]
async fn downloads_media_through_the_media_url_with_the_bearer_token() {
    let (base, log) = fake_graph().await;
    let http = reqwest::Client::new();
    let (bytes, mime) = WhatsappAdapter.download(&http, &config(&base), "1003383421387256").await.expect("download");
    assert_eq!(bytes, b"JPEG!");
    assert_eq!(mime.as_deref(), Some("image/jpeg"));
    let paths: Vec<String> = log.all().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/v21.0/1003383421387256".to_owned(), "/whatsapp_business/attachments/".to_owned()]);

    assert!(matches!(WhatsappAdapter.download(&http, &config(&base), "999").await, Err(DeliveryError::Permanent(_))));
    assert!(matches!(WhatsappAdapter.download(&http, &config(&base), "../me").await, Err(DeliveryError::Permanent(_))));
}

fn arb_json() -> impl Strategy<Value = Value> {
    fake::arbitrary_json(&["type", "id", "from", "messages", "statuses", "contacts", "text", "image", "location", "latitude", "longitude", "status"], &["text", "image", "location", "messages"])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_signed_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = post_signed(&body);
    }

    #[test]
    fn arbitrary_signed_json_never_panics(value in arb_json(), messages in prop::collection::vec(arb_json(), 0..3)) {
        let _ = post_signed(&serde_json::to_vec(&value).expect("json"));
        let wrapped = json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
                "metadata": { "phone_number_id": PHONE_NUMBER_ID },
                "contacts": [value.clone()],
                "messages": messages.clone(),
                "statuses": messages,
            } }] }]
        });
        let _ = post_signed(&serde_json::to_vec(&wrapped).expect("json"));
    }
}
