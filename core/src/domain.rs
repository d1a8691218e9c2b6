//! The domain model: plain data types shared by storage, server and adapters, and the rules for
//! which conversation state changes are legal. Nothing here touches IO.

use crate::ids::*;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Declares a string-backed enum with `as_str`/`parse` so the same spelling is used in SQL
/// columns, JSON and Socket.IO payloads.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name { $(#[serde(rename = $text)] $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            /// Parses the stored / wire spelling; `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What a user may do. Admins configure the tenant, supervisors watch and steer queues,
    /// agents handle conversations.
    Role { Admin => "admin", Supervisor => "supervisor", Agent => "agent" }
);

impl Role {
    /// Supervisors and admins may see every conversation of their tenant.
    pub fn sees_all_conversations(self) -> bool {
        matches!(self, Role::Admin | Role::Supervisor)
    }
}

string_enum!(
    /// The kind of channel an inbox speaks. `web` (our widget) and `api` (a business system
    /// posting messages) need no third-party platform.
    ChannelKind {
        Web => "web", Api => "api", Telegram => "telegram", Whatsapp => "whatsapp",
        Messenger => "messenger", Instagram => "instagram", Line => "line", Wechat => "wechat",
    }
);

string_enum!(
    /// An agent's availability as chosen by the agent (or forced by a supervisor).
    AgentStatus { Available => "available", Away => "away", Offline => "offline" }
);

string_enum!(
    /// The unified conversation record's state (seed 001's init / conn / close, refined).
    ConversationState {
        Bot => "bot", Queued => "queued", Offered => "offered", Assigned => "assigned",
        WaitingOnCustomer => "waiting_on_customer", Resolved => "resolved",
        Closed => "closed", Abandoned => "abandoned",
    }
);

impl ConversationState {
    /// Open conversations occupy the (inbox, contact) slot; a new message from the same contact
    /// lands in the open one instead of starting another.
    pub fn is_open(self) -> bool {
        !matches!(self, ConversationState::Resolved | ConversationState::Closed | ConversationState::Abandoned)
    }

    /// States in which the conversation holds one unit of its assignee's capacity. An offer
    /// holds its slot from the moment it is made, so an agent can never be offered more than
    /// they have room for.
    pub fn holds_agent_slot(self) -> bool {
        matches!(self, ConversationState::Offered | ConversationState::Assigned | ConversationState::WaitingOnCustomer)
    }

    /// The legal transitions. Anything else is refused with `InvalidState`.
    pub fn can_become(self, next: ConversationState) -> bool {
        use ConversationState::*;
        matches!(
            (self, next),
            (Bot, Queued | Resolved | Closed | Abandoned)
                | (Queued, Offered | Assigned | Resolved | Closed | Abandoned)
                | (Offered, Queued | Assigned | Closed | Abandoned)
                | (Assigned, Queued | WaitingOnCustomer | Resolved | Closed | Abandoned)
                | (WaitingOnCustomer, Assigned | Queued | Resolved | Closed | Abandoned)
        )
    }
}

string_enum!(
    /// Why a conversation ended (seed 001's `close_type`, in words instead of digits).
    CloseReason {
        Resolved => "resolved", NoResponse => "no_response", CustomerLeft => "customer_left",
        Spam => "spam", Duplicate => "duplicate", Transferred => "transferred",
        SystemTimeout => "system_timeout", Other => "other",
    }
);

string_enum!(MessageDirection { Inbound => "inbound", Outbound => "outbound" });

string_enum!(
    /// Who wrote a message.
    SenderKind { Contact => "contact", Agent => "agent", Bot => "bot", System => "system" }
);

string_enum!(
    /// Where an outbound message is on its way to the customer.
    DeliveryStatus {
        Pending => "pending", Sent => "sent", Delivered => "delivered", Read => "read", Failed => "failed",
    }
);

string_enum!(
    /// An outbox entry is pending until delivered, or dead after the retry budget is spent.
    OutboxStatus { Pending => "pending", Delivered => "delivered", Dead => "dead" }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// URL-safe unique name used at login to pick the tenant.
    pub slug: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Never serialized to clients.
    #[serde(skip_serializing, default)]
    pub password_hash: String,
    pub status: AgentStatus,
    /// How many conversations this agent may hold at once.
    pub capacity: i64,
    /// How many conversations this agent holds now. Maintained atomically with assignment.
    pub active_load: i64,
    pub last_assigned_at: Option<Millis>,
    /// Skill name → proficiency 1 (basic) to 5 (expert); conversations may require skills.
    pub skills: std::collections::BTreeMap<String, u8>,
    /// After resolving a conversation of a queue with `wrap_up_ms`, no new work until then.
    pub wrap_up_until: Option<Millis>,
    /// Caps per channel kind on top of `capacity`, e.g. `{"whatsapp": 2}`; kinds not named are
    /// limited by `capacity` alone.
    pub channel_capacity: std::collections::BTreeMap<String, i64>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub tenant_id: TenantId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub capacity: i64,
}

