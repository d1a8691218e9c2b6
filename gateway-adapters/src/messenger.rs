//! Facebook Messenger and Instagram messaging through the Graph API: one adapter, parameterised
//! by [`ChannelKind::Messenger`] or [`ChannelKind::Instagram`], because both deliver the same
//! batched `entry[].messaging[]` webhooks and accept the same Send API.
//!
//! Owns the Messenger/Instagram wire shapes only; the handshake, signature check and Graph error
//! mapping are shared with WhatsApp in [`crate::meta`]. A Messenger inbox accepts only
//! `object == "page"` notifications and an Instagram inbox only `object == "instagram"`.
//!
//! Keys read:
//! - `secrets.app_secret`, `secrets.verify_token`, `secrets.access_token` (the Page access
//!   token; for Instagram the token of the Page linked to the account, or an Instagram user
//!   token with `settings.api_base_url = https://graph.instagram.com`);
//! - `settings.page_id`: the Page replies are sent from (`/{page_id}/messages`, for Messenger
//!   and for Instagram accounts linked to a Page); when unset, `/me/messages`, which Graph
//!   resolves to the token's owner (the Page, or the Instagram user with Instagram Login);
//! - `settings.instagram_account_id`: informational only;
//! - `settings.human_agent_tag` (bool, default false): past 24 hours since the customer's last
//!   message, send with the `HUMAN_AGENT` tag (allowed up to 7 days, needs Meta's Human Agent
//!   permission) instead of failing;
//! - `settings.api_base_url` (default `https://graph.facebook.com`), `settings.api_version`
//!   (default `v21.0`).
//!
//! Inbound: echoes of our own messages, deletions, reactions, referrals and Messenger's
//! watermark-only read receipts are skipped; deliveries (and Instagram reads, which name the
//! message) become status events; postbacks (button taps) become text messages with the
//! button's title. Attachment `url`s are the platform's CDN URLs; `download` is a plain GET.

use async_trait::async_trait;
use serde_json::{json, Value};
use switchboard_core::domain::{Attachment, ChannelKind, DeliveryStatus};

use crate::meta;
use crate::{
    ChannelAdapter, ChannelConfig, ContentKind, DeliveryError, InboundEvent, NormalizedMessage, OutboundMessage,
    SendReceipt, WebhookError, WebhookOutcome, WebhookRequest,
};

/// The standard messaging window after the customer's last message.
pub const STANDARD_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// How long the `HUMAN_AGENT` tag extends it.
pub const HUMAN_AGENT_WINDOW_MS: i64 = 7 * 24 * 60 * 60 * 1000;

pub const OUTSIDE_WINDOW: &str = "outside the messaging window: the customer last wrote more than 24 hours ago";

/// Graph's "outside of allowed window" subcode (code 10).
const OUTSIDE_WINDOW_SUBCODE: i64 = 2018278;

#[derive(Debug, Clone, Copy)]
pub struct MessengerAdapter {
    kind: ChannelKind,
}

impl MessengerAdapter {
    pub const fn messenger() -> Self {
        MessengerAdapter { kind: ChannelKind::Messenger }
    }

    pub const fn instagram() -> Self {
        MessengerAdapter { kind: ChannelKind::Instagram }
    }

    /// The adapter for `kind`, if it is Messenger or Instagram.
    pub fn new(kind: ChannelKind) -> Option<Self> {
        matches!(kind, ChannelKind::Messenger | ChannelKind::Instagram).then_some(MessengerAdapter { kind })
    }

    fn webhook_object(&self) -> &'static str {
        if self.kind == ChannelKind::Instagram {
            "instagram"
        } else {
            "page"
        }
    }

    /// The Graph node replies are sent from: the Page (Messenger, and Instagram through a
    /// linked Page), or `me`, which Graph resolves to the token's owner.
    fn sender_node(config: &ChannelConfig) -> &str {
        config.setting("page_id").unwrap_or("me")
    }
}

