//! The WeChat Official Account adapter against WeChat's documented plain-mode samples, safe-mode
//! (AES) pushes encrypted and signed by wechatpy (fixtures/wechat/generate.py), and a local fake
//! of the WeChat API that checks paths, access token and body schema the way WeChat does.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aes::cipher::{block_padding::NoPadding, BlockEncryptMut, KeyIvInit};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_core::domain::Attachment;
use switchboard_gateway::wechat::{self, WechatAdapter};
use switchboard_gateway::{
    ChannelAdapter, ChannelConfig, ContentKind, DeliveryError, InboundEvent, NormalizedMessage, OutboundMessage,
    WebhookAnswer, WebhookError, WebhookRequest,
};

use crate::fake::{self, Log, Recorded};

// Must match fixtures/wechat/generate.py.
const TOKEN: &str = "switchboardtoken";
const ENCODING_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APP_ID: &str = "wx5823bf96d3bd56c7";
const OPENID: &str = "oia2TjjewbmiOUlr6X-1crbLOvLw";
const TIMESTAMP: &str = "1700000000";
const NONCE: &str = "1320562132";

const APP_SECRET: &str = "d4624c36b6795d1d99dcf0547af5443d";
const ACCESS_TOKEN: &str = "ACCESS_TOKEN_94_xAbC";

fn cases() -> serde_json::Map<String, Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/wechat/cases.json");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run fixtures/wechat/generate.py)", path.display()));
    match serde_json::from_slice(&bytes).expect("cases.json is JSON") {
        Value::Object(map) => map,
        _ => panic!("cases.json is an object"),
    }
}

struct Case {
    method: String,
    query: String,
    body: String,
}

fn case(name: &str) -> Case {
    let all = cases();
    let c = all.get(name).unwrap_or_else(|| panic!("no case {name}"));
    let s = |k: &str| c[k].as_str().expect("string").to_owned();
    Case { method: s("method"), query: s("query"), body: s("body") }
}

fn plain_config() -> ChannelConfig {
    ChannelConfig { settings: json!({ "app_id": APP_ID }), secrets: json!({ "token": TOKEN }) }
}

fn safe_config() -> ChannelConfig {
    ChannelConfig {
        settings: json!({ "app_id": APP_ID }),
        secrets: json!({ "token": TOKEN, "encoding_aes_key": ENCODING_AES_KEY }),
    }
}

fn handle(
    config: &ChannelConfig,
    method: &str,
    query: &str,
    body: &[u8],
) -> Result<(Vec<NormalizedMessage>, WebhookAnswer), WebhookError> {
    let headers = HeaderMap::new();
    let request = WebhookRequest { method, query, headers: &headers, body };
    let outcome = WechatAdapter.handle_webhook(config, &request)?;
    let messages = outcome
        .events
        .into_iter()
        .map(|e| match e {
            InboundEvent::Message(m) => m,
            other => panic!("WeChat yields messages only, got {other:?}"),
        })
        .collect();
    Ok((messages, outcome.answer))
}

fn deliver_case(config: &ChannelConfig, name: &str) -> Result<Vec<NormalizedMessage>, WebhookError> {
    let c = case(name);
    let (messages, answer) = handle(config, &c.method, &c.query, c.body.as_bytes())?;
    assert_eq!(answer, WebhookAnswer::text("success"), "{name}: WeChat must read `success`");
    Ok(messages)
}

