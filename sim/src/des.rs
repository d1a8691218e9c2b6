//! A seeded discrete-event simulator of one Switchboard queue and the router's dispatch rule.
//!
//! It owns nothing but its own clock: `f64` seconds, a binary-heap event list and a
//! [`rand::rngs::StdRng`] seeded from the config, so a seed always yields the same report. It
//! must stay free of IO and of wall-clock time.
//!
//! # What is simulated
//! * Arrivals: a Poisson process with rate `arrival_rate`.
//! * Servers: `agents × slots_per_agent` slots. Each answered conversation holds one slot for an
//!   exponential handle time with mean `mean_handle_secs`, independent of its agent's other
//!   chats (the c·m approximation of [`crate::erlang`]). Because a slot's handle time does not
//!   depend on which agent owns it, which agent gets a conversation cannot change any output, so
//!   only the pooled count of busy slots is kept.
//! * Dispatch — the router's event-driven rule: **an arrival takes a free slot at once; the
//!   moment a slot frees, the oldest waiting conversation takes it.** There is no polling delay.
//! * Patience (optional): each queued customer draws an exponential patience with mean
//!   `mean_patience_secs` and leaves if not answered by then. Event times are continuous, so
//!   ties have probability zero; if one happens, the event scheduled first runs first.
//! * Warm-up: customers arriving before `warmup_secs` are simulated but not counted, and the
//!   time averages start at `warmup_secs`. After warm-up, `measured_arrivals` customers are
//!   counted; the time averages stop at the last counted arrival, and the run continues until
//!   every counted customer has been answered or has left.
//!
//! # Definitions (the same as [`crate::erlang`])
//! * ASA: mean wait of answered customers, zero waits included.
//! * Service level at `service_level_secs`: answered within the threshold ÷ **all** counted
//!   arrivals (abandoned customers are misses).
//! * Abandonment: abandoned ÷ all counted arrivals.
//! * Mean queue length and utilisation: time averages over the measurement window.
//!
//! # Confidence intervals
//! Waits of successive customers are strongly correlated (a long queue lasts), so the report
//! carries 95 % half-widths by batch means: counted customers are split by arrival order into
//! [`BATCHES`] consecutive batches, each batch's ASA / service level / abandonment is one
//! observation, and the half-width is t(0.975, B−1) · s / √B. It is a sanity bound, not an exact
//! interval (batches are only approximately independent).
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::erlang::ModelError;

/// Join positions (0 = head of the line) for which the mean wait is reported separately.
pub const TRACKED_POSITIONS: usize = 16;
/// Number of batches for the batch-means confidence intervals.
pub const BATCHES: usize = 20;
/// Student t quantile t(0.975, BATCHES − 1).
const T_QUANTILE_19: f64 = 2.093;

/// One simulated queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimConfig {
    /// Poisson arrival rate, per second.
    pub arrival_rate: f64,
    /// Mean of the exponential handle time of one conversation in one slot, seconds.
    pub mean_handle_secs: f64,
    pub agents: u32,
    pub slots_per_agent: u32,
    /// Mean of the exponential patience; `None` = nobody gives up.
    pub mean_patience_secs: Option<f64>,
    /// Service-level threshold, seconds (e.g. 20).
    pub service_level_secs: f64,
    /// Simulated time discarded before counting, seconds.
    pub warmup_secs: f64,
    /// Arrivals counted after warm-up.
    pub measured_arrivals: u64,
    pub seed: u64,
}

/// Mean wait of answered customers who joined the queue with `ahead` others in front of them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PositionWait {
    pub ahead: usize,
    pub answered: u64,
    pub mean_wait_secs: f64,
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    pub servers: u32,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Counted arrivals that found every slot busy.
    pub queued: u64,
    pub answered_within_threshold: u64,
    pub prob_wait: f64,
    /// Mean wait of answered customers (0 when nobody was answered).
    pub asa_secs: f64,
    pub service_level: f64,
    pub abandon_rate: f64,
    /// 95 % half-widths by batch means (see the module docs); 0 when too few arrivals.
    pub asa_ci95: f64,
    pub service_level_ci95: f64,
    pub abandon_rate_ci95: f64,
    pub mean_queue_len: f64,
    pub utilisation: f64,
    /// Length of the measurement window, simulated seconds.
    pub measured_secs: f64,
    /// Events processed, warm-up included.
    pub events: u64,
    /// Mean wait of answered customers by how many were ahead when they joined (positions
    /// below [`TRACKED_POSITIONS`] that anyone was answered from).
    pub wait_by_position: Vec<PositionWait>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum EventKind {
    Arrival,
    /// A slot finishes its conversation.
    Completion,
    /// The customer holding queue ticket `ticket` runs out of patience.
    PatienceExpired {
        ticket: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Event {
    time: f64,
    /// Scheduling order: breaks ties between equal times deterministically.
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed so that `BinaryHeap` (a max-heap) pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.time.total_cmp(&self.time).then_with(|| other.seq.cmp(&self.seq))
    }
}

/// A customer in the queue. Abandoned customers stay in the deque (flagged) until they reach
/// the front, so a ticket maps to a deque index by subtraction.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    arrived: f64,
    /// Batch of a counted customer; `None` during warm-up.
    batch: Option<usize>,
    ahead: usize,
    abandoned: bool,
}

