//! Messenger / Instagram adapter: Meta's documented webhook samples (signed here), forged
//! signatures, every message kind, the wrong-object check, sends and downloads against a local
//! fake of the Graph Send API.

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
use switchboard_gateway::messenger::{MessengerAdapter, OUTSIDE_WINDOW};
use switchboard_gateway::meta;
use switchboard_gateway::{
    ChannelAdapter, ChannelConfig, ContentKind, DeliveryError, InboundEvent, NormalizedMessage, OutboundMessage,
    WebhookError, WebhookOutcome, WebhookRequest,
};

use crate::fake::{self, Log, Recorded};

const APP_SECRET: &str = "fb-app-secret";
const VERIFY_TOKEN: &str = "fb-verify-token";
const PAGE_TOKEN: &str = "fb-page-token";
const PAGE_ID: &str = "107519918764320";
const PSID: &str = "6970481569691462";
const IGSID: &str = "1914223155387326";
const HOUR_MS: i64 = 60 * 60 * 1000;

fn config(base: &str) -> ChannelConfig {
    ChannelConfig {
        settings: json!({ "api_base_url": base, "api_version": "v21.0", "page_id": PAGE_ID }),
        secrets: json!({ "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "access_token": PAGE_TOKEN }),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/messenger/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn post(
    adapter: MessengerAdapter,
    config: &ChannelConfig,
    body: &[u8],
    signature: Option<&str>,
) -> Result<WebhookOutcome, WebhookError> {
    let mut headers = http::HeaderMap::new();
    if let Some(sig) = signature {
        headers.insert("x-hub-signature-256", http::HeaderValue::from_str(sig).expect("header value"));
    }
    adapter.handle_webhook(config, &WebhookRequest { method: "POST", query: "", headers: &headers, body })
}

fn post_signed(adapter: MessengerAdapter, body: &[u8]) -> Result<WebhookOutcome, WebhookError> {
    post(adapter, &config("http://unused"), body, Some(&meta::sign(APP_SECRET, body)))
}

fn events(adapter: MessengerAdapter, name: &str) -> Vec<InboundEvent> {
    post_signed(adapter, &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}")).events
}

fn only_message(adapter: MessengerAdapter, name: &str) -> NormalizedMessage {
    match events(adapter, name).as_slice() {
        [InboundEvent::Message(m)] => m.clone(),
        other => panic!("{name}: expected one message, got {other:?}"),
    }
}

const FB: MessengerAdapter = MessengerAdapter::messenger();
const IG: MessengerAdapter = MessengerAdapter::instagram();

#[test]
fn adapters_report_their_kind() {
    assert_eq!(FB.kind(), ChannelKind::Messenger);
    assert_eq!(IG.kind(), ChannelKind::Instagram);
    assert_eq!(MessengerAdapter::new(ChannelKind::Instagram).map(|a| a.kind()), Some(ChannelKind::Instagram));
    assert!(MessengerAdapter::new(ChannelKind::Whatsapp).is_none());
}

#[test]
fn handshake_echoes_the_challenge_for_the_right_verify_token() {
    let cfg = config("http://unused");
    let headers = http::HeaderMap::new();
    let get =
        |query: &str| FB.handle_webhook(&cfg, &WebhookRequest { method: "GET", query, headers: &headers, body: b"" });
    let ok = get(&format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=CHALLENGE_ACCEPTED"))
        .expect("handshake");
    assert_eq!(
        (ok.answer.status, ok.answer.content_type, ok.answer.body.as_slice()),
        (200, "text/plain", &b"CHALLENGE_ACCEPTED"[..])
    );
    assert!(matches!(
        get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=x"),
        Err(WebhookError::Unauthorized(_))
    ));
    assert!(matches!(
        get(&format!("hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=x")),
        Err(WebhookError::Malformed(_))
    ));
}

#[test]
fn signature_matches_an_independent_implementation() {
    // Computed with Python: hmac.new(b"fb-app-secret", body, hashlib.sha256).hexdigest()
    let body = br#"{"object":"page","entry":[]}"#;
    assert_eq!(meta::sign(APP_SECRET, body), "sha256=f100c6edbf3f64aca444c9b1c29874f499b9771afaa32e7d4ccdc31bcad132f9");
}

#[test]
fn forged_or_missing_signatures_are_refused() {
    let cfg = config("http://unused");
    let body = fixture("text.json");
    let good = meta::sign(APP_SECRET, &body);
    assert!(post(FB, &cfg, &body, Some(&good)).is_ok());
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'?').expect("a ? in the text fixture");
    tampered[at] = b'!';
    for (name, b, sig) in [
        ("missing", body.clone(), None),
        ("other secret", body.clone(), Some(meta::sign("other", &body))),
        ("tampered", tampered, Some(good.clone())),
        ("other body's signature", body.clone(), Some(meta::sign(APP_SECRET, b"{}"))),
    ] {
        let r = post(FB, &cfg, &b, sig.as_deref());
        assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "{name}: {r:?}");
        let r = post(IG, &cfg, &b, sig.as_deref());
        assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "instagram {name}: {r:?}");
    }
}

#[test]
fn text_uses_psid_and_mid() {
    let m = only_message(FB, "text.json");
    assert_eq!(m.contact_external_id, PSID);
    assert_eq!(
        m.platform_message_id,
        "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
    );
    assert_eq!((m.kind, m.text.as_deref()), (ContentKind::Text, Some("Hi, is my order on its way?")));
    assert_eq!(m.contact_name, None);
    let q = only_message(FB, "quick_reply.json");
    assert_eq!((q.kind, q.text.as_deref()), (ContentKind::Text, Some("Green")));
}

#[test]
fn every_attachment_kind_is_parsed_with_its_url() {
    for (file, kind, attachment_kind, url_start) in [
        ("image.json", ContentKind::Image, "image", "https://scontent.xx.fbcdn.net/v/t1.15752-9/image.jpg"),
        ("video.json", ContentKind::Video, "video", "https://video.xx.fbcdn.net/"),
        ("audio.json", ContentKind::Audio, "audio", "https://cdn.fbsbx.com/v/t59.3654-21/audioclip.mp4"),
        ("file.json", ContentKind::File, "file", "https://cdn.fbsbx.com/v/t59.2708-21/invoice.pdf"),
        ("sticker.json", ContentKind::Sticker, "sticker", "https://scontent.xx.fbcdn.net/v/t1.15752-9/like.png"),
        ("location.json", ContentKind::Location, "location", "geo:37.4852,-122.1484"),
    ] {
        let m = only_message(FB, file);
        assert_eq!(m.kind, kind, "{file}");
        assert_eq!(m.contact_external_id, PSID, "{file}");
        assert_eq!(m.attachments.len(), 1, "{file}");
        assert_eq!(m.attachments[0].kind, attachment_kind, "{file}");
        let url = m.attachments[0].url.as_deref().unwrap_or_default();
        assert!(url.starts_with(url_start), "{file}: {url}");
    }
    assert_eq!(only_message(FB, "location.json").attachments[0].name.as_deref(), Some("Pinned Location"));
}

#[test]
fn unmodelled_attachments_are_unsupported_with_raw() {
    let m = only_message(FB, "fallback.json");
    assert_eq!(m.kind, ContentKind::Unsupported);
    assert!(m.attachments.is_empty());
    assert_eq!(m.raw["attachments"][0]["type"], "fallback");
    let story = only_message(IG, "instagram_story_mention.json");
    assert_eq!(story.kind, ContentKind::Unsupported);
    assert_eq!(story.raw["attachments"][0]["type"], "story_mention");
}

#[test]
fn echoes_reads_reactions_are_skipped_and_deliveries_become_statuses() {
    assert_eq!(events(FB, "echo.json"), vec![]);
    assert_eq!(events(FB, "read.json"), vec![]);
    assert_eq!(events(FB, "reaction.json"), vec![]);
    assert_eq!(
        events(FB, "delivery.json"),
        vec![
            InboundEvent::Status { platform_message_id: "m_out01".into(), status: DeliveryStatus::Delivered },
            InboundEvent::Status { platform_message_id: "m_out02".into(), status: DeliveryStatus::Delivered },
        ]
    );
    let p = only_message(FB, "postback.json");
    assert_eq!(
        (p.platform_message_id.as_str(), p.kind, p.text.as_deref()),
        ("m_postback01", ContentKind::Text, Some("Talk to an agent"))
    );
}

#[test]
fn batches_keep_every_event_in_order() {
    let ids: Vec<String> = events(FB, "batch.json")
        .into_iter()
        .map(|e| match e {
            InboundEvent::Message(m) => format!("{}:{}", m.contact_external_id, m.platform_message_id),
            InboundEvent::Status { platform_message_id, .. } => format!("status:{platform_message_id}"),
        })
        .collect();
    assert_eq!(ids, vec![format!("{PSID}:m_batch01"), "7031184726924312:m_batch02".into(), "status:m_out03".into()]);
}

#[test]
fn instagram_messages_reads_and_deletions() {
    let m = only_message(IG, "instagram_text.json");
    assert_eq!(
        (m.contact_external_id.as_str(), m.kind, m.text.as_deref()),
        (IGSID, ContentKind::Text, Some("Hello from Instagram"))
    );
    assert!(m.platform_message_id.starts_with("aWdfZAG1faXRlbToxOklHTWVzc2FnZA"));
    let img = only_message(IG, "instagram_image.json");
    assert_eq!(img.kind, ContentKind::Image);
    assert!(img.attachments[0]
        .url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://lookaside.fbsbx.com/ig_messaging_cdn/")));
    assert_eq!(
        events(IG, "instagram_read.json"),
        vec![InboundEvent::Status { platform_message_id: "aWdfZAG1faXRlbTpvdXQ".into(), status: DeliveryStatus::Read }]
    );
    assert_eq!(events(IG, "instagram_deleted.json"), vec![]);
}

#[test]
fn the_wrong_object_for_the_inbox_kind_is_refused() {
    assert!(matches!(post_signed(IG, &fixture("text.json")), Err(WebhookError::Malformed(_))));
    assert!(matches!(post_signed(FB, &fixture("instagram_text.json")), Err(WebhookError::Malformed(_))));
    assert!(matches!(
        post_signed(FB, br#"{"object":"whatsapp_business_account","entry":[]}"#),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(post_signed(FB, br#"{"object":"page"}"#), Err(WebhookError::Malformed(_))));
}

// ---------------------------------------------------------------------------------------------
// The fake Send API.

#[derive(Clone)]
struct SendApi {
    log: Log,
    sent: Arc<AtomicUsize>,
}

fn graph_error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut error = json!({ "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AxYz123" });
    if let Some(s) = subcode {
        error["error_subcode"] = json!(s);
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    k.sort_unstable();
    k
}

/// Checks a Send API body the way Graph does; `Ok` is the recipient id.
fn check_send_body(body: &Value) -> Result<String, String> {
    let tagged = body["messaging_type"] == "MESSAGE_TAG";
    let expected: &[&str] = if tagged {
        &["message", "messaging_type", "recipient", "tag"]
    } else {
        &["message", "messaging_type", "recipient"]
    };
    if keys(body) != expected {
        return Err(format!("unexpected keys {:?}", keys(body)));
    }
    if !matches!(body["messaging_type"].as_str(), Some("RESPONSE" | "UPDATE" | "MESSAGE_TAG")) {
        return Err("messaging_type".into());
    }
    if tagged && body["tag"] != "HUMAN_AGENT" {
        return Err("tag".into());
    }
    if keys(&body["recipient"]) != ["id"] {
        return Err("recipient must be {id}".into());
    }
    let message = &body["message"];
    match keys(message).as_slice() {
        ["text"] if message["text"].as_str().is_some_and(|t| !t.is_empty()) => {}
        ["attachment"] => {
            let a = &message["attachment"];
            if keys(a) != ["payload", "type"]
                || !matches!(a["type"].as_str(), Some("image" | "video" | "audio" | "file"))
            {
                return Err("attachment must be {type, payload}".into());
            }
            if keys(&a["payload"]) != ["is_reusable", "url"] || !a["payload"]["url"].is_string() {
                return Err("payload must be {url, is_reusable}".into());
            }
        }
        other => return Err(format!("message must hold text or one attachment, not {other:?}")),
    }
    body["recipient"]["id"].as_str().map(str::to_owned).ok_or_else(|| "recipient.id".into())
}

async fn send_api(State(state): State<SendApi>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    state.log.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: body.to_vec(),
    });
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v21.0", node, "messages"]) => {
            let token = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v.into_owned());
            if token.as_deref() != Some(PAGE_TOKEN) {
                return graph_error(StatusCode::BAD_REQUEST, 190, None, "Invalid OAuth access token.");
            }
            if *node != PAGE_ID && *node != "me" {
                return graph_error(StatusCode::BAD_REQUEST, 100, None, "Unsupported post request.");
            }
            let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
                return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid JSON");
            };
            let recipient = match check_send_body(&parsed) {
                Ok(r) => r,
                Err(why) => return graph_error(StatusCode::BAD_REQUEST, 100, None, &format!("(#100) {why}")),
            };
            match recipient.as_str() {
                "500" => graph_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    2,
                    None,
                    "An unexpected error has occurred. Please retry your request later.",
                ),
                "429" => {
                    let mut r = graph_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        613,
                        None,
                        "Calls to this api have exceeded the rate limit.",
                    );
                    r.headers_mut().insert("retry-after", "12".parse().expect("header"));
                    r
                }
                "551" => {
                    graph_error(StatusCode::BAD_REQUEST, 551, Some(1545041), "This person isn't available right now.")
                }
                "window" => graph_error(
                    StatusCode::BAD_REQUEST,
                    10,
                    Some(2018278),
                    "(#10) This message is sent outside of allowed window.",
                ),
                _ => {
                    let n = state.sent.fetch_add(1, Ordering::SeqCst) + 1;
                    axum::Json(json!({ "recipient_id": recipient, "message_id": format!("m_sent{n}") })).into_response()
                }
            }
        }
        ("GET", ["cdn", "photo.jpg"]) => {
            ([("content-type", "image/jpeg")], b"\xff\xd8\xff photo".to_vec()).into_response()
        }
        ("GET", ["cdn", "expired.jpg"]) => (StatusCode::FORBIDDEN, "URL signature expired").into_response(),
        _ => (StatusCode::NOT_FOUND, "no such route").into_response(),
    }
}

