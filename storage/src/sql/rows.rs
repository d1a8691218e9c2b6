//! Column lists and row-to-domain conversions, one pair per table. Every `SELECT` of a whole
//! domain object uses the `*_COLS` constant here so the decoder and the query cannot drift.

use crate::error::Result;
use crate::exec::{flag, int, json, json_or_default, opt_int, opt_parsed, opt_text, parsed, text};
use sqlx::any::AnyRow;
use switchboard_core::domain::*;
use switchboard_core::ids::*;

pub(crate) const TENANT_COLS: &str = "id, name, slug, created_at";

pub(crate) fn tenant(row: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId(int(row, "id")?),
        name: text(row, "name")?,
        slug: text(row, "slug")?,
        created_at: int(row, "created_at")?,
    })
}

pub(crate) const USER_COLS: &str = "id, tenant_id, email, name, role, password_hash, status, capacity, \
     active_load, last_assigned_at, skills, wrap_up_until, channel_capacity, created_at, updated_at";

pub(crate) fn user(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: UserId(int(row, "id")?),
        tenant_id: TenantId(int(row, "tenant_id")?),
        email: text(row, "email")?,
        name: text(row, "name")?,
        role: parsed(row, "role", Role::parse)?,
        password_hash: text(row, "password_hash")?,
        status: parsed(row, "status", AgentStatus::parse)?,
        capacity: int(row, "capacity")?,
        active_load: int(row, "active_load")?,
        last_assigned_at: opt_int(row, "last_assigned_at")?,
        skills: json_or_default(row, "skills")?,
        wrap_up_until: opt_int(row, "wrap_up_until")?,
        channel_capacity: json_or_default(row, "channel_capacity")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

pub(crate) const API_TOKEN_COLS: &str = "id, tenant_id, name, role, created_at";

pub(crate) fn api_token(row: &AnyRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: ApiTokenId(int(row, "id")?),
        tenant_id: TenantId(int(row, "tenant_id")?),
        name: text(row, "name")?,
        role: parsed(row, "role", Role::parse)?,
        created_at: int(row, "created_at")?,
    })
}

pub(crate) const TEAM_COLS: &str = "id, tenant_id, name, routing_policy, created_at";

pub(crate) fn team(row: &AnyRow) -> Result<Team> {
    Ok(Team {
        id: TeamId(int(row, "id")?),
        tenant_id: TenantId(int(row, "tenant_id")?),
        name: text(row, "name")?,
        routing_policy: opt_text(row, "routing_policy")?.map(|p| serde_json::from_str(&p)).transpose()?,
        created_at: int(row, "created_at")?,
    })
}

pub(crate) const INBOX_COLS: &str = "id, tenant_id, name, kind, settings, secrets, mask_identifiers, team_id, \
     token_hash, created_at, updated_at";