/// Fields an admin may change on a user; `None` leaves the field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub capacity: Option<i64>,
    pub password_hash: Option<String>,
    /// Replaces the agent's skills.
    pub skills: Option<std::collections::BTreeMap<String, u8>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub expires_at: Millis,
}

/// A long-lived token a business system uses against the REST API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Team {
    pub id: TeamId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The team queue's routing policy (`routing::QueuePolicy` as JSON); `None` = defaults.
    #[schema(value_type = Option<Object>)]
    pub routing_policy: Option<Value>,
    pub created_at: Millis,
}

/// `Debug` is written by hand (below) so secrets never reach a log line through `{:?}`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct Inbox {
    pub id: InboxId,
    pub tenant_id: TenantId,
    pub name: String,
    pub kind: ChannelKind,
    /// Channel settings visible to admins (e.g. the API channel's `webhook_url`).
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Channel secrets (platform tokens, signing secrets). Never serialized to clients.
    #[serde(skip_serializing, default)]
    pub secrets: Value,
    /// When set, agents see customer identifiers masked (seed 001's privacy rule).
    pub mask_identifiers: bool,
    /// The team whose queue new conversations of this inbox join.
    pub team_id: Option<TeamId>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Clone)]
pub struct NewInbox {
    pub tenant_id: TenantId,
    pub name: String,
    pub kind: ChannelKind,
    pub settings: Value,
    pub secrets: Value,
    pub mask_identifiers: bool,
    pub team_id: Option<TeamId>,
    /// SHA-256 (hex) of the inbox's ingestion token, for channels that authenticate by token.
    pub token_hash: Option<String>,
}

#[derive(Clone, Default)]
pub struct InboxPatch {
    pub name: Option<String>,
    pub settings: Option<Value>,
    pub secrets: Option<Value>,
    pub mask_identifiers: Option<bool>,
    pub team_id: Option<Option<TeamId>>,
    pub token_hash: Option<String>,
}

