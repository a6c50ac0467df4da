//! [`Router`]: the routing decisions of the engine's mesh. Who may teach
//! routes and what is learned from which traffic, which next hops a mesh
//! packet gets (a learned route, else a bounded flood), the probes that find
//! a next hop gone, and what our heartbeats advertise. The table itself is
//! [`RoutingTable`] (`routes.rs`); moving packets is [`Mesh`](super::mesh::Mesh)'s.

use alloc::borrow::ToOwned;
use alloc::vec::Vec;

use core::net::SocketAddr;
use core::time::Duration;

use rand::Rng;
use tibet_ping::{JsonMap, PingPacket, PingType};

use super::shared::Shared;
use crate::advert::{Advert, AdvertText, ROUTES_KEY};
use crate::config::TransportConfig;
use crate::requests::RequestKind;
use crate::retransmit::RetransmitPolicy;
use crate::routes::{AdvertEntry, RouteSource, RouteStats, RoutingTable, UNKNOWN_HOPS};
use crate::time::{MonoTime, Now};

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

/// The engine's routing state: the table, and the decisions made with it.
#[derive(Debug)]
pub(super) struct Router {
    routes: RoutingTable,
}

impl Router {
    /// The routing table `config` asks for, for the node `did`.
    pub(super) fn new(config: &TransportConfig, did: &str) -> Router {
        let mut routes = RoutingTable::new(
            config.limits.routes,
            config.limits.route_bytes,
            config.peer_timeout * 4,
        );
        if config.route_areas {
            routes.set_area(Some(did));
        }
        Router { routes }
    }

    /// The routing table.
    pub(super) fn table(&self) -> &RoutingTable {
        &self.routes
    }

    /// The routing and mesh traffic counters.
    pub(super) fn counters(&mut self) -> &mut RouteStats {
        &mut self.routes.stats
    }

    /// A routed packet for `target` went unanswered: its route fails.
    pub(super) fn fail_route(&mut self, now: Now, target: &str) {
        if let Some(key) = self.routes.key_for(target) {
            let key = key.into_owned();
            self.routes.fail(now.mono, &key);
        }
    }

    /// The next hops of a mesh packet for `target` that came from `from`
    /// (`None`: our own).
    pub(super) fn next_hops(
        &mut self,
        shared: &mut Shared,
        now: Now,
        target: &str,
        from: Option<SocketAddr>,
    ) -> NextHops {
        match self.routed_next_hop(shared, now, target, from) {
            Some(a) => NextHops::Routed(a),
            None => NextHops::Flood(self.flood_hops(shared, now, from)),
        }
    }

    /// The one next hop of a mesh packet for `target` that came from
    /// `from` (`None`: our own), when it is not flooded: the target itself
    /// when it is a live peer, else the next hop of a live route.
    pub(super) fn routed_next_hop(
        &self,
        shared: &Shared,
        now: Now,
        target: &str,
        from: Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        // Only peers that proved their address get mesh traffic
        // (docs/SECURITY.md).
        if let Some(a) = shared.peers.proven_address(now.mono, target) {
            return Some(a);
        }
        if shared.config.routing
            && let Some(key) = self.routes.key_for(target)
            && let Some(r) = self.routes.get(now.mono, &key)
            && Some(r.next_hop) != from
            && self.is_live_neighbour(shared, now, r.next_hop)
        {
            return Some(r.next_hop);
        }
        None
    }

    /// Whether the neighbour at `addr` may carry routed traffic: a live,
    /// proven peer there, heard within [`Router::route_liveness`]. A
    /// neighbour that went silent stops drawing routed traffic after a few
    /// heartbeats instead of at the peer timeout; packets for its routes
    /// take the bounded flood from here meanwhile.
    fn is_live_neighbour(&self, shared: &Shared, now: Now, addr: SocketAddr) -> bool {
        let liveness = Self::route_liveness(&shared.config);
        self.routes
            .neighbour(addr)
            .and_then(|did| shared.peers.get(now.mono, did))
            .is_some_and(|p| p.proven && p.address == addr && p.idle(now.mono) <= liveness)
    }

