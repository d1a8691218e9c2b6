//! Telegram through the Bot API: verify and parse the `Update`s Telegram pushes to our webhook
//! (or that we pull with `getUpdates`), send replies with `sendMessage` / `sendPhoto` /
//! `sendDocument` / `sendSticker`, and download media with `getFile`.
//!
//! Owns Telegram's wire shapes and nothing else: no database, no routing. Must not log or
//! return the bot token, which Telegram puts in every URL path (`/bot<token>/<method>`), so
//! transport errors are stripped of their URL before they leave this module.
//!
//! # Configuration
//! - `secrets.bot_token` (required to send, poll and download): the token @BotFather gives.
//! - `secrets.webhook_secret_token` (required in webhook mode): the `secret_token` passed to
//!   `setWebhook`; Telegram echoes it in `X-Telegram-Bot-Api-Secret-Token` on every delivery,
//!   and we compare it in constant time. Without it every webhook request is refused
//!   (`NotConfigured`), so an inbox is never open to forged updates.
//! - `settings.mode`: `"webhook"` (default) or `"polling"`. Telegram refuses `getUpdates` while
//!   a webhook is set, so the two are exclusive; `poll()` refuses to run in webhook mode.
//! - `settings.api_base_url` (default `https://api.telegram.org`): Bot API methods.
//! - `settings.file_base_url` (default: `api_base_url`): file downloads, `{base}/file/bot<token>/<path>`.
//! - `settings.poll_timeout_secs` (default 25, number or numeric string): the long-poll timeout
//!   given to `getUpdates`.
//!
//! # Identifiers
//! Telegram's `message_id` is only unique inside one chat (every private chat and group counts
//! from 1), so the dedupe key is `"{chat.id}:{message_id}"`. The contact is the chat
//! (`chat.id`): in a private chat it equals the user's id; in a group the whole group is one
//! contact and `contact_name` names the member who wrote.
//!
//! An `edited_message` becomes a new message whose id is
//! `"{chat.id}:{message_id}:edit:{edit_date}"`: the original stays as it was, the agent sees the
//! corrected text, and a redelivered edit (same `edit_date`) is still stored once. Two edits of
//! one message within the same second collapse into the first. Edits that only move a live
//! location (Telegram sends one every few seconds) are ignored.
//!
//! # Polling contract
//! `poll(cursor)` calls `getUpdates` with `offset = cursor` and returns `next_cursor` = last
//! `update_id` + 1 (or the cursor it was given when nothing arrived). Telegram forgets updates
//! below an offset only when a later `getUpdates` presents it, so the server must commit the
//! page's events first and persist `next_cursor` after: a crash before the commit replays the
//! page, a crash between commit and persist replays it too and the `platform_message_id` dedupe
//! drops the repeats. Nothing is skipped, nothing is stored twice.
//!
//! # Ignored updates
//! `channel_post` / `edited_channel_post` (our bot is a support desk, not a channel reader) and
//! update types that are not messages (callback queries, inline queries, member changes...)
//! produce no event and are acknowledged. Messages of kinds we do not model (contact, poll,
//! dice, service messages...) are kept as `ContentKind::Unsupported` with the raw payload.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::domain::{Attachment, ChannelKind};

use crate::channel::{
    ChannelAdapter, ChannelConfig, ContentKind, InboundEvent, NormalizedMessage, OutboundMessage, PollPage,
    SendReceipt, WebhookError, WebhookOutcome, WebhookRequest,
};
use crate::signature::constant_time_eq;
use crate::{classify_status, DeliveryError, WebhookAnswer};

pub const SECRET_TOKEN_HEADER: &str = "x-telegram-bot-api-secret-token";
pub const DEFAULT_API_BASE_URL: &str = "https://api.telegram.org";
pub const DEFAULT_POLL_TIMEOUT_SECS: u64 = 25;
/// `sendMessage` accepts at most 4096 characters (UTF-16 code units) of text.
pub const MAX_TEXT_UNITS: usize = 4096;
/// Media captions accept at most 1024 characters.
pub const MAX_CAPTION_UNITS: usize = 1024;
/// The update types we ask `getUpdates` for.
const ALLOWED_UPDATES: &str = r#"["message","edited_message"]"#;
/// How long a Bot API call (other than the long poll) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The Telegram Bot API adapter. Stateless: everything comes from the inbox's `ChannelConfig`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TelegramAdapter;

