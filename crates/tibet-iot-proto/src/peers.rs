//! [`PeerTracker`]: which devices we heard from, where, and when; bounded.
//!
//! Every answered packet looks its sender up here, so the table is a hash
//! map (O(1) at 10,000 peers, where a sorted map walked ~14 cold DID strings
//! per lookup), kept in insertion order so that iteration, and the
//! simulator's seeded runs, stay deterministic. DIDs up to 24 bytes are
//! held inline ([`CompactString`]), so a lookup compares its key without
//! following a pointer, and the hasher is a fast one with a random seed
//! (the order of iteration does not depend on it).

use alloc::vec::Vec;

use compact_str::CompactString;
use core::net::SocketAddr;
use core::time::Duration;
use indexmap::IndexMap;

use crate::time::MonoTime;
use serde::Serialize;

/// What we know of one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// The peer's DID (inline up to 24 bytes; derefs to `str`).
    pub did: CompactString,
    /// Its last known transport address.
    pub address: SocketAddr,
    /// When we first heard of it.
    pub first_seen: MonoTime,
    /// When we last heard from it.
    pub last_seen: MonoTime,
    /// Packets counted from it.
    pub packet_count: u64,
    /// Whether the peer has proven it receives at `address`: it answered a
    /// request we sent there (a nonce challenge), it was configured by hand,
    /// or it sent a packet whose signature was checked
    /// ([`PeerTracker::set_proven`]). Only proven peers get relayed
    /// traffic; an unproven one gets at most a challenge heartbeat, paid from
    /// its address's amplification credit (docs/SECURITY.md).
    pub proven: bool,
    /// The peer's explicit trust as last read from the node's trust store,
    /// with the store's generation then (see [`PeerTracker::known_trust`]).
    trust: TrustMemo,
}

/// A copy of a peer's explicit trust score and the trust store's generation
/// it was read at. Not part of a record's identity: records compare equal
/// whatever they remember.
#[derive(Clone, Copy, Debug, Default)]
struct TrustMemo(Option<(Option<f64>, u64)>);

impl PartialEq for TrustMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for TrustMemo {}

impl PeerRecord {
    /// A peer first heard from now, at `address`, not proven yet.
    fn joined(did: &str, address: SocketAddr, now: MonoTime) -> Self {
        PeerRecord {
            did: CompactString::from(did),
            address,
            first_seen: now,
            last_seen: now,
            packet_count: 1,
            proven: false,
            trust: TrustMemo::default(),
        }
    }

    /// Activity now at `addr`: refreshed, or moved (and no longer proven:
    /// the proof was for the old address).
    fn heard(&mut self, now: MonoTime, addr: SocketAddr) -> PeerUpdate {
        self.last_seen = now;
        self.packet_count += 1;
        if self.address != addr {
            self.address = addr;
            self.proven = false;
            return PeerUpdate::Moved;
        }
        PeerUpdate::Refreshed
    }

    /// Time since the last activity.
    pub fn idle(&self, now: MonoTime) -> Duration {
        now.saturating_duration_since(self.last_seen)
    }
}

/// The effect of recording activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerUpdate {
    /// A new peer.
    Joined,
    /// A known peer, same address.
    Refreshed,
    /// A known peer at a new address.
    Moved,
    /// Table full: not recorded.
    Refused,
    /// A known peer that may not be moved or refreshed by this source.
    Ignored,
}

/// Peer table counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeerStats {
    /// Entries in the table.
    pub tracked: usize,
    /// Entries not idle past the timeout.
    pub alive: usize,
    /// New peers refused because the table was full.
    pub refused: u64,
    /// Peers pruned for idleness.
    pub expired: u64,
}

/// Tracks peers by DID with a liveness timeout and a capacity.
#[derive(Debug)]
pub struct PeerTracker {
    timeout: Duration,
    capacity: usize,
    peers: IndexMap<CompactString, PeerRecord, foldhash::fast::RandomState>,
    refused: u64,
    expired: u64,
}

impl PeerTracker {
    /// An empty tracker: peers idle longer than `timeout` are stale; at most
    /// `capacity` peers.
    pub fn new(timeout: Duration, capacity: usize) -> Self {
        PeerTracker {
            timeout,
            capacity: capacity.max(1),
            peers: IndexMap::default(),
            refused: 0,
            expired: 0,
        }
    }

