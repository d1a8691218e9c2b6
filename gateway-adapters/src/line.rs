//! LINE Messaging API: verifies LINE's webhook signature, turns `message` events into
//! normalized messages, and sends agent replies through the reply API (free, while the
//! customer's reply token is fresh) or the push API (with an idempotency key).
//!
//! This module owns LINE's wire shapes only; it stores nothing and keeps no clock of its own.
//!
//! Configuration read from the inbox:
//! - `secrets.channel_secret`: the channel secret (LINE Developers console → the channel's
//!   *Basic settings*). Signs every webhook request; without it every request is refused.
//! - `secrets.channel_access_token`: a (long-lived or short-lived) channel access token
//!   (*Messaging API* tab). Bearer token for reply, push and content download.
//! - `settings.api_base_url`: default `https://api.line.me` (reply and push).
//! - `settings.data_api_base_url`: default `https://api-data.line.me` (message content).
//!
//! Inbound: `POST /webhooks/{inbox_id}` with `x-line-signature` = base64(HMAC-SHA256(channel
//! secret, raw body)), checked in constant time over the raw bytes. Only `message` events become
//! messages; follow, unfollow, postback, join and every other event type are acknowledged and
//! skipped. Message kinds text, image, video, audio, file, location and sticker are mapped;
//! anything else is kept as `Unsupported` with the raw event.
//!
//! Dedupe: `platform_message_id` is `message.id`. A redelivered event (`deliveryContext.
//! isRedelivery: true`) carries the same `message.id` as the original delivery, so the server's
//! unique key on the platform message id already drops it; `webhookEventId` would be an equally
//! stable key but exists for non-message events too, which we skip, so it adds nothing here. It
//! is kept in `raw` for audits.
//!
//! Reply tokens: LINE accepts a reply token once, and only for a short time after the event
//! (LINE documents one minute). We record `expires_at_ms = event.timestamp + 50 s` so a reply
//! leaves a margin for clock skew and the request itself; a redelivered event carries its
//! original timestamp, so its stale token is already expired. `send` uses the reply API while the
//! token is fresh and falls back to push when it is expired, absent, or refused (a token already
//! spent by an earlier reply answers 400).

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{json, Value};
use switchboard_core::domain::{Attachment, ChannelKind};

use crate::channel::{
    ChannelAdapter, ChannelConfig, ContentKind, InboundEvent, NormalizedMessage, OutboundMessage, ReplyContext,
    SendReceipt, WebhookAnswer, WebhookError, WebhookOutcome, WebhookRequest,
};
use crate::signature::{constant_time_eq, hmac_sha256};
use crate::DeliveryError;

pub const DEFAULT_API_BASE_URL: &str = "https://api.line.me";
pub const DEFAULT_DATA_API_BASE_URL: &str = "https://api-data.line.me";
pub const HEADER_SIGNATURE: &str = "x-line-signature";
pub const HEADER_RETRY_KEY: &str = "X-Line-Retry-Key";
/// How long after the event we still use its reply token (LINE allows about a minute).
pub const REPLY_TOKEN_TTL_MS: i64 = 50_000;
/// LINE accepts at most five message objects per reply or push request.
pub const MAX_MESSAGES_PER_REQUEST: usize = 5;
/// Throttle hint when LINE answers 429 without a `Retry-After` header.
pub const DEFAULT_THROTTLE: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The LINE Messaging API adapter. Stateless: everything comes from the inbox's config.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineAdapter;

/// The `x-line-signature` value LINE sends for `body`: base64(HMAC-SHA256(channel secret, body)).
pub fn sign(channel_secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(channel_secret.as_bytes(), &[body]))
}

/// The `X-Line-Retry-Key` for a delivery: a name-based (v5) UUID of our delivery id, so every
/// retry of the same delivery carries the same key and LINE sends the message at most once.
pub fn retry_key(delivery_id: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("urn:switchboard:delivery:{delivery_id}").as_bytes())
        .to_string()
}

