//! The replay tracker's store: a set of 64-bit keys, each with an expiry
//! time, in cache-line buckets, where an expired entry is a free slot.
//!
//! Written by hand because no crate we use keeps expiry inside the slot: a
//! hash set plus an expiry queue (what the tracker used before) touches four
//! cache lines per packet (the set's control bytes and slot on insert, and
//! again on removal), and at 200,000 pings/s its 30 MB defeat the caches.
//! Here a check reads one 64-byte bucket in the common case, and nothing is
//! ever removed: an expired entry is simply overwritten
//! (docs/PERFORMANCE-HISTORY.md, "Segmented sends and a compact replay
//! table").
//!
//! - A bucket holds [`SLOTS`] entries and `passed`, the latest expiry of an
//!   entry that was placed beyond it because it was full. A lookup walks on
//!   from a bucket only while `passed` is still live, so an entry is always
//!   found, even after entries before it have expired, and a free slot is
//!   never taken for a key that is still held further on.
//! - Entries are placed at most [`MAX_PROBE`] buckets from their home, so a
//!   lookup reads at most that many.
//! - Live entries are counted exactly by a ring of per-tick counters indexed
//!   by expiry tick: when time moves on, the counters of the ticks that have
//!   passed are subtracted. The count decides growth and the capacity.
//! - Keys are keyed-SipHash values (see the tracker), so an attacker can
//!   aim neither at a bucket nor at a chain.
//! - Nothing is allocated before the first insert: a node holds three
//!   trackers (trusted and untrusted pings, beacons), and one that never
//!   sees a packet costs no memory (a simulated mesh of thousands of nodes
//!   holds them all, docs/PERFORMANCE.md).

use alloc::vec;
use alloc::vec::Vec;

/// Entries per bucket: five keys and five expiries fill 60 of its 64 bytes.
pub(super) const SLOTS: usize = 5;
/// Most buckets an entry is placed beyond its home (and so read by a
/// lookup). Linear probing clusters: at 60 % load a table of a million
/// buckets showed a run of 16 full buckets (a nonce refused below the
/// capacity); 64 keeps that out of reach, and a lookup reads more than one
/// bucket only where entries overflowed.
const MAX_PROBE: usize = 64;
/// Buckets of a new table (grown by doubling).
const MIN_BUCKETS: usize = 16;
/// Most live entries per slot before the table doubles, in eighths (6/8).
const LOAD_EIGHTHS: usize = 6;

/// One cache line of entries.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Bucket {
    keys: [u64; SLOTS],
    /// Expiry tick per entry; 0 is a slot never used, and every tick below
    /// the current one is free.
    expiry: [u32; SLOTS],
    /// The latest expiry of an entry placed beyond this bucket.
    passed: u32,
}

/// The outcome of [`ExpiringSet::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Insert {
    Added,
    /// The key is held and has not expired.
    Present,
    /// Not held, and no room: the set holds its capacity of live entries
    /// (or, improbably, the table at its largest has no free slot within
    /// [`MAX_PROBE`] buckets of the key's home).
    Full,
}

/// A set of keys with expiry ticks; see the module docs.
#[derive(Debug)]
pub(super) struct ExpiringSet {
    /// Empty until the first insert, then a power of two.
    buckets: Vec<Bucket>,
    /// Most buckets the table grows to.
    max_buckets: usize,
    /// Most live entries.
    capacity: usize,
    /// Live entries at tick `now`.
    live: usize,
    /// Live entries by expiry tick, at `expiry % counts.len()` (`u32`: the
    /// capacity is at most `u32::MAX`). Empty until the first insert, then
    /// `horizon + 2` long.
    counts: Vec<u32>,
    /// Most ticks after the current one an expiry may lie.
    horizon: u32,
    /// The current tick: entries expiring before it are free. Never goes
    /// back.
    now: u32,
}

