//! The uplink: a transport beyond the LAN (an MQTT broker, docs/FLEETS.md)
//! for mesh pings the local mesh cannot route, and for their answers.
//!
//! The engine names the uplink by [`UPLINK_ADDR`] wherever its tables hold
//! an address (reverse paths, the response cache, request correlation,
//! events), so a frame from the uplink goes through exactly the same decode,
//! retransmission check, replay check, airlock and trust as a datagram. What
//! changes is only where answers go: a frame for [`UPLINK_ADDR`] leaves
//! through [`Engine::poll_uplink`](crate::Engine::poll_uplink) as an
//! [`Uplink`] naming the DID whose topic carries it, never through a socket.
//! The engine's own code tells the uplink from a socket by the frame's
//! source (`source.rs`: `Source::Uplink`, made only for uplink frames), not
//! by comparing addresses.
//!
//! The uplink is a transport, never a source of trust: nothing that arrives
//! over it adds or moves a peer, and discover packets and broadcasts are
//! refused (they belong to the LAN). Any client of the broker may publish to
//! a node's topics, so the uplink is one more untrusted source: its frames
//! earn and spend amplification credit under [`UPLINK_ADDR`], and ROOD
//! senders are not relayed and untrusted ones only within the address's and
//! the claimed DID's buckets, exactly as for a datagram.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use alloc::collections::VecDeque;
use core::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use core::time::Duration;

use serde::Serialize;

use crate::bounded::{BoundedMap, WhenFull};
use crate::time::MonoTime;

/// The address by which the engine names the uplink: port 0 of the
/// discard-only prefix `100::/64` (RFC 6666), which no socket can receive a
/// datagram from. A datagram that claims it is dropped as malformed.
pub const UPLINK_ADDR: SocketAddr = SocketAddr::V6(SocketAddrV6::new(
    Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
    0,
    0,
    0,
));

/// Bound on queued uplink frames: beyond it new frames are dropped and
/// counted.
pub const UPLINK_QUEUE_CAPACITY: usize = 4096;

/// A frame for the uplink; its bytes are the frame as the engine would send
/// it over UDP (signatures intact).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Uplink {
    /// A ping for `target_did`, whom the local mesh cannot reach.
    Ping {
        /// The ping's target (topic `PREFIX/ping/<target_did>`).
        target_did: String,
        /// The ping's source: this node, or the sender of a relayed ping,
        /// whose answer comes back on `PREFIX/response/<origin_did>`.
        origin_did: String,
        /// The encoded ping.
        frame: Vec<u8>,
    },
    /// A response to a ping that came over the uplink.
    Response {
        /// The DID that sent that ping (topic `PREFIX/response/<origin_did>`).
        origin_did: String,
        /// The encoded response.
        frame: Vec<u8>,
    },
}

/// Uplink counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UplinkStats {
    /// Whether the uplink is attached.
    pub enabled: bool,
    /// Frames handed to the engine from the uplink.
    pub frames_in: u64,
    /// Frames from the uplink refused: discover packets, broadcasts, or no
    /// uplink attached.
    pub frames_refused: u64,
    /// Pings handed to the uplink (ours, and relayed ones with no local hop).
    pub pings_out: u64,
    /// Responses handed to the uplink.
    pub responses_out: u64,
    /// Responses for the uplink whose origin was forgotten (expired): dropped.
    pub responses_unaddressed: u64,
    /// Frames dropped because the uplink queue was full.
    pub queue_dropped: u64,
    /// Frames waiting in the uplink queue.
    pub queued: usize,
}

/// The engine's uplink state: the output queue and, for pings that came
/// over the uplink, the DID their answer goes back to.
#[derive(Debug)]
pub(crate) struct UplinkState {
    queue: VecDeque<Uplink>,
    /// Packet id -> source DID of pings that came over the uplink.
    origins: BoundedMap<String, String>,
    stats: UplinkStats,
}

impl UplinkState {
    /// Off, remembering at most `capacity` origins for `ttl` each.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        UplinkState {
            queue: VecDeque::new(),
            origins: BoundedMap::new(capacity, ttl, WhenFull::EvictOldest),
            stats: UplinkStats::default(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.stats.enabled
    }

    /// Turns the uplink on or off; off discards queued frames.
    pub(crate) fn set_enabled(&mut self, enabled: bool) {
        self.stats.enabled = enabled;
        if !enabled {
            self.queue.clear();
        }
    }

    pub(crate) fn poll(&mut self) -> Option<Uplink> {
        self.queue.pop_front()
    }

    fn push(&mut self, frame: Uplink) -> bool {
        if self.queue.len() >= UPLINK_QUEUE_CAPACITY {
            self.stats.queue_dropped += 1;
            return false;
        }
        self.queue.push_back(frame);
        true
    }

    /// Counts a frame from the uplink; false (counted) when it may not be
    /// taken: no uplink, or a packet that belongs to the LAN.
    pub(crate) fn accept_in(&mut self, lan_only: bool) -> bool {
        if !self.stats.enabled || lan_only {
            self.stats.frames_refused += 1;
            return false;
        }
        self.stats.frames_in += 1;
        true
    }

