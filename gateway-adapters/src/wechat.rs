//! WeChat Official Account (公众号): the URL-verification handshake, plain and safe-mode (AES)
//! message pushes, replies through the customer-service message API, media download, and the
//! access-token request.
//!
//! This module owns WeChat's wire shapes only: it caches nothing (in particular not the access
//! token, see below) and stores nothing.
//!
//! Configuration read from the inbox:
//! - `secrets.token`: the *Token* typed into the console's server configuration (基本配置 →
//!   服务器配置). Signs the handshake and every push.
//! - `secrets.encoding_aes_key`: the 43-character *EncodingAESKey*. When set, only safe-mode
//!   (`encrypt_type=aes`) pushes are accepted; plain pushes are refused, because their signature
//!   covers only the query string, not the body.
//! - `secrets.app_secret`: the *AppSecret*, used only by [`WechatAdapter::fetch_access_token`].
//! - `secrets.access_token`: the current access token, INJECTED BY THE SERVER (see below).
//! - `settings.app_id`: the *AppID*; required in safe mode (the decrypted payload names it).
//! - `settings.api_base_url`: default `https://api.weixin.qq.com`.
//!
//! Access-token contract: WeChat allows one valid access token per AppID (requesting a new one
//! invalidates the previous one after a short grace period) and a daily quota of requests for
//! it. Adapters therefore never request one on their own. The server calls
//! [`WechatAdapter::fetch_access_token`] once per account for the whole cluster, caches the
//! token until shortly before `expires_in`, and passes it in `secrets.access_token` to
//! `send` and `download`. When WeChat says the token is invalid or expired (errcode 40001,
//! 40014, 42001) the adapter returns `DeliveryError::Transient` whose text starts with
//! [`ACCESS_TOKEN_INVALID`] (test it with [`is_access_token_error`]): the server then refreshes
//! the token and the outbox retries.
//!
//! Inbound: `GET /webhooks/{inbox_id}?signature&timestamp&nonce&echostr` is the handshake:
//! signature = SHA1 of the sorted concatenation of (token, timestamp, nonce); we answer `echostr`.
//! `POST /webhooks/{inbox_id}` carries one XML message; we answer the literal `success`, which
//! tells WeChat not to retry and not to expect a passive reply (replies go through the
//! customer-service API). WeChat retries a push three times; the dedupe key is `MsgId` (or
//! `FromUserName:CreateTime` for pushes without one, as WeChat recommends).

use std::time::Duration;

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, KeyIvInit};
use async_trait::async_trait;
use base64::engine::{general_purpose::GeneralPurpose, general_purpose::GeneralPurposeConfig, DecodePaddingMode};
use base64::{alphabet, Engine as _};
use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};
use switchboard_core::domain::{Attachment, ChannelKind};

use crate::channel::{
    ChannelAdapter, ChannelConfig, ContentKind, InboundEvent, NormalizedMessage, OutboundMessage, SendReceipt,
    WebhookAnswer, WebhookError, WebhookOutcome, WebhookRequest,
};
use crate::signature::constant_time_eq;
use crate::{classify_status, DeliveryError};

pub const DEFAULT_API_BASE_URL: &str = "https://api.weixin.qq.com";
/// The prefix of a `DeliveryError::Transient` that means "refresh the access token".
pub const ACCESS_TOKEN_INVALID: &str = "wechat access_token invalid";
/// Throttle hint for 45011 (per-minute API quota).
pub const MINUTE_QUOTA_THROTTLE: Duration = Duration::from_secs(60);
/// Throttle hint for 45009 (daily API quota; it resets at midnight Beijing time, and an admin
/// can reset it in the console).
pub const DAILY_QUOTA_THROTTLE: Duration = Duration::from_secs(3600);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// The WeChat Official Account adapter. Stateless: everything comes from the inbox's config.
#[derive(Debug, Clone, Copy, Default)]
pub struct WechatAdapter;

/// True when `err` says the injected access token is invalid or expired.
pub fn is_access_token_error(err: &DeliveryError) -> bool {
    matches!(err, DeliveryError::Transient(m) if m.starts_with(ACCESS_TOKEN_INVALID))
}

