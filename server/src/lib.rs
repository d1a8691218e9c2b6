//! The Switchboard server: the composition root where the HTTP API, the Socket.IO hubs, the
//! background workers, the storage backend and the bus meet.
//!
//! `launch(settings, listener, shutdown)` runs a complete node on a listener the caller bound, so
//! tests start the real server in-process on port 0. `main.rs` only parses the command line.
#![forbid(unsafe_code)]

pub mod absence;
pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod bot;
pub mod cli;
pub mod conversations;
pub mod dispatch;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod health;
pub mod media;
pub mod ops;
pub mod outbox;
pub mod queue;
pub mod queues;
pub mod realtime;
pub mod secrets;
pub mod settings;
pub mod state;
pub mod supervisor;
pub mod throttle;
pub mod time;
pub mod transfer;
pub mod views;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use secrecy::ExposeSecret;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::settings::Settings;
use crate::state::AppState;


/// Opens storage (running migrations) and the bus, as the `serve` and `migrate` commands need.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn switchboard_core::store::Store>> {
    if settings.database_url.is_none() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data dir {}", settings.data_dir.display()))?;
    }
    let store = open_sql_store(settings).await?;
    // Proves this node's keys open every inbox's secrets (fail closed at start-up, not on the
    // first webhook) and seals rows written before encryption.
    let report = store.reseal_inbox_secrets(false).await.context("checking inbox secrets against security.secrets_key")?;
    if report.resealed > 0 {
        tracing::info!(inboxes = report.inboxes, resealed = report.resealed, "sealed plaintext inbox secrets");
    }
    Ok(Arc::new(store))
}

/// The SQL store with the inbox-secrets keyring of `settings` (`secrets::keyring`).
pub async fn open_sql_store(settings: &Settings) -> anyhow::Result<switchboard_storage::SqlStore> {
    let keyring = secrets::keyring(settings)?;
    let store = switchboard_storage::connect(&settings.effective_database_url())
        .await
        .context("opening the database")?;
    Ok(store.with_secrets(keyring))
}

/// Runs one server node until `shutdown` is cancelled, then drains: stops accepting, closes
/// sockets, lets the outbox worker finish its batch, and returns.
pub async fn launch(settings: Settings, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let settings = Arc::new(settings);
    let store = open_store(&settings).await?;
    let redis_url = settings.redis_url.as_ref().map(|u| u.expose_secret().to_string());
    let bus = switchboard_bus::connect(redis_url.as_deref(), &settings.redis_prefix)
        .await
        .context("connecting the bus (Redis)")?;
    let local_addr = listener.local_addr()?;
    let bootstrap_report = bootstrap::ensure_initial_tenant(store.as_ref(), &settings).await?;

    let (socket_layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20))
        .max_payload(settings.max_body_bytes as u64)
        .build_layer();

    let media = Arc::new(media::Media::open(&settings)?);
    let state = AppState {
        store,
        bus: bus.clone(),
        node_id: settings.node_name().into(),
        settings: settings.clone(),
        dispatcher: Arc::new(dispatch::PolicyDispatcher::default()),
        outbox_wake: Arc::new(tokio::sync::Notify::new()),
        io: io.clone(),
        metrics: ops::metrics_handle(),
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?,
        health: Arc::new(health::ChannelHealth::default()),
        login_throttle: Arc::new(throttle::LoginThrottle::default()),
        media,
        bot_flows: Arc::new(bot::FlowCache::default()),
        queue_announcer: Arc::new(queue::Announcer::default()),
        shutdown: shutdown.clone(),
    };
    realtime::agent::register(&io, state.clone());
    realtime::widget::register(&io, state.clone());

    let mut workers = tokio::task::JoinSet::new();
    workers.spawn(realtime::fanout::run(io.clone(), bus, shutdown.clone()));
    workers.spawn(outbox::run(state.clone()));
    workers.spawn(gateway::run_pollers(state.clone()));
    workers.spawn(bot::run_sweeper(state.clone()));
    workers.spawn(queue::run_announcer(state.clone()));
    workers.spawn(absence::run(state.clone()));
    workers.spawn(supervisor::run_channel_health(state.clone(), io.clone()));
    {
        let state = state.clone();
        workers.spawn(async move {
            // The sweep (`agents.sweep_interval_ms`) is a safety net and the clock for time-based
            // rules; routing latency is decided by dispatch on every arrival and freed slot.
            let mut tick = tokio::time::interval(Duration::from_millis(state.settings.agents.sweep_interval_ms.max(100)));
            loop {
                tokio::select! {
                    _ = tick.tick() => state.dispatcher.sweep(&state).await,
                    _ = state.shutdown.cancelled() => return,
                }
            }
        });
    }
    if let Some(addr) = settings.metrics_listen {
        let metrics_listener = TcpListener::bind(addr).await.with_context(|| format!("binding metrics listener {addr}"))?;
        let app = Router::new().merge(ops::metrics_router()).with_state(state.clone());
        let stop = shutdown.clone();
        workers.spawn(async move {
            let _ = axum::serve(metrics_listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
        });
    }

    let app = router(state.clone(), settings.metrics_listen.is_none()).layer(socket_layer);

    bootstrap_report.print(&settings, local_addr);
    tracing::info!(%local_addr, node = %state.node_id, store = state.store.backend(), bus = state.bus.backend(), "switchboard listening");

    // Close every socket first: upgraded WebSocket connections would otherwise keep the
    // graceful HTTP shutdown waiting forever.
    let closing = {
        let (io, shutdown) = (io.clone(), shutdown.clone());
        async move {
            shutdown.cancelled().await;
            io.close().await;
        }
    };
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(closing)
        .await
        .context("serving HTTP")?;

    while workers.join_next().await.is_some() {}
    tracing::info!("switchboard stopped");
    Ok(())
}

/// The HTTP routes of a node (without the Socket.IO layer).
pub fn router(state: AppState, with_metrics: bool) -> Router {
    let max_body = state.settings.max_body_bytes;
    let mut app = Router::new()
        .nest("/api/v1", api::router())
        .merge(gateway::router())
        .merge(media::router())
        .merge(ops::router())
        .merge(web::router());
    if with_metrics {
        app = app.merge(ops::metrics_router());
    }
    app.layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(ops::track_http))
        .layer(axum::middleware::from_fn(run_to_completion))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Runs each request on its own task, so a client that disconnects (or times out) mid-request
/// does not cancel the handler halfway through a database transaction: what was started is
/// committed or rolled back whole, and the connection goes back to the pool clean. (Dropping a
/// handler inside a transaction left pooled connections mid-transaction under load.)
async fn run_to_completion(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => {
            use axum::response::IntoResponse;
            crate::error::ApiError::Internal(anyhow::anyhow!("request task failed: {e}")).into_response()
        }
    }
}
