//! Operational endpoints: `/healthz` (the process answers), `/readyz` (database and bus
//! reachable, with detail), `/metrics` (Prometheus), `/api/openapi.json`, and the HTTP metrics
//! middleware (labelled by route template, never by raw path).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::state::AppState;

/// The process-wide Prometheus recorder. Installed once; several in-process servers (tests)
/// share it.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .clone()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/openapi.json", get(openapi))
}

pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let (db, bus) = tokio::join!(state.store.ping(), state.bus.ping());
    let ready = db.is_ok() && bus.is_ok();
    let check = |backend: &str, r: Result<(), String>| match r {
        Ok(()) => json!({ "backend": backend, "ok": true }),
        Err(e) => json!({ "backend": backend, "ok": false, "error": e }),
    };
    // Provider breakers do not make the node unready (it still ingests), but operators see them.
    let now = crate::time::now_ms();
    let channels: Vec<_> = state.health.known().into_iter().map(|id| state.health.view(id, now)).collect();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "channels": channels,
        "node": &*state.node_id,
        "database": check(state.store.backend(), db.map_err(|e| e.to_string())),
        "bus": check(state.bus.backend(), bus.map_err(|e| e.to_string())),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(h) => ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable").into_response(),
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::api::openapi())
}

/// Counts requests and their latency per route template and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("switchboard_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!("switchboard_http_request_seconds", "route" => route, "method" => method).record(started.elapsed().as_secs_f64());
    response
}
