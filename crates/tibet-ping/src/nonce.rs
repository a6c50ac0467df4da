//! Replay protection: a bounded, time-windowed record of seen nonces.
//!
//! A packet is a replay when its timestamp is unparseable, older than the
//! window (30 s), more than the allowed skew (5 s) in the future, or when its
//! nonce was already seen while such a packet could still pass the time check.
//!
//! Nonces are first reduced to 64 bits by a randomly keyed hash (they are
//! attacker-chosen: SipHash keyed by the OS with `std`, foldhash's quality
//! hash without it, `crate::collections`) and kept, each with its expiry, in a compact table
//! where an expired entry is a free slot (`table.rs`): a check reads one
//! cache line in the common case and nothing is ever removed one by one. The
//! table has a hard capacity: when it is full of unexpired nonces the
//! tracker refuses new packets (fails closed) and counts.
//!
//! A nonce is kept until its timestamp (or the time it arrived, if later)
//! plus the window, so a packet can never be replayed while its timestamp
//! still passes, rounded up to a tick (one second, or 1/2048 of window plus
//! skew when that is longer). `now` should not go backwards; if it does (a
//! clock step), nonces are kept longer, never shorter.

use core::hash::BuildHasher;
use core::time::Duration;

use crate::time::Timestamp;

mod table;

#[cfg(not(feature = "std"))]
use foldhash::quality::RandomState;
#[cfg(feature = "std")]
use std::collections::hash_map::RandomState;

use table::{ExpiringSet, Insert};

/// Default replay window.
pub const DEFAULT_NONCE_WINDOW: Duration = Duration::from_secs(30);
/// Default tolerance for senders whose clock runs ahead.
pub const DEFAULT_FUTURE_SKEW: Duration = Duration::from_secs(5);
/// Default capacity: 100,000 packets per second over a 30 s window
/// (3,000,000) plus headroom for bursts.
pub const DEFAULT_NONCE_CAPACITY: usize = 3_200_000;

/// Most ticks a replay window plus skew spans: longer windows get longer
/// ticks, so the table's per-tick counters stay small.
const MAX_TICKS: i64 = 2048;

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
    /// Sent before this node's replay horizon: a packet an earlier run of
    /// the node may have accepted ([`NonceTracker::set_horizon`]).
    BeforeRestart,
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
            ReplayReason::BeforeRestart => "before_restart",
        }
    }
}

/// A nonce reduced to 64 bits by a randomly keyed SipHash: an attacker who
/// does not know the key can neither aim collisions nor crowd the table. Two
/// different nonces share a key with probability 2^-64 each, so with n
/// nonces held a fresh packet is falsely called a replay with probability
/// at most n / 2^64 (below 10^-12 at 3,000,000): failing closed, never open.
type NonceKey = u64;