/// Mutable state of one run.
struct Run {
    config: SimConfig,
    rng: StdRng,
    heap: BinaryHeap<Event>,
    seq: u64,
    now: f64,
    servers: u32,
    busy: u32,
    queue: VecDeque<Waiting>,
    /// Ticket of `queue.front()`; tickets are issued in arrival order to queued customers.
    head_ticket: u64,
    /// Customers in `queue` who have not given up.
    live_waiting: usize,
    arrivals_open: bool,
    window_end: f64,
    unresolved_counted: u64,
    stats: Tally,
}

/// Outcome counts of one batch of counted customers (or of all of them).
#[derive(Debug, Clone, Copy, Default)]
struct Outcomes {
    offered: u64,
    answered: u64,
    abandoned: u64,
    within: u64,
    wait_sum: f64,
}

impl Outcomes {
    fn asa(&self) -> f64 {
        if self.answered > 0 {
            self.wait_sum / self.answered as f64
        } else {
            0.0
        }
    }
    fn share(&self, count: u64) -> f64 {
        if self.offered > 0 {
            count as f64 / self.offered as f64
        } else {
            0.0
        }
    }
}

/// Batch-means 95 % half-width of `metric` over `batches`.
fn half_width(batches: &[Outcomes], metric: impl Fn(&Outcomes) -> f64) -> f64 {
    let values: Vec<f64> = batches.iter().filter(|b| b.offered > 0).map(metric).collect();
    if values.len() < 2 {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    T_QUANTILE_19 * (variance / n).sqrt()
}

#[derive(Default)]
struct Tally {
    offered: u64,
    queued: u64,
    batches: [Outcomes; BATCHES],
    queue_area: f64,
    busy_area: f64,
    events: u64,
    by_position: [(u64, f64); TRACKED_POSITIONS],
}

fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    // 1 − U lies in (0, 1], so the logarithm is finite.
    let u: f64 = rng.gen();
    -(1.0 - u).ln() * mean
}

impl Run {
    fn schedule(&mut self, delay: f64, kind: EventKind) {
        self.seq += 1;
        self.heap.push(Event { time: self.now + delay, seq: self.seq, kind });
    }

    /// Moves the clock to `t`, accumulating the time averages inside the measurement window.
    fn advance(&mut self, t: f64) {
        let from = self.now.max(self.config.warmup_secs);
        let to = t.min(self.window_end);
        if to > from {
            let span = to - from;
            self.stats.queue_area += self.live_waiting as f64 * span;
            self.stats.busy_area += f64::from(self.busy) * span;
        }
        self.now = t;
    }

    /// Starts a conversation in a free slot for a customer who waited `wait` seconds.
    fn answer(&mut self, wait: f64, batch: Option<usize>, ahead: Option<usize>) {
        self.busy += 1;
        let handle = exponential(&mut self.rng, self.config.mean_handle_secs);
        self.schedule(handle, EventKind::Completion);
        if let Some(b) = batch {
            self.unresolved_counted -= 1;
            let outcomes = &mut self.stats.batches[b];
            outcomes.answered += 1;
            outcomes.wait_sum += wait;
            if wait <= self.config.service_level_secs {
                outcomes.within += 1;
            }
            if let Some(slot) = ahead.and_then(|k| self.stats.by_position.get_mut(k)) {
                slot.0 += 1;
                slot.1 += wait;
            }
        }
    }

