//! Steady-state queueing formulas for a pool of identical servers: Erlang B, Erlang C (M/M/c)
//! and Erlang A (M/M/c+M, customers who give up).
//!
//! This module owns the numbers the router's ETAs and staffing advice are checked against. It
//! does no IO and holds no state beyond the values it returns; the simulator in [`crate::des`]
//! is the independent check that these formulas describe the router's dispatch rule.
//!
//! # Units and servers
//! Rates are per second (any unit works if all agree): `arrival_rate` λ, `service_rate`
//! μ = 1 / mean handle time, `patience_rate` θ = 1 / mean patience. `servers` is
//! c = agents × slots-per-agent: an agent who may hold m chats at once counts as m servers
//! ([`servers`]). That treats every slot as an independent server whose handle time does not
//! depend on how many other chats its agent holds — an approximation that ignores multitasking
//! slowdown; with a measured handle time *per concurrent chat* it is the usual one.
//!
//! # Methods
//! * **Erlang C** goes through the Erlang B recursion `B(0) = 1`,
//!   `B(k) = a·B(k−1) / (k + a·B(k−1))` with a = λ/μ, then `C = c·B / (c − a·(1 − B))`.
//!   Every step stays in [0, 1], so it neither overflows (a^c / c! would for c ≳ 170) nor
//!   cancels, for any c.
//! * **Erlang A** computes the birth–death stationary distribution directly: births at λ, deaths
//!   at μ·min(n, c) + θ·max(n − c, 0). The chain is built in log space from n = 0 and truncated
//!   once n ≥ c, the ratio π(n+1)/π(n) is below one and π(n) is below e^−40 of its peak (the
//!   dropped tail is then under ~1e−15 of the mass for any load this crate is meant for). With
//!   π in hand and PASTA (Poisson arrivals see the stationary state), an arrival that finds n ≥ c
//!   customers joins the queue at position k = n − c + 1. At position j the line moves when a
//!   server frees (rate cμ) or one of the j − 1 customers ahead gives up ((j − 1)θ), and the
//!   customer itself gives up at rate θ. Hence, with a = cμ:
//!   - P(served | k) = ∏ (a + (j−1)θ)/(a + jθ) = a / (a + kθ),
//!   - E[W · 1{served} | k] = a/(a + kθ) · Σ_{j=1..k} 1/(a + jθ),
//!   - E[W | k] (time spent in queue, whether served or not) = k / (a + kθ).
//!
//!   The service level P(served and W ≤ t | k) is a transient probability of that pure-death
//!   chain; it is computed by uniformisation (Poisson-weighted steps of the embedded chain,
//!   summed to 12 standard deviations past the mean), which is exact up to rounding. This is
//!   the truncated-chain route the Garnett–Mandelbaum–Reiman (2002) closed forms (incomplete
//!   gamma functions) also evaluate; it is simpler to get right and fast for c in the thousands.
//!
//! # Definitions shared with the simulator
//! * `prob_wait`: share of arrivals that find every server busy and must queue.
//! * `asa` / `asa_served`: mean wait of *answered* customers, counting the zero waits of those
//!   answered at once.
//! * service level at t: share of **all** arrivals that are answered after waiting at most t
//!   (abandoned customers count as misses, however early they left). Without abandonment this is
//!   P(W ≤ t) = 1 − C·e^{−(cμ−λ)t}.
//! * `prob_abandon`: share of all arrivals that give up before being answered.
use serde::Serialize;
use thiserror::Error;

/// Why a model could not be evaluated.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ModelError {
    /// A rate or time was not a finite number in its allowed range.
    #[error("{name} must be finite and {requirement}, got {value}")]
    InvalidParameter { name: &'static str, requirement: &'static str, value: f64 },
    /// `servers` was zero.
    #[error("at least one server is needed")]
    NoServers,
    /// Without abandonment the queue grows without bound when λ ≥ cμ.
    #[error("unstable: {traffic} erlangs offered to {servers} servers with no abandonment")]
    Unstable { traffic: f64, servers: u32 },
    /// The Erlang A chain would need more states than the crate is willing to allocate.
    #[error("the truncated state space would exceed {max} states")]
    StateSpaceTooLarge { max: usize },
}

