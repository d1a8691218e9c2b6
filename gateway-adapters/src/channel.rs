//! The one trait every messaging platform implements, and the normalized shapes that cross it.
//!
//! An adapter is stateless and pure where it can be: `handle_webhook` verifies and parses one
//! request without IO (so it can be fuzzed and tested on recorded payloads), while `send`,
//! `poll` and `download` talk to the platform over HTTP with a base URL taken from the inbox's
//! settings (so tests point them at a local fake of the platform). Adapters never touch the
//! database, the queue or sockets: the server turns `InboundEvent`s into committed messages and
//! only then acknowledges the platform.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::domain::{Attachment, ChannelKind, DeliveryStatus};

use crate::DeliveryError;

/// An inbox's channel configuration: `settings` are visible to admins (ids, base URLs),
/// `secrets` are not (tokens, app secrets, AES keys).
/// `Debug` shows the secrets' key names only.
#[derive(Clone, Default)]
pub struct ChannelConfig {
    pub settings: Value,
    pub secrets: Value,
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.secrets.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        f.debug_struct("ChannelConfig")
            .field("settings", &self.settings)
            .field("secrets", &format_args!("[REDACTED: {}]", names.join(", ")))
            .finish()
    }
}

impl ChannelConfig {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    pub fn secret(&self, key: &str) -> Option<&str> {
        self.secrets.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}

/// One HTTP request as the platform sent it: the raw body bytes (signatures are computed over
/// them, never over re-serialized JSON), the raw query string, and the headers.
pub struct WebhookRequest<'a> {
    pub method: &'a str,
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

impl WebhookRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

/// What the server answers the platform once the events (if any) are committed.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl WebhookAnswer {
    pub fn ok_empty() -> Self {
        WebhookAnswer { status: 200, content_type: "text/plain", body: Vec::new() }
    }

    pub fn text(body: impl Into<String>) -> Self {
        WebhookAnswer { status: 200, content_type: "text/plain", body: body.into().into_bytes() }
    }
}

/// The result of a verified webhook request.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookOutcome {
    /// Messages and receipts to commit before answering.
    pub events: Vec<InboundEvent>,
    /// The answer to send after the commit (a verification handshake answers at once).
    pub answer: WebhookAnswer,
}

/// Why a webhook request was refused. Nothing is stored for any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Missing or wrong signature / secret token / verify token: 401.
    #[error("signature verification failed: {0}")]
    Unauthorized(String),
    /// The body is not what the platform sends: 400.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The inbox lacks configuration the adapter needs (e.g. no app secret): 409-ish, logged.
    #[error("inbox not configured: {0}")]
    NotConfigured(String),
}

/// What kind of content a customer sent, normalized across platforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    Text,
    Image,
    File,
    Audio,
    Video,
    Location,
    Sticker,
    /// A kind we do not model yet; the raw payload is kept, never dropped.
    Unsupported,
}

/// A customer message, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizedMessage {
    /// The platform's id for the message: the dedupe key.
    pub platform_message_id: String,
    /// The platform's id for the customer (chat id, phone number, PSID, user id, OpenID).
    pub contact_external_id: String,
    pub contact_name: Option<String>,
    pub kind: ContentKind,
    pub text: Option<String>,
    /// Media references; `url` holds the platform's media id or URL until the media store
    /// fetches it.
    pub attachments: Vec<Attachment>,
    /// The platform's own payload for this message (for unsupported kinds and audits).
    pub raw: Value,
    /// Platform-specific reply context (e.g. LINE's reply token), with its expiry in ms.
    pub reply_context: Option<ReplyContext>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyContext {
    pub token: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InboundEvent {
    Message(NormalizedMessage),
    /// A delivery receipt for a message we sent.
    Status { platform_message_id: String, status: DeliveryStatus },
}

/// A reply to send to a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    /// The customer's id on the platform.
    pub to: String,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
    /// Our stable id for this delivery; adapters pass it as the platform's idempotency key
    /// where one exists (LINE's `X-Line-Retry-Key`).
    pub delivery_id: String,
    /// Reply context captured from the customer's last message, if any.
    pub reply_context: Option<ReplyContext>,
    /// When the customer last wrote (ms), for platforms with a reply window (WhatsApp 24 h).
    pub last_inbound_at_ms: Option<i64>,
    pub now_ms: i64,
    /// For each attachment (same index), its bytes when it is a file of our media store, for
    /// platforms that take uploads (Telegram, WhatsApp, Messenger, WeChat). Such an
    /// attachment's `url` is then a signed link the platform can fetch when the server has a
    /// public URL (absolute), or relative when it has none (then only uploads can carry it).
    /// Empty, or shorter than `attachments`, means "no bytes" for the rest.
    pub files: Vec<Option<OutboundFile>>,
}

