//! Users of a tenant: listing, creation and edits by admins, and agent status changes. Status
//! changes go through the conversation service (it publishes the change and offers queued work);
//! this module must not change a status through the store directly.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::domain::{AgentStatus, ChannelKind, NewUser, Role, User, UserPatch};
use switchboard_core::bus::BusEvent;
use switchboard_core::ids::UserId;
use utoipa::ToSchema;

use crate::api::audit;
use crate::api::validate::{check_capacity, check_email, required_text, MAX_NAME_CHARS, MAX_PASSWORD_CHARS};
use crate::auth::{check_password_rules, hash_password, Principal};
use crate::conversations::set_agent_status;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).patch(update_user))
        .route("/users/{id}/status", put(set_status))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(max_length = 254, pattern = r"^\s*[^@\s]+@[^@\s]+\s*$")]
    pub email: String,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    pub role: Role,
    /// 10 to 1024 characters.
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
    /// Conversations the user may hold at once (0–1000); defaults to the server's
    /// `agents.default_capacity`.
    #[schema(minimum = 0, maximum = 1000)]
    pub capacity: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    pub role: Option<Role>,
    #[schema(minimum = 0, maximum = 1000)]
    pub capacity: Option<i64>,
    #[schema(min_length = 10, max_length = 1024)]
    pub password: Option<String>,
    /// Replaces the agent's skills: skill name (1–64 characters) → proficiency 1–5, at most 50.
    #[schema(value_type = Option<Object>)]
    pub skills: Option<std::collections::BTreeMap<String, i64>>,
    /// Replaces the caps per channel kind on top of `capacity`, e.g. `{"whatsapp": 2, "web": 3}`
    /// (0–1000 each); kinds not named are limited by `capacity` alone. `{}` removes every cap.
    #[schema(value_type = Option<Object>)]
    pub channel_capacity: Option<std::collections::BTreeMap<String, i64>>,
}

fn check_channel_capacity(caps: std::collections::BTreeMap<String, i64>) -> ApiResult<Vec<(ChannelKind, i64)>> {
    caps.into_iter()
        .map(|(kind, slots)| {
            let parsed = ChannelKind::parse(&kind)
                .ok_or_else(|| ApiError::Unprocessable(format!("channel_capacity: {kind:?} is not a channel kind")))?;
            if !(0..=1000).contains(&slots) {
                return Err(ApiError::Unprocessable(format!("channel_capacity.{kind}: must be 0 to 1000")));
            }
            Ok((parsed, slots))
        })
        .collect()
}

/// The most skills one agent may have.
const MAX_SKILLS: usize = 50;

fn check_skills(skills: std::collections::BTreeMap<String, i64>) -> ApiResult<std::collections::BTreeMap<String, u8>> {
    if skills.len() > MAX_SKILLS {
        return Err(ApiError::Unprocessable(format!("at most {MAX_SKILLS} skills")));
    }
    skills
        .into_iter()
        .map(|(name, level)| {
            let trimmed = name.trim();
            if trimmed.is_empty() || trimmed.chars().count() > 64 || trimmed != name {
                return Err(ApiError::Unprocessable(format!("skill name {name:?} must be 1–64 characters without surrounding spaces")));
            }
            match u8::try_from(level) {
                Ok(l @ 1..=5) => Ok((name, l)),
                _ => Err(ApiError::Unprocessable(format!("skills.{name}: proficiency must be 1 to 5"))),
            }
        })
        .collect()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    pub status: AgentStatus,
}

async fn hash_checked_password(password: String) -> ApiResult<String> {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(ApiError::Unprocessable(format!("password must be at most {MAX_PASSWORD_CHARS} characters")));
    }
    check_password_rules(&password)?;
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("password hashing task failed: {e}")))?
        .map_err(ApiError::Internal)
}

/// Supervisors and admins may look at anyone of their tenant; others only at themselves.
fn require_self_or_supervisor(principal: &Principal, id: UserId) -> ApiResult<()> {
    if principal.user_id() == Some(id) {
        Ok(())
    } else {
        principal.require_supervisor()
    }
}

