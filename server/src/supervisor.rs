//! Supervisor views over REST: the live queue snapshot (the same data the `queue` event streams
//! to supervisors' sockets).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::queue::{snapshot, QueueSnapshot};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/supervisor/queues", get(queues))
}

/// Per team: who waits (position, estimated wait), the longest wait; agents by status and load;
/// service level (answered within 20 s), average speed of answer and abandonment over the last
/// 30 minutes.
#[utoipa::path(
    get,
    path = "/api/v1/supervisor/queues",
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
