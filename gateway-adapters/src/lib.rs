//! Channel adapters: for each messaging channel, how to verify what it sends us, turn it into
//! Switchboard's message model, and deliver our replies back. Adapters know their platform's
//! wire shapes and nothing else: no database, no routing, no sockets.
#![forbid(unsafe_code)]

pub mod api_channel;
pub mod channel;
pub mod line;
pub mod messenger;
pub mod meta;
pub mod signature;
pub mod telegram;
pub mod wechat;
pub mod whatsapp;

pub use channel::*;

/// Why an outbound delivery failed, classified the way the outbox needs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later (timeouts, 5xx, 429, connection refused).
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying will not help (4xx other than 408/429, a bad URL): dead-letter it now.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The platform asked us to slow down and said for how long (Telegram `retry_after`,
    /// `Retry-After` headers): retry no sooner than that.
    #[error("throttled for {retry_after_ms} ms: {detail}")]
    Throttled { retry_after_ms: u64, detail: String },
}

/// Classifies an HTTP status of a failed delivery.
pub fn classify_status(status: u16, detail: String) -> DeliveryError {
    match status {
        408 | 425 | 429 => DeliveryError::Transient(detail),
        500..=599 => DeliveryError::Transient(detail),
        _ => DeliveryError::Permanent(detail),
    }
}

/// The adapter for a channel kind, if Switchboard speaks that platform. `web` and `api` are
/// served by the server itself (Socket.IO widget, REST + signed webhooks), not by an adapter.
pub fn adapter_for(kind: switchboard_core::domain::ChannelKind) -> Option<std::sync::Arc<dyn ChannelAdapter>> {
    use switchboard_core::domain::ChannelKind;
    match kind {
        ChannelKind::Web | ChannelKind::Api => None,
        ChannelKind::Telegram => Some(std::sync::Arc::new(telegram::TelegramAdapter)),
        ChannelKind::Whatsapp => Some(std::sync::Arc::new(whatsapp::WhatsappAdapter)),
        ChannelKind::Messenger => Some(std::sync::Arc::new(messenger::MessengerAdapter::messenger())),
        ChannelKind::Instagram => Some(std::sync::Arc::new(messenger::MessengerAdapter::instagram())),
        ChannelKind::Line => Some(std::sync::Arc::new(line::LineAdapter)),
        ChannelKind::Wechat => Some(std::sync::Arc::new(wechat::WechatAdapter)),
    }
}
