//! [`PingMetrics`]: the pings the engine decided, by airlock zone and
//! decision, and a histogram of their processing time.
//!
//! Counted in place by the engine (a few integer adds per ping), so a
//! metrics page needs no audit records and no events: it reads these from a
//! stats snapshot.

use alloc::format;

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};
use tibet_ping::{AirlockZone, PingDecision};

/// Upper bounds of the processing-time buckets in nanoseconds: 10 µs x 4^k
/// for k = 0..9 (10 µs .. ~0.65 s); a last, unbounded bucket follows.
pub const PROCESSING_BUCKETS_NS: [u64; 9] = [
    10_000,
    40_000,
    160_000,
    640_000,
    2_560_000,
    10_240_000,
    40_960_000,
    163_840_000,
    655_360_000,
];

const ZONES: [AirlockZone; 3] = [AirlockZone::Groen, AirlockZone::Geel, AirlockZone::Rood];
const DECISIONS: [PingDecision; 3] = [
    PingDecision::Accept,
    PingDecision::Pending,
    PingDecision::Reject,
];

/// Pings decided by this engine (replays included, as ROOD reject) and
/// their processing time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PingMetrics {
    decided: [[u64; 3]; 3],
    buckets: [u64; PROCESSING_BUCKETS_NS.len() + 1],
    sum_ns: u64,
    timed: u64,
}

fn zone_index(z: AirlockZone) -> usize {
    match z {
        AirlockZone::Groen => 0,
        AirlockZone::Geel => 1,
        AirlockZone::Rood => 2,
    }
}

fn decision_index(d: PingDecision) -> usize {
    match d {
        PingDecision::Accept => 0,
        PingDecision::Pending => 1,
        PingDecision::Reject => 2,
    }
}

impl PingMetrics {
    /// Counts one decided ping; `processing_ms` (the response's `rtt_ms`)
    /// goes into the histogram when it is a finite, non-negative number.
    pub fn observe(
        &mut self,
        zone: AirlockZone,
        decision: PingDecision,
        processing_ms: Option<f64>,
    ) {
        self.decided[zone_index(zone)][decision_index(decision)] += 1;
        if let Some(ms) = processing_ms
            && ms.is_finite()
            && ms >= 0.0
        {
            let ns = round_to_u64(ms * 1_000_000.0);
            let i = PROCESSING_BUCKETS_NS.partition_point(|b| *b < ns);
            self.buckets[i] += 1;
            self.sum_ns = self.sum_ns.saturating_add(ns);
            self.timed += 1;
        }
    }

    /// Pings decided with `zone` and `decision`.
    pub fn decided(&self, zone: AirlockZone, decision: PingDecision) -> u64 {
        self.decided[zone_index(zone)][decision_index(decision)]
    }

    /// Every (zone, decision, count) with a count above zero.
    pub fn decided_counts(&self) -> impl Iterator<Item = (AirlockZone, PingDecision, u64)> + '_ {
        ZONES.iter().flat_map(move |z| {
            DECISIONS
                .iter()
                .map(move |d| (*z, *d, self.decided(*z, *d)))
                .filter(|(_, _, n)| *n > 0)
        })
    }

    /// Pings per processing-time bucket (not cumulative), one entry per
    /// bound of [`PROCESSING_BUCKETS_NS`] and a last one for slower pings.
    pub fn processing_buckets(&self) -> &[u64] {
        &self.buckets
    }

    /// Sum of the processing times observed, in nanoseconds.
    pub fn processing_sum_ns(&self) -> u64 {
        self.sum_ns
    }

    /// Pings with a processing time.
    pub fn processing_count(&self) -> u64 {
        self.timed
    }
}

/// A map `"ZONE/decision" -> count` (non-zero only).
struct Decided<'a>(&'a PingMetrics);

impl Serialize for Decided<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (z, d, n) in self.0.decided_counts() {
            m.serialize_entry(&format!("{}/{}", z.as_str(), d.as_str()), &n)?;
        }
        m.end()
    }
}

