//! The [`Lease`] primitive: "at most one owner per key, for a while". Meant for singleton jobs
//! that must run on exactly one node at a time, e.g. one poller per inbox or one outbox flusher.
//!
//! This module owns the contract only; [`MemoryBus`](crate::MemoryBus) and
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

use async_trait::async_trait;

use switchboard_core::bus::BusError;

#[async_trait]
pub trait Lease: Send + Sync + 'static {
    /// Takes the lease on `key` for `owner` for `ttl_ms` if nobody holds it. Returns `true` when
    /// `owner` holds the lease afterwards: a free key is taken, and a key already held by
    /// `owner` is extended (so a job may call this on every tick). Returns `false` when another
    /// owner holds it. `ttl_ms` must be positive.
    async fn try_acquire_lease(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, BusError>;

    /// Extends the lease to `ttl_ms` from now if `owner` still holds it. Returns `false` when the
    /// lease expired or belongs to someone else: the caller must stop the guarded work.
    async fn renew_lease(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, BusError>;

    /// Gives the lease up if `owner` holds it. Returns whether anything was released; releasing a
    /// lease someone else holds is a no-op.
    async fn release_lease(&self, key: &str, owner: &str) -> Result<bool, BusError>;
}

/// Rejects a zero TTL up front: Redis refuses `PX 0`, and the in-memory bus should answer the
/// same way so tests on one backend predict the other.
pub(crate) fn check_ttl(ttl_ms: u64) -> Result<(), BusError> {
    if ttl_ms == 0 {
        return Err(BusError("lease ttl_ms must be positive".into()));
    }
    Ok(())
}