/// How an inbox receives updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelegramMode {
    Webhook,
    Polling,
}

impl TelegramMode {
    /// Reads `settings.mode`; absent means webhook.
    pub fn from_config(config: &ChannelConfig) -> Result<Self, String> {
        match config.setting("mode") {
            None | Some("webhook") => Ok(TelegramMode::Webhook),
            Some("polling") => Ok(TelegramMode::Polling),
            Some(other) => Err(format!("settings.mode must be \"webhook\" or \"polling\", not {other:?}")),
        }
    }
}

#[async_trait]
impl ChannelAdapter for TelegramAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    fn handle_webhook(
        &self,
        config: &ChannelConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<WebhookOutcome, WebhookError> {
        let expected = config
            .secret("webhook_secret_token")
            .ok_or_else(|| WebhookError::NotConfigured("secrets.webhook_secret_token is not set".into()))?;
        let presented = request
            .header(SECRET_TOKEN_HEADER)
            .ok_or_else(|| WebhookError::Unauthorized("missing X-Telegram-Bot-Api-Secret-Token".into()))?;
        if !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            return Err(WebhookError::Unauthorized("wrong X-Telegram-Bot-Api-Secret-Token".into()));
        }
        if !request.method.eq_ignore_ascii_case("POST") {
            return Err(WebhookError::Malformed(format!("Telegram only POSTs updates, got {}", request.method)));
        }
        let update: Value = serde_json::from_slice(request.body)
            .map_err(|e| WebhookError::Malformed(format!("update is not JSON: {e}")))?;
        let events = update_events(&update).map_err(WebhookError::Malformed)?;
        Ok(WebhookOutcome { events, answer: WebhookAnswer::ok_empty() })
    }

    #[tracing::instrument(skip_all, fields(channel = "telegram"))]
    async fn send(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, DeliveryError> {
        let api = Api::from_config(config)?;
        let calls = plan_send(message)?;
        let mut first_id = None;
        // Telegram has no idempotency key: the calls go one by one, and a retry after a partial
        // failure repeats the parts that did go out. One text or one attachment (the usual
        // reply) is a single call and cannot be duplicated this way.
        for (method, body, attachment) in &calls {
            // A file of our media store goes up as multipart/form-data (the Bot API's upload);
            // anything else (a file_id, a public URL) rides in the JSON body.
            let request = match attachment.and_then(|i| message.file(i)) {
                Some(file) => http.post(api.method_url(method)).multipart(upload_form(method, body, file)?),
                None => http.post(api.method_url(method)).json(body),
            };
            let result = api.call(request, CALL_TIMEOUT).await?;
            if first_id.is_none() {
                first_id = receipt_id(&result);
            }
        }
        Ok(SendReceipt { platform_message_id: first_id })
    }

    #[tracing::instrument(skip_all, fields(channel = "telegram"))]
    async fn poll(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        cursor: Option<&str>,
    ) -> Result<PollPage, DeliveryError> {
        match TelegramMode::from_config(config).map_err(DeliveryError::Permanent)? {
            TelegramMode::Polling => {}
            TelegramMode::Webhook => {
                return Err(DeliveryError::Permanent(
                    "inbox is in webhook mode (settings.mode); Telegram does not serve getUpdates then".into(),
                ))
            }
        }
        let api = Api::from_config(config)?;
        let timeout = poll_timeout_secs(config)?;
        let offset = match cursor {
            Some(c) => Some(
                c.parse::<i64>().map_err(|_| DeliveryError::Permanent(format!("bad Telegram poll cursor {c:?}")))?,
            ),
            None => None,
        };
        let mut query: Vec<(&str, String)> =
            vec![("timeout", timeout.to_string()), ("allowed_updates", ALLOWED_UPDATES.to_string())];
        if let Some(offset) = offset {
            query.insert(0, ("offset", offset.to_string()));
        }
        // The HTTP timeout must outlast the long poll, or every quiet poll would fail.
        let request = http.get(api.method_url("getUpdates")).query(&query);
        let result = api.call(request, Duration::from_secs(timeout) + CALL_TIMEOUT).await?;
        let updates =
            result.as_array().ok_or_else(|| DeliveryError::Transient("getUpdates result is not an array".into()))?;

        let mut events = Vec::new();
        let mut last_id: Option<i64> = None;
        for update in updates {
            let Some(id) = update.get("update_id").and_then(Value::as_i64) else {
                // Without an id we cannot move past it; Telegram never sends one, so drop it loudly.
                tracing::warn!("getUpdates returned an update without update_id");
                continue;
            };
            last_id = Some(last_id.map_or(id, |l| l.max(id)));
            match update_events(update) {
                Ok(mut e) => events.append(&mut e),
                // Skipping (rather than failing the page) keeps one odd update from wedging the
                // inbox forever behind a cursor that can never advance.
                Err(e) => tracing::warn!(update_id = id, error = %e, "skipping an unreadable Telegram update"),
            }
        }
        let next_cursor = match last_id {
            Some(id) => Some(id.saturating_add(1).to_string()),
            None => cursor.map(str::to_owned),
        };
        Ok(PollPage { events, next_cursor })
    }

    #[tracing::instrument(skip_all, fields(channel = "telegram"))]
    async fn download(
        &self,
        http: &reqwest::Client,
        config: &ChannelConfig,
        media_ref: &str,
    ) -> Result<(Vec<u8>, Option<String>), DeliveryError> {
        let api = Api::from_config(config)?;
        let file = api.call(http.get(api.method_url("getFile")).query(&[("file_id", media_ref)]), CALL_TIMEOUT).await?;
        let Some(file_path) = file.get("file_path").and_then(Value::as_str).filter(|p| !p.is_empty()) else {
            // Telegram omits file_path for files over the Bot API's 20 MB download limit.
            return Err(DeliveryError::Permanent(format!(
                "Telegram gave no file_path for {media_ref} (over the 20 MB Bot API limit?)"
            )));
        };
        let url = format!("{}/file/bot{}/{}", api.file_base, api.token, file_path.trim_start_matches('/'));
        let response = http.get(url).timeout(Duration::from_secs(120)).send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(api_error(status, &body));
        }
        let header_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .filter(|t| !t.starts_with("application/octet-stream"));
        let bytes = response.bytes().await.map_err(transport_error)?;
        Ok((bytes.to_vec(), header_type.or_else(|| mime_from_path(file_path).map(str::to_owned))))
    }
}

