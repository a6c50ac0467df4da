//! [`ResponseCache`]: the answers sent recently, so that a retransmitted
//! ping (same sender, packet id and nonce) gets the same answer again instead
//! of a replay rejection.
//!
//! Every answered ping is cached, so this sits on the hot path. An entry is
//! keyed by one 64-bit keyed hash of (sender, packet id, nonce): the hash
//! key is random, chosen when the cache is made, so a sender cannot aim
//! collisions, and the table then uses that value as its own hash (no second
//! hashing, no `String` keys). A hit also checks the sender's address; a
//! false match needs a 64-bit collision under an unknown key. Entries leave
//! by age (a time-ordered ring, checked at its front) and, when the cache is
//! full, oldest first (counted).

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use crate::time::MonoTime;

/// A hasher that passes a `u64` key through: the keys are already keyed
/// hashes, uniformly spread.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by u64 keys; fold anyway so the type is total.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Bytes counted for an entry beyond its datagram (key, ring slot, map
/// slot), so a flood of tiny answers is bounded in bytes too.
const ENTRY_OVERHEAD: usize = 64;

struct Entry {
    from: SocketAddr,
    datagram: Bytes,
    /// The original answer went to a trusted (GROEN) sender: resends are
    /// not charged to the address's amplification credit.
    exempt: bool,
    seq: u64,
    at: MonoTime,
}

impl Entry {
    fn size(&self) -> usize {
        self.datagram.len() + ENTRY_OVERHEAD
    }
}

/// Recently sent answers, bounded in count and age.
pub(crate) struct ResponseCache {
    /// Keyed with a random seed (foldhash's quality variant: several times
    /// cheaper than SipHash over a packet id and a nonce); a sender who
    /// cannot see the keys cannot aim collisions, and a false match would
    /// also need the sender's address.
    keys: foldhash::quality::RandomState,
    map: HashMap<u64, Entry, BuildHasherDefault<PassThrough>>,
    /// (key, seq, inserted at), oldest first.
    ring: VecDeque<(u64, u64, MonoTime)>,
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
    ttl: Duration,
    seq: u64,
    evicted: u64,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("entries", &self.map.len())
            .field("capacity", &self.capacity)
            .field("evicted", &self.evicted)
            .finish_non_exhaustive()
    }
}

