//! [`MeshRelay`]: multi-hop forwarding with a bounded seen-cache, a hop
//! limit, and reverse paths so responses find their way home (docs/PROTOCOL.md §5, docs/ARCHITECTURE.md).

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use core::net::SocketAddr;
use core::time::Duration;

use serde::Serialize;
use tibet_ping::{PingPacket, RoutingMode};

use crate::time::MonoTime;

use crate::bounded::{BoundedMap, WhenFull};

/// Why a packet was not relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayRefusal {
    /// Only `routing_mode = mesh` is relayed.
    NotMesh,
    /// Already relayed (a loop or a second copy).
    Seen,
    /// The hop limit is reached.
    HopLimit,
    /// The reverse-path table is full (fail closed).
    PathsFull,
}

/// Relay counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    /// Packets forwarded.
    pub relayed: u64,
    /// Responses sent back along a reverse path.
    pub responses_relayed: u64,
    /// Responses to a relayed packet from an address it was not sent to:
    /// dropped.
    pub responses_foreign: u64,
    /// Refused: not mesh.
    pub dropped_not_mesh: u64,
    /// Refused: seen before.
    pub dropped_seen: u64,
    /// Retransmissions from the recorded previous hop forwarded again.
    pub resends_forwarded: u64,
    /// Refused: hop limit.
    pub dropped_hop_limit: u64,
    /// Refused: reverse-path table full.
    pub paths_refused: u64,
    /// Resends from the previous hop answered with the response this relay
    /// already passed back (the answer was lost behind us).
    pub responses_resent: u64,
    /// Seen-cache entries evicted to make room.
    pub seen_evicted: u64,
    /// Entries in the seen-cache.
    pub seen_entries: usize,
    /// Entries in the reverse-path table.
    pub path_entries: usize,
    /// Bytes held by the seen-cache (ids plus per-entry overhead).
    pub seen_bytes: usize,
    /// Bytes held by the reverse-path table (ids, next hops, overhead).
    pub path_bytes: usize,
    /// Bytes of reverse paths refused (the table full in entries or bytes).
    pub paths_refused_bytes: u64,
}

/// Own size of the reverse path `p` for `packet_id`: the id, the record,
/// its next hops and the response kept for resends.
fn path_size(packet_id: &str, p: &Path) -> usize {
    packet_id.len()
        + core::mem::size_of::<Path>()
        + p.next_hops.len() * core::mem::size_of::<SocketAddr>()
        + p.response.as_ref().map_or(0, Vec::len)
}

/// The way back for one relayed packet.
#[derive(Debug)]
struct Path {
    prev_hop: SocketAddr,
    resends: u8,
    /// Where the packet went: only these may send its response back.
    next_hops: Vec<SocketAddr>,
    /// The response passed back, kept so that a resend from the previous
    /// hop is answered here instead of travelling the whole way again.
    response: Option<Vec<u8>>,
    /// When the packet was last forwarded (or answered from `response`).
    last: MonoTime,
}

/// How often a retransmission from the recorded previous hop is forwarded
/// again (bounds what a replaying neighbour can make us send).
const MAX_FORWARDED_RESENDS: u8 = 8;

/// Mesh relay state of one node.
#[derive(Debug)]
pub struct MeshRelay {
    max_hops: u32,
    seen: BoundedMap<String, ()>,
    paths: BoundedMap<String, Path>,
    duplicate_window: Duration,
    stats: RelayStats,
}

impl MeshRelay {
    /// A relay capping hops at `max_hops`, remembering `seen_capacity` packet
    /// ids and `path_capacity` reverse paths for `ttl` each.
    pub fn new(max_hops: u32, seen_capacity: usize, path_capacity: usize, ttl: Duration) -> Self {
        MeshRelay {
            max_hops,
            seen: BoundedMap::new(seen_capacity, ttl, WhenFull::EvictOldest),
            paths: BoundedMap::new(path_capacity, ttl, WhenFull::Refuse),
            duplicate_window: Duration::ZERO,
            stats: RelayStats::default(),
        }
    }

    /// Also bounds the seen-cache and the reverse-path table in bytes
    /// (ids, next hops, and a per-entry overhead).
    pub fn with_byte_budgets(mut self, seen_bytes: usize, path_bytes: usize) -> Self {
        self.seen = self.seen.with_max_bytes(seen_bytes);
        self.paths = self.paths.with_max_bytes(path_bytes);
        self
    }

    /// Copies of one datagram from the previous hop arriving within
    /// `window` of the last forward are one packet, not a resend (senders
    /// that transmit each mesh datagram more than once; zero: off).
    pub fn set_duplicate_window(&mut self, window: Duration) {
        self.duplicate_window = window;
    }

    /// The node's hop cap.
    pub fn max_hops(&self) -> u32 {
        self.max_hops
    }

