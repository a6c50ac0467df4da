//! The [`Engine`]'s inputs: the one receive path of transport datagrams
//! (single or in batches, `batch.rs`), the discovery socket, the uplink, and
//! ICMP errors. Each inbound frame gets an [`Inbound`] context, goes through
//! the identity step (`Shared::admit`, `shared.rs`) and then to the ping
//! path ([`Answers`], `answer.rs`), the response path (`response.rs`), the
//! relay (`Mesh`, `mesh.rs`) or discovery (`Discovery`, `beacons.rs`).

use alloc::vec::Vec;

use core::net::SocketAddr;

use tibet_ping::identity::IdentityMode;
use tibet_ping::{DecodeError, Decoded, Frame, PingPacket, PingType};

use super::answer::Answers;
use super::batch::DecodedAhead;
use super::inbound::Inbound;
use super::response::on_response;
use super::{Engine, MAX_DATAGRAM_BATCH};
use crate::error::SendError;
use crate::event::Event;
use crate::identity_gate::PreVerified;
use crate::requests::RequestKind;
use crate::source::Source;
use crate::time::Now;
use crate::uplink::UPLINK_ADDR;

/// Datagrams up to this size leave their decoded strings in the engine's
/// packet for reuse; larger ones are decoded into it and then dropped.
const SCRATCH_KEEP_BYTES: usize = 2048;

/// Whether `packet`, decoded from a datagram of `len` bytes, is kept for
/// its strings' reuse: a large datagram's are not, so what the engine holds
/// between datagrams stays within a few KiB; nor is a heartbeat's route
/// advertisement (up to a datagram of text per engine, the largest part of a simulated node's
/// heap besides its tables).
fn keep_strings(packet: &mut PingPacket, len: usize) -> bool {
    if len > SCRATCH_KEEP_BYTES {
        return false;
    }
    if packet.ping_type == PingType::Heartbeat {
        packet.payload.remove(crate::advert::ROUTES_KEY);
    }
    true
}

impl Engine {
    /// A datagram arrived on the transport socket from `from`.
    pub fn handle_datagram(&mut self, now: Now, from: SocketAddr, datagram: &[u8]) {
        let Some(source) = self.arrive(now, from) else {
            return;
        };
        // Decoded into the engine's own packet, whose strings are reused
        // from one datagram to the next.
        let mut packet = core::mem::replace(&mut self.scratch, PingPacket::new("", "", "", "", ""));
        let decoded = self.shared.codec.decode_into(datagram, &mut packet);
        self.receive(now, source, datagram, decoded, &packet, None);
        if keep_strings(&mut packet, datagram.len()) {
            self.scratch = packet;
        }
    }

    /// Several datagrams that arrived on the transport socket, in arrival
    /// order (one receive batch). The decisions, counters, events, audit
    /// records and transmits are those of calling
    /// [`Engine::handle_datagram`] for each in turn; only the work differs:
    /// signed packets whose DID is pinned are verified together
    /// (`batch.rs`), and a failing batch is re-checked one by one to find
    /// the bad signatures. A pre-checked result is used only if the DID is
    /// still pinned to the same key when its packet's turn comes (an earlier
    /// packet of the batch may have changed the pins).
    pub fn handle_datagrams(&mut self, now: Now, batch: &[(SocketAddr, &[u8])]) {
        for chunk in batch.chunks(MAX_DATAGRAM_BATCH) {
            self.handle_chunk(now, chunk);
        }
    }

    /// Signatures checked ahead in receive batches (a measure of the work
    /// saved; not part of [`Engine::stats`], which is the same either way).
    pub fn batch_verified(&self) -> u64 {
        self.batch.verified
    }

    fn handle_chunk(&mut self, now: Now, chunk: &[(SocketAddr, &[u8])]) {
        if self.shared.identity.mode() == IdentityMode::Off || chunk.len() < 2 {
            for &(from, datagram) in chunk {
                self.handle_datagram(now, from, datagram);
            }
            return;
        }
        // Packets are decoded into the batch's packets, whose strings are
        // reused from one batch to the next (as `handle_datagram` reuses
        // one packet). Datagrams from the uplink's address are not decoded:
        // they are refused at their turn, as by `handle_datagram`.
        let mut packets = self.batch.take_packets(chunk.len());
        let decoded: Vec<DecodedAhead> = chunk
            .iter()
            .zip(packets.iter_mut())
            .map(|(&(from, datagram), packet)| {
                Source::udp(from).map(|_| self.shared.codec.decode_into(datagram, packet))
            })
            .collect();
        let pre = self
            .batch
            .pre_verify(&self.shared, now, chunk, &decoded, &packets);
        // Each datagram in turn takes the one receive path, as
        // `handle_datagram` sends it.
        for (((&(from, datagram), frame), pre), packet) in
            chunk.iter().zip(decoded).zip(pre).zip(&packets)
        {
            if let (Some(source), Some(frame)) = (self.arrive(now, from), frame) {
                self.receive(now, source, datagram, frame, packet, pre);
            }
        }
        for (&(_, datagram), packet) in chunk.iter().zip(packets.iter_mut()) {
            if !keep_strings(packet, datagram.len()) {
                *packet = PingPacket::new("", "", "", "", "");
            }
        }
        self.batch.put_packets(packets);
    }

