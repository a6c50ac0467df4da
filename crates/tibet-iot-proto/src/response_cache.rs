//! [`ResponseCache`]: the answers sent recently, so that a retransmitted
//! ping (same sender, packet id and nonce) gets the same answer again instead
//! of a replay rejection.
//!
//! Every answered ping is cached, so this sits on the hot path, and at a
//! busy listener every insert also evicts the oldest answer. The layout is
//! chosen for that:
//!
//! - **The datagrams live in one byte log** (a circular buffer, grown
//!   lazily up to the byte bound): an answer is copied in at the write
//!   head, and the oldest answers are overwritten in order. No allocation
//!   or free per answer, and no shared reference count between the send
//!   queue and the cache; a hit copies the answer out (retransmissions are
//!   rare).
//! - **The entries are a ring in insertion order** (oldest first), so
//!   expiry by age and eviction look at the front only.
//! - **The index maps a key to its entry's sequence number** (16 bytes a
//!   slot): a small table, where a table of whole entries was ~1.7 MB at
//!   8,192 answers.
//!
//! An entry is keyed by one 64-bit keyed hash of (sender, packet id,
//! nonce): the hash key is random, chosen when the cache is made, so a
//! sender cannot aim collisions, and the index uses that value as its own
//! hash (no second hashing, no `String` keys). A hit also checks the
//! sender's address; a false match needs a 64-bit collision under an
//! unknown key. Entries leave by age and, when the cache is full (in count
//! or bytes), oldest first (counted).

use alloc::vec::Vec;

use crate::collections::HashMap;
use alloc::collections::VecDeque;
use bytes::Bytes;
use core::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use core::net::SocketAddr;
use core::time::Duration;

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

/// Bytes counted for an entry beyond its datagram (ring slot, index slot),
/// so a flood of tiny answers is bounded in bytes too.
const ENTRY_OVERHEAD: usize = 64;

/// The byte log's first size; it doubles as answers need room, up to the
/// byte bound (a node that answers little holds little).
const LOG_INITIAL: usize = 4096;

/// The byte log's largest size (offsets are `u32`).
const LOG_MAX: usize = u32::MAX as usize;

/// One cached answer: its place in the byte log and who it went to.
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u64,
    at: MonoTime,
    from: SocketAddr,
    offset: u32,
    len: u32,
    /// The original answer went to a trusted (GROEN) sender: resends are
    /// not charged to the address's amplification credit.
    exempt: bool,
    /// False once the key was answered again (a newer entry holds it).
    live: bool,
}

impl Entry {
    fn size(&self) -> usize {
        self.len as usize + ENTRY_OVERHEAD
    }

    fn end(&self) -> usize {
        self.offset as usize + self.len as usize
    }
}

/// Recently sent answers, bounded in count, bytes and age.
pub(crate) struct ResponseCache {
    keys: foldhash::quality::RandomState,
    /// Key -> sequence number of its entry in `ring`.
    index: HashMap<u64, u64, BuildHasherDefault<PassThrough>>,
    /// Entries, oldest first; `ring[i]` has sequence number `first_seq + i`.
    ring: VecDeque<Entry>,
    first_seq: u64,
    /// The byte log and its write head.
    log: Vec<u8>,
    head: usize,
    capacity: usize,
    max_bytes: usize,
    /// Datagram bytes of the live entries plus their overhead.
    bytes: usize,
    ttl: Duration,
    evicted: u64,
}

impl core::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("entries", &self.index.len())
            .field("capacity", &self.capacity)
            .field("bytes", &self.bytes)
            .field("log", &self.log.len())
            .field("evicted", &self.evicted)
            .finish()
    }
}

impl ResponseCache {
    /// A cache of at most `capacity` answers, each kept for `ttl`.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        ResponseCache {
            keys: foldhash::quality::RandomState::default(),
            index: HashMap::default(),
            ring: VecDeque::new(),
            first_seq: 0,
            log: Vec::new(),
            head: 0,
            capacity: capacity.max(1),
            max_bytes: usize::MAX,
            bytes: 0,
            ttl,
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

    fn entry(&self, seq: u64) -> Option<&Entry> {
        let i = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.ring.get(i)
    }

    /// The cached answer for `key` from `from`, if still fresh, and whether
    /// it went to a trusted sender.
    pub(crate) fn get(&self, now: MonoTime, key: u64, from: SocketAddr) -> Option<(Bytes, bool)> {
        let e = self.entry(*self.index.get(&key)?)?;
        if !e.live || e.key != key || e.from != from || e.at < now - self.ttl {
            return None;
        }
        let datagram = self.log.get(e.offset as usize..e.end())?;
        Some((Bytes::copy_from_slice(datagram), e.exempt))
    }

