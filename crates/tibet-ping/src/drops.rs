//! [`DropAggregator`]: counts dropped input (ROOD, replays, malformed
//! frames, rate limits) per source and reason, and hands out one
//! [`DropRecord`] per source per interval, for the audit trail (tibet-core's
//! `NetworkBridge::record_drops` writes one `drops` token per record). An
//! attacker's datagrams then cost a counter increment each, never a token.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use alloc::collections::BTreeMap;

use crate::collections::HashMap;
use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use crate::time::Timestamp;

/// Default aggregation interval (10 s).
pub const DEFAULT_DROP_INTERVAL: Duration = Duration::from_secs(10);
/// Default number of sources counted apart per interval (1,024); the rest
/// are counted together under [`DropSource::Other`].
pub const DEFAULT_DROP_SOURCES: usize = 1024;
/// Longest DID kept as a drop source, in bytes.
const MAX_SOURCE_DID: usize = 256;

/// Where dropped input came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropSource {
    /// A network address.
    Addr(SocketAddr),
    /// A claimed DID (cut to 256 bytes).
    Did(String),
    /// Every source past the aggregator's source limit.
    Other,
}

impl DropSource {
    /// A DID source, cut to 256 bytes.
    pub fn did(did: &str) -> Self {
        let mut at = did.len().min(MAX_SOURCE_DID);
        while !did.is_char_boundary(at) {
            at -= 1;
        }
        DropSource::Did(did[..at].to_owned())
    }
}

impl fmt::Display for DropSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropSource::Addr(a) => write!(f, "{a}"),
            DropSource::Did(d) => f.write_str(d),
            DropSource::Other => f.write_str("other"),
        }
    }
}

/// The drops of one source over one interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropRecord {
    /// Where they came from.
    pub source: DropSource,
    /// Count per reason (e.g. `rood`, `replay`, `malformed`).
    pub counts: BTreeMap<&'static str, u64>,
    /// Start of the interval.
    pub from: Timestamp,
    /// End of the interval.
    pub until: Timestamp,
}

impl DropRecord {
    /// All drops in the record.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Counts drops per source and reason; see the module docs.
#[derive(Debug)]
pub struct DropAggregator {
    interval: Duration,
    max_sources: usize,
    started: Option<Timestamp>,
    counts: HashMap<DropSource, BTreeMap<&'static str, u64>>,
}

impl Default for DropAggregator {
    fn default() -> Self {
        DropAggregator::new(DEFAULT_DROP_INTERVAL, DEFAULT_DROP_SOURCES)
    }
}

impl DropAggregator {
    /// An aggregator flushing every `interval`, counting at most
    /// `max_sources` sources apart (the rest as [`DropSource::Other`]).
    pub fn new(interval: Duration, max_sources: usize) -> Self {
        DropAggregator {
            interval,
            max_sources,
            started: None,
            counts: HashMap::new(),
        }
    }

    /// Counts one drop from `source` for `reason` at `now`.
    pub fn note(&mut self, now: Timestamp, source: DropSource, reason: &'static str) {
        self.started.get_or_insert(now);
        let source = if self.counts.contains_key(&source) || self.counts.len() < self.max_sources {
            source
        } else {
            DropSource::Other
        };
        *self
            .counts
            .entry(source)
            .or_default()
            .entry(reason)
            .or_default() += 1;
    }

    /// When the current interval ends (`None` while nothing was counted).
    pub fn next_flush(&self) -> Option<Timestamp> {
        self.started.map(|s| s + self.interval)
    }

    /// If the interval is over at `now`, the records (one per source,
    /// sorted by source) and a fresh interval; else nothing.
    pub fn flush_due(&mut self, now: Timestamp) -> Vec<DropRecord> {
        match self.next_flush() {
            Some(end) if now >= end => self.flush(now),
            _ => Vec::new(),
        }
    }

    /// The records so far (one per source, sorted by source), ending the
    /// interval at `now` whether or not it is over (e.g. at shutdown).
    pub fn flush(&mut self, now: Timestamp) -> Vec<DropRecord> {
        let Some(from) = self.started.take() else {
            return Vec::new();
        };
        let mut records: Vec<DropRecord> = self
            .counts
            .drain()
            .map(|(source, counts)| DropRecord {
                source,
                counts,
                from,
                until: now,
            })
            .collect();
        records.sort_by(|a, b| a.source.cmp(&b.source));
        records
    }

    /// Sources counted in the current interval.
    pub fn sources(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_secs(1_790_000_000);

    #[test]
    fn one_record_per_source_per_interval_with_bounded_sources() {
        let mut agg = DropAggregator::new(Duration::from_secs(10), 2);
        let a: SocketAddr = "10.0.0.1:7150".parse().unwrap();
        for i in 0..10_000u64 {
            let at = NOW + Duration::from_micros(i * 500);
            agg.note(at, DropSource::Addr(a), "rood");
            agg.note(at, DropSource::did("jis:evil:x"), "replay");
            agg.note(at, DropSource::did(&format!("jis:evil:{i}")), "rood");
        }
        assert!(agg.flush_due(NOW + Duration::from_secs(9)).is_empty());
        assert_eq!(agg.sources(), 3, "two apart plus Other");
        let records = agg.flush_due(NOW + Duration::from_secs(10));
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].source, DropSource::Addr(a));
        assert_eq!(records[0].counts, BTreeMap::from([("rood", 10_000)]));
        assert_eq!(records[2].source, DropSource::Other);
        assert_eq!(records[2].total(), 10_000);
        assert_eq!(agg.sources(), 0);
        assert_eq!(agg.next_flush(), None);
        let long = DropSource::did(&"d".repeat(1000));
        assert_eq!(long.to_string().len(), 256);
    }
}