impl ResponseCache {
    /// A cache of at most `capacity` answers, each kept for `ttl`.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        ResponseCache {
            keys: foldhash::quality::RandomState::default(),
            map: HashMap::default(),
            ring: VecDeque::new(),
            capacity: capacity.max(1),
            max_bytes: usize::MAX,
            bytes: 0,
            ttl,
            seq: 0,
            evicted: 0,
        }
    }

    /// Bounds the bytes held as well (datagrams plus a fixed overhead per
    /// entry); the oldest answers make room.
    pub(crate) fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The key of a ping: a keyed 64-bit hash of sender, packet id and nonce.
    pub(crate) fn key(&self, from: SocketAddr, packet_id: &str, nonce: &str) -> u64 {
        let mut h = self.keys.build_hasher();
        from.hash(&mut h);
        packet_id.hash(&mut h);
        nonce.hash(&mut h);
        h.finish()
    }

    /// The cached answer for `key` from `from`, if still fresh, and whether
    /// it went to a trusted sender.
    pub(crate) fn get(&self, now: MonoTime, key: u64, from: SocketAddr) -> Option<(Bytes, bool)> {
        let e = self.map.get(&key)?;
        if e.from != from {
            return None;
        }
        (e.at >= now - self.ttl).then(|| (e.datagram.clone(), e.exempt))
    }

    /// Caches `datagram` as the answer for `key` from `from`; `exempt` when
    /// it went to a trusted sender.
    pub(crate) fn insert(
        &mut self,
        now: MonoTime,
        key: u64,
        from: SocketAddr,
        datagram: Bytes,
        exempt: bool,
    ) {
        self.expire(now);
        if let Some(old) = self.map.remove(&key) {
            self.bytes -= old.size();
        }
        let entry = Entry {
            from,
            datagram,
            exempt,
            seq: self.seq + 1,
            at: now,
        };
        let size = entry.size();
        while !self.map.is_empty()
            && (self.map.len() >= self.capacity || self.bytes + size > self.max_bytes)
        {
            self.pop_oldest();
            self.evicted += 1;
        }
        self.seq += 1;
        self.ring.push_back((key, self.seq, now));
        self.bytes += size;
        self.map.insert(key, entry);
        // A replaced key leaves a stale ring entry; keep the ring bounded.
        if self.ring.len() > self.capacity.saturating_mul(2) {
            let map = &self.map;
            self.ring
                .retain(|(k, s, _)| map.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    /// Drops the answers older than the ttl.
    pub(crate) fn expire(&mut self, now: MonoTime) {
        let cutoff = now - self.ttl;
        while let Some((key, seq, at)) = self.ring.front().copied() {
            if at >= cutoff {
                break;
            }
            self.ring.pop_front();
            self.remove_if_current(key, seq);
        }
    }

    fn pop_oldest(&mut self) {
        while let Some((key, seq, _)) = self.ring.pop_front() {
            if self.remove_if_current(key, seq) {
                return;
            }
        }
    }

    fn remove_if_current(&mut self, key: u64, seq: u64) -> bool {
        if self.map.get(&key).is_some_and(|e| e.seq == seq) {
            if let Some(old) = self.map.remove(&key) {
                self.bytes -= old.size();
            }
            return true;
        }
        false
    }

    /// Answers held.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes held (datagrams plus the per-entry overhead).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Answers dropped to make room.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> MonoTime {
        MonoTime::from_duration(Duration::from_secs(s))
    }

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn a_retransmission_finds_its_answer_only_from_its_sender() {
        let mut c = ResponseCache::new(10, Duration::from_secs(30));
        let k = c.key(addr(1), "ping_a", "n1");
        c.insert(at(100), k, addr(1), Bytes::from(vec![1, 2, 3]), false);
        assert_eq!(
            c.get(at(101), k, addr(1)),
            Some((Bytes::from_static(&[1, 2, 3]), false))
        );
        assert_eq!(c.get(at(101), k, addr(2)), None, "another sender");
        assert_eq!(
            c.get(at(101), c.key(addr(1), "ping_a", "n2"), addr(1)),
            None
        );
        assert_eq!(
            c.get(at(101), c.key(addr(2), "ping_a", "n1"), addr(2)),
            None
        );
    }

    #[test]
    fn answers_expire_by_age() {
        let mut c = ResponseCache::new(10, Duration::from_secs(30));
        let k1 = c.key(addr(1), "ping_a", "n");
        c.insert(at(100), k1, addr(1), Bytes::from(vec![1]), false);
        let k2 = c.key(addr(1), "ping_b", "n");
        c.insert(at(120), k2, addr(1), Bytes::from(vec![2]), false);
        // Not yet swept, but older than the ttl: not served.
        assert_eq!(c.get(at(131), k1, addr(1)), None);
        assert_eq!(
            c.get(at(131), k2, addr(1)),
            Some((Bytes::from_static(&[2]), false))
        );
        c.expire(at(131));
        assert_eq!(c.len(), 1);
        c.expire(at(151));
        assert_eq!(c.len(), 0);
        assert_eq!(c.evicted(), 0);
    }

    #[test]
    fn a_full_cache_drops_its_oldest_and_counts() {
        let mut c = ResponseCache::new(3, Duration::from_secs(30));
        let keys: Vec<u64> = (0..5)
            .map(|i| c.key(addr(1), &format!("ping_{i}"), "n"))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            c.insert(at(100), *k, addr(1), Bytes::from(vec![i as u8]), false);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.evicted(), 2);
        assert_eq!(c.get(at(100), keys[0], addr(1)), None);
        assert_eq!(
            c.get(at(100), keys[4], addr(1)),
            Some((Bytes::from_static(&[4]), false))
        );
        // Replacing a key many times keeps the ring bounded.
        for _ in 0..100 {
            c.insert(at(100), keys[4], addr(1), Bytes::from(vec![9]), false);
        }
        assert!(c.ring.len() <= 6);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn the_cache_is_bounded_in_bytes_and_remembers_who_was_trusted() {
        let mut c = ResponseCache::new(1_000, Duration::from_secs(30))
            .with_max_bytes(3 * (100 + ENTRY_OVERHEAD));
        for i in 0..10u16 {
            let k = c.key(addr(i), "ping_a", "n");
            c.insert(at(100), k, addr(i), Bytes::from(vec![0u8; 100]), i == 9);
        }
        assert_eq!(c.len(), 3, "three answers fit the byte budget");
        assert!(c.bytes() <= 3 * (100 + ENTRY_OVERHEAD));
        assert_eq!(c.evicted(), 7);
        let k = c.key(addr(9), "ping_a", "n");
        assert_eq!(
            c.get(at(101), k, addr(9)).map(|(_, exempt)| exempt),
            Some(true)
        );
        let k = c.key(addr(8), "ping_a", "n");
        assert_eq!(
            c.get(at(101), k, addr(8)).map(|(_, exempt)| exempt),
            Some(false)
        );
    }
}
