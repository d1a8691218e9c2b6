//! Supervisor views over REST: the live queue snapshot (the same data the `queue` event streams
//! to supervisors' sockets).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::health::HealthView;
use crate::time::now_ms;
use crate::queue::{snapshot, QueueSnapshot};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/supervisor/queues", get(queues)).route("/supervisor/channels", get(channels))
}

/// Per team: who waits (position, estimated wait), the longest wait; agents by status and load;
/// service level (answered within 20 s), average speed of answer and abandonment over the last
/// 30 minutes.
#[utoipa::path(
    get,
    path = "/supervisor/queues",
    tag = "supervisor",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant's live queue snapshot", body = QueueSnapshot),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Supervisors and admins only", body = crate::error::ErrorBody),
    )
)]
pub async fn queues(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<QueueSnapshot>> {
    principal.require_supervisor()?;
    Ok(Json(snapshot(&state, principal.tenant_id).await?))
}

/// Provider health of every platform inbox of the tenant as this node sees it: recent success
/// rate and latency, the last error, and the circuit breaker's state.
#[utoipa::path(
    get,
    path = "/supervisor/channels",
    tag = "supervisor",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Health per platform inbox", body = [HealthView]),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Supervisors and admins only", body = crate::error::ErrorBody),
    )
)]
pub async fn channels(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Vec<HealthView>>> {
    principal.require_supervisor()?;
    let now = now_ms();
    let inboxes = state.store.list_inboxes(principal.tenant_id).await?;
    let views = inboxes
        .into_iter()
        .filter(|i| switchboard_gateway::adapter_for(i.kind).is_some())
        .map(|i| state.health.view(i.id, now))
        .collect();
    Ok(Json(views))
}
