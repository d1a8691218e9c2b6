//! Queue administration and manual pick: a team's routing policy (`GET`/`PUT
//! /api/v1/teams/{id}/policy`, validated against `core::routing::QueuePolicy`), and agents
//! claiming a conversation from a manual-pick queue (`POST /api/v1/conversations/{id}/claim`),
//! and answering an offer (`POST /api/v1/conversations/{id}/accept` / `reject`; the console uses
//! the socket events `offer:accept` / `offer:reject`).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use switchboard_core::domain::{Conversation, Team};
use switchboard_core::ids::{ConversationId, TeamId};
use switchboard_core::routing::{QueuePolicy, Strategy};

use crate::auth::Principal;
use crate::conversations::{publish_agent, publish_conversation};
use crate::dispatch::team_policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/teams/{id}/policy", get(get_policy).put(put_policy))
        .route("/conversations/{id}/claim", post(claim))
        .route("/conversations/{id}/accept", post(accept))
        .route("/conversations/{id}/reject", post(reject))
}

async fn find_team(state: &AppState, principal: &Principal, id: TeamId) -> ApiResult<Team> {
    let teams = state.store.list_teams(principal.tenant_id).await?;
    teams.into_iter().find(|t| t.id == id).ok_or(ApiError::NotFound("team"))
}

/// The team queue's policy in force (the defaults where none is stored).
#[utoipa::path(get, path = "/teams/{id}/policy", tag = "routing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Team id")),
    responses(
        (status = 200, description = "The policy in force", body = Object),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Supervisors and admins only", body = crate::error::ErrorBody),
        (status = 404, description = "No such team", body = crate::error::ErrorBody),
    ))]
pub async fn get_policy(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<TeamId>) -> ApiResult<Json<QueuePolicy>> {
    principal.require_supervisor()?;
    let team = find_team(&state, &principal, id).await?;
    Ok(Json(team_policy(Some(&team))))
}

/// Replaces the team queue's policy. Unknown keys, negative durations and inconsistent
/// overflow settings are refused with 422 and change nothing.
#[utoipa::path(put, path = "/teams/{id}/policy", tag = "routing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Team id")),
    request_body(content = Object, description = "A QueuePolicy: strategy, priority_aging_ms, max_priority_boost, ... (docs/routing.md)"),
    responses(
        (status = 200, description = "The stored policy", body = Object),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Admins only", body = crate::error::ErrorBody),
        (status = 404, description = "No such team", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid policy", body = crate::error::ErrorBody),
    ))]
pub async fn put_policy(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<TeamId>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<QueuePolicy>> {
    principal.require_admin()?;
    let policy: QueuePolicy = serde_json::from_value(body).map_err(|e| ApiError::Unprocessable(format!("policy: {e}")))?;
    policy.validate().map_err(|e| ApiError::Unprocessable(format!("policy: {e}")))?;
    let stored = serde_json::to_value(&policy).map_err(|e| ApiError::Internal(e.into()))?;
    find_team(&state, &principal, id).await?;
    let team = state.store.set_team_policy(principal.tenant_id, id, Some(stored.clone()), now_ms()).await?;
    crate::api::audit::record(&state, &principal, "team.policy.set", "team", id, serde_json::json!({"policy": stored})).await;
    Ok(Json(team_policy(Some(&team))))
}

/// An agent takes a waiting conversation from a manual-pick queue they serve.
#[utoipa::path(post, path = "/conversations/{id}/claim", tag = "routing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "Assigned to the caller", body = Conversation),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Not a manual-pick queue, or not the caller's team", body = crate::error::ErrorBody),
        (status = 404, description = "No such conversation", body = crate::error::ErrorBody),
        (status = 409, description = "Already taken, or the caller is unavailable or full", body = crate::error::ErrorBody),
    ))]
pub async fn claim(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<ConversationId>) -> ApiResult<Json<Conversation>> {
    let me = principal.user_id().ok_or(ApiError::Forbidden)?;
    let conversation = state.store.get_conversation(principal.tenant_id, id).await?;
    let team = match conversation.team_id {
        Some(t) => Some(find_team(&state, &principal, t).await?),
        None => None,
    };
    if team_policy(team.as_ref()).strategy != Strategy::Manual {
        return Err(ApiError::Forbidden);
    }
    if let Some(team) = &team {
        if !state.store.list_team_members(principal.tenant_id, team.id).await?.contains(&me) {
            return Err(ApiError::Forbidden);
        }
    }
    let assigned = state
        .store
        .try_assign(principal.tenant_id, id, me, now_ms())
        .await?
        .ok_or_else(|| ApiError::Conflict("already taken, or you are not available with room".into()))?;
    publish_conversation(&state, &assigned, None).await;
    publish_agent(&state, principal.tenant_id, me).await;
    crate::queue::announce(&state, principal.tenant_id).await;
    Ok(Json(assigned))
}

fn offered_agent(principal: &Principal) -> crate::conversations::Replier {
    crate::conversations::Replier { tenant_id: principal.tenant_id, user_id: principal.user_id(), role: principal.role }
}

/// The agent the conversation is offered to takes it (`offered` → `assigned`).
#[utoipa::path(post, path = "/conversations/{id}/accept", tag = "routing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "Assigned to the caller", body = Conversation),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Not a user (API keys cannot hold offers)", body = crate::error::ErrorBody),
        (status = 404, description = "No such conversation", body = crate::error::ErrorBody),
        (status = 409, description = "Not (or no longer) offered to the caller", body = crate::error::ErrorBody),
    ))]
pub async fn accept(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<ConversationId>) -> ApiResult<Json<Conversation>> {
    Ok(Json(crate::conversations::accept_offer(&state, &offered_agent(&principal), id).await?))
}

/// The agent the conversation is offered to turns it down: it keeps its place in the queue and
/// goes to the next agent.
#[utoipa::path(post, path = "/conversations/{id}/reject", tag = "routing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "Back in the queue", body = Conversation),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Not a user (API keys cannot hold offers)", body = crate::error::ErrorBody),
        (status = 404, description = "No such conversation", body = crate::error::ErrorBody),
        (status = 409, description = "Not (or no longer) offered to the caller", body = crate::error::ErrorBody),
    ))]
pub async fn reject(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<ConversationId>) -> ApiResult<Json<Conversation>> {
    Ok(Json(crate::conversations::reject_offer(&state, &offered_agent(&principal), id).await?))
}
