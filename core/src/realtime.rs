//! The payloads clients send over Socket.IO, as the server decodes them: `/agent` events (agents
//! and supervisors) and `/widget` events (customers on any website, so hostile input). Only the
//! wire shapes live here, so they can be fuzzed without the server (`fuzz/`); what each event
//! does is the server's (`server/src/realtime`).

use serde::Deserialize;
use serde_json::Value;

use crate::domain::Attachment;
use crate::ids::{ConversationId, InboxId, MessageId};

/// `/agent` connect auth: `{token}` (a login session).
#[derive(Debug, Deserialize)]
pub struct AgentAuth {
    pub token: String,
}

/// `/agent` `reply`.
#[derive(Debug, Deserialize)]
pub struct ReplyBody {
    pub conversation_id: ConversationId,
    #[serde(default)]
    pub text: String,
    pub client_message_id: Option<String>,
    /// Files uploaded with `POST /api/v1/uploads`.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// `/agent` `typing`.
#[derive(Debug, Deserialize)]
pub struct TypingBody {
    pub conversation_id: ConversationId,
}

/// `/agent` `offer:accept` / `offer:reject`.
#[derive(Debug, Deserialize)]
pub struct OfferBody {
    pub conversation_id: ConversationId,
}

/// `/agent` `resolve`.
#[derive(Debug, Deserialize)]
pub struct ResolveBody {
    pub conversation_id: ConversationId,
    pub reason: Option<String>,
    /// The team's wrap-up form values (see the server's `api::wrapup`).
    pub wrap_up: Option<Value>,
}

/// `/agent` `sync` and `watch`.
#[derive(Debug, Deserialize)]
pub struct SyncBody {
    pub conversation_id: ConversationId,
    pub after: Option<MessageId>,
    pub limit: Option<i64>,
}

/// `/widget` connect auth.
#[derive(Debug, Deserialize)]
pub struct WidgetAuth {
    pub inbox_id: InboxId,
    pub widget_key: String,
    pub session: Option<String>,
    pub name: Option<String>,
}

/// `/widget` `message`.
#[derive(Debug, Deserialize)]
pub struct CustomerMessage {
    pub client_message_id: String,
    #[serde(default)]
    pub text: String,
    /// Files uploaded with `POST /api/v1/widget/uploads`.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// `/widget` `sync`.
#[derive(Debug, Deserialize)]
pub struct WidgetSync {
    pub after: Option<MessageId>,
    pub limit: Option<i64>,
}

/// Decodes one event's payload into its type, as the server's handler would, and reports only
/// whether it decoded (`Err` with serde's message otherwise). For fuzzing and tests; `namespace`
/// is `agent` or `widget`. Unknown events decode to nothing.
pub fn decode(namespace: &str, event: &str, payload: Value) -> Result<(), String> {
    fn take<T: serde::de::DeserializeOwned>(v: Value) -> Result<(), String> {
        serde_json::from_value::<T>(v).map(|_| ()).map_err(|e| e.to_string())
    }
    match (namespace, event) {
        ("agent", "connect") => take::<AgentAuth>(payload),
        ("agent", "reply") => take::<ReplyBody>(payload),
        ("agent", "typing") => take::<TypingBody>(payload),
        ("agent", "offer:accept" | "offer:reject") => take::<OfferBody>(payload),
        ("agent", "resolve") => take::<ResolveBody>(payload),
        ("agent", "sync" | "watch") => take::<SyncBody>(payload),
        ("agent", "status") => Ok(()),
        ("widget", "connect") => take::<WidgetAuth>(payload),
        ("widget", "message") => take::<CustomerMessage>(payload),
        ("widget", "sync") => take::<WidgetSync>(payload),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_decode_and_bad_ones_are_errors() {
        assert!(decode("agent", "reply", serde_json::json!({"conversation_id": 3, "text": "hi"})).is_ok());
        assert!(decode("agent", "reply", serde_json::json!({"conversation_id": "x"})).is_err());
        assert!(decode("widget", "message", serde_json::json!({"client_message_id": "c1"})).is_ok());
        assert!(decode("widget", "message", serde_json::json!([1, 2])).is_err());
        assert!(decode("widget", "connect", serde_json::json!({"inbox_id": 1})).is_err(), "widget_key is required");
    }
}
