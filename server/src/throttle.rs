//! Login throttling: after `MAX_FAILURES` wrong passwords for one email within `WINDOW_MS`, further
//! attempts for that email are refused with 429 `too_many_attempts` (and `Retry-After`) until the
//! oldest failure leaves the window — even with the right password, so guessing cannot continue
//! by luck. A successful login clears the email's record.
//!
//! Per node and in memory: with several nodes each node counts on its own, so an attacker
//! spreading attempts over N nodes gets N× the budget (still bounded); keeping the count in
//! Redis is the follow-up. Memory is bounded by pruning stale records.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use switchboard_core::time::Millis;

pub const MAX_FAILURES: usize = 5;
pub const WINDOW_MS: Millis = 15 * 60 * 1000;
/// Above this many tracked emails, stale records are pruned on the next failure.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Millis>>>,
}

impl LoginThrottle {
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
        let t = LoginThrottle::default();
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
}
