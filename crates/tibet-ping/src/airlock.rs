//! The airlock: turns a packet and its sender's trust into a zone (GROEN,
//! GEEL, ROOD), first by rules, then by thresholds, and keeps the bounded
//! queue of GEEL pings waiting for a human.
//!
//! The queue is a [`ReviewQueue`] keyed by (source DID, packet id): a
//! re-send never changes the DID, intent or purpose of an entry under
//! review, entries expire (see [`Airlock::expire_pending`]) and the queue is
//! bounded in bytes as well as entries.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::packet::{AirlockZone, PingPacket};
use crate::review::{Admission, DEFAULT_REVIEW_TTL, ReviewQueue, ReviewStats};
use crate::rule::AirlockRule;
use crate::size;
use crate::time::Timestamp;

/// Default lower bound of GROEN (inclusive).
pub const DEFAULT_TRUST_GROEN: f64 = 0.7;
/// Default upper bound of ROOD (exclusive).
pub const DEFAULT_TRUST_ROOD: f64 = 0.3;
/// Default number of pings that may wait for review.
pub const DEFAULT_PENDING_CAPACITY: usize = 1024;
/// Default byte budget of the pings waiting for review (8 MiB).
pub const DEFAULT_PENDING_BYTES: usize = 8 << 20;

/// A GEEL ping waiting for a human decision.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PendingPing {
    /// The packet as received.
    pub packet: PingPacket,
    /// The sender's trust when it arrived.
    pub sender_trust: f64,
    /// Why it waits, e.g. `Trust 0.50 in GEEL zone (rule: doors)`.
    pub reason: String,
    /// Name of the rule that sent it here, if any.
    pub rule: Option<String>,
    /// When it was queued.
    #[serde(serialize_with = "crate::iso::serialize")]
    pub queued_at: Timestamp,
}

/// The zone the airlock chose and what follows from it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict<'a> {
    /// The zone.
    pub zone: AirlockZone,
    /// The rule that decided, if any (else the thresholds did).
    pub rule: Option<&'a AirlockRule>,
    /// For GEEL: whether the ping was queued for review (`false` means the
    /// queue was full and the ping must be refused).
    pub queued: bool,
}

/// Rules, thresholds and the pending-review queue.
#[derive(Debug)]
pub struct Airlock {
    rules: Vec<AirlockRule>,
    groen: f64,
    rood: f64,
    queue: ReviewQueue<PendingPing>,
}

impl Default for Airlock {
    fn default() -> Self {
        Airlock::new(
            DEFAULT_TRUST_GROEN,
            DEFAULT_TRUST_ROOD,
            DEFAULT_PENDING_CAPACITY,
        )
    }
}

impl Airlock {
    /// An airlock with the given thresholds (trust >= `groen` is GROEN,
    /// trust < `rood` is ROOD) and pending-queue capacity.
    pub fn new(groen: f64, rood: f64, pending_capacity: usize) -> Self {
        Airlock {
            rules: Vec::new(),
            groen,
            rood,
            queue: ReviewQueue::new(pending_capacity, DEFAULT_PENDING_BYTES, DEFAULT_REVIEW_TTL),
        }
    }

    /// Sets the review queue's byte budget and how long a ping may wait
    /// before [`Airlock::expire_pending`] removes it.
    pub fn set_pending_limits(&mut self, byte_capacity: usize, ttl: Duration) {
        self.queue.set_limits(byte_capacity, ttl);
    }

    /// Adds a rule, keeping rules sorted by priority (highest first, equal
    /// priorities in insertion order). Rules are few and set by hand, so
    /// the vector grows by exactly one: doubling gave a node of one rule
    /// room for four, ~500 bytes per node in a simulated mesh of thousands
    /// (docs/PERFORMANCE.md).
    pub fn add_rule(&mut self, rule: AirlockRule) {
        let at = self.rules.partition_point(|r| r.priority >= rule.priority);
        self.rules.reserve_exact(1);
        self.rules.insert(at, rule);
    }

