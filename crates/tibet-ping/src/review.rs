//! [`ReviewQueue`]: items waiting for a human, keyed by (source DID, id),
//! bounded in entries and in bytes, and expiring after a time to live.
//!
//! Used for GEEL pings (the [`Airlock`](crate::Airlock)) and for beacons
//! waiting for approval (the [`BeaconHandler`](crate::BeaconHandler)). The
//! key includes the sender's DID, so a re-send of an id under another DID is
//! a different entry, and a re-send under the same DID never changes the
//! entry a human is looking at: the first arrival stays.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use alloc::collections::BTreeMap;

use crate::collections::HashMap;
use core::time::Duration;

use serde::Serialize;

use crate::time::Timestamp;

/// Default time an item waits for review before it expires (15 min).
pub const DEFAULT_REVIEW_TTL: Duration = Duration::from_secs(15 * 60);

/// Bytes charged per entry on top of its own size (keys, map nodes).
const ENTRY_OVERHEAD: usize = 128;

/// What [`ReviewQueue::offer`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Queued as a new entry.
    Queued,
    /// An entry with this (DID, id) already waits; it was left unchanged.
    AlreadyQueued,
    /// Refused: the queue holds its maximum number of entries.
    FullEntries,
    /// Refused: the entry would take the queue over its byte budget.
    FullBytes,
}

impl Admission {
    /// Whether an entry with the key waits now (new or old).
    pub const fn is_waiting(self) -> bool {
        matches!(self, Admission::Queued | Admission::AlreadyQueued)
    }
}

/// Counters and sizes of a [`ReviewQueue`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReviewStats {
    /// Entries waiting now.
    pub waiting: usize,
    /// Bytes charged for them now.
    pub bytes: usize,
    /// Re-sends of a waiting (DID, id), left unchanged.
    pub duplicates: u64,
    /// Refused because the entry cap was reached.
    pub refused_entries: u64,
    /// Refused because the byte budget was reached.
    pub refused_bytes: u64,
    /// Entries that expired unreviewed.
    pub expired: u64,
}

#[derive(Debug)]
struct Entry<T> {
    did: String,
    id: String,
    item: T,
    queued_at: Timestamp,
    bytes: usize,
}

/// Items waiting for review, oldest first; see the module docs.
#[derive(Debug)]
pub struct ReviewQueue<T> {
    capacity: usize,
    byte_capacity: usize,
    ttl: Duration,
    next_seq: u64,
    order: BTreeMap<u64, Entry<T>>,
    index: HashMap<(String, String), u64>,
    stats: ReviewStats,
    /// Moves on every entry queued, taken or expired (see
    /// [`ReviewQueue::changes`]).
    changes: u64,
}

impl<T> ReviewQueue<T> {
    /// A queue of at most `capacity` entries and `byte_capacity` bytes,
    /// whose entries expire `ttl` after they were queued.
    pub fn new(capacity: usize, byte_capacity: usize, ttl: Duration) -> Self {
        ReviewQueue {
            capacity,
            byte_capacity,
            ttl,
            next_seq: 0,
            order: BTreeMap::new(),
            index: HashMap::new(),
            stats: ReviewStats::default(),
            changes: 0,
        }
    }

    /// Sets the byte budget and time to live (entries already queued keep
    /// their place).
    pub fn set_limits(&mut self, byte_capacity: usize, ttl: Duration) {
        self.byte_capacity = byte_capacity;
        self.ttl = ttl;
    }

    /// The time to live of an entry.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Queues `item` from `did` under `id` at `now`; `size` is the item's
    /// own size in bytes (its strings), charged with the key and an
    /// overhead against the byte budget.
    pub fn offer(
        &mut self,
        now: Timestamp,
        did: &str,
        id: &str,
        item: T,
        size: usize,
    ) -> Admission {
        if self.find(did, id).is_some() {
            self.stats.duplicates += 1;
            return Admission::AlreadyQueued;
        }
        if self.order.len() >= self.capacity {
            self.stats.refused_entries += 1;
            return Admission::FullEntries;
        }
        let bytes = size + 2 * (did.len() + id.len()) + ENTRY_OVERHEAD;
        if self.stats.bytes + bytes > self.byte_capacity {
            self.stats.refused_bytes += 1;
            return Admission::FullBytes;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.index.insert((did.to_owned(), id.to_owned()), seq);
        self.order.insert(
            seq,
            Entry {
                did: did.to_owned(),
                id: id.to_owned(),
                item,
                queued_at: now,
                bytes,
            },
        );
        self.stats.bytes += bytes;
        self.changes += 1;
        Admission::Queued
    }

    fn find(&self, did: &str, id: &str) -> Option<u64> {
        // A tuple of Strings cannot be looked up by (&str, &str); the key is
        // at most two capped fields, built only on this review path.
        self.index.get(&(did.to_owned(), id.to_owned())).copied()
    }

    fn remove(&mut self, seq: u64) -> Option<Entry<T>> {
        let entry = self.order.remove(&seq)?;
        self.index.remove(&(entry.did.clone(), entry.id.clone()));
        self.stats.bytes -= entry.bytes;
        self.changes += 1;
        Some(entry)
    }

    /// The waiting items, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.order.values().map(|e| &e.item)
    }