async fn fake_send_api() -> (String, Log) {
    let log = Log::default();
    let (base, _) =
        fake::serve(Router::new().fallback(send_api).with_state(SendApi { log: log.clone(), sent: Arc::default() }))
            .await;
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

fn bodies(log: &Log) -> Vec<Value> {
    log.all().iter().map(|r| serde_json::from_slice(&r.body).expect("json body")).collect()
}

#[tokio::test]
async fn sends_text_and_attachments_to_the_page_with_the_page_token() {
    let (base, log) = fake_send_api().await;
    let http = reqwest::Client::new();
    let image = Attachment {
        kind: "image".into(),
        url: Some("https://files.example.com/a.jpg".into()),
        name: None,
        mime: None,
        size: None,
    };
    let pdf = Attachment {
        kind: "file".into(),
        url: Some("https://files.example.com/b.pdf".into()),
        name: Some("b.pdf".into()),
        mime: None,
        size: None,
    };
    let receipt =
        FB.send(&http, &config(&base), &reply(PSID, Some("Here you go"), vec![image, pdf])).await.expect("sent");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("m_sent3"));

    let requests = log.all();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", format!("/v21.0/{PAGE_ID}/messages").as_str()));
        assert_eq!(r.query.as_deref(), Some(format!("access_token={PAGE_TOKEN}").as_str()));
    }
    let sent = bodies(&log);
    assert_eq!(
        sent[0],
        json!({ "recipient": { "id": PSID }, "messaging_type": "RESPONSE", "message": { "text": "Here you go" } })
    );
    assert_eq!(
        sent[1]["message"],
        json!({ "attachment": { "type": "image", "payload": { "url": "https://files.example.com/a.jpg", "is_reusable": true } } })
    );
    assert_eq!(sent[2]["message"]["attachment"]["type"], "file");
}

