//! What the server stores for the auto-responder, as handed to and from the [`Store`]: an
//! inbox's flow, a conversation's bot session, one bot turn to commit, and the decision hook's
//! call log.
//!
//! [`Store`]: crate::store::Store

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::{CloseReason, Conversation, Message, OutboxEntry};
use crate::ids::*;
use crate::time::Millis;

/// An inbox's saved flow (JSON as the admin wrote it; validated before it was saved).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxFlow {
    pub inbox_id: InboxId,
    #[schema(value_type = Object)]
    pub flow: Value,
    pub updated_at: Millis,
}

/// A conversation's bot session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BotSession {
    pub conversation_id: ConversationId,
    /// [`super::FlowState`] as JSON.
    pub state: Value,
    /// Compare-and-swap token: 0 before the first turn commits.
    pub version: i64,
    /// The newest inbound message the bot has taken (0: none).
    pub last_message_id: MessageId,
    /// While a decision hook call is pending: when any node may report it timed out.
    pub hook_deadline: Option<Millis>,
}

/// How a bot turn ends the bot's part, if it does.
#[derive(Debug, Clone, PartialEq)]
pub enum BotEnd {
    /// Queue for a human (the conversation goes `bot` → `queued`); the reason is recorded.
    Handoff { reason: String },
    /// Close the conversation.
    Close { reason: CloseReason, detail: String },
}

/// The routing a flow gathered, applied to the conversation in the turn's transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BotRouting {
    /// `Some(None)` is never produced: a route names a team or leaves it alone.
    pub team_id: Option<TeamId>,
    pub priority: Option<i64>,
    pub preferred_agent_id: Option<UserId>,
    /// Added to the conversation's tags (duplicates dropped).
    pub tags: Vec<String>,
    /// Added to the conversation's required skills (`{"skill", "min_proficiency"}` objects).
    pub skills: Vec<Value>,
}

/// Everything one bot turn changes, committed in one transaction — or not at all if another
/// turn committed since `expected_version` was read (then `Conflict`, and the caller re-reads
/// and runs again). The conversation must still be in the `bot` state (else `InvalidState`).
#[derive(Debug, Clone)]
pub struct BotTurn {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub expected_version: i64,
    pub state: Value,
    pub last_message_id: MessageId,
    pub hook_deadline: Option<Millis>,
    /// Bot messages to the customer, in order; each gets `outbox_kind`'s delivery if set.
    pub replies: Vec<String>,
    pub outbox_kind: Option<String>,
    /// Merged into the conversation's / contact's attributes.
    pub conversation_attributes: BTreeMap<String, Value>,
    pub contact_attributes: BTreeMap<String, Value>,
    pub routing: BotRouting,
    pub end: Option<BotEnd>,
    pub now: Millis,
}

/// What a committed turn produced.
#[derive(Debug, Clone)]
pub struct BotTurnOutcome {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    pub outbox: Vec<OutboxEntry>,
}

/// One decision hook call, for the log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HookCall {
    pub id: i64,
    pub inbox_id: InboxId,
    pub conversation_id: ConversationId,
    pub call_id: i64,
    pub step: String,
    /// `ok`, `timeout`, `http_status`, `transport`, `invalid_response`, `not_configured`.
    pub outcome: String,
    pub http_status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub created_at: Millis,
}

/// A call to record (the log's id and time are the store's).
#[derive(Debug, Clone)]
pub struct NewHookCall {
    pub tenant_id: TenantId,
    pub inbox_id: InboxId,
    pub conversation_id: ConversationId,
    pub call_id: i64,
    pub step: String,
    pub outcome: String,
    pub http_status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub now: Millis,
}