/// WeChat's signature: lowercase hex SHA1 of the parts sorted bytewise and concatenated.
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for p in sorted {
        hasher.update(p.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Base64 as WeChat writes it: the EncodingAESKey is 43 random characters, so the last one
/// usually has non-zero trailing bits, which a strict decoder refuses.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decrypts a safe-mode `Encrypt` value: AES-256-CBC with the key from `encoding_aes_key`, the
/// key's first 16 bytes as IV, PKCS#7 padding to 32-byte blocks; the plaintext is 16 random
/// bytes, the XML's length (4 bytes, big-endian), the XML, and the AppID, which must be
/// `app_id`.
pub fn decrypt(encoding_aes_key: &str, app_id: &str, encrypted: &str) -> Result<String, WebhookError> {
    let key = aes_key(encoding_aes_key)?;
    let mut buf = LENIENT_BASE64
        .decode(encrypted.trim())
        .map_err(|e| WebhookError::Malformed(format!("Encrypt is not base64: {e}")))?;
    if buf.is_empty() || buf.len() % 16 != 0 {
        return Err(WebhookError::Malformed("Encrypt is not a whole number of AES blocks".into()));
    }
    let plain = Aes256CbcDec::new(key[..].into(), key[..16].into())
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| WebhookError::Malformed("Encrypt could not be decrypted".into()))?;
    // PKCS#7 with WeChat's 32-byte block: 1..=32 bytes, each equal to the count.
    let pad = usize::from(*plain.last().unwrap_or(&0));
    if pad == 0 || pad > 32 || pad > plain.len() || !plain[plain.len() - pad..].iter().all(|&b| usize::from(b) == pad) {
        return Err(WebhookError::Unauthorized("Encrypt has bad padding (wrong EncodingAESKey?)".into()));
    }
    let content = &plain[..plain.len() - pad];
    let header = content.get(16..20).ok_or_else(|| WebhookError::Malformed("decrypted payload too short".into()))?;
    let xml_len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let xml_end = 20usize
        .checked_add(xml_len)
        .filter(|&end| end <= content.len())
        .ok_or_else(|| WebhookError::Malformed("decrypted length is out of range".into()))?;
    let (xml, from_app_id) = (&content[20..xml_end], &content[xml_end..]);
    if !constant_time_eq(from_app_id, app_id.as_bytes()) {
        return Err(WebhookError::Unauthorized("decrypted AppID does not match settings.app_id".into()));
    }
    String::from_utf8(xml.to_vec()).map_err(|_| WebhookError::Malformed("decrypted XML is not UTF-8".into()))
}

fn aes_key(encoding_aes_key: &str) -> Result<Vec<u8>, WebhookError> {
    let key = LENIENT_BASE64
        .decode(format!("{}=", encoding_aes_key.trim()))
        .map_err(|e| WebhookError::NotConfigured(format!("secrets.encoding_aes_key is not base64: {e}")))?;
    if key.len() != 32 {
        return Err(WebhookError::NotConfigured("secrets.encoding_aes_key must be 43 characters (32 bytes)".into()));
    }
    Ok(key)
}

impl WechatAdapter {
    /// Requests a new access token: `(access_token, expires_in seconds)`. Call it from ONE place
    /// per account (the server's token cache), never per send: each call invalidates the
    /// previous token and counts against a daily quota.
    #[tracing::instrument(skip_all, fields(channel = "wechat"))]
    pub async fn fetch_access_token(
        http: &reqwest::Client,
        config: &ChannelConfig,
    ) -> Result<(String, u64), DeliveryError> {
        let app_id =
            config.setting("app_id").ok_or_else(|| DeliveryError::Permanent("settings.app_id is missing".into()))?;
        let secret = config
            .secret("app_secret")
            .ok_or_else(|| DeliveryError::Permanent("secrets.app_secret is missing".into()))?;
        let url = api_url(
            config,
            "/cgi-bin/token",
            &[("grant_type", "client_credential"), ("appid", app_id), ("secret", secret)],
        )?;
        let body = call(http.get(url)).await?;
        if let Some(err) = api_error(&body, false) {
            return Err(err);
        }
        let token = body.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
        let expires_in = body.get("expires_in").and_then(Value::as_u64).unwrap_or(7200);
        match token {
            Some(t) => Ok((t.to_owned(), expires_in)),
            None => Err(DeliveryError::Transient("WeChat token answer has no access_token".into())),
        }
    }
}

#[async_trait]
impl ChannelAdapter for WechatAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Wechat
    }

    fn handle_webhook(
        &self,
        config: &ChannelConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<WebhookOutcome, WebhookError> {
        let token =
            config.secret("token").ok_or_else(|| WebhookError::NotConfigured("secrets.token is missing".into()))?;
        let param = |name: &str| {
            request
                .query_param(name)
                .ok_or_else(|| WebhookError::Unauthorized(format!("query parameter `{name}` is missing")))
        };
        let (timestamp, nonce) = (param("timestamp")?, param("nonce")?);

        if request.method.eq_ignore_ascii_case("GET") {
            check(&param("signature")?, &[token, &timestamp, &nonce])?;
            let echo = request
                .query_param("echostr")
                .ok_or_else(|| WebhookError::Malformed("query parameter `echostr` is missing".into()))?;
            return Ok(WebhookOutcome { events: Vec::new(), answer: WebhookAnswer::text(echo) });
        }
        if !request.method.eq_ignore_ascii_case("POST") {
            return Err(WebhookError::Malformed(format!("WeChat sends GET or POST, not {}", request.method)));
        }

        // The query signature is present in both modes; in safe mode it is not enough, since it
        // does not cover the body, and the message signature below is the one that matters.
        check(&param("signature")?, &[token, &timestamp, &nonce])?;
        let body =
            std::str::from_utf8(request.body).map_err(|_| WebhookError::Malformed("body is not UTF-8".into()))?;
        let encrypted = request.query_param("encrypt_type").is_some_and(|t| t.eq_ignore_ascii_case("aes"));
        let aes_key = config.secret("encoding_aes_key");
        let xml = if encrypted {
            let aes_key = aes_key
                .ok_or_else(|| WebhookError::NotConfigured("safe mode needs secrets.encoding_aes_key".into()))?;
            let app_id = config
                .setting("app_id")
                .ok_or_else(|| WebhookError::NotConfigured("safe mode needs settings.app_id".into()))?;
            let outer = parse_xml(body)?;
            let encrypt = outer
                .get("Encrypt")
                .and_then(Value::as_str)
                .ok_or_else(|| WebhookError::Malformed("safe-mode body has no Encrypt".into()))?;
            check(&param("msg_signature")?, &[token, &timestamp, &nonce, encrypt])?;
            decrypt(aes_key, app_id, encrypt)?
        } else if aes_key.is_some() {
            return Err(WebhookError::Unauthorized(
                "this inbox accepts only safe-mode (encrypt_type=aes) pushes".into(),
            ));
        } else {
            body.to_owned()
        };

        let fields = parse_xml(&xml)?;
        let events = parse_message(fields)?.map(InboundEvent::Message).into_iter().collect();
        Ok(WebhookOutcome { events, answer: WebhookAnswer::text("success") })
    }

    /// The `timestamp` query parameter: part of both the query signature and the safe-mode
    /// `msg_signature`.
    fn signed_timestamp(&self, request: &WebhookRequest<'_>) -> Option<String> {
        request.query_param("timestamp")
    }

    #[tracing::instrument(skip_all, fields(channel = "wechat", delivery_id = %message.delivery_id))]
    async fn send(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, DeliveryError> {
        let token = injected_token(config)?;
        // Build every request before sending any, so a message WeChat cannot take fails whole
        // instead of after its text went out.
        // Images and voice from our media store go up as temporary media first
        // (`/cgi-bin/media/upload`, valid three days) and are sent by the media_id WeChat gives.
        let mut media_ids = Vec::with_capacity(message.attachments.len());
        for (index, attachment) in message.attachments.iter().enumerate() {
            let media_type = match attachment.kind.as_str() {
                "image" => Some("image"),
                "audio" => Some("voice"),
                _ => None,
            };
            media_ids.push(match (media_type, message.file(index)) {
                (Some(media_type), Some(file)) => Some(upload_media(http, config, token, media_type, file).await?),
                _ => None,
            });
        }
        let bodies = outbound_bodies(message, &media_ids)?;
        let url = api_url(config, "/cgi-bin/message/custom/send", &[("access_token", token)])?;
        let mut receipt = SendReceipt { platform_message_id: None };
        for body in bodies {
            let answer = call(http.post(url.clone()).json(&body)).await?;
            if let Some(err) = api_error(&answer, true) {
                return Err(err);
            }
            if let Some(id) = answer
                .get("msgid")
                .and_then(|v| v.as_i64().map(|n| n.to_string()).or_else(|| v.as_str().map(str::to_owned)))
            {
                receipt.platform_message_id = Some(id);
            }
        }
        Ok(receipt)
    }

    #[tracing::instrument(skip_all, fields(channel = "wechat"))]
    async fn download(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        media_ref: &str,
    ) -> Result<(Vec<u8>, Option<String>), DeliveryError> {
        let url = if media_ref.starts_with("https://") || media_ref.starts_with("http://") {
            // A PicUrl or a video_url: public, no token.
            reqwest::Url::parse(media_ref).map_err(|e| DeliveryError::Permanent(format!("invalid media URL: {e}")))?
        } else {
            let token = injected_token(config)?;
            api_url(config, "/cgi-bin/media/get", &[("access_token", token), ("media_id", media_ref)])?
        };
        let (bytes, mime) = fetch_bytes(http, url).await?;
        // Errors come back as JSON with HTTP 200; a video's media id answers {"video_url": ...}.
        if mime.as_deref().is_some_and(|m| m.starts_with("application/json") || m.starts_with("text/plain")) {
            if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
                if let Some(err) = api_error(&body, true) {
                    return Err(err);
                }
                if let Some(video_url) = body.get("video_url").and_then(Value::as_str) {
                    let url = reqwest::Url::parse(video_url)
                        .map_err(|e| DeliveryError::Permanent(format!("invalid video_url: {e}")))?;
                    return fetch_bytes(http, url).await;
                }
            }
        }
        Ok((bytes, mime))
    }
}