#[tokio::test]
async fn instagram_sends_through_me_when_no_page_is_set() {
    let (base, log) = fake_send_api().await;
    let http = reqwest::Client::new();
    let cfg = ChannelConfig {
        settings: json!({ "api_base_url": base, "instagram_account_id": "17841405822304914" }),
        secrets: config("").secrets,
    };
    let receipt = IG.send(&http, &cfg, &reply(IGSID, Some("Hi!"), vec![])).await.expect("sent");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("m_sent1"));
    assert_eq!(log.all()[0].path, "/v21.0/me/messages");
}

#[tokio::test]
async fn the_24_hour_window_and_the_human_agent_tag() {
    let (base, log) = fake_send_api().await;
    let http = reqwest::Client::new();
    let mut late = reply(PSID, Some("Following up"), vec![]);
    late.last_inbound_at_ms = Some(late.now_ms - 30 * HOUR_MS);
    assert_eq!(FB.send(&http, &config(&base), &late).await, Err(DeliveryError::Permanent(OUTSIDE_WINDOW.into())));
    assert!(log.all().is_empty());

    let mut tagged_cfg = config(&base);
    tagged_cfg.settings["human_agent_tag"] = json!(true);
    FB.send(&http, &tagged_cfg, &late).await.expect("tagged send");
    assert_eq!(
        bodies(&log)[0],
        json!({ "recipient": { "id": PSID }, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT", "message": { "text": "Following up" } })
    );
    late.last_inbound_at_ms = Some(late.now_ms - 8 * 24 * HOUR_MS);
    assert!(matches!(FB.send(&http, &tagged_cfg, &late).await, Err(DeliveryError::Permanent(_))));

    let r = FB.send(&http, &config(&base), &reply("window", Some("hi"), vec![])).await;
    assert!(matches!(&r, Err(DeliveryError::Permanent(m)) if m.starts_with(OUTSIDE_WINDOW)), "{r:?}");
}

#[tokio::test]
async fn send_api_errors_are_classified() {
    let (base, _log) = fake_send_api().await;
    let http = reqwest::Client::new();
    let cfg = config(&base);
    assert!(matches!(FB.send(&http, &cfg, &reply("500", Some("hi"), vec![])).await, Err(DeliveryError::Transient(_))));
    assert!(matches!(
        FB.send(&http, &cfg, &reply("429", Some("hi"), vec![])).await,
        Err(DeliveryError::Throttled { retry_after_ms: 12_000, .. })
    ));
    let r = FB.send(&http, &cfg, &reply("551", Some("hi"), vec![])).await;
    assert!(matches!(&r, Err(DeliveryError::Permanent(m)) if m.contains("isn't available")), "{r:?}");
    let bad_token =
        ChannelConfig { settings: cfg.settings.clone(), secrets: json!({ "access_token": "expired-token" }) };
    let r = FB.send(&http, &bad_token, &reply(PSID, Some("hi"), vec![])).await;
    assert!(
        matches!(&r, Err(DeliveryError::Permanent(m)) if m.contains("190") && !m.contains("expired-token")),
        "{r:?}"
    );
    assert!(matches!(FB.send(&http, &cfg, &reply(PSID, None, vec![])).await, Err(DeliveryError::Permanent(_))));
    // A refused connection is retried, and its error does not leak the token in the URL.
    let r = FB.send(&http, &config("http://127.0.0.1:9"), &reply(PSID, Some("hi"), vec![])).await;
    assert!(matches!(&r, Err(DeliveryError::Transient(m)) if !m.contains(PAGE_TOKEN)), "{r:?}");
}

#[tokio::test]
async fn downloads_are_plain_gets_of_the_cdn_url() {
    let (base, log) = fake_send_api().await;
    let http = reqwest::Client::new();
    let (bytes, mime) = FB.download(&http, &config(&base), &format!("{base}/cdn/photo.jpg")).await.expect("download");
    assert_eq!(bytes, b"\xff\xd8\xff photo");
    assert_eq!(mime.as_deref(), Some("image/jpeg"));
    assert!(log.all()[0].headers.iter().all(|(k, _)| k != "authorization"));
    assert!(matches!(
        IG.download(&http, &config(&base), &format!("{base}/cdn/expired.jpg")).await,
        Err(DeliveryError::Permanent(_))
    ));
    assert!(matches!(FB.download(&http, &config(&base), "file:///etc/passwd").await, Err(DeliveryError::Permanent(_))));
}

fn arb_json() -> impl Strategy<Value = Value> {
    fake::arbitrary_json(&["message", "mid", "sender", "id", "text", "attachments", "type", "payload", "coordinates", "lat", "long", "delivery", "mids", "read", "postback", "is_echo"], &["image", "location", "file"])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_signed_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = post_signed(FB, &body);
        let _ = post_signed(IG, &body);
    }

    #[test]
    fn arbitrary_signed_json_never_panics(value in arb_json(), events in prop::collection::vec(arb_json(), 0..4)) {
        let _ = post_signed(FB, &serde_json::to_vec(&value).expect("json"));
        for object in ["page", "instagram"] {
            let wrapped = json!({ "object": object, "entry": [{ "id": "1", "time": 1, "messaging": events.clone() }, value.clone()] });
            let bytes = serde_json::to_vec(&wrapped).expect("json");
            let _ = post_signed(FB, &bytes);
            let _ = post_signed(IG, &bytes);
        }
    }
}
