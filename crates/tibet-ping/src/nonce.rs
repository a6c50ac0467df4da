//! Replay protection: a bounded, time-windowed record of seen nonces.
//!
//! A packet is a replay when its timestamp is unparseable, older than the
//! window (30 s), more than the allowed skew (5 s) in the future, or when its
//! nonce was already seen while such a packet could still pass the time check.
//!
//! Entries live in a hash set (nonces are attacker-chosen, so each is first
//! reduced by a randomly keyed SipHash) and in a queue ordered by insertion; expired entries
//! are removed from the queue's front a few at a time on each check, so no
//! call scans the whole set. The set has a hard capacity: when it is full of
//! unexpired nonces the tracker refuses new packets (fails closed) and counts.
//!
//! A nonce is kept until its timestamp (or the time it arrived, if later)
//! plus the window, so a packet can never be replayed while its timestamp
//! still passes. `now` should not go backwards; if it does (a clock step),
//! nonces are kept longer, never shorter.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::time::Timestamp;

/// Default replay window.
pub const DEFAULT_NONCE_WINDOW: Duration = Duration::from_secs(30);
/// Default tolerance for senders whose clock runs ahead.
pub const DEFAULT_FUTURE_SKEW: Duration = Duration::from_secs(5);
/// Default capacity: 100,000 packets per second over a 30 s window
/// (3,000,000) plus headroom for bursts.
pub const DEFAULT_NONCE_CAPACITY: usize = 3_200_000;

/// Expired entries removed per check, on top of the one being added; keeps
/// garbage collection ahead of arrivals without a long pause.
const GC_STEP: usize = 16;

/// Why the replay check refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReplayReason {
    /// The nonce was already seen within the window.
    Seen,
    /// The timestamp is older than the window.
    TooOld,
    /// The timestamp is further in the future than the allowed skew.
    TooFarInFuture,
    /// The timestamp does not parse.
    Unparseable,
    /// The tracker is full of unexpired nonces; refused to stay safe.
    CapacityExhausted,
}

impl ReplayReason {
    /// A short snake_case label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReplayReason::Seen => "seen",
            ReplayReason::TooOld => "too_old",
            ReplayReason::TooFarInFuture => "too_far_in_future",
            ReplayReason::Unparseable => "unparseable",
            ReplayReason::CapacityExhausted => "capacity_exhausted",
        }
    }
}

/// A nonce reduced to 64 bits by a randomly keyed SipHash: an attacker who
/// does not know the key can neither aim collisions nor crowd the table. Two
/// different nonces share a key with probability 2^-64 each, so with n
/// nonces held a fresh packet is falsely called a replay with probability
/// at most n / 2^64 (below 10^-12 at 3,000,000): failing closed, never open.
type NonceKey = u64;

/// Hashes a [`NonceKey`], which is already a keyed random value, by itself.
#[derive(Clone, Copy, Debug, Default)]
struct PreHashed;

#[derive(Clone, Copy, Debug, Default)]
struct PreHasher(u64);

impl Hasher for PreHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for PreHashed {
    type Hasher = PreHasher;
    fn build_hasher(&self) -> PreHasher {
        PreHasher(0)
    }
}

/// Remembers nonces for the replay window; see the module docs.
#[derive(Debug)]
pub struct NonceTracker {
    window_us: i64,
    skew_us: i64,
    capacity: usize,
    seen: HashSet<NonceKey, PreHashed>,
    /// (expiry in µs since the epoch, key), in insertion order.
    queue: VecDeque<(i64, NonceKey)>,
    keyer: RandomState,
    refused: u64,
}

