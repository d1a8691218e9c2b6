//! Expected-wait estimates for one customer already in the queue, for the server to show as an
//! ETA. Pure arithmetic on numbers the router already knows; no clocks, no state.
//!
//! The head-of-line estimator: when every slot is busy, slots free one at a time, and with
//! exponential handle times the next completion among `c` busy slots comes after an exponential
//! time with mean `1/(c·μ)` whatever happened before (memorylessness). A customer with `k`
//! others ahead is answered at the (k + 1)-th completion, so
//!
//! ```text
//! E[wait | k ahead] = (k + 1) / (c · μ) = (k + 1) · mean_handle / c
//! ```
//!
//! exactly under M/M/c with no abandonment, and an upper bound when people ahead may give up
//! ([`estimated_wait_with_patience_secs`] accounts for that). Averaged over the positions at which
//! arrivals join, it reproduces Erlang C's E[W | W > 0] = 1/(cμ − λ).

/// Expected wait of the customer at 0-based `position` in the queue (0 = next to be answered)
/// when `busy_servers` slots are busy and handle times average `mean_handle_secs` (take μ from
/// recent handle times, e.g. a moving mean over the last hour, per concurrent chat).
///
/// Returns `f64::INFINITY` when `busy_servers` is 0: nobody is serving, so no completion will
/// free a slot (the caller should say "no agent available" rather than show a number). A
/// non-positive or NaN `mean_handle_secs` yields 0.
pub fn estimated_wait_secs(position: usize, busy_servers: usize, mean_handle_secs: f64) -> f64 {
    if busy_servers == 0 {
        return f64::INFINITY;
    }
    if mean_handle_secs.is_nan() || mean_handle_secs <= 0.0 {
        return 0.0;
    }
    (position as f64 + 1.0) * mean_handle_secs / busy_servers as f64
}

/// As [`estimated_wait_secs`], but customers ahead may give up at `patience_rate` θ per second
/// each: the line moves at rate cμ + jθ while j people are ahead, so
/// E[wait until answered or line reaches the front] = Σ_{j=0..k} 1/(cμ + jθ).
/// This is the wait *if the customer stays*; θ = 0 gives the plain estimator.
pub fn estimated_wait_with_patience_secs(
    position: usize,
    busy_servers: usize,
    mean_handle_secs: f64,
    patience_rate: f64,
) -> f64 {
    if busy_servers == 0 {
        return f64::INFINITY;
    }
    if mean_handle_secs.is_nan() || mean_handle_secs <= 0.0 {
        return 0.0;
    }
    let capacity = busy_servers as f64 / mean_handle_secs;
    let theta = if patience_rate > 0.0 { patience_rate } else { 0.0 };
    (0..=position).map(|ahead| 1.0 / (capacity + ahead as f64 * theta)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_of_line_waits_one_completion() {
        // 10 busy slots, 180 s handle: the next slot frees in 18 s on average.
        assert_eq!(estimated_wait_secs(0, 10, 180.0), 18.0);
        assert_eq!(estimated_wait_secs(4, 10, 180.0), 90.0);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(estimated_wait_secs(3, 0, 180.0).is_infinite());
        assert_eq!(estimated_wait_secs(3, 5, 0.0), 0.0);
        assert_eq!(estimated_wait_secs(3, 5, f64::NAN), 0.0);
    }

    #[test]
    fn patience_shortens_the_wait_and_reduces_to_plain() {
        let plain = estimated_wait_secs(9, 10, 180.0);
        assert!((estimated_wait_with_patience_secs(9, 10, 180.0, 0.0) - plain).abs() < 1e-9);
        assert!(estimated_wait_with_patience_secs(9, 10, 180.0, 1.0 / 60.0) < plain);
    }
}