#[async_trait]
impl ChannelAdapter for LineAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Line
    }

    fn handle_webhook(
        &self,
        config: &ChannelConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<WebhookOutcome, WebhookError> {
        let secret = config
            .secret("channel_secret")
            .ok_or_else(|| WebhookError::NotConfigured("secrets.channel_secret is missing".into()))?;
        let provided = request
            .header(HEADER_SIGNATURE)
            .ok_or_else(|| WebhookError::Unauthorized("x-line-signature header is missing".into()))?;
        if !constant_time_eq(sign(secret, request.body).as_bytes(), provided.trim().as_bytes()) {
            return Err(WebhookError::Unauthorized("x-line-signature does not match the body".into()));
        }
        if !request.method.eq_ignore_ascii_case("POST") {
            return Err(WebhookError::Malformed(format!("LINE sends POST, not {}", request.method)));
        }
        let payload: Value = serde_json::from_slice(request.body)
            .map_err(|e| WebhookError::Malformed(format!("body is not JSON: {e}")))?;
        let events = payload
            .get("events")
            .and_then(Value::as_array)
            .ok_or_else(|| WebhookError::Malformed("body has no `events` array".into()))?;
        let events = events.iter().filter_map(parse_event).map(InboundEvent::Message).collect();
        Ok(WebhookOutcome { events, answer: WebhookAnswer::ok_empty() })
    }

    #[tracing::instrument(skip_all, fields(channel = "line", delivery_id = %message.delivery_id))]
    async fn send(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, DeliveryError> {
        let token = access_token(config)?;
        let messages = outbound_messages(message)?;
        let base = base_url(config, "api_base_url", DEFAULT_API_BASE_URL);

        if let Some(reply) = message.reply_context.as_ref().filter(|r| message.now_ms < r.expires_at_ms) {
            let body = json!({ "replyToken": reply.token, "messages": messages });
            let response = http
                .post(format!("{base}/v2/bot/message/reply"))
                .timeout(REQUEST_TIMEOUT)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .map_err(request_error)?;
            // 400 on a reply is almost always a spent or expired reply token (each token works
            // once, and a second agent reply within the window reuses it): push instead.
            if response.status().as_u16() != 400 {
                return finish(response).await;
            }
            let detail = response.text().await.unwrap_or_default();
            tracing::debug!(detail = %snippet(&detail), "LINE refused the reply token; pushing instead");
        }

        let body = json!({ "to": message.to, "messages": messages });
        let response = http
            .post(format!("{base}/v2/bot/message/push"))
            .timeout(REQUEST_TIMEOUT)
            .bearer_auth(token)
            .header(HEADER_RETRY_KEY, retry_key(&message.delivery_id))
            .json(&body)
            .send()
            .await
            .map_err(request_error)?;
        finish(response).await
    }

    #[tracing::instrument(skip_all, fields(channel = "line"))]
    async fn download(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        media_ref: &str,
    ) -> Result<(Vec<u8>, Option<String>), DeliveryError> {
        // Content from an external provider (`contentProvider.type: external`) is referenced by
        // its own URL; it is not LINE's, so it gets no LINE credentials.
        let request = if media_ref.starts_with("https://") || media_ref.starts_with("http://") {
            http.get(media_ref)
        } else {
            let token = access_token(config)?;
            let base = base_url(config, "data_api_base_url", DEFAULT_DATA_API_BASE_URL);
            let mut url = reqwest::Url::parse(&base)
                .map_err(|e| DeliveryError::Permanent(format!("invalid data_api_base_url: {e}")))?;
            url.path_segments_mut()
                .map_err(|_| DeliveryError::Permanent("data_api_base_url cannot take a path".into()))?
                .pop_if_empty()
                .extend(["v2", "bot", "message", media_ref, "content"]);
            http.get(url).bearer_auth(token)
        };
        let response = request.timeout(REQUEST_TIMEOUT).send().await.map_err(request_error)?;
        let status = response.status().as_u16();
        if status == 200 {
            let mime =
                response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let bytes =
                response.bytes().await.map_err(|e| DeliveryError::Transient(format!("reading content failed: {e}")))?;
            return Ok((bytes.to_vec(), mime));
        }
        if (200..300).contains(&status) {
            // 202: LINE is still preparing a video or audio file.
            return Err(DeliveryError::Transient(format!("LINE content not ready yet (HTTP {status})")));
        }
        Err(classify(status, retry_after(&response), &response.text().await.unwrap_or_default()))
    }
}

/// One LINE event → a normalized message, or `None` for events that are not customer messages
/// (follow, unfollow, postback, …) and for message events with no addressable source.
fn parse_event(event: &Value) -> Option<NormalizedMessage> {
    if event.get("type").and_then(Value::as_str) != Some("message") {
        return None;
    }
    let message = event.get("message")?;
    let Some(platform_message_id) = str_at(message, "id") else {
        tracing::warn!("LINE message event without message.id; skipped");
        return None;
    };
    // 1:1 chats are addressed by the user id; in a group or room a reply must go to the group
    // or room, so that id is the contact.
    let source = event.get("source").unwrap_or(&Value::Null);
    let contact = match str_at(source, "type") {
        Some("group") => str_at(source, "groupId"),
        Some("room") => str_at(source, "roomId"),
        _ => str_at(source, "userId"),
    };
    let Some(contact) = contact else {
        tracing::warn!(message_id = platform_message_id, "LINE message event without a source id; skipped");
        return None;
    };

    let media = |kind: &str| Attachment {
        kind: kind.to_owned(),
        url: Some(media_ref(message, platform_message_id)),
        name: str_at(message, "fileName").map(str::to_owned),
        mime: None,
        size: message.get("fileSize").and_then(Value::as_i64),
    };
    let (kind, text, attachments) = match str_at(message, "type").unwrap_or("unknown") {
        "text" => (ContentKind::Text, str_at(message, "text").map(str::to_owned), Vec::new()),
        "image" => (ContentKind::Image, None, vec![media("image")]),
        "video" => (ContentKind::Video, None, vec![media("video")]),
        "audio" => (ContentKind::Audio, None, vec![media("audio")]),
        "file" => (ContentKind::File, None, vec![media("file")]),
        "location" => crate::channel::location_content(
            message.get("latitude").and_then(Value::as_f64),
            message.get("longitude").and_then(Value::as_f64),
            str_at(message, "title"),
            str_at(message, "address"),
        ),
        // Stickers are identified by package and sticker id (kept in `raw`); message stickers
        // also carry the words printed on them.
        "sticker" => (ContentKind::Sticker, str_at(message, "text").map(str::to_owned), Vec::new()),
        _ => (ContentKind::Unsupported, None, Vec::new()),
    };

    let reply_context = match (str_at(event, "replyToken"), event.get("timestamp").and_then(Value::as_i64)) {
        (Some(token), Some(at)) => {
            Some(ReplyContext { token: token.to_owned(), expires_at_ms: at.saturating_add(REPLY_TOKEN_TTL_MS) })
        }
        _ => None,
    };

    Some(NormalizedMessage {
        platform_message_id: platform_message_id.to_owned(),
        contact_external_id: contact.to_owned(),
        contact_name: None,
        kind,
        text,
        attachments,
        raw: event.clone(),
        reply_context,
    })
}

/// Where a media message's bytes live: LINE's content API (by message id) unless the sender's
/// app hosted it elsewhere (`contentProvider.type: external`).
fn media_ref(message: &Value, message_id: &str) -> String {
    let provider = message.get("contentProvider").unwrap_or(&Value::Null);
    match (str_at(provider, "type"), str_at(provider, "originalContentUrl")) {
        (Some("external"), Some(url)) => url.to_owned(),
        _ => message_id.to_owned(),
    }
}

/// The message objects for one reply: the text (with links to attachments LINE cannot send as
/// such: files, audio and video need metadata we do not have) and one image object per image.
fn outbound_messages(message: &OutboundMessage) -> Result<Vec<Value>, DeliveryError> {
    let mut text = message.text.clone().unwrap_or_default();
    let mut images = Vec::new();
    for attachment in &message.attachments {
        let url =
            attachment.url.as_deref().filter(|u| u.starts_with("https://") || u.starts_with("http://")).ok_or_else(
                || DeliveryError::Permanent(format!("LINE needs an HTTPS URL for the {} attachment", attachment.kind)),
            )?;
        if attachment.kind == "image" {
            images.push(json!({ "type": "image", "originalContentUrl": url, "previewImageUrl": url }));
        } else {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&match &attachment.name {
                Some(name) => format!("{name}: {url}"),
                None => url.to_owned(),
            });
        }
    }
    let mut messages = Vec::with_capacity(images.len() + 1);
    if !text.trim().is_empty() {
        messages.push(json!({ "type": "text", "text": text }));
    }
    messages.extend(images);
    if messages.is_empty() {
        return Err(DeliveryError::Permanent("nothing to send: no text and no attachment".into()));
    }
    if messages.len() > MAX_MESSAGES_PER_REQUEST {
        return Err(DeliveryError::Permanent(format!(
            "LINE accepts at most {MAX_MESSAGES_PER_REQUEST} messages per send, got {}",
            messages.len()
        )));
    }
    Ok(messages)
}

