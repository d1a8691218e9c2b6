//! The outbox as admins see it: pending, delivered and dead-lettered deliveries, and replaying a
//! dead letter. Delivery itself is the outbox worker's (`crate::outbox`); this module only reads
//! entries and hands dead ones back to the worker.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_core::domain::{OutboxEntry, OutboxStatus};
use switchboard_core::ids::OutboxId;
use utoipa::IntoParams;

use crate::api::validate::{limit, parse_enum, DEFAULT_LIMIT, MAX_LIMIT};
use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new().route("/outbox", get(list_outbox)).route("/outbox/{id}/retry", post(retry))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListOutboxQuery {
    /// `pending`, `delivered` or `dead`; all when absent.
    #[param(value_type = Option<OutboxStatus>)]
    pub status: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// List outbox entries (admin), e.g. `?status=dead` for dead letters.
#[utoipa::path(
    get, path = "/outbox", tag = "outbox",
    params(ListOutboxQuery),
    responses(
        (status = 200, body = Vec<OutboxEntry>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_outbox(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListOutboxQuery>,
) -> ApiResult<Json<Vec<OutboxEntry>>> {
    principal.require_admin()?;
    let status = q.status.as_deref().map(|s| parse_enum("status", s, OutboxStatus::ALL, OutboxStatus::parse)).transpose()?;
    let page = limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    Ok(Json(state.store.list_outbox(principal.tenant_id, status, page).await?))
}

/// Put a dead entry back to pending with a fresh retry budget (admin).
#[utoipa::path(
    post, path = "/outbox/{id}/retry", tag = "outbox",
    params(("id" = i64, Path, description = "Outbox entry id")),
    responses(
        (status = 200, description = "Pending again; the worker picks it up at once", body = OutboxEntry),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The entry is not dead", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn retry(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<OutboxId>) -> ApiResult<Json<OutboxEntry>> {
    principal.require_admin()?;
    let entry = state.store.retry_outbox(principal.tenant_id, id, now_ms()).await?;
    state.outbox_wake.notify_one();
    tracing::info!(outbox_id = %id, "dead letter replayed");
    crate::api::audit::record(&state, &principal, "outbox.retry", "outbox", id, serde_json::json!({"message_id": entry.message_id})).await;
    Ok(Json(entry))
}