    fn on_arrival(&mut self) {
        let mut batch = None;
        if self.now >= self.config.warmup_secs {
            // u128: offered · BATCHES cannot overflow; the quotient is < BATCHES.
            let index = u128::from(self.stats.offered) * BATCHES as u128 / u128::from(self.config.measured_arrivals);
            let b = usize::try_from(index).unwrap_or(BATCHES - 1).min(BATCHES - 1);
            batch = Some(b);
            self.stats.offered += 1;
            self.stats.batches[b].offered += 1;
            self.unresolved_counted += 1;
            if self.stats.offered >= self.config.measured_arrivals {
                self.arrivals_open = false;
                self.window_end = self.now;
            }
        }
        if self.busy < self.servers {
            self.answer(0.0, batch, None);
        } else {
            if batch.is_some() {
                self.stats.queued += 1;
            }
            let ticket = self.head_ticket + self.queue.len() as u64;
            self.queue.push_back(Waiting { arrived: self.now, batch, ahead: self.live_waiting, abandoned: false });
            self.live_waiting += 1;
            if let Some(mean) = self.config.mean_patience_secs {
                let patience = exponential(&mut self.rng, mean);
                self.schedule(patience, EventKind::PatienceExpired { ticket });
            }
        }
        if self.arrivals_open {
            let gap = exponential(&mut self.rng, 1.0 / self.config.arrival_rate);
            self.schedule(gap, EventKind::Arrival);
        }
    }

    /// Drops given-up customers from the front so the deque holds live heads only.
    fn pop_abandoned_front(&mut self) {
        while self.queue.front().is_some_and(|w| w.abandoned) {
            self.queue.pop_front();
            self.head_ticket += 1;
        }
    }

    fn on_completion(&mut self) {
        self.busy -= 1;
        // The freed slot goes to the oldest live waiting customer, now.
        self.pop_abandoned_front();
        if let Some(next) = self.queue.pop_front() {
            self.head_ticket += 1;
            self.live_waiting -= 1;
            self.answer(self.now - next.arrived, next.batch, Some(next.ahead));
        }
    }

    fn on_patience_expired(&mut self, ticket: u64) {
        // A ticket below the head was already answered.
        let Some(index) = ticket.checked_sub(self.head_ticket) else { return };
        let Some(waiting) = usize::try_from(index).ok().and_then(|i| self.queue.get_mut(i)) else { return };
        if waiting.abandoned {
            return;
        }
        waiting.abandoned = true;
        let batch = waiting.batch;
        self.live_waiting -= 1;
        if let Some(b) = batch {
            self.stats.batches[b].abandoned += 1;
            self.unresolved_counted -= 1;
        }
        self.pop_abandoned_front();
    }

    fn finish(self) -> SimReport {
        let s = &self.stats;
        let total = s.batches.iter().fold(Outcomes::default(), |acc, b| Outcomes {
            offered: acc.offered + b.offered,
            answered: acc.answered + b.answered,
            abandoned: acc.abandoned + b.abandoned,
            within: acc.within + b.within,
            wait_sum: acc.wait_sum + b.wait_sum,
        });
        let measured_secs =
            if self.window_end.is_finite() { (self.window_end - self.config.warmup_secs).max(0.0) } else { 0.0 };
        // Degenerate runs (nothing counted) report zeros rather than NaN.
        let window = if measured_secs > 0.0 { measured_secs } else { f64::INFINITY };
        SimReport {
            servers: self.servers,
            offered: total.offered,
            answered: total.answered,
            abandoned: total.abandoned,
            queued: s.queued,
            answered_within_threshold: total.within,
            prob_wait: total.share(s.queued),
            asa_secs: total.asa(),
            service_level: total.share(total.within),
            abandon_rate: total.share(total.abandoned),
            asa_ci95: half_width(&s.batches, Outcomes::asa),
            service_level_ci95: half_width(&s.batches, |b| b.share(b.within)),
            abandon_rate_ci95: half_width(&s.batches, |b| b.share(b.abandoned)),
            mean_queue_len: s.queue_area / window,
            utilisation: s.busy_area / (window * f64::from(self.servers)),
            measured_secs,
            events: s.events,
            wait_by_position: s
                .by_position
                .iter()
                .enumerate()
                .filter(|(_, &(answered, _))| answered > 0)
                .map(|(ahead, &(answered, sum))| PositionWait {
                    ahead,
                    answered,
                    mean_wait_secs: sum / answered as f64,
                })
                .collect(),
        }
    }
}

fn check_positive(name: &'static str, value: f64) -> Result<(), ModelError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ModelError::InvalidParameter { name, requirement: "positive", value })
    }
}

