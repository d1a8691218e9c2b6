//! Teams: named groups of agents whose queue an inbox feeds. Admins create teams and add
//! members; anyone in the tenant may list them. Membership is read for routing by the
//! dispatcher through the store, not through this module.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_core::domain::{Team, User};
use switchboard_core::ids::{TeamId, UserId};
use utoipa::ToSchema;

use crate::api::validate::{required_text, MAX_NAME_CHARS};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/teams", get(list_teams).post(create_team))
        .route("/teams/{id}/members", post(add_member).get(list_members))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    #[schema(value_type = i64)]
    pub user_id: UserId,
}

/// 404 unless the team belongs to the caller's tenant (the store has no single-team lookup).
pub(crate) async fn ensure_team(state: &AppState, principal: &Principal, team: TeamId) -> ApiResult<()> {
    let teams = state.store.list_teams(principal.tenant_id).await?;
    if teams.iter().any(|t| t.id == team) {
        Ok(())
    } else {
        Err(ApiError::NotFound("team"))
    }
}

/// List the tenant's teams.
#[utoipa::path(
    get, path = "/teams", tag = "teams",
    responses((status = 200, body = Vec<Team>), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_teams(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Vec<Team>>> {
    Ok(Json(state.store.list_teams(principal.tenant_id).await?))
}

/// Create a team (admin).
#[utoipa::path(
    post, path = "/teams", tag = "teams",
    request_body = CreateTeam,
    responses(
        (status = 201, body = Team),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "A team with this name exists", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_team(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateTeam>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    principal.require_admin()?;
    let name = required_text("name", &body.name, MAX_NAME_CHARS)?;
    let team = state.store.create_team(principal.tenant_id, &name, now_ms()).await?;
    crate::api::audit::record(&state, &principal, "team.create", "team", team.id, serde_json::json!({"name": team.name})).await;
    Ok((StatusCode::CREATED, Json(team)))
}

/// Add a user to a team (admin). Adding an existing member is a no-op.
#[utoipa::path(
    post, path = "/teams/{id}/members", tag = "teams",
    params(("id" = i64, Path, description = "Team id")),
    request_body = AddMember,
    responses(
        (status = 204, description = "The user is a member"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such team or user in this tenant", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(team): ApiPath<TeamId>,
    ApiJson(body): ApiJson<AddMember>,
) -> ApiResult<StatusCode> {
    principal.require_admin()?;
    // Both lookups are tenant-scoped, so another tenant's team or user answers 404.
    ensure_team(&state, &principal, team).await?;
    state.store.get_user(principal.tenant_id, body.user_id).await?;
    state.store.add_team_member(principal.tenant_id, team, body.user_id, now_ms()).await?;
    crate::api::audit::record(&state, &principal, "team.member.add", "team", team, serde_json::json!({"user_id": body.user_id})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The members of a team.
#[utoipa::path(
    get, path = "/teams/{id}/members", tag = "teams",
    params(("id" = i64, Path, description = "Team id")),
    responses(
        (status = 200, body = Vec<User>),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_members(State(state): State<AppState>, principal: Principal, ApiPath(team): ApiPath<TeamId>) -> ApiResult<Json<Vec<User>>> {
    ensure_team(&state, &principal, team).await?;
    let member_ids = state.store.list_team_members(principal.tenant_id, team).await?;
    let mut users = state.store.list_users(principal.tenant_id).await?;
    users.retain(|u| member_ids.contains(&u.id));
    Ok(Json(users))
}
