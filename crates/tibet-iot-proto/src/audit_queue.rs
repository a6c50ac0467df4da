//! [`AuditQueue`]: the engine's bounded queue of [`AuditRecord`]s and the
//! rule that keeps provenance whole: no answer leaves without its record.
//!
//! Before the engine answers a ping it asks the queue to admit the answer's
//! record(s) ([`AuditQueue::admit`]). With [`AuditOverload::Block`] (the
//! default) an answer whose record cannot be queued is not sent: the ping is
//! dropped like a ROOD one and counted (`audit_refused`, and in the drop
//! records). The driver keeps that from happening to trusted senders by
//! reading less from the socket while its audit thread is behind, so under
//! overload the node answers later, never without a token. Senders that are
//! not trusted never get to fill the queue: their records pass the address's
//! audit bucket, a node-wide bucket ([`AuditConfig::untrusted_rate`]) and
//! may use at most a quarter of the queue; beyond, their ping is refused
//! and aggregated into the drop records. With [`AuditOverload::Drop`] (an
//! operator's explicit choice) answers always go, and records that do not
//! fit are dropped and counted.
//!
//! Heartbeats: each answered heartbeat has its `ping.heartbeat` record like
//! any ping; the separate [`AuditRecord::Heartbeat`] of a peer is made at
//! most once per [`AuditConfig::heartbeat_interval`] and carries how many
//! heartbeats it stands for.

use alloc::borrow::ToOwned;
use alloc::string::String;

use alloc::collections::VecDeque;
use core::time::Duration;

use crate::audit_record::AuditRecord;
use crate::bounded::{BoundedMap, WhenFull};
use crate::time::MonoTime;

/// What happens to an answer whose audit record cannot be queued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuditOverload {
    /// The answer waits (the driver reads less) or, when even the engine's
    /// queue is full, is not sent: every answer has its record.
    #[default]
    Block,
    /// The answer goes; the record is dropped and counted (lossy).
    Drop,
}

/// Settings of the audit queue.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditConfig {
    /// Records the engine queues before the driver takes them (16,384; at
    /// least 1).
    pub capacity: usize,
    /// Blocking (default) or lossy.
    pub on_overload: AuditOverload,
    /// Records per second, node-wide, that senders who are not trusted may
    /// cause (2,000), on top of each address's audit bucket.
    pub untrusted_rate: f64,
    /// ... and their burst (2,000).
    pub untrusted_burst: f64,
    /// One heartbeat record per peer per this interval (60 s).
    pub heartbeat_interval: Duration,
    /// Peers whose heartbeat records are aggregated at once (4,096; the
    /// oldest is forgotten first).
    pub heartbeat_peers: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            capacity: 16_384,
            on_overload: AuditOverload::Block,
            untrusted_rate: 2_000.0,
            untrusted_burst: 2_000.0,
            heartbeat_interval: Duration::from_secs(60),
            heartbeat_peers: 4096,
        }
    }
}

/// The queue's verdict on an answer's record(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Queue the record(s), then answer.
    Record,
    /// Answer without a record (lossy mode only; counted).
    Unrecorded,
    /// Do not answer; the reason goes into the drop records.
    Refuse(&'static str),
}

#[derive(Debug)]
struct HeartbeatWindow {
    last_record: MonoTime,
    pending: u64,
}

/// The bounded queue; see the module docs.
#[derive(Debug)]
pub(crate) struct AuditQueue {
    records: VecDeque<AuditRecord>,
    config: AuditConfig,
    /// Tokens of the node-wide bucket for untrusted senders, and when it
    /// was last filled.
    untrusted_tokens: f64,
    untrusted_at: Option<MonoTime>,
    heartbeats: BoundedMap<String, HeartbeatWindow>,
}

impl AuditQueue {
    pub(crate) fn new(mut config: AuditConfig) -> Self {
        config.capacity = config.capacity.max(1);
        let heartbeats = BoundedMap::new(
            config.heartbeat_peers,
            config.heartbeat_interval * 2,
            WhenFull::EvictOldest,
        );
        AuditQueue {
            records: VecDeque::new(),
            untrusted_tokens: config.untrusted_burst,
            untrusted_at: None,
            config,
            heartbeats,
        }
    }

    /// Records that still fit.
    pub(crate) fn room(&self) -> usize {
        self.config.capacity.saturating_sub(self.records.len())
    }

    /// Queued records.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Queues `record`; `false` (the caller counts) when the queue is full.
    pub(crate) fn push(&mut self, record: AuditRecord) -> bool {
        if self.room() == 0 {
            return false;
        }
        self.records.push_back(record);
        true
    }

    pub(crate) fn pop(&mut self) -> Option<AuditRecord> {
        self.records.pop_front()
    }