/// List the tenant's users.
#[utoipa::path(
    get, path = "/users", tag = "users",
    responses(
        (status = 200, description = "All users of the tenant", body = Vec<User>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_users(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Vec<User>>> {
    principal.require_supervisor()?;
    Ok(Json(state.store.list_users(principal.tenant_id).await?))
}

/// Create a user (admin).
#[utoipa::path(
    post, path = "/users", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The email is already used in this tenant", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    principal.require_admin()?;
    let email = check_email(&body.email)?;
    let name = required_text("name", &body.name, MAX_NAME_CHARS)?;
    let capacity = check_capacity(body.capacity.unwrap_or(state.settings.agents.default_capacity))?;
    let password_hash = hash_checked_password(body.password).await?;
    let new = NewUser { tenant_id: principal.tenant_id, email, name, role: body.role, password_hash, capacity };
    let user = state.store.create_user(new, now_ms()).await?;
    audit::record(&state, &principal, "user.create", "user", user.id, json!({"email": user.email, "role": user.role})).await;
    Ok((StatusCode::CREATED, Json(user)))
}

/// One user. Agents may fetch only themselves.
#[utoipa::path(
    get, path = "/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_user(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<UserId>) -> ApiResult<Json<User>> {
    require_self_or_supervisor(&principal, id)?;
    Ok(Json(state.store.get_user(principal.tenant_id, id).await?))
}

/// Change a user's name, role, capacity, password or skills (admin).
#[utoipa::path(
    patch, path = "/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = UpdateUser,
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    principal.require_admin()?;
    let name = match body.name.as_deref() {
        Some(n) => Some(required_text("name", n, MAX_NAME_CHARS)?),
        None => None,
    };
    let capacity = body.capacity.map(check_capacity).transpose()?;
    let password_hash = match body.password {
        Some(p) => Some(hash_checked_password(p).await?),
        None => None,
    };
    let skills = body.skills.map(check_skills).transpose()?;
    let channel_capacity = body.channel_capacity.map(check_channel_capacity).transpose()?;
    // More room or new skills may make queued conversations theirs now: offer them at once.
    let may_take_more = capacity.is_some() || skills.is_some() || channel_capacity.is_some();
    // Which fields changed (never the password itself), and the new role if it changed.
    let changed: Vec<&str> = [
        ("name", name.is_some()),
        ("role", body.role.is_some()),
        ("capacity", capacity.is_some()),
        ("password", password_hash.is_some()),
        ("skills", skills.is_some()),
        ("channel_capacity", channel_capacity.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let audit_detail = json!({"fields": changed, "role": body.role});
    let patch = UserPatch { name, role: body.role, capacity, password_hash, skills };
    let mut updated = state.store.update_user(principal.tenant_id, id, patch, now_ms()).await?;
    if let Some(caps) = channel_capacity {
        state.store.set_channel_capacity(principal.tenant_id, id, &caps, now_ms()).await?;
        updated = state.store.get_user(principal.tenant_id, id).await?;
    }
    if may_take_more {
        crate::conversations::publish_agent(&state, principal.tenant_id, id).await;
        state.dispatcher.capacity_freed(&state, principal.tenant_id, id).await;
    }
    if body.role.is_some() || changed.contains(&"password") {
        // Open sockets hold the rights they connected with: close them, and the console's
        // reconnect is authorized with the new role (or the new password's sessions).
        crate::conversations::publish(&state, BusEvent::AccessChanged { tenant_id: principal.tenant_id, user_id: id, token_hash: None })
            .await;
    }
    audit::record(&state, &principal, "user.update", "user", id, audit_detail).await;
    Ok(Json(updated))
}

/// Set an agent's status. Users set their own; supervisors and admins may force anyone's.
#[utoipa::path(
    put, path = "/users/{id}/status", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = SetStatus,
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn set_status(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<SetStatus>,
) -> ApiResult<Json<User>> {
    require_self_or_supervisor(&principal, id)?;
    let user = set_agent_status(&state, principal.tenant_id, id, body.status).await?;
    // Setting one's own status is not an admin action; forcing someone else's is.
    if principal.user_id() != Some(id) {
        audit::record(&state, &principal, "user.status.force", "user", id, json!({"status": body.status})).await;
    }
    Ok(Json(user))
}