    /// The idle timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn is_alive(&self, now: MonoTime, p: &PeerRecord) -> bool {
        p.idle(now) <= self.timeout
    }

    /// Records activity of `did` at `addr` (the caller has authenticated the
    /// packet as far as the protocol allows: replay-checked, not ROOD).
    pub fn record_activity(&mut self, now: MonoTime, did: &str, addr: SocketAddr) -> PeerUpdate {
        match self.peers.get_mut(did) {
            Some(p) => p.heard(now, addr),
            None => self.insert_new(now, did, addr),
        }
    }

    /// Where `did` sits in the table, to find it again without a lookup
    /// ([`PeerTracker::known_trust`], [`PeerTracker::record_activity_at`]).
    /// Valid until the table changes (a peer added or pruned).
    pub fn slot(&self, did: &str) -> Option<usize> {
        self.peers.get_index_of(did)
    }

    /// Whether the peer in `slot` is `did`, has proven `addr`, and is alive.
    pub fn proven_at(&self, now: MonoTime, slot: usize, did: &str, addr: SocketAddr) -> bool {
        self.peers.get_index(slot).is_some_and(|(k, p)| {
            k.as_str() == did && p.proven && p.address == addr && self.is_alive(now, p)
        })
    }

    /// What was remembered of the explicit trust of the peer in `slot`: the
    /// score (`None`: it had none) and the trust store's generation it was
    /// read at, as `PingNode::explicit_trust` returned them.
    pub fn known_trust(&self, slot: usize) -> Option<(Option<f64>, u64)> {
        self.peers.get_index(slot).and_then(|(_, p)| p.trust.0)
    }

    /// Remembers the peer's explicit trust (`None`: it has none) read at
    /// `generation` of the node's trust store.
    pub fn remember_trust(&mut self, slot: usize, score: Option<f64>, generation: u64) {
        if let Some((_, p)) = self.peers.get_index_mut(slot) {
            p.trust = TrustMemo(Some((score, generation)));
        }
    }

    /// [`PeerTracker::record_activity`] for the peer found at `slot` (checked
    /// again: another DID there falls back to the lookup).
    pub fn record_activity_at(
        &mut self,
        slot: Option<usize>,
        now: MonoTime,
        did: &str,
        addr: SocketAddr,
    ) -> PeerUpdate {
        match slot.and_then(|i| self.peers.get_index_mut(i)) {
            Some((k, p)) if k.as_str() == did => p.heard(now, addr),
            _ => self.record_activity(now, did, addr),
        }
    }

    /// Records a peer only if unknown (or stale): for unauthenticated sources
    /// such as beacons, which may introduce a device but never move one.
    pub fn introduce(&mut self, now: MonoTime, did: &str, addr: SocketAddr) -> PeerUpdate {
        match self.peers.get(did) {
            Some(p) if self.is_alive(now, p) => {
                if p.address == addr {
                    let p = self.peers.get_mut(did).expect("present");
                    p.last_seen = now;
                    p.packet_count += 1;
                    PeerUpdate::Refreshed
                } else {
                    PeerUpdate::Ignored
                }
            }
            Some(_) => {
                // A stale entry: replaced in place.
                let p = self.peers.get_mut(did).expect("present");
                *p = PeerRecord::joined(did, addr, now);
                PeerUpdate::Joined
            }
            None => self.insert_new(now, did, addr),
        }
    }

    fn insert_new(&mut self, now: MonoTime, did: &str, addr: SocketAddr) -> PeerUpdate {
        if self.peers.len() >= self.capacity {
            self.prune(now);
        }
        if self.peers.len() >= self.capacity {
            self.refused += 1;
            return PeerUpdate::Refused;
        }
        self.peers
            .insert(CompactString::from(did), PeerRecord::joined(did, addr, now));
        PeerUpdate::Joined
    }

    /// Marks a known peer as having proven (or not) its current address;
    /// `false` when the DID is not in the table.
    pub fn set_proven(&mut self, did: &str, proven: bool) -> bool {
        match self.peers.get_mut(did) {
            Some(p) => {
                p.proven = proven;
                true
            }
            None => false,
        }
    }

    /// The address of a live peer that has proven it.
    pub fn proven_address(&self, now: MonoTime, did: &str) -> Option<SocketAddr> {
        self.get(now, did).filter(|p| p.proven).map(|p| p.address)
    }

    /// The address of a live peer.
    pub fn get_address(&self, now: MonoTime, did: &str) -> Option<SocketAddr> {
        self.get(now, did).map(|p| p.address)
    }

    /// The record of a live peer.
    pub fn get(&self, now: MonoTime, did: &str) -> Option<&PeerRecord> {
        self.peers.get(did).filter(|p| self.is_alive(now, p))
    }

    /// Live peers, in no particular order.
    pub fn alive(&self, now: MonoTime) -> impl Iterator<Item = &PeerRecord> {
        self.peers.values().filter(move |p| self.is_alive(now, p))
    }

    /// Removes stale peers and returns them (one pass, order kept).
    pub fn prune(&mut self, now: MonoTime) -> Vec<PeerRecord> {
        let timeout = self.timeout;
        let mut gone = Vec::new();
        self.peers.retain(|_, p| {
            let stale = p.idle(now) > timeout;
            if stale {
                gone.push(p.clone());
            }
            !stale
        });
        self.expired += gone.len() as u64;
        gone
    }

    /// Number of entries, stale ones included.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Counters.
    pub fn stats(&self, now: MonoTime) -> PeerStats {
        PeerStats {
            tracked: self.peers.len(),
            alive: self.alive(now).count(),
            refused: self.refused,
            expired: self.expired,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `s` seconds after a fixed instant: the unit tests' clock.
    pub(crate) fn t(s: i64) -> MonoTime {
        MonoTime::from_secs((1_000_000 + s) as u64)
    }
    /// 127.0.0.1 at port `p`.
    pub(crate) fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn tracks_moves_and_expiry() {
        let mut pt = PeerTracker::new(Duration::from_secs(120), 10);
        assert_eq!(
            pt.record_activity(t(0), "jis:a", addr(1)),
            PeerUpdate::Joined
        );
        assert_eq!(
            pt.record_activity(t(10), "jis:a", addr(1)),
            PeerUpdate::Refreshed
        );
        assert_eq!(
            pt.record_activity(t(20), "jis:a", addr(2)),
            PeerUpdate::Moved
        );
        assert_eq!(pt.get_address(t(140), "jis:a"), Some(addr(2)));
        assert_eq!(pt.get_address(t(141), "jis:a"), None, "idle past 120 s");
        assert_eq!(pt.len(), 1, "stale until pruned");
        let gone = pt.prune(t(141));
        assert_eq!(gone.len(), 1);
        assert!(pt.is_empty());
        assert_eq!(pt.stats(t(141)).expired, 1);
    }

    #[test]
    fn introduce_never_moves_a_live_peer() {
        let mut pt = PeerTracker::new(Duration::from_secs(120), 10);
        assert_eq!(pt.introduce(t(0), "jis:a", addr(1)), PeerUpdate::Joined);
        assert_eq!(pt.introduce(t(1), "jis:a", addr(9)), PeerUpdate::Ignored);
        assert_eq!(pt.get_address(t(1), "jis:a"), Some(addr(1)));
        assert_eq!(
            pt.introduce(t(200), "jis:a", addr(9)),
            PeerUpdate::Joined,
            "stale entry replaced"
        );
    }

    #[test]
    fn a_move_drops_the_proof_of_address() {
        let mut pt = PeerTracker::new(Duration::from_secs(120), 10);
        pt.introduce(t(0), "jis:a", addr(1));
        assert_eq!(
            pt.proven_address(t(0), "jis:a"),
            None,
            "a beacon proves nothing"
        );
        assert!(pt.set_proven("jis:a", true));
        assert_eq!(pt.proven_address(t(0), "jis:a"), Some(addr(1)));
        pt.record_activity(t(1), "jis:a", addr(2));
        assert_eq!(pt.proven_address(t(1), "jis:a"), None, "moved: prove again");
        assert!(!pt.set_proven("jis:zz", true));
    }

    #[test]
    fn refuses_over_capacity_after_pruning() {
        let mut pt = PeerTracker::new(Duration::from_secs(120), 2);
        pt.record_activity(t(0), "jis:a", addr(1));
        pt.record_activity(t(0), "jis:b", addr(2));
        assert_eq!(
            pt.record_activity(t(1), "jis:c", addr(3)),
            PeerUpdate::Refused
        );
        assert_eq!(pt.stats(t(1)).refused, 1);
        assert_eq!(
            pt.record_activity(t(200), "jis:c", addr(3)),
            PeerUpdate::Joined,
            "stale ones pruned"
        );
    }
}