impl ExpiringSet {
    /// An empty set holding at most `capacity` live entries (1 to
    /// `u32::MAX`) whose expiry is at most `horizon` ticks after the current
    /// tick. Allocates nothing until the first insert.
    pub(super) fn new(capacity: usize, horizon: u32) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        let max_buckets = (capacity * 8)
            .div_ceil(SLOTS * LOAD_EIGHTHS)
            .next_power_of_two()
            .max(MIN_BUCKETS);
        ExpiringSet {
            buckets: Vec::new(),
            max_buckets,
            capacity,
            live: 0,
            counts: Vec::new(),
            horizon: horizon.min(u32::MAX - 2),
            now: 1,
        }
    }

    /// Most live entries.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Live entries.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// Moves the current tick on to `now` (never back): entries expiring
    /// before it are forgotten. A table much larger than its live entries
    /// shrinks.
    pub(super) fn advance(&mut self, now: u32) {
        let now = now.max(1);
        if now <= self.now {
            return;
        }
        let ring = self.counts.len();
        let steps = ((now - self.now) as usize).min(ring);
        for step in 0..steps {
            let tick = self.now as usize + step;
            let count = &mut self.counts[tick % ring];
            self.live -= *count as usize;
            *count = 0;
        }
        self.now = now;
    }

    /// Gives memory back when at most an eighth of what the table could
    /// hold is live.
    pub(super) fn shrink(&mut self) {
        if self.buckets.is_empty() {
            return;
        }
        let want = Self::buckets_for(self.live);
        if want < self.buckets.len() / 4 {
            self.rebuild(want * 2);
        }
    }

    /// Adds `key`, live until tick `expiry` (inclusive; raised to the
    /// current tick after a clock step back, and at most the horizon after
    /// it), unless it is held already.
    pub(super) fn insert(&mut self, key: u64, expiry: u32) -> Insert {
        if self.buckets.is_empty() {
            self.buckets = vec![Bucket::default(); MIN_BUCKETS];
            self.counts = vec![0; self.horizon as usize + 2];
        }
        let expiry = expiry.clamp(self.now, self.now.saturating_add(self.horizon));
        let placed = match self.find(key) {
            Ok(()) => return Insert::Present,
            Err(slot) => slot,
        };
        if self.live >= self.capacity {
            return Insert::Full;
        }
        let grow = self.live >= Self::room(self.buckets.len());
        let slot = match placed {
            Some(slot) if !grow => slot,
            _ => {
                if self.buckets.len() >= self.max_buckets {
                    match placed {
                        Some(slot) => slot,
                        None => return Insert::Full,
                    }
                } else {
                    self.rebuild(self.buckets.len() * 2);
                    match self.find(key) {
                        Err(Some(slot)) => slot,
                        _ => return Insert::Full,
                    }
                }
            }
        };
        self.put(key, expiry, slot);
        let ring = self.counts.len();
        self.counts[expiry as usize % ring] += 1;
        self.live += 1;
        Insert::Added
    }

    /// `Ok` when `key` is held and live; else the first free slot on its
    /// probe path (bucket, slot), if any within [`MAX_PROBE`] buckets.
    fn find(&self, key: u64) -> Result<(), Option<(usize, usize)>> {
        let mask = self.buckets.len() - 1;
        let mut at = key as usize & mask;
        let mut free = None;
        for step in 0..MAX_PROBE {
            let b = &self.buckets[at];
            for i in 0..SLOTS {
                if b.expiry[i] < self.now {
                    free = free.or(Some((at, i)));
                } else if b.keys[i] == key {
                    return Ok(());
                }
            }
            // No live entry went past this bucket: the key is not further on.
            if b.passed < self.now {
                if free.is_some() {
                    return Err(free);
                }
                // Full, and nothing passed it: look on for room only.
                return Err(self.room_after((at + 1) & mask, MAX_PROBE - 1 - step));
            }
            at = (at + 1) & mask;
        }
        Err(free)
    }

    /// The first free slot within `buckets` buckets from `at`.
    fn room_after(&self, mut at: usize, buckets: usize) -> Option<(usize, usize)> {
        let mask = self.buckets.len() - 1;
        for _ in 0..buckets {
            let b = &self.buckets[at];
            if let Some(i) = b.expiry.iter().position(|&e| e < self.now) {
                return Some((at, i));
            }
            at = (at + 1) & mask;
        }
        None
    }

    /// Places the entry in `slot`, marking the buckets it passed.
    fn put(&mut self, key: u64, expiry: u32, (at, i): (usize, usize)) {
        let mask = self.buckets.len() - 1;
        let mut b = key as usize & mask;
        while b != at {
            let passed = &mut self.buckets[b].passed;
            *passed = (*passed).max(expiry);
            b = (b + 1) & mask;
        }
        self.buckets[at].keys[i] = key;
        self.buckets[at].expiry[i] = expiry;
    }

    /// Live entries a table of `buckets` holds before it doubles.
    fn room(buckets: usize) -> usize {
        buckets * SLOTS * LOAD_EIGHTHS / 8
    }

    /// The fewest buckets (a power of two) holding `live` entries.
    fn buckets_for(live: usize) -> usize {
        (live * 8)
            .div_ceil(SLOTS * LOAD_EIGHTHS)
            .next_power_of_two()
            .max(MIN_BUCKETS)
    }

    /// Moves the live entries into a table of `buckets` buckets (clamped
    /// to the table's bounds and to what they need). An entry that finds no
    /// room (possible only at the largest size, and so improbable that no
    /// test reaches it) is dropped from the count as well: the count stays
    /// exact, and the set forgets a nonce early rather than panic.
    fn rebuild(&mut self, buckets: usize) {
        let buckets = buckets
            .clamp(MIN_BUCKETS, self.max_buckets)
            .max(Self::buckets_for(self.live).min(self.max_buckets));
        let old = core::mem::replace(&mut self.buckets, vec![Bucket::default(); buckets]);
        let ring = self.counts.len();
        for b in &old {
            for i in 0..SLOTS {
                let (key, expiry) = (b.keys[i], b.expiry[i]);
                if expiry < self.now {
                    continue;
                }
                match self.find(key) {
                    Err(Some(slot)) => self.put(key, expiry, slot),
                    _ => {
                        self.counts[expiry as usize % ring] -= 1;
                        self.live -= 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(core::mem::size_of::<Bucket>(), 64);
        assert_eq!(core::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn allocates_on_the_first_insert_and_still_refuses_at_its_capacity() {
        let mut s = ExpiringSet::new(100, 40);
        s.advance(5);
        s.shrink();
        assert_eq!((s.buckets.capacity(), s.counts.capacity()), (0, 0));
        assert_eq!(s.insert(7, 30), Insert::Added);
        assert_eq!((s.buckets.len(), s.counts.len()), (MIN_BUCKETS, 42));
        for k in 1..100u64 {
            assert_eq!(s.insert(k << 20, 30), Insert::Added);
        }
        assert_eq!(s.insert(u64::MAX, 30), Insert::Full);
        assert_eq!(s.insert(7, 30), Insert::Present);
        s.advance(31);
        assert_eq!(s.len(), 0);
        assert_eq!(s.insert(u64::MAX, 40), Insert::Added);
    }

    #[test]
    fn grows_to_its_capacity_and_no_further() {
        let mut s = ExpiringSet::new(10_000, 40);
        for k in 0..10_000u64 {
            assert_eq!(
                s.insert(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), 31),
                Insert::Added
            );
        }
        assert_eq!(s.len(), 10_000);
        assert_eq!(s.insert(u64::MAX, 31), Insert::Full);
        assert!(s.buckets.len() <= s.max_buckets);
        // Every key is still found.
        for k in 0..10_000u64 {
            assert_eq!(
                s.insert(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), 31),
                Insert::Present
            );
        }
    }

    #[test]
    fn a_steady_stream_near_capacity_is_never_refused() {
        // 10,000 arrivals per tick, kept 29 ticks: about 290,000 live of
        // 300,000, the table at its largest. Linear probing clusters; runs
        // of full buckets must stay well within reach.
        let mut s = ExpiringSet::new(300_000, 40);
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut now = 1;
        for i in 0..900_000u64 {
            if i % 10_000 == 0 {
                now += 1;
                s.advance(now);
            }
            // xorshift: stand-in for the keyed hashes the tracker gives.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            assert_eq!(s.insert(x, now + 28), Insert::Added, "at {}", s.len());
        }
        assert_eq!(s.buckets.len(), s.max_buckets);
        assert!(s.len() > 280_000);
    }

    #[test]
    fn a_key_past_an_expired_neighbour_is_still_found() {
        // All keys share one home bucket: the first five fill it, the sixth
        // is placed in the next one. Once the first five expire, the sixth
        // must still be found, not taken as absent because its home bucket
        // now has room.
        let mut s = ExpiringSet::new(100, 40);
        let home = |i: u64| i << 40;
        for i in 0..5 {
            assert_eq!(s.insert(home(i), 5), Insert::Added);
        }
        assert_eq!(s.insert(home(9), 30), Insert::Added);
        s.advance(10);
        assert_eq!(s.len(), 1);
        assert_eq!(s.insert(home(9), 40), Insert::Present);
        assert_eq!(s.insert(home(1), 40), Insert::Added, "expired, so new");
    }

    #[test]
    fn shrinks_once_a_burst_has_expired() {
        let mut s = ExpiringSet::new(1_000_000, 40);
        for k in 0..100_000u64 {
            s.insert(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), 5);
        }
        let big = s.buckets.len();
        s.insert(1, 30);
        s.advance(6);
        s.shrink();
        assert_eq!(s.len(), 1);
        assert!(s.buckets.len() < big / 100, "{} of {big}", s.buckets.len());
        assert_eq!(s.insert(1, 30), Insert::Present);
    }

    proptest! {
        /// Against a plain map: the same answers, the same count, for keys
        /// crowded into few buckets, across growth, expiry and shrinking.
        #[test]
        fn agrees_with_a_map(
            cap in 1usize..200,
            ops in proptest::collection::vec((0u64..64, 0u64..400, 0u32..6, 0u32..3), 1..600),
        ) {
            let mut s = ExpiringSet::new(cap, 12);
            let mut model: HashMap<u64, u32> = HashMap::new();
            let mut now = 1u32;
            for (home, low, ttl, step) in ops {
                now += step;
                s.advance(now);
                model.retain(|_, e| *e >= now);
                if step == 2 {
                    s.shrink();
                }
                // Few home buckets, many keys each: long chains.
                let key = (low << 32) | home;
                let expiry = now + ttl;
                let want = if model.contains_key(&key) {
                    Insert::Present
                } else if model.len() >= cap {
                    Insert::Full
                } else {
                    Insert::Added
                };
                let got = s.insert(key, expiry);
                if want == Insert::Added && got == Insert::Full {
                    // Allowed only when no slot is within reach at the
                    // largest size; never at a small capacity like these.
                    prop_assert!(false, "refused with room: {} of {cap}", model.len());
                }
                prop_assert_eq!(got, want);
                if got == Insert::Added {
                    model.insert(key, expiry);
                }
                prop_assert_eq!(s.len(), model.len());
            }
        }
    }
}
