//! [`MemoryBus`]: the single-node bus. Events go through an in-process broadcast channel;
//! presence and leases live in maps behind plain mutexes.
//!
//! It must not be used by several nodes: nothing here crosses the process boundary. It is the
//! embedded default and the fast backend for tests of code built on the bus.
//!
//! Locking: the maps sit behind `std::sync::Mutex`, not an async mutex. Every critical section is
//! a few map operations with no `.await` inside, so holding the lock never spans a suspension
//! point and a blocking mutex is both correct and cheaper. A poisoned mutex (a panic while
//! holding it) is recovered rather than propagated: every critical section leaves the maps
//! consistent after each single operation, so the data is still sound.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use tokio::time::Instant;

use switchboard_core::bus::{Bus, BusError, BusEvent};
use switchboard_core::ids::UserId;

use crate::fanout::subscriber_stream;
use crate::lease::{check_ttl, Lease};
use crate::DEFAULT_CAPACITY;

/// The in-process bus. Cheap to share behind an `Arc`; not `Clone` on purpose, so there is one
/// presence map per node.
pub struct MemoryBus {
    events: broadcast::Sender<BusEvent>,
    /// user -> (conn_id -> instant the entry stops counting).
    presence: Mutex<HashMap<UserId, HashMap<String, Instant>>>,
    /// lease key -> (owner, instant the lease lapses).
    leases: Mutex<HashMap<String, (String, Instant)>>,
    /// Token buckets and cached values (see `crate::shared`).
    pub(crate) shared: crate::shared::MemoryShared,
    /// Hit counters (see `crate::counters`).
    pub(crate) counters: crate::counters::MemoryCounters,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus").field("subscribers", &self.events.receiver_count()).finish_non_exhaustive()
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBus {
    /// A bus whose subscribers may fall [`DEFAULT_CAPACITY`] events behind before losing some.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A bus whose subscribers may fall `capacity` events behind before losing the oldest
    /// (`capacity` is raised to 1 if zero; the broadcast channel needs room for one event).
    pub fn with_capacity(capacity: usize) -> Self {
        // The initial receiver is dropped at once: a broadcast channel only buffers for live
        // receivers, so events published with no subscriber are simply discarded.
        let (events, _) = broadcast::channel(capacity.max(1));
        MemoryBus {
            events,
            presence: Mutex::new(HashMap::new()),
            leases: Mutex::new(HashMap::new()),
            shared: Default::default(),
            counters: Default::default(),
        }
    }

    fn presence(&self) -> MutexGuard<'_, HashMap<UserId, HashMap<String, Instant>>> {
        self.presence.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn leases(&self) -> MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `now + ttl_ms`, saturating far in the future instead of overflowing on absurd TTLs.
fn deadline(now: Instant, ttl_ms: u64) -> Instant {
    now.checked_add(Duration::from_millis(ttl_ms)).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

#[async_trait]
impl Bus for MemoryBus {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, event: &BusEvent) -> Result<(), BusError> {
        // `send` fails only when nobody is subscribed, which is not an error for a notification
        // bus: there is nobody to notify. It never blocks; slow subscribers lag instead.
        let _ = self.events.send(event.clone());
        Ok(())
    }

    async fn subscribe(&self) -> Result<BoxStream<'static, BusEvent>, BusError> {
        Ok(subscriber_stream(self.events.subscribe(), "memory"))
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn touch_presence(&self, user: UserId, conn_id: &str, ttl_ms: u64) -> Result<(), BusError> {
        let now = Instant::now();
        let mut presence = self.presence();
        let conns = presence.entry(user).or_default();
        // Prune this user's dead connections while we hold the entry anyway, so a user who
        // reconnects all day does not accumulate one entry per connection ever made.
        conns.retain(|_, expiry| *expiry > now);
        conns.insert(conn_id.to_owned(), deadline(now, ttl_ms));
        Ok(())
    }

    async fn drop_presence(&self, user: UserId, conn_id: &str) -> Result<(), BusError> {
        let mut presence = self.presence();
        if let Some(conns) = presence.get_mut(&user) {
            conns.remove(conn_id);
            if conns.is_empty() {
                presence.remove(&user);
            }
        }
        Ok(())
    }

    async fn presence_count(&self, user: UserId) -> Result<usize, BusError> {
        let now = Instant::now();
        let mut presence = self.presence();
        let Some(conns) = presence.get_mut(&user) else { return Ok(0) };
        // An entry counts while now < expiry, the same rule the Redis scripts apply.
        conns.retain(|_, expiry| *expiry > now);
        let count = conns.len();
        if count == 0 {
            presence.remove(&user);
        }
        Ok(count)
    }
}

#[async_trait]
impl Lease for MemoryBus {
    async fn try_acquire_lease(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, BusError> {
        check_ttl(ttl_ms)?;
        let now = Instant::now();
        let mut leases = self.leases();
        match leases.get(key) {
            Some((holder, expiry)) if *expiry > now && holder != owner => Ok(false),
            // Free, lapsed, or already ours: (re)take it with a fresh deadline.
            _ => {
                leases.insert(key.to_owned(), (owner.to_owned(), deadline(now, ttl_ms)));
                Ok(true)
            }
        }
    }

    async fn renew_lease(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, BusError> {
        check_ttl(ttl_ms)?;
        let now = Instant::now();
        let mut leases = self.leases();
        match leases.get_mut(key) {
            // A lapsed lease is not renewable even by its last owner: someone else may have
            // observed it free in between (on Redis the key would be gone), so the owner must
            // go through `try_acquire_lease` again.
            Some((holder, expiry)) if *expiry > now && holder == owner => {
                *expiry = deadline(now, ttl_ms);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<bool, BusError> {
        let now = Instant::now();
        let mut leases = self.leases();
        match leases.get(key) {
            Some((holder, expiry)) if holder == owner => {
                let was_live = *expiry > now;
                leases.remove(key);
                Ok(was_live)
            }
            _ => Ok(false),
        }
    }
}