fn only(config: &ChannelConfig, name: &str) -> NormalizedMessage {
    let mut messages = deliver_case(config, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(messages.len(), 1, "{name}");
    messages.remove(0)
}

/// A plain-mode query signed by our own implementation (checked against wechatpy's by the
/// fixtures), for bodies built in this file.
fn signed_query(extra: &str) -> String {
    format!("signature={}&timestamp={TIMESTAMP}&nonce={NONCE}{extra}", wechat::signature(&[TOKEN, TIMESTAMP, NONCE]))
}

// ---------------------------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------------------------

#[test]
fn the_url_handshake_echoes_echostr() {
    let c = case("sdk_handshake");
    let (messages, answer) = handle(&plain_config(), &c.method, &c.query, b"").expect("verified");
    assert!(messages.is_empty());
    assert_eq!(
        answer,
        WebhookAnswer { status: 200, content_type: "text/plain", body: b"6103786421786307045".to_vec() }
    );
    // Safe mode changes nothing about the handshake.
    assert!(handle(&safe_config(), &c.method, &c.query, b"").is_ok());

    let forged = c.query.replace("signature=", "signature=0");
    assert!(matches!(handle(&plain_config(), "GET", &forged, b""), Err(WebhookError::Unauthorized(_))));
    let other_token = ChannelConfig { secrets: json!({ "token": "not-the-token" }), ..plain_config() };
    assert!(matches!(handle(&other_token, "GET", &c.query, b""), Err(WebhookError::Unauthorized(_))));
    assert!(matches!(
        handle(&plain_config(), "GET", "echostr=1&timestamp=1&nonce=2", b""),
        Err(WebhookError::Unauthorized(_))
    ));
}

#[test]
fn the_query_signature_matches_wechatpy() {
    let c = case("sdk_handshake");
    let expected =
        url::form_urlencoded::parse(c.query.as_bytes()).find(|(k, _)| k == "signature").map(|(_, v)| v.into_owned());
    assert_eq!(Some(wechat::signature(&[TOKEN, TIMESTAMP, NONCE])), expected);
}

#[test]
fn documented_plain_samples_of_every_kind_are_normalized() {
    let config = plain_config();
    let text = only(&config, "docs_text");
    assert_eq!(
        (text.kind, text.platform_message_id.as_str(), text.contact_external_id.as_str(), text.text.as_deref()),
        (ContentKind::Text, "1234567890123456", "fromUser", Some("this is a test"))
    );
    assert_eq!(text.raw["ToUserName"], "toUser");
    assert_eq!(text.reply_context, None);

    let image = only(&config, "docs_image");
    assert_eq!(image.kind, ContentKind::Image);
    assert_eq!(
        image.attachments,
        vec![Attachment { kind: "image".into(), url: Some("media_id".into()), name: None, mime: None, size: None }]
    );
    assert_eq!(image.raw["PicUrl"], "this is a url");

    let voice = only(&config, "docs_voice");
    assert_eq!(
        (voice.kind, voice.attachments[0].kind.as_str(), voice.text.as_deref()),
        (ContentKind::Audio, "audio", None)
    );
    let recognized = only(&config, "docs_voice_recognition");
    assert_eq!(recognized.text.as_deref(), Some("腾讯微信团队"), "speech recognition is the text");

    for name in ["docs_video", "docs_shortvideo"] {
        let video = only(&config, name);
        assert_eq!((video.kind, video.attachments[0].url.as_deref()), (ContentKind::Video, Some("media_id")), "{name}");
        assert_eq!(video.raw["ThumbMediaId"], "thumb_media_id");
    }

    let location = only(&config, "docs_location");
    assert_eq!(location.kind, ContentKind::Location);
    assert_eq!(location.text.as_deref(), Some("位置信息"));
    assert_eq!(location.attachments[0].url.as_deref(), Some("geo:23.134521,113.358803"));

    let link = only(&config, "docs_link");
    assert_eq!((link.kind, link.text.as_deref()), (ContentKind::Text, Some("公众平台官网链接\n公众平台官网链接\nurl")));
    assert_eq!(link.raw["MsgType"], "link");
}

#[test]
fn events_are_acknowledged_and_skipped() {
    assert!(deliver_case(&plain_config(), "docs_event_subscribe").expect("ok").is_empty());
    assert!(deliver_case(&plain_config(), "docs_event_click").expect("ok").is_empty());
    assert!(deliver_case(&safe_config(), "sdk_aes_subscribe").expect("ok").is_empty());
}

#[test]
fn unknown_kinds_are_kept_as_unsupported() {
    let body = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oX]]></FromUserName>\
        <CreateTime>1700000000</CreateTime><MsgType><![CDATA[miniprogrampage]]></MsgType>\
        <Title><![CDATA[t]]></Title><AppId><![CDATA[wxa]]></AppId><MsgId>99</MsgId></xml>";
    let (messages, _) = handle(&plain_config(), "POST", &signed_query(""), body.as_bytes()).expect("accepted");
    assert_eq!(messages[0].kind, ContentKind::Unsupported);
    assert_eq!((messages[0].platform_message_id.as_str(), messages[0].raw["AppId"].as_str()), ("99", Some("wxa")));

    // Without MsgId, WeChat's own dedupe advice: FromUserName + CreateTime.
    let body = "<xml><FromUserName>oX</FromUserName><CreateTime>1700000001</CreateTime><MsgType>text</MsgType><Content>hi</Content></xml>";
    let (messages, _) = handle(&plain_config(), "POST", &signed_query(""), body.as_bytes()).expect("accepted");
    assert_eq!(messages[0].platform_message_id, "oX:1700000001");
}