/// Turns a reply or push answer into a receipt or a classified error.
async fn finish(response: reqwest::Response) -> Result<SendReceipt, DeliveryError> {
    let status = response.status().as_u16();
    let retry_after = retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    // 409 answers a push whose X-Line-Retry-Key LINE already accepted: an earlier attempt of
    // this same delivery went through (we lost its answer), so the message was delivered once.
    if (200..300).contains(&status) || status == 409 {
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let id = body.pointer("/sentMessages/0/id").and_then(Value::as_str).map(str::to_owned);
        return Ok(SendReceipt { platform_message_id: id });
    }
    Err(classify(status, retry_after, &text))
}

/// Classifies a failed LINE API answer.
fn classify(status: u16, retry_after: Option<u64>, body: &str) -> DeliveryError {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| str_at(&v, "message").map(str::to_owned))
        .unwrap_or_else(|| snippet(body));
    let detail = format!("LINE HTTP {status}: {message}");
    match status {
        // The monthly free-message quota is also a 429, but waiting seconds will not refill it.
        429 if message.contains("monthly limit") => DeliveryError::Permanent(detail),
        429 => DeliveryError::Throttled {
            retry_after_ms: retry_after.map(|s| s.saturating_mul(1000)).unwrap_or(DEFAULT_THROTTLE.as_millis() as u64),
            detail,
        },
        408 | 500..=599 => DeliveryError::Transient(detail),
        _ => DeliveryError::Permanent(detail),
    }
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

