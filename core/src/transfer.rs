//! Transfers and internal notes: the request and outcome types of `Store::transfer` and
//! `Store::append_note`. A transfer moves a conversation to another agent, another team's queue,
//! or back to its queue, with an optional internal note; a note is a private message that agents
//! and supervisors see and the customer never does.
//!
//! Types only: the rules run in storage (one transaction) and the server (who may).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Conversation, Message};
use crate::ids::{ConversationId, TeamId, TenantId, UserId};
use crate::time::Millis;

/// Where a transfer sends a conversation. On the wire: `{"agent": 12}`, `{"team": 3}` or
/// `{"queue": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    /// Straight to this agent, who must be `available` with a free slot.
    Agent(UserId),
    /// Into this team's queue.
    Team(TeamId),
    /// Back into the conversation's current queue (`true`; `false` is refused).
    Queue(bool),
}

/// A transfer as handed to storage.
#[derive(Debug, Clone)]
pub struct NewTransfer {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    /// Who transfers (`None` for an API key).
    pub actor: Option<UserId>,
    pub to: TransferTarget,
    /// An internal note stored with the transfer as a private message.
    pub note: Option<String>,
    pub now: Millis,
}

/// What a transfer did.
#[derive(Debug, Clone)]
pub struct TransferOutcome {
    /// The conversation after the transfer: `assigned` to the target agent, or `queued`.
    pub conversation: Conversation,
    /// Who held the conversation before (whose slot was released), if anyone.
    pub previous_assignee: Option<UserId>,
    /// The note, stored as a private message.
    pub note: Option<Message>,
}

/// An internal note as handed to storage.
#[derive(Debug, Clone)]
pub struct NewNote {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub author: Option<UserId>,
    pub text: String,
    pub now: Millis,
}
