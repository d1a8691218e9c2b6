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

/// How often each node pushes its view of channel health to the supervisors connected to it.
const CHANNELS_PUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The supervisor stream's provider health. Every few seconds each node sends the supervisors
/// connected to it (the `sup:{tenant}` rooms of `/agent`) `channels [HealthView…]` for their
/// tenant: the view `GET /supervisor/channels` gives, as this node sees it (health is kept per
/// node, from the sends it made).
pub async fn run_channel_health(state: AppState, io: socketioxide::SocketIo) {
    let mut tick = tokio::time::interval(CHANNELS_PUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        let Some(agents) = io.of("/agent") else { continue };
        let Ok(rooms) = agents.clone().rooms().await;
        for room in rooms {
            let Some(tenant) = room.strip_prefix("sup:").and_then(|t| t.parse::<i64>().ok()) else { continue };
            let Ok(inboxes) = state.store.list_inboxes(switchboard_core::ids::TenantId(tenant)).await else { continue };
            let now = now_ms();
            let views: Vec<HealthView> = inboxes
                .into_iter()
                .filter(|i| switchboard_gateway::adapter_for(i.kind).is_some())
                .map(|i| state.health.view(i.id, now))
                .collect();
            if let Err(e) = agents.clone().to(room.to_string()).emit("channels", &views).await {
                tracing::debug!(error = %e, "channel health push failed");
            }
        }
    }
}