/// Turns one `Update` into events: `message` and `edited_message` yield a message (unless it is a
/// live-location move), everything else yields none. Err only for shapes Telegram never sends.
pub fn update_events(update: &Value) -> Result<Vec<InboundEvent>, String> {
    if update.get("update_id").and_then(Value::as_i64).is_none() {
        return Err("an Update needs an integer update_id".into());
    }
    if let Some(message) = update.get("message") {
        return Ok(vec![InboundEvent::Message(parse_message(message, false)?)]);
    }
    if let Some(message) = update.get("edited_message") {
        if message.get("location").is_some() {
            return Ok(Vec::new());
        }
        return Ok(vec![InboundEvent::Message(parse_message(message, true)?)]);
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        let kinds: Vec<&String> =
            update.as_object().map(|o| o.keys().filter(|k| *k != "update_id").collect()).unwrap_or_default();
        tracing::debug!(?kinds, "ignoring a Telegram update that is not a customer message");
    }
    Ok(Vec::new())
}

/// Normalizes one Telegram `Message`.
pub fn parse_message(message: &Value, edited: bool) -> Result<NormalizedMessage, String> {
    if !message.is_object() {
        return Err("message is not an object".into());
    }
    let chat_id = message.pointer("/chat/id").and_then(Value::as_i64).ok_or("message.chat.id missing")?;
    let message_id = message.get("message_id").and_then(Value::as_i64).ok_or("message.message_id missing")?;
    let mut platform_message_id = format!("{chat_id}:{message_id}");
    if edited {
        let edit_date = message
            .get("edit_date")
            .and_then(Value::as_i64)
            .or_else(|| message.get("date").and_then(Value::as_i64))
            .unwrap_or(0);
        platform_message_id.push_str(&format!(":edit:{edit_date}"));
    }

    let caption = str_at(message, "caption");
    let (kind, text, attachments) = if let Some(text) = str_at(message, "text") {
        (ContentKind::Text, Some(text), Vec::new())
    } else if let Some(photo) = largest_photo(message.get("photo")) {
        (ContentKind::Image, caption, vec![attachment("image", photo, false)])
    } else if let Some(a) = message.get("animation").filter(|a| has_file_id(a)) {
        // Telegram also fills `document` for animations (GIFs are MP4s there): check it first.
        (ContentKind::Video, caption, vec![attachment("video", a, true)])
    } else if let Some(d) = message.get("document").filter(|d| has_file_id(d)) {
        (ContentKind::File, caption, vec![attachment("file", d, true)])
    } else if let Some(a) = message.get("audio").filter(|a| has_file_id(a)) {
        (ContentKind::Audio, caption, vec![attachment("audio", a, true)])
    } else if let Some(v) = message.get("voice").filter(|v| has_file_id(v)) {
        (ContentKind::Audio, caption, vec![attachment("audio", v, true)])
    } else if let Some(v) = message.get("video").filter(|v| has_file_id(v)) {
        (ContentKind::Video, caption, vec![attachment("video", v, true)])
    } else if let Some(v) = message.get("video_note").filter(|v| has_file_id(v)) {
        (ContentKind::Video, caption, vec![attachment("video", v, true)])
    } else if let Some(s) = message.get("sticker").filter(|s| has_file_id(s)) {
        let mut a = attachment("sticker", s, false);
        a.mime = Some(sticker_mime(s).to_string());
        (ContentKind::Sticker, None, vec![a])
    } else if let Some(text) = location_text(message) {
        (ContentKind::Location, Some(text), Vec::new())
    } else {
        (ContentKind::Unsupported, caption, Vec::new())
    };

    Ok(NormalizedMessage {
        platform_message_id,
        contact_external_id: chat_id.to_string(),
        contact_name: sender_name(message),
        kind,
        text,
        attachments,
        raw: message.clone(),
        reply_context: None,
    })
}

