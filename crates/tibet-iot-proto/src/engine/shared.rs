//! [`Shared`]: the state every path of the [`Engine`](super::Engine) uses
//! (the protocol node, the codec, the output queues, the counters, the
//! amplification credit, the peer table, the identity gate, the uplink and
//! our outstanding requests), and the steps that use only it: the identity
//! step, drop and refusal reporting, credit, and sending our own requests.
//!
//! The concerns of the engine (`answer.rs`, `mesh.rs`, `beacons.rs`,
//! `response.rs`) are types or functions of their own that take this
//! explicitly; none of them reaches into another.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use tibet_ping::identity::{IdentityMode, PUBLIC_KEY_FIELD, PinDecision, PublicKey};
use tibet_ping::{AirlockZone, PacketCodec, PingNode, PingPacket, RoutingMode};

use super::inbound::Inbound;
use super::output::{Outputs, aggregation_key};
use crate::audit_record::AuditRecord;
use crate::config::TransportConfig;
use crate::error::SendError;
use crate::event::Event;
use crate::identity_gate::{Budget, IdentityGate, PreVerified};
use crate::node_stats::EngineStats;
use crate::peers::{PeerTracker, PeerUpdate};
use crate::requests::{Request, RequestId, RequestKind, Requests};
use crate::retransmit::{RetransmitPolicy, RetransmitState};
use crate::source::Source;
use crate::source_guard::SourceGuard;
use crate::time::Now;
use crate::uplink::{UPLINK_ADDR, UplinkState};

/// A monotonic clock the driver installs
/// ([`Engine::set_processing_clock`](super::Engine::set_processing_clock)):
/// time since an origin of its choosing.
pub(super) type ProcessingClock = Box<dyn Fn() -> Duration + Send>;

/// What the engine's concerns share.
pub(super) struct Shared {
    pub(super) node: PingNode,
    /// The driver's monotonic clock, read around each decision for the
    /// response's `rtt_ms` (processing time); none in simulations.
    pub(super) processing_clock: Option<ProcessingClock>,
    pub(super) codec: PacketCodec,
    /// Shared, not copied, by engines built from one configuration
    /// (`Engine::new_shared`: the simulator's thousands of nodes).
    pub(super) config: Arc<TransportConfig>,
    pub(super) rng: StdRng,
    /// Datagrams, events, audit and drop records on their way out.
    pub(super) out: Outputs,
    pub(super) uplink: UplinkState,
    pub(super) stats: EngineStats,
    pub(super) guard: SourceGuard,
    pub(super) peers: PeerTracker,
    /// Boxed, to keep an `Engine` within 8 KiB: 8,624 bytes inline took
    /// a 10 KiB block of the simulator's allocator (mimalloc's size classes
    /// are a quarter of a power of two apart), 1.6 KB per simulated node
    /// unused (docs/PERFORMANCE.md, "Mesh simulator").
    pub(super) identity: Box<IdentityGate>,
    pub(super) requests: Requests,
    /// Raised on every change of the pins.
    pub(super) pins_generation: u64,
}

impl Shared {
    /// Counts one dropped input from `from` for the aggregated drop record
    /// (only while audit records are on).
    pub(super) fn note_drop(&mut self, now: Now, from: SocketAddr, reason: &'static str) {
        self.out.note_drop(now, &self.guard, from, reason);
    }

    /// Reports a peer that joined the table.
    pub(super) fn peer_update(&mut self, did: &str, address: SocketAddr, upd: PeerUpdate) {
        if upd == PeerUpdate::Joined {
            self.out.event(Event::PeerJoined {
                did: did.to_owned(),
                address,
            });
        }
    }

    /// Counts a dropped datagram; the reason is only formatted when someone
    /// listens, so a flood of garbage costs no allocation.
    pub(super) fn malformed(
        &mut self,
        now: Now,
        from: SocketAddr,
        reason: impl core::fmt::Display,
    ) {
        self.stats.malformed += 1;
        self.note_drop(now, from, "malformed");
        if self.out.events_enabled() {
            let reason = reason.to_string();
            self.out.event(Event::MalformedDropped { from, reason });
        }
    }

    /// Whether `did` is trusted (GROEN by trust score): its traffic is exempt
    /// from the amplification credit and the per-address buckets.
    pub(super) fn is_trusted(&self, now: Now, did: &str) -> bool {
        let score = self.node.trust_of(now.wall, did).score;
        self.node.airlock().threshold_zone(score) == AirlockZone::Groen
    }

    /// Whether `did` may teach this node routes: it is trusted (its trust
    /// reaches the GROEN threshold, set explicitly or through vouches).
    /// The one place to widen when authenticated identities arrive.
    pub(super) fn may_teach_routes(&self, now: Now, did: &str) -> bool {
        self.node.trust_of(now.wall, did).score >= self.config.ping.trust_groen
    }