/// Checks a WeChat signature over `parts` in constant time.
fn check(provided: &str, parts: &[&str]) -> Result<(), WebhookError> {
    if constant_time_eq(signature(parts).as_bytes(), provided.trim().to_ascii_lowercase().as_bytes()) {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized("WeChat signature does not match".into()))
    }
}

/// Parses WeChat's `<xml>…</xml>` into a JSON object of its child elements (text, or a nested
/// object for elements with children). DTDs are refused (roxmltree's default), so no entity
/// expansion.
fn parse_xml(xml: &str) -> Result<Map<String, Value>, WebhookError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| WebhookError::Malformed(format!("body is not XML: {e}")))?;
    match element_value(doc.root_element()) {
        Value::Object(map) => Ok(map),
        _ => Err(WebhookError::Malformed("XML root has no child elements".into())),
    }
}

fn element_value(node: roxmltree::Node<'_, '_>) -> Value {
    let children: Vec<_> = node.children().filter(|c| c.is_element()).collect();
    if children.is_empty() {
        let text: String = node.children().filter_map(|c| c.text()).collect();
        return Value::String(text);
    }
    let mut map = Map::new();
    for child in children {
        map.insert(child.tag_name().name().to_owned(), element_value(child));
    }
    Value::Object(map)
}