impl Serialize for PingMetrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("PingMetrics", 5)?;
        st.serialize_field("decided", &Decided(self))?;
        st.serialize_field("processing_bounds_ns", &PROCESSING_BUCKETS_NS)?;
        st.serialize_field("processing_buckets", &self.buckets)?;
        st.serialize_field("processing_sum_ns", &self.sum_ns)?;
        st.serialize_field("processing_count", &self.timed)?;
        st.end()
    }
}

/// `x.round() as u64` for a finite, non-negative `x`, in `core` arithmetic
/// (`f64::round` needs `std`): halves round up, and the cast saturates, so
/// absurd values land in the last bucket.
fn round_to_u64(x: f64) -> u64 {
    let whole = x as u64;
    if x - whole as f64 >= 0.5 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_zone_and_decision() {
        let mut m = PingMetrics::default();
        m.observe(AirlockZone::Groen, PingDecision::Accept, None);
        m.observe(AirlockZone::Groen, PingDecision::Accept, None);
        m.observe(AirlockZone::Rood, PingDecision::Reject, None);
        assert_eq!(m.decided(AirlockZone::Groen, PingDecision::Accept), 2);
        assert_eq!(m.decided(AirlockZone::Rood, PingDecision::Reject), 1);
        assert_eq!(m.decided(AirlockZone::Geel, PingDecision::Pending), 0);
        let all: Vec<_> = m.decided_counts().collect();
        assert_eq!(
            all,
            [
                (AirlockZone::Groen, PingDecision::Accept, 2),
                (AirlockZone::Rood, PingDecision::Reject, 1)
            ]
        );
        assert_eq!(m.processing_count(), 0);
    }

    #[test]
    fn processing_time_lands_in_its_bucket() {
        let mut m = PingMetrics::default();
        let z = (AirlockZone::Groen, PingDecision::Accept);
        m.observe(z.0, z.1, Some(0.005)); // 5 µs: first bucket
        m.observe(z.0, z.1, Some(0.010)); // exactly 10 µs: still the first (le)
        m.observe(z.0, z.1, Some(0.011)); // 11 µs: second
        m.observe(z.0, z.1, Some(1e9)); // absurd: the unbounded bucket
        m.observe(z.0, z.1, Some(f64::NAN)); // counted, not timed
        m.observe(z.0, z.1, Some(-1.0));
        let b = m.processing_buckets();
        assert_eq!((b[0], b[1], b[b.len() - 1]), (2, 1, 1));
        assert_eq!(m.processing_count(), 4);
        assert_eq!(m.decided(z.0, z.1), 6);
        assert!(m.processing_sum_ns() >= 26_000);
    }

    #[test]
    fn serialises_as_labelled_counts() {
        let mut m = PingMetrics::default();
        m.observe(AirlockZone::Geel, PingDecision::Pending, Some(0.02));
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["decided"]["GEEL/pending"], 1);
        assert_eq!(v["processing_buckets"][1], 1);
        assert_eq!(v["processing_count"], 1);
        assert_eq!(v["processing_sum_ns"], 20_000);
    }

    #[test]
    fn rounds_as_std_does() {
        let edges = [
            0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            4_503_599_627_370_495.5,
            9_007_199_254_740_993.0,
            1.8e19,
            1e300,
            f64::MAX,
        ];
        for x in edges {
            assert_eq!(round_to_u64(x), x.round() as u64, "{x}");
        }
        let mut x = 0.0;
        while x < 1e7 {
            assert_eq!(round_to_u64(x), x.round() as u64, "{x}");
            x = x * 1.37 + 0.123;
        }
    }

    proptest::proptest! {
        #[test]
        fn rounds_any_non_negative_value_as_std_does(x in 0.0..f64::MAX) {
            proptest::prop_assert_eq!(round_to_u64(x), x.round() as u64);
        }
    }
}