fn str_at(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn has_file_id(v: &Value) -> bool {
    v.get("file_id").and_then(Value::as_str).is_some_and(|id| !id.is_empty())
}

/// The biggest rendition of a photo (Telegram lists several sizes, usually smallest first).
fn largest_photo(photo: Option<&Value>) -> Option<&Value> {
    let area = |p: &Value| {
        let w = p.get("width").and_then(Value::as_i64).unwrap_or(0);
        let h = p.get("height").and_then(Value::as_i64).unwrap_or(0);
        (w.saturating_mul(h), p.get("file_size").and_then(Value::as_i64).unwrap_or(0))
    };
    photo?.as_array()?.iter().filter(|p| has_file_id(p)).max_by_key(|p| area(p))
}

/// An attachment referencing a Telegram file by `file_id` (what `download` takes).
fn attachment(kind: &str, file: &Value, with_name_and_mime: bool) -> Attachment {
    Attachment {
        kind: kind.to_string(),
        url: str_at(file, "file_id"),
        name: if with_name_and_mime { str_at(file, "file_name") } else { None },
        mime: if with_name_and_mime { str_at(file, "mime_type") } else { None },
        size: file.get("file_size").and_then(Value::as_i64),
    }
}

fn sticker_mime(sticker: &Value) -> &'static str {
    let flag = |k: &str| sticker.get(k).and_then(Value::as_bool).unwrap_or(false);
    if flag("is_animated") {
        "application/x-tgsticker"
    } else if flag("is_video") {
        "video/webm"
    } else {
        "image/webp"
    }
}

/// A location as text: an RFC 5870 `geo:` URI, after the venue's title and address if any.
fn location_text(message: &Value) -> Option<String> {
    let venue = message.get("venue");
    let location = venue.and_then(|v| v.get("location")).or_else(|| message.get("location"))?;
    let lat = location.get("latitude").and_then(Value::as_f64)?;
    let lon = location.get("longitude").and_then(Value::as_f64)?;
    let mut lines: Vec<String> = Vec::new();
    if let Some(v) = venue {
        lines.extend(["title", "address"].iter().filter_map(|k| str_at(v, k)).filter(|s| !s.is_empty()));
    }
    lines.push(format!("geo:{lat},{lon}"));
    Some(lines.join("\n"))
}