/// Runs one simulation. Deterministic for a given config (seed included).
///
/// Without patience and with λ ≥ c/mean_handle the queue grows without bound; the run still
/// ends (after `measured_arrivals`) but its numbers describe a transient, not a steady state.
pub fn simulate(config: &SimConfig) -> Result<SimReport, ModelError> {
    check_positive("arrival_rate", config.arrival_rate)?;
    check_positive("mean_handle_secs", config.mean_handle_secs)?;
    if let Some(patience) = config.mean_patience_secs {
        check_positive("mean_patience_secs", patience)?;
    }
    if !(config.service_level_secs.is_finite() && config.service_level_secs >= 0.0) {
        return Err(ModelError::InvalidParameter {
            name: "service_level_secs",
            requirement: "non-negative",
            value: config.service_level_secs,
        });
    }
    if !(config.warmup_secs.is_finite() && config.warmup_secs >= 0.0) {
        return Err(ModelError::InvalidParameter {
            name: "warmup_secs",
            requirement: "non-negative",
            value: config.warmup_secs,
        });
    }
    let servers = crate::erlang::servers(config.agents, config.slots_per_agent);
    if servers == 0 {
        return Err(ModelError::NoServers);
    }
    let mut run = Run {
        config: config.clone(),
        rng: StdRng::seed_from_u64(config.seed),
        heap: BinaryHeap::new(),
        seq: 0,
        now: 0.0,
        servers,
        busy: 0,
        queue: VecDeque::new(),
        head_ticket: 0,
        live_waiting: 0,
        arrivals_open: config.measured_arrivals > 0,
        window_end: f64::INFINITY,
        unresolved_counted: 0,
        stats: Tally::default(),
    };
    if run.arrivals_open {
        let first = exponential(&mut run.rng, 1.0 / config.arrival_rate);
        run.schedule(first, EventKind::Arrival);
    }
    while let Some(event) = run.heap.pop() {
        if !run.arrivals_open && run.unresolved_counted == 0 {
            break;
        }
        run.stats.events += 1;
        run.advance(event.time);
        match event.kind {
            EventKind::Arrival => run.on_arrival(),
            EventKind::Completion => run.on_completion(),
            EventKind::PatienceExpired { ticket } => run.on_patience_expired(ticket),
        }
    }
    Ok(run.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> SimConfig {
        SimConfig {
            arrival_rate: 0.5,
            mean_handle_secs: 10.0,
            agents: 3,
            slots_per_agent: 2,
            mean_patience_secs: Some(30.0),
            service_level_secs: 5.0,
            warmup_secs: 100.0,
            measured_arrivals: 5_000,
            seed,
        }
    }

    #[test]
    fn same_seed_same_report() -> Result<(), ModelError> {
        assert_eq!(simulate(&config(7))?, simulate(&config(7))?);
        assert_ne!(simulate(&config(7))?, simulate(&config(8))?);
        Ok(())
    }

    #[test]
    fn every_counted_customer_is_resolved() -> Result<(), ModelError> {
        let report = simulate(&config(1))?;
        assert_eq!(report.offered, 5_000);
        assert_eq!(report.answered + report.abandoned, report.offered);
        assert!(report.answered_within_threshold <= report.answered);
        assert!(report.queued >= report.abandoned);
        assert!(report.utilisation > 0.0 && report.utilisation <= 1.0);
        Ok(())
    }

    #[test]
    fn idle_system_never_queues() -> Result<(), ModelError> {
        // One arrival per 1000 s on 100 slots with 1 s handle times: nobody ever waits.
        let report = simulate(&SimConfig {
            arrival_rate: 0.001,
            mean_handle_secs: 1.0,
            agents: 50,
            slots_per_agent: 2,
            mean_patience_secs: None,
            measured_arrivals: 200,
            ..config(3)
        })?;
        assert_eq!(report.queued, 0);
        assert_eq!(report.asa_secs, 0.0);
        assert_eq!(report.service_level, 1.0);
        Ok(())
    }

    #[test]
    fn rejects_bad_config() {
        assert!(simulate(&SimConfig { agents: 0, ..config(1) }).is_err());
        assert!(simulate(&SimConfig { arrival_rate: 0.0, ..config(1) }).is_err());
        assert!(simulate(&SimConfig { mean_patience_secs: Some(-1.0), ..config(1) }).is_err());
    }
}
