//! Clock, latency histograms and percentiles for the load generator.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Nanoseconds since the bench process's first call: the one monotonic clock that publishers
/// stamp into payloads and receivers read, so a latency never mixes two clocks.
pub(crate) fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Sub-buckets per power of two: about 3 % resolution, enough for p50/p99.
const SUB: u64 = 32;
const BUCKETS: usize = (SUB as usize) * 60;

/// A log-linear histogram of microseconds that any number of tasks record into at once.
pub(crate) struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn record_ns(&self, ns: u64) {
        self.counts[bucket(ns / 1000)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The `q` quantile (0..=1) in milliseconds, or `None` when nothing was recorded.
    pub(crate) fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(midpoint_us(index) / 1000.0);
            }
        }
        None
    }
}

fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exp = 63 - u64::from(us.leading_zeros()); // >= 5
    let shift = exp - 5;
    let sub = (us >> shift) - SUB;
    ((SUB + shift * SUB + sub) as usize).min(BUCKETS - 1)
}

fn midpoint_us(index: usize) -> f64 {
    let index = index as u64;
    if index < SUB {
        return index as f64;
    }
    let shift = (index - SUB) / SUB;
    let sub = (index - SUB) % SUB;
    let low = (SUB + sub) << shift;
    low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
}

/// The `q` quantile of exact values (nanoseconds) in milliseconds.
pub(crate) fn quantile_exact_ms(values: &mut [u64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1] as f64 / 1e6)
}

/// Events per second over `elapsed`, or `None` for an empty interval.
pub(crate) fn per_sec(count: u64, elapsed: Duration) -> Option<f64> {
    (!elapsed.is_zero()).then(|| count as f64 / elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_three_percent() {
        for us in [0, 1, 31, 32, 33, 100, 1_000, 12_345, 1_000_000, 60_000_000] {
            let mid = midpoint_us(bucket(us));
            let error = (mid - us as f64).abs() / (us.max(1) as f64);
            assert!(error <= 0.035, "{us} µs reads back as {mid}");
        }
    }

    #[test]
    fn quantiles_pick_the_rank() {
        let histogram = Histogram::new();
        for ms in 1..=100 {
            histogram.record_ns(ms * 1_000_000);
        }
        let p50 = histogram.quantile_ms(0.5).expect("recorded");
        let p99 = histogram.quantile_ms(0.99).expect("recorded");
        assert!((p50 - 50.0).abs() < 2.0, "{p50}");
        assert!((p99 - 99.0).abs() < 3.5, "{p99}");
        let mut exact: Vec<u64> = (1..=100).rev().map(|ms| ms * 1_000_000).collect();
        assert_eq!(quantile_exact_ms(&mut exact, 0.99), Some(99.0));
        assert_eq!(Histogram::new().quantile_ms(0.5), None);
    }
}
