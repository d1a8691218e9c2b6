//! Conversations over REST: listing and reading (agents see only their own), replying,
//! resolving, manual assignment, business data and the event trail. Every change goes through
//! the conversation service (`crate::conversations`) or the store's atomic operations, followed
//! by a publish, so REST and Socket.IO clients see the same thing; this module must not change a
//! conversation any other way.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use switchboard_core::domain::{
    Attachment, CloseReason, Conversation, ConversationEvent, ConversationFilter, ConversationState, Message, Role,
};
use switchboard_core::ids::{ConversationId, InboxId, MessageId, UserId};
use utoipa::{IntoParams, ToSchema};

use crate::api::channels::check_attachments;
use crate::api::validate::{limit, optional_text, parse_enum, DEFAULT_LIMIT, MAX_LIMIT};
use crate::auth::Principal;
use crate::conversations::{self as service, publish_conversation, Replier};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::time::now_ms;
use crate::views::{conversation_view, ConversationView};

/// Longest `client_message_id`, in characters.
const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations", get(list_conversations))
        .route("/conversations/{id}", get(get_conversation))
        .route("/conversations/{id}/messages", get(list_messages).post(post_reply))
        .route("/conversations/{id}/resolve", post(resolve))
        .route("/conversations/{id}/assign", post(assign))
        .route("/conversations/{id}/biz_data", put(set_biz_data))
        .route("/conversations/{id}/events", get(list_events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListConversationsQuery {
    /// One conversation state (`queued`, `assigned`, …).
    #[param(value_type = Option<ConversationState>)]
    pub state: Option<String>,
    /// Only conversations held by this user (ignored for agents, who see only their own).
    pub assignee_id: Option<i64>,
    pub inbox_id: Option<i64>,
    /// Only open conversations.
    pub open: Option<bool>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Conversations with an id below this one (newest first paging).
    pub before: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListMessagesQuery {
    /// Messages with an id above this one (resync from the last seen id).
    pub after: Option<i64>,
    /// Instead: the page of messages just below this id, oldest first (scrolling back through
    /// a long history; start with a very large id for the newest page). Not with `after`.
    pub before: Option<i64>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostReply {
    pub text: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Your id for this message; a resend with the same id is stored once.
    pub client_message_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// A close reason: `resolved`, `no_response`, `customer_left`, `spam`, `duplicate`,
    /// `transferred`, `system_timeout` or `other`.
    #[schema(value_type = CloseReason)]
    pub reason: String,
    /// The team's wrap-up form (`GET /teams/{id}/wrap-up-template`): `{"<key>": string | bool}`.
    /// Required fields must be filled in when a person resolves as `resolved`; stored as the
    /// conversation's `attributes.wrap_up`.
    #[schema(value_type = Option<Object>)]
    pub wrap_up: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub user_id: UserId,
}

fn replier(principal: &Principal) -> Replier {
    Replier { tenant_id: principal.tenant_id, user_id: principal.user_id(), role: principal.role }
}

/// Agents may read only conversations assigned to them; supervisors and admins any of the tenant.
fn ensure_can_read(principal: &Principal, conversation: &Conversation) -> ApiResult<()> {
    if principal.role.sees_all_conversations() {
        return Ok(());
    }
    match principal.user_id() {
        Some(me) if conversation.assignee_id == Some(me) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

/// Loads a conversation the caller may read (404 for other tenants, 403 for others' work).
async fn readable(state: &AppState, principal: &Principal, id: ConversationId) -> ApiResult<Conversation> {
    let conversation = state.store.get_conversation(principal.tenant_id, id).await?;
    ensure_can_read(principal, &conversation)?;
    Ok(conversation)
}

/// The client view; only admins see unmasked customer identifiers.
async fn view(state: &AppState, principal: &Principal, conversation: Conversation) -> ApiResult<ConversationView> {
    Ok(conversation_view(state.store.as_ref(), conversation, principal.role == Role::Admin).await?)
}

/// Turns the query into a store filter, scoping agents to their own conversations.
fn conversation_filter(principal: &Principal, q: ListConversationsQuery) -> ApiResult<ConversationFilter> {
    let state = q
        .state
        .as_deref()
        .map(|s| parse_enum("state", s, ConversationState::ALL, ConversationState::parse))
        .transpose()?;
    let assignee_id = if principal.role.sees_all_conversations() {
        q.assignee_id.map(UserId)
    } else {
        Some(principal.user_id().ok_or(ApiError::Forbidden)?)
    };
    Ok(ConversationFilter {
        state,
        assignee_id,
        inbox_id: q.inbox_id.map(InboxId),
        open_only: q.open.unwrap_or(false),
        limit: limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?,
        before: q.before.map(ConversationId),
    })
}

/// List conversations, newest first.
#[utoipa::path(
    get, path = "/conversations", tag = "conversations",
    params(ListConversationsQuery),
    responses(
        (status = 200, body = Vec<ConversationView>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_conversations(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListConversationsQuery>,
) -> ApiResult<Json<Vec<ConversationView>>> {
    let filter = conversation_filter(&principal, q)?;
    let conversations = state.store.list_conversations(principal.tenant_id, filter).await?;
    let views = conversations.into_iter().map(|c| view(&state, &principal, c));
    Ok(Json(futures::future::try_join_all(views).await?))
}

/// One conversation with its contact and inbox.
#[utoipa::path(
    get, path = "/conversations/{id}", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    responses(
        (status = 200, body = ConversationView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_conversation(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<Json<ConversationView>> {
    let conversation = readable(&state, &principal, id).await?;
    Ok(Json(view(&state, &principal, conversation).await?))
}

/// Messages of a conversation, oldest first.
#[utoipa::path(
    get, path = "/conversations/{id}/messages", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id"), ListMessagesQuery),
    responses(
        (status = 200, body = Vec<Message>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_messages(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiQuery(q): ApiQuery<ListMessagesQuery>,
) -> ApiResult<Json<Vec<Message>>> {
    let page = limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    readable(&state, &principal, id).await?;
    let messages = match (q.after, q.before) {
        (Some(_), Some(_)) => return Err(ApiError::BadRequest { code: "invalid_query", message: "use either after or before, not both".into() }),
        (_, Some(before)) => state.store.list_messages_before(principal.tenant_id, id, MessageId(before), page).await?,
        (after, None) => state.store.list_messages(principal.tenant_id, id, after.map(MessageId), page).await?,
    };
    Ok(Json(messages))
}

/// Reply in a conversation. Agents may reply only in conversations assigned to them.
#[utoipa::path(
    post, path = "/conversations/{id}/messages", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    request_body = PostReply,
    responses(
        (status = 201, description = "Stored (or already stored under this `client_message_id`)", body = Message),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The conversation is closed", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_reply(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<PostReply>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let client_message_id = optional_text("client_message_id", body.client_message_id.as_deref(), MAX_CLIENT_MESSAGE_ID_CHARS)?;
    check_attachments(&body.attachments)?;
    // Whoever may not read the conversation may not write in it: an agent-role API key holds no
    // conversation, so it may reply in none (the service alone would let it into unassigned ones).
    readable(&state, &principal, id).await?;
    let message = service::reply(&state, &replier(&principal), id, body.text, body.attachments, client_message_id).await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// Close a conversation with a reason; frees the agent's slot.
#[utoipa::path(
    post, path = "/conversations/{id}/resolve", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    request_body = ResolveBody,
    responses(
        (status = 200, body = ConversationView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Already closed", body = ErrorBody),
        (status = 422, description = "Unknown reason, or wrap-up values the team's form refuses (`invalid_wrap_up`, with paths)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn resolve(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<ResolveBody>,
) -> ApiResult<Json<ConversationView>> {
    let reason = parse_enum("reason", body.reason.trim(), CloseReason::ALL, CloseReason::parse)?;
    readable(&state, &principal, id).await?;
    let conversation = service::resolve_with_wrap_up(&state, &replier(&principal), id, reason, body.wrap_up).await?;
    Ok(Json(view(&state, &principal, conversation).await?))
}

/// Assign a queued conversation to an agent by hand (supervisors and admins).
#[utoipa::path(
    post, path = "/conversations/{id}/assign", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    request_body = AssignBody,
    responses(
        (status = 200, body = ConversationView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not queued any more, or the agent is not available or at capacity", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn assign(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<AssignBody>,
) -> ApiResult<Json<ConversationView>> {
    principal.require_supervisor()?;
    // Tenant-scoped lookups first, so another tenant's ids answer 404 rather than 409.
    state.store.get_conversation(principal.tenant_id, id).await?;
    state.store.get_user(principal.tenant_id, body.user_id).await?;
    // `try_assign` checks "still queued" and "agent available with room" atomically with the
    // change; a lost race with the dispatcher or another supervisor shows up as `None`.
    let assigned = state
        .store
        .try_assign(principal.tenant_id, id, body.user_id, now_ms())
        .await?
        .ok_or_else(|| ApiError::Conflict("the conversation is not queued, or the agent is not available or has no free capacity".into()))?;
    metrics::counter!("switchboard_assignments_total").increment(1);
    publish_conversation(&state, &assigned, None).await;
    crate::api::audit::record(&state, &principal, "conversation.assign", "conversation", id, serde_json::json!({"user_id": body.user_id})).await;
    Ok(Json(view(&state, &principal, assigned).await?))
}

/// Replace the conversation's business data (admins and API keys).
#[utoipa::path(
    put, path = "/conversations/{id}/biz_data", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    request_body(content = Object, description = "Any JSON object"),
    responses(
        (status = 200, body = ConversationView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn set_biz_data(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<ConversationView>> {
    if principal.role != Role::Admin && principal.user.is_some() {
        return Err(ApiError::Forbidden);
    }
    if !body.is_object() {
        return Err(ApiError::Unprocessable("biz_data must be a JSON object".into()));
    }
    let conversation = state.store.set_biz_data(principal.tenant_id, id, body, now_ms()).await?;
    publish_conversation(&state, &conversation, None).await;
    Ok(Json(view(&state, &principal, conversation).await?))
}

/// The conversation's life so far: created, queued, assigned, resolved, …
#[utoipa::path(
    get, path = "/conversations/{id}/events", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    responses(
        (status = 200, body = Vec<ConversationEvent>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<Json<Vec<ConversationEvent>>> {
    readable(&state, &principal, id).await?;
    Ok(Json(state.store.list_conversation_events(principal.tenant_id, id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::ids::TenantId;

    fn principal(role: Role, user: Option<i64>) -> Principal {
        let user = user.map(|id| switchboard_core::domain::User {
            id: UserId(id),
            tenant_id: TenantId(1),
            email: "a@example.com".into(),
            name: "A".into(),
            role,
            password_hash: String::new(),
            status: switchboard_core::domain::AgentStatus::Available,
            capacity: 5,
            active_load: 0,
            last_assigned_at: None,
            skills: Default::default(),
            wrap_up_until: None,
            channel_capacity: Default::default(),
            created_at: 0,
            updated_at: 0,
        });
        Principal { tenant_id: TenantId(1), role, user, api_token_id: None }
    }

    fn query(state: Option<&str>, assignee: Option<i64>) -> ListConversationsQuery {
        ListConversationsQuery { state: state.map(String::from), assignee_id: assignee, inbox_id: None, open: None, limit: None, before: None }
    }

    #[test]
    fn agents_are_scoped_to_their_own_conversations() {
        let f = conversation_filter(&principal(Role::Agent, Some(7)), query(None, Some(9))).ok();
        assert_eq!(f.and_then(|f| f.assignee_id), Some(UserId(7)));
        let f = conversation_filter(&principal(Role::Supervisor, Some(7)), query(None, Some(9))).ok();
        assert_eq!(f.and_then(|f| f.assignee_id), Some(UserId(9)));
        let f = conversation_filter(&principal(Role::Admin, None), query(None, None)).ok();
        assert_eq!(f.map(|f| (f.assignee_id, f.limit)), Some((None, DEFAULT_LIMIT)));
        // An agent-role API key has no user to scope to.
        assert!(conversation_filter(&principal(Role::Agent, None), query(None, None)).is_err());
    }

    #[test]
    fn unknown_state_is_refused() {
        let admin = principal(Role::Admin, Some(1));
        assert!(conversation_filter(&admin, query(Some("queued"), None)).is_ok_and(|f| f.state == Some(ConversationState::Queued)));
        let err = conversation_filter(&admin, query(Some("sleeping"), None)).err().map(|e| e.status_and_code().1);
        assert_eq!(err, Some("invalid_body"));
    }
}