    /// Forgets everything queued and aggregated (auditing turned off).
    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.heartbeats = BoundedMap::new(
            self.config.heartbeat_peers,
            self.config.heartbeat_interval * 2,
            WhenFull::EvictOldest,
        );
    }

    /// Whether an answer that needs `records` records may go. `trusted`:
    /// the sender is GROEN. `address_ok` is asked (and its token taken)
    /// only for untrusted senders.
    pub(crate) fn admit(
        &mut self,
        now: MonoTime,
        trusted: bool,
        records: usize,
        address_ok: impl FnOnce() -> bool,
    ) -> Admission {
        let lossy = self.config.on_overload == AuditOverload::Drop;
        if trusted {
            return if self.room() >= records {
                Admission::Record
            } else if lossy {
                Admission::Unrecorded
            } else {
                Admission::Refuse("audit_full")
            };
        }
        // Untrusted: a quarter of the queue at most, the node-wide bucket,
        // and the address's own bucket.
        let share = self.room() >= records + self.config.capacity * 3 / 4;
        if share && self.take_untrusted(now, records) && address_ok() {
            Admission::Record
        } else if lossy {
            Admission::Unrecorded
        } else {
            Admission::Refuse("audit_limited")
        }
    }

    fn take_untrusted(&mut self, now: MonoTime, n: usize) -> bool {
        let c = &self.config;
        if let Some(at) = self.untrusted_at {
            let refill = now.saturating_duration_since(at).as_secs_f64() * c.untrusted_rate;
            self.untrusted_tokens = (self.untrusted_tokens + refill).min(c.untrusted_burst);
        }
        self.untrusted_at = Some(now);
        let n = n as f64;
        if self.untrusted_tokens >= n {
            self.untrusted_tokens -= n;
            true
        } else {
            false
        }
    }

    /// Whether a heartbeat from `did` gets its own heartbeat record now:
    /// `Some(count)` with the heartbeats it stands for (this one and those
    /// aggregated since the previous record of `did`), else `None` (it is
    /// counted for the next one).
    pub(crate) fn heartbeat_due(&mut self, now: MonoTime, did: &str) -> Option<u64> {
        let interval = self.config.heartbeat_interval;
        let mut count = 1;
        if let Some(w) = self.heartbeats.get_mut(now, did) {
            if now.saturating_duration_since(w.last_record) < interval {
                w.pending += 1;
                return None;
            }
            count += w.pending;
        }
        // (Re)inserted, so the entry lives two intervals from its record.
        let window = HeartbeatWindow {
            last_record: now,
            pending: 0,
        };
        self.heartbeats
            .insert_sized(now, did.to_owned(), window, did.len());
        Some(count)
    }

    /// A heartbeat record that could not be queued: counted towards the
    /// next record of `did` instead.
    pub(crate) fn heartbeat_deferred(&mut self, now: MonoTime, did: &str) {
        if let Some(w) = self.heartbeats.get_mut(now, did) {
            w.pending += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> MonoTime {
        MonoTime::from_duration(Duration::from_millis(ms))
    }

    fn record() -> AuditRecord {
        AuditRecord::CredentialRevoked {
            voucher_did: "jis:a".into(),
            device_did: "jis:b".into(),
        }
    }

    fn small(on_overload: AuditOverload) -> AuditQueue {
        AuditQueue::new(AuditConfig {
            capacity: 8,
            on_overload,
            untrusted_rate: 10.0,
            untrusted_burst: 4.0,
            ..AuditConfig::default()
        })
    }

    #[test]
    fn a_full_queue_refuses_trusted_answers_unless_lossy() {
        let mut q = small(AuditOverload::Block);
        for _ in 0..8 {
            assert_eq!(q.admit(t(0), true, 1, || true), Admission::Record);
            assert!(q.push(record()));
        }
        assert_eq!(
            q.admit(t(0), true, 1, || true),
            Admission::Refuse("audit_full")
        );
        assert!(!q.push(record()));
        q.pop();
        assert_eq!(q.admit(t(0), true, 1, || true), Admission::Record);
        assert_eq!(
            q.admit(t(0), true, 2, || true),
            Admission::Refuse("audit_full")
        );

        let mut lossy = small(AuditOverload::Drop);
        (0..8).for_each(|_| assert!(lossy.push(record())));
        assert_eq!(lossy.admit(t(0), true, 1, || true), Admission::Unrecorded);
    }

    #[test]
    fn untrusted_senders_get_a_quarter_of_the_queue_and_a_node_wide_budget() {
        let mut q = small(AuditOverload::Block);
        // Burst 4: four records, then refused until the bucket refills.
        for _ in 0..2 {
            assert_eq!(q.admit(t(0), false, 1, || true), Admission::Record);
        }
        assert_eq!(q.admit(t(0), false, 2, || true), Admission::Record);
        assert_eq!(
            q.admit(t(0), false, 1, || true),
            Admission::Refuse("audit_limited")
        );
        // 100 ms later one token is back (10/s).
        assert_eq!(q.admit(t(100), false, 1, || true), Admission::Record);
        // The address's bucket has its say too.
        assert_eq!(
            q.admit(t(1000), false, 1, || false),
            Admission::Refuse("audit_limited")
        );
        // With more than a quarter of the queue taken, untrusted senders
        // wait outside while trusted ones still get in.
        (0..3).for_each(|_| assert!(q.push(record())));
        assert_eq!(
            q.admit(t(2000), false, 1, || true),
            Admission::Refuse("audit_limited")
        );
        assert_eq!(q.admit(t(2000), true, 1, || true), Admission::Record);
        let mut lossy = small(AuditOverload::Drop);
        assert_eq!(lossy.admit(t(0), false, 1, || false), Admission::Unrecorded);
    }

    #[test]
    fn heartbeats_make_one_record_per_peer_per_interval_with_a_count() {
        let mut q = small(AuditOverload::Block);
        assert_eq!(q.heartbeat_due(t(0), "jis:a"), Some(1));
        assert_eq!(q.heartbeat_due(t(0), "jis:b"), Some(1));
        // One every second for a minute: aggregated.
        for s in 1..60 {
            assert_eq!(q.heartbeat_due(t(s * 1000), "jis:a"), None);
        }
        q.heartbeat_deferred(t(59_500), "jis:a");
        assert_eq!(q.heartbeat_due(t(60_000), "jis:a"), Some(61));
        assert_eq!(q.heartbeat_due(t(61_000), "jis:a"), None);
    }
}