    /// The identity step (docs/PROTOCOL.md section 6): false drops the
    /// packet silently, like ROOD; it is counted by reason and audited at
    /// most once per source per interval, and moves no peer entry. What it
    /// found goes into `inbound`.
    pub(super) fn admit(
        &mut self,
        now: Now,
        inbound: &mut Inbound,
        packet: &PingPacket,
        pre: Option<PreVerified>,
    ) -> bool {
        let from = inbound.from();
        if self.verify_budget(now, inbound.source, packet) == Budget::Refused {
            self.identity.stats.over_verify_budget += 1;
            self.identity_refused(now, from, &packet.source_did, "over_verify_budget");
            return false;
        }
        let (checked, credential) = self.identity.check(packet, now.wall, pre);
        inbound.credential = credential
            .map(|cred| self.node.trust_of(now.wall, &cred.voucher_did).score * cred.factor);
        match checked {
            Ok(identity) => {
                inbound.identity = identity;
                true
            }
            Err(refusal) => {
                self.identity_refused(now, from, &packet.source_did, refusal.as_str());
                false
            }
        }
    }

    /// Whether checking `packet`'s signature is free here: it would check
    /// none, or its DID proved the address it comes from (docs/SECURITY.md,
    /// verification budget).
    pub(super) fn verify_is_free(&self, now: Now, source: Source, packet: &PingPacket) -> bool {
        if self.identity.mode() == IdentityMode::Off {
            return true;
        }
        let did = packet.source_did.as_str();
        let signed = !packet.signature.is_empty()
            && (self.identity.pins().get(did).is_some()
                || packet.payload.contains_key(PUBLIC_KEY_FIELD));
        if !signed && packet.vouched_by.is_none() {
            return true;
        }
        let Source::Udp(from) = source else {
            return false;
        };
        self.peers
            .slot(did)
            .is_some_and(|slot| self.peers.proven_at(now.mono, slot, did, from))
    }

    /// Whether `packet`'s signature may be checked: free
    /// ([`Shared::verify_is_free`]), or paid with a token of the source
    /// address's bucket and the shared one ([`SourceGuard::allow_verify`]).
    fn verify_budget(&mut self, now: Now, source: Source, packet: &PingPacket) -> Budget {
        if self.verify_is_free(now, source, packet)
            || self.guard.allow_verify(now.mono, source.addr().ip())
        {
            Budget::Granted
        } else {
            Budget::Refused
        }
    }

    /// Reports what the identity step (or a response's check) refused: an
    /// event, and an audit record at most once per source per interval.
    pub(super) fn identity_refused(
        &mut self,
        now: Now,
        from: SocketAddr,
        did: &str,
        reason: &'static str,
    ) {
        if self.out.events_enabled() {
            self.out.event(Event::IdentityRefused {
                from,
                did: did.to_owned(),
                reason,
            });
        }
        if !self.out.audit_enabled() {
            return;
        }
        let source = aggregation_key(&self.guard, from);
        if let Some(count) = self.identity.audit_due(now.mono, source) {
            self.out.audit(|| AuditRecord::IdentityRefused {
                did: did.to_owned(),
                address: from,
                reason,
                count,
            });
        }
    }

    /// Pins `did` to `key` on first use (audited, with `reason`), unless it
    /// is pinned already.
    pub(super) fn pin_first_use(&mut self, did: &str, key: PublicKey, reason: &str) {
        if self.identity.pin_first_use(did, key) == PinDecision::Pinned {
            self.pins_generation += 1;
            self.out.audit(|| AuditRecord::Pinned {
                did: did.to_owned(),
                key: Box::new(key),
                reason: reason.to_owned(),
            });
        }
    }

    /// Spends `len` bytes of `ip`'s amplification credit (counted when it
    /// has too little), after taking the credit of the frame in hand.
    pub(super) fn spend_credit(
        &mut self,
        now: Now,
        inbound: Option<&mut Inbound>,
        ip: IpAddr,
        len: usize,
    ) -> bool {
        if let Some(inbound) = inbound {
            inbound.settle(&mut self.guard, now);
        }
        self.guard.spend(now.mono, ip, len)
    }

    /// Sends `payload` to `to`, paid from `source`'s amplification credit;
    /// false (noted as a drop) when the credit is short.
    pub(super) fn transmit_charged(
        &mut self,
        now: Now,
        source: IpAddr,
        to: SocketAddr,
        payload: impl Into<Bytes>,
    ) -> bool {
        let payload = payload.into();
        if !self.spend_credit(now, None, source, payload.len()) {
            self.note_drop(now, SocketAddr::new(source, 0), "amplification");
            return false;
        }
        self.out.transmit(to, payload);
        true
    }

    /// Sends an answer (or a relayed answer) to `to` as `copies` copies (at
    /// least one); when `charge` names an untrusted source, only if its
    /// credit covers every copy (`false`, noted as a drop, otherwise).
    pub(super) fn send_answer(
        &mut self,
        now: Now,
        to: SocketAddr,
        bytes: Bytes,
        copies: u8,
        charge: Option<IpAddr>,
        inbound: &mut Inbound,
    ) -> bool {
        let copies = copies.max(1);
        if let Some(ip) = charge
            && !self.spend_credit(now, Some(inbound), ip, bytes.len() * usize::from(copies))
        {
            self.note_drop(now, SocketAddr::new(ip, 0), "amplification");
            return false;
        }
        self.out.transmit_copies(to, bytes, copies);
        true
    }