/// One pushed message → a normalized message; `None` for events (subscribe, unsubscribe, menu
/// clicks, template-send reports …), which are not customer messages.
fn parse_message(fields: Map<String, Value>) -> Result<Option<NormalizedMessage>, WebhookError> {
    let raw = Value::Object(fields);
    let field = |name: &str| raw.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let msg_type = field("MsgType").ok_or_else(|| WebhookError::Malformed("no MsgType".into()))?.to_ascii_lowercase();
    if msg_type == "event" {
        return Ok(None);
    }
    let from = field("FromUserName").ok_or_else(|| WebhookError::Malformed("no FromUserName".into()))?;
    let platform_message_id = match (field("MsgId"), field("CreateTime")) {
        (Some(id), _) => id.to_owned(),
        (None, Some(at)) => format!("{from}:{at}"),
        (None, None) => return Err(WebhookError::Malformed("neither MsgId nor CreateTime".into())),
    };

    let media = |kind: &str, mime: Option<String>| Attachment {
        kind: kind.to_owned(),
        url: field("MediaId").or(field("PicUrl")).map(str::to_owned),
        name: None,
        mime,
        size: None,
    };
    let (kind, text, attachments) = match msg_type.as_str() {
        "text" => (ContentKind::Text, field("Content").map(str::to_owned), Vec::new()),
        "image" => (ContentKind::Image, None, vec![media("image", None)]),
        // Voice comes as AMR or Speex; with speech recognition on, `Recognition` holds the words.
        "voice" => {
            let mime = field("Format").map(|f| format!("audio/{}", f.to_ascii_lowercase()));
            (ContentKind::Audio, field("Recognition").map(str::to_owned), vec![media("audio", mime)])
        }
        "video" | "shortvideo" => (ContentKind::Video, None, vec![media("video", None)]),
        "location" => {
            let coord = |name: &str| field(name).and_then(|v| v.parse::<f64>().ok());
            crate::channel::location_content(coord("Location_X"), coord("Location_Y"), field("Label"), None)
        }
        // A shared article: readable as text (title, description, URL); the kind stays Text so
        // agents can answer it like any message.
        "link" => {
            let lines: Vec<&str> = [field("Title"), field("Description"), field("Url")].into_iter().flatten().collect();
            (ContentKind::Text, (!lines.is_empty()).then(|| lines.join("\n")), Vec::new())
        }
        // miniprogrampage, file and whatever WeChat adds next.
        _ => (ContentKind::Unsupported, None, Vec::new()),
    };

    Ok(Some(NormalizedMessage {
        platform_message_id,
        contact_external_id: from.to_owned(),
        contact_name: None,
        kind,
        text,
        attachments,
        reply_context: None,
        raw: raw.clone(),
    }))
}