    /// Whether a ping that came over the uplink may be taken: false
    /// (counted as refused) when its packet id is already claimed by
    /// another DID, so a copy with a forged source cannot redirect a cached
    /// answer.
    pub(crate) fn origin_consistent(
        &mut self,
        now: MonoTime,
        packet_id: &str,
        source_did: &str,
    ) -> bool {
        match self.origins.get(now, packet_id) {
            Some(known) if known != source_did => {
                self.stats.frames_in -= 1;
                self.stats.frames_refused += 1;
                false
            }
            _ => true,
        }
    }

    /// Remembers who sent a ping that came over the uplink and was answered
    /// or relayed (never one that was dropped: a flood of ROOD frames
    /// evicts no origin).
    pub(crate) fn note_origin(&mut self, now: MonoTime, packet_id: &str, source_did: &str) {
        if self.origins.get(now, packet_id).is_some() {
            return;
        }
        let size = packet_id.len() + source_did.len();
        self.origins
            .insert_sized(now, packet_id.to_owned(), source_did.to_owned(), size);
    }

    /// Queues a ping from `origin_did` for `target_did`.
    pub(crate) fn ping(&mut self, target_did: &str, origin_did: &str, frame: Vec<u8>) {
        if self.push(Uplink::Ping {
            target_did: target_did.to_owned(),
            origin_did: origin_did.to_owned(),
            frame,
        }) {
            self.stats.pings_out += 1;
        }
    }

    /// Queues a response for `origin_did`.
    pub(crate) fn response(&mut self, origin_did: &str, frame: Vec<u8>) {
        if self.push(Uplink::Response {
            origin_did: origin_did.to_owned(),
            frame,
        }) {
            self.stats.responses_out += 1;
        }
    }

    /// Queues a response to the uplink ping `in_response_to` (relayed back
    /// from a local peer), addressed to the ping's remembered origin.
    pub(crate) fn relayed_response(&mut self, now: MonoTime, in_response_to: &str, frame: &[u8]) {
        match self.origins.get(now, in_response_to).cloned() {
            Some(origin) => self.response(&origin, frame.to_vec()),
            None => self.stats.responses_unaddressed += 1,
        }
    }

    pub(crate) fn expire(&mut self, now: MonoTime) {
        self.origins.expire(now);
    }

    pub(crate) fn stats(&self) -> UplinkStats {
        UplinkStats {
            queued: self.queue.len(),
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uplink_address_is_no_socket_address() {
        assert_eq!(UPLINK_ADDR.port(), 0);
        assert_eq!(UPLINK_ADDR.to_string(), "[100::]:0");
    }

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_drops() {
        let mut u = UplinkState::new(4, Duration::from_secs(30));
        u.set_enabled(true);
        for _ in 0..UPLINK_QUEUE_CAPACITY + 3 {
            u.ping("jis:b:lock", "jis:a:phone", vec![1]);
        }
        let s = u.stats();
        assert_eq!(s.pings_out, UPLINK_QUEUE_CAPACITY as u64);
        assert_eq!(s.queue_dropped, 3);
        assert_eq!(s.queued, UPLINK_QUEUE_CAPACITY);
        u.set_enabled(false);
        assert_eq!(u.poll(), None);
    }

    #[test]
    fn relayed_responses_go_to_the_remembered_origin_only() {
        let t0 = MonoTime::ZERO;
        let mut u = UplinkState::new(2, Duration::from_secs(30));
        u.set_enabled(true);
        assert!(u.accept_in(false) && u.origin_consistent(t0, "p1", "jis:a:phone"));
        u.note_origin(t0, "p1", "jis:a:phone");
        // The same packet id from another source is refused.
        assert!(u.accept_in(false) && !u.origin_consistent(t0, "p1", "jis:x:thief"));
        assert_eq!(u.stats().frames_refused, 1);
        u.relayed_response(t0, "p1", b"r1");
        u.relayed_response(t0, "p2", b"r2");
        assert_eq!(
            u.poll(),
            Some(Uplink::Response {
                origin_did: "jis:a:phone".into(),
                frame: b"r1".to_vec()
            })
        );
        assert_eq!(u.poll(), None);
        assert_eq!(u.stats().responses_unaddressed, 1);
        // Forgotten after the ttl.
        u.relayed_response(t0 + Duration::from_secs(31), "p1", b"r1");
        assert_eq!(u.stats().responses_unaddressed, 2);
    }

    #[test]
    fn frames_in_are_refused_without_an_uplink_or_when_lan_only() {
        let mut u = UplinkState::new(2, Duration::from_secs(30));
        assert!(!u.accept_in(false));
        u.set_enabled(true);
        assert!(!u.accept_in(true));
        assert!(u.accept_in(false));
        let s = u.stats();
        assert_eq!((s.frames_in, s.frames_refused), (1, 2));
    }
}
