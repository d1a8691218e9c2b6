//! Transfer and internal notes over REST: `POST /conversations/{id}/transfer` and
//! `POST /conversations/{id}/notes`. Handlers only extract and call `crate::transfer`, which
//! checks who may (the holding agent; supervisors and admins for any conversation of the tenant).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use switchboard_core::domain::{AgentStatus, Message, Role};
use switchboard_core::ids::{ConversationId, TeamId, UserId};
use switchboard_core::transfer::TransferTarget;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::conversations::Replier;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::views::{conversation_view, ConversationView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}/transfer", post(transfer))
        .route("/conversations/{id}/notes", post(add_note))
        .route("/conversations/{id}/transfer-targets", get(transfer_targets))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// `{"agent": 12}`, `{"team": 3}` or `{"queue": true}`.
    pub to: TransferTarget,
    /// An internal note for whoever gets the conversation; never shown to the customer.
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferView {
    /// The conversation after the transfer (already placed with an agent if one had room).
    pub conversation: ConversationView,
    /// The note, stored as a private message.
    pub note: Option<Message>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub text: String,
}

fn replier(principal: &Principal) -> Replier {
    Replier { tenant_id: principal.tenant_id, user_id: principal.user_id(), role: principal.role }
}

/// Transfer a conversation to an agent, a team's queue or back to the queue, with an optional
/// internal note. Agents may transfer the conversations they hold; supervisors and admins any.
/// A transfer into a queue keeps the customer's place in line.
#[utoipa::path(
    post, path = "/conversations/{id}/transfer", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    request_body = TransferBody,
    responses(
        (status = 200, body = TransferView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such conversation, agent or team", body = ErrorBody),
        (status = 409, description = "The conversation is with the bot or closed, already there, or the agent is not available or has no free capacity (nothing changed)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn transfer(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<TransferBody>,
) -> ApiResult<Json<TransferView>> {
    let target = serde_json::to_value(body.to).unwrap_or_default();
    let outcome = crate::transfer::transfer(&state, &replier(&principal), id, body.to, body.note).await?;
    // An agent handing on their own conversation is routine; a supervisor or admin moving
    // someone's conversation is a reassignment the audit log records.
    if principal.role != Role::Agent {
        crate::api::audit::record(&state, &principal, "conversation.transfer", "conversation", id, serde_json::json!({"to": target})).await;
    }
    let conversation =
        conversation_view(state.store.as_ref(), outcome.conversation, principal.role == Role::Admin).await?;
    Ok(Json(TransferView { conversation, note: outcome.note }))
}

/// Add an internal note: a private message agents and supervisors see and the customer never
/// does. The same callers as replies.
#[utoipa::path(
    post, path = "/conversations/{id}/notes", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    request_body = NoteBody,
    responses(
        (status = 201, body = Message),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The conversation is closed", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_note(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<NoteBody>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let note = crate::transfer::add_note(&state, &replier(&principal), id, body.text).await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// Where the caller may transfer a conversation: the tenant's other users with their status and
/// load (a transfer to an agent succeeds only if they are available with room), and its teams.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferTargets {
    pub agents: Vec<TargetAgent>,
    pub teams: Vec<TargetTeam>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetAgent {
    #[schema(value_type = i64)]
    pub id: UserId,
    pub name: String,
    pub status: AgentStatus,
    pub active_load: i64,
    pub capacity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetTeam {
    #[schema(value_type = i64)]
    pub id: TeamId,
    pub name: String,
}

/// The agents and teams a conversation can be transferred to (for the console's picker: agents
/// may not list users otherwise). The same callers as the transfer itself.
#[utoipa::path(
    get, path = "/conversations/{id}/transfer-targets", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    responses(
        (status = 200, body = TransferTargets),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn transfer_targets(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<Json<TransferTargets>> {
    let conversation = state.store.get_conversation(principal.tenant_id, id).await?;
    replier(&principal).may_act_on(&conversation)?;
    let mut agents: Vec<TargetAgent> = state
        .store
        .list_users(principal.tenant_id)
        .await?
        .into_iter()
        .filter(|u| Some(u.id) != conversation.assignee_id)
        .map(|u| TargetAgent {
            id: u.id,
            name: u.name,
            status: u.status,
            active_load: u.active_load,
            capacity: u.capacity,
        })
        .collect();
    agents.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let teams = state.store.list_teams(principal.tenant_id).await?;
    let teams = teams.into_iter().map(|t| TargetTeam { id: t.id, name: t.name }).collect();
    Ok(Json(TransferTargets { agents, teams }))
}