/// Upper bound on the Erlang A truncation (80 MB of `f64`).
const MAX_STATES: usize = 10_000_000;
/// Truncate the Erlang A chain once π(n) < e^−40 · max π.
const LOG_TRUNCATION: f64 = 40.0;

/// Servers in the queueing model for `agents` agents who each hold up to `slots_per_agent`
/// conversations at once (see the module docs for what this approximation ignores).
pub fn servers(agents: u32, slots_per_agent: u32) -> u32 {
    agents.saturating_mul(slots_per_agent)
}

fn positive(name: &'static str, value: f64) -> Result<f64, ModelError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ModelError::InvalidParameter { name, requirement: "positive", value })
    }
}

fn non_negative(name: &'static str, value: f64) -> Result<f64, ModelError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(ModelError::InvalidParameter { name, requirement: "non-negative", value })
    }
}

/// Erlang B blocking probability for `traffic` erlangs on `servers` servers, by the stable
/// recursion `B(k) = a·B(k−1) / (k + a·B(k−1))`.
pub fn erlang_b(traffic: f64, servers: u32) -> f64 {
    let mut b = 1.0;
    for k in 1..=servers {
        let ab = traffic * b;
        b = ab / (f64::from(k) + ab);
    }
    b
}

/// Erlang C from an Erlang B value for the same traffic and server count.
fn erlang_c_from_b(traffic: f64, servers: u32, b: f64) -> f64 {
    let c = f64::from(servers);
    c * b / (c - traffic * (1.0 - b))
}

/// The M/M/c queue (Erlang C): Poisson arrivals, exponential handle times, `servers` servers,
/// one FIFO queue, nobody gives up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErlangC {
    pub arrival_rate: f64,
    pub service_rate: f64,
    pub servers: u32,
    /// Offered load a = λ/μ in erlangs.
    pub traffic: f64,
    /// Server occupancy ρ = λ/(cμ).
    pub occupancy: f64,
    /// Probability that an arrival has to wait (the Erlang C value).
    pub prob_wait: f64,
    /// Average speed of answer: E[W] = C / (cμ − λ).
    pub asa: f64,
    /// E[W | W > 0] = 1 / (cμ − λ): the expected wait of someone who had to queue.
    pub mean_wait_if_waiting: f64,
    /// Mean number waiting, λ·E[W] (Little's law).
    pub mean_queue_len: f64,
}

impl ErlangC {
    /// Evaluates M/M/c. Fails unless λ > 0, μ > 0, c ≥ 1 and λ < cμ.
    pub fn new(arrival_rate: f64, service_rate: f64, servers: u32) -> Result<Self, ModelError> {
        let lambda = positive("arrival_rate", arrival_rate)?;
        let mu = positive("service_rate", service_rate)?;
        if servers == 0 {
            return Err(ModelError::NoServers);
        }
        let traffic = lambda / mu;
        let capacity = f64::from(servers) * mu;
        if lambda >= capacity {
            return Err(ModelError::Unstable { traffic, servers });
        }
        let prob_wait = erlang_c_from_b(traffic, servers, erlang_b(traffic, servers));
        let drain = capacity - lambda;
        let asa = prob_wait / drain;
        Ok(Self {
            arrival_rate: lambda,
            service_rate: mu,
            servers,
            traffic,
            occupancy: lambda / capacity,
            prob_wait,
            asa,
            mean_wait_if_waiting: 1.0 / drain,
            mean_queue_len: lambda * asa,
        })
    }

    /// P(W > t) = C · e^{−(cμ−λ)t}.
    pub fn prob_wait_exceeds(&self, t: f64) -> f64 {
        if t < 0.0 {
            return 1.0;
        }
        let drain = f64::from(self.servers) * self.service_rate - self.arrival_rate;
        self.prob_wait * (-drain * t).exp()
    }

