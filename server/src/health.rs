//! Provider health per inbox, as this node sees it: recent send outcomes and latency, the last
//! error, and a circuit breaker that stops hammering a platform that keeps failing.
//!
//! Breaker states: `closed` (send normally) → after `FAILURES_TO_OPEN` consecutive transient
//! failures → `open` for a cool-down (sends are deferred without calling the platform, and the
//! outbox reschedules them for when it ends) → `half_open` (one probe send is let through) →
//! success closes it, failure opens it again with the cool-down doubled (capped).
//! Permanent failures (a blocked user, a bad chat id) say nothing about the provider and do not
//! count.
//!
//! Per node and in memory: each node learns a provider's health from its own sends, which is
//! what its own breaker needs; nothing here has to survive a restart. The view is exposed in
//! `/readyz` detail and `GET /api/v1/supervisor/channels`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use switchboard_core::ids::InboxId;
use switchboard_core::time::Millis;
use utoipa::ToSchema;

/// Consecutive transient failures that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 5;
/// First cool-down; doubles on each failed probe up to `MAX_COOL_DOWN_MS`.
pub const COOL_DOWN_MS: Millis = 30_000;
pub const MAX_COOL_DOWN_MS: Millis = 300_000;
/// Outcomes kept for the success rate and latency.
const WINDOW: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Default)]
struct InboxHealth {
    recent: VecDeque<(bool, Millis)>,
    consecutive_failures: u32,
    open_until: Option<Millis>,
    cool_down: Millis,
    probe_in_flight: bool,
    last_error: Option<(Millis, String)>,
    /// The inbox's `settings.fallback_inbox_id` as last seen by a send.
    fallback: Option<InboxId>,
    /// Replies of this inbox delivered by its fallback (this node, since start).
    sent_via_fallback: u64,
}

/// What a supervisor sees for one inbox.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthView {
    pub inbox_id: InboxId,
    pub state: BreakerState,
    /// Share of the last sends that succeeded; `null` before any send.
    pub success_rate: Option<f64>,
    pub mean_latency_ms: Option<f64>,
    pub sends_observed: usize,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<Millis>,
    pub open_until: Option<Millis>,
    /// The inbox that delivers this inbox's replies while its circuit is open, if configured.
    pub fallback_inbox_id: Option<InboxId>,
    /// True while the circuit is open and a fallback is configured: replies go out there.
    pub fallback_active: bool,
    /// Replies of this inbox that its fallback delivered (this node, since it started).
    pub sent_via_fallback: u64,
}

#[derive(Debug, Default)]
pub struct ChannelHealth {
    inboxes: Mutex<HashMap<InboxId, InboxHealth>>,
}