fn request_error(e: reqwest::Error) -> DeliveryError {
    if e.is_builder() {
        DeliveryError::Permanent(format!("invalid LINE request: {e}"))
    } else {
        DeliveryError::Transient(format!("LINE request failed: {e}"))
    }
}

fn access_token(config: &ChannelConfig) -> Result<&str, DeliveryError> {
    config
        .secret("channel_access_token")
        .ok_or_else(|| DeliveryError::Permanent("secrets.channel_access_token is missing".into()))
}

fn base_url(config: &ChannelConfig, key: &str, default: &str) -> String {
    config.setting(key).unwrap_or(default).trim_end_matches('/').to_owned()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn snippet(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_key_is_a_stable_uuid_per_delivery() {
        let a = retry_key("delivery-1");
        assert_eq!(a, retry_key("delivery-1"));
        assert_ne!(a, retry_key("delivery-2"));
        let parsed = uuid::Uuid::parse_str(&a).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 5);
    }

    #[test]
    fn errors_are_classified() {
        assert!(matches!(classify(500, None, "{}"), DeliveryError::Transient(_)));
        assert!(matches!(
            classify(429, Some(7), r#"{"message":"Too many requests"}"#),
            DeliveryError::Throttled { retry_after_ms: 7_000, .. }
        ));
        assert!(matches!(
            classify(429, None, r#"{"message":"You have reached your monthly limit."}"#),
            DeliveryError::Permanent(_)
        ));
        assert!(
            matches!(classify(400, None, r#"{"message":"Invalid reply token"}"#), DeliveryError::Permanent(m) if m.contains("Invalid reply token"))
        );
    }
}