    /// Removes the rule with `rule_id`; returns it if it existed.
    pub fn remove_rule(&mut self, rule_id: &str) -> Option<AirlockRule> {
        let at = self.rules.iter().position(|r| r.rule_id == rule_id)?;
        Some(self.rules.remove(at))
    }

    /// The rules in the order they are checked.
    pub fn rules(&self) -> &[AirlockRule] {
        &self.rules
    }

    /// The GROEN and ROOD thresholds.
    pub fn thresholds(&self) -> (f64, f64) {
        (self.groen, self.rood)
    }

    /// The zone for `packet` from a sender with `trust`, without side effects.
    pub fn gate(&self, packet: &PingPacket, trust: f64) -> (AirlockZone, Option<&AirlockRule>) {
        match self.rules.iter().find(|r| r.matches(packet, trust)) {
            Some(rule) => (rule.zone, Some(rule)),
            None => (self.threshold_zone(trust), None),
        }
    }

    /// The zone the thresholds alone give `trust`.
    pub fn threshold_zone(&self, trust: f64) -> AirlockZone {
        if trust >= self.groen {
            AirlockZone::Groen
        } else if trust < self.rood {
            AirlockZone::Rood
        } else {
            AirlockZone::Geel
        }
    }

    /// The zone rules and thresholds give `packet` from a sender with
    /// `trust`, without queueing anything (e.g. to decide whether a packet
    /// for another node is worth relaying).
    pub fn zone_of(&self, packet: &PingPacket, trust: f64) -> AirlockZone {
        self.classify(packet, trust).0
    }

    /// The zone for `packet` from a sender with `trust`, and the index of
    /// the rule that decided (none: the thresholds did).
    pub(crate) fn classify(&self, packet: &PingPacket, trust: f64) -> (AirlockZone, Option<usize>) {
        match self.rules.iter().position(|r| r.matches(packet, trust)) {
            Some(i) => (self.rules[i].zone, Some(i)),
            None => (self.threshold_zone(trust), None),
        }
    }