    /// Counts a datagram from a socket and makes its [`Source`]; `None`
    /// (dropped as malformed) for the uplink's address, which no socket
    /// receives from.
    fn arrive(&mut self, now: Now, from: SocketAddr) -> Option<Source> {
        self.shared.stats.datagrams_in += 1;
        let source = Source::udp(from);
        if source.is_none() {
            self.shared
                .malformed(now, from, "datagram from the uplink's address");
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
    fn receive(
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
        let shared = &mut self.shared;
        match decoded {
            Ok(Decoded::Packet) => {
                if !Answers::may_earn_late(shared, now, &mut inbound, packet) {
                    inbound.settle(&mut shared.guard, now);
                }
                if shared.admit(now, &mut inbound, packet, pre) {
                    if packet.ping_type == PingType::Discover && packet.is_broadcast() {
                        self.discovery
                            .on_beacon(shared, now, &mut inbound, packet, false);
                    } else {
                        self.on_packet(now, &mut inbound, packet);
                    }
                }
            }
            Ok(Decoded::Response(r)) => {
                inbound.settle(&mut shared.guard, now);
                on_response(shared, &mut self.mesh, now, &mut inbound, r, datagram);
            }
            Err(e) => {
                inbound.settle(&mut shared.guard, now);
                shared.stats.decode.record(&e);
                shared.malformed(now, from, e);
            }
        }
        inbound.settle(&mut self.shared.guard, now);
    }

    /// A packet through the identity step, not a beacon: for us (or a
    /// broadcast) it takes the ping path, else the relay.
    fn on_packet(&mut self, now: Now, inbound: &mut Inbound, packet: &PingPacket) {
        let (shared, mesh) = (&mut self.shared, &mut self.mesh);
        if packet.target_did != shared.node.did() && !packet.is_broadcast() {
            mesh.on_relay(shared, now, inbound, packet.clone());
        } else {
            self.answers.on_packet(shared, mesh, now, inbound, packet);
        }
    }

    /// A datagram sent to `addr` came back as an ICMP "port unreachable"
    /// (a driver that reads ICMP errors reports it): the requests sent
    /// directly to `addr` end now, a caller's with
    /// [`SendError::Unreachable`]. Mesh requests wait on (another hop may
    /// still answer).
    pub fn handle_unreachable(&mut self, addr: SocketAddr) {
        let shared = &mut self.shared;
        for req in shared.requests.take_direct_to(addr) {
            shared.stats.requests_unreachable += 1;
            if req.kind == RequestKind::Caller {
                shared.out.event(Event::RequestFailed {
                    id: req.id,
                    error: SendError::Unreachable { addr },
                });
            }
        }
    }

    /// A datagram arrived on the discovery socket (multicast, or a beacon
    /// sent by unicast to the discovery port).
    pub fn handle_discovery_datagram(&mut self, now: Now, from: SocketAddr, datagram: &[u8]) {
        let shared = &mut self.shared;
        shared.stats.datagrams_in += 1;
        shared.guard.earn(now.mono, from.ip(), datagram.len());
        match shared.codec.decode(datagram) {
            Ok(Frame::Packet(p)) if p.ping_type == PingType::Discover => {
                // A beacon cannot come from the uplink: the address is only
                // a name here.
                let mut inbound = Inbound::new(Source::Udp(from), None);
                if shared.admit(now, &mut inbound, &p, None) {
                    self.discovery
                        .on_beacon(shared, now, &mut inbound, &p, true);
                }
            }
            Ok(_) => shared.malformed(now, from, "not a discover packet"),
            Err(e) => {
                shared.stats.decode.record(&e);
                shared.malformed(now, from, e)
            }
        }
    }

    /// A frame arrived over the uplink (docs/FLEETS.md): handled exactly like
    /// a datagram, from the uplink as its own source (named [`UPLINK_ADDR`] in tables,
    /// events and records); answers to it leave through
    /// [`Engine::poll_uplink`]. Discover packets and broadcasts are refused.
    pub fn handle_uplink_frame(&mut self, now: Now, frame: &[u8]) {
        let mut inbound = Inbound::new(Source::Uplink, None);
        let shared = &mut self.shared;
        match shared.codec.decode(frame) {
            Err(e) => {
                if shared.uplink.accept_in(false) {
                    shared.malformed(now, UPLINK_ADDR, e);
                }
            }
            Ok(Frame::Response(r)) => {
                if shared.uplink.accept_in(false) {
                    on_response(shared, &mut self.mesh, now, &mut inbound, r, frame);
                }
            }
            Ok(Frame::Packet(p)) => {
                let lan_only = p.ping_type == PingType::Discover || p.is_broadcast();
                // The identity step applies to the uplink as to the LAN: a
                // broker is no more trusted than a datagram. The uplink is
                // one source like an address: its frames earn the credit
                // that pays for what they make us send onto the LAN.
                if shared.uplink.accept_in(lan_only)
                    && shared.admit(now, &mut inbound, &p, None)
                    && shared
                        .uplink
                        .origin_consistent(now.mono, &p.packet_id, &p.source_did)
                {
                    shared.guard.earn(now.mono, UPLINK_ADDR.ip(), frame.len());
                    self.on_packet(now, &mut inbound, &p);
                }
            }
        }
    }
}