/// The key names of a secrets object, never its values.
fn redacted_secrets(secrets: &Value) -> String {
    match secrets {
        Value::Object(map) => format!("[REDACTED: {}]", map.keys().map(String::as_str).collect::<Vec<_>>().join(", ")),
        Value::Null => "none".into(),
        _ => "[REDACTED]".into(),
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("settings", &self.settings)
            .field("secrets", &format_args!("{}", redacted_secrets(&self.secrets)))
            .field("mask_identifiers", &self.mask_identifiers)
            .field("team_id", &self.team_id)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl std::fmt::Debug for NewInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInbox")
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("settings", &self.settings)
            .field("secrets", &format_args!("{}", redacted_secrets(&self.secrets)))
            .field("mask_identifiers", &self.mask_identifiers)
            .field("team_id", &self.team_id)
            .field("token_hash", &self.token_hash.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl std::fmt::Debug for InboxPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxPatch")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("secrets", &self.secrets.as_ref().map(redacted_secrets))
            .field("mask_identifiers", &self.mask_identifiers)
            .field("team_id", &self.team_id)
            .field("token_hash", &self.token_hash.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub id: ContactId,
    pub tenant_id: TenantId,
    pub name: Option<String>,
    /// Attributes kept across the contact's conversations (collected with `scope: "contact"`,
    /// or set by the decision hook's `contact_attributes`).
    #[schema(value_type = Object)]
    pub attributes: Value,
    pub created_at: Millis,
}

/// A contact as known on one inbox: the platform's id for them (a phone number, a chat id, a
/// widget session id).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactIdentity {
    pub contact_id: ContactId,
    pub inbox_id: InboxId,
    pub external_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    pub id: ConversationId,
    pub tenant_id: TenantId,
    pub inbox_id: InboxId,
    pub contact_id: ContactId,
    pub state: ConversationState,
    /// 1 (lowest) to 5 (highest).
    pub priority: i64,
    pub team_id: Option<TeamId>,
    pub assignee_id: Option<UserId>,
    pub created_at: Millis,
    pub queued_at: Option<Millis>,
    pub assigned_at: Option<Millis>,
    pub first_agent_reply_at: Option<Millis>,
    pub closed_at: Option<Millis>,
    pub close_reason: Option<CloseReason>,
    /// Free JSON a business application attaches (seed 001's `biz_data`).
    #[schema(value_type = Object)]
    pub biz_data: Value,
    /// Attributes the auto-responder collected or the decision hook set (name → JSON value).
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// Labels set by the auto-responder's routing (or later by agents).
    pub tags: Vec<String>,
    /// Skills an agent needs for this conversation: `[{"skill": "billing", "min_proficiency": 2}]`.
    #[schema(value_type = Vec<Object>)]
    pub required_skills: Value,
    /// The agent the auto-responder or decision hook asked for, if any.
    pub preferred_agent_id: Option<UserId>,
    /// While `offered`: when the offer lapses (the agent in `assignee_id` must accept by then).
    pub offer_expires_at: Option<Millis>,
    /// Agents who rejected this conversation or let its offer lapse; offered to others first.
    pub declined_by: Vec<UserId>,
    /// When it entered its current queue (the overflow clock); `queued_at` is its place.
    pub queue_entered_at: Option<Millis>,
    pub updated_at: Millis,
}

/// An attachment reference. The media store (a later issue) fills `url`; until then messages
/// carry whatever the channel sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub kind: String,
    pub url: Option<String>,
    pub name: Option<String>,
    pub mime: Option<String>,
    pub size: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub inbox_id: InboxId,
    pub direction: MessageDirection,
    pub sender_kind: SenderKind,
    /// The agent who wrote an outbound message.
    pub sender_user_id: Option<UserId>,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
    /// The platform's id: the dedupe key for inbound messages.
    pub platform_message_id: Option<String>,
    /// The sending client's own id for an outbound message, so a resend after a reconnect is
    /// stored once.
    pub client_message_id: Option<String>,
    pub status: DeliveryStatus,
    pub created_at: Millis,
    /// An internal note: shown to agents and supervisors, never delivered to the customer (no
    /// outbox entry, not emitted to the widget, left out of the widget's resync).
    #[serde(default)]
    pub private: bool,
    /// The inbox that actually delivered this outbound message when it was not its own: a
    /// fallback inbox used while the own inbox's circuit was open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_via_inbox_id: Option<InboxId>,
}

/// A customer message as a channel hands it to ingestion.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub tenant_id: TenantId,
    pub inbox_id: InboxId,
    /// The platform's id for the customer (phone, chat id, widget session id).
    pub contact_external_id: String,
    pub contact_name: Option<String>,
    /// The dedupe key: the same id on the same inbox is stored once.
    pub platform_message_id: String,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
    pub now: Millis,
}

/// What ingestion did with an inbound message.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    pub conversation: Conversation,
    pub message: Message,
    /// False when the platform message id was already stored (a redelivery).
    pub message_created: bool,
    /// True when this message opened a new conversation (which then needs routing).
    pub conversation_created: bool,
}

/// An agent's (or bot's) reply as handed to storage.
#[derive(Debug, Clone)]
pub struct NewReply {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub sender_kind: SenderKind,
    pub sender_user_id: Option<UserId>,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
    pub client_message_id: Option<String>,
    /// When set, an outbox entry with this payload is committed in the same transaction.
    pub outbox: Option<NewOutbox>,
    pub now: Millis,
}

#[derive(Debug, Clone)]
pub struct NewOutbox {
    /// Which delivery mechanism handles it, e.g. `api_webhook`.
    pub kind: String,
    pub payload: Value,
}

#[derive(Debug, Clone)]
pub struct ReplyOutcome {
    pub message: Message,
    pub outbox: Option<OutboxEntry>,
    /// False when `client_message_id` was already stored (a resend).
    pub created: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboxEntry {
    pub id: OutboxId,
    pub tenant_id: TenantId,
    pub inbox_id: InboxId,
    pub message_id: Option<MessageId>,
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One step in a conversation's life, kept for reports and audits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationEvent {
    pub conversation_id: ConversationId,
    /// `created`, `queued`, `assigned`, `resolved`, ...
    pub kind: String,
    pub actor_user_id: Option<UserId>,
    pub detail: Option<String>,
    pub created_at: Millis,
}

/// Filters for listing conversations.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub state: Option<ConversationState>,
    pub assignee_id: Option<UserId>,
    pub inbox_id: Option<InboxId>,
    /// Only open conversations (any state for which `is_open()`).
    pub open_only: bool,
    pub limit: i64,
    /// Return conversations with id < before (newest first paging).
    pub before: Option<ConversationId>,
}

