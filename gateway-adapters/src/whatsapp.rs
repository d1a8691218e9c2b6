//! WhatsApp Business Platform, Cloud API: webhook notifications in, Graph `messages` calls out.
//!
//! Owns the WhatsApp wire shapes only; the handshake, signature check and Graph error mapping
//! are shared with Messenger in [`crate::meta`]. Inbound notifications arrive as
//! `entry[].changes[]` with `field == "messages"`; each `value` carries customer `messages[]`
//! (with `contacts[]` naming the sender) and/or `statuses[]` for messages we sent.
//!
//! Keys read:
//! - `secrets.app_secret`, `secrets.verify_token`, `secrets.access_token` (see [`crate::meta`]);
//! - `settings.phone_number_id` (required to send): the business number's Graph id. Webhook
//!   changes whose `metadata.phone_number_id` is another number are skipped (and logged);
//! - `settings.api_base_url` (default `https://graph.facebook.com`), `settings.api_version`
//!   (default `v21.0`).
//!
//! Media references: an inbound attachment's `url` is the WhatsApp media id; `download`
//! resolves it through `GET /{media_id}` and fetches the short-lived URL with the bearer token.
//!
//! Replies are free-form messages, which WhatsApp accepts only within 24 hours of the customer's
//! last message; outside that window `send` fails permanently ("template required") without
//! calling Graph. Template messages are not sent by this adapter.

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use switchboard_core::domain::{Attachment, ChannelKind, DeliveryStatus};

use crate::meta;
use crate::{
    ChannelAdapter, ChannelConfig, ContentKind, DeliveryError, InboundEvent, NormalizedMessage, OutboundMessage,
    SendReceipt, WebhookError, WebhookOutcome, WebhookRequest,
};

/// The customer-service window: free-form replies are allowed this long after the customer's
/// last message.
pub const SERVICE_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

pub const TEMPLATE_REQUIRED: &str = "template required: the customer last wrote more than 24 hours ago";

/// Graph's "Re-engagement message" error: more than 24 hours since the customer's last message.
const RE_ENGAGEMENT_CODE: i64 = 131047;

#[derive(Debug, Clone, Copy, Default)]
pub struct WhatsappAdapter;

#[async_trait]
impl ChannelAdapter for WhatsappAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Whatsapp
    }

    fn handle_webhook(
        &self,
        config: &ChannelConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<WebhookOutcome, WebhookError> {
        meta::handle_webhook(config, request, |body| parse_notification(config, body))
    }

    #[tracing::instrument(skip_all, fields(delivery_id = %message.delivery_id))]
    async fn send(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, DeliveryError> {
        if let Some(last) = message.last_inbound_at_ms {
            if message.now_ms - last > SERVICE_WINDOW_MS {
                return Err(DeliveryError::Permanent(TEMPLATE_REQUIRED.into()));
            }
        }
        let phone_number_id = config.setting("phone_number_id").ok_or_else(|| {
            DeliveryError::Permanent("inbox not configured: settings.phone_number_id is missing".into())
        })?;
        let token = meta::access_token(config)?;
        let url = format!("{}/{}/messages", meta::graph_root(config), phone_number_id);

        // Files of our media store go up first (`POST /{phone-number-id}/media`) and are then sent
        // by their WhatsApp media id; other attachments go by link.
        let mut media_ids = Vec::with_capacity(message.attachments.len());
        for (index, attachment) in message.attachments.iter().enumerate() {
            media_ids.push(match message.file(index) {
                Some(file) => Some(upload_media(http, config, phone_number_id, token, attachment, file).await?),
                None => None,
            });
        }
        let bodies = outbound_bodies(message, &media_ids)?;
        let mut last_id = None;
        for body in bodies {
            let result = meta::send_graph(http.post(&url).bearer_auth(token).json(&body)).await?;
            match result {
                Ok(answer) => {
                    last_id = answer.pointer("/messages/0/id").and_then(Value::as_str).map(str::to_owned);
                }
                Err(e)
                    if e.code == Some(RE_ENGAGEMENT_CODE)
                        || e.message.to_ascii_lowercase().contains("re-engagement") =>
                {
                    return Err(DeliveryError::Permanent(format!("{TEMPLATE_REQUIRED} ({})", e.message)));
                }
                Err(e) => return Err(e.classify()),
            }
        }
        Ok(SendReceipt { platform_message_id: last_id })
    }

    async fn download(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        media_ref: &str,
    ) -> Result<(Vec<u8>, Option<String>), DeliveryError> {
        // Media ids are digits; refusing anything else keeps the id from steering the path.
        if media_ref.is_empty() || !media_ref.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(DeliveryError::Permanent(format!("not a WhatsApp media id: {media_ref:?}")));
        }
        let token = meta::access_token(config)?;
        let url = format!("{}/{}", meta::graph_root(config), media_ref);
        let info = match meta::send_graph(http.get(&url).bearer_auth(token)).await? {
            Ok(info) => info,
            Err(e) => return Err(e.classify()),
        };
        let media_url = info
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| DeliveryError::Permanent(format!("media {media_ref} has no url in Graph's answer")))?;
        let declared = info.get("mime_type").and_then(Value::as_str).map(str::to_owned);
        let (bytes, content_type) = meta::fetch_bytes(http, media_url, Some(token)).await?;
        Ok((bytes, declared.or(content_type)))
    }
}

