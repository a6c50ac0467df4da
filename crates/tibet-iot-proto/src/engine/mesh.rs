//! [`Mesh`]: relay and routing inside the engine. What is learned from
//! which traffic and who may teach it, how a mesh packet picks its next
//! hops (a learned route, else a bounded flood), the relay path of a packet
//! for another node, the probes that find a next hop gone, and the flood
//! retry of a failed route. The table itself is [`RoutingTable`]
//! (`routes.rs`), the relay's caches [`MeshRelay`] (`relay.rs`).

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use bytes::Bytes;
use tibet_ping::{AirlockZone, PingPacket, PingResponse};

use super::inbound::Inbound;
use super::router::{NextHops, Router};
use super::shared::Shared;
use crate::audit_record::AuditRecord;
use crate::config::TransportConfig;
use crate::error::SendError;
use crate::event::Event;
use crate::relay::{MeshRelay, RelayRefusal};
use crate::requests::{MeshFallback, Request, RequestId, RequestKind};
use crate::retransmit::{RetransmitPolicy, RetransmitState};
use crate::routes::RoutingTable;
use crate::time::Now;
use crate::uplink::UPLINK_ADDR;

/// Copies of one mesh datagram arriving within this window are one packet
/// (with `mesh_copies` > 1); real resends come much later.
const MESH_COPY_WINDOW: Duration = Duration::from_millis(50);

/// The engine's relay and routing state.
#[derive(Debug)]
pub(super) struct Mesh {
    relay: MeshRelay,
    /// The routing decisions (`router.rs`).
    pub(super) router: Router,
}

impl Mesh {
    /// The relay and routing table `config` asks for, for the node `did`.
    pub(super) fn new(config: &TransportConfig, did: &str) -> Mesh {
        let lifetime = config.ping.nonce_window.max(config.request_timeout);
        let mut relay = MeshRelay::new(
            config.max_hops,
            config.limits.seen_cache,
            config.limits.relay_paths,
            lifetime,
        )
        .with_byte_budgets(
            config.limits.seen_cache_bytes,
            config.limits.relay_path_bytes,
        );
        if config.mesh_copies > 1 {
            relay.set_duplicate_window(MESH_COPY_WINDOW);
        }
        Mesh {
            relay,
            router: Router::new(config, did),
        }
    }

    /// The routing table.
    pub(super) fn routes(&self) -> &RoutingTable {
        self.router.table()
    }

    /// The relay's caches.
    pub(super) fn relay(&self) -> &MeshRelay {
        &self.relay
    }

    /// A packet of ours went out by [`Shared::send_request`] as a mesh
    /// packet: a copy flooding back to us is not relayed again.
    pub(super) fn own_packet_sent(&mut self, now: Now, packet_id: &str) {
        self.relay.mark_seen(now.mono, packet_id);
        self.router.counters().mesh_datagrams += 1;
    }

    /// Marks a mesh packet for us as seen; false for a second copy that
    /// took another path through the mesh.
    pub(super) fn first_copy(&mut self, now: Now, packet_id: &str) -> bool {
        self.relay.mark_seen(now.mono, packet_id)
    }

    /// A mesh ping for us was answered after `hop_count` relays.
    pub(super) fn count_answered(&mut self, hop_count: u32) {
        let relays = (hop_count as usize).min(crate::routes::INFINITY as usize);
        let seen = &mut self.router.counters().mesh_relays_seen;
        if seen.len() <= relays {
            seen.resize(relays + 1, 0);
        }
        seen[relays] += 1;
    }

    /// Our own mesh datagrams resent: `n` of them.
    pub(super) fn count_resent(&mut self, n: u64) {
        self.router.counters().mesh_datagrams += n;
    }

