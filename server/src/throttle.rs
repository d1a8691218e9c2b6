//! Login throttling: after `MAX_FAILURES` wrong passwords for one email within `WINDOW_MS`, further
//! attempts for that email are refused with 429 `too_many_attempts` (and `Retry-After`) until the
//! window closes — even with the right password, so guessing cannot continue by luck. A
//! successful login clears the email's count.
//!
//! Counted on the bus ([`Counters`]): in Redis when nodes share one, so all nodes share one
//! count per email and spreading guesses over N nodes gains nothing; in process on a single
//! node. The window is fixed: it opens with the first failure and lasts `WINDOW_MS`. The key is
//! a hash of the email, so Redis holds no addresses.
//!
//! If the bus fails (Redis down), this node falls back to counting in its own memory (the
//! per-node sliding window below) rather than letting guesses through uncounted or locking
//! everyone out; memory stays bounded by pruning stale records.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use switchboard_core::bus::Counters;

use switchboard_core::time::Millis;

pub const MAX_FAILURES: usize = 5;
pub const WINDOW_MS: Millis = 15 * 60 * 1000;
/// Above this many tracked emails, stale records are pruned on the next failure.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    /// Used only while the bus is failing.
    fallback: LocalThrottle,
}

fn counter_key(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    format!("login-fail:{}", digest[..16].iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl LoginThrottle {
    /// `Err(retry_after_ms)` when the email is locked out at `now`.
    pub async fn check(&self, bus: &dyn Counters, email: &str, now: Millis) -> Result<(), Millis> {
        match bus.hit_count(&counter_key(email)).await {
            Ok((count, left_ms)) if count >= MAX_FAILURES as u64 => Err(Millis::try_from(left_ms).unwrap_or(WINDOW_MS)),
            Ok(_) => self.fallback.check(email, now),
            Err(e) => {
                tracing::warn!(error = %e, "login throttle: bus unavailable, counting on this node");
                self.fallback.check(email, now)
            }
        }
    }

    pub async fn failed(&self, bus: &dyn Counters, email: &str, now: Millis) {
        if let Err(e) = bus.count_hit(&counter_key(email), WINDOW_MS as u64).await {
            tracing::warn!(error = %e, "login throttle: bus unavailable, counting on this node");
            self.fallback.failed(email, now);
        }
    }

    pub async fn succeeded(&self, bus: &dyn Counters, email: &str) {
        if let Err(e) = bus.clear_hits(&counter_key(email)).await {
            tracing::warn!(error = %e, "login throttle: could not clear the shared count");
        }
        self.fallback.succeeded(email);
    }
}

/// The per-node count used while the bus is down: the last `MAX_FAILURES` failure times per
/// email (a sliding window).
#[derive(Debug, Default)]
struct LocalThrottle {
    failures: Mutex<HashMap<String, VecDeque<Millis>>>,
}

impl LocalThrottle {
    /// `Err(retry_after_ms)` when the email is locked out at `now`.
    pub fn check(&self, email: &str, now: Millis) -> Result<(), Millis> {
        let Ok(mut all) = self.failures.lock() else { return Ok(()) };
        let Some(list) = all.get_mut(email) else { return Ok(()) };
        while list.front().is_some_and(|t| now - t >= WINDOW_MS) {
            list.pop_front();
        }
        match list.front() {
            Some(oldest) if list.len() >= MAX_FAILURES => Err(oldest + WINDOW_MS - now),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, email: &str, now: Millis) {
        let Ok(mut all) = self.failures.lock() else { return };
        if all.len() > PRUNE_ABOVE {
            all.retain(|_, list| list.back().is_some_and(|t| now - t < WINDOW_MS));
        }
        let list = all.entry(email.to_owned()).or_default();
        list.push_back(now);
        while list.len() > MAX_FAILURES {
            list.pop_front();
        }
    }

    pub fn succeeded(&self, email: &str) {
        if let Ok(mut all) = self.failures.lock() {
            all.remove(email);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_failures_until_the_oldest_ages_out() {
        let t = LocalThrottle::default();
        for i in 0..MAX_FAILURES {
            assert!(t.check("a@x", i as Millis * 1000).is_ok());
            t.failed("a@x", i as Millis * 1000);
        }
        assert_eq!(t.check("a@x", 5_000), Err(WINDOW_MS - 5_000));
        assert!(t.check("b@x", 5_000).is_ok(), "per email");
        assert!(t.check("a@x", WINDOW_MS).is_ok(), "the oldest failure left the window");
        t.succeeded("a@x");
        assert!(t.check("a@x", 6_000).is_ok(), "success clears");
    }

    #[tokio::test]
    async fn counts_on_the_bus_and_hashes_the_email() {
        let bus = switchboard_bus::MemoryBus::new();
        let t = LoginThrottle::default();
        for _ in 0..MAX_FAILURES {
            assert!(t.check(&bus, "a@x", 0).await.is_ok());
            t.failed(&bus, "a@x", 0).await;
        }
        let wait = t.check(&bus, "a@x", 0).await.expect_err("locked");
        assert!(wait > WINDOW_MS - 60_000 && wait <= WINDOW_MS, "{wait}");
        assert_eq!(
            bus.hit_count(&counter_key("a@x")).await.expect("count").0,
            MAX_FAILURES as u64,
            "counted on the bus"
        );
        assert!(!counter_key("a@x").contains("a@x"), "no address in the key");
        t.succeeded(&bus, "a@x").await;
        assert!(t.check(&bus, "a@x", 0).await.is_ok(), "success clears");
    }
}
