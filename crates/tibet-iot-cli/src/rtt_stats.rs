//! Round-trip time statistics for `bench`: bounded sample storage and
//! nearest-rank percentiles.

use std::time::Duration;

use serde::Serialize;

/// Samples kept at most; past this, samples are counted but not stored
/// (the percentiles then describe the first `MAX_SAMPLES`).
pub(crate) const MAX_SAMPLES: usize = 5_000_000;

/// Collected round-trip times, in microseconds.
#[derive(Debug, Default)]
pub(crate) struct Rtts {
    micros: Vec<u32>,
    /// Samples not stored because the store was full.
    pub(crate) dropped: u64,
}

/// Percentile summary, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub(crate) struct Summary {
    /// Median.
    pub(crate) p50_ms: f64,
    /// 90th percentile.
    pub(crate) p90_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// Largest.
    pub(crate) max_ms: f64,
}

impl Rtts {
    /// Records one round trip.
    pub(crate) fn push(&mut self, d: Duration) {
        if self.micros.len() >= MAX_SAMPLES {
            self.dropped += 1;
            return;
        }
        self.micros
            .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }

    /// Nearest-rank percentiles, or `None` without samples.
    pub(crate) fn summary(&mut self) -> Option<Summary> {
        if self.micros.is_empty() {
            return None;
        }
        self.micros.sort_unstable();
        let n = self.micros.len();
        let at = |p: f64| {
            let rank = ((p / 100.0) * n as f64).ceil() as usize;
            f64::from(self.micros[rank.clamp(1, n) - 1]) / 1000.0
        };
        Some(Summary {
            p50_ms: at(50.0),
            p90_ms: at(90.0),
            p99_ms: at(99.0),
            max_ms: f64::from(self.micros[n - 1]) / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut r = Rtts::default();
        assert!(r.summary().is_none());
        for us in (1..=100).rev() {
            r.push(Duration::from_micros(us * 1000));
        }
        let s = r.summary().unwrap();
        assert_eq!(
            s,
            Summary {
                p50_ms: 50.0,
                p90_ms: 90.0,
                p99_ms: 99.0,
                max_ms: 100.0
            }
        );
    }

    #[test]
    fn two_samples() {
        let mut a = Rtts::default();
        a.push(Duration::from_micros(383));
        a.push(Duration::from_micros(1000));
        assert_eq!(a.micros.len(), 2);
        let s = a.summary().unwrap();
        assert_eq!(s.p50_ms, 0.383);
        assert_eq!(s.max_ms, 1.0);
    }
}