#[test]
fn safe_mode_pushes_from_wechatpy_decrypt_and_parse() {
    let config = safe_config();
    let text = only(&config, "sdk_aes_text");
    assert_eq!(text.kind, ContentKind::Text);
    assert_eq!(text.text.as_deref(), Some("你好，我的订单还没到 🙂 <b>&amp;</b>"), "CDATA is taken literally");
    assert_eq!((text.platform_message_id.as_str(), text.contact_external_id.as_str()), ("24000000000000001", OPENID));

    let image = only(&config, "sdk_aes_image");
    assert_eq!((image.kind, image.attachments[0].url.as_deref()), (ContentKind::Image, Some("MEDIA_ID_IMAGE_1")));

    let voice = only(&config, "sdk_aes_docs_voice");
    assert_eq!((voice.kind, voice.text.as_deref()), (ContentKind::Audio, Some("腾讯微信团队")));

    let compatible = only(&config, "sdk_aes_compatible_text");
    assert_eq!(compatible.text, text.text, "compatible mode is read from the encrypted part");
}

#[test]
fn forged_safe_mode_pushes_are_unauthorized() {
    let config = safe_config();
    let unauthorized = |r: Result<(Vec<NormalizedMessage>, WebhookAnswer), WebhookError>| {
        assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "{r:?}")
    };
    let c = case("sdk_aes_text");

    // Another AppID encrypted it (wechatpy agrees it is foreign).
    assert!(matches!(deliver_case(&config, "sdk_aes_wrong_appid"), Err(WebhookError::Unauthorized(_))));

    // A changed ciphertext no longer matches msg_signature.
    let tampered = c.body.replacen("<![CDATA[B", "<![CDATA[C", 1);
    assert_ne!(tampered, c.body);
    unauthorized(handle(&config, "POST", &c.query, tampered.as_bytes()));

    // No msg_signature, or a wrong query signature.
    let no_msg_sig: String =
        c.query.split('&').filter(|p| !p.starts_with("msg_signature=")).collect::<Vec<_>>().join("&");
    unauthorized(handle(&config, "POST", &no_msg_sig, c.body.as_bytes()));
    unauthorized(handle(&config, "POST", &c.query.replace("signature=f", "signature=e"), c.body.as_bytes()));

    // A plain push to an inbox configured for safe mode (the plain signature would be a replay).
    let plain = case("docs_text");
    unauthorized(handle(&config, "POST", &plain.query, plain.body.as_bytes()));

    // The right signatures but another EncodingAESKey: the plaintext is garbage.
    let other_key = ChannelConfig {
        secrets: json!({ "token": TOKEN, "encoding_aes_key": "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut" }),
        ..config.clone()
    };
    assert!(matches!(
        handle(&other_key, "POST", &c.query, c.body.as_bytes()),
        Err(WebhookError::Unauthorized(_) | WebhookError::Malformed(_))
    ));

    // Safe mode without an AES key configured, or without app_id, is a configuration problem.
    assert!(matches!(
        handle(&plain_config(), "POST", &c.query, c.body.as_bytes()),
        Err(WebhookError::NotConfigured(_))
    ));
    let no_app = ChannelConfig { settings: json!({}), ..config.clone() };
    assert!(matches!(handle(&no_app, "POST", &c.query, c.body.as_bytes()), Err(WebhookError::NotConfigured(_))));
}

