//! A contact's history for the console's customer panel: their other conversations and, read
//! only, the messages of one. Supervisors and admins see any contact of the tenant; an agent
//! sees a contact's history only while holding one of the contact's conversations (the one on
//! their screen). Identifiers are masked per inbox exactly as in `views`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_core::domain::{Message, Role};
use switchboard_core::ids::{ContactId, ConversationId, MessageId};
use utoipa::IntoParams;

use crate::api::validate::{limit, DEFAULT_LIMIT, MAX_LIMIT};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::views::{conversation_view, ConversationView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts/{id}/conversations", get(list_contact_conversations))
        .route("/contacts/{id}/conversations/{conversation}/messages", get(list_contact_messages))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Messages with an id above this one (for the messages listing).
    pub after: Option<i64>,
}

/// The contact's conversations, newest first, after checking the caller may see them: 404 for
/// another tenant's (or an unknown) contact, 403 for an agent holding none of them.
async fn history(state: &AppState, principal: &Principal, contact: ContactId, limit: i64) -> ApiResult<Vec<switchboard_core::domain::Conversation>> {
    state.store.get_contact(principal.tenant_id, contact).await?;
    let conversations = state.store.list_contact_conversations(principal.tenant_id, contact, MAX_LIMIT.max(limit)).await?;
    if !principal.role.sees_all_conversations() {
        let me = principal.user_id().ok_or(ApiError::Forbidden)?;
        let holds_one = conversations.iter().any(|c| c.assignee_id == Some(me) && c.state.is_open());
        if !holds_one {
            return Err(ApiError::Forbidden);
        }
    }
    Ok(conversations)
}

/// The contact's conversations, newest first (the customer panel's "previous conversations").
#[utoipa::path(
    get, path = "/contacts/{id}/conversations", tag = "conversations",
    params(("id" = i64, Path, description = "Contact id"), HistoryQuery),
    responses(
        (status = 200, body = Vec<ConversationView>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_contact_conversations(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ContactId>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Vec<ConversationView>>> {
    let limit = limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let mut conversations = history(&state, &principal, id, limit).await?;
    conversations.truncate(usize::try_from(limit).unwrap_or(0));
    let mut views = Vec::with_capacity(conversations.len());
    for c in conversations {
        views.push(conversation_view(state.store.as_ref(), c, principal.role == Role::Admin).await?);
    }
    Ok(Json(views))
}

/// One of the contact's conversations' messages, oldest first, read only (internal notes
/// included: the readers are agents and supervisors).
#[utoipa::path(
    get, path = "/contacts/{id}/conversations/{conversation}/messages", tag = "conversations",
    params(("id" = i64, Path, description = "Contact id"), ("conversation" = i64, Path, description = "Conversation id"), HistoryQuery),
    responses(
        (status = 200, body = Vec<Message>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_contact_messages(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, conversation)): ApiPath<(ContactId, ConversationId)>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Vec<Message>>> {
    let limit = limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    history(&state, &principal, id, MAX_LIMIT).await?;
    let target = state.store.get_conversation(principal.tenant_id, conversation).await?;
    if target.contact_id != id {
        return Err(ApiError::NotFound("conversation"));
    }
    Ok(Json(state.store.list_messages(principal.tenant_id, conversation, query.after.map(MessageId), limit).await?))
}
