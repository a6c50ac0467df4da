//! [`Outputs`]: what the engine hands its driver (datagrams to send,
//! events, audit records) and the aggregated drop records, each queue
//! bounded and counting what it refused. The rest of the engine only
//! pushes into it; the driver drains it through the engine's `poll_*`.

use alloc::collections::VecDeque;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;
use tibet_ping::{DropAggregator, DropSource};

use super::Transmit;
use crate::audit_queue::{AuditConfig, AuditQueue};
use crate::audit_record::AuditRecord;
use crate::event::Event;
use crate::node_stats::EngineStats;
use crate::source_guard::SourceGuard;
use crate::time::{MonoTime, Now};

/// Slots the outgoing queue keeps once drained (a burst may grow it further
/// while it lasts).
const TRANSMITS_KEPT: usize = 1024;

/// Bound on queued events: beyond it new events are dropped and counted.
const EVENT_QUEUE_CAPACITY: usize = 65_536;

/// The engine's output queues.
#[derive(Debug)]
pub(crate) struct Outputs {
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    events_enabled: bool,
    audit: AuditQueue,
    audit_enabled: bool,
    drops: DropAggregator,
    drop_interval: Duration,
    drop_sources: usize,
    next_drop_flush: Option<MonoTime>,
    datagrams_out: u64,
    events_dropped: u64,
    audit_dropped: u64,
}

impl Outputs {
    /// Empty queues: events on, audit records off; drops aggregated per
    /// `drop_interval` for at most `drop_sources` sources.
    pub(crate) fn new(audit: AuditConfig, drop_interval: Duration, drop_sources: usize) -> Self {
        Outputs {
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            events_enabled: true,
            audit: AuditQueue::new(audit),
            audit_enabled: false,
            drops: DropAggregator::new(drop_interval, drop_sources),
            drop_interval,
            drop_sources,
            next_drop_flush: None,
            datagrams_out: 0,
            events_dropped: 0,
            audit_dropped: 0,
        }
    }

    /// Queues a datagram.
    pub(crate) fn transmit(&mut self, destination: SocketAddr, payload: impl Into<Bytes>) {
        self.datagrams_out += 1;
        self.transmits.push_back(Transmit {
            destination,
            payload: payload.into(),
        });
    }

    /// Queues `copies` copies of a datagram (at least one), sharing its
    /// bytes.
    pub(crate) fn transmit_copies(&mut self, destination: SocketAddr, payload: Bytes, copies: u8) {
        for _ in 1..copies.max(1) {
            self.transmit(destination, payload.clone());
        }
        self.transmit(destination, payload);
    }

    /// The next datagram to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        let next = self.transmits.pop_front();
        if next.is_none() && self.transmits.capacity() > TRANSMITS_KEPT {
            // A hub's heartbeat round queues one datagram per peer at once;
            // the queue gives that room back once it is drained.
            self.transmits.shrink_to(TRANSMITS_KEPT);
        }
        next
    }

    /// Whether events other than request outcomes are wanted.
    pub(crate) fn events_enabled(&self) -> bool {
        self.events_enabled
    }

    /// Turns events other than request outcomes on or off.
    pub(crate) fn set_events_enabled(&mut self, enabled: bool) {
        self.events_enabled = enabled;
    }

    /// Queues an event: request outcomes always, others while enabled.
    pub(crate) fn event(&mut self, e: Event) {
        let always = matches!(
            e,
            Event::RequestAnswered { .. }
                | Event::RequestTimedOut { .. }
                | Event::RequestFailed { .. }
        );
        if !(always || self.events_enabled) {
            return;
        }
        if self.events.len() >= EVENT_QUEUE_CAPACITY {
            self.events_dropped += 1;
            return;
        }
        self.events.push_back(e);
    }

    /// The next event.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether audit records are made.
    pub(crate) fn audit_enabled(&self) -> bool {
        self.audit_enabled
    }

    /// Turns audit records on or off; off discards the queued ones and the
    /// drop counts.
    pub(crate) fn set_audit_enabled(&mut self, enabled: bool) {
        self.audit_enabled = enabled;
        if !enabled {
            self.audit.clear();
            self.drops = DropAggregator::new(self.drop_interval, self.drop_sources);
            self.next_drop_flush = None;
        }
    }

    /// Queues the record `record` makes, while audit records are on
    /// (counted when the queue is full).
    pub(crate) fn audit(&mut self, record: impl FnOnce() -> AuditRecord) {
        if !self.audit_enabled {
            return;
        }
        if !self.audit.push(record()) {
            self.audit_dropped += 1;
        }
    }

    /// Counts `n` records that went unmade (a lossy node over its budget).
    pub(crate) fn audit_unrecorded(&mut self, n: usize) {
        self.audit_dropped += n as u64;
    }

    /// The audit queue itself, for admission and heartbeat records.
    pub(crate) fn audit_queue(&mut self) -> &mut AuditQueue {
        &mut self.audit
    }

    /// Records that fit the audit queue now.
    pub(crate) fn audit_room(&self) -> usize {
        self.audit.room()
    }

    /// Audit records queued and not yet polled.
    pub(crate) fn audit_queued(&self) -> usize {
        self.audit.len()
    }

    /// The next audit record.
    pub(crate) fn poll_audit(&mut self) -> Option<AuditRecord> {
        self.audit.pop()
    }

    /// Counts one dropped input from `from` for the aggregated drop record
    /// (only while audit records are on), under the source `guard` names:
    /// an IPv6 sender's prefix (port 0), else the address itself, so a
    /// sender cannot spread a flood over records by changing address within
    /// its /64 (`prefix.rs`).
    pub(crate) fn note_drop(
        &mut self,
        now: Now,
        guard: &SourceGuard,
        from: SocketAddr,
        reason: &'static str,
    ) {
        if !self.audit_enabled {
            return;
        }
        let source = aggregation_key(guard, from);
        self.drops.note(now.wall, DropSource::Addr(source), reason);
        if self.next_drop_flush.is_none() {
            self.next_drop_flush = Some(now.mono + self.drop_interval);
        }
    }

    /// When the current drop interval ends, if one runs.
    pub(crate) fn next_drop_flush(&self) -> Option<MonoTime> {
        self.next_drop_flush
    }

    /// Ends the current drop interval: its counts become records.
    pub(crate) fn flush_drops(&mut self, now: Now) {
        self.next_drop_flush = None;
        for record in self.drops.flush(now.wall) {
            self.audit(|| AuditRecord::Drops(record));
        }
    }

    /// Writes the counters kept here into `stats`.
    pub(crate) fn count_into(&self, stats: &mut EngineStats) {
        stats.datagrams_out = self.datagrams_out;
        stats.events_dropped = self.events_dropped;
        stats.audit_dropped = self.audit_dropped;
    }
}

/// The source that drops and refusals from `from` are aggregated under
/// (see [`Outputs::note_drop`]).
pub(crate) fn aggregation_key(guard: &SourceGuard, from: SocketAddr) -> SocketAddr {
    let key = guard.source_key(from.ip());
    if key == crate::prefix::canonical_ip(from.ip()) {
        SocketAddr::new(key, from.port())
    } else {
        SocketAddr::new(key, 0)
    }
}