#[test]
fn forged_plain_pushes_are_unauthorized() {
    let c = case("docs_text");
    let unauthorized = |r: Result<(Vec<NormalizedMessage>, WebhookAnswer), WebhookError>| {
        assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "{r:?}")
    };
    unauthorized(handle(&plain_config(), "POST", "", c.body.as_bytes()));
    unauthorized(handle(
        &plain_config(),
        "POST",
        &c.query.replace("nonce=1320562132", "nonce=1320562133"),
        c.body.as_bytes(),
    ));
    unauthorized(handle(
        &plain_config(),
        "POST",
        &c.query.replace("timestamp=1700000000", "timestamp=1700000001"),
        c.body.as_bytes(),
    ));
    let other_token = ChannelConfig { secrets: json!({ "token": "x" }), ..plain_config() };
    unauthorized(handle(&other_token, "POST", &c.query, c.body.as_bytes()));
    let unconfigured = ChannelConfig::default();
    assert!(matches!(handle(&unconfigured, "POST", &c.query, c.body.as_bytes()), Err(WebhookError::NotConfigured(_))));
}

#[test]
fn hostile_xml_is_malformed() {
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><xml><MsgType>text</MsgType><FromUserName>&lol2;</FromUserName><Content>x</Content><MsgId>1</MsgId></xml>"#;
    for body in [billion_laughs, "not xml", "<xml></xml>", "<xml><MsgType>text</MsgType></xml>"] {
        let r = handle(&plain_config(), "POST", &signed_query(""), body.as_bytes());
        assert!(matches!(r, Err(WebhookError::Malformed(_))), "{body}: {r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A fake of the WeChat API
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct FakeWechat {
    log: Log,
    base: Arc<Mutex<String>>,
    /// Answers to give, in order, to valid custom-send requests; then `{"errcode":0}`.
    script: Arc<Mutex<VecDeque<(u16, Value)>>>,
}

fn wx_error(code: i64, msg: &str) -> Response {
    // WeChat reports API errors with HTTP 200 and a JSON body (served as text/plain by media/get).
    ([("content-type", "text/plain")], json!({ "errcode": code, "errmsg": msg }).to_string()).into_response()
}

fn query_map(uri: &Uri) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect()
}

fn valid_custom_message(m: &Value) -> bool {
    let Some(obj) = m.as_object() else { return false };
    let touser_ok = m.get("touser").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let kind = m.get("msgtype").and_then(Value::as_str).unwrap_or("");
    let part_ok = match kind {
        "text" => m["text"]
            .as_object()
            .is_some_and(|t| t.len() == 1 && t.get("content").and_then(Value::as_str).is_some_and(|c| !c.is_empty())),
        "image" | "voice" => m[kind]
            .as_object()
            .is_some_and(|t| t.len() == 1 && t.get("media_id").and_then(Value::as_str).is_some_and(|c| !c.is_empty())),
        _ => false,
    };
    touser_ok && part_ok && obj.len() == 3
}

async fn fake_wechat_api(
    State(fake): State<FakeWechat>,
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
    let q = query_map(&uri);
    match (method.as_str(), uri.path()) {
        ("GET", "/cgi-bin/token") => {
            if q.get("grant_type").map(String::as_str) != Some("client_credential")
                || q.get("appid").map(String::as_str) != Some(APP_ID)
            {
                return wx_error(40013, "invalid appid");
            }
            if q.get("secret").map(String::as_str) != Some(APP_SECRET) {
                return wx_error(40125, "invalid appsecret");
            }
            axum::Json(json!({ "access_token": ACCESS_TOKEN, "expires_in": 7200 })).into_response()
        }
        (_, "/cgi-bin/message/custom/send" | "/cgi-bin/media/get")
            if q.get("access_token").map(String::as_str) != Some(ACCESS_TOKEN) =>
        {
            wx_error(40001, "invalid credential, access_token is invalid or not latest")
        }
        ("POST", "/cgi-bin/message/custom/send") => {
            let Ok(message) = serde_json::from_slice::<Value>(&body) else {
                return wx_error(47001, "data format error");
            };
            if !valid_custom_message(&message) {
                return wx_error(40008, "invalid message type");
            }
            let (status, answer) =
                fake.script.lock().expect("lock").pop_front().unwrap_or((200, json!({ "errcode": 0, "errmsg": "ok" })));
            (StatusCode::from_u16(status).expect("status"), axum::Json(answer)).into_response()
        }
        ("GET", "/cgi-bin/media/get") => match q.get("media_id").map(String::as_str) {
            Some("MEDIA_ID_IMAGE_1") => (
                [("content-type", "image/jpeg"), ("content-disposition", "attachment; filename=\"a.jpg\"")],
                &b"\xFF\xD8jpeg"[..],
            )
                .into_response(),
            Some("MEDIA_ID_VIDEO_1") => {
                let base = fake.base.lock().expect("lock").clone();
                ([("content-type", "text/plain")], json!({ "video_url": format!("{base}/video/1.mp4") }).to_string())
                    .into_response()
            }
            _ => wx_error(40007, "invalid media_id"),
        },
        ("GET", "/video/1.mp4") => ([("content-type", "video/mp4")], "mp4-bytes").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_fake() -> (FakeWechat, ChannelConfig) {
    let fake = FakeWechat::default();
    let router = Router::new().fallback(fake_wechat_api).with_state(fake.clone());
    let (base, _) = fake::serve(router).await;
    *fake.base.lock().expect("lock") = base.clone();
    let config = ChannelConfig {
        settings: json!({ "app_id": APP_ID, "api_base_url": base }),
        secrets: json!({ "token": TOKEN, "encoding_aes_key": ENCODING_AES_KEY, "app_secret": APP_SECRET, "access_token": ACCESS_TOKEN }),
    };
    (fake, config)
}

fn outbound(text: Option<&str>, attachments: Vec<Attachment>) -> OutboundMessage {
    OutboundMessage {
        to: OPENID.into(),
        text: text.map(str::to_owned),
        attachments,
        delivery_id: "d-1".into(),
        reply_context: None,
        last_inbound_at_ms: Some(0),
        now_ms: 0,
        files: Vec::new(),
    }
}

fn image(url: &str) -> Attachment {
    Attachment { kind: "image".into(), url: Some(url.into()), name: None, mime: None, size: None }
}

// ---------------------------------------------------------------------------------------------
// Access token and outbound
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_access_token_is_fetched_with_client_credentials() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    assert_eq!(WechatAdapter::fetch_access_token(&http, &config).await, Ok((ACCESS_TOKEN.to_owned(), 7200)));
    let log = fake.log.all();
    assert_eq!(log[0].path, "/cgi-bin/token");
    let wrong = ChannelConfig { secrets: json!({ "app_secret": "nope" }), ..config.clone() };
    assert!(
        matches!(WechatAdapter::fetch_access_token(&http, &wrong).await, Err(DeliveryError::Permanent(m)) if m.contains("40125"))
    );
}

#[tokio::test]
async fn text_and_media_id_images_go_through_the_customer_service_api() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let receipt = WechatAdapter
        .send(&http, &config, &outbound(Some("您好，请问有什么可以帮您？"), vec![image("MEDIA_ID_IMAGE_1")]))
        .await
        .expect("sent");
    assert_eq!(receipt.platform_message_id, None, "custom send returns no message id");

    let log = fake.log.all();
    assert_eq!(log.len(), 2);
    for r in &log {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/cgi-bin/message/custom/send"));
        assert_eq!(r.query.as_deref(), Some(format!("access_token={ACCESS_TOKEN}").as_str()));
    }
    assert_eq!(
        serde_json::from_slice::<Value>(&log[0].body).expect("json"),
        json!({ "touser": OPENID, "msgtype": "text", "text": { "content": "您好，请问有什么可以帮您？" } })
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&log[1].body).expect("json"),
        json!({ "touser": OPENID, "msgtype": "image", "image": { "media_id": "MEDIA_ID_IMAGE_1" } })
    );
}

#[tokio::test]
async fn an_image_without_a_media_id_is_refused_before_anything_is_sent() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let r = WechatAdapter
        .send(&http, &config, &outbound(Some("look"), vec![image("https://media.example.com/a.jpg")]))
        .await;
    assert!(matches!(r, Err(DeliveryError::Permanent(m)) if m.contains("upload media first")));
    assert!(fake.log.all().is_empty());

    let file = Attachment {
        kind: "file".into(),
        url: Some("https://media.example.com/m.pdf".into()),
        name: Some("m.pdf".into()),
        mime: None,
        size: None,
    };
    WechatAdapter.send(&http, &config, &outbound(Some("manual:"), vec![file])).await.expect("sent as a link");
    assert_eq!(
        serde_json::from_slice::<Value>(&fake.log.all()[0].body).expect("json")["text"]["content"],
        "manual:\nm.pdf: https://media.example.com/m.pdf"
    );
}

