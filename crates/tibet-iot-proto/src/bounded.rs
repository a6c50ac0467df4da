//! A capacity-bounded, insertion-ordered map with age-based expiry: the
//! building block of the seen-cache, the relay's reverse paths and the
//! response cache. Bounded in entries and, for entries inserted with a
//! size ([`BoundedMap::insert_sized`]), in bytes.

use crate::collections::HashMap;
use alloc::collections::VecDeque;
use core::borrow::Borrow;
use core::hash::Hash;
use core::time::Duration;

use crate::time::MonoTime;

/// What happens when an insert finds the map full (after expiring old entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Drop the oldest entry to make room (counted as evicted).
    EvictOldest,
    /// Refuse the new entry (counted as refused).
    Refuse,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    at: MonoTime,
    seq: u64,
    size: usize,
}

/// Bytes counted per entry on top of its own size: the hash map slot and
/// the order queue entry (an estimate, on the high side for small keys).
pub(crate) const ENTRY_OVERHEAD: usize = 64;

/// An insertion-ordered map of at most `capacity` entries, each kept for at
/// most `ttl`.
#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    map: HashMap<K, Slot<V>>,
    order: VecDeque<(K, u64, MonoTime)>,
    capacity: usize,
    ttl: Duration,
    when_full: WhenFull,
    seq: u64,
    evicted: u64,
    refused: u64,
    max_bytes: usize,
    bytes: usize,
    refused_bytes: u64,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub(crate) fn new(capacity: usize, ttl: Duration, when_full: WhenFull) -> Self {
        BoundedMap {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
            when_full,
            seq: 0,
            evicted: 0,
            refused: 0,
            max_bytes: usize::MAX,
            bytes: 0,
            refused_bytes: 0,
        }
    }

    /// Also bounds the sizes of the entries (as given to
    /// [`BoundedMap::insert_sized`]) to `max_bytes` in total.
    pub(crate) fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    fn remove_slot<Q: Hash + Eq + ?Sized>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
    {
        if let Some(s) = self.map.remove(key) {
            self.bytes -= s.size;
        }
    }

    /// Drops entries older than the ttl.
    pub(crate) fn expire(&mut self, now: MonoTime) {
        let cutoff = now - self.ttl;
        // The queue is in insertion (time) order: look only at its front.
        while let Some((_, _, at)) = self.order.front() {
            if *at >= cutoff {
                break;
            }
            let (key, seq, _) = self.order.pop_front().expect("front exists");
            if self.map.get(&key).is_some_and(|s| s.seq == seq) {
                self.remove_slot(&key);
            }
        }
    }

    fn pop_oldest(&mut self) {
        while let Some((key, seq, _)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|s| s.seq == seq) {
                self.remove_slot(&key);
                return;
            }
        }
    }

    /// Inserts or replaces; returns false when refused because full.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, now: MonoTime, key: K, value: V) -> bool {
        self.insert_sized(now, key, value, 0)
    }

    /// Inserts or replaces an entry of `size` bytes (its own size; the
    /// per-entry overhead is added); returns false when refused because
    /// full, in entries or in bytes.
    pub(crate) fn insert_sized(&mut self, now: MonoTime, key: K, value: V, size: usize) -> bool {
        self.expire(now);
        let size = size.saturating_add(ENTRY_OVERHEAD);
        if size > self.max_bytes {
            self.refused += 1;
            self.refused_bytes += size as u64;
            return false;
        }
        // A replaced entry's bytes are freed first.
        self.remove_slot(&key);
        while self.map.len() >= self.capacity || self.bytes + size > self.max_bytes {
            match self.when_full {
                WhenFull::Refuse => {
                    self.refused += 1;
                    self.refused_bytes += size as u64;
                    return false;
                }
                WhenFull::EvictOldest => {
                    if self.map.is_empty() {
                        break;
                    }
                    self.pop_oldest();
                    self.evicted += 1;
                }
            }
        }
        self.bytes += size;
        self.seq += 1;
        self.order.push_back((key.clone(), self.seq, now));
        self.map.insert(
            key,
            Slot {
                value,
                at: now,
                seq: self.seq,
                size,
            },
        );
        // Replaced keys leave stale order entries; keep the queue bounded too.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let map = &self.map;
            self.order
                .retain(|(k, s, _)| map.get(k).is_some_and(|slot| slot.seq == *s));
        }
        true
    }

    /// The live value of `key`.
    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, now: MonoTime, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let cutoff = now - self.ttl;
        self.map
            .get(key)
            .filter(|s| s.at >= cutoff)
            .map(|s| &s.value)
    }

    /// The live value of `key`, mutably.
    pub(crate) fn get_mut<Q: Hash + Eq + ?Sized>(
        &mut self,
        now: MonoTime,
        key: &Q,
    ) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let cutoff = now - self.ttl;
        self.map
            .get_mut(key)
            .filter(|s| s.at >= cutoff)
            .map(|s| &mut s.value)
    }

    pub(crate) fn contains<Q: Hash + Eq + ?Sized>(&self, now: MonoTime, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.get(now, key).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes held (entry sizes plus overhead).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes of the entries refused.
    pub(crate) fn refused_bytes(&self) -> u64 {
        self.refused_bytes
    }

    /// Sets the size of a live entry that grew or shrank after insertion;
    /// the map may go over its byte budget by that growth until entries
    /// expire (new inserts are refused or evict meanwhile).
    pub(crate) fn resize<Q: Hash + Eq + ?Sized>(&mut self, key: &Q, size: usize)
    where
        K: Borrow<Q>,
    {
        if let Some(s) = self.map.get_mut(key) {
            let size = size.saturating_add(ENTRY_OVERHEAD);
            self.bytes = self.bytes - s.size + size;
            s.size = size;
        }
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    #[cfg(test)]
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::tests::t;

    #[test]
    fn evicts_oldest_when_full() {
        let mut m = BoundedMap::new(2, Duration::from_secs(60), WhenFull::EvictOldest);
        assert!(m.insert(t(0), "a", 1));
        assert!(m.insert(t(1), "b", 2));
        assert!(m.insert(t(2), "c", 3));
        assert_eq!(m.len(), 2);
        assert!(!m.contains(t(2), &"a"));
        assert_eq!(m.get(t(2), &"c"), Some(&3));
        assert_eq!(m.evicted(), 1);
    }

    #[test]
    fn refuses_when_full_and_expires_by_age() {
        let mut m = BoundedMap::new(2, Duration::from_secs(10), WhenFull::Refuse);
        assert!(m.insert(t(0), "a", 1));
        assert!(m.insert(t(5), "b", 2));
        assert!(!m.insert(t(6), "c", 3));
        assert_eq!(m.refused(), 1);
        assert!(!m.contains(t(11), &"a"), "a is past its ttl");
        assert!(m.insert(t(11), "c", 3), "expiry made room");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn bytes_are_bounded_and_freed_on_removal() {
        let mut m = BoundedMap::new(100, Duration::from_secs(10), WhenFull::EvictOldest)
            .with_max_bytes(3 * (ENTRY_OVERHEAD + 100));
        for i in 0..10 {
            assert!(m.insert_sized(t(i), i, (), 100));
            assert!(m.bytes() <= 3 * (ENTRY_OVERHEAD + 100));
        }
        assert_eq!(m.len(), 3, "evicted for bytes, not entries");
        assert_eq!(m.evicted(), 7);
        assert!(
            !m.insert_sized(t(10), 99, (), 10_000),
            "larger than the budget"
        );
        assert_eq!(m.refused_bytes(), (10_000 + ENTRY_OVERHEAD) as u64);
        m.insert_sized(t(10), 9, (), 0);
        assert_eq!(
            m.bytes(),
            2 * (ENTRY_OVERHEAD + 100) + ENTRY_OVERHEAD,
            "replaced"
        );
        m.expire(t(30));
        assert_eq!((m.len(), m.bytes()), (0, 0));
        let mut r = BoundedMap::new(100, Duration::from_secs(10), WhenFull::Refuse)
            .with_max_bytes(2 * (ENTRY_OVERHEAD + 100));
        assert!(r.insert_sized(t(0), 1, (), 100));
        assert!(r.insert_sized(t(0), 2, (), 100));
        assert!(!r.insert_sized(t(0), 3, (), 100), "fails closed");
        assert_eq!(r.refused(), 1);
    }

    #[test]
    fn replacing_a_key_keeps_it_until_its_new_age() {
        let mut m = BoundedMap::new(4, Duration::from_secs(10), WhenFull::EvictOldest);
        m.insert(t(0), "a", 1);
        m.insert(t(8), "a", 2);
        m.expire(t(12));
        assert_eq!(m.get(t(12), &"a"), Some(&2));
        for i in 0..100 {
            m.insert(t(12), "a", i);
        }
        assert!(m.order.len() <= 8, "order queue stays bounded");
    }
}
