//! Switchboard's coordination bus: the two implementations of the core [`Bus`] port and a small
//! per-key [`Lease`] primitive.
//!
//! - [`MemoryBus`] serves a single node (the embedded default): events travel through an
//!   in-process broadcast channel, presence and leases live in a mutex-guarded map.
//! - [`RedisBus`] serves several nodes sharing one Redis: events are Redis pub/sub messages,
//!   presence is a sorted set per user, leases are `SET NX PX` keys.
//!
//! What this crate owns: moving *notifications* between nodes and answering "is this user
//! connected anywhere" and "who runs this singleton job". What it must not do: hold any truth.
//! Every event names rows already committed to the database; a lost event costs a client a resync,
//! never data. That is why neither implementation retries or buffers events for a subscriber that
//! fell behind or for the duration of a Redis outage — it drops them and says so in the logs.
#![forbid(unsafe_code)]

pub mod counters;
mod fanout;
mod lease;
mod memory;
mod redis_bus;
pub mod shared;

use std::sync::Arc;

pub use lease::Lease;
pub use memory::MemoryBus;
pub use redis_bus::{RedisBus, RedisBusOptions};
pub use switchboard_core::bus::{Bus, BusError, BusEvent, Counters, SharedState};

/// Key prefix used when the configuration names none: channels and keys look like `sb:events`,
/// `sb:presence:42`, `sb:lease:inbox-poller:7`.
pub const DEFAULT_PREFIX: &str = "sb:";

/// How many events a subscriber may fall behind before it starts losing the oldest ones.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Picks the bus for this deployment: Redis when a URL is configured (several nodes), the
/// in-process bus otherwise (a single node). An empty or blank URL counts as "not configured", so
/// an unset environment variable rendered as `""` does not turn into a connection error.
///
/// Fails only when a Redis URL is given and Redis cannot be reached (or the URL is malformed):
/// a node that was told to share state with others must not silently run alone.
pub async fn connect(redis_url: Option<&str>, prefix: &str) -> Result<Arc<dyn Bus>, BusError> {
    match redis_url.map(str::trim).filter(|url| !url.is_empty()) {
        Some(url) => Ok(Arc::new(RedisBus::connect(url, prefix).await?)),
        None => Ok(Arc::new(MemoryBus::new())),
    }
}
