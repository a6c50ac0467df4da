//! [`NetworkDiscovery`]: when to send beacons and when (and whether) to
//! answer the beacons of others. Sans-IO: the sockets live in the driver.
//!
//! A beacon is a discover packet sent to the multicast group from the
//! transport socket, so its source address is where the sender listens. A
//! node hearing one answers by unicast to that address with its own discover
//! packet, after a random delay of up to `reply_delay`, at most once per
//! `reply_interval` per (source address, beacon nonce) and at most `burst`
//! times per second overall (the global answer budget),
//! with a bounded queue. Answers arrive on the transport socket and are never
//! answered themselves, so there is no ping-pong.

use alloc::vec::Vec;

use core::hash::BuildHasher;
use core::net::SocketAddr;
use core::time::Duration;

use crate::time::MonoTime;
use rand::Rng;
use serde::Serialize;

use crate::bounded::{BoundedMap, WhenFull};

/// Discovery counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiscoveryStats {
    /// Beacons sent to the group.
    pub beacons_sent: u64,
    /// Beacons heard (multicast or unicast to the discovery port).
    pub beacons_received: u64,
    /// Announcements heard on the transport socket (answers to our beacons).
    pub announcements_received: u64,
    /// Answers sent.
    pub replies_sent: u64,
    /// Answers skipped by the per-peer or global rate limit.
    pub replies_rate_limited: u64,
    /// Answers refused because the queue was full.
    pub replies_refused: u64,
    /// Beacons that named no transport port, so could not be answered.
    pub replies_unanswerable: u64,
}

/// Discovery schedule and answer rate limiting.
#[derive(Debug)]
pub struct NetworkDiscovery {
    enabled: bool,
    interval: Duration,
    reply_delay: Duration,
    next_beacon: Option<MonoTime>,
    queue: Vec<(MonoTime, SocketAddr)>,
    queue_capacity: usize,
    /// Beacons answered, by a keyed 64-bit hash of (source address,
    /// nonce) (`beacon_keys`): the pair itself, its nonce 32 hex digits on
    /// the heap, was held twice per entry. The key is random, so a sender
    /// cannot aim a collision; one by chance (2^-64) leaves a beacon
    /// unanswered.
    answered: BoundedMap<u64, ()>,
    beacon_keys: foldhash::quality::RandomState,
    window_start: MonoTime,
    window_count: u32,
    burst: u32,
    stats: DiscoveryStats,
}

impl NetworkDiscovery {
    /// A schedule: a beacon every `interval` (the first at the first timeout
    /// handled) when `enabled`; answers delayed up to `reply_delay`, one per
    /// (source address, beacon nonce) per `reply_interval`, `queue_capacity`
    /// waiting at most.
    pub fn new(
        enabled: bool,
        interval: Duration,
        reply_delay: Duration,
        reply_interval: Duration,
        queue_capacity: usize,
    ) -> Self {
        NetworkDiscovery {
            enabled,
            interval,
            reply_delay,
            next_beacon: None,
            queue: Vec::new(),
            queue_capacity: queue_capacity.max(1),
            answered: BoundedMap::new(4096, reply_interval, WhenFull::Refuse),
            beacon_keys: foldhash::quality::RandomState::default(),
            window_start: MonoTime::ZERO,
            window_count: 0,
            burst: 20,
            stats: DiscoveryStats::default(),
        }
    }

    /// Whether periodic beacons are on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Called when the node starts: the first beacon is due at `now`.
    pub fn start(&mut self, now: MonoTime) {
        if self.enabled {
            self.next_beacon = Some(now);
        }
    }

    /// Whether a beacon is due; if so, schedules the next one.
    pub fn beacon_due(&mut self, now: MonoTime) -> bool {
        match self.next_beacon {
            Some(at) if at <= now => {
                self.next_beacon = Some(now + self.interval);
                self.stats.beacons_sent += 1;
                true
            }
            _ => false,
        }
    }