    /// Service level: P(W ≤ t) = 1 − C · e^{−(cμ−λ)t} (every arrival is eventually answered).
    pub fn service_level(&self, t: f64) -> f64 {
        if t < 0.0 {
            return 0.0;
        }
        1.0 - self.prob_wait_exceeds(t)
    }
}

/// Shorthand for [`ErlangC::new`].
pub fn erlang_c(arrival_rate: f64, service_rate: f64, servers: u32) -> Result<ErlangC, ModelError> {
    ErlangC::new(arrival_rate, service_rate, servers)
}

/// The smallest server count whose Erlang C service level at `threshold` reaches `target`
/// (0 < target < 1): the classic staffing question. Walks c upwards from ⌊a⌋ + 1 carrying the
/// Erlang B recursion along, so the whole search is O(answer).
pub fn servers_for_service_level(
    arrival_rate: f64,
    service_rate: f64,
    threshold: f64,
    target: f64,
) -> Result<u32, ModelError> {
    let lambda = positive("arrival_rate", arrival_rate)?;
    let mu = positive("service_rate", service_rate)?;
    non_negative("threshold", threshold)?;
    if !(target > 0.0 && target < 1.0) {
        return Err(ModelError::InvalidParameter { name: "target", requirement: "in (0, 1)", value: target });
    }
    let traffic = lambda / mu;
    let mut b = 1.0;
    let mut c: u32 = 0;
    loop {
        c = c.checked_add(1).ok_or(ModelError::StateSpaceTooLarge { max: u32::MAX as usize })?;
        let ab = traffic * b;
        b = ab / (f64::from(c) + ab);
        let capacity = f64::from(c) * mu;
        if capacity <= lambda {
            continue;
        }
        let prob_wait = erlang_c_from_b(traffic, c, b);
        let sl = 1.0 - prob_wait * (-(capacity - lambda) * threshold).exp();
        if sl >= target {
            return Ok(c);
        }
    }
}

/// The M/M/c+M queue (Erlang A): as [`ErlangC`], plus each waiting customer gives up after an
/// exponential patience with rate θ. Stable for any load when θ > 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErlangA {
    pub arrival_rate: f64,
    pub service_rate: f64,
    pub patience_rate: f64,
    pub servers: u32,
    /// Probability that an arrival finds every server busy and queues.
    pub prob_wait: f64,
    /// Probability that an arrival gives up before being answered.
    pub prob_abandon: f64,
    /// Mean wait of answered customers (zero waits included): the ASA a wallboard shows.
    pub asa_served: f64,
    /// Mean time in queue over all arrivals, answered or not (= mean queue length / λ).
    pub mean_wait_all: f64,
    /// Time-average number waiting.
    pub mean_queue_len: f64,
    /// Time-average share of servers busy.
    pub utilisation: f64,
    /// Number of states kept after truncation.
    pub states: usize,
    /// `join_position[k − 1]` = P(an arrival joins the queue k-th in line).
    #[serde(skip)]
    join_position: Vec<f64>,
}