/// Masks a customer identifier for agents when the inbox asks for it: keep the last four
/// characters, hide the rest (seed 001: the agent does not see the customer's number).
pub fn mask_identifier(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let visible: String = chars[chars.len() - 4..].iter().collect();
    format!("{}{}", "*".repeat(chars.len() - 4), visible)
}

// ---- audit log ----------------------------------------------------------------------------

/// One admin or supervisor action, as the audit log shows it. `detail` never holds a secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub tenant_id: TenantId,
    /// The user who acted (`None`: an API key or the server itself).
    pub actor_user_id: Option<UserId>,
    /// The API key that acted, by id.
    pub actor_api_token_id: Option<i64>,
    /// The actor as people read it: the user's email, `api-key:<name>`, or `system`.
    pub actor_label: String,
    /// What was done, `area.verb` (e.g. `inbox.update`, `user.status.force`).
    pub action: String,
    /// What kind of row it was done to (`user`, `inbox`, `team`, ...).
    pub target_type: String,
    pub target_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub created_at: Millis,
}

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub tenant_id: TenantId,
    pub actor_user_id: Option<UserId>,
    pub actor_api_token_id: Option<i64>,
    pub actor_label: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub detail: Value,
}

/// Which audit entries to list: all filters are optional and combine with AND; entries come
/// newest first, with ids below `before` (the previous page's last id).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_user_id: Option<UserId>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub before: Option<i64>,
    pub limit: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn enums_round_trip_their_spelling() {
        for s in ConversationState::ALL {
            assert_eq!(ConversationState::parse(s.as_str()), Some(*s));
        }
        for k in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn inbox_debug_never_shows_secret_values() {
        let secrets = serde_json::json!({"bot_token": "123:TOPSECRET", "app_secret": "s3cr3t-xyz"});
        let inbox = Inbox {
            id: InboxId(1),
            tenant_id: TenantId(1),
            name: "T".into(),
            kind: ChannelKind::Telegram,
            settings: serde_json::json!({"base": "x"}),
            secrets: secrets.clone(),
            mask_identifiers: false,
            team_id: None,
            created_at: 0,
            updated_at: 0,
        };
        let new = NewInbox {
            tenant_id: TenantId(1),
            name: "T".into(),
            kind: ChannelKind::Telegram,
            settings: serde_json::json!({}),
            secrets: secrets.clone(),
            mask_identifiers: false,
            team_id: None,
            token_hash: Some("hash-value-abc".into()),
        };
        let patch = InboxPatch { secrets: Some(secrets), token_hash: Some("hash-value-abc".into()), ..Default::default() };
        for shown in [format!("{inbox:?}"), format!("{new:?}"), format!("{patch:?}"), format!("{inbox:#?}")] {
            assert!(shown.contains("bot_token"), "key names stay visible: {shown}");
            for secret in ["TOPSECRET", "s3cr3t-xyz", "hash-value-abc"] {
                assert!(!shown.contains(secret), "{secret} leaked: {shown}");
            }
        }
    }

    #[test]
    fn closed_states_are_terminal() {
        for from in [ConversationState::Resolved, ConversationState::Closed, ConversationState::Abandoned] {
            for to in ConversationState::ALL {
                assert!(!from.can_become(*to), "{from} -> {to} must be illegal");
            }
        }
        assert!(ConversationState::Queued.can_become(ConversationState::Assigned));
        assert!(!ConversationState::Queued.can_become(ConversationState::WaitingOnCustomer));
    }

    #[test]
    fn masking_keeps_last_four() {
        assert_eq!(mask_identifier("+8613800138000"), "**********8000");
        assert_eq!(mask_identifier("abc"), "***");
    }

    proptest! {
        #[test]
        fn masking_never_reveals_more_than_four(s in "\\PC{0,40}") {
            let m = mask_identifier(&s);
            prop_assert_eq!(m.chars().count(), s.chars().count());
            let hidden = m.chars().filter(|c| *c == '*').count();
            prop_assert!(hidden + 4 >= s.chars().count());
        }
    }
}

/// A canned response: a reply an agent inserts by typing `/shortcut` in the reply box. The
/// shortcut is unique within the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CannedResponse {
    pub id: i64,
    pub tenant_id: TenantId,
    /// Lowercase letters, digits, `-` and `_`, 1–64 characters (typed after `/`).
    pub shortcut: String,
    pub title: String,
    /// The text inserted; `{{contact.name}}` is filled in by the console.
    pub body: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What creating or replacing a canned response stores (validated by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCannedResponse {
    pub shortcut: String,
    pub title: String,
    pub body: String,
}