#[tokio::test]
async fn wechat_errors_are_classified() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let message = outbound(Some("hi"), Vec::new());
    let script = |answer: (u16, Value)| fake.script.lock().expect("lock").push_back(answer);
    let send = || WechatAdapter.send(&http, &config, &message);

    script((200, json!({ "errcode": 45011, "errmsg": "api minute-quota reach limit mustslower retry next minute" })));
    assert!(matches!(send().await, Err(DeliveryError::Throttled { retry_after_ms: 60_000, .. })));
    script((200, json!({ "errcode": 45009, "errmsg": "reach max api daily quota limit" })));
    assert!(matches!(send().await, Err(DeliveryError::Throttled { retry_after_ms: 3_600_000, .. })));
    script((200, json!({ "errcode": -1, "errmsg": "system error" })));
    assert!(matches!(send().await, Err(DeliveryError::Transient(_))));
    script((200, json!({ "errcode": 45015, "errmsg": "response out of time limit or subscription is canceled" })));
    assert_eq!(
        send().await,
        Err(DeliveryError::Permanent(
            "WeChat errcode 45015: response out of time limit or subscription is canceled".into()
        ))
    );
    script((500, json!({})));
    assert!(matches!(send().await, Err(DeliveryError::Transient(_))));
    script((404, json!({})));
    assert!(matches!(send().await, Err(DeliveryError::Permanent(_))));

    // An expired token (the fake knows only ACCESS_TOKEN) asks the server for a refresh.
    let stale = ChannelConfig { secrets: json!({ "access_token": "EXPIRED" }), ..config.clone() };
    let err = WechatAdapter.send(&http, &stale, &message).await.expect_err("refused");
    assert!(wechat::is_access_token_error(&err), "{err:?}");
    let none = ChannelConfig { secrets: json!({}), ..config.clone() };
    assert!(wechat::is_access_token_error(&WechatAdapter.send(&http, &none, &message).await.expect_err("no token")));
    assert!(!wechat::is_access_token_error(&DeliveryError::Transient("timeout".into())));
}

