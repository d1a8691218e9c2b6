//! The [`Lease`] primitive: "at most one owner per key, for a while". Meant for singleton jobs
//! that must run on exactly one node at a time, e.g. one poller per inbox or one outbox flusher.
//!
//! The trait itself lives in `switchboard_core::bus` (so `Arc<dyn Bus>` carries it); this
//! module owns its documentation and shared checks; [`MemoryBus`](crate::MemoryBus) and
//! [`RedisBus`](crate::RedisBus) implement it.
//!
//! # What a lease does and does not guarantee
//!
//! A lease is a key with an owner string and a time-to-live. Renewing and releasing check the
//! owner, so a node whose lease already expired and was taken over cannot extend or delete the
//! new owner's lease ("fencing by owner").
//!
//! It is *not* a fencing token in the storage sense: a node paused longer than the TTL (GC pause,
//! VM migration, a stuck await) may still believe it holds the lease while another node already
//! does. Work guarded by a lease must therefore be idempotent or guarded again by the database
//! (unique constraints, compare-and-set on a version column). The lease makes double work rare;
//! the database makes it harmless.
//!
//! Usage shape: call [`Lease::try_acquire_lease`] on every tick of the job (it doubles as a renew
//! for the current owner), renew well before the TTL runs out (e.g. every TTL/3), and release on
//! orderly shutdown so a successor need not wait for the TTL.

use switchboard_core::bus::BusError;

pub use switchboard_core::bus::Lease;

/// Rejects a zero TTL up front: Redis refuses `PX 0`, and the in-memory bus should answer the
/// same way so tests on one backend predict the other.
pub(crate) fn check_ttl(ttl_ms: u64) -> Result<(), BusError> {
    if ttl_ms == 0 {
        return Err(BusError("lease ttl_ms must be positive".into()));
    }
    Ok(())
}
