//! Outbound media as each platform takes it, against one recording fake of every API: Telegram
//! multipart upload, WhatsApp upload then send by id, Messenger attachment upload (or URL),
//! Instagram by URL only, WeChat temporary media then send by media_id, LINE by public URL.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use switchboard_core::domain::Attachment;
use switchboard_gateway::line::LineAdapter;
use switchboard_gateway::messenger::MessengerAdapter;
use switchboard_gateway::telegram::TelegramAdapter;
use switchboard_gateway::wechat::WechatAdapter;
use switchboard_gateway::whatsapp::WhatsappAdapter;
use switchboard_gateway::{ChannelAdapter, ChannelConfig, DeliveryError, OutboundFile, OutboundMessage};

use crate::fake::{self, Log, Recorded};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-fake-png-bytes";

async fn record(
    axum::extract::State(log): axum::extract::State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    log.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: body.to_vec(),
    });
    let path = uri.path();
    let answer = if path.starts_with("/bot") {
        json!({"ok": true, "result": {"message_id": 77, "date": 1, "chat": {"id": 42, "type": "private"}}})
    } else if path.ends_with("/media") {
        json!({"id": "WA-MEDIA-1"})
    } else if path.ends_with("/message_attachments") {
        json!({"attachment_id": "FB-ATT-1"})
    } else if path == "/cgi-bin/media/upload" {
        json!({"type": "image", "media_id": "WX-MEDIA-1", "created_at": 1})
    } else if path == "/cgi-bin/message/custom/send" {
        json!({"errcode": 0, "errmsg": "ok"})
    } else if path.starts_with("/v2/bot/message/") {
        json!({"sentMessages": [{"id": "L1", "quoteToken": "q"}]})
    } else {
        json!({"messages": [{"id": "wamid.X"}], "message_id": "mid.X"})
    };
    axum::Json(answer).into_response()
}

async fn fake_api() -> (String, Log) {
    let log = Log::default();
    let (base, _) = fake::serve(Router::new().fallback(record).with_state(log.clone())).await;
    (base, log)
}

fn image(url: &str) -> Attachment {
    Attachment {
        kind: "image".into(),
        url: Some(url.into()),
        name: Some("a.png".into()),
        mime: Some("image/png".into()),
        size: Some(PNG.len() as i64),
    }
}

fn with_file(to: &str, url: &str) -> OutboundMessage {
    OutboundMessage {
        to: to.into(),
        text: Some("here".into()),
        attachments: vec![image(url)],
        delivery_id: "d-9".into(),
        reply_context: None,
        last_inbound_at_ms: None,
        now_ms: 0,
        files: vec![Some(OutboundFile { bytes: PNG.to_vec(), mime: "image/png".into(), name: "a.png".into() })],
    }
}

