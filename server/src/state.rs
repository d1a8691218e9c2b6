//! The one shared state every handler, socket and worker receives: the storage and bus ports,
//! the settings, and handles to this node's workers. Cheap to clone (everything is behind `Arc`).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use socketioxide::SocketIo;
use switchboard_core::bus::Bus;
use switchboard_core::store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::dispatch::Dispatcher;
use crate::settings::Settings;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub settings: Arc<Settings>,
    /// This process's name among the nodes (outbox leases, logs).
    pub node_id: Arc<str>,
    /// Decides which agent gets a waiting conversation (`dispatch::PolicyDispatcher`).
    pub dispatcher: Arc<dyn Dispatcher>,
    /// Wakes the outbox worker as soon as a reply with an outbox entry commits.
    pub outbox_wake: Arc<Notify>,
    pub io: SocketIo,
    pub metrics: Option<PrometheusHandle>,
    pub http: reqwest::Client,
    /// Per-inbox provider health and circuit breakers (this node's view).
    pub health: Arc<crate::health::ChannelHealth>,
    /// Failed logins per email (this node's count), for lockout.
    pub login_throttle: Arc<crate::throttle::LoginThrottle>,
    /// Tenants whose queue changed, announced in coalesced rounds (`queue::run_announcer`).
    pub queue_announcer: Arc<crate::queue::Announcer>,
    /// Compiled auto-responder flows by inbox.
    pub bot_flows: Arc<crate::bot::FlowCache>,
    /// Attachments' bytes (local disk or S3) and their signed URLs.
    pub media: Arc<crate::media::Media>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}