/// An inbox row; its secrets are opened with `keyring` (sealed rows) or read as plaintext JSON
/// (rows written before encryption).
pub(crate) fn inbox(row: &AnyRow, keyring: &crate::secrets::SecretsKeyring) -> Result<Inbox> {
    let tenant_id = TenantId(int(row, "tenant_id")?);
    let (secrets, _) = keyring.open(tenant_id, &text(row, "secrets")?)?;
    Ok(Inbox {
        id: InboxId(int(row, "id")?),
        tenant_id: TenantId(int(row, "tenant_id")?),
        name: text(row, "name")?,
        kind: parsed(row, "kind", ChannelKind::parse)?,
        settings: json(row, "settings")?,
        secrets: serde_json::from_str(&secrets)?,
        mask_identifiers: flag(row, "mask_identifiers")?,
        team_id: opt_int(row, "team_id")?.map(TeamId),
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

pub(crate) fn inbox_token_hash(row: &AnyRow) -> Result<Option<String>> {
    opt_text(row, "token_hash")
}

pub(crate) const CONTACT_COLS: &str = "id, tenant_id, name, attributes, created_at";

pub(crate) fn contact(row: &AnyRow) -> Result<Contact> {
    Ok(Contact {
        id: ContactId(int(row, "id")?),
        tenant_id: TenantId(int(row, "tenant_id")?),
        name: opt_text(row, "name")?,
        attributes: object_or_empty(row, "attributes")?,
        created_at: int(row, "created_at")?,
    })
}

/// A nullable JSON object column; NULL reads as `{}`.
fn object_or_empty(row: &AnyRow, col: &str) -> Result<serde_json::Value> {
    Ok(json_or_default::<Option<serde_json::Value>>(row, col)?.unwrap_or_else(|| serde_json::json!({})))
}

pub(crate) fn contact_identity(row: &AnyRow) -> Result<ContactIdentity> {
    Ok(ContactIdentity {
        contact_id: ContactId(int(row, "contact_id")?),
        inbox_id: InboxId(int(row, "inbox_id")?),
        external_id: text(row, "external_id")?,
    })
}

pub(crate) const CONVERSATION_COLS: &str = "id, tenant_id, inbox_id, contact_id, state, priority, team_id, \
     assignee_id, created_at, queued_at, assigned_at, first_agent_reply_at, closed_at, close_reason, biz_data, \
     attributes, tags, required_skills, preferred_agent_id, offer_expires_at, declined_by, queue_entered_at, updated_at";

pub(crate) fn conversation(row: &AnyRow) -> Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(int(row, "id")?),
        tenant_id: TenantId(int(row, "tenant_id")?),
        inbox_id: InboxId(int(row, "inbox_id")?),
        contact_id: ContactId(int(row, "contact_id")?),
        state: parsed(row, "state", ConversationState::parse)?,
        priority: int(row, "priority")?,
        team_id: opt_int(row, "team_id")?.map(TeamId),
        assignee_id: opt_int(row, "assignee_id")?.map(UserId),
        created_at: int(row, "created_at")?,
        queued_at: opt_int(row, "queued_at")?,
        assigned_at: opt_int(row, "assigned_at")?,
        first_agent_reply_at: opt_int(row, "first_agent_reply_at")?,
        closed_at: opt_int(row, "closed_at")?,
        close_reason: opt_parsed(row, "close_reason", CloseReason::parse)?,
        biz_data: json(row, "biz_data")?,
        attributes: object_or_empty(row, "attributes")?,
        tags: json_or_default(row, "tags")?,
        required_skills: json_or_default::<Option<serde_json::Value>>(row, "required_skills")?
            .unwrap_or_else(|| serde_json::Value::Array(Vec::new())),
        preferred_agent_id: opt_int(row, "preferred_agent_id")?.map(UserId),
        offer_expires_at: opt_int(row, "offer_expires_at")?,
        declined_by: json_or_default(row, "declined_by")?,
        queue_entered_at: opt_int(row, "queue_entered_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

pub(crate) const MESSAGE_COLS: &str = "id, tenant_id, conversation_id, inbox_id, direction, sender_kind, \
     sender_user_id, text, attachments, platform_message_id, client_message_id, status, created_at, private, \
     delivered_via_inbox_id";

pub(crate) fn message(row: &AnyRow) -> Result<Message> {
    Ok(Message {
        id: MessageId(int(row, "id")?),
        tenant_id: TenantId(int(row, "tenant_id")?),
        conversation_id: ConversationId(int(row, "conversation_id")?),
        inbox_id: InboxId(int(row, "inbox_id")?),
        direction: parsed(row, "direction", MessageDirection::parse)?,
        sender_kind: parsed(row, "sender_kind", SenderKind::parse)?,
        sender_user_id: opt_int(row, "sender_user_id")?.map(UserId),
        text: opt_text(row, "text")?,
        attachments: json(row, "attachments")?,
        platform_message_id: opt_text(row, "platform_message_id")?,
        client_message_id: opt_text(row, "client_message_id")?,
        status: parsed(row, "status", DeliveryStatus::parse)?,
        created_at: int(row, "created_at")?,
        // NULL (a row from before the column) reads as a public message.
        private: opt_int(row, "private")?.is_some_and(|p| p != 0),
        delivered_via_inbox_id: opt_int(row, "delivered_via_inbox_id")?.map(InboxId),
    })
}

pub(crate) const EVENT_COLS: &str = "conversation_id, kind, actor_user_id, detail, created_at";

pub(crate) fn event(row: &AnyRow) -> Result<ConversationEvent> {
    Ok(ConversationEvent {
        conversation_id: ConversationId(int(row, "conversation_id")?),
        kind: text(row, "kind")?,
        actor_user_id: opt_int(row, "actor_user_id")?.map(UserId),
        detail: opt_text(row, "detail")?,
        created_at: int(row, "created_at")?,
    })
}

pub(crate) const OUTBOX_COLS: &str = "id, tenant_id, inbox_id, message_id, kind, payload, status, attempts, \
     next_attempt_at, last_error, created_at, updated_at";

pub(crate) fn outbox(row: &AnyRow) -> Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: OutboxId(int(row, "id")?),
        tenant_id: TenantId(int(row, "tenant_id")?),
        inbox_id: InboxId(int(row, "inbox_id")?),
        message_id: opt_int(row, "message_id")?.map(MessageId),
        kind: text(row, "kind")?,
        payload: json(row, "payload")?,
        status: parsed(row, "status", OutboxStatus::parse)?,
        attempts: int(row, "attempts")?,
        next_attempt_at: int(row, "next_attempt_at")?,
        last_error: opt_text(row, "last_error")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}