/// Turns one verified notification into events.
fn parse_notification(config: &ChannelConfig, body: &Value) -> Result<Vec<InboundEvent>, WebhookError> {
    match body.get("object").and_then(Value::as_str) {
        Some("whatsapp_business_account") => {}
        other => {
            return Err(WebhookError::Malformed(format!("object is {other:?}, expected whatsapp_business_account")))
        }
    }
    let entries = body
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| WebhookError::Malformed("entry is not an array".into()))?;
    let our_number = config.setting("phone_number_id");
    let mut events = Vec::new();
    for entry in entries {
        for change in entry.get("changes").and_then(Value::as_array).into_iter().flatten() {
            // Template, quality and account updates arrive under other fields.
            if change.get("field").and_then(Value::as_str) != Some("messages") {
                continue;
            }
            let Some(value) = change.get("value") else { continue };
            let number = value.pointer("/metadata/phone_number_id").and_then(Value::as_str);
            if let (Some(ours), Some(theirs)) = (our_number, number) {
                if ours != theirs {
                    tracing::warn!(phone_number_id = theirs, "skipping a WhatsApp change for another business number");
                    continue;
                }
            }
            let contacts = value.get("contacts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            for message in value.get("messages").and_then(Value::as_array).into_iter().flatten() {
                events.push(InboundEvent::Message(parse_message(message, contacts)?));
            }
            for status in value.get("statuses").and_then(Value::as_array).into_iter().flatten() {
                if let Some(event) = parse_status(status) {
                    events.push(event);
                }
            }
        }
    }
    Ok(events)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn parse_message(message: &Value, contacts: &[Value]) -> Result<NormalizedMessage, WebhookError> {
    let id = str_at(message, "id").ok_or_else(|| WebhookError::Malformed("message without id".into()))?;
    let from = str_at(message, "from").ok_or_else(|| WebhookError::Malformed("message without from".into()))?;
    let contact_name = contacts
        .iter()
        .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(from))
        .or_else(|| contacts.first())
        .and_then(|c| c.pointer("/profile/name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let kind_name = str_at(message, "type").unwrap_or("unknown");
    let part = message.get(kind_name).unwrap_or(&Value::Null);

    let media = |kind: &str| Attachment {
        kind: kind.to_owned(),
        url: str_at(part, "id").map(str::to_owned),
        name: str_at(part, "filename").map(str::to_owned),
        mime: str_at(part, "mime_type").map(str::to_owned),
        size: None,
    };
    let caption = str_at(part, "caption").map(str::to_owned);

    let (kind, text, attachments) = match kind_name {
        "text" => (ContentKind::Text, str_at(part, "body").map(str::to_owned), Vec::new()),
        "image" => (ContentKind::Image, caption, vec![media("image")]),
        "document" => (ContentKind::File, caption, vec![media("file")]),
        "audio" => (ContentKind::Audio, None, vec![media("audio")]),
        "video" => (ContentKind::Video, caption, vec![media("video")]),
        "sticker" => (ContentKind::Sticker, None, vec![media("sticker")]),
        "location" => crate::channel::location_content(
            part.get("latitude").and_then(Value::as_f64),
            part.get("longitude").and_then(Value::as_f64),
            str_at(part, "name"),
            str_at(part, "address"),
        ),
        // A template's quick-reply button and interactive replies carry the words the customer
        // tapped; keep them readable, but the kind says it was not typed.
        "button" => (ContentKind::Unsupported, str_at(part, "text").map(str::to_owned), Vec::new()),
        "interactive" => {
            let title = ["button_reply", "list_reply"]
                .iter()
                .find_map(|k| part.get(*k))
                .and_then(|r| str_at(r, "title"))
                .map(str::to_owned);
            (ContentKind::Unsupported, title, Vec::new())
        }
        // reaction, contacts, order, system, unknown, and whatever WhatsApp adds next.
        _ => (ContentKind::Unsupported, None, Vec::new()),
    };
    Ok(NormalizedMessage {
        platform_message_id: id.to_owned(),
        contact_external_id: from.to_owned(),
        contact_name,
        kind,
        text,
        attachments,
        raw: message.clone(),
        reply_context: None,
    })
}

fn parse_status(status: &Value) -> Option<InboundEvent> {
    let id = str_at(status, "id")?;
    let status = match str_at(status, "status")? {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        // "deleted", "warning" and future states carry nothing the outbox tracks.
        _ => return None,
    };
    Some(InboundEvent::Status { platform_message_id: id.to_owned(), status })
}

/// The Graph request bodies for one reply, in sending order. A single image, video or document
/// takes the text as its caption (one message, nothing to half-deliver); otherwise the text goes
/// first and each attachment follows as its own message.
fn outbound_bodies(message: &OutboundMessage, media_ids: &[Option<String>]) -> Result<Vec<Value>, DeliveryError> {
    let text = message.text.as_deref().filter(|t| !t.trim().is_empty());
    let envelope = |kind: &str, part: Value| {
        let mut body = Map::new();
        body.insert("messaging_product".into(), json!("whatsapp"));
        body.insert("recipient_type".into(), json!("individual"));
        body.insert("to".into(), json!(message.to));
        body.insert("type".into(), json!(kind));
        body.insert(kind.into(), part);
        Value::Object(body)
    };
    let captionable =
        message.attachments.len() == 1 && matches!(media_type(&message.attachments[0]), "image" | "video" | "document");
    let mut bodies = Vec::new();
    if let (Some(t), false) = (text, captionable) {
        bodies.push(envelope("text", json!({ "body": t })));
    }
    for (index, attachment) in message.attachments.iter().enumerate() {
        let kind = media_type(attachment);
        let mut part = Map::new();
        match media_ids.get(index).and_then(Option::as_deref) {
            Some(id) => part.insert("id".into(), json!(id)),
            None => {
                let link = attachment
                    .url
                    .as_deref()
                    .ok_or_else(|| DeliveryError::Permanent("attachment has no URL to send".into()))?;
                part.insert("link".into(), json!(link))
            }
        };
        if captionable {
            if let Some(t) = text {
                part.insert("caption".into(), json!(t));
            }
        }
        if kind == "document" {
            if let Some(name) = attachment.name.as_deref() {
                part.insert("filename".into(), json!(name));
            }
        }
        bodies.push(envelope(kind, Value::Object(part)));
    }
    if bodies.is_empty() {
        return Err(DeliveryError::Permanent("nothing to send: no text and no attachments".into()));
    }
    Ok(bodies)
}

/// Uploads one file to the phone number's media (multipart: `messaging_product`, `type`,
/// `file`) and answers WhatsApp's media id.
async fn upload_media(
    http: &reqwest::Client,
    config: &ChannelConfig,
    phone_number_id: &str,
    token: &str,
    attachment: &Attachment,
    file: &crate::OutboundFile,
) -> Result<String, DeliveryError> {
    let url = format!("{}/{}/media", meta::graph_root(config), phone_number_id);
    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .text("type", file.mime.clone())
        .part("file", file.part()?);
    match meta::send_graph(http.post(&url).bearer_auth(token).multipart(form)).await? {
        Ok(answer) => answer.get("id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
            DeliveryError::Transient(format!("WhatsApp media upload of a {} answered no id", attachment.kind))
        }),
        Err(e) => Err(e.classify()),
    }
}

/// WhatsApp's media message type for an attachment; anything not image/video/audio/sticker goes
/// as a document.
fn media_type(attachment: &Attachment) -> &'static str {
    let mime = attachment.mime.as_deref().unwrap_or("");
    match attachment.kind.as_str() {
        "image" => "image",
        "video" => "video",
        "audio" => "audio",
        "sticker" => "sticker",
        _ if mime.starts_with("image/") => "image",
        _ if mime.starts_with("video/") => "video",
        _ if mime.starts_with("audio/") => "audio",
        _ => "document",
    }
}
