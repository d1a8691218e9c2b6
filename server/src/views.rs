//! What clients are shown: conversations with their contact and inbox, customer identifiers
//! masked where the inbox asks for it. Built here once so REST and Socket.IO show the same thing.

use serde::Serialize;
use switchboard_core::domain::{mask_identifier, ChannelKind, Conversation, Inbox, Message};
use switchboard_core::ids::{ContactId, InboxId};
use switchboard_core::store::Store;
use switchboard_core::StoreError;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactView {
    pub id: ContactId,
    pub name: Option<String>,
    /// The customer's identifiers on this inbox, masked if the inbox says so.
    pub identifiers: Vec<String>,
    pub masked: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InboxSummary {
    pub id: InboxId,
    pub name: String,
    pub kind: ChannelKind,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationView {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub contact: ContactView,
    pub inbox: InboxSummary,
}

/// Builds the client view of a conversation. `reveal` shows full identifiers (admins); agents
/// and supervisors get them masked when the inbox's `mask_identifiers` is on.
pub async fn conversation_view(store: &dyn Store, conversation: Conversation, reveal: bool) -> Result<ConversationView, StoreError> {
    let inbox: Inbox = store.get_inbox(conversation.tenant_id, conversation.inbox_id).await?;
    let contact = store.get_contact(conversation.tenant_id, conversation.contact_id).await?;
    let identities = store.list_contact_identities(conversation.tenant_id, conversation.contact_id).await?;
    let masked = inbox.mask_identifiers && !reveal;
    let identifiers = identities
        .into_iter()
        .filter(|i| i.inbox_id == inbox.id)
        .map(|i| if masked { mask_identifier(&i.external_id) } else { i.external_id })
        .collect();
    Ok(ConversationView {
        contact: ContactView { id: contact.id, name: contact.name, identifiers, masked },
        inbox: InboxSummary { id: inbox.id, name: inbox.name, kind: inbox.kind },
        conversation,
    })
}

pub fn message_json(message: &Message) -> serde_json::Value {
    serde_json::to_value(message).unwrap_or(serde_json::Value::Null)
}