// ---------------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn media_is_downloaded_by_media_id() {
    let (fake, config) = start_fake().await;
    let http = reqwest::Client::new();
    let image = only(&safe_config(), "sdk_aes_image");
    let (bytes, mime) = WechatAdapter
        .download(&http, &config, image.attachments[0].url.as_deref().expect("ref"))
        .await
        .expect("downloaded");
    assert_eq!((bytes.as_slice(), mime.as_deref()), (&b"\xFF\xD8jpeg"[..], Some("image/jpeg")));
    let first = &fake.log.all()[0];
    assert_eq!(first.path, "/cgi-bin/media/get");
    assert_eq!(
        query_map(&format!("{}?{}", first.path, first.query.as_deref().unwrap_or("")).parse().expect("uri"))
            ["media_id"],
        "MEDIA_ID_IMAGE_1"
    );

    // A video's media id answers with a download URL, which is followed.
    let (bytes, mime) = WechatAdapter.download(&http, &config, "MEDIA_ID_VIDEO_1").await.expect("video");
    assert_eq!((bytes.as_slice(), mime.as_deref()), (&b"mp4-bytes"[..], Some("video/mp4")));

    assert!(
        matches!(WechatAdapter.download(&http, &config, "gone").await, Err(DeliveryError::Permanent(m)) if m.contains("40007"))
    );
    let stale = ChannelConfig { secrets: json!({ "access_token": "EXPIRED" }), ..config.clone() };
    assert!(wechat::is_access_token_error(
        &WechatAdapter.download(&http, &stale, "MEDIA_ID_IMAGE_1").await.expect_err("stale")
    ));
}