impl ErlangA {
    /// Evaluates M/M/c+M. `patience_rate` may be 0 (then this is Erlang C by another route and
    /// needs λ < cμ).
    pub fn new(arrival_rate: f64, service_rate: f64, servers: u32, patience_rate: f64) -> Result<Self, ModelError> {
        let lambda = positive("arrival_rate", arrival_rate)?;
        let mu = positive("service_rate", service_rate)?;
        let theta = non_negative("patience_rate", patience_rate)?;
        if servers == 0 {
            return Err(ModelError::NoServers);
        }
        let c = servers as usize;
        let capacity = f64::from(servers) * mu;
        if theta == 0.0 && lambda >= capacity {
            return Err(ModelError::Unstable { traffic: lambda / mu, servers });
        }
        let death = |n: usize| -> f64 {
            if n <= c {
                n as f64 * mu
            } else {
                capacity + (n - c) as f64 * theta
            }
        };

        // log π(n) up to a constant, grown until the tail is negligible.
        let mut log_pi: Vec<f64> = vec![0.0];
        let mut peak = 0.0_f64;
        loop {
            let n = log_pi.len() - 1;
            let ratio = lambda / death(n + 1);
            let current = log_pi[n];
            if n >= c && ratio < 1.0 && current < peak - LOG_TRUNCATION {
                break;
            }
            if log_pi.len() >= MAX_STATES {
                return Err(ModelError::StateSpaceTooLarge { max: MAX_STATES });
            }
            let next = current + ratio.ln();
            peak = peak.max(next);
            log_pi.push(next);
        }
        let weights: Vec<f64> = log_pi.iter().map(|l| (l - peak).exp()).collect();
        let total: f64 = weights.iter().sum();
        let pi: Vec<f64> = weights.iter().map(|w| w / total).collect();

        let join_position: Vec<f64> = pi[c..].to_vec();
        let prob_wait: f64 = join_position.iter().sum();
        let mut prob_abandon = 0.0;
        let mut served_wait = 0.0;
        let mut mean_wait_all = 0.0;
        let mut harmonic = 0.0; // Σ_{j=1..k} 1/(a + jθ)
        for (index, p) in join_position.iter().enumerate() {
            let k = (index + 1) as f64;
            let leave = capacity + k * theta;
            harmonic += 1.0 / leave;
            prob_abandon += p * k * theta / leave;
            served_wait += p * capacity / leave * harmonic;
            mean_wait_all += p * k / leave;
        }
        let mut mean_queue_len = 0.0;
        let mut busy = 0.0;
        for (n, p) in pi.iter().enumerate() {
            mean_queue_len += p * n.saturating_sub(c) as f64;
            busy += p * n.min(c) as f64;
        }
        let served = 1.0 - prob_abandon;
        Ok(Self {
            arrival_rate: lambda,
            service_rate: mu,
            patience_rate: theta,
            servers,
            prob_wait,
            prob_abandon,
            asa_served: if served > 0.0 { served_wait / served } else { f64::INFINITY },
            mean_wait_all,
            mean_queue_len,
            utilisation: busy / f64::from(servers),
            states: pi.len(),
            join_position,
        })
    }

    /// Service level: the share of all arrivals answered after waiting at most `t` (abandoned
    /// customers count as misses). Computed by uniformisation of the tagged customer's
    /// pure-death chain (see the module docs); cost is O(queue states × (Λt + 12√(Λt))).
    pub fn service_level(&self, t: f64) -> f64 {
        let answered_at_once = 1.0 - self.prob_wait;
        if t.is_nan() || t < 0.0 {
            return 0.0;
        }
        if t == 0.0 || self.join_position.is_empty() {
            return answered_at_once;
        }
        let capacity = f64::from(self.servers) * self.service_rate;
        let theta = self.patience_rate;
        let positions = self.join_position.len();
        // Fastest event rate of any position: the uniformisation rate.
        let big = capacity + positions as f64 * theta;
        // move_rate[i]: rate at which position i + 1 moves down one place (or is served, i = 0).
        let move_prob: Vec<f64> = (0..positions).map(|i| (capacity + i as f64 * theta) / big).collect();
        // leave_prob[i]: probability one step takes the customer out of position i + 1.
        let leave_prob: Vec<f64> = (0..positions).map(|i| (capacity + (i + 1) as f64 * theta) / big).collect();

        let mean = big * t;
        let ln_mean = mean.ln();
        let last_step = (mean + 12.0 * mean.sqrt() + 20.0).ceil() as u64;
        let mut mass = self.join_position.clone();
        let mut served = 0.0;
        let mut weight_sum = (-mean).exp();
        let mut served_by_t = 0.0; // step 0 has served nothing yet
        let mut ln_factorial = 0.0;
        for step in 1..=last_step {
            served += mass[0] * move_prob[0];
            for i in 0..positions {
                let inflow = if i + 1 < positions { mass[i + 1] * move_prob[i + 1] } else { 0.0 };
                mass[i] = mass[i] * (1.0 - leave_prob[i]) + inflow;
            }
            let n = step as f64;
            ln_factorial += n.ln();
            let weight = (-mean + n * ln_mean - ln_factorial).exp();
            weight_sum += weight;
            served_by_t += weight * served;
        }
        // The Poisson tail beyond `last_step` is below 1e-30; credit it with the last value.
        served_by_t += (1.0 - weight_sum).max(0.0) * served;
        answered_at_once + served_by_t
    }
}