    /// Sends our mesh ping `packet` to `hops` (copies of a routed one, one
    /// to each of a flood's) and tracks it as a request; a routed one keeps
    /// its `fallback` to the flood. `id`: the request it continues.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_mesh_request(
        &mut self,
        shared: &mut Shared,
        now: Now,
        packet: PingPacket,
        hops: Vec<SocketAddr>,
        timeout: Duration,
        policy: RetransmitPolicy,
        fallback: Option<Box<MeshFallback>>,
        id: Option<RequestId>,
    ) -> Result<RequestId, SendError> {
        let bytes = shared
            .codec
            .encode_packet(&packet)
            .map_err(|e| SendError::Encode(e.to_string()))?;
        self.relay.mark_seen(now.mono, &packet.packet_id);
        let retransmit = RetransmitState::new(&policy, &mut shared.rng);
        let deadline = now.mono + timeout;
        let next_due = retransmit
            .as_ref()
            .map_or(deadline, |st| (now.mono + st.wait()).min(deadline));
        let id = id.unwrap_or_else(|| shared.requests.next_id());
        let (first, also) = hops.split_first().expect("at least one hop");
        shared.requests.insert(Request {
            id,
            kind: RequestKind::Caller,
            packet_id: packet.packet_id,
            target_did: packet.target_did,
            addr: *first,
            direct: false,
            deadline,
            next_due,
            datagram: retransmit.as_ref().map(|_| bytes.clone()),
            retransmit,
            also: also.to_vec(),
            fallback,
            refused: None,
        });
        shared.stats.requests_sent += 1;
        let copies = if hops.len() == 1 {
            shared.config.mesh_copies
        } else {
            1
        };
        let bytes = Bytes::from(bytes);
        for hop in &hops {
            self.transmit(shared, *hop, bytes.clone(), copies);
        }
        Ok(id)
    }

    /// Sends a datagram of a mesh packet `copies` times (at least once),
    /// counted as mesh traffic.
    fn transmit(&mut self, shared: &mut Shared, to: SocketAddr, bytes: Bytes, copies: u8) {
        let copies = copies.max(1);
        self.router.counters().mesh_datagrams += u64::from(copies);
        shared.out.transmit_copies(to, bytes, copies);
    }

    /// Sends the answer to a mesh packet (or a relayed answer) to `to` as
    /// `mesh_copies` copies, counted as mesh traffic; when `charge` names an
    /// untrusted source, only if its credit covers every copy.
    pub(super) fn answer(
        &mut self,
        shared: &mut Shared,
        now: Now,
        to: SocketAddr,
        bytes: Bytes,
        charge: Option<IpAddr>,
        inbound: &mut Inbound,
    ) -> bool {
        let copies = shared.config.mesh_copies.max(1);
        let sent = shared.send_answer(now, to, bytes, copies, charge, inbound);
        if sent {
            self.router.counters().mesh_datagrams += u64::from(copies);
        }
        sent
    }

    /// A routed mesh request timed out: drop its route and flood it once.
    pub(super) fn retry_by_flood(
        &mut self,
        shared: &mut Shared,
        now: Now,
        req: Request,
        fb: MeshFallback,
    ) {
        self.router.fail_route(now, &req.target_did);
        let hops = self.router.flood_hops(shared, now, None);
        let sent = if hops.is_empty() {
            None
        } else {
            self.router.counters().flooded += 1;
            let packet =
                shared
                    .node
                    .ping(now.wall, &req.target_did, &fb.intent, &fb.purpose, fb.ping);
            self.send_mesh_request(
                shared,
                now,
                packet,
                hops,
                fb.timeout,
                fb.retransmit,
                None,
                Some(req.id),
            )
            .ok()
        };
        if sent.is_none() {
            shared.stats.requests_timed_out += 1;
            shared.out.event(Event::RequestTimedOut { id: req.id });
        }
    }

    /// The hook for a mesh packet that has no route and no peer to flood to
    /// (everything it could reach is where it came from). Counted; a bridge
    /// to a wider transport (MQTT) takes such packets from here.
    fn on_unroutable(&mut self, _now: Now, _packet: &PingPacket) {
        self.router.counters().unroutable += 1;
    }

    /// A response that answers none of our requests: passed back along the
    /// reverse path of the packet it answers, if we relayed that packet.
    /// False when it answers nothing we relayed (an orphan).
    pub(super) fn pass_back(
        &mut self,
        shared: &mut Shared,
        now: Now,
        inbound: &mut Inbound,
        response: PingResponse,
        datagram: &[u8],
    ) -> bool {
        let (source, from) = (inbound.source, inbound.from());
        if let Some(prev) = self
            .relay
            .reverse_path(now.mono, &response.in_response_to, from)
        {
            if !self
                .relay
                .store_response(now.mono, &response.in_response_to, datagram)
            {
                // A copy of an answer already passed back.
                return true;
            }
            if prev == UPLINK_ADDR {
                shared
                    .uplink
                    .relayed_response(now.mono, &response.in_response_to, datagram);
            } else {
                let frame = Bytes::copy_from_slice(datagram);
                let charge = (!source.is_uplink()
                    && !shared.is_trusted(now, &response.responder_did))
                .then(|| from.ip());
                if !self.answer(shared, now, prev, frame, charge, inbound) {
                    return true;
                }
            }
            // The uplink is no route on the mesh.
            if !source.is_uplink() {
                self.router
                    .learn_from_response(shared, now, &response.responder_did, from);
            }
            if shared.out.events_enabled() {
                shared.out.event(Event::ResponseRelayed {
                    in_response_to: response.in_response_to,
                    to: prev,
                });
            }
            return true;
        }
        self.relay.has_path(now.mono, &response.in_response_to)
    }

    /// The relay path: `packet` is for another node.
    pub(super) fn on_relay(
        &mut self,
        shared: &mut Shared,
        now: Now,
        inbound: &mut Inbound,
        packet: PingPacket,
    ) {
        let (source, from) = (inbound.source, inbound.from());
        // Relay only what we would not drop ourselves, and for untrusted
        // senders within the address's and the claimed DID's reverse-path
        // buckets; each copy is paid from the address's amplification
        // credit (below). The uplink is one more such source (its address
        // is `UPLINK_ADDR`): any client of the broker may publish to our
        // topics (docs/FLEETS.md).
        let score = shared.node.trust_of(now.wall, &packet.source_did).score;
        let airlock = shared.node.airlock();
        let trusted = airlock.threshold_zone(score) == AirlockZone::Groen;
        if airlock.zone_of(&packet, score) == AirlockZone::Rood {
            shared.stats.relay_refused_rood += 1;
            shared.note_drop(now, from, "relay_rood");
            return;
        }
        if !trusted
            && !shared
                .guard
                .allow_relay(now.mono, from.ip(), &packet.source_did)
        {
            shared.stats.relay_rate_limited += 1;
            shared.note_drop(now, from, "relay_limited");
            return;
        }
        let charge = (!trusted).then(|| from.ip());
        if let Some(answer) = self
            .relay
            .cached_response(now.mono, &packet.packet_id, from)
        {
            // Our previous hop resends a packet whose answer we passed back:
            // it was lost behind us; answer again from here (an empty
            // answer: a copy of a resend just answered).
            if source.is_uplink() && !answer.is_empty() {
                shared
                    .uplink
                    .relayed_response(now.mono, &packet.packet_id, &answer);
            } else if !answer.is_empty() {
                self.answer(shared, now, from, Bytes::from(answer), charge, inbound);
            }
            return;
        }
        // A packet we relayed before, resent by its previous hop: no answer
        // came back the way it went.
        let resend = self.relay.has_path(now.mono, &packet.packet_id);
        let out = match self.relay.prepare(now.mono, &packet, from) {
            Ok(out) => out,
            Err(RelayRefusal::NotMesh) if shared.out.events_enabled() => {
                // A direct ping for a DID that is not ours: most often a
                // typo in the target DID, so the operator gets to see it.
                shared.out.event(Event::Misdirected {
                    from,
                    packet_id: packet.packet_id,
                    source_did: packet.source_did,
                    target_did: packet.target_did,
                });
                return;
            }
            Err(_) => return,
        };
        if source.is_uplink() {
            // Its answer goes back to the sender's topic.
            shared
                .uplink
                .note_origin(now.mono, &packet.packet_id, &packet.source_did);
        }
        let bytes = match shared.codec.encode_packet(&out) {
            // One frame shared by every next hop.
            Ok(b) => Bytes::from(b),
            Err(_) => {
                shared.stats.encode_errors += 1;
                return;
            }
        };
        // Only peers that proved their address get relayed traffic (the
        // next hops are chosen among proven peers, engine/router.rs).
        let unproven = shared.peers.alive(now.mono).filter(|p| !p.proven).count() as u64;
        shared.stats.relay_unproven_skipped += unproven;
        let mut copies = 1;
        let (hops, routed): (Vec<SocketAddr>, bool) =
            match self
                .router
                .next_hops(shared, now, &out.target_did, Some(from))
            {
                NextHops::Routed(a) => {
                    self.router.counters().routed += 1;
                    copies = shared.config.mesh_copies;
                    (vec![a], true)
                }
                NextHops::Flood(hops) => {
                    self.router.counters().flooded += 1;
                    (hops, false)
                }
            };
        if resend {
            let before = self.relay.next_hops_of(now.mono, &out.packet_id);
            match hops.as_slice() {
                // The same next hop again: is it still there? If not, the
                // routes through it go, and the next resend takes another
                // way from here.
                [a] if routed && before.contains(a) => self.router.probe_next_hop(shared, now, *a),
                _ if before.len() == 1 && !before.iter().all(|b| hops.contains(b)) => {
                    self.router.counters().repaired += 1;
                }
                _ => {}
            }
        }
        if hops.is_empty() {
            self.on_unroutable(now, &out);
        }
        let mut sent = Vec::with_capacity(hops.len());
        for hop in hops {
            if charge.is_some() {
                let need = bytes.len() * usize::from(copies.max(1));
                if !shared.spend_credit(now, Some(&mut *inbound), from.ip(), need) {
                    shared.note_drop(now, from, "amplification");
                    continue;
                }
            }
            self.transmit(shared, hop, bytes.clone(), copies);
            sent.push(hop);
        }
        let mut hops = sent;
        // The local mesh has no route to the target (it is not a live peer and
        // no neighbour taught a route): the uplink, if attached, is one more
        // next hop beside the bounded local flood (never for a packet that
        // came over it). docs/FLEETS.md.
        if !routed && !source.is_uplink() && shared.uplink.enabled() {
            shared
                .uplink
                .ping(&out.target_did, &out.source_did, bytes.to_vec());
            hops.push(UPLINK_ADDR);
        }
        self.relay.set_next_hops(now.mono, &out.packet_id, &hops);
        if shared.out.audit_enabled() {
            shared.out.audit(|| AuditRecord::Relay {
                packet: Box::new(out.clone()),
                next_hops: hops.clone(),
            });
        }
        if shared.out.events_enabled() {
            shared.out.event(Event::PacketRelayed {
                packet_id: out.packet_id,
                target_did: out.target_did,
                hop_count: out.hop_count,
                next_hops: hops.len(),
            });
        }
    }
}