// ---------------------------------------------------------------------------------------------
// Fuzz
// ---------------------------------------------------------------------------------------------

fn encrypt(plain: &[u8]) -> String {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let key = engine.decode(format!("{ENCODING_AES_KEY}=")).expect("key");
    let pad = 32 - plain.len() % 32;
    let mut buf = plain.to_vec();
    buf.extend(std::iter::repeat_n(pad as u8, pad));
    let len = buf.len();
    cbc::Encryptor::<aes::Aes256>::new(key[..].into(), key[..16].into())
        .encrypt_padded_mut::<NoPadding>(&mut buf, len)
        .expect("aligned");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

fn safe_push(encrypt_value: &str) -> (String, String) {
    let msg_signature = wechat::signature(&[TOKEN, TIMESTAMP, NONCE, encrypt_value]);
    let body =
        format!("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{encrypt_value}]]></Encrypt></xml>");
    (signed_query(&format!("&encrypt_type=aes&msg_signature={msg_signature}")), body)
}

#[test]
fn our_encryption_helper_round_trips_through_the_adapter() {
    let xml = format!("<xml><FromUserName>{OPENID}</FromUserName><MsgType>text</MsgType><Content>round trip</Content><MsgId>5</MsgId></xml>");
    let mut plain = b"0123456789abcdef".to_vec();
    plain.extend((xml.len() as u32).to_be_bytes());
    plain.extend(xml.as_bytes());
    plain.extend(APP_ID.as_bytes());
    let (query, body) = safe_push(&encrypt(&plain));
    let (messages, _) = handle(&safe_config(), "POST", &query, body.as_bytes()).expect("accepted");
    assert_eq!(messages[0].text.as_deref(), Some("round trip"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn signed_arbitrary_plain_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = handle(&plain_config(), "POST", &signed_query(""), &body);
    }

    #[test]
    fn signed_arbitrary_encrypt_values_never_panic(value in "[A-Za-z0-9+/=]{0,200}") {
        let (query, body) = safe_push(&value);
        let _ = handle(&safe_config(), "POST", &query, body.as_bytes());
    }

    #[test]
    fn arbitrary_decrypted_payloads_never_panic(
        prefix in prop::collection::vec(any::<u8>(), 0..24),
        claimed_len in prop_oneof![Just(None), any::<u32>().prop_map(Some)],
        xml in prop_oneof![".{0,80}", Just("<xml><MsgType>text</MsgType><FromUserName>o</FromUserName><MsgId>1</MsgId></xml>".to_owned())],
        app_id in prop_oneof![Just(APP_ID.to_owned()), "[a-z0-9]{0,20}"],
    ) {
        let mut plain = prefix;
        plain.truncate(16);
        let len = claimed_len.unwrap_or(xml.len() as u32);
        plain.extend(len.to_be_bytes());
        plain.extend(xml.as_bytes());
        plain.extend(app_id.as_bytes());
        let (query, body) = safe_push(&encrypt(&plain));
        let _ = handle(&safe_config(), "POST", &query, body.as_bytes());
    }
}
