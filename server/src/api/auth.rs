//! Login, logout and "who am I". Owns the session-token lifecycle seen from HTTP: the token is
//! returned once at login and only its SHA-256 is stored. Password hashing and token resolution
//! live in `crate::auth`; this module must not store or log a plaintext password or token.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use switchboard_core::domain::User;
use switchboard_core::time::Millis;
use utoipa::ToSchema;

use crate::api::validate::{normalize_email, MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS};
use crate::auth::{hash_password, new_token, token_hash, verify_password, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::time::now_ms;

const INVALID_CREDENTIALS: &str = "invalid email or password";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The tenant's slug; required only when the email exists in several tenants.
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer …`; shown only here.
    pub token: String,
    /// Milliseconds since the Unix epoch.
    #[schema(value_type = i64)]
    pub expires_at: Millis,
    pub user: User,
}

/// A hash checked when the email is unknown, so that answer takes as long as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_password("switchboard-timing-equalizer").unwrap_or_default());

/// Argon2 verification is deliberately slow; keep it off the async workers.
async fn password_matches(password: String, hash: String) -> ApiResult<bool> {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("password check task failed: {e}")))
}

/// Log in with email and password.
///
/// Unknown email and wrong password get the same 401 `invalid_credentials`. When the email exists
/// in several tenants, `tenant` (the slug) picks one; without it the answer is 422. After 5 wrong
/// passwords for an email within 15 minutes, its logins are refused with 429
/// `too_many_attempts` (and `Retry-After`) until the oldest failure is 15 minutes old.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 422, description = "Invalid body, or the email exists in several tenants and no `tenant` was given", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this email; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a login may be tried again"))),
    ),
    security(())
)]
pub async fn login(State(state): State<AppState>, ApiJson(body): ApiJson<LoginRequest>) -> ApiResult<Json<LoginResponse>> {
    let email = normalize_email(&body.email);
    if email.is_empty() || email.chars().count() > MAX_EMAIL_CHARS || body.password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(ApiError::InvalidCredentials(INVALID_CREDENTIALS));
    }
    let started = now_ms();
    if let Err(wait_ms) = state.login_throttle.check(state.bus.as_ref(), &email, started).await {
        return Err(ApiError::TooManyAttempts(u64::try_from(wait_ms / 1000 + 1).unwrap_or(1)));
    }
    let result = authenticate(&state, &email, &body).await;
    match &result {
        Err(ApiError::InvalidCredentials(_)) => state.login_throttle.failed(state.bus.as_ref(), &email, started).await,
        Ok(_) => state.login_throttle.succeeded(state.bus.as_ref(), &email).await,
        Err(_) => {}
    }
    let user = result?;
    let now = now_ms();
    let ttl_ms = i64::try_from(state.settings.auth.session_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let expires_at = now.saturating_add(ttl_ms);
    let token = new_token("sbs_");
    state.store.create_session(&user, &token_hash(&token), expires_at, now).await?;
    tracing::info!(user_id = %user.id, tenant_id = %user.tenant_id, "login");
    Ok(Json(LoginResponse { token, expires_at, user }))
}

/// The user these credentials belong to, or `InvalidCredentials` (the same answer for an
/// unknown email and a wrong password, with similar timing).
async fn authenticate(state: &AppState, email: &str, body: &LoginRequest) -> ApiResult<User> {
    let mut candidates = state.store.find_users_by_email_unscoped(email).await?;
    if let Some(slug) = body.tenant.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let tenant = state.store.find_tenant_by_slug_unscoped(slug).await?;
        candidates.retain(|u| tenant.as_ref().is_some_and(|t| t.id == u.tenant_id));
    }
    if candidates.is_empty() {
        password_matches(body.password.clone(), DUMMY_HASH.clone()).await?;
        return Err(ApiError::InvalidCredentials(INVALID_CREDENTIALS));
    }
    // Check the password before saying anything about several tenants, so a caller without the
    // password learns nothing about where an email is registered.
    let mut matching = Vec::new();
    let several = candidates.len() > 1;
    for user in candidates {
        if password_matches(body.password.clone(), user.password_hash.clone()).await? {
            matching.push(user);
        }
    }
    match matching.len() {
        0 => Err(ApiError::InvalidCredentials(INVALID_CREDENTIALS)),
        1 if !several => Ok(matching.remove(0)),
        _ => Err(ApiError::Unprocessable("this email belongs to several tenants; give the tenant's slug in `tenant`".into())),
    }
}

/// The bearer token of a request (already authenticated by `Principal`).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// End the current login session. A no-op for API keys (delete those under `/api-tokens`).
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Session ended"),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn logout(State(state): State<AppState>, principal: Principal, headers: HeaderMap) -> ApiResult<StatusCode> {
    if let Some(token) = bearer_token(&headers).filter(|t| t.starts_with("sbs_")) {
        let hash = token_hash(token);
        state.store.delete_session(&hash).await?;
        // The sockets opened with this session end with it, on every node.
        if let Some(user) = &principal.user {
            crate::conversations::publish(
                &state,
                switchboard_core::bus::BusEvent::AccessChanged { tenant_id: user.tenant_id, user_id: user.id, token_hash: Some(hash) },
            )
            .await;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The logged-in user.
#[utoipa::path(
    get, path = "/me", tag = "auth",
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Called with an API key, which has no user", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn me(principal: Principal) -> ApiResult<Json<User>> {
    principal.user.map(Json).ok_or(ApiError::Forbidden)
}
