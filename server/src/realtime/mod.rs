//! Real-time connections over Socket.IO: `/agent` for agents and supervisors, `/widget` for
//! customers on the web widget. Both push what the bus announces (`fanout`) and answer requests
//! with acknowledgements sent only after the database commit.
//!
//! Room names (local to each node; every node subscribes to the bus and fans out to its own
//! sockets, so a customer on node A and an agent on node B still meet):
//! - `user:{id}` — every socket of an agent;
//! - `sup:{tenant}` — supervisors and admins of a tenant;
//! - `watch:{conversation}` — supervisors watching a conversation;
//! - `wconv:{conversation}` — the customer's widget sockets of a conversation.

pub mod agent;
pub mod fanout;
pub mod widget;

use serde::Serialize;

use crate::error::ApiError;

/// Why a connection was refused; socket.io-client sees the text as `connect_error`'s message.
#[derive(Debug)]
pub struct AuthFailed(pub &'static str);

impl std::fmt::Display for AuthFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The acknowledgement shape of every client request: `{ok: true, ...}` or
/// `{ok: false, error: {code, message}}` with the same codes as the REST API.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Ack<T: Serialize> {
    Ok { ok: bool, #[serde(flatten)] body: T },
    Err { ok: bool, error: AckError },
}

#[derive(Serialize)]
pub struct AckError {
    pub code: String,
    pub message: String,
}

impl<T: Serialize> Ack<T> {
    pub fn from_result(result: Result<T, ApiError>) -> Self {
        match result {
            Ok(body) => Ack::Ok { ok: true, body },
            Err(e) => {
                let (status, code) = e.status_and_code();
                let message = if status.is_server_error() { "service unavailable, retry".to_string() } else { e.to_string() };
                if status.is_server_error() {
                    tracing::warn!(error = ?e, "socket request failed");
                }
                Ack::Err { ok: false, error: AckError { code: code.to_string(), message } }
            }
        }
    }
}

/// Typing notices relayed per socket: at most one per this many milliseconds.
pub const TYPING_MIN_INTERVAL_MS: i64 = 1_000;

/// Whether a socket's typing notice may be relayed now (and, if so, records it as the last one).
pub fn typing_allowed(last: &std::sync::atomic::AtomicI64) -> bool {
    use std::sync::atomic::Ordering;
    let now = crate::time::now_ms();
    let prev = last.load(Ordering::Relaxed);
    now - prev >= TYPING_MIN_INTERVAL_MS && last.compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

/// Acknowledges a request if the client asked for an ack.
pub fn send_ack<T: Serialize>(ack: Option<socketioxide::extract::AckSender>, result: Result<T, ApiError>) {
    if let Some(ack) = ack {
        if let Err(e) = ack.send(&Ack::from_result(result)) {
            tracing::debug!(error = %e, "ack not sent (client gone)");
        }
    }
}