fn header<'a>(r: &'a Recorded, name: &str) -> &'a str {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// The multipart part named `name` in a recorded body: (its header block, its content).
fn part(r: &Recorded, name: &str) -> Option<(String, Vec<u8>)> {
    let boundary = header(r, "content-type").split("boundary=").nth(1)?.to_owned();
    let delimiter = format!("--{boundary}");
    let body = r.body.as_slice();
    let mut pieces = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        pieces.push(&rest[..at]);
        rest = &rest[at + delimiter.len()..];
    }
    pieces.into_iter().skip(1).find_map(|piece| {
        let split = find(piece, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&piece[..split]).into_owned();
        let content = piece[split + 4..].strip_suffix(b"\r\n").unwrap_or(&piece[split + 4..]).to_vec();
        head.contains(&format!("name=\"{name}\"")).then_some((head, content))
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn json_body(r: &Recorded) -> Value {
    serde_json::from_slice(&r.body).expect("json body")
}

#[tokio::test]
async fn telegram_uploads_our_file_as_multipart() {
    let (base, log) = fake_api().await;
    let config = ChannelConfig { settings: json!({"api_base_url": base}), secrets: json!({"bot_token": "1:T"}) };
    // A relative link (no public URL): only the upload can carry it.
    let receipt =
        TelegramAdapter.send(&reqwest::Client::new(), &config, &with_file("42", "/media/1/abc")).await.expect("sent");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("42:77"));
    let calls = log.all();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/bot1:T/sendPhoto");
    assert!(header(&calls[0], "content-type").starts_with("multipart/form-data"), "{:?}", calls[0].headers);
    let (head, bytes) = part(&calls[0], "photo").expect("photo part");
    assert!(
        head.contains("filename=\"a.png\"") && head.to_ascii_lowercase().contains("content-type: image/png"),
        "{head}"
    );
    assert_eq!(bytes, PNG);
    assert_eq!(part(&calls[0], "chat_id").expect("chat_id").1, b"42");
    assert_eq!(part(&calls[0], "caption").expect("caption").1, b"here");
}

#[tokio::test]
async fn whatsapp_uploads_then_sends_by_media_id() {
    let (base, log) = fake_api().await;
    let config = ChannelConfig {
        settings: json!({"api_base_url": base, "api_version": "v21.0", "phone_number_id": "PN1"}),
        secrets: json!({"access_token": "WA-T"}),
    };
    WhatsappAdapter
        .send(&reqwest::Client::new(), &config, &with_file("15550001", "https://chat.example.com/media/1/abc"))
        .await
        .expect("sent");
    let calls = log.all();
    assert_eq!(calls.len(), 2, "upload, then the message");
    assert_eq!(calls[0].path, "/v21.0/PN1/media");
    assert_eq!(header(&calls[0], "authorization"), "Bearer WA-T");
    assert_eq!(part(&calls[0], "messaging_product").expect("product").1, b"whatsapp");
    assert_eq!(part(&calls[0], "type").expect("type").1, b"image/png");
    assert_eq!(part(&calls[0], "file").expect("file").1, PNG);
    assert_eq!(calls[1].path, "/v21.0/PN1/messages");
    let sent = json_body(&calls[1]);
    assert_eq!(sent["type"], "image");
    assert_eq!(sent["image"], json!({"id": "WA-MEDIA-1", "caption": "here"}), "sent by id, not by link");
}

#[tokio::test]
async fn messenger_uploads_without_a_public_url_and_links_with_one() {
    let (base, log) = fake_api().await;
    let config = ChannelConfig {
        settings: json!({"api_base_url": base, "api_version": "v21.0", "page_id": "PAGE1"}),
        secrets: json!({"access_token": "FB-T"}),
    };
    let http = reqwest::Client::new();
    MessengerAdapter::messenger().send(&http, &config, &with_file("PSID1", "/media/1/abc")).await.expect("sent");
    let calls = log.all();
    assert_eq!(
        calls.len(),
        3,
        "upload, text, attachment message: {:?}",
        calls.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
    assert_eq!(calls[0].path, "/v21.0/PAGE1/message_attachments");
    assert!(calls[0].query.as_deref().is_some_and(|q| q.contains("access_token=FB-T")));
    let message: Value = serde_json::from_slice(&part(&calls[0], "message").expect("message part").1).expect("json");
    assert_eq!(message, json!({"attachment": {"type": "image", "payload": {"is_reusable": true}}}));
    assert_eq!(part(&calls[0], "filedata").expect("filedata").1, PNG);
    assert_eq!(json_body(&calls[1])["message"], json!({"text": "here"}));
    assert_eq!(
        json_body(&calls[2])["message"],
        json!({"attachment": {"type": "image", "payload": {"attachment_id": "FB-ATT-1"}}})
    );

    // With a public link, the platform fetches it: no upload.
    MessengerAdapter::messenger()
        .send(&http, &config, &with_file("PSID1", "https://chat.example.com/media/1/abc?sig=x"))
        .await
        .expect("sent");
    let calls = log.all();
    assert_eq!(calls.len(), 5);
    assert_eq!(
        json_body(&calls[4])["message"]["attachment"]["payload"]["url"],
        "https://chat.example.com/media/1/abc?sig=x"
    );

    // Instagram takes media only by URL: without a public one the reply fails clearly.
    let err = MessengerAdapter::instagram()
        .send(&http, &config, &with_file("IGSID", "/media/1/abc"))
        .await
        .expect_err("no url");
    assert!(matches!(&err, DeliveryError::Permanent(m) if m.contains("public")), "{err:?}");
}

#[tokio::test]
async fn wechat_uploads_temporary_media_then_sends_the_media_id() {
    let (base, log) = fake_api().await;
    let config = ChannelConfig {
        settings: json!({"api_base_url": base, "app_id": "wx1"}),
        secrets: json!({"access_token": "WX-T"}),
    };
    WechatAdapter.send(&reqwest::Client::new(), &config, &with_file("OPENID1", "/media/1/abc")).await.expect("sent");
    let calls = log.all();
    assert_eq!(calls.len(), 3, "upload, text, image");
    assert_eq!(calls[0].path, "/cgi-bin/media/upload");
    let query = calls[0].query.clone().unwrap_or_default();
    assert!(query.contains("access_token=WX-T") && query.contains("type=image"), "{query}");
    let (head, bytes) = part(&calls[0], "media").expect("media part");
    assert!(head.contains("filename=\"a.png\""), "{head}");
    assert_eq!(bytes, PNG);
    assert_eq!(json_body(&calls[1])["msgtype"], "text");
    assert_eq!(
        json_body(&calls[2]),
        json!({"touser": "OPENID1", "msgtype": "image", "image": {"media_id": "WX-MEDIA-1"}})
    );
}

#[tokio::test]
async fn line_sends_images_by_public_url_as_original_and_preview() {
    let (base, log) = fake_api().await;
    let config = ChannelConfig {
        settings: json!({"api_base_url": base}),
        secrets: json!({"channel_access_token": "L-T", "channel_secret": "s"}),
    };
    let url = "https://chat.example.com/media/1/abc?exp=9&sig=x";
    LineAdapter.send(&reqwest::Client::new(), &config, &with_file("U1", url)).await.expect("sent");
    let calls = log.all();
    assert_eq!(calls[0].path, "/v2/bot/message/push");
    let messages = &json_body(&calls[0])["messages"];
    assert_eq!(messages[1], json!({"type": "image", "originalContentUrl": url, "previewImageUrl": url}));
    // A file without a public link cannot go to LINE: a clear, permanent failure.
    let err = LineAdapter
        .send(&reqwest::Client::new(), &config, &with_file("U1", "/media/1/abc"))
        .await
        .expect_err("relative");
    assert!(matches!(err, DeliveryError::Permanent(_)));
}