/// The customer-service message bodies for one reply: the text first (with links to
/// attachments WeChat cannot take as media), then one message per image or voice that already
/// has a WeChat `media_id` (an attachment `url` that is not an http(s) URL).
fn outbound_bodies(message: &OutboundMessage, media_ids: &[Option<String>]) -> Result<Vec<Value>, DeliveryError> {
    let mut text = message.text.clone().unwrap_or_default();
    let mut media = Vec::new();
    for (index, attachment) in message.attachments.iter().enumerate() {
        let uploaded = media_ids.get(index).and_then(Option::as_deref);
        let url = uploaded.or(attachment.url.as_deref()).filter(|u| !u.is_empty());
        let is_link = url.is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
        match (attachment.kind.as_str(), url) {
            ("image", Some(id)) if !is_link => {
                media.push(json!({ "touser": message.to, "msgtype": "image", "image": { "media_id": id } }))
            }
            ("audio", Some(id)) if !is_link => {
                media.push(json!({ "touser": message.to, "msgtype": "voice", "voice": { "media_id": id } }))
            }
            ("image" | "audio", _) => {
                return Err(DeliveryError::Permanent(format!(
                    "WeChat sends {} only by media_id: upload media first",
                    attachment.kind
                )));
            }
            (_, Some(link)) if is_link => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&match &attachment.name {
                    Some(name) => format!("{name}: {link}"),
                    None => link.to_owned(),
                });
            }
            (kind, _) => {
                return Err(DeliveryError::Permanent(format!("WeChat cannot send a {kind} attachment without a URL")))
            }
        }
    }
    let mut bodies = Vec::with_capacity(media.len() + 1);
    if !text.trim().is_empty() {
        bodies.push(json!({ "touser": message.to, "msgtype": "text", "text": { "content": text } }));
    }
    bodies.extend(media);
    if bodies.is_empty() {
        return Err(DeliveryError::Permanent("nothing to send: no text and no attachment".into()));
    }
    Ok(bodies)
}

/// Uploads one file as temporary media (multipart field `media`) and answers its media_id.
async fn upload_media(
    http: &reqwest::Client,
    config: &ChannelConfig,
    token: &str,
    media_type: &str,
    file: &crate::OutboundFile,
) -> Result<String, DeliveryError> {
    let url = api_url(config, "/cgi-bin/media/upload", &[("access_token", token), ("type", media_type)])?;
    let form = reqwest::multipart::Form::new().part("media", file.part()?);
    let answer = call(http.post(url).multipart(form)).await?;
    if let Some(err) = api_error(&answer, true) {
        return Err(err);
    }
    answer.get("media_id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
        DeliveryError::Transient("WeChat media upload answered no media_id".into())
    })
}

/// WeChat answers most errors with HTTP 200 and `{errcode, errmsg}`; `None` when errcode is 0
/// or absent. `token_errors` marks invalid-token codes for the server's token refresh.
fn api_error(body: &Value, token_errors: bool) -> Option<DeliveryError> {
    let code = body.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    if code == 0 {
        return None;
    }
    let errmsg = body.get("errmsg").and_then(Value::as_str).unwrap_or("");
    let detail = format!("WeChat errcode {code}: {errmsg}");
    Some(match code {
        45011 => DeliveryError::Throttled { retry_after_ms: MINUTE_QUOTA_THROTTLE.as_millis() as u64, detail },
        45009 => DeliveryError::Throttled { retry_after_ms: DAILY_QUOTA_THROTTLE.as_millis() as u64, detail },
        -1 => DeliveryError::Transient(detail),
        40001 | 40014 | 42001 if token_errors => DeliveryError::Transient(format!("{ACCESS_TOKEN_INVALID}: {detail}")),
        _ => DeliveryError::Permanent(detail),
    })
}