    /// Gates `packet` and, for GEEL, queues a copy for review (bounded: when
    /// the queue is full the ping is not queued and the refusal is counted).
    pub fn process(&mut self, now: Timestamp, packet: &PingPacket, trust: f64) -> Verdict<'_> {
        let decided = self.classify(packet, trust);
        self.process_classified(now, packet, trust, decided)
    }

    /// [`Airlock::process`] with the zone already chosen by
    /// [`Airlock::classify`].
    pub(crate) fn process_classified(
        &mut self,
        now: Timestamp,
        packet: &PingPacket,
        trust: f64,
        (zone, rule_at): (AirlockZone, Option<usize>),
    ) -> Verdict<'_> {
        let mut queued = false;
        if zone == AirlockZone::Geel {
            let rule_name = rule_at.map(|i| self.rules[i].name.clone());
            let mut reason = format!("Trust {trust:.2} in GEEL zone");
            if let Some(name) = &rule_name {
                reason.push_str(&format!(" (rule: {name})"));
            }
            let pending = PendingPing {
                packet: packet.clone(),
                sender_trust: trust,
                reason,
                rule: rule_name,
                queued_at: now,
            };
            queued = self.enqueue(pending).is_waiting();
        }
        Verdict {
            zone,
            rule: rule_at.map(|i| &self.rules[i]),
            queued,
        }
    }

    fn enqueue(&mut self, pending: PendingPing) -> Admission {
        let bytes = size::packet(&pending.packet)
            + pending.reason.len()
            + pending.rule.as_ref().map_or(0, String::len);
        let (did, id) = (
            pending.packet.source_did.clone(),
            pending.packet.packet_id.clone(),
        );
        self.queue
            .offer(pending.queued_at, &did, &id, pending, bytes)
    }

    /// Pings waiting for review, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &PendingPing> {
        self.queue.iter()
    }

    /// Puts back a ping that waited for review when the node last stopped
    /// (a state store restoring it): it keeps its `queued_at`, so it expires
    /// when it would have. `false` when the queue refuses it (full, or the
    /// same sender and id wait already).
    pub fn restore_pending(&mut self, pending: PendingPing) -> bool {
        self.enqueue(pending) == Admission::Queued
    }

    /// A counter that moves whenever the waiting pings change.
    pub fn pending_changes(&self) -> u64 {
        self.queue.changes()
    }

    /// How many pings wait for review.
    pub fn pending_len(&self) -> usize {
        self.queue.len()
    }

    /// GEEL pings refused because the queue was full (entries or bytes).
    pub fn pending_refused(&self) -> u64 {
        let s = self.queue.stats();
        s.refused_entries + s.refused_bytes
    }

    /// The review queue's counters and sizes.
    pub fn pending_stats(&self) -> ReviewStats {
        self.queue.stats()
    }

    /// Takes a pending ping out of the queue (approve or reject alike). If
    /// several senders used `packet_id`, the one that arrived first.
    pub fn take_pending(&mut self, packet_id: &str) -> Option<PendingPing> {
        self.queue.take_oldest(packet_id)
    }

    /// Takes the pending ping `packet_id` from `source_did`.
    pub fn take_pending_from(&mut self, source_did: &str, packet_id: &str) -> Option<PendingPing> {
        self.queue.take(source_did, packet_id)
    }

    /// Removes and returns the pings that waited the time to live (15 min
    /// by default) by `now`, oldest first, so the caller can audit them.
    pub fn expire_pending(&mut self, now: Timestamp) -> Vec<PendingPing> {
        self.queue.expire(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PingType;
    use crate::rule::{RulePattern, tests::packet};

    const NOW: Timestamp = Timestamp::from_secs(1_790_000_000);

    fn rule(id: &str, intent: &str, zone: AirlockZone, priority: i32) -> AirlockRule {
        AirlockRule::new(
            id,
            id,
            RulePattern {
                intent: Some(intent.into()),
                ..Default::default()
            },
            zone,
        )
        .with_priority(priority)
    }

    #[test]
    fn threshold_boundaries() {
        let a = Airlock::default();
        let p = packet("jis:a", "x");
        assert_eq!(a.gate(&p, 0.7).0, AirlockZone::Groen);
        assert_eq!(a.gate(&p, 0.699_999).0, AirlockZone::Geel);
        assert_eq!(a.gate(&p, 0.3).0, AirlockZone::Geel);
        assert_eq!(a.gate(&p, 0.299_999).0, AirlockZone::Rood);
        assert_eq!(a.gate(&p, 1.0).0, AirlockZone::Groen);
        assert_eq!(a.gate(&p, 0.0).0, AirlockZone::Rood);
        let strict = Airlock::new(0.9, 0.5, 4);
        assert_eq!(strict.gate(&p, 0.8).0, AirlockZone::Geel);
        assert_eq!(strict.gate(&p, 0.4).0, AirlockZone::Rood);
    }

    #[test]
    fn holds_room_for_its_rules_only() {
        let mut a = Airlock::default();
        for (i, p) in [10, 90, 50, 50, 70].into_iter().enumerate() {
            a.add_rule(rule(&format!("r{i}"), "*", AirlockZone::Geel, p));
            assert_eq!(a.rules.capacity(), i + 1, "after {} rules", i + 1);
        }
    }

    #[test]
    fn rules_by_priority_then_insertion() {
        let mut a = Airlock::default();
        a.add_rule(rule("low", "*", AirlockZone::Groen, 10));
        a.add_rule(rule("first50", "door.*", AirlockZone::Geel, 50));
        a.add_rule(rule("second50", "door.*", AirlockZone::Rood, 50));
        a.add_rule(rule("high", "door.unlock", AirlockZone::Rood, 90));
        let ids: Vec<_> = a.rules().iter().map(|r| r.rule_id.as_str()).collect();
        assert_eq!(ids, ["high", "first50", "second50", "low"]);
        let (zone, r) = a.gate(&packet("jis:a", "door.unlock"), 1.0);
        assert_eq!(
            (zone, r.unwrap().rule_id.as_str()),
            (AirlockZone::Rood, "high")
        );
        let (zone, r) = a.gate(&packet("jis:a", "door.open"), 1.0);
        assert_eq!(
            (zone, r.unwrap().rule_id.as_str()),
            (AirlockZone::Geel, "first50")
        );
        let (zone, r) = a.gate(&packet("jis:a", "light.on"), 0.0);
        assert_eq!(
            (zone, r.unwrap().rule_id.as_str()),
            (AirlockZone::Groen, "low")
        );
        assert!(a.remove_rule("low").is_some());
        assert_eq!(
            a.gate(&packet("jis:a", "light.on"), 0.0),
            (AirlockZone::Rood, None)
        );
    }

    #[test]
    fn rule_on_ping_type_and_min_trust() {
        let mut a = Airlock::default();
        let pat = RulePattern {
            ping_type: Some(PingType::Heartbeat),
            min_trust: Some(0.4),
            ..Default::default()
        };
        a.add_rule(AirlockRule::new(
            "hb",
            "heartbeats",
            pat,
            AirlockZone::Groen,
        ));
        let mut p = packet("jis:a", "heartbeat");
        p.ping_type = PingType::Heartbeat;
        assert_eq!(a.gate(&p, 0.4).0, AirlockZone::Groen);
        assert_eq!(a.gate(&p, 0.35), (AirlockZone::Geel, None));
    }

    #[test]
    fn pending_queue_is_bounded_and_fails_closed() {
        let mut a = Airlock::new(0.7, 0.3, 2);
        for i in 0..3 {
            let mut p = packet("jis:a", "x");
            p.packet_id = format!("ping_{i:016x}");
            let v = a.process(NOW, &p, 0.5);
            assert_eq!(v.zone, AirlockZone::Geel);
            assert_eq!(v.queued, i < 2, "packet {i}");
        }
        assert_eq!(a.pending_len(), 2);
        assert_eq!(a.pending_refused(), 1);
        let first = a.pending().next().unwrap();
        assert_eq!(first.packet.packet_id, "ping_0000000000000000");
        assert_eq!(first.reason, "Trust 0.50 in GEEL zone");
        // Taking one out makes room again.
        assert!(a.take_pending("ping_0000000000000000").is_some());
        assert!(a.take_pending("ping_0000000000000000").is_none());
        let mut p = packet("jis:a", "x");
        p.packet_id = "ping_00000000000000ff".into();
        assert!(a.process(NOW, &p, 0.5).queued);
        // GROEN and ROOD never queue.
        assert!(!a.process(NOW, &p, 0.9).queued && !a.process(NOW, &p, 0.1).queued);
    }

    #[test]
    fn a_resend_never_changes_the_entry_under_review() {
        let mut a = Airlock::new(0.7, 0.3, 1);
        a.add_rule(rule("doors", "door.*", AirlockZone::Geel, 50));
        let p = packet("jis:a", "door.open");
        assert!(a.process(NOW, &p, 0.9).queued);
        let mut changed = p.clone();
        changed.intent = "door.unlock".into();
        changed.purpose = "trust me".into();
        assert!(
            a.process(NOW, &changed, 0.95).queued,
            "already waiting needs no extra room"
        );
        assert_eq!(a.pending_len(), 1);
        let only = a.pending().next().unwrap();
        assert_eq!(only.packet, p, "the first arrival stays");
        assert_eq!(only.reason, "Trust 0.90 in GEEL zone (rule: doors)");
        // The same id from another DID is another entry (here: no room).
        let mut evil = p.clone();
        evil.source_did = "jis:evil".into();
        assert!(!a.process(NOW, &evil, 0.5).queued);
        assert_eq!(a.pending().next().unwrap().packet.source_did, "jis:a");
    }

    #[test]
    fn pending_pings_expire_and_are_returned() {
        let mut a = Airlock::new(0.7, 0.3, 8);
        a.set_pending_limits(DEFAULT_PENDING_BYTES, Duration::from_secs(60));
        assert!(a.process(NOW, &packet("jis:a", "x"), 0.5).queued);
        assert!(a.expire_pending(NOW + Duration::from_secs(59)).is_empty());
        let gone = a.expire_pending(NOW + Duration::from_secs(60));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].packet.source_did, "jis:a");
        assert_eq!(a.pending_len(), 0);
        assert_eq!(a.pending_stats().expired, 1);
    }

    #[test]
    fn a_restored_ping_keeps_its_queue_time_and_every_change_is_counted() {
        let mut a = Airlock::new(0.7, 0.3, 1);
        a.set_pending_limits(DEFAULT_PENDING_BYTES, Duration::from_secs(60));
        let before = a.pending_changes();
        assert!(a.process(NOW, &packet("jis:a", "x"), 0.5).queued);
        assert_eq!(a.pending_changes(), before + 1);
        let waiting = a.take_pending(&packet("jis:a", "x").packet_id).unwrap();
        assert_eq!(a.pending_changes(), before + 2);
        // Put back, it expires at its own queue time.
        assert!(a.restore_pending(waiting.clone()));
        assert!(!a.restore_pending(waiting.clone()), "waiting already");
        let mut other = waiting.clone();
        other.packet.source_did = "jis:b".into();
        assert!(!a.restore_pending(other), "the queue is full");
        assert_eq!(a.pending_changes(), before + 3);
        assert!(a.expire_pending(NOW + Duration::from_secs(59)).is_empty());
        assert_eq!(a.expire_pending(NOW + Duration::from_secs(60)), [waiting]);
        assert_eq!(a.pending_changes(), before + 4);
    }

    #[test]
    fn pending_queue_is_bounded_in_bytes() {
        let mut a = Airlock::new(0.7, 0.3, 1000);
        a.set_pending_limits(64 * 1024, DEFAULT_REVIEW_TTL);
        let mut queued = 0;
        for i in 0..100 {
            let mut p = packet("jis:a", "x");
            p.packet_id = format!("ping_{i:016x}");
            p.purpose = "p".repeat(4096);
            queued += usize::from(a.process(NOW, &p, 0.5).queued);
        }
        assert!((10..16).contains(&queued), "{queued}");
        assert_eq!(a.pending_refused(), 100 - queued as u64);
        assert!(a.pending_stats().bytes <= 64 * 1024);
    }

    proptest::proptest! {
        /// The rule that decides is the first matching one in a stable sort
        /// by descending priority, whatever the insertion order.
        #[test]
        fn first_match_in_stable_priority_order(
            specs in proptest::collection::vec((0i32..4, proptest::sample::select(vec!["*", "a*", "*b", "ab", "x*"])), 0..12),
            intent in proptest::sample::select(vec!["ab", "a", "b", "xb", ""]),
        ) {
            let mut a = Airlock::default();
            for (i, (prio, glob)) in specs.iter().enumerate() {
                a.add_rule(rule(&i.to_string(), glob, AirlockZone::Geel, *prio));
            }
            let mut model: Vec<(usize, i32, &str)> =
                specs.iter().enumerate().map(|(i, (p, g))| (i, *p, *g)).collect();
            model.sort_by_key(|&(_, p, _)| core::cmp::Reverse(p));
            let expect = model.iter().find(|&&(_, _, g)| crate::rule::Glob::new(g).matches(intent)).map(|&(i, _, _)| i.to_string());
            let got = a.gate(&packet("jis:a", intent), 0.5).1.map(|r| r.rule_id.clone());
            proptest::prop_assert_eq!(got, expect);
        }
    }
}
