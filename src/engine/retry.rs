//! When to try a failed step again: exponential backoff (backon's schedule) with full jitter,
//! bounded by a number of attempts and by the rotation's deadline.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Tries of one phase before giving up (the first try included).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(30 * 60),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `failures` (1 = after the first failure), or `None` when
    /// the attempts are used up. Full jitter: uniform in [0, exponential delay], so many
    /// rotations failing together do not retry together.
    pub fn delay(&self, failures: u32) -> Option<Duration> {
        if failures >= self.max_attempts {
            return None;
        }
        let ceiling = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(failures.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay);
        Some(ceiling.mul_f64(fastrand::f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_jittered_and_run_out() {
        let policy = RetryPolicy {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            max_attempts: 6,
        };
        for _ in 0..200 {
            assert!(policy.delay(1).unwrap() <= Duration::from_secs(1));
            assert!(policy.delay(3).unwrap() <= Duration::from_secs(4));
            assert!(policy.delay(5).unwrap() <= Duration::from_secs(8));
        }
        let spread: std::collections::BTreeSet<_> = (0..50)
            .map(|_| policy.delay(4).unwrap().as_millis())
            .collect();
        assert!(spread.len() > 10, "full jitter spreads retries: {spread:?}");
        assert_eq!(policy.delay(6), None);
    }
}