    /// Caches a copy of `datagram` as the answer for `key` from `from`;
    /// `exempt` when it went to a trusted sender. An answer larger than the
    /// byte bound is not cached.
    pub(crate) fn insert(
        &mut self,
        now: MonoTime,
        key: u64,
        from: SocketAddr,
        datagram: &[u8],
        exempt: bool,
    ) {
        self.expire(now);
        // An older answer under this key is replaced, even by none.
        if let Some(seq) = self.index.remove(&key) {
            self.retire(seq);
        }
        let size = datagram.len() + ENTRY_OVERHEAD;
        let Ok(len) = u32::try_from(datagram.len()) else {
            return;
        };
        if size > self.max_bytes.min(LOG_MAX) {
            // Refused, and counted with the answers that made room.
            self.evicted += 1;
            return;
        }
        while !self.index.is_empty()
            && (self.index.len() >= self.capacity || self.bytes + size > self.max_bytes)
        {
            self.pop_front(true);
        }
        let offset = self.make_room(datagram.len());
        self.log[offset..offset + datagram.len()].copy_from_slice(datagram);
        self.head = offset + datagram.len();
        let seq = self.first_seq + self.ring.len() as u64;
        self.ring.push_back(Entry {
            key,
            at: now,
            from,
            offset: offset as u32,
            len,
            exempt,
            live: true,
        });
        self.index.insert(key, seq);
        self.bytes += size;
        // Keys answered again leave retired entries behind; keep the ring
        // bounded without evicting live answers.
        if self.ring.len() > self.capacity.saturating_mul(2) {
            self.compact();
        }
    }

    /// Where `len` bytes go in the log: at the head if they fit (growing the
    /// log up to the byte bound), else from the start; the entries whose
    /// bytes they overwrite (the oldest, since the log is written in order)
    /// leave first.
    fn make_room(&mut self, len: usize) -> usize {
        let mut at = self.head;
        if at + len > self.log.len() {
            let limit = self.max_bytes.min(LOG_MAX);
            // Grow only when the live answers would not fit otherwise; once
            // they fit, going round again overwrites the oldest ones, which
            // the count bound would evict anyway.
            if self.log.len() < limit && self.bytes + len > self.log.len() {
                let grown = (self.log.len() * 2)
                    .max(LOG_INITIAL)
                    .max(at + len)
                    .min(limit);
                self.log.resize(grown, 0);
            }
            if at + len > self.log.len() {
                // Wrap: what lies between the head and the end is older than
                // everything at the start, so it leaves first.
                while self
                    .ring
                    .front()
                    .is_some_and(|e| e.end() > at && e.offset as usize >= at)
                {
                    self.pop_front(true);
                }
                at = 0;
            }
        }
        while self
            .ring
            .front()
            .is_some_and(|e| (e.offset as usize) < at + len && e.end() > at)
        {
            self.pop_front(true);
        }
        at
    }

    /// Marks the entry `seq` as replaced by a newer answer.
    fn retire(&mut self, seq: u64) {
        let Some(i) = seq.checked_sub(self.first_seq) else {
            return;
        };
        if let Some(e) = usize::try_from(i).ok().and_then(|i| self.ring.get_mut(i))
            && e.live
        {
            e.live = false;
            self.bytes -= e.size();
        }
    }

    /// Drops the oldest entry; `evicting` counts it when it was live.
    fn pop_front(&mut self, evicting: bool) {
        let Some(e) = self.ring.pop_front() else {
            return;
        };
        let seq = self.first_seq;
        self.first_seq += 1;
        if e.live {
            self.bytes -= e.size();
            // One probe: a live entry is what its key points to.
            if let crate::collections::hash_map::Entry::Occupied(o) = self.index.entry(e.key)
                && *o.get() == seq
            {
                o.remove();
            }
            if evicting {
                self.evicted += 1;
            }
        }
    }

    /// Removes the retired entries and renumbers the live ones.
    fn compact(&mut self) {
        self.ring.retain(|e| e.live);
        for (i, e) in self.ring.iter().enumerate() {
            self.index.insert(e.key, self.first_seq + i as u64);
        }
    }

    /// Drops the answers older than the ttl.
    pub(crate) fn expire(&mut self, now: MonoTime) {
        let cutoff = now - self.ttl;
        while self.ring.front().is_some_and(|e| e.at < cutoff) {
            self.pop_front(false);
        }
    }