/// Sends a request whose answer is JSON; HTTP-level failures are classified by status.
async fn call(request: reqwest::RequestBuilder) -> Result<Value, DeliveryError> {
    let response = request.timeout(REQUEST_TIMEOUT).send().await.map_err(request_error)?;
    let status = response.status().as_u16();
    let text =
        response.text().await.map_err(|e| DeliveryError::Transient(format!("reading WeChat answer failed: {e}")))?;
    if !(200..300).contains(&status) {
        return Err(classify_status(
            status,
            format!("WeChat HTTP {status}: {}", text.chars().take(200).collect::<String>()),
        ));
    }
    serde_json::from_str(&text).map_err(|_| {
        DeliveryError::Transient(format!("WeChat answered non-JSON: {}", text.chars().take(200).collect::<String>()))
    })
}

async fn fetch_bytes(http: &reqwest::Client, url: reqwest::Url) -> Result<(Vec<u8>, Option<String>), DeliveryError> {
    let response = http.get(url).timeout(REQUEST_TIMEOUT).send().await.map_err(request_error)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let text = response.text().await.unwrap_or_default();
        return Err(classify_status(
            status,
            format!("WeChat HTTP {status}: {}", text.chars().take(200).collect::<String>()),
        ));
    }
    let mime = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = response.bytes().await.map_err(|e| DeliveryError::Transient(format!("reading media failed: {e}")))?;
    Ok((bytes.to_vec(), mime))
}

/// WeChat puts the access token (and, when fetching one, the AppSecret) in the query string, so
/// the URL is dropped from the error: it ends up in logs and in the outbox's `last_error`.
fn request_error(e: reqwest::Error) -> DeliveryError {
    let builder = e.is_builder();
    let e = e.without_url();
    if builder {
        DeliveryError::Permanent(format!("invalid WeChat request: {e}"))
    } else {
        DeliveryError::Transient(format!("WeChat request failed: {e}"))
    }
}

fn injected_token(config: &ChannelConfig) -> Result<&str, DeliveryError> {
    // No token yet is the server's job to fix (fetch and inject one), so ask for a refresh.
    config.secret("access_token").ok_or_else(|| {
        DeliveryError::Transient(format!("{ACCESS_TOKEN_INVALID}: secrets.access_token was not injected"))
    })
}

fn api_url(config: &ChannelConfig, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Url, DeliveryError> {
    let base = config.setting("api_base_url").unwrap_or(DEFAULT_API_BASE_URL).trim_end_matches('/');
    let mut url = reqwest::Url::parse(&format!("{base}{path}"))
        .map_err(|e| DeliveryError::Permanent(format!("invalid api_base_url: {e}")))?;
    url.query_pairs_mut().extend_pairs(query);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transport_errors_never_carry_the_query_secrets() {
        // Port 9 (discard) is closed here: the request fails at connect time.
        let url = "http://127.0.0.1:9/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=APPSECRET-42&access_token=TOKEN-42";
        let err = reqwest::Client::new().get(url).send().await.expect_err("nothing listens on port 9");
        let shown = request_error(err).to_string();
        assert!(!shown.contains("APPSECRET-42") && !shown.contains("TOKEN-42"), "{shown}");
    }

    #[test]
    fn signature_sorts_before_hashing() {
        // The parts sorted bytewise are "1", "2", "3", "abc": sha1("123abc").
        assert_eq!(signature(&["abc", "3", "1", "2"]), "4be30d9814c6d4e9800e0d2ea9ec9fb00efa887b");
    }

    #[test]
    fn api_errors_are_classified() {
        let e = |code: i64| api_error(&json!({ "errcode": code, "errmsg": "x" }), true);
        assert_eq!(e(0), None);
        assert!(matches!(e(45009), Some(DeliveryError::Throttled { .. })));
        assert!(matches!(e(45011), Some(DeliveryError::Throttled { retry_after_ms: 60_000, .. })));
        assert!(matches!(e(-1), Some(DeliveryError::Transient(_))));
        assert!(e(42001).as_ref().is_some_and(is_access_token_error));
        assert!(matches!(e(45015), Some(DeliveryError::Permanent(_))));
    }
}