/// Remembers nonces for the replay window; see the module docs.
#[derive(Debug)]
pub struct NonceTracker {
    window_us: i64,
    skew_us: i64,
    /// Length of a tick of the table's expiry times, in µs.
    tick_us: i64,
    seen: ExpiringSet,
    keyer: RandomState,
    refused: u64,
    /// Packets sent at or before this instant (µs) are refused.
    horizon_us: i64,
    /// The latest timestamp of a packet that passed (µs).
    latest_us: Option<i64>,
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
        let (window_us, skew_us) = (micros(window), micros(future_skew));
        let span = window_us.saturating_add(skew_us);
        let tick_us = (span / MAX_TICKS + 1).max(1_000_000);
        // Live expiries lie between the current tick and this many after.
        let horizon = span / tick_us + 2;
        NonceTracker {
            window_us,
            skew_us,
            tick_us,
            seen: ExpiringSet::new(capacity, horizon as u32),
            keyer: RandomState::default(),
            refused: 0,
            horizon_us: i64::MIN,
            latest_us: None,
        }
    }

    /// The latest timestamp of a packet that passed the check: a node that
    /// stops cleanly keeps it as its next run's horizon, since no packet it
    /// accepted was sent later.
    pub fn latest_accepted(&self) -> Option<Timestamp> {
        self.latest_us.map(Timestamp::from_micros)
    }

    /// Refuses every packet whose timestamp is at or before `horizon`: the
    /// nonces an earlier run of the node saw are not known to this one, so
    /// whatever that run could have accepted is refused
    /// ([`ReplayReason::BeforeRestart`]). The driver passes the last instant
    /// a run said it was alive, plus the future skew (docs/SECURITY.md).
    pub fn set_horizon(&mut self, horizon: Timestamp) {
        self.horizon_us = horizon.as_micros();
    }

    /// The future skew allowed to senders' clocks.
    pub fn future_skew(&self) -> Duration {
        Duration::from_micros(self.skew_us.max(0) as u64)
    }

    /// The replay window.
    pub fn window(&self) -> Duration {
        Duration::from_micros(self.window_us.max(0) as u64)
    }

    /// The most nonces held at once.
    pub fn capacity(&self) -> usize {
        self.seen.capacity()
    }

    /// Nonces remembered and unexpired as of the last check or collection.
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
        if sent.as_micros() <= self.horizon_us {
            return Err(ReplayReason::BeforeRestart);
        }
        let age = now.micros_since(sent);
        if age > self.window_us {
            return Err(ReplayReason::TooOld);
        }
        if age < -self.skew_us {
            return Err(ReplayReason::TooFarInFuture);
        }
        let now_us = now.as_micros();
        self.seen.advance(self.tick(now_us));
        // Remember the nonce while a packet carrying it can still pass the
        // time check: until its timestamp (or now, if later) plus the window.
        let expiry = sent.as_micros().max(now_us).saturating_add(self.window_us);
        match self.seen.insert(self.key(nonce), self.tick(expiry)) {
            Insert::Added => {
                let sent_us = sent.as_micros();
                self.latest_us = Some(self.latest_us.map_or(sent_us, |l| l.max(sent_us)));
                Ok(())
            }
            Insert::Present => Err(ReplayReason::Seen),
            Insert::Full => {
                self.refused += 1;
                Err(ReplayReason::CapacityExhausted)
            }
        }
    }

    /// Forgets every nonce that expired before `now`, and gives back memory
    /// a burst left behind.
    pub fn collect_garbage(&mut self, now: Timestamp) {
        self.seen.advance(self.tick(now.as_micros()));
        self.seen.shrink();
    }

    /// The tick holding `micros` (rounded up, so a nonce is never forgotten
    /// early), at least 1.
    fn tick(&self, micros: i64) -> u32 {
        let tick =
            micros.div_euclid(self.tick_us) + i64::from(micros.rem_euclid(self.tick_us) != 0);
        u32::try_from(tick.max(1)).unwrap_or(u32::MAX)
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
    fn expired_nonces_stop_counting_without_a_collection() {
        let mut t = tracker(1_000);
        for i in 0..100 {
            t.check_at(T0, &n(i), Some(T0)).unwrap();
        }
        assert_eq!(t.tracked(), 100);
        let later = T0 + secs(31);
        t.check_at(later, &n(1_000), Some(later)).unwrap();
        assert_eq!(t.tracked(), 1);
        // An expired nonce is free again (its packet would be too old now).
        assert_eq!(t.check_at(later, &n(5), Some(later)), Ok(()));
    }

    #[test]
    fn a_long_window_is_counted_in_longer_ticks() {
        // A day's window: ticks of about 42 s, a nonce is never forgotten
        // early, and at most one tick late.
        let day = secs(86_400);
        let mut t = NonceTracker::new(day, secs(5), 10);
        t.check_at(T0, &n(1), Some(T0)).unwrap();
        let edge = T0 + day;
        assert_eq!(t.check_at(edge, &n(1), Some(T0)), Err(ReplayReason::Seen));
        t.collect_garbage(edge + secs(43));
        assert_eq!(t.tracked(), 0);
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
