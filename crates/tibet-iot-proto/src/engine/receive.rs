//! The [`Engine`]'s inputs: the one receive path of transport datagrams
//! (single or in batches, `batch.rs`), the discovery socket, the uplink, and
//! ICMP errors. Each inbound frame gets an [`Inbound`] context, goes through
//! the identity step ([`Engine::admit`]) and then to the ping path
//! (`answer.rs`), the response path (`response.rs`), the relay
//! (`mesh.rs`) or discovery (`beacons.rs`).

use alloc::borrow::ToOwned;
use alloc::string::ToString;

use core::net::SocketAddr;

use tibet_ping::identity::{IdentityMode, PUBLIC_KEY_FIELD};
use tibet_ping::{DecodeError, Decoded, Frame, PingPacket, PingType};

use super::inbound::Inbound;
use super::output::aggregation_key;
use super::{Engine, keep_strings};
use crate::audit_record::AuditRecord;
use crate::error::SendError;
use crate::event::Event;
use crate::identity_gate::{Budget, PreVerified};
use crate::requests::RequestKind;
use crate::source::Source;
use crate::time::Now;
use crate::uplink::UPLINK_ADDR;

impl Engine {
    /// A datagram arrived on the transport socket from `from`.
    pub fn handle_datagram(&mut self, now: Now, from: SocketAddr, datagram: &[u8]) {
        let Some(source) = self.arrive(now, from) else {
            return;
        };
        // Decoded into the engine's own packet, whose strings are reused
        // from one datagram to the next.
        let mut packet = core::mem::replace(&mut self.scratch, PingPacket::new("", "", "", "", ""));
        let decoded = self.codec.decode_into(datagram, &mut packet);
        self.receive(now, source, datagram, decoded, &packet, None);
        if keep_strings(&mut packet, datagram.len()) {
            self.scratch = packet;
        }
    }

    /// Counts a datagram from a socket and makes its [`Source`]; `None`
    /// (dropped as malformed) for the uplink's address, which no socket
    /// receives from.
    pub(super) fn arrive(&mut self, now: Now, from: SocketAddr) -> Option<Source> {
        self.stats.datagrams_in += 1;
        let source = Source::udp(from);
        if source.is_none() {
            self.malformed(now, from, "datagram from the uplink's address");
        }
        source
    }

    /// The receive path of every transport datagram, after decoding (one by
    /// one, or ahead for a batch, `engine/batch.rs`), with the packet's
    /// signature possibly checked already (`pre`).
    ///
    /// Every datagram earns its address amplification credit; only what
    /// untrusted input causes spends it. One exception: a ping from a peer
    /// that proved this address and is trusted, answered GROEN, earns none,
    /// as its answer spends none; the credit it does not earn could only
    /// ever pay for answers to others claiming the address. Its credit waits
    /// in the [`Inbound`] until the answer is decided, which saves a hub the
    /// credit table's lookup for every such ping; anything that spends
    /// credit first takes it.
    pub(super) fn receive(
        &mut self,
        now: Now,
        source: Source,
        datagram: &[u8],
        decoded: Result<Decoded, DecodeError>,
        packet: &PingPacket,
        pre: Option<PreVerified>,
    ) {
        let mut inbound = Inbound::new(source, Some(datagram.len()));
        let from = inbound.from();
        match decoded {
            Ok(Decoded::Packet) => {
                if !self.may_earn_late(now, &mut inbound, packet) {
                    inbound.settle(&mut self.guard, now);
                }
                if self.admit(now, &mut inbound, packet, pre) {
                    if packet.ping_type == PingType::Discover && packet.is_broadcast() {
                        self.on_beacon(now, &mut inbound, packet, false);
                    } else {
                        self.on_packet(now, &mut inbound, packet);
                    }
                }
            }
            Ok(Decoded::Response(r)) => {
                inbound.settle(&mut self.guard, now);
                self.on_response(now, &mut inbound, r, datagram);
            }
            Err(e) => {
                inbound.settle(&mut self.guard, now);
                self.stats.decode.record(&e);
                self.malformed(now, from, e);
            }
        }
        inbound.settle(&mut self.guard, now);
    }

    /// A datagram sent to `addr` came back as an ICMP "port unreachable"
    /// (a driver that reads ICMP errors reports it): the requests sent
    /// directly to `addr` end now, a caller's with
    /// [`SendError::Unreachable`]. Mesh requests wait on (another hop may
    /// still answer).
    pub fn handle_unreachable(&mut self, addr: SocketAddr) {
        for req in self.requests.take_direct_to(addr) {
            self.stats.requests_unreachable += 1;
            if req.kind == RequestKind::Caller {
                self.out.event(Event::RequestFailed {
                    id: req.id,
                    error: SendError::Unreachable { addr },
                });
            }
        }
    }

    /// A datagram arrived on the discovery socket (multicast, or a beacon
    /// sent by unicast to the discovery port).
    pub fn handle_discovery_datagram(&mut self, now: Now, from: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams_in += 1;
        self.guard.earn(now.mono, from.ip(), datagram.len());
        match self.codec.decode(datagram) {
            Ok(Frame::Packet(p)) if p.ping_type == PingType::Discover => {
                // A beacon cannot come from the uplink: the address is only
                // a name here.
                let mut inbound = Inbound::new(Source::Udp(from), None);
                if self.admit(now, &mut inbound, &p, None) {
                    self.on_beacon(now, &mut inbound, &p, true);
                }
            }
            Ok(_) => self.malformed(now, from, "not a discover packet"),
            Err(e) => {
                self.stats.decode.record(&e);
                self.malformed(now, from, e)
            }
        }
    }

    /// The identity step (docs/PROTOCOL.md section 6): false drops the
    /// packet silently, like ROOD; it is counted by reason and audited at
    /// most once per source per interval, and moves no peer entry. What it
    /// found goes into `inbound`.
    fn admit(
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
    /// ([`Engine::verify_is_free`]), or paid with a token of the source
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

    /// A frame arrived over the uplink (docs/FLEETS.md): handled exactly like
    /// a datagram, from the uplink as its own source (named [`UPLINK_ADDR`] in tables,
    /// events and records); answers to it leave through
    /// [`Engine::poll_uplink`]. Discover packets and broadcasts are refused.
    pub fn handle_uplink_frame(&mut self, now: Now, frame: &[u8]) {
        let mut inbound = Inbound::new(Source::Uplink, None);
        match self.codec.decode(frame) {
            Err(e) => {
                if self.uplink.accept_in(false) {
                    self.malformed(now, UPLINK_ADDR, e);
                }
            }
            Ok(Frame::Response(r)) => {
                if self.uplink.accept_in(false) {
                    self.on_response(now, &mut inbound, r, frame);
                }
            }
            Ok(Frame::Packet(p)) => {
                let lan_only = p.ping_type == PingType::Discover || p.is_broadcast();
                // The identity step applies to the uplink as to the LAN: a
                // broker is no more trusted than a datagram. The uplink is
                // one source like an address: its frames earn the credit
                // that pays for what they make us send onto the LAN.
                if self.uplink.accept_in(lan_only)
                    && self.admit(now, &mut inbound, &p, None)
                    && self
                        .uplink
                        .origin_consistent(now.mono, &p.packet_id, &p.source_did)
                {
                    self.guard.earn(now.mono, UPLINK_ADDR.ip(), frame.len());
                    self.on_packet(now, &mut inbound, &p);
                }
            }
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
}