    /// How long a neighbour may stay silent and still carry routes: two
    /// heartbeat intervals and a fifth (a heartbeat each way per interval,
    /// so on a link losing 10 % the chance of silence that long is about
    /// 1 in 10,000), at most the peer timeout.
    fn route_liveness(config: &TransportConfig) -> Duration {
        (config.heartbeat_interval * 11 / 5).min(config.peer_timeout)
    }

    /// A mesh packet sent along a route through `addr` went unanswered
    /// (its sender resent it): probe that neighbour, at most once per
    /// `PROBE_INTERVAL` (5 s), with a heartbeat that must be
    /// answered within [`PROBE_TIMEOUT`]. Only trusted neighbours (next
    /// hops of routes) are probed.
    pub(super) fn probe_next_hop(&mut self, shared: &mut Shared, now: Now, addr: SocketAddr) {
        if !shared.config.routing || shared.check_capacity().is_err() {
            return;
        }
        let Some(did) = self.routes.neighbour(addr).map(str::to_owned) else {
            return;
        };
        if !self.routes.take_probe(now.mono, addr) {
            return;
        }
        let mut extra = JsonMap::new();
        extra.insert(ROUTES_KEY.to_owned(), AdvertText::new().into());
        let packet = shared.node.heartbeat_with(now.wall, &did, None, extra);
        let _ = shared.send_request(
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
    pub(super) fn heartbeat_unanswered(
        &mut self,
        shared: &mut Shared,
        now: Now,
        did: &str,
        addr: SocketAddr,
    ) {
        let silent = shared.peers.get(now.mono, did).is_some_and(|p| {
            p.address == addr && p.idle(now.mono) >= shared.config.request_timeout
        });
        if silent {
            self.probe_next_hop(shared, now, addr);
        }
    }

    /// A probe of the neighbour at `addr` went unanswered: its routes are
    /// withdrawn (the next advertisement round tells our neighbours), and
    /// it draws neither routed nor flooded traffic until heard again. A
    /// resend that reaches us next takes another way from here.
    pub(super) fn probe_unanswered(&mut self, now: Now, addr: SocketAddr) {
        self.routes.lose_neighbour(now.mono, addr);
    }

    /// Live, proven peers except `from`: all of them with routing off, else
    /// at most [`FLOOD_FANOUT`] drawn by the seeded RNG from the ordered
    /// table.
    pub(super) fn flood_hops(
        &mut self,
        shared: &mut Shared,
        now: Now,
        from: Option<SocketAddr>,
    ) -> Vec<SocketAddr> {
        let mut hops: Vec<SocketAddr> = shared
            .peers
            .alive(now.mono)
            .filter(|p| p.proven)
            .map(|p| p.address)
            .filter(|a| Some(*a) != from && !self.routes.is_lost(*a))
            .collect();
        if shared.config.routing && hops.len() > FLOOD_FANOUT {
            for i in 0..FLOOD_FANOUT {
                let j = shared.rng.gen_range(i..hops.len());
                hops.swap(i, j);
            }
            hops.truncate(FLOOD_FANOUT);
        }
        hops
    }

    /// `did` at `addr` talked to us directly (a heartbeat, or an answer to
    /// a direct request): a route of one hop, if it may teach routes.
    pub(super) fn learn_neighbour(
        &mut self,
        shared: &Shared,
        now: Now,
        did: &str,
        addr: SocketAddr,
    ) {
        if !shared.config.routing {
            return;
        }
        if !shared.may_teach_routes(now, did) {
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
    pub(super) fn learn_from_heartbeat(
        &mut self,
        shared: &Shared,
        now: Now,
        packet: &PingPacket,
        addr: SocketAddr,
    ) {
        if !shared.config.routing || packet.ping_type != PingType::Heartbeat {
            return;
        }
        self.learn_neighbour(shared, now, &packet.source_did, addr);
        let Some(advert) = packet.payload.get(ROUTES_KEY).and_then(Advert::from_value) else {
            return;
        };
        if !shared.may_teach_routes(now, &packet.source_did)
            || self.routes.neighbour(addr) != Some(packet.source_did.as_str())
        {
            return;
        }
        // It routes: it gets our advertisements from now on.
        self.routes.note_advertiser(now.mono, addr);
        for (dest, hops) in
            self.routes
                .parse_advertisement(advert, shared.node.did(), &packet.source_did)
        {
            self.routes
                .learn(now.mono, &dest, addr, hops, RouteSource::Advertised);
        }
    }

    /// A response from `responder` came back through the neighbour at
    /// `from`: the way there works. Taught only by a neighbour that may
    /// teach routes.
    pub(super) fn learn_from_response(
        &mut self,
        shared: &Shared,
        now: Now,
        responder: &str,
        from: SocketAddr,
    ) {
        if !shared.config.routing || responder == shared.node.did() {
            return;
        }
        let teaches = self
            .routes
            .neighbour(from)
            .is_some_and(|n| shared.may_teach_routes(now, n));
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

    /// This heartbeat round's routes (none with routing off): what each
    /// neighbour is sent is written from them
    /// ([`RoutingTable::advertisement_for`]).
    pub(super) fn advertisement_round(&mut self, shared: &Shared, now: Now) -> Vec<AdvertEntry> {
        if shared.config.routing {
            self.routes.advertisement_round(now.mono)
        } else {
            Vec::new()
        }
    }

    /// When a triggered update is due ([`RoutingTable::trigger_due`]; never
    /// with routing off).
    pub(super) fn trigger_due(&self, shared: &Shared) -> Option<MonoTime> {
        if shared.config.routing {
            self.routes.trigger_due()
        } else {
            None
        }
    }

    /// A triggered update's routes: what changed since the last
    /// advertisement ([`RoutingTable::advertisement_delta`]).
    pub(super) fn advertisement_delta(&mut self, now: Now) -> Vec<AdvertEntry> {
        self.routes.advertisement_delta(now.mono)
    }

    /// The whole table, when some neighbour that began to advertise is
    /// due it ([`RoutingTable::full_advertisement`]).
    pub(super) fn full_advertisement(&mut self, now: Now) -> Option<Vec<AdvertEntry>> {
        self.routes
            .full_due()
            .then(|| self.routes.full_advertisement(now.mono))
    }

    /// The payload keys an advertisement adds to a heartbeat for `to_did`
    /// at `to` (with routing on): `full`, the whole table, if the neighbour
    /// is due it, else `round`, if the neighbour advertises routes itself,
    /// else an empty advertisement, which says that this node routes and
    /// wants the neighbour's advertisements. `None` when `update` (a
    /// triggered one) and the neighbour would be sent no route but its own
    /// and those through it (nothing for it). Added before the heartbeat is
    /// signed.
    pub(super) fn heartbeat_routes(
        &mut self,
        shared: &Shared,
        now: Now,
        (round, full): (&[AdvertEntry], Option<&[AdvertEntry]>),
        (to_did, to): (&str, SocketAddr),
        update: bool,
    ) -> Option<JsonMap> {
        let mut extra = JsonMap::new();
        if !shared.config.routing {
            return Some(extra);
        }
        let routes = match full {
            Some(full) if self.routes.take_full(to) => full,
            _ if self.routes.wants_advertisements(now.mono, to) => round,
            _ => &[],
        };
        // An update that would only poison routes through the neighbour
        // (it taught them) tells it nothing.
        if update && routes.iter().all(|(d, hop, _)| *hop == to || d == to_did) {
            return None;
        }
        let advert = RoutingTable::advertisement_for(routes, to_did, to);
        extra.insert(ROUTES_KEY.to_owned(), advert.into());
        Some(extra)
    }

    /// The periodic cleanup: expired routes go.
    pub(super) fn expire(&mut self, now: Now) {
        self.routes.expire(now.mono);
    }

    /// A neighbour expired: routes through it are gone.
    pub(super) fn forget_neighbour(&mut self, now: Now, addr: SocketAddr) {
        self.routes.remove_via(now.mono, addr);
        self.routes.remove_neighbour(addr);
    }
}