    /// Marks a packet id as seen (own mesh packets, mesh packets delivered
    /// here); returns false if it was already seen.
    pub fn mark_seen(&mut self, now: MonoTime, packet_id: &str) -> bool {
        if self.seen.contains(now, packet_id) {
            return false;
        }
        self.seen
            .insert_sized(now, packet_id.to_owned(), (), packet_id.len());
        true
    }

    /// Whether a packet id was seen.
    pub fn is_seen(&self, now: MonoTime, packet_id: &str) -> bool {
        self.seen.contains(now, packet_id)
    }

    /// Decides on a packet for another node that came from `from`: on success
    /// returns the copy to forward (hop_count + 1) and remembers `from` as
    /// the way back. A packet seen before is refused, except a
    /// retransmission from the same previous hop, which is forwarded again
    /// (a bounded number of times) so resends work end to end.
    pub fn prepare(
        &mut self,
        now: MonoTime,
        packet: &PingPacket,
        from: SocketAddr,
    ) -> Result<PingPacket, RelayRefusal> {
        let window = self.duplicate_window;
        let resend = self
            .paths
            .get_mut(now, packet.packet_id.as_str())
            .filter(|p| p.prev_hop == from && p.resends < MAX_FORWARDED_RESENDS);
        if let Some(path) = resend
            && packet.routing_mode == RoutingMode::Mesh
        {
            if !window.is_zero() && now.saturating_duration_since(path.last) < window {
                self.stats.dropped_seen += 1;
                return Err(RelayRefusal::Seen);
            }
            path.last = now;
            path.resends += 1;
            self.stats.resends_forwarded += 1;
            let mut out = packet.clone();
            out.hop_count = packet.hop_count.saturating_add(1);
            return Ok(out);
        }
        let refusal = if packet.routing_mode != RoutingMode::Mesh {
            Some(RelayRefusal::NotMesh)
        } else if self.is_seen(now, &packet.packet_id) {
            Some(RelayRefusal::Seen)
        } else if packet.hop_count >= packet.max_hops.min(self.max_hops) {
            Some(RelayRefusal::HopLimit)
        } else if !self.paths.insert_sized(
            now,
            packet.packet_id.clone(),
            Path {
                prev_hop: from,
                resends: 0,
                next_hops: Vec::new(),
                response: None,
                last: now,
            },
            packet.packet_id.len() + core::mem::size_of::<Path>(),
        ) {
            Some(RelayRefusal::PathsFull)
        } else {
            None
        };
        if let Some(r) = refusal {
            match r {
                RelayRefusal::NotMesh => self.stats.dropped_not_mesh += 1,
                RelayRefusal::Seen => self.stats.dropped_seen += 1,
                RelayRefusal::HopLimit => self.stats.dropped_hop_limit += 1,
                RelayRefusal::PathsFull => self.stats.paths_refused += 1,
            }
            return Err(r);
        }
        self.mark_seen(now, &packet.packet_id);
        self.stats.relayed += 1;
        let mut out = packet.clone();
        out.hop_count = packet.hop_count.saturating_add(1);
        Ok(out)
    }

    /// Records where a relayed packet was sent (the only addresses whose
    /// response to it will be passed back).
    pub fn set_next_hops(&mut self, now: MonoTime, packet_id: &str, hops: &[SocketAddr]) {
        if let Some(p) = self.paths.get_mut(now, packet_id) {
            for h in hops {
                if !p.next_hops.contains(h) {
                    p.next_hops.push(*h);
                }
            }
            let size = path_size(packet_id, p);
            self.paths.resize(packet_id, size);
        }
    }

    /// Where a relayed packet was sent so far (empty when no reverse path
    /// is held).
    pub fn next_hops_of(&self, now: MonoTime, packet_id: &str) -> Vec<SocketAddr> {
        self.paths
            .get(now, packet_id)
            .map(|p| p.next_hops.clone())
            .unwrap_or_default()
    }

    /// Whether a reverse path for `packet_id` is held.
    pub fn has_path(&self, now: MonoTime, packet_id: &str) -> bool {
        self.paths.contains(now, packet_id)
    }

    /// Where to send a response to a relayed packet that came from `from`:
    /// the previous hop, if `from` is one of the packet's next hops.
    pub fn reverse_path(
        &mut self,
        now: MonoTime,
        packet_id: &str,
        from: SocketAddr,
    ) -> Option<SocketAddr> {
        let path = self.paths.get(now, packet_id)?;
        if !path.next_hops.contains(&from) {
            self.stats.responses_foreign += 1;
            return None;
        }
        self.stats.responses_relayed += 1;
        Some(path.prev_hop)
    }

    /// Keeps the response passed back for a relayed packet (see
    /// [`MeshRelay::cached_response`]); false if one was kept already (this
    /// is a copy: do not pass it back again).
    pub fn store_response(&mut self, now: MonoTime, packet_id: &str, datagram: &[u8]) -> bool {
        match self.paths.get_mut(now, packet_id) {
            Some(p) if p.response.is_some() => false,
            Some(p) => {
                p.response = Some(datagram.to_vec());
                let size = path_size(packet_id, p);
                self.paths.resize(packet_id, size);
                true
            }
            None => true,
        }
    }

