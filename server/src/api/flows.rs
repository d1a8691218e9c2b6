//! Auto-responder flows per inbox (`GET`/`PUT`/`DELETE /inboxes/{id}/flow`) and the decision
//! hook's call log (`GET /inboxes/{id}/decision-hook-calls`). A flow is validated on save by
//! `core::autoresponder` (every problem, with its path) and its routes' teams must exist; a
//! refused flow changes nothing. The flow's JSON reference is `docs/auto-responder.md`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::autoresponder::{Flow, FlowError, HookCall, TeamRef};
use switchboard_core::ids::InboxId;
use switchboard_core::time::Millis;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorItem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inboxes/{id}/flow", get(get_flow).put(put_flow).delete(delete_flow))
        .route("/inboxes/{id}/decision-hook-calls", get(list_hook_calls))
}

/// An inbox's flow; `flow` is `null` when the inbox has none (conversations go straight to
/// the queue).
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowDocument {
    pub inbox_id: InboxId,
    #[schema(value_type = Option<Object>)]
    pub flow: Option<Value>,
    pub updated_at: Option<Millis>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutFlow {
    /// The flow (docs/auto-responder.md). Error paths are relative to it: `steps[2].next`.
    #[schema(value_type = Object)]
    pub flow: Value,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HookCallQuery {
    /// At most this many (default 100, at most 1000), newest first.
    pub limit: Option<i64>,
}

/// The inbox's auto-responder flow (supervisors and admins).
#[utoipa::path(get, path = "/inboxes/{id}/flow", tag = "auto-responder", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Inbox id")),
    responses(
        (status = 200, body = FlowDocument),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn get_flow(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<InboxId>,
) -> ApiResult<Json<FlowDocument>> {
    principal.require_supervisor()?;
    state.store.get_inbox(principal.tenant_id, id).await?;
    let stored = state.store.get_inbox_flow(principal.tenant_id, id).await?;
    Ok(Json(FlowDocument {
        inbox_id: id,
        updated_at: stored.as_ref().map(|f| f.updated_at),
        flow: stored.map(|f| f.flow),
    }))
}

/// Save the inbox's flow (admin). New conversations on the inbox start with the bot.
///
/// An invalid flow is refused with 422 `invalid_flow` and `errors: [{path, message}]` listing
/// every problem: unknown step types or keys, dangling step references, bad regexes, bad
/// calendars, routes to teams that do not exist.
#[utoipa::path(put, path = "/inboxes/{id}/flow", tag = "auto-responder", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Inbox id")),
    request_body = PutFlow,
    responses(
        (status = 200, body = FlowDocument),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "Invalid flow (`invalid_flow`, with `errors`)", body = ErrorBody),
    ))]
pub async fn put_flow(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<InboxId>,
    ApiJson(body): ApiJson<PutFlow>,
) -> ApiResult<Json<FlowDocument>> {
    principal.require_admin()?;
    state.store.get_inbox(principal.tenant_id, id).await?;
    let flow = Flow::from_value(body.flow.clone()).map_err(invalid_flow)?;
    let teams = state.store.list_teams(principal.tenant_id).await?;
    let missing: Vec<FlowError> = flow
        .routes()
        .into_iter()
        .filter_map(|(path, route)| {
            let team = route.team.clone().or(route.queue.map(|q| TeamRef::Id(q.0)))?;
            let exists = teams.iter().any(|t| match &team {
                TeamRef::Id(id) => t.id.0 == *id,
                TeamRef::Name(name) => t.name == *name,
            });
            let key = if route.team.is_some() { "team" } else { "queue" };
            (!exists).then(|| FlowError::new(format!("{path}.{key}"), "no such team"))
        })
        .collect();
    if !missing.is_empty() {
        return Err(invalid_flow(missing));
    }
    // Compiling builds every regex: a flow that validates but does not compile is refused too.
    flow.compile().map_err(invalid_flow)?;
    let saved = state.store.set_inbox_flow(principal.tenant_id, id, &body.flow, now_ms()).await?;
    tracing::info!(inbox_id = %id, "auto-responder flow saved");
    crate::api::audit::record(&state, &principal, "flow.set", "inbox", id, serde_json::json!({})).await;
    Ok(Json(FlowDocument { inbox_id: id, flow: Some(saved.flow), updated_at: Some(saved.updated_at) }))
}

fn invalid_flow(errors: Vec<FlowError>) -> ApiError {
    let message = match errors.as_slice() {
        [one] if one.path.is_empty() => format!("the flow is invalid: {}", one.message),
        [one] => format!("the flow is invalid at {}: {}", one.path, one.message),
        many => format!("the flow is invalid ({} problems)", many.len()),
    };
    ApiError::InvalidDocument {
        code: "invalid_flow",
        message,
        errors: errors.into_iter().map(|e| ErrorItem { path: e.path, message: e.message }).collect(),
    }
}

/// Remove the inbox's flow (admin; idempotent). New conversations go straight to the queue;
/// conversations with the bot are handed to the queue on their next message.
#[utoipa::path(delete, path = "/inboxes/{id}/flow", tag = "auto-responder", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Inbox id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such inbox", body = ErrorBody),
    ))]
pub async fn delete_flow(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<InboxId>,
) -> ApiResult<StatusCode> {
    principal.require_admin()?;
    state.store.get_inbox(principal.tenant_id, id).await?;
    // Idempotent: an inbox without a flow is already what the caller asked for.
    match state.store.delete_inbox_flow(principal.tenant_id, id).await {
        Ok(()) => {
            tracing::info!(inbox_id = %id, "auto-responder flow removed");
            crate::api::audit::record(&state, &principal, "flow.delete", "inbox", id, serde_json::json!({})).await;
        }
        Err(switchboard_core::StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The inbox's decision hook calls, newest first: outcome (`ok`, `timeout`, `http_status`,
/// `transport`, `invalid_response`, `not_configured`), HTTP status, latency and error.
#[utoipa::path(get, path = "/inboxes/{id}/decision-hook-calls", tag = "auto-responder", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Inbox id"), HookCallQuery),
    responses(
        (status = 200, body = Vec<HookCall>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn list_hook_calls(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<InboxId>,
    ApiQuery(query): ApiQuery<HookCallQuery>,
) -> ApiResult<Json<Vec<HookCall>>> {
    principal.require_supervisor()?;
    state.store.get_inbox(principal.tenant_id, id).await?;
    Ok(Json(state.store.list_hook_calls(principal.tenant_id, id, query.limit.unwrap_or(100)).await?))
}