    /// Sends an answer to a datagram's address, or over the uplink to
    /// `origin_did`.
    pub(super) fn reply(&mut self, source: Source, origin_did: &str, bytes: Vec<u8>) {
        match source {
            Source::Uplink => self.uplink.response(origin_did, bytes),
            Source::Udp(addr) => self.out.transmit(addr, bytes),
        }
    }

    /// Refuses a new request while the request table is full.
    pub(super) fn check_capacity(&mut self) -> Result<(), SendError> {
        if self.requests.len() >= self.config.limits.pending_requests {
            self.stats.requests_refused += 1;
            return Err(SendError::TooManyPending {
                capacity: self.config.limits.pending_requests,
            });
        }
        Ok(())
    }

    /// Sends `packet` to `addr` (or over the uplink, for [`UPLINK_ADDR`]) and
    /// tracks it until its answer, timeout or failure. A mesh packet sent
    /// this way must also be marked as seen by the relay (the caller's part,
    /// `Engine::send_ping`).
    pub(super) fn send_request(
        &mut self,
        now: Now,
        packet: PingPacket,
        addr: SocketAddr,
        kind: RequestKind,
        timeout: Duration,
        policy: RetransmitPolicy,
    ) -> Result<RequestId, SendError> {
        let bytes = self
            .codec
            .encode_packet(&packet)
            .map_err(|e| SendError::Encode(e.to_string()))?;
        let uplink = addr == UPLINK_ADDR;
        if uplink && !self.uplink.enabled() {
            return Err(SendError::NoUplink);
        }
        // The uplink delivers at least once (MQTT QoS 1): no resends over it.
        let retransmit = RetransmitState::new(&policy, &mut self.rng).filter(|_| !uplink);
        let deadline = now.mono + timeout;
        let next_due = retransmit
            .as_ref()
            .map_or(deadline, |st| (now.mono + st.wait()).min(deadline));
        let id = self.requests.next_id();
        let target_did = packet.target_did;
        let direct = packet.routing_mode != RoutingMode::Mesh;
        self.requests.insert(Request {
            id,
            kind,
            packet_id: packet.packet_id,
            target_did: target_did.clone(),
            addr,
            direct,
            deadline,
            next_due,
            datagram: retransmit.as_ref().map(|_| bytes.clone()),
            retransmit,
            also: Vec::new(),
            fallback: None,
            refused: None,
        });
        self.stats.requests_sent += 1;
        if uplink {
            self.uplink.ping(&target_did, self.node.did(), bytes);
        } else {
            self.out.transmit(addr, bytes);
        }
        Ok(id)
    }

    /// Sends a heartbeat of our own (no caller waits for it, no resend);
    /// whether it went out.
    pub(super) fn send_background_heartbeat(
        &mut self,
        now: Now,
        packet: PingPacket,
        addr: SocketAddr,
    ) -> bool {
        let timeout = self.config.request_timeout;
        let sent = self
            .send_request(
                now,
                packet,
                addr,
                RequestKind::Background,
                timeout,
                RetransmitPolicy::OFF,
            )
            .is_ok();
        if sent {
            self.stats.heartbeats_sent += 1;
        }
        sent
    }

    /// Sends a heartbeat that wants no answer (a triggered route update,
    /// [`crate::ONE_WAY_KEY`]): no request waits for it. Over the uplink,
    /// which answers every ping, it goes as a background heartbeat.
    pub(super) fn send_one_way_heartbeat(
        &mut self,
        now: Now,
        packet: PingPacket,
        addr: SocketAddr,
    ) {
        if addr == UPLINK_ADDR {
            self.send_background_heartbeat(now, packet, addr);
            return;
        }
        match self.codec.encode_packet(&packet) {
            Ok(bytes) => {
                self.out.transmit(addr, bytes);
                self.stats.heartbeats_sent += 1;
            }
            Err(_) => self.stats.encode_errors += 1,
        }
    }

    /// Sends unproven peer `did` at `addr` a heartbeat: its nonce challenge
    /// (an answer from `addr` proves the address). Paid from the credit the
    /// address earned, since only input from it introduced the peer.
    pub(super) fn challenge(
        &mut self,
        now: Now,
        inbound: Option<&mut Inbound>,
        did: &str,
        addr: SocketAddr,
    ) {
        if self.check_capacity().is_err() {
            return;
        }
        let packet = self.node.heartbeat(now.wall, did, None);
        let len = self.codec.encode_packet(&packet).map_or(0, |b| b.len());
        if !self.spend_credit(now, inbound, addr.ip(), len) {
            self.stats.challenges_refused += 1;
            return;
        }
        if self.send_background_heartbeat(now, packet, addr) {
            self.stats.challenges_sent += 1;
        }
    }
}