    /// The waiting items with their sender DID and queue time, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Timestamp, &T)> {
        self.order
            .values()
            .map(|e| (e.did.as_str(), e.queued_at, &e.item))
    }

    /// Takes the entry `id` from `did` out of the queue.
    pub fn take(&mut self, did: &str, id: &str) -> Option<T> {
        let seq = self.find(did, id)?;
        self.remove(seq).map(|e| e.item)
    }

    /// Takes the oldest entry with `id`, whatever its DID: the first that
    /// arrived, which is the one a human saw first.
    pub fn take_oldest(&mut self, id: &str) -> Option<T> {
        let seq = self
            .order
            .iter()
            .find(|(_, e)| e.id == id)
            .map(|(&seq, _)| seq)?;
        self.remove(seq).map(|e| e.item)
    }

    /// Removes and returns the entries queued `ttl` or longer before `now`,
    /// oldest first, so the caller can record their expiry.
    pub fn expire(&mut self, now: Timestamp) -> Vec<T> {
        let due: Vec<u64> = self
            .order
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.queued_at) >= self.ttl)
            .map(|(&seq, _)| seq)
            .collect();
        let expired: Vec<T> = due
            .into_iter()
            .filter_map(|seq| self.remove(seq))
            .map(|e| e.item)
            .collect();
        self.stats.expired += expired.len() as u64;
        expired
    }

    /// Entries waiting now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// A counter that moves whenever the waiting entries change (queued,
    /// taken, expired): a keeper of a copy compares it to know whether its
    /// copy is current.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Counters and sizes.
    pub fn stats(&self) -> ReviewStats {
        ReviewStats {
            waiting: self.order.len(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_secs(1_790_000_000);

    #[test]
    fn first_arrival_stays_and_another_did_is_another_entry() {
        let mut q = ReviewQueue::new(8, 1 << 20, DEFAULT_REVIEW_TTL);
        assert_eq!(
            q.offer(NOW, "jis:a", "p1", "original", 8),
            Admission::Queued
        );
        assert_eq!(
            q.offer(NOW, "jis:a", "p1", "changed", 8),
            Admission::AlreadyQueued
        );
        assert_eq!(q.offer(NOW, "jis:evil", "p1", "evil", 4), Admission::Queued);
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), ["original", "evil"]);
        assert_eq!(q.stats().duplicates, 1);
        assert_eq!(q.take_oldest("p1"), Some("original"));
        assert_eq!(q.take("jis:a", "p1"), None);
        assert_eq!(q.take("jis:evil", "p1"), Some("evil"));
        assert!(q.is_empty());
        assert_eq!(q.stats().bytes, 0);
    }

    #[test]
    fn bounded_in_entries_and_bytes_with_counters() {
        let mut q = ReviewQueue::new(2, 1 << 20, DEFAULT_REVIEW_TTL);
        assert!(q.offer(NOW, "d", "1", (), 0).is_waiting());
        assert!(q.offer(NOW, "d", "2", (), 0).is_waiting());
        assert_eq!(q.offer(NOW, "d", "3", (), 0), Admission::FullEntries);
        let mut q = ReviewQueue::new(100, 1000, DEFAULT_REVIEW_TTL);
        assert_eq!(q.offer(NOW, "d", "1", (), 600), Admission::Queued);
        assert_eq!(q.offer(NOW, "d", "2", (), 600), Admission::FullBytes);
        assert_eq!(q.offer(NOW, "d", "3", (), 10), Admission::Queued);
        let s = q.stats();
        assert_eq!((s.waiting, s.refused_bytes, s.refused_entries), (2, 1, 0));
        assert!(s.bytes <= 1000, "{s:?}");
        // Many large entries never take it over budget.
        for i in 0..1000 {
            q.offer(NOW, "d", &format!("x{i}"), (), 50);
            assert!(q.stats().bytes <= 1000);
        }
    }

    #[test]
    fn entries_expire_after_the_ttl_and_are_returned() {
        let ttl = Duration::from_secs(900);
        let mut q = ReviewQueue::new(8, 1 << 20, ttl);
        q.offer(NOW, "d", "old", 1, 0);
        q.offer(NOW + Duration::from_secs(600), "d", "new", 2, 0);
        assert!(q.expire(NOW + Duration::from_secs(899)).is_empty());
        assert_eq!(q.expire(NOW + ttl), [1]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.expire(NOW + Duration::from_secs(1500)), [2]);
        assert_eq!(q.stats().expired, 2);
        assert_eq!(q.stats().bytes, 0);
        // The same key may be queued again once its entry is gone.
        assert_eq!(q.offer(NOW, "d", "old", 3, 0), Admission::Queued);
    }
}
