//! Routing inside the [`Engine`]: who may teach routes, what is learned
//! from which traffic, how a mesh packet picks its next hops (a learned
//! route, else a bounded flood), and the flood retry of a failed route. The
//! table itself is [`RoutingTable`] (`routes.rs`).

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tibet_ping::{AirlockZone, JsonMap, PingPacket, PingType, RoutingMode};

use super::inbound::Inbound;
use super::{Engine, SendOptions};
use crate::audit_record::AuditRecord;
use crate::error::SendError;
use crate::event::Event;
use crate::relay::RelayRefusal;
use crate::requests::{MeshFallback, Request, RequestId, RequestKind};
use crate::retransmit::{RetransmitPolicy, RetransmitState};
use crate::routes::{ROUTES_KEY, RouteSource, RoutingTable, UNKNOWN_HOPS};
use crate::time::Now;
use crate::uplink::UPLINK_ADDR;

/// Most neighbours a bounded flood hands one packet to.
pub const FLOOD_FANOUT: usize = 4;
/// How long a probe of a next hop waits for its answer, resends included.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// A probe's resends: on a link losing 10 %, a live neighbour fails all
/// three round trips about once in 150 probes.
const PROBE_RETRANSMIT: RetransmitPolicy = RetransmitPolicy {
    max_retransmits: 2,
    initial_timeout: Duration::from_millis(100),
    random_factor: 1.0,
};

/// Where a mesh packet goes next.
pub(crate) enum NextHops {
    /// Along a learned route, or straight to the target (a live peer).
    Routed(SocketAddr),
    /// A flood: a bounded one with routing on, every live peer with it off.
    Flood(Vec<SocketAddr>),
}

impl Engine {
    /// Whether `did` may teach this node routes: it is trusted (its trust
    /// reaches the GROEN threshold, set explicitly or through vouches).
    /// The one place to widen when authenticated identities arrive.
    pub fn may_teach_routes(&self, now: Now, did: &str) -> bool {
        self.node.trust_of(now.wall, did).score >= self.config.ping.trust_groen
    }

    /// The routing table.
    pub fn routes(&self) -> &RoutingTable {
        &self.routes
    }

    /// Sends a mesh ping to `target` without naming a first hop: along the
    /// learned route if there is one (the target itself when it is a live
    /// peer), else by bounded flood. A routed ping that gets no answer in
    /// half its timeout (resends included) drops the route and is sent once
    /// more, by flood, for the other half. Its answer or timeout becomes an
    /// event carrying the returned id.
    pub fn send_mesh_ping(
        &mut self,
        now: Now,
        target: &str,
        intent: &str,
        purpose: &str,
        opts: SendOptions,
    ) -> Result<RequestId, SendError> {
        self.check_capacity()?;
        let mut ping = opts.ping;
        ping.routing_mode = RoutingMode::Mesh;
        let timeout = opts.timeout.unwrap_or(self.config.request_timeout);
        let policy = opts.retransmit.unwrap_or(self.config.retransmit);
        let packet = self
            .node
            .ping(now.wall, target, intent, purpose, ping.clone());
        match self.mesh_next_hops(now, target, None) {
            NextHops::Routed(addr) if self.config.routing => {
                let half = timeout / 2;
                let fallback = MeshFallback {
                    intent: intent.to_owned(),
                    purpose: purpose.to_owned(),
                    ping,
                    retransmit: policy,
                    timeout: timeout - half,
                };
                self.stats_routes_routed();
                self.send_mesh_request(
                    now,
                    packet,
                    vec![addr],
                    half,
                    policy,
                    Some(Box::new(fallback)),
                    None,
                )
            }
            NextHops::Routed(addr) => {
                self.send_mesh_request(now, packet, vec![addr], timeout, policy, None, None)
            }
            NextHops::Flood(hops) if hops.is_empty() => {
                self.routes.stats.unroutable += 1;
                Err(SendError::NoRoute {
                    target: target.to_owned(),
                })
            }
            NextHops::Flood(hops) => {
                self.routes.stats.flooded += 1;
                self.send_mesh_request(now, packet, hops, timeout, policy, None, None)
            }
        }
    }