    /// Answers held.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes held (datagrams plus the per-entry overhead).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Answers dropped to make room, or refused as larger than the byte
    /// bound.
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
        c.insert(at(100), k, addr(1), &[1, 2, 3], false);
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
        c.insert(at(100), k1, addr(1), &[1], false);
        let k2 = c.key(addr(1), "ping_b", "n");
        c.insert(at(120), k2, addr(1), &[2], false);
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
            c.insert(at(100), *k, addr(1), &[i as u8], false);
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
            c.insert(at(100), keys[4], addr(1), &[9], false);
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
            c.insert(at(100), k, addr(i), &[0u8; 100], i == 9);
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

    #[test]
    fn the_byte_log_wraps_and_serves_only_whole_current_answers() {
        // A log of ~2 KiB written around many times with answers of mixed
        // sizes: whatever is served is exactly what was cached last for
        // that key, and the newest answer is always there.
        let mut c = ResponseCache::new(1_000, Duration::from_secs(30)).with_max_bytes(2048);
        let mut last: Vec<Option<Vec<u8>>> = vec![None; 40];
        for n in 0..2_000usize {
            let k = n % 40;
            let key = c.key(addr(1), &format!("ping_{k}"), "n");
            let body: Vec<u8> = (0..(n * 37 % 300 + 1)).map(|b| (b + n) as u8).collect();
            c.insert(at(100), key, addr(1), &body, false);
            last[k] = Some(body);
            assert_eq!(
                c.get(at(100), key, addr(1)).map(|(b, _)| b.to_vec()),
                last[k].clone(),
                "the newest answer, n={n}"
            );
            for (j, want) in last.iter().enumerate() {
                let kj = c.key(addr(1), &format!("ping_{j}"), "n");
                if let Some((got, _)) = c.get(at(100), kj, addr(1)) {
                    assert_eq!(Some(got.to_vec()), *want, "key {j} after n={n}");
                }
            }
            assert!(c.bytes() <= 2048);
            assert!(c.log.len() <= 2048);
        }
        assert!(c.evicted() > 0);
    }

    #[test]
    fn an_answer_larger_than_the_byte_bound_is_not_cached() {
        let mut c = ResponseCache::new(10, Duration::from_secs(30)).with_max_bytes(256);
        let k = c.key(addr(1), "ping_a", "n");
        c.insert(at(100), k, addr(1), &[7u8; 300], false);
        assert_eq!(c.get(at(100), k, addr(1)), None);
        assert_eq!(c.len(), 0);
        assert_eq!(c.bytes(), 0);
        assert_eq!(c.evicted(), 1, "the refusal is counted");
    }

    #[test]
    fn the_log_grows_with_use_from_a_small_start() {
        let mut c = ResponseCache::new(10_000, Duration::from_secs(30));
        assert_eq!(c.log.capacity(), 0, "nothing held before the first answer");
        for n in 0..1_000u32 {
            let k = c.key(addr(1), &format!("ping_{n}"), "n");
            c.insert(at(100), k, addr(1), &[1u8; 300], false);
        }
        assert_eq!(c.len(), 1_000);
        assert_eq!(c.evicted(), 0, "the log grew instead of evicting");
        assert!(c.log.len() >= 300_000 && c.log.len() <= 2 * 300_000 + LOG_INITIAL);
    }

    proptest::proptest! {
        /// Inserts and lookups in any order, with time passing: an answer
        /// served is always the one cached last for that key and sender,
        /// and the bounds hold.
        #[test]
        fn served_answers_are_always_the_latest(
            ops in proptest::collection::vec((0u8..12, 0u16..3, 1usize..400, 0u64..4), 1..300),
            max_bytes in 256usize..4096,
            capacity in 1usize..20,
        ) {
            let mut c = ResponseCache::new(capacity, Duration::from_secs(5)).with_max_bytes(max_bytes);
            let mut latest = std::collections::HashMap::new();
            let mut t = 100;
            for (n, (k, from, len, dt)) in ops.into_iter().enumerate() {
                t += dt;
                let key = c.key(addr(from), &format!("ping_{k}"), "n");
                let body: Vec<u8> = (0..len).map(|b| (b * 7 + n) as u8).collect();
                c.insert(at(t), key, addr(from), &body, n % 2 == 0);
                latest.insert((k, from), (body, n % 2 == 0, t));
                for ((k, from), (want, exempt, when)) in &latest {
                    let key = c.key(addr(*from), &format!("ping_{k}"), "n");
                    if let Some((got, ex)) = c.get(at(t), key, addr(*from)) {
                        proptest::prop_assert_eq!(&got[..], &want[..]);
                        proptest::prop_assert_eq!(ex, *exempt);
                        proptest::prop_assert!(*when + 5 >= t);
                    }
                }
                proptest::prop_assert!(c.len() <= capacity);
                proptest::prop_assert!(c.bytes() <= max_bytes);
                proptest::prop_assert!(c.ring.len() <= 2 * capacity + 1);
            }
        }
    }
}