impl ChannelHealth {
    /// May this node send through `inbox` now? `Err(ms)` means the breaker is open: retry in
    /// `ms`. In `half_open`, exactly one caller gets `Ok` (the probe) until it reports back.
    pub fn permit(&self, inbox: InboxId, now: Millis) -> Result<(), Millis> {
        let Ok(mut all) = self.inboxes.lock() else { return Ok(()) };
        let h = all.entry(inbox).or_default();
        match h.open_until {
            Some(until) if now < until => Err(until - now),
            Some(_) if h.probe_in_flight => Err(1_000),
            Some(_) => {
                h.probe_in_flight = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Records a send's outcome. `transient_failure` is a provider-side failure (timeout, 5xx,
    /// throttling); `permanent` failures are recorded as errors but do not move the breaker.
    pub fn record(&self, inbox: InboxId, now: Millis, latency_ms: Millis, outcome: SendOutcome<'_>) {
        let Ok(mut all) = self.inboxes.lock() else { return };
        let h = all.entry(inbox).or_default();
        let ok = matches!(outcome, SendOutcome::Ok);
        h.recent.push_back((ok, latency_ms));
        while h.recent.len() > WINDOW {
            h.recent.pop_front();
        }
        let was_probe = std::mem::take(&mut h.probe_in_flight);
        match outcome {
            SendOutcome::Ok => {
                h.consecutive_failures = 0;
                h.open_until = None;
                h.cool_down = 0;
            }
            SendOutcome::Transient(e) => {
                h.last_error = Some((now, e.to_string()));
                h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                if was_probe || h.consecutive_failures >= FAILURES_TO_OPEN {
                    h.cool_down = if was_probe { (h.cool_down * 2).clamp(COOL_DOWN_MS, MAX_COOL_DOWN_MS) } else { COOL_DOWN_MS };
                    h.open_until = Some(now + h.cool_down);
                }
            }
            SendOutcome::Permanent(e) => h.last_error = Some((now, e.to_string())),
        }
    }

    pub fn view(&self, inbox: InboxId, now: Millis) -> HealthView {
        let all = self.inboxes.lock().ok();
        let h = all.as_ref().and_then(|a| a.get(&inbox));
        let n = h.map_or(0, |h| h.recent.len());
        let (successes, latency): (usize, Millis) =
            h.map_or((0, 0), |h| h.recent.iter().fold((0, 0), |(s, l), (ok, ms)| (s + usize::from(*ok), l + ms)));
        let state = match h.and_then(|h| h.open_until) {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        };
        HealthView {
            inbox_id: inbox,
            state,
            success_rate: (n > 0).then(|| successes as f64 / n as f64),
            mean_latency_ms: (n > 0).then(|| latency as f64 / n as f64),
            sends_observed: n,
            consecutive_failures: h.map_or(0, |h| h.consecutive_failures),
            last_error: h.and_then(|h| h.last_error.as_ref().map(|e| e.1.clone())),
            last_error_at: h.and_then(|h| h.last_error.as_ref().map(|e| e.0)),
            open_until: h.and_then(|h| h.open_until),
            fallback_inbox_id: h.and_then(|h| h.fallback),
            fallback_active: state == BreakerState::Open && h.is_some_and(|h| h.fallback.is_some()),
            sent_via_fallback: h.map_or(0, |h| h.sent_via_fallback),
        }
    }

    /// Remembers the inbox's configured fallback (shown in its health view).
    pub fn note_fallback(&self, inbox: InboxId, fallback: Option<InboxId>) {
        if let Ok(mut all) = self.inboxes.lock() {
            all.entry(inbox).or_default().fallback = fallback;
        }
    }

    /// Counts a reply of `inbox` that its fallback delivered.
    pub fn record_via_fallback(&self, inbox: InboxId) {
        if let Ok(mut all) = self.inboxes.lock() {
            let h = all.entry(inbox).or_default();
            h.sent_via_fallback = h.sent_via_fallback.saturating_add(1);
        }
    }

    /// Gives back a half-open probe permit that was not used (the send was deferred before
    /// reaching the platform), so the next send can probe.
    pub fn release_probe(&self, inbox: InboxId) {
        if let Ok(mut all) = self.inboxes.lock() {
            if let Some(h) = all.get_mut(&inbox) {
                h.probe_in_flight = false;
            }
        }
    }

    /// Inboxes this node has sent through.
    pub fn known(&self) -> Vec<InboxId> {
        self.inboxes.lock().map(|a| a.keys().copied().collect()).unwrap_or_default()
    }
}

pub enum SendOutcome<'a> {
    Ok,
    Transient(&'a str),
    Permanent(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    const INBOX: InboxId = InboxId(7);

    fn fail(h: &ChannelHealth, now: Millis) {
        h.record(INBOX, now, 10, SendOutcome::Transient("HTTP 503"));
    }

    #[test]
    fn opens_after_consecutive_failures_and_defers_sends() {
        let h = ChannelHealth::default();
        for i in 0..FAILURES_TO_OPEN - 1 {
            assert!(h.permit(INBOX, i64::from(i)).is_ok());
            fail(&h, i64::from(i));
        }
        assert_eq!(h.view(INBOX, 10).state, BreakerState::Closed);
        fail(&h, 10);
        assert_eq!(h.view(INBOX, 11).state, BreakerState::Open);
        assert_eq!(h.permit(INBOX, 11), Err(COOL_DOWN_MS - 1));
        assert_eq!(h.view(INBOX, 11).last_error.as_deref(), Some("HTTP 503"));
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_on_success() {
        let h = ChannelHealth::default();
        for i in 0..FAILURES_TO_OPEN {
            fail(&h, i64::from(i));
        }
        let after = 10 + COOL_DOWN_MS;
        assert_eq!(h.view(INBOX, after).state, BreakerState::HalfOpen);
        assert!(h.permit(INBOX, after).is_ok(), "the probe");
        assert!(h.permit(INBOX, after).is_err(), "only one probe at a time");
        h.record(INBOX, after + 1, 5, SendOutcome::Ok);
        assert_eq!(h.view(INBOX, after + 2).state, BreakerState::Closed);
        assert!(h.permit(INBOX, after + 2).is_ok());
    }

    #[test]
    fn an_unused_probe_is_given_back_and_fallbacks_show_in_the_view() {
        let h = ChannelHealth::default();
        h.note_fallback(INBOX, Some(InboxId(9)));
        for i in 0..FAILURES_TO_OPEN {
            fail(&h, i64::from(i));
        }
        let open = h.view(INBOX, 20);
        assert!(open.fallback_active && open.fallback_inbox_id == Some(InboxId(9)));
        h.record_via_fallback(INBOX);
        assert_eq!(h.view(INBOX, 20).sent_via_fallback, 1);
        let after = 10 + COOL_DOWN_MS;
        assert!(h.permit(INBOX, after).is_ok(), "the probe");
        assert!(h.permit(INBOX, after).is_err());
        // The send was deferred (rate limit) before reaching the platform: the probe comes back.
        h.release_probe(INBOX);
        assert!(h.permit(INBOX, after).is_ok(), "another send may probe");
        assert!(!h.view(INBOX, after).fallback_active, "half-open: the inbox itself is tried again");
    }

    #[test]
    fn a_failed_probe_doubles_the_cool_down_and_permanent_errors_do_not_count() {
        let h = ChannelHealth::default();
        for i in 0..FAILURES_TO_OPEN {
            fail(&h, i64::from(i));
        }
        let probe_at = 10 + COOL_DOWN_MS;
        assert!(h.permit(INBOX, probe_at).is_ok());
        fail(&h, probe_at);
        assert_eq!(h.view(INBOX, probe_at).open_until, Some(probe_at + 2 * COOL_DOWN_MS));

        let other = InboxId(8);
        for i in 0..20 {
            h.record(other, i, 1, SendOutcome::Permanent("chat not found"));
        }
        assert_eq!(h.view(other, 30).state, BreakerState::Closed);
        assert_eq!(h.view(other, 30).success_rate, Some(0.0));
    }
}
