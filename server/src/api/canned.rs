//! Canned responses: replies an agent inserts by typing `/shortcut` in the console's reply box.
//! Everyone in the tenant may list them (agents need them to reply); supervisors and admins
//! create, change and delete them. Shortcuts are unique within a tenant (409 `conflict`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_core::domain::{CannedResponse, NewCannedResponse};
use utoipa::ToSchema;

use crate::api::validate::{required_text, MAX_NAME_CHARS};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::time::now_ms;

/// Longest shortcut, in characters.
pub const MAX_SHORTCUT_CHARS: usize = 64;
/// Longest body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/canned-responses", get(list_canned).post(create_canned))
        .route("/canned-responses/{id}", put(update_canned).delete(delete_canned))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CannedBody {
    /// Typed after `/`: lowercase letters, digits, `-` and `_`, 1–64 characters.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9_-]+$")]
    pub shortcut: String,
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// The inserted text; `{{contact.name}}` and `{{agent.name}}` are filled in by the console.
    #[schema(min_length = 1, max_length = 4000)]
    pub body: String,
}

/// A shortcut as typed after `/`: refused unless 1–64 of `a-z`, `0-9`, `-`, `_`.
pub fn check_shortcut(shortcut: &str) -> ApiResult<String> {
    let shortcut = shortcut.trim();
    let valid = !shortcut.is_empty()
        && shortcut.chars().count() <= MAX_SHORTCUT_CHARS
        && shortcut.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(shortcut.to_owned())
    } else {
        Err(ApiError::Unprocessable(format!(
            "shortcut must be 1 to {MAX_SHORTCUT_CHARS} lowercase letters, digits, '-' or '_'"
        )))
    }
}

fn parse(body: CannedBody) -> ApiResult<NewCannedResponse> {
    Ok(NewCannedResponse {
        shortcut: check_shortcut(&body.shortcut)?,
        title: required_text("title", &body.title, MAX_NAME_CHARS)?,
        body: required_text("body", &body.body, MAX_BODY_CHARS)?,
    })
}

fn taken(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict(_) => ApiError::Conflict("a canned response with this shortcut exists".into()),
        other => other,
    }
}

/// The tenant's canned responses, by shortcut.
#[utoipa::path(
    get, path = "/canned-responses", tag = "canned-responses",
    responses((status = 200, body = Vec<CannedResponse>), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_canned(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Vec<CannedResponse>>> {
    Ok(Json(state.store.list_canned_responses(principal.tenant_id).await?))
}

/// Create a canned response (supervisors and admins).
#[utoipa::path(
    post, path = "/canned-responses", tag = "canned-responses",
    request_body = CannedBody,
    responses(
        (status = 201, body = CannedResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The shortcut is taken", body = ErrorBody),
        (status = 422, description = "A bad shortcut, an empty title or body", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_canned(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CannedBody>,
) -> ApiResult<(StatusCode, Json<CannedResponse>)> {
    principal.require_supervisor()?;
    let new = parse(body)?;
    let created = state.store.create_canned_response(principal.tenant_id, new, now_ms()).await.map_err(|e| taken(e.into()))?;
    crate::api::audit::record(&state, &principal, "canned.create", "canned_response", created.id, serde_json::json!({"shortcut": created.shortcut})).await;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Replace a canned response's shortcut, title and body (supervisors and admins).
#[utoipa::path(
    put, path = "/canned-responses/{id}", tag = "canned-responses",
    params(("id" = i64, Path, description = "Canned response id")),
    request_body = CannedBody,
    responses(
        (status = 200, body = CannedResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The shortcut is taken", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_canned(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CannedBody>,
) -> ApiResult<Json<CannedResponse>> {
    principal.require_supervisor()?;
    let new = parse(body)?;
    let updated = state.store.update_canned_response(principal.tenant_id, id, new, now_ms()).await.map_err(|e| taken(e.into()))?;
    crate::api::audit::record(&state, &principal, "canned.update", "canned_response", id, serde_json::json!({"shortcut": updated.shortcut})).await;
    Ok(Json(updated))
}

/// Delete a canned response (supervisors and admins).
#[utoipa::path(
    delete, path = "/canned-responses/{id}", tag = "canned-responses",
    params(("id" = i64, Path, description = "Canned response id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_canned(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    principal.require_supervisor()?;
    state.store.delete_canned_response(principal.tenant_id, id).await?;
    crate::api::audit::record(&state, &principal, "canned.delete", "canned_response", id, serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts() {
        for good in ["hi", "refund-policy", "a_1", &"x".repeat(64)] {
            assert_eq!(check_shortcut(good).ok().as_deref(), Some(good));
        }
        for bad in ["", " ", "Hi", "/hi", "two words", "ünï", &"x".repeat(65)] {
            assert!(check_shortcut(bad).is_err(), "{bad:?} accepted");
        }
    }
}