/// "First Last" of the sender, else their @username, else the chat's title (anonymous group
/// admins and channels write as a chat).
fn sender_name(message: &Value) -> Option<String> {
    fn non_empty<'v>(v: Option<&'v Value>, key: &str) -> Option<&'v str> {
        v.and_then(|v| v.get(key)).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    }
    let from = message.get("from");
    let full: Vec<&str> = [non_empty(from, "first_name"), non_empty(from, "last_name")].into_iter().flatten().collect();
    if !full.is_empty() {
        return Some(full.join(" "));
    }
    non_empty(from, "username")
        .or_else(|| non_empty(message.get("sender_chat"), "title"))
        .or_else(|| non_empty(message.get("chat"), "title"))
        .map(str::to_owned)
}

/// One Bot API call of a reply: (method, JSON body, the attachment it carries).
pub type PlannedCall = (&'static str, Value, Option<usize>);

/// The Bot API calls that deliver `message`, in order. Pure, so it is unit-tested.
///
/// Text alone goes out as `sendMessage` (split at 4096 UTF-16 units). With attachments, each
/// goes out on its own: `image` → `sendPhoto`, `sticker` → `sendSticker`, anything else →
/// `sendDocument` (which takes every file type, where `sendAudio`/`sendVideo` would refuse
/// formats Telegram cannot play). The text rides as the first attachment's caption when it fits
/// in 1024 units and that method takes captions; otherwise it is sent first as a message.
///
/// Each call names the attachment it carries (its index), so `send` can upload that
/// attachment's bytes instead when the server supplied them.
pub fn plan_send(message: &OutboundMessage) -> Result<Vec<PlannedCall>, DeliveryError> {
    let chat_id = chat_id_value(&message.to)?;
    let text = message.text.as_deref().filter(|t| !t.trim().is_empty());
    let mut calls = Vec::new();
    let Some(first) = message.attachments.first() else {
        let text =
            text.ok_or_else(|| DeliveryError::Permanent("nothing to send: no text and no attachments".into()))?;
        for chunk in split_utf16(text, MAX_TEXT_UNITS) {
            calls.push(("sendMessage", json!({ "chat_id": chat_id, "text": chunk }), None));
        }
        return Ok(calls);
    };
    let caption_fits =
        text.is_some_and(|t| t.encode_utf16().count() <= MAX_CAPTION_UNITS) && media_method(&first.kind).2;
    let mut caption = if caption_fits { text } else { None };
    if let (Some(text), false) = (text, caption_fits) {
        for chunk in split_utf16(text, MAX_TEXT_UNITS) {
            calls.push(("sendMessage", json!({ "chat_id": chat_id, "text": chunk }), None));
        }
    }
    for (index, a) in message.attachments.iter().enumerate() {
        let media = match a.url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => url,
            // Uploaded from our store: the body's media field is replaced by the file part.
            None if message.file(index).is_some() => "",
            None => return Err(DeliveryError::Permanent(format!("a {} attachment has no url or file_id", a.kind))),
        };
        let (method, field, _) = media_method(&a.kind);
        let mut body = json!({ "chat_id": chat_id, field: media });
        if let Some(c) = caption.take() {
            body["caption"] = Value::String(c.to_string());
        }
        calls.push((method, body, Some(index)));
    }
    Ok(calls)
}

/// The multipart form of a media call: every JSON field as a text part, the media field as the
/// file's bytes (Telegram's "upload a new file using multipart/form-data").
fn upload_form(method: &str, body: &Value, file: &crate::OutboundFile) -> Result<reqwest::multipart::Form, DeliveryError> {
    let field = match method {
        "sendPhoto" => "photo",
        "sendSticker" => "sticker",
        _ => "document",
    };
    let mut form = reqwest::multipart::Form::new();
    for (key, value) in body.as_object().into_iter().flatten() {
        if key == field {
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        form = form.text(key.clone(), text);
    }
    Ok(form.part(field, file.part()?))
}

/// (method, media field, takes a caption) for an attachment kind.
fn media_method(kind: &str) -> (&'static str, &'static str, bool) {
    match kind {
        "image" => ("sendPhoto", "photo", true),
        "sticker" => ("sendSticker", "sticker", false),
        _ => ("sendDocument", "document", true),
    }
}

/// Telegram takes chat ids as integers (and `@channelusername` strings).
fn chat_id_value(to: &str) -> Result<Value, DeliveryError> {
    let to = to.trim();
    if let Ok(id) = to.parse::<i64>() {
        Ok(json!(id))
    } else if to.starts_with('@') && to.len() > 1 {
        Ok(json!(to))
    } else {
        Err(DeliveryError::Permanent(format!("{to:?} is not a Telegram chat id")))
    }
}

/// Splits text into pieces of at most `max` UTF-16 code units, never inside a character.
fn split_utf16(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if units + c.len_utf16() > max {
            pieces.push(&text[start..i]);
            start = i;
            units = 0;
        }
        units += c.len_utf16();
    }
    pieces.push(&text[start..]);
    pieces
}

