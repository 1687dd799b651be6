//! The wait before retrying after a failed session or method call.
//!
//! A.5.3: "When retrying an unsuccessful method call, the CPE SHOULD use an
//! exponential back-off algorithm in determining the retry interval." The
//! n-th consecutive failure waits at least `base × 2^(n-1)`, capped at
//! `max`, plus a random extra of up to 50 % of that, so that many CPEs that
//! failed together (an ACS outage) do not retry in lock-step. With the
//! agent's defaults (base 5 s, max 2560 s) the minimum waits are 5, 10, 20,
//! ... 2560 s.
//!
//! [`random_wait`] draws the extra uniformly over the whole window (to the
//! nanosecond).

use std::time::Duration;

use crate::random::{self, RandomError};

/// The wait for failure number `failures` (1 = the first) at a given point
/// of the jitter window: `jitter_unit` 0 is the window's start, 1 its end
/// (clamped to that).
pub fn backoff(base: Duration, max: Duration, failures: u32, jitter_unit: f64) -> Duration {
    let exp = 2f64.powi(failures.saturating_sub(1).min(30) as i32);
    let d = (base.as_secs_f64() * exp).min(max.as_secs_f64());
    Duration::from_secs_f64(d * (1.0 + 0.5 * jitter_unit.clamp(0.0, 1.0)))
}

/// The shortest and the longest wait for failure number `failures`.
pub fn window(base: Duration, max: Duration, failures: u32) -> (Duration, Duration) {
    (backoff(base, max, failures, 0.0), backoff(base, max, failures, 1.0))
}

/// A wait drawn uniformly from the whole [`window`].
pub fn random_wait(base: Duration, max: Duration, failures: u32) -> Result<Duration, RandomError> {
    let (lo, hi) = window(base, max, failures);
    let extra = random::uniform(0..=nanos(hi - lo))?;
    Ok(lo + Duration::from_nanos(extra))
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(5);
        let m = Duration::from_secs(60);
        assert_eq!(backoff(b, m, 1, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(b, m, 2, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(b, m, 3, 0.0), Duration::from_secs(20));
        assert_eq!(backoff(b, m, 10, 0.0), Duration::from_secs(60));
        assert_eq!(backoff(b, m, 1, 1.0), Duration::from_secs_f64(7.5));
        assert_eq!(backoff(b, m, u32::MAX, 0.0), Duration::from_secs(60));
        assert_eq!(window(b, m, 2), (Duration::from_secs(10), Duration::from_secs(15)));
        assert_eq!(window(b, m, 0), window(b, m, 1), "no failure yet counts as the first");
    }

    const BUCKETS: usize = 10;

    /// Whether `samples` spread over the whole `[lo, hi]`: every tenth of
    /// the window holds between 7 % and 13 % of them (uniform: 10 %), and
    /// nothing falls outside.
    fn spread_over_window(samples: &[Duration], lo: Duration, hi: Duration) -> Result<(), String> {
        let mut counts = [0usize; BUCKETS];
        let width = (hi - lo).as_secs_f64();
        for s in samples {
            if *s < lo || *s > hi {
                return Err(format!("{s:?} outside [{lo:?}, {hi:?}]"));
            }
            let i = (((*s - lo).as_secs_f64() / width) * BUCKETS as f64) as usize;
            counts[i.min(BUCKETS - 1)] += 1;
        }
        let n = samples.len() as f64;
        if counts.iter().all(|c| (0.07 * n..=0.13 * n).contains(&(*c as f64))) {
            Ok(())
        } else {
            Err(format!("uneven: {counts:?}"))
        }
    }

    #[test]
    fn jitter_covers_the_whole_window() {
        const N: usize = 20_000;
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(2560));
        for failures in [1, 4, 12] {
            let (lo, hi) = window(base, max, failures);
            let draws: Vec<Duration> = (0..N).map(|_| random_wait(base, max, failures).unwrap()).collect();
            // Expected 2,000 per bucket, standard deviation ~42: the 1,400
            // ..2,600 band is over 14 deviations wide.
            spread_over_window(&draws, lo, hi).unwrap_or_else(|e| panic!("failure {failures}: {e}"));
            // Both ends of the window are reached (the first and the last
            // hundredth).
            let step = (hi - lo) / 100;
            assert!(draws.iter().any(|d| *d < lo + step) && draws.iter().any(|d| *d > hi - step), "failure {failures}");
        }

        // The check is able to fail: the jitter the agent used to draw (the
        // first character of a random hex string, % 100) takes 16 values,
        // 0.00-0.02, 0.48-0.57 and 0.97-0.99, leaving most tenths of the
        // window empty.
        let old: Vec<Duration> = (0..N)
            .map(|_| {
                let jitter = f64::from(random::hex_secret(16).unwrap().as_bytes()[0] % 100) / 100.0;
                backoff(base, max, 1, jitter)
            })
            .collect();
        let (lo, hi) = window(base, max, 1);
        assert!(spread_over_window(&old, lo, hi).is_err());
    }
}