#[async_trait]
impl ChannelAdapter for MessengerAdapter {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    fn handle_webhook(
        &self,
        config: &ChannelConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<WebhookOutcome, WebhookError> {
        meta::handle_webhook(config, request, |body| self.parse_notification(body))
    }

    #[tracing::instrument(skip_all, fields(channel = %self.kind, delivery_id = %message.delivery_id))]
    async fn send(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, DeliveryError> {
        let human_agent = config.settings.get("human_agent_tag").and_then(Value::as_bool).unwrap_or(false);
        let since_last = message.last_inbound_at_ms.map(|last| message.now_ms - last);
        let tagged = match since_last {
            Some(age) if age > STANDARD_WINDOW_MS && human_agent && age <= HUMAN_AGENT_WINDOW_MS => true,
            Some(age) if age > STANDARD_WINDOW_MS => return Err(DeliveryError::Permanent(OUTSIDE_WINDOW.into())),
            _ => false,
        };
        let token = meta::access_token(config)?;
        let url = format!("{}/{}/messages", meta::graph_root(config), Self::sender_node(config));

        // An attachment the platform can fetch goes by URL; a file of our store without a public
        // link is uploaded first (`/{page}/message_attachments`, Messenger only) and sent by id.
        let mut uploaded = Vec::with_capacity(message.attachments.len());
        for (index, attachment) in message.attachments.iter().enumerate() {
            uploaded.push(match (message.public_url(index), message.file(index)) {
                (None, Some(_)) if self.kind == ChannelKind::Instagram => {
                    return Err(DeliveryError::Permanent(format!(
                        "Instagram takes a {} attachment only by a public URL: set the server's public_url",
                        attachment.kind
                    )));
                }
                (None, Some(file)) => Some(self.upload_attachment(http, config, token, attachment, file).await?),
                _ => None,
            });
        }
        let mut last_id = None;
        for content in outbound_contents(message, &uploaded)? {
            let mut body = json!({ "recipient": { "id": message.to }, "message": content });
            if tagged {
                body["messaging_type"] = json!("MESSAGE_TAG");
                body["tag"] = json!("HUMAN_AGENT");
            } else {
                body["messaging_type"] = json!("RESPONSE");
            }
            // Meta's Send API documents the Page token as the `access_token` parameter.
            let request = http.post(&url).query(&[("access_token", token)]).json(&body);
            match meta::send_graph(request).await? {
                Ok(answer) => last_id = answer.get("message_id").and_then(Value::as_str).map(str::to_owned),
                Err(e) if e.subcode == Some(OUTSIDE_WINDOW_SUBCODE) => {
                    return Err(DeliveryError::Permanent(format!("{OUTSIDE_WINDOW} ({})", e.message)));
                }
                Err(e) => return Err(e.classify()),
            }
        }
        Ok(SendReceipt { platform_message_id: last_id })
    }

    async fn download(
        &self,
        http: &reqwest::Client,
        _config: &ChannelConfig,
        media_ref: &str,
    ) -> Result<(Vec<u8>, Option<String>), DeliveryError> {
        // Messenger and Instagram hand out signed CDN URLs that need no token.
        meta::fetch_bytes(http, media_ref, None).await
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Graph ids are sometimes numbers in older payloads; accept both.
fn id_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl MessengerAdapter {
    fn parse_notification(&self, body: &Value) -> Result<Vec<InboundEvent>, WebhookError> {
        let object = body.get("object").and_then(Value::as_str);
        if object != Some(self.webhook_object()) {
            return Err(WebhookError::Malformed(format!(
                "object is {object:?}, a {} inbox expects {:?}",
                self.kind,
                self.webhook_object()
            )));
        }
        let entries = body
            .get("entry")
            .and_then(Value::as_array)
            .ok_or_else(|| WebhookError::Malformed("entry is not an array".into()))?;
        let mut events = Vec::new();
        for entry in entries {
            // Instagram comments and mentions arrive as `changes`; only `messaging` is chat.
            for event in entry.get("messaging").and_then(Value::as_array).into_iter().flatten() {
                self.parse_event(event, &mut events)?;
            }
        }
        Ok(events)
    }

    fn parse_event(&self, event: &Value, events: &mut Vec<InboundEvent>) -> Result<(), WebhookError> {
        if let Some(message) = event.get("message") {
            if message.get("is_echo").and_then(Value::as_bool).unwrap_or(false)
                || message.get("is_deleted").and_then(Value::as_bool).unwrap_or(false)
            {
                return Ok(());
            }
            let sender = id_at(event, "/sender/id")
                .ok_or_else(|| WebhookError::Malformed("message event without sender.id".into()))?;
            let mid = str_at(message, "mid").ok_or_else(|| WebhookError::Malformed("message without mid".into()))?;
            events.push(InboundEvent::Message(parse_message(mid, sender, message)));
        } else if let Some(postback) = event.get("postback") {
            // A tap on a button we sent: the title is what the customer chose. Without a mid
            // there is no dedupe key, so such (old-style) postbacks are skipped.
            let (Some(mid), Some(sender)) = (str_at(postback, "mid"), id_at(event, "/sender/id")) else {
                return Ok(());
            };
            events.push(InboundEvent::Message(NormalizedMessage {
                platform_message_id: mid.to_owned(),
                contact_external_id: sender,
                contact_name: None,
                kind: ContentKind::Text,
                text: str_at(postback, "title").or_else(|| str_at(postback, "payload")).map(str::to_owned),
                attachments: Vec::new(),
                raw: postback.clone(),
                reply_context: None,
            }));
        } else if let Some(delivery) = event.get("delivery") {
            for mid in delivery.get("mids").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                events.push(InboundEvent::Status {
                    platform_message_id: mid.to_owned(),
                    status: DeliveryStatus::Delivered,
                });
            }
        } else if let Some(mid) = event.get("read").and_then(|r| str_at(r, "mid")) {
            // Instagram's read receipt names the message; Messenger's only has a watermark.
            events.push(InboundEvent::Status { platform_message_id: mid.to_owned(), status: DeliveryStatus::Read });
        }
        Ok(())
    }
}

fn parse_message(mid: &str, sender: String, message: &Value) -> NormalizedMessage {
    let text = str_at(message, "text").map(str::to_owned);
    let mut attachments = Vec::new();
    let mut first_kind = None;
    for attachment in message.get("attachments").and_then(Value::as_array).into_iter().flatten() {
        if let Some((kind, normalized)) = parse_attachment(attachment) {
            first_kind.get_or_insert(kind);
            attachments.push(normalized);
        }
    }
    let has_attachments = message.get("attachments").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let kind = match (first_kind, &text) {
        (Some(kind), _) => kind,
        // Only unmodelled attachments (shares, story mentions, reels, templates): keep raw.
        (None, _) if has_attachments => ContentKind::Unsupported,
        (None, Some(_)) => ContentKind::Text,
        (None, None) if message.get("sticker_id").is_some() => ContentKind::Sticker,
        (None, None) => ContentKind::Unsupported,
    };
    NormalizedMessage {
        platform_message_id: mid.to_owned(),
        contact_external_id: sender,
        contact_name: None,
        kind,
        text,
        attachments,
        raw: message.clone(),
        reply_context: None,
    }
}

fn parse_attachment(attachment: &Value) -> Option<(ContentKind, Attachment)> {
    let payload = attachment.get("payload").unwrap_or(&Value::Null);
    let url = str_at(payload, "url").map(str::to_owned);
    let media = |kind: ContentKind, name: &str| {
        Some((kind, Attachment { kind: name.to_owned(), url: url.clone(), name: None, mime: None, size: None }))
    };
    match str_at(attachment, "type")? {
        "image" if payload.get("sticker_id").is_some() => media(ContentKind::Sticker, "sticker"),
        "image" => media(ContentKind::Image, "image"),
        "video" => media(ContentKind::Video, "video"),
        "audio" => media(ContentKind::Audio, "audio"),
        "file" => media(ContentKind::File, "file"),
        "location" => {
            let lat = payload.pointer("/coordinates/lat").and_then(Value::as_f64)?;
            let lon = payload.pointer("/coordinates/long").and_then(Value::as_f64)?;
            let name = str_at(attachment, "title").map(str::to_owned);
            Some((
                ContentKind::Location,
                Attachment {
                    kind: "location".into(),
                    url: Some(meta::geo_uri(lat, lon)),
                    name,
                    mime: None,
                    size: None,
                },
            ))
        }
        _ => None,
    }
}

/// The `message` objects for one reply, in sending order: the Send API takes text or one
/// attachment per message.
fn outbound_contents(message: &OutboundMessage, uploaded: &[Option<String>]) -> Result<Vec<Value>, DeliveryError> {
    let mut contents = Vec::new();
    if let Some(text) = message.text.as_deref().filter(|t| !t.trim().is_empty()) {
        contents.push(json!({ "text": text }));
    }
    for (index, attachment) in message.attachments.iter().enumerate() {
        let kind = attachment_type(attachment);
        if let Some(id) = uploaded.get(index).and_then(Option::as_deref) {
            contents.push(json!({ "attachment": { "type": kind, "payload": { "attachment_id": id } } }));
            continue;
        }
        let url = attachment
            .url
            .as_deref()
            .ok_or_else(|| DeliveryError::Permanent("attachment has no URL to send".into()))?;
        contents.push(json!({ "attachment": { "type": kind, "payload": { "url": url, "is_reusable": true } } }));
    }
    if contents.is_empty() {
        return Err(DeliveryError::Permanent("nothing to send: no text and no attachments".into()));
    }
    Ok(contents)
}

/// The Send API's attachment type for one of our attachments.
fn attachment_type(attachment: &Attachment) -> &'static str {
    let mime = attachment.mime.as_deref().unwrap_or("");
    match attachment.kind.as_str() {
        "image" | "sticker" => "image",
        "video" => "video",
        "audio" => "audio",
        _ if mime.starts_with("image/") => "image",
        _ if mime.starts_with("video/") => "video",
        _ if mime.starts_with("audio/") => "audio",
        _ => "file",
    }
}

impl MessengerAdapter {
    /// Uploads one file with the Attachment Upload API (multipart: `message` with the type and
    /// `is_reusable`, `filedata`) and answers its `attachment_id`.
    async fn upload_attachment(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        token: &str,
        attachment: &Attachment,
        file: &crate::OutboundFile,
    ) -> Result<String, DeliveryError> {
        let url = format!("{}/{}/message_attachments", meta::graph_root(config), Self::sender_node(config));
        let message = json!({ "attachment": { "type": attachment_type(attachment), "payload": { "is_reusable": true } } });
        let form = reqwest::multipart::Form::new().text("message", message.to_string()).part("filedata", file.part()?);
        match meta::send_graph(http.post(&url).query(&[("access_token", token)]).multipart(form)).await? {
            Ok(answer) => answer.get("attachment_id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
                DeliveryError::Transient("Messenger attachment upload answered no attachment_id".into())
            }),
            Err(e) => Err(e.classify()),
        }
    }
}