fn receipt_id(result: &Value) -> Option<String> {
    let chat_id = result.pointer("/chat/id").and_then(Value::as_i64)?;
    let message_id = result.get("message_id").and_then(Value::as_i64)?;
    Some(format!("{chat_id}:{message_id}"))
}

fn poll_timeout_secs(config: &ChannelConfig) -> Result<u64, DeliveryError> {
    match config.settings.get("poll_timeout_secs") {
        None | Some(Value::Null) => Some(DEFAULT_POLL_TIMEOUT_SECS),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| DeliveryError::Permanent("settings.poll_timeout_secs must be a whole number of seconds".into()))
}

/// Where and as whom to call the Bot API.
struct Api<'a> {
    base: &'a str,
    file_base: &'a str,
    token: &'a str,
}

impl<'a> Api<'a> {
    fn from_config(config: &'a ChannelConfig) -> Result<Self, DeliveryError> {
        let token = config
            .secret("bot_token")
            .ok_or_else(|| DeliveryError::Permanent("inbox not configured: secrets.bot_token is not set".into()))?;
        let base = config.setting("api_base_url").unwrap_or(DEFAULT_API_BASE_URL).trim_end_matches('/');
        let file_base = config.setting("file_base_url").map(|b| b.trim_end_matches('/')).unwrap_or(base);
        Ok(Api { base, file_base, token })
    }

    fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{}", self.base, self.token, method)
    }

    /// Sends one Bot API request and returns its `result`.
    async fn call(&self, request: reqwest::RequestBuilder, timeout: Duration) -> Result<Value, DeliveryError> {
        let response = request.timeout(timeout).send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport_error)?;
        let reply: Option<ApiReply> = serde_json::from_slice(&body).ok();
        match reply {
            Some(ApiReply { ok: true, result: Some(result), .. }) if (200..300).contains(&status) => Ok(result),
            _ if (200..300).contains(&status) && reply.is_none() => Err(DeliveryError::Transient(format!(
                "Telegram answered {status} with a body that is not a Bot API reply"
            ))),
            _ => Err(api_error(status, &body)),
        }
    }
}

