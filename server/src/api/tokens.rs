//! API keys (`sbk_…`) for business systems calling the REST API. Admins create, list and delete
//! them; the key itself is returned once at creation and only its SHA-256 is stored. Resolving a
//! key on a request is `crate::auth`'s job, not this module's.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use switchboard_core::domain::{ApiToken, Role};
use switchboard_core::ids::ApiTokenId;
use utoipa::ToSchema;

use crate::api::validate::{required_text, MAX_NAME_CHARS};
use crate::auth::{new_token, token_hash, Principal};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-tokens", get(list_tokens).post(create_token))
        .route("/api-tokens/{id}", delete(delete_token))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiToken {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// What the key may do, as for a user of that role.
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiToken {
    #[serde(flatten)]
    pub api_token: ApiToken,
    /// The key for `Authorization: Bearer …`; shown only here.
    pub token: String,
}

/// List the tenant's API keys (admin). The keys themselves are not shown.
#[utoipa::path(
    get, path = "/api-tokens", tag = "api-tokens",
    responses((status = 200, body = Vec<ApiToken>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_tokens(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Vec<ApiToken>>> {
    principal.require_admin()?;
    Ok(Json(state.store.list_api_tokens(principal.tenant_id).await?))
}

/// Create an API key (admin).
#[utoipa::path(
    post, path = "/api-tokens", tag = "api-tokens",
    request_body = CreateApiToken,
    responses(
        (status = 201, description = "Created; the key is shown only here", body = CreatedApiToken),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateApiToken>,
) -> ApiResult<(StatusCode, Json<CreatedApiToken>)> {
    principal.require_admin()?;
    let name = required_text("name", &body.name, MAX_NAME_CHARS)?;
    let token = new_token("sbk_");
    let api_token = state.store.create_api_token(principal.tenant_id, &name, body.role, &token_hash(&token), now_ms()).await?;
    tracing::info!(api_token_id = %api_token.id, role = %api_token.role, "api token created");
    let detail = serde_json::json!({"name": api_token.name, "role": api_token.role});
    crate::api::audit::record(&state, &principal, "api_token.create", "api_token", api_token.id, detail).await;
    Ok((StatusCode::CREATED, Json(CreatedApiToken { api_token, token })))
}

/// Delete an API key (admin); requests using it fail from now on.
#[utoipa::path(
    delete, path = "/api-tokens/{id}", tag = "api-tokens",
    params(("id" = i64, Path, description = "API token id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_token(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<ApiTokenId>) -> ApiResult<StatusCode> {
    principal.require_admin()?;
    state.store.delete_api_token(principal.tenant_id, id).await?;
    crate::api::audit::record(&state, &principal, "api_token.delete", "api_token", id, serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}