/// Shorthand for [`ErlangA::new`].
pub fn erlang_a(arrival_rate: f64, service_rate: f64, servers: u32, patience_rate: f64) -> Result<ErlangA, ModelError> {
    ErlangA::new(arrival_rate, service_rate, servers, patience_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance * expected.abs().max(1e-300)
    }

    #[test]
    fn erlang_b_matches_direct_formula() {
        // B(a, c) = (a^c / c!) / Σ_{k≤c} a^k / k!, a = 5, c = 7.
        let a: f64 = 5.0;
        let mut term = 1.0;
        let mut sum = 1.0;
        for k in 1..=7 {
            term *= a / f64::from(k);
            sum += term;
        }
        assert!(close(erlang_b(a, 7), term / sum, 1e-12));
    }

    #[test]
    fn mm1_closed_forms() -> Result<(), ModelError> {
        // M/M/1: P(wait) = ρ, E[W] = ρ/(μ − λ), P(W > t) = ρ·e^{−(μ−λ)t}.
        let (lambda, mu) = (0.75, 1.0);
        let q = erlang_c(lambda, mu, 1)?;
        assert!(close(q.prob_wait, 0.75, 1e-12));
        assert!(close(q.asa, 0.75 / 0.25, 1e-12));
        assert!(close(q.service_level(2.0), 1.0 - 0.75 * (-0.5_f64).exp(), 1e-12));
        assert!(close(q.mean_queue_len, 0.75 * 0.75 / 0.25, 1e-12));
        Ok(())
    }

    #[test]
    fn mm2_closed_form() -> Result<(), ModelError> {
        // M/M/2 with ρ = λ/(2μ): P(wait) = 2ρ²/(1 + ρ).
        let q = erlang_c(1.6, 1.0, 2)?;
        let rho: f64 = 0.8;
        assert!(close(q.prob_wait, 2.0 * rho * rho / (1.0 + rho), 1e-12));
        Ok(())
    }

    #[test]
    fn textbook_examples_against_exact_rational_values() -> Result<(), ModelError> {
        // 360 calls per half hour, 4-minute handle time, 55 agents, 15 s target (the worked
        // example used by many Erlang C tutorials). The reference values were computed
        // independently with exact rational arithmetic (Python `fractions`) from the textbook
        // sum formula C = (a^c/c! · c/(c−a)) / (Σ_{k<c} a^k/k! + a^c/c! · c/(c−a)).
        let q = erlang_c(360.0 / 1800.0, 1.0 / 240.0, 55)?;
        assert!(close(q.traffic, 48.0, 1e-12));
        assert!(close(q.prob_wait, 0.238_700_936_378_009_2, 1e-10));
        assert!(close(q.asa, 8.184_032_104_388_887, 1e-9));
        assert!(close(q.service_level(15.0), 0.845_883_092_170_580_3, 1e-9));
        // One call a minute, 3-minute handle time, 5 agents (a common exercise): C = 81/343.
        let q = erlang_c(1.0, 1.0 / 3.0, 5)?;
        assert!(close(q.prob_wait, 81.0 / 343.0, 1e-12));
        // Large pools do not overflow: a = 360 erlangs on 400 servers.
        let q = erlang_c(2.0, 1.0 / 180.0, 400)?;
        assert!(close(q.prob_wait, 0.023_286_675_770_459_44, 1e-9));
        Ok(())
    }

    #[test]
    fn staffing_finds_smallest_sufficient_pool() -> Result<(), ModelError> {
        let (lambda, mu, t, target) = (2.0, 1.0 / 180.0, 20.0, 0.8);
        let c = servers_for_service_level(lambda, mu, t, target)?;
        assert!(erlang_c(lambda, mu, c)?.service_level(t) >= target);
        assert!(erlang_c(lambda, mu, c - 1).map(|q| q.service_level(t) < target).unwrap_or(true));
        Ok(())
    }

    #[test]
    fn rejects_unstable_and_invalid_input() {
        assert!(matches!(erlang_c(2.0, 1.0, 2), Err(ModelError::Unstable { .. })));
        assert!(matches!(erlang_c(1.0, 1.0, 0), Err(ModelError::NoServers)));
        assert!(matches!(erlang_c(f64::NAN, 1.0, 2), Err(ModelError::InvalidParameter { .. })));
        assert!(matches!(erlang_a(2.0, 1.0, 2, 0.0), Err(ModelError::Unstable { .. })));
        assert!(matches!(erlang_a(1.0, 1.0, 2, -1.0), Err(ModelError::InvalidParameter { .. })));
    }

    #[test]
    fn erlang_a_tends_to_erlang_c_as_patience_grows() -> Result<(), ModelError> {
        let (lambda, mu, c) = (8.5, 1.0, 10);
        let ec = erlang_c(lambda, mu, c)?;
        for theta in [0.0, 1e-9] {
            let ea = erlang_a(lambda, mu, c, theta)?;
            assert!(close(ea.prob_wait, ec.prob_wait, 1e-6), "{theta}: {} vs {}", ea.prob_wait, ec.prob_wait);
            assert!(close(ea.asa_served, ec.asa, 1e-6));
            assert!(close(ea.mean_queue_len, ec.mean_queue_len, 1e-6));
            assert!(ea.prob_abandon < 1e-6);
            for t in [0.0, 0.1, 0.5, 2.0] {
                assert!(close(ea.service_level(t), ec.service_level(t), 1e-6), "t = {t}");
            }
        }
        Ok(())
    }

    #[test]
    fn erlang_a_with_patience_equal_to_service_is_poisson() -> Result<(), ModelError> {
        // θ = μ makes every customer in the system leave at rate μ: the count is Poisson(λ/μ).
        let (lambda, mu, c) = (6.0, 1.0, 5_u32);
        let ea = erlang_a(lambda, mu, c, mu)?;
        let mut term = (-lambda).exp();
        let mut below_c = term;
        for n in 1..c {
            term *= lambda / f64::from(n);
            below_c += term;
        }
        assert!(close(ea.prob_wait, 1.0 - below_c, 1e-10));
        Ok(())
    }

    #[test]
    fn erlang_a_is_internally_consistent() -> Result<(), ModelError> {
        // Overloaded on purpose: stable only thanks to abandonment.
        let (lambda, mu, c, theta) = (12.0, 1.0, 10, 0.5);
        let ea = erlang_a(lambda, mu, c, theta)?;
        // Little's law on the queue and on abandonment: P(ab) = θ·E[Q]/λ, E[Q] = λ·E[W_all].
        assert!(close(ea.prob_abandon, theta * ea.mean_queue_len / lambda, 1e-9));
        assert!(close(ea.mean_queue_len, lambda * ea.mean_wait_all, 1e-9));
        // Flow balance: served customers keep the servers busy.
        assert!(close(ea.utilisation, lambda * (1.0 - ea.prob_abandon) / (f64::from(c) * mu), 1e-9));
        // Service level rises with t towards the share answered.
        let (s1, s2, s_inf) = (ea.service_level(0.5), ea.service_level(2.0), ea.service_level(200.0));
        assert!(s1 < s2 && s2 < s_inf);
        assert!(close(s_inf, 1.0 - ea.prob_abandon, 1e-9));
        Ok(())
    }
}