    /// The response already passed back for `packet_id`, when `from` is the
    /// recorded previous hop resending the packet (a bounded number of
    /// times, like forwarded resends).
    pub fn cached_response(
        &mut self,
        now: MonoTime,
        packet_id: &str,
        from: SocketAddr,
    ) -> Option<Vec<u8>> {
        let window = self.duplicate_window;
        let p = self.paths.get_mut(now, packet_id)?;
        if p.prev_hop != from || p.resends >= MAX_FORWARDED_RESENDS {
            return None;
        }
        let bytes = p.response.clone()?;
        if !window.is_zero() && now.saturating_duration_since(p.last) < window {
            // A copy of a resend we just answered: nothing more to send.
            return Some(Vec::new());
        }
        p.last = now;
        p.resends += 1;
        self.stats.responses_resent += 1;
        Some(bytes)
    }

    /// Counters.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            seen_evicted: self.seen.evicted(),
            seen_entries: self.seen.len(),
            path_entries: self.paths.len(),
            seen_bytes: self.seen.bytes(),
            path_bytes: self.paths.bytes(),
            paths_refused_bytes: self.paths.refused_bytes(),
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::tests::{addr, t};

    fn packet(id: &str, mode: RoutingMode, hops: u32, max: u32) -> PingPacket {
        PingPacket {
            routing_mode: mode,
            hop_count: hops,
            max_hops: max,
            ..PingPacket::new(id, "jis:a", "jis:c", "x", "y")
        }
    }

    #[test]
    fn relays_mesh_once_and_remembers_the_way_back() {
        let mut r = MeshRelay::new(10, 100, 100, Duration::from_secs(30));
        let out = r
            .prepare(t(0), &packet("p1", RoutingMode::Mesh, 0, 5), addr(1))
            .unwrap();
        assert_eq!(out.hop_count, 1);
        assert_eq!(
            r.prepare(t(0), &packet("p1", RoutingMode::Mesh, 0, 5), addr(2)),
            Err(RelayRefusal::Seen)
        );
        // A resend from the recorded previous hop goes through, a few times.
        for _ in 0..MAX_FORWARDED_RESENDS {
            assert!(
                r.prepare(t(0), &packet("p1", RoutingMode::Mesh, 0, 5), addr(1))
                    .is_ok()
            );
        }
        assert_eq!(
            r.prepare(t(0), &packet("p1", RoutingMode::Mesh, 0, 5), addr(1)),
            Err(RelayRefusal::Seen)
        );
        assert_eq!(
            r.stats().resends_forwarded,
            u64::from(MAX_FORWARDED_RESENDS)
        );
        r.set_next_hops(t(0), "p1", &[addr(7)]);
        assert_eq!(r.reverse_path(t(1), "p1", addr(7)), Some(addr(1)));
        assert_eq!(
            r.reverse_path(t(1), "p1", addr(8)),
            None,
            "not where it went"
        );
        assert_eq!(r.stats().responses_foreign, 1);
        assert_eq!(r.reverse_path(t(31), "p1", addr(7)), None, "path expires");
        assert_eq!(
            r.prepare(t(0), &packet("p2", RoutingMode::Direct, 0, 5), addr(1)),
            Err(RelayRefusal::NotMesh)
        );
    }

    #[test]
    fn hop_limit_is_the_smaller_of_packet_and_node() {
        let mut r = MeshRelay::new(3, 100, 100, Duration::from_secs(30));
        assert!(
            r.prepare(t(0), &packet("a", RoutingMode::Mesh, 2, 50), addr(1))
                .is_ok()
        );
        assert_eq!(
            r.prepare(t(0), &packet("b", RoutingMode::Mesh, 3, 50), addr(1)),
            Err(RelayRefusal::HopLimit)
        );
        assert_eq!(
            r.prepare(t(0), &packet("c", RoutingMode::Mesh, 1, 1), addr(1)),
            Err(RelayRefusal::HopLimit)
        );
        assert_eq!(r.stats().dropped_hop_limit, 2);
    }

    #[test]
    fn full_path_table_fails_closed() {
        let mut r = MeshRelay::new(10, 100, 1, Duration::from_secs(30));
        assert!(
            r.prepare(t(0), &packet("a", RoutingMode::Mesh, 0, 5), addr(1))
                .is_ok()
        );
        assert_eq!(
            r.prepare(t(0), &packet("b", RoutingMode::Mesh, 0, 5), addr(1)),
            Err(RelayRefusal::PathsFull)
        );
        assert_eq!(r.stats().paths_refused, 1);
        assert!(
            r.prepare(t(40), &packet("b", RoutingMode::Mesh, 0, 5), addr(1))
                .is_ok()
        );
    }
}