    fn stats_routes_routed(&mut self) {
        self.routes.stats.routed += 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn send_mesh_request(
        &mut self,
        now: Now,
        packet: PingPacket,
        hops: Vec<SocketAddr>,
        timeout: Duration,
        policy: RetransmitPolicy,
        fallback: Option<Box<MeshFallback>>,
        id: Option<RequestId>,
    ) -> Result<RequestId, SendError> {
        let bytes = self
            .codec
            .encode_packet(&packet)
            .map_err(|e| SendError::Encode(e.to_string()))?;
        self.relay.mark_seen(now.mono, &packet.packet_id);
        let retransmit = RetransmitState::new(&policy, &mut self.rng);
        let deadline = now.mono + timeout;
        let next_due = retransmit
            .as_ref()
            .map_or(deadline, |st| (now.mono + st.wait()).min(deadline));
        let id = id.unwrap_or_else(|| self.requests.next_id());
        let (first, also) = hops.split_first().expect("at least one hop");
        self.requests.insert(Request {
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
        self.stats.requests_sent += 1;
        let copies = if hops.len() == 1 {
            self.config.mesh_copies
        } else {
            1
        };
        for hop in &hops {
            self.transmit_mesh(*hop, bytes.clone(), copies);
        }
        Ok(id)
    }

    /// Sends a datagram of a mesh packet (or its answer) `copies` times
    /// (at least once), counted as mesh traffic.
    pub(crate) fn transmit_mesh(&mut self, to: SocketAddr, bytes: impl Into<Bytes>, copies: u8) {
        let bytes: Bytes = bytes.into();
        let copies = copies.max(1);
        self.routes.stats.mesh_datagrams += u64::from(copies);
        for _ in 1..copies {
            self.out.transmit(to, bytes.clone());
        }
        self.out.transmit(to, bytes);
    }

    /// A routed mesh request timed out: drop its route and flood it once.
    pub(crate) fn retry_by_flood(&mut self, now: Now, req: Request, fb: MeshFallback) {
        if let Some(key) = self.routes.key_for(&req.target_did) {
            let key = key.into_owned();
            self.routes.fail(now.mono, &key);
        }
        let NextHops::Flood(hops) = self.flood_hops(now, None) else {
            unreachable!("flood_hops floods")
        };
        let sent = if hops.is_empty() {
            None
        } else {
            self.routes.stats.flooded += 1;
            let packet =
                self.node
                    .ping(now.wall, &req.target_did, &fb.intent, &fb.purpose, fb.ping);
            self.send_mesh_request(
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
            self.stats.requests_timed_out += 1;
            self.out.event(Event::RequestTimedOut { id: req.id });
        }
    }

    /// The next hops of a mesh packet for `target` that came from `from`
    /// (`None`: our own).
    fn mesh_next_hops(&mut self, now: Now, target: &str, from: Option<SocketAddr>) -> NextHops {
        match self.routed_next_hop(now, target, from) {
            Some(a) => NextHops::Routed(a),
            None => self.flood_hops(now, from),
        }
    }

    /// The one next hop of a mesh packet for `target` that came from
    /// `from` (`None`: our own), when it is not flooded: the target itself
    /// when it is a live peer, else the next hop of a live route.
    pub(crate) fn routed_next_hop(
        &self,
        now: Now,
        target: &str,
        from: Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        // Only peers that proved their address get mesh traffic
        // (docs/SECURITY.md).
        if let Some(a) = self.peers.proven_address(now.mono, target) {
            return Some(a);
        }
        if self.config.routing
            && let Some(key) = self.routes.key_for(target)
            && let Some(r) = self.routes.get(now.mono, &key)
            && Some(r.next_hop) != from
            && self.is_live_neighbour(now, r.next_hop)
        {
            return Some(r.next_hop);
        }
        None
    }

    /// Whether the neighbour at `addr` may carry routed traffic: a live,
    /// proven peer there, heard within [`Engine::route_liveness`]. A
    /// neighbour that went silent stops drawing routed traffic after a few
    /// heartbeats instead of at the peer timeout; packets for its routes
    /// take the bounded flood from here meanwhile.
    fn is_live_neighbour(&self, now: Now, addr: SocketAddr) -> bool {
        self.routes
            .neighbour(addr)
            .and_then(|did| self.peers.get(now.mono, did))
            .is_some_and(|p| {
                p.proven && p.address == addr && p.idle(now.mono) <= self.route_liveness()
            })
    }

    /// How long a neighbour may stay silent and still carry routes: two
    /// heartbeat intervals and a fifth (a heartbeat each way per interval,
    /// so on a link losing 10 % the chance of silence that long is about
    /// 1 in 10,000), at most the peer timeout.
    fn route_liveness(&self) -> Duration {
        (self.config.heartbeat_interval * 11 / 5).min(self.config.peer_timeout)
    }

    /// A mesh packet sent along a route through `addr` went unanswered
    /// (its sender resent it): probe that neighbour, at most once per
    /// `PROBE_INTERVAL` (5 s), with a heartbeat that must be
    /// answered within [`PROBE_TIMEOUT`]. Only trusted neighbours (next
    /// hops of routes) are probed.
    pub(crate) fn probe_next_hop(&mut self, now: Now, addr: SocketAddr) {
        if !self.config.routing || self.check_capacity().is_err() {
            return;
        }
        let Some(did) = self.routes.neighbour(addr).map(str::to_owned) else {
            return;
        };
        if !self.routes.take_probe(now.mono, addr) {
            return;
        }
        let mut extra = JsonMap::new();
        extra.insert(ROUTES_KEY.to_owned(), JsonMap::new().into());
        let packet = self.node.heartbeat_with(now.wall, &did, None, extra);
        let _ = self.send_request(
            now,
            packet,
            addr,
            RequestKind::Probe,
            PROBE_TIMEOUT,
            PROBE_RETRANSMIT,
        );
    }

    /// Our heartbeat to `did` at `addr` went unanswered: if nothing else
    /// was heard from it since it was sent, probe it (a neighbour that left
    /// is found out within a heartbeat interval and a request timeout,
    /// before traffic runs into it; one heartbeat in five is lost on a link
    /// losing 10 %, so silence alone is no verdict).
    pub(crate) fn heartbeat_unanswered(&mut self, now: Now, did: &str, addr: SocketAddr) {
        let silent = self
            .peers
            .get(now.mono, did)
            .is_some_and(|p| p.address == addr && p.idle(now.mono) >= self.config.request_timeout);
        if silent {
            self.probe_next_hop(now, addr);
        }
    }

    /// A probe of the neighbour at `addr` went unanswered: its routes are
    /// withdrawn (the next advertisement round tells our neighbours), and
    /// it draws neither routed nor flooded traffic until heard again. A
    /// resend that reaches us next takes another way from here.
    pub(crate) fn probe_unanswered(&mut self, now: Now, addr: SocketAddr) {
        self.routes.lose_neighbour(now.mono, addr);
    }

    /// Live, proven peers except `from`: all of them with routing off, else
    /// at most [`FLOOD_FANOUT`] drawn by the seeded RNG from the ordered
    /// table.
    fn flood_hops(&mut self, now: Now, from: Option<SocketAddr>) -> NextHops {
        let mut hops: Vec<SocketAddr> = self
            .peers
            .alive(now.mono)
            .filter(|p| p.proven)
            .map(|p| p.address)
            .filter(|a| Some(*a) != from && !self.routes.is_lost(*a))
            .collect();
        if self.config.routing && hops.len() > FLOOD_FANOUT {
            for i in 0..FLOOD_FANOUT {
                let j = self.rng.gen_range(i..hops.len());
                hops.swap(i, j);
            }
            hops.truncate(FLOOD_FANOUT);
        }
        NextHops::Flood(hops)
    }

    /// `did` at `addr` talked to us directly (a heartbeat, or an answer to
    /// a direct request): a route of one hop, if it may teach routes.
    pub(crate) fn learn_neighbour(&mut self, now: Now, did: &str, addr: SocketAddr) {
        if !self.config.routing {
            return;
        }
        if !self.may_teach_routes(now, did) {
            self.routes.stats.untrusted_ignored += 1;
            return;
        }
        if self.routes.set_neighbour(addr, did)
            && let Some(key) = self.routes.key_for(did)
        {
            let key = key.into_owned();
            self.routes
                .learn(now.mono, &key, addr, 1, RouteSource::Neighbour);
        }
    }

    /// A heartbeat from the neighbour `did` at `addr` (verified: replay
    /// checked, not ROOD, straight from its sender) may carry its routes.
    pub(crate) fn learn_from_heartbeat(&mut self, now: Now, packet: &PingPacket, addr: SocketAddr) {
        if !self.config.routing || packet.ping_type != PingType::Heartbeat {
            return;
        }
        self.learn_neighbour(now, &packet.source_did, addr);
        let Some(advert) = packet.payload.get(ROUTES_KEY).and_then(|v| v.as_object()) else {
            return;
        };
        if !self.may_teach_routes(now, &packet.source_did)
            || self.routes.neighbour(addr) != Some(packet.source_did.as_str())
        {
            return;
        }
        // It routes: it gets our advertisements from now on.
        self.routes.note_advertiser(now.mono, addr);
        let own = self.node.did().to_owned();
        for (dest, hops) in self
            .routes
            .parse_advertisement(advert, &own, &packet.source_did)
        {
            self.routes
                .learn(now.mono, &dest, addr, hops, RouteSource::Advertised);
        }
    }

    /// A response from `responder` came back through the neighbour at
    /// `from`: the way there works. Taught only by a neighbour that may
    /// teach routes.
    pub(crate) fn learn_from_response(&mut self, now: Now, responder: &str, from: SocketAddr) {
        if !self.config.routing || responder == self.node.did() {
            return;
        }
        let teaches = self
            .routes
            .neighbour(from)
            .is_some_and(|n| self.may_teach_routes(now, n));
        if !teaches {
            self.routes.stats.untrusted_ignored += 1;
            return;
        }
        let Some(key) = self.routes.key_for(responder) else {
            return;
        };
        let key = key.into_owned();
        self.routes
            .learn(now.mono, &key, from, UNKNOWN_HOPS, RouteSource::Response);
    }

    /// The payload keys this round adds to a heartbeat for `to_did` at `to`
    /// (with routing on): the routes if the neighbour advertises routes
    /// itself, else an empty map, which says that this node routes and
    /// wants the neighbour's advertisements. Added before the heartbeat is
    /// signed.
    pub(crate) fn heartbeat_routes(
        &self,
        now: Now,
        round: &[(compact_str::CompactString, SocketAddr, u32)],
        to_did: &str,
        to: SocketAddr,
    ) -> JsonMap {
        let mut extra = JsonMap::new();
        if !self.config.routing {
            return extra;
        }
        let advert = if self.routes.wants_advertisements(now.mono, to) {
            RoutingTable::advertisement_for(round, to_did, to)
        } else {
            JsonMap::new()
        };
        extra.insert(ROUTES_KEY.to_owned(), advert.into());
        extra
    }

    /// The hook for a mesh packet that has no route and no peer to flood to
    /// (everything it could reach is where it came from). Counted; a bridge
    /// to a wider transport (MQTT) takes such packets from here.
    fn on_unroutable(&mut self, _now: Now, _packet: &PingPacket) {
        self.routes.stats.unroutable += 1;
    }

    /// A neighbour expired: routes through it are gone.
    pub(crate) fn forget_neighbour(&mut self, now: Now, addr: SocketAddr) {
        self.routes.remove_via(now.mono, addr);
        self.routes.remove_neighbour(addr);
    }

    pub(super) fn on_relay(&mut self, now: Now, inbound: &mut Inbound, packet: PingPacket) {
        let (source, from) = (inbound.source, inbound.from());
        // Relay only what we would not drop ourselves, and for untrusted
        // senders within the address's and the claimed DID's reverse-path
        // buckets; each copy is paid from the address's amplification
        // credit (below). The uplink is one more such source (its address
        // is `UPLINK_ADDR`): any client of the broker may publish to our
        // topics (docs/FLEETS.md).
        let score = self.node.trust_of(now.wall, &packet.source_did).score;
        let airlock = self.node.airlock();
        let trusted = airlock.threshold_zone(score) == AirlockZone::Groen;
        if airlock.zone_of(&packet, score) == AirlockZone::Rood {
            self.stats.relay_refused_rood += 1;
            self.note_drop(now, from, "relay_rood");
            return;
        }
        if !trusted
            && !self
                .guard
                .allow_relay(now.mono, from.ip(), &packet.source_did)
        {
            self.stats.relay_rate_limited += 1;
            self.note_drop(now, from, "relay_limited");
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
                self.uplink
                    .relayed_response(now.mono, &packet.packet_id, &answer);
            } else if !answer.is_empty() {
                self.answer(now, from, Bytes::from(answer), true, charge, inbound);
            }
            return;
        }
        // A packet we relayed before, resent by its previous hop: no answer
        // came back the way it went.
        let resend = self.relay.has_path(now.mono, &packet.packet_id);
        let out = match self.relay.prepare(now.mono, &packet, from) {
            Ok(out) => out,
            Err(RelayRefusal::NotMesh) if self.out.events_enabled() => {
                // A direct ping for a DID that is not ours: most often a
                // typo in the target DID, so the operator gets to see it.
                self.out.event(Event::Misdirected {
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
            self.uplink
                .note_origin(now.mono, &packet.packet_id, &packet.source_did);
        }
        let bytes = match self.codec.encode_packet(&out) {
            // One frame shared by every next hop.
            Ok(b) => Bytes::from(b),
            Err(_) => {
                self.stats.encode_errors += 1;
                return;
            }
        };
        // Only peers that proved their address get relayed traffic (the
        // next hops are chosen among proven peers, engine/mesh.rs).
        let unproven = self.peers.alive(now.mono).filter(|p| !p.proven).count() as u64;
        self.stats.relay_unproven_skipped += unproven;
        let mut copies = 1;
        let (hops, routed): (Vec<SocketAddr>, bool) =
            match self.mesh_next_hops(now, &out.target_did, Some(from)) {
                NextHops::Routed(a) => {
                    self.routes.stats.routed += 1;
                    copies = self.config.mesh_copies;
                    (vec![a], true)
                }
                NextHops::Flood(hops) => {
                    self.routes.stats.flooded += 1;
                    (hops, false)
                }
            };
        if resend {
            let before = self.relay.next_hops_of(now.mono, &out.packet_id);
            match hops.as_slice() {
                // The same next hop again: is it still there? If not, the
                // routes through it go, and the next resend takes another
                // way from here.
                [a] if routed && before.contains(a) => self.probe_next_hop(now, *a),
                _ if before.len() == 1 && !before.iter().all(|b| hops.contains(b)) => {
                    self.routes.stats.repaired += 1;
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
                if !self.spend_credit(now, Some(&mut *inbound), from.ip(), need) {
                    self.note_drop(now, from, "amplification");
                    continue;
                }
            }
            self.transmit_mesh(hop, bytes.clone(), copies);
            sent.push(hop);
        }
        let mut hops = sent;
        // The local mesh has no route to the target (it is not a live peer and
        // no neighbour taught a route): the uplink, if attached, is one more
        // next hop beside the bounded local flood (never for a packet that
        // came over it). docs/FLEETS.md.
        if !routed && !source.is_uplink() && self.uplink.enabled() {
            self.uplink
                .ping(&out.target_did, &out.source_did, bytes.to_vec());
            hops.push(UPLINK_ADDR);
        }
        self.relay.set_next_hops(now.mono, &out.packet_id, &hops);
        if self.out.audit_enabled() {
            self.out.audit(|| AuditRecord::Relay {
                packet: Box::new(out.clone()),
                next_hops: hops.clone(),
            });
        }
        if self.out.events_enabled() {
            self.out.event(Event::PacketRelayed {
                packet_id: out.packet_id,
                target_did: out.target_did,
                hop_count: out.hop_count,
                next_hops: hops.len(),
            });
        }
    }
}