/// The envelope of every Bot API answer.
#[derive(Debug, Deserialize)]
struct ApiReply {
    ok: bool,
    result: Option<Value>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

#[derive(Debug, Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// Classifies a failed Bot API answer: `retry_after` → Throttled, 5xx → Transient, other 4xx
/// (bot blocked, chat not found, bad token) → Permanent, each with Telegram's description.
fn api_error(status: u16, body: &[u8]) -> DeliveryError {
    let reply: Option<ApiReply> = serde_json::from_slice(body).ok();
    let code = reply.as_ref().and_then(|r| r.error_code).filter(|_| (200..300).contains(&status)).unwrap_or(status);
    let description = match reply.as_ref().and_then(|r| r.description.clone()) {
        Some(d) => d,
        None => String::from_utf8_lossy(body).chars().take(200).collect(),
    };
    let mut detail = format!("Telegram {code}: {description}");
    if let Some(params) = reply.as_ref().and_then(|r| r.parameters.as_ref()) {
        if let Some(seconds) = params.retry_after {
            return DeliveryError::Throttled { retry_after_ms: seconds.saturating_mul(1000), detail };
        }
        if let Some(new_id) = params.migrate_to_chat_id {
            detail.push_str(&format!(" (the group is now chat {new_id})"));
        }
    }
    classify_status(code, detail)
}

/// A transport failure, without the URL (it carries the bot token).
fn transport_error(e: reqwest::Error) -> DeliveryError {
    let permanent = e.is_builder();
    let e = e.without_url();
    if permanent {
        DeliveryError::Permanent(format!("invalid Telegram request: {e}"))
    } else {
        DeliveryError::Transient(format!("Telegram request failed: {e}"))
    }
}

/// Telegram's file server often answers `application/octet-stream`; guess from the extension.
fn mime_from_path(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "oga" | "ogg" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "pdf" => "application/pdf",
        "tgs" => "application/x-tgsticker",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(text: Option<&str>, attachments: Vec<Attachment>) -> OutboundMessage {
        OutboundMessage {
            to: "42".into(),
            text: text.map(str::to_owned),
            attachments,
            delivery_id: "d1".into(),
            reply_context: None,
            last_inbound_at_ms: None,
            now_ms: 0,
            files: Vec::new(),
        }
    }

    fn media(kind: &str, url: &str) -> Attachment {
        Attachment { kind: kind.into(), url: Some(url.into()), name: None, mime: None, size: None }
    }

    #[test]
    fn long_text_is_split_on_character_boundaries() {
        let text = "é".repeat(4000) + &"😀".repeat(100);
        let pieces = split_utf16(&text, MAX_TEXT_UNITS);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.encode_utf16().count() <= MAX_TEXT_UNITS));
        assert_eq!(pieces.len(), 2);
        assert_eq!(split_utf16("", 10), vec![""]);
    }

    #[test]
    fn caption_rides_on_the_first_attachment_when_it_fits() {
        let plan = plan_send(&outbound(Some("see"), vec![media("image", "https://x/a.png"), media("file", "BQAD")]))
            .expect("plan");
        assert_eq!(plan[0], ("sendPhoto", json!({"chat_id": 42, "photo": "https://x/a.png", "caption": "see"}), Some(0)));
        assert_eq!(plan[1], ("sendDocument", json!({"chat_id": 42, "document": "BQAD"}), Some(1)));

        let long = "x".repeat(MAX_CAPTION_UNITS + 1);
        let plan = plan_send(&outbound(Some(&long), vec![media("image", "AgAD")])).expect("plan");
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].0, "sendMessage");
        assert_eq!(plan[1], ("sendPhoto", json!({"chat_id": 42, "photo": "AgAD"}), Some(0)));

        let plan = plan_send(&outbound(Some("hi"), vec![media("sticker", "CAAD")])).expect("plan");
        assert_eq!(
            plan,
            vec![
                ("sendMessage", json!({"chat_id": 42, "text": "hi"}), None),
                ("sendSticker", json!({"chat_id": 42, "sticker": "CAAD"}), Some(0))
            ]
        );
    }

    #[test]
    fn unsendable_messages_are_permanent() {
        assert!(matches!(plan_send(&outbound(Some("  "), vec![])), Err(DeliveryError::Permanent(_))));
        let mut m = outbound(Some("hi"), vec![]);
        m.to = "not-a-chat".into();
        assert!(matches!(plan_send(&m), Err(DeliveryError::Permanent(_))));
        let no_url = Attachment { url: None, ..media("image", "") };
        assert!(matches!(plan_send(&outbound(None, vec![no_url])), Err(DeliveryError::Permanent(_))));
    }

    #[test]
    fn api_errors_are_classified() {
        let throttled = api_error(429, br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#);
        assert!(matches!(throttled, DeliveryError::Throttled { retry_after_ms: 7000, .. }));
        assert!(matches!(api_error(502, b"<html>Bad Gateway</html>"), DeliveryError::Transient(_)));
        let blocked =
            api_error(403, br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#);
        assert_eq!(blocked, DeliveryError::Permanent("Telegram 403: Forbidden: bot was blocked by the user".into()));
    }

    #[test]
    fn mode_defaults_to_webhook_and_rejects_typos() {
        let mut config = ChannelConfig::default();
        assert_eq!(TelegramMode::from_config(&config), Ok(TelegramMode::Webhook));
        config.settings = json!({"mode": "polling"});
        assert_eq!(TelegramMode::from_config(&config), Ok(TelegramMode::Polling));
        config.settings = json!({"mode": "pull"});
        assert!(TelegramMode::from_config(&config).is_err());
    }
}