    /// Records a beacon with nonce `nonce` heard from `from` and decides
    /// whether to answer it; an answer is queued with a random delay.
    ///
    /// The same beacon (same address and nonce) is answered once per
    /// `reply_interval`; a fresh beacon of the same sender (a second
    /// `discover`) is answered again, within the global budget.
    pub fn on_beacon(
        &mut self,
        now: MonoTime,
        nonce: &str,
        from: SocketAddr,
        rng: &mut (impl Rng + ?Sized),
    ) {
        self.stats.beacons_received += 1;
        let key = self.beacon_keys.hash_one((from, nonce));
        if self.answered.contains(now, &key) {
            self.stats.replies_rate_limited += 1;
            return;
        }
        if now.saturating_duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.window_count = 0;
        }
        if self.window_count >= self.burst {
            self.stats.replies_rate_limited += 1;
            return;
        }
        if self.queue.len() >= self.queue_capacity || !self.answered.insert_sized(now, key, (), 0) {
            self.stats.replies_refused += 1;
            return;
        }
        self.window_count += 1;
        let delay_us = u64::try_from(self.reply_delay.as_micros()).unwrap_or(u64::MAX);
        let delay = Duration::from_micros(if delay_us == 0 {
            0
        } else {
            rng.gen_range(0..=delay_us)
        });
        self.queue.push((now + delay, from));
    }

    /// Counts a beacon that cannot be answered (no transport port named:
    /// the reference sends beacons from a throwaway socket).
    pub fn on_beacon_unanswerable(&mut self) {
        self.stats.beacons_received += 1;
        self.stats.replies_unanswerable += 1;
    }

    /// Counts an announcement that answered our beacon.
    pub fn on_announcement(&mut self) {
        self.stats.announcements_received += 1;
    }

    /// Takes the answers due at `now`.
    pub fn due_replies(&mut self, now: MonoTime) -> Vec<SocketAddr> {
        if !self.queue.iter().any(|(at, _)| *at <= now) {
            return Vec::new();
        }
        let mut out = Vec::new();
        self.queue.retain(|(at, to)| {
            if *at <= now {
                out.push(*to);
                false
            } else {
                true
            }
        });
        self.stats.replies_sent += out.len() as u64;
        out
    }

    /// The next time something is due.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        let reply = self.queue.iter().map(|(at, _)| *at).min();
        match (self.next_beacon, reply) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counters.
    pub fn stats(&self) -> DiscoveryStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::tests::addr;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn t(ms: i64) -> MonoTime {
        MonoTime::from_millis((1_000_000_000 + ms) as u64)
    }
    /// Beacons every 60 s, answers each peer at most every 10 s, queues 8.
    fn discovery(enabled: bool, reply_delay: Duration) -> NetworkDiscovery {
        NetworkDiscovery::new(
            enabled,
            Duration::from_secs(60),
            reply_delay,
            Duration::from_secs(10),
            8,
        )
    }

    #[test]
    fn beacons_at_start_then_every_interval() {
        let mut d = discovery(true, Duration::ZERO);
        assert!(!d.beacon_due(t(0)), "not before start");
        d.start(t(0));
        assert!(d.beacon_due(t(0)));
        assert!(!d.beacon_due(t(59_999)));
        assert_eq!(d.poll_timeout(), Some(t(60_000)));
        assert!(d.beacon_due(t(60_000)));
        let mut off = discovery(false, Duration::ZERO);
        off.start(t(0));
        assert!(!off.beacon_due(t(0)));
        assert_eq!(off.poll_timeout(), None);
    }

    #[test]
    fn answers_after_a_delay_once_per_beacon() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut d = discovery(true, Duration::from_millis(500));
        d.on_beacon(t(0), "n1", addr(2), &mut rng);
        d.on_beacon(t(1), "n1", addr(2), &mut rng);
        assert_eq!(d.stats().replies_rate_limited, 1);
        let due = d.poll_timeout().unwrap();
        assert!(due >= t(0) && due <= t(500));
        assert!(d.due_replies(t(501)) == vec![addr(2)]);
        assert!(d.due_replies(t(502)).is_empty());
        d.on_beacon(t(10_001), "n1", addr(2), &mut rng);
        assert_eq!(
            d.due_replies(t(10_600)),
            vec![addr(2)],
            "answered again after the interval"
        );
    }

    #[test]
    fn a_fresh_beacon_of_the_same_sender_is_answered_again() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut d = discovery(true, Duration::ZERO);
        d.on_beacon(t(0), "n1", addr(2), &mut rng);
        assert_eq!(d.due_replies(t(0)), vec![addr(2)]);
        d.on_beacon(t(100), "n2", addr(2), &mut rng);
        assert_eq!(d.due_replies(t(100)), vec![addr(2)], "a second scan");
        d.on_beacon(t(200), "n1", addr(3), &mut rng);
        assert_eq!(d.due_replies(t(200)), vec![addr(3)], "another address");
        d.on_beacon(t(300), "n2", addr(2), &mut rng);
        assert!(d.due_replies(t(300)).is_empty(), "a repeated beacon");
        assert_eq!(d.stats().replies_rate_limited, 1);
    }

    #[test]
    fn global_burst_and_queue_are_bounded() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut d = discovery(true, Duration::from_millis(500));
        for i in 0..100 {
            d.on_beacon(t(0), &format!("n{i}"), addr(i), &mut rng);
        }
        let s = d.stats();
        assert_eq!(s.beacons_received, 100);
        assert!(d.queue.len() <= 8);
        assert_eq!(s.replies_refused + s.replies_rate_limited, 92);
    }
}