impl Default for NonceTracker {
    fn default() -> Self {
        Self::new(
            DEFAULT_NONCE_WINDOW,
            DEFAULT_FUTURE_SKEW,
            DEFAULT_NONCE_CAPACITY,
        )
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl NonceTracker {
    /// A tracker with the given window, future skew and capacity (at least 1).
    pub fn new(window: Duration, future_skew: Duration, capacity: usize) -> Self {
        NonceTracker {
            window_us: micros(window),
            skew_us: micros(future_skew),
            capacity: capacity.max(1),
            seen: HashSet::default(),
            queue: VecDeque::new(),
            keyer: RandomState::new(),
            refused: 0,
        }
    }

    /// The replay window.
    pub fn window(&self) -> Duration {
        Duration::from_micros(self.window_us.max(0) as u64)
    }

    /// The most nonces held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Nonces currently remembered (expired ones may linger until collected).
    pub fn tracked(&self) -> usize {
        self.seen.len()
    }

    /// Packets refused because the tracker was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    fn key(&self, nonce: &str) -> NonceKey {
        self.keyer.hash_one(nonce)
    }

    /// Checks a packet's nonce and timestamp text and, when fresh, records
    /// the nonce. `Ok(())` means the packet is not a replay.
    pub fn check(
        &mut self,
        now: Timestamp,
        nonce: &str,
        timestamp: &str,
    ) -> Result<(), ReplayReason> {
        self.check_at(now, nonce, Timestamp::parse(timestamp))
    }

    /// As [`NonceTracker::check`], with the timestamp already parsed
    /// (`None` for unparseable).
    pub fn check_at(
        &mut self,
        now: Timestamp,
        nonce: &str,
        sent_at: Option<Timestamp>,
    ) -> Result<(), ReplayReason> {
        let sent = sent_at.ok_or(ReplayReason::Unparseable)?;
        let age = now.micros_since(sent);
        if age > self.window_us {
            return Err(ReplayReason::TooOld);
        }
        if age < -self.skew_us {
            return Err(ReplayReason::TooFarInFuture);
        }
        let now_us = now.as_micros();
        self.collect(now_us, GC_STEP);
        let key = self.key(nonce);
        if self.seen.len() >= self.capacity {
            if self.seen.contains(&key) {
                return Err(ReplayReason::Seen);
            }
            self.collect(now_us, usize::MAX);
            if self.seen.len() >= self.capacity {
                self.refused += 1;
                return Err(ReplayReason::CapacityExhausted);
            }
        }
        if !self.seen.insert(key) {
            return Err(ReplayReason::Seen);
        }
        // Remember the nonce while a packet carrying it can still pass the
        // time check: until its timestamp (or now, if later) plus the window.
        let expiry = sent.as_micros().max(now_us).saturating_add(self.window_us);
        self.queue.push_back((expiry, key));
        Ok(())
    }

    /// Forgets every nonce that expired before `now`.
    pub fn collect_garbage(&mut self, now: Timestamp) {
        self.collect(now.as_micros(), usize::MAX);
    }

    fn collect(&mut self, now_us: i64, max: usize) {
        for _ in 0..max {
            match self.queue.front() {
                Some(&(expiry, key)) if expiry < now_us => {
                    self.queue.pop_front();
                    self.seen.remove(&key);
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp::from_secs(1_790_000_000);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn tracker(capacity: usize) -> NonceTracker {
        NonceTracker::new(secs(30), secs(5), capacity)
    }

    fn n(i: u32) -> String {
        format!("{i:032x}")
    }

    #[test]
    fn fresh_then_seen() {
        let mut t = tracker(10);
        assert_eq!(t.check_at(T0, &n(1), Some(T0)), Ok(()));
        assert_eq!(t.check_at(T0, &n(1), Some(T0)), Err(ReplayReason::Seen));
        assert_eq!(t.check_at(T0, &n(2), Some(T0)), Ok(()));
        // Any string is a nonce, hex or not, and each is distinct.
        assert_eq!(t.check_at(T0, "NOT-HEX", Some(T0)), Ok(()));
        assert_eq!(t.check_at(T0, "NOT-HEX", Some(T0)), Err(ReplayReason::Seen));
        assert_eq!(t.check_at(T0, "", Some(T0)), Ok(()));
        assert_eq!(t.check_at(T0, "", Some(T0)), Err(ReplayReason::Seen));
        assert_eq!(t.tracked(), 4);
    }

    #[test]
    fn window_and_skew_boundaries() {
        let mut t = tracker(10);
        // Exactly at the window edge is still accepted (age > window rejects).
        assert_eq!(t.check_at(T0 + secs(30), &n(1), Some(T0)), Ok(()));
        let just_over = T0 + secs(30) + Duration::from_micros(1);
        assert_eq!(
            t.check_at(just_over, &n(2), Some(T0)),
            Err(ReplayReason::TooOld)
        );
        assert_eq!(t.check_at(T0, &n(3), Some(T0 + secs(5))), Ok(()));
        let too_far = T0 + secs(5) + Duration::from_micros(1);
        assert_eq!(
            t.check_at(T0, &n(4), Some(too_far)),
            Err(ReplayReason::TooFarInFuture)
        );
        assert_eq!(
            t.check(T0, &n(5), "not a time"),
            Err(ReplayReason::Unparseable)
        );
        assert_eq!(t.check(T0, &n(6), &T0.to_iso()), Ok(()));
        assert_eq!(t.tracked(), 3, "refused packets leave no trace");
    }

    #[test]
    fn future_dated_nonce_is_kept_until_its_timestamp_expires() {
        let mut t = tracker(10);
        let sent = T0 + secs(5);
        assert_eq!(t.check_at(T0, &n(1), Some(sent)), Ok(()));
        // 34 s later the packet is still within the window of its own timestamp.
        t.collect_garbage(T0 + secs(34));
        assert_eq!(
            t.check_at(T0 + secs(34), &n(1), Some(sent)),
            Err(ReplayReason::Seen)
        );
        t.collect_garbage(T0 + secs(36));
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn capacity_fails_closed_then_recovers_after_expiry() {
        let mut t = tracker(3);
        for i in 0..3 {
            assert_eq!(t.check_at(T0, &n(i), Some(T0)), Ok(()));
        }
        assert_eq!(
            t.check_at(T0, &n(99), Some(T0)),
            Err(ReplayReason::CapacityExhausted)
        );
        assert_eq!(t.refused(), 1);
        assert_eq!(t.tracked(), 3);
        // Once the old nonces expire there is room again.
        let later = T0 + secs(31);
        assert_eq!(t.check_at(later, &n(99), Some(later)), Ok(()));
        assert_eq!(t.tracked(), 1);
        assert_eq!(t.refused(), 1);
    }

    #[test]
    fn garbage_is_collected_incrementally() {
        let mut t = tracker(1_000);
        for i in 0..100 {
            t.check_at(T0, &n(i), Some(T0)).unwrap();
        }
        let later = T0 + secs(40);
        t.check_at(later, &n(1_000), Some(later)).unwrap();
        assert_eq!(t.tracked(), 101 - GC_STEP);
        t.collect_garbage(later);
        assert_eq!(t.tracked(), 1);
    }

    proptest! {
        #[test]
        fn never_exceeds_capacity_and_never_accepts_twice(
            cap in 1usize..20,
            ops in proptest::collection::vec((0u32..30, 0u64..50), 1..200),
        ) {
            let mut t = tracker(cap);
            let mut now = T0;
            let mut accepted: Vec<(u32, Timestamp)> = Vec::new();
            for (nonce, step) in ops {
                now = now + Duration::from_millis(step * 100);
                let ok = t.check_at(now, &n(nonce), Some(now)).is_ok();
                prop_assert!(t.tracked() <= cap);
                if ok {
                    // Never accept a nonce accepted within the window before.
                    prop_assert!(!accepted.iter().any(|&(m, at)| m == nonce && now.micros_since(at) <= 30_000_000));
                    accepted.push((nonce, now));
                }
            }
        }
    }
}