impl OutboundMessage {
    /// The stored bytes of attachment `index`, if the server supplied them.
    pub fn file(&self, index: usize) -> Option<&OutboundFile> {
        self.files.get(index).and_then(Option::as_ref)
    }

    /// Attachment `index`'s URL if a platform can fetch it (absolute http or https).
    pub fn public_url(&self, index: usize) -> Option<&str> {
        self.attachments
            .get(index)
            .and_then(|a| a.url.as_deref())
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    }
}

/// One file of our media store, as an upload to a platform needs it.
#[derive(Clone, PartialEq)]
pub struct OutboundFile {
    pub bytes: Vec<u8>,
    /// Sniffed from the content when it was stored.
    pub mime: String,
    pub name: String,
}

impl std::fmt::Debug for OutboundFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundFile").field("mime", &self.mime).field("name", &self.name).field("len", &self.bytes.len()).finish()
    }
}

impl OutboundFile {
    /// A multipart file part carrying these bytes.
    pub fn part(&self) -> Result<reqwest::multipart::Part, crate::DeliveryError> {
        reqwest::multipart::Part::bytes(self.bytes.clone())
            .file_name(self.name.clone())
            .mime_str(&self.mime)
            .map_err(|e| crate::DeliveryError::Permanent(format!("bad media type {:?}: {e}", self.mime)))
    }
}

/// What the platform said about a sent message.
#[derive(Debug, Clone, PartialEq)]
pub struct SendReceipt {
    pub platform_message_id: Option<String>,
}

/// A page of polled events and the cursor to continue from (persisted by the server after the
/// events are committed, so a restart neither skips nor repeats).
#[derive(Debug, Clone, PartialEq)]
pub struct PollPage {
    pub events: Vec<InboundEvent>,
    pub next_cursor: Option<String>,
}

#[async_trait]
pub trait ChannelAdapter: Send + Sync + 'static {
    fn kind(&self) -> ChannelKind;

    /// Verifies and parses one webhook request (including verification handshakes).
    fn handle_webhook(&self, config: &ChannelConfig, request: &WebhookRequest<'_>) -> Result<WebhookOutcome, WebhookError>;

    /// The request's timestamp (Unix seconds, as sent) when the platform sends one *covered by
    /// its signature*, so the server can refuse replays of an old, validly signed request. `None`
    /// for platforms that sign no timestamp (Telegram, WhatsApp, Messenger, LINE): for those,
    /// redeliveries are deduplicated by message id instead.
    fn signed_timestamp(&self, _request: &WebhookRequest<'_>) -> Option<String> {
        None
    }

    /// Sends one reply.
    async fn send(&self, http: &reqwest::Client, config: &ChannelConfig, message: &OutboundMessage) -> Result<SendReceipt, DeliveryError>;

    /// Fetches the next page of events for platforms that are polled. The default says the
    /// platform is push-only.
    async fn poll(&self, _http: &reqwest::Client, _config: &ChannelConfig, _cursor: Option<&str>) -> Result<PollPage, DeliveryError> {
        Err(DeliveryError::Permanent(format!("{} does not support polling", self.kind())))
    }

    /// Downloads a media reference from an inbound message: (bytes, content type).
    async fn download(&self, http: &reqwest::Client, config: &ChannelConfig, media_ref: &str) -> Result<(Vec<u8>, Option<String>), DeliveryError>;
}

/// A shared location, normalized the same way on every platform: a `location` attachment whose
/// `url` is an RFC 5870 `geo:` URI and whose `name` is the place's name, and as text the name
/// and address (one per line) when the platform gives them. `None` coordinates (a malformed
/// location) make it `Unsupported`, kept with the raw payload.
pub fn location_content(
    latitude: Option<f64>,
    longitude: Option<f64>,
    name: Option<&str>,
    address: Option<&str>,
) -> (ContentKind, Option<String>, Vec<Attachment>) {
    let (Some(lat), Some(lon)) = (latitude, longitude) else {
        return (ContentKind::Unsupported, None, Vec::new());
    };
    let attachment = Attachment {
        kind: "location".into(),
        url: Some(geo_uri(lat, lon)),
        name: name.map(str::to_owned),
        mime: None,
        size: None,
    };
    let label: Vec<&str> = [name, address].into_iter().flatten().collect();
    let text = (!label.is_empty()).then(|| label.join("\n"));
    (ContentKind::Location, text, vec![attachment])
}

/// A `geo:` URI (RFC 5870) for a shared location.
pub fn geo_uri(latitude: f64, longitude: f64) -> String {
    format!("geo:{latitude},{longitude}")
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn channel_config_debug_hides_secret_values() {
        let c = ChannelConfig { settings: serde_json::json!({"app_id": "wx1"}), secrets: serde_json::json!({"app_secret": "s3cr3t-xyz"}) };
        let shown = format!("{c:?}");
        assert!(shown.contains("app_secret") && shown.contains("wx1") && !shown.contains("s3cr3t-xyz"), "{shown}");
    }
}
