//! [`Engine`]: the sans-IO node. Datagrams and time go in; datagrams to send,
//! events and the next deadline come out. It owns the [`PingNode`], the peer
//! table, the mesh relay, discovery scheduling, request correlation and
//! retransmission, and never touches a socket or a clock.
//!
//! Drive it like quinn-proto: feed [`Engine::handle_datagram`] /
//! [`Engine::handle_discovery_datagram`] and [`Engine::handle_timeout`], then
//! drain [`Engine::poll_transmit`], [`Engine::poll_event`] and
//! [`Engine::poll_audit`], and sleep until [`Engine::poll_timeout`]. Every
//! state change made through the engine's commands (trust, vouch, rules,
//! review of pending pings) is reported as an [`AuditRecord`].

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::identity::{Identity, IdentityMode, PUBLIC_KEY_FIELD, PinStore, PublicKey};
use tibet_ping::{
    AirlockRule, AirlockZone, Announcement, AutoVouchRule, AutoVouchRuleError, Beacon,
    BeaconAdmission, BeaconDecision, DecodeError, Decoded, DropAggregator, DropSource, Frame,
    JsonMap, Outcome, PacketCodec, PendingPing, PingNode, PingPacket, PingResponse, PingType,
    RoutingMode, Vouch, VouchError, VouchOptions,
};

mod batch;
mod inbound;
mod mesh;

pub use batch::MAX_DATAGRAM_BATCH;

use inbound::Inbound;
pub use mesh::FLOOD_FANOUT;
use mesh::NextHops;

use crate::audit::{AnsweredPing, AuditRecord};
use crate::audit_queue::{Admission, AuditQueue};
use crate::bounded::{BoundedMap, WhenFull};
use crate::config::TransportConfig;
use crate::discovery::NetworkDiscovery;
use crate::error::SendError;
use crate::event::Event;
use crate::guard::SourceGuard;
use crate::identity::{Budget, IdentityGate, IdentityStats, PreVerified};
use crate::metrics::PingMetrics;
use crate::peers::{PeerTracker, PeerUpdate};
use crate::relay::{MeshRelay, RelayRefusal};
use crate::requests::{Due, Request, RequestId, RequestKind, Requests};
use crate::response_cache::ResponseCache;
use crate::retransmit::{RetransmitPolicy, RetransmitState};
use crate::reviews::{WaitingBeacon, WaitingReviews};
use crate::routes::RoutingTable;
use crate::source::Source;
use crate::stats::{DriverStats, EngineStats, NodeStats};
use crate::time::{MonoTime, Now};
use crate::uplink::{UPLINK_ADDR, Uplink, UplinkState};

/// Payload key of our beacons carrying the port of the sender's transport
/// socket (an extension; the reference ignores unknown payload keys).
pub const TRANSPORT_PORT_KEY: &str = "transport_port";

/// Slots the outgoing queue keeps once drained (a burst may grow it further
/// while it lasts).
const TRANSMITS_KEPT: usize = 1024;

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The frame; shared, not copied, when one datagram goes to several
    /// next hops.
    pub payload: Bytes,
}

/// Options of one outgoing ping beyond target, intent and purpose.
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    /// Type, priority, routing mode, payload, pod, station, max hops.
    pub ping: tibet_ping::PingOptions,
    /// Overrides the configured request timeout.
    pub timeout: Option<Duration>,
    /// Overrides the configured retransmission policy.
    pub retransmit: Option<RetransmitPolicy>,
}

/// The sans-IO node engine.
pub struct Engine {
    node: PingNode,
    codec: PacketCodec,
    config: TransportConfig,
    rng: StdRng,
    announcement: Announcement,
    local_port: u16,
    multicast_dest: SocketAddr,
    peers: PeerTracker,
    relay: MeshRelay,
    routes: RoutingTable,
    discovery: NetworkDiscovery,
    requests: Requests,
    responses: ResponseCache,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    events_enabled: bool,
    next_heartbeat: Option<MonoTime>,
    next_cleanup: Option<MonoTime>,
    audit: AuditQueue,
    audit_enabled: bool,
    uplink: UplinkState,
    stats: EngineStats,
    guard: SourceGuard,
    drops: DropAggregator,
    next_drop_flush: Option<MonoTime>,
    metrics: PingMetrics,
    identity: IdentityGate,
    /// Signatures checked ahead by [`Engine::handle_datagrams`].
    batch_verified: u64,
    /// Receive batches still to be checked one by one after a batch check
    /// failed (see `engine/batch.rs`).
    batch_backoff: u8,
    /// Keys of self-certified beacons waiting for human review, by beacon id.
    beacon_keys: BoundedMap<String, (String, PublicKey)>,
    pins_generation: u64,
    /// Where answers are written before their exact-size copy is sent.
    answer_buf: Vec<u8>,
    /// The packet datagrams are decoded into (see [`Engine::handle_datagram`]).
    scratch: PingPacket,
    /// The packets a receive batch is decoded into (see `engine/batch.rs`).
    batch_packets: Vec<PingPacket>,
}

/// Datagrams up to this size leave their decoded strings in the engine's
/// packet for reuse; larger ones are decoded into it and then dropped.
const SCRATCH_KEEP_BYTES: usize = 2048;

/// Whether `packet`, decoded from a datagram of `len` bytes, is kept for
/// its strings' reuse: a large datagram's are not, so what the engine holds
/// between datagrams stays within a few KiB; nor is a heartbeat's route
/// advertisement (a map per engine, the largest part of a simulated node's
/// heap besides its tables).
fn keep_strings(packet: &mut PingPacket, len: usize) -> bool {
    if len > SCRATCH_KEEP_BYTES {
        return false;
    }
    if packet.ping_type == PingType::Heartbeat {
        packet.payload.remove(crate::routes::ROUTES_KEY);
    }
    true
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("did", &self.node.did())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Copies of one mesh datagram arriving within this window are one packet
/// (with `mesh_copies` > 1); real resends come much later.
const MESH_COPY_WINDOW: Duration = Duration::from_millis(50);

/// Bound on queued events: beyond it new events are dropped and counted.
const EVENT_QUEUE_CAPACITY: usize = 65_536;

impl Engine {
    /// An engine for `did`; all randomness (ids, nonces, jitter, discovery
    /// delays) comes from `seed`.
    pub fn new(did: impl Into<String>, config: TransportConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let node_rng = StdRng::from_rng(&mut rng).expect("StdRng from StdRng cannot fail");
        let mut node = PingNode::new(did, config.ping.clone(), Box::new(node_rng));
        if let Some(key) = &config.identity.key {
            node.set_signer(Box::new(key.clone()));
        }
        let nonce_window = config.ping.nonce_window;
        let announcement = Announcement {
            capabilities: config.capabilities.clone(),
            device_type: Some(config.device_type.clone()),
            ..Announcement::default()
        };
        let mut relay = MeshRelay::new(
            config.max_hops,
            config.limits.seen_cache,
            config.limits.relay_paths,
            nonce_window.max(config.request_timeout),
        )
        .with_byte_budgets(
            config.limits.seen_cache_bytes,
            config.limits.relay_path_bytes,
        );
        if config.mesh_copies > 1 {
            relay.set_duplicate_window(MESH_COPY_WINDOW);
        }
        let mut routes = RoutingTable::new(
            config.limits.routes,
            config.limits.route_bytes,
            config.peer_timeout * 4,
        );
        if config.route_areas {
            routes.set_area(Some(node.did()));
        }
        Engine {
            codec: PacketCodec::new(config.use_msgpack),
            rng,
            announcement,
            local_port: config.bind_port,
            multicast_dest: config.multicast_addr(),
            peers: PeerTracker::new(config.peer_timeout, config.limits.peers),
            relay,
            routes,
            discovery: NetworkDiscovery::new(
                config.discovery_enabled,
                config.discovery_interval,
                config.discovery_reply_delay,
                config.discovery_reply_interval,
                config.limits.discovery_replies,
            ),
            requests: Requests::default(),
            responses: ResponseCache::new(config.limits.response_cache, nonce_window)
                .with_max_bytes(config.limits.response_cache_bytes),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            events_enabled: true,
            next_heartbeat: None,
            next_cleanup: None,
            audit: AuditQueue::new(config.audit.clone()),
            audit_enabled: false,
            uplink: UplinkState::new(
                config.limits.relay_paths,
                nonce_window.max(config.request_timeout),
            ),
            stats: EngineStats::default(),
            // Every tracked peer may need a challenge paid from its
            // address's credit: a hub of 10,000 peers whose credit table
            // held 8,192 sources never proved the rest.
            guard: SourceGuard::new(crate::guard::GuardConfig {
                credit_sources: config.guard.credit_sources.max(config.limits.peers),
                ..config.guard.clone()
            }),
            drops: DropAggregator::new(config.guard.drop_interval, config.guard.drop_sources),
            next_drop_flush: None,
            metrics: PingMetrics::default(),
            identity: IdentityGate::new(&config.identity),
            batch_verified: 0,
            batch_backoff: 0,
            beacon_keys: BoundedMap::new(
                config.limits.discovery_replies.max(256),
                config.ping.review_ttl,
                WhenFull::EvictOldest,
            ),
            pins_generation: 0,
            answer_buf: Vec::new(),
            scratch: PingPacket::new("", "", "", "", ""),
            batch_packets: Vec::new(),
            node,
            config,
        }
    }

    /// This node's DID.
    pub fn did(&self) -> &str {
        self.node.did()
    }

    /// The configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// The protocol core, read-only (trust, pending pings, vouches, rules).
    /// Changes go through the engine's commands so that they are audited.
    pub fn ping_node(&self) -> &PingNode {
        &self.node
    }

    /// The protocol core, mutably, for set-up that is not a policy change
    /// (e.g. the processing clock). Policy changes made here bypass the
    /// audit: use [`Engine::set_trust`], [`Engine::vouch`],
    /// [`Engine::add_rule`], [`Engine::add_auto_vouch_rule`],
    /// [`Engine::approve_pending`] and [`Engine::reject_pending`].
    pub fn ping_node_mut(&mut self) -> &mut PingNode {
        &mut self.node
    }

    /// The peer table.
    pub fn peers(&self) -> &PeerTracker {
        &self.peers
    }

    /// The identity policy in force.
    pub fn identity_mode(&self) -> IdentityMode {
        self.identity.mode()
    }

    /// The learned route to `destination` at `now`, if any (next hop and
    /// hop count).
    /// With areas, a DID of another area is reached by its area's route.
    pub fn route_to(&self, now: MonoTime, destination: &str) -> Option<crate::routes::Route> {
        let key = self.routes.key_for(destination)?;
        self.routes.get(now, &key).cloned()
    }

    /// Revokes every vouch credential `voucher_did` issued for
    /// `device_did`; audited. False when the revocation list is full
    /// (counted in `identity.revocations_refused`).
    pub fn revoke_vouch_credential(&mut self, voucher_did: &str, device_did: &str) -> bool {
        let done = self.identity.revoke_credential(voucher_did, device_did);
        if done {
            self.audit(|| AuditRecord::CredentialRevoked {
                voucher_did: voucher_did.to_owned(),
                device_did: device_did.to_owned(),
            });
        }
        done
    }

    /// Restores a revocation made (and audited) in an earlier run, from a
    /// driver's state store: not audited again. False when the revocation
    /// list is full.
    pub fn restore_vouch_credential_revocation(
        &mut self,
        voucher_did: &str,
        device_did: &str,
    ) -> bool {
        self.identity.revoke_credential(voucher_did, device_did)
    }

    /// A driver dropped a trust decision of its state store because the
    /// configured trust of `did` changed since: audited as a trust change
    /// from the stored score to the trust the node applies now (reason
    /// `configuration changed since the stored decision`).
    pub fn audit_stored_trust_overridden(&mut self, now: Now, did: &str, stored: f64) {
        let new = self.node.trust_of(now.wall, did).score;
        self.audit_trust_change(
            did.to_owned(),
            stored,
            new,
            "configuration changed since the stored decision",
        );
    }

    /// Restores a pin made in an earlier run (and audited then), from a
    /// driver's state store: trust on first use, not audited again. A DID
    /// pinned to another key now (by the configuration) keeps that key
    /// ([`PinDecision::Conflict`](tibet_ping::identity::PinDecision)).
    pub fn restore_pin(&mut self, did: &str, key: PublicKey) -> tibet_ping::identity::PinDecision {
        let decision = self.identity.pin_first_use(did, key);
        if decision == tibet_ping::identity::PinDecision::Pinned {
            self.pins_generation += 1;
        }
        decision
    }

    /// Restores a pin removal made in an earlier run: removes `did`'s pin
    /// if it is still `key` (a configuration that pins another key since
    /// wins); not audited again. Whether it removed one.
    pub fn restore_pin_removal(&mut self, did: &str, key: &PublicKey) -> bool {
        if self.identity.pins().get(did) != Some(key) {
            return false;
        }
        self.identity.remove_pin(did);
        self.pins_generation += 1;
        true
    }

    /// Whether vouch credentials `voucher_did` issued for `device_did` are
    /// revoked (they then count as absent).
    pub fn vouch_credential_revoked(&self, voucher_did: &str, device_did: &str) -> bool {
        self.identity.credential_revoked(voucher_did, device_did)
    }

    /// The pinned DIDs (configured, and pinned by trust on first use).
    pub fn pins(&self) -> &PinStore {
        self.identity.pins()
    }

    /// Raised on every change of [`Engine::pins`]: a driver that keeps a
    /// pins file saves it when this moved.
    pub fn pins_generation(&self) -> u64 {
        self.pins_generation
    }

    /// Records a peer by hand (a static configuration, a CLI `--peer`).
    pub fn add_peer(&mut self, now: Now, did: &str, addr: SocketAddr) {
        let upd = self.peers.record_activity(now.mono, did, addr);
        // The operator vouches for the address.
        self.peers.set_proven(did, true);
        self.peer_update(did, addr, upd);
    }

    /// Marks peer `did` as having proven its current address (e.g. by a
    /// packet whose signature was checked); `false` when it is unknown.
    pub fn set_peer_proven(&mut self, did: &str, proven: bool) -> bool {
        self.peers.set_proven(did, proven)
    }

    /// The amplification credit and per-address buckets.
    pub fn guard(&self) -> &SourceGuard {
        &self.guard
    }

    /// Tells the engine the transport socket's bound port (announced in
    /// beacons) and where beacons go (the multicast group and the bound
    /// discovery port).
    pub fn set_local(&mut self, transport_port: u16, multicast_dest: SocketAddr) {
        self.local_port = transport_port;
        self.multicast_dest = multicast_dest;
    }

    /// Turns audit records on or off (off by default: a node without a
    /// sink pays nothing). Turning them off discards the queued ones.
    pub fn set_audit_enabled(&mut self, enabled: bool) {
        self.audit_enabled = enabled;
        if !enabled {
            self.audit.clear();
            self.drops = DropAggregator::new(
                self.config.guard.drop_interval,
                self.config.guard.drop_sources,
            );
            self.next_drop_flush = None;
        }
    }

    /// Counts one dropped input from `from` for the aggregated drop record
    /// (only while audit records are on).
    fn note_drop(&mut self, now: Now, from: SocketAddr, reason: &'static str) {
        if !self.audit_enabled {
            return;
        }
        let source = self.aggregation_key(from);
        self.drops.note(now.wall, DropSource::Addr(source), reason);
        if self.next_drop_flush.is_none() {
            self.next_drop_flush = Some(now.mono + self.config.guard.drop_interval);
        }
    }

    /// The source that drops and refusals from `from` are aggregated
    /// under: an IPv6 sender's prefix (port 0), else the address itself, so
    /// a sender cannot spread a flood over records by changing address
    /// within its /64 (`prefix.rs`).
    fn aggregation_key(&self, from: SocketAddr) -> SocketAddr {
        let key = self.guard.source_key(from.ip());
        if key == crate::prefix::canonical_ip(from.ip()) {
            SocketAddr::new(key, from.port())
        } else {
            SocketAddr::new(key, 0)
        }
    }

    /// Whether the answer to a ping from `from` may go, and with its
    /// record(s) (docs/SECURITY.md, audit): `None` while auditing is off.
    fn admit_answer(
        &mut self,
        now: Now,
        from: SocketAddr,
        trusted: bool,
        records: usize,
    ) -> Option<Admission> {
        if !self.audit_enabled {
            return None;
        }
        let guard = &mut self.guard;
        let admission = self.audit.admit(now.mono, trusted, records, || {
            guard.allow_audit(now.mono, from.ip())
        });
        match admission {
            Admission::Record => {}
            Admission::Unrecorded => {
                if trusted {
                    self.stats.audit_dropped += records as u64;
                } else {
                    self.stats.audit_rate_limited += 1;
                    self.note_drop(now, from, "audit_limited");
                }
            }
            Admission::Refuse(reason) => {
                self.stats.audit_refused += 1;
                if !trusted {
                    self.stats.audit_rate_limited += 1;
                }
                self.note_drop(now, from, reason);
            }
        }
        Some(admission)
    }

    /// Whether `did` is trusted (GROEN by trust score): its traffic is exempt
    /// from the amplification credit and the per-address buckets.
    fn is_trusted(&self, now: Now, did: &str) -> bool {
        let score = self.node.trust_of(now.wall, did).score;
        self.node.airlock().threshold_zone(score) == AirlockZone::Groen
    }

    /// Spends `len` bytes of `ip`'s amplification credit (counted when it
    /// has too little), after taking the credit of the frame in hand.
    fn spend_credit(
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

    /// Whether `packet` comes straight from a live peer that proved its
    /// address and whose remembered explicit trust is current and GROEN;
    /// notes the peer's slot in `inbound` for [`Engine::on_packet`].
    fn may_earn_late(&mut self, now: Now, inbound: &mut Inbound, packet: &PingPacket) -> bool {
        let Source::Udp(from) = inbound.source else {
            return false;
        };
        if packet.hop_count != 0 {
            return false;
        }
        let found = self.peers.slot(&packet.source_did);
        inbound.peer = Some(found);
        let Some(slot) = found else {
            return false;
        };
        self.peers
            .proven_at(now.mono, slot, &packet.source_did, from)
            && self
                .peers
                .known_trust(slot)
                .is_some_and(|(score, generation)| {
                    generation == self.node.trust_generation()
                        && score.is_some_and(|s| s >= self.node.config().trust_groen)
                })
    }

    fn transmit_charged(
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
        self.transmit(to, payload);
        true
    }

    /// Sends an answer (or a relayed answer) to `to`: mesh answers as
    /// `mesh_copies` copies; when `charge` names an untrusted source, only if
    /// its credit covers every copy (`false`, counted, otherwise).
    fn answer(
        &mut self,
        now: Now,
        to: SocketAddr,
        bytes: Bytes,
        mesh: bool,
        charge: Option<IpAddr>,
        inbound: &mut Inbound,
    ) -> bool {
        let copies = if mesh {
            self.config.mesh_copies.max(1)
        } else {
            1
        };
        if let Some(ip) = charge
            && !self.spend_credit(now, Some(inbound), ip, bytes.len() * usize::from(copies))
        {
            self.note_drop(now, SocketAddr::new(ip, 0), "amplification");
            return false;
        }
        if mesh {
            self.transmit_mesh(to, bytes, copies);
        } else {
            self.transmit(to, bytes);
        }
        true
    }

    fn audit(&mut self, record: impl FnOnce() -> AuditRecord) {
        if !self.audit_enabled {
            return;
        }
        if !self.audit.push(record()) {
            self.stats.audit_dropped += 1;
        }
    }

    /// Records that fit the audit queue now: a driver that reads a batch of
    /// datagrams only while this is at least the batch's worth (two per
    /// datagram: a ping and a heartbeat record) never has an answer refused
    /// for want of room (docs/SECURITY.md, audit).
    pub fn audit_room(&self) -> usize {
        self.audit.room()
    }

    /// Audit records queued and not yet polled.
    pub fn audit_queued(&self) -> usize {
        self.audit.len()
    }

    /// Turns event generation off (a driver with no listeners saves the work);
    /// request outcomes are always reported.
    pub fn set_events_enabled(&mut self, enabled: bool) {
        self.events_enabled = enabled;
    }

    /// Starts the background timers: heartbeat, cleanup, and discovery (the
    /// first beacon is due at `now`).
    pub fn start(&mut self, now: Now) {
        self.next_heartbeat = Some(now.mono + self.config.heartbeat_interval);
        self.next_cleanup = Some(now.mono + self.config.cleanup_interval);
        self.discovery.start(now.mono);
    }

    fn event(&mut self, e: Event) {
        let always = matches!(
            e,
            Event::RequestAnswered { .. }
                | Event::RequestTimedOut { .. }
                | Event::RequestFailed { .. }
        );
        if !(always || self.events_enabled) {
            return;
        }
        if self.events.len() >= EVENT_QUEUE_CAPACITY {
            self.stats.events_dropped += 1;
            return;
        }
        self.events.push_back(e);
    }

    fn transmit(&mut self, destination: SocketAddr, payload: impl Into<Bytes>) {
        self.stats.datagrams_out += 1;
        self.transmits.push_back(Transmit {
            destination,
            payload: payload.into(),
        });
    }

    fn peer_update(&mut self, did: &str, address: SocketAddr, upd: PeerUpdate) {
        if upd == PeerUpdate::Joined {
            self.event(Event::PeerJoined {
                did: did.to_owned(),
                address,
            });
        }
    }

    // ---- outputs -------------------------------------------------------

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let next = self.transmits.pop_front();
        if next.is_none() && self.transmits.capacity() > TRANSMITS_KEPT {
            // A hub's heartbeat round queues one datagram per peer at once;
            // the queue gives that room back once it is drained.
            self.transmits.shrink_to(TRANSMITS_KEPT);
        }
        next
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next audit record (while audit records are enabled).
    pub fn poll_audit(&mut self) -> Option<AuditRecord> {
        self.audit.pop()
    }

    /// The next frame for the uplink (while an uplink is attached).
    pub fn poll_uplink(&mut self) -> Option<Uplink> {
        self.uplink.poll()
    }

    /// Attaches or detaches the uplink (off by default). While attached, a
    /// mesh ping with no local next hop goes to the uplink, and
    /// [`UPLINK_ADDR`] is a valid destination for [`Engine::send_ping`].
    pub fn set_uplink_enabled(&mut self, enabled: bool) {
        self.uplink.set_enabled(enabled);
    }

    /// When [`Engine::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        [
            self.requests.poll_timeout(),
            self.next_heartbeat,
            self.next_cleanup,
            self.discovery.poll_timeout(),
            self.next_drop_flush,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- commands ------------------------------------------------------

    /// Sends a ping to `target` at `addr` (the target itself, or the first
    /// hop of a mesh route); its answer or timeout becomes an event carrying
    /// the returned id.
    pub fn send_ping(
        &mut self,
        now: Now,
        target: &str,
        addr: SocketAddr,
        intent: &str,
        purpose: &str,
        opts: SendOptions,
    ) -> Result<RequestId, SendError> {
        self.check_capacity()?;
        let packet = self.node.ping(now.wall, target, intent, purpose, opts.ping);
        let timeout = opts.timeout.unwrap_or(self.config.request_timeout);
        let policy = opts.retransmit.unwrap_or(self.config.retransmit);
        self.send_request(now, packet, addr, RequestKind::Caller, timeout, policy)
    }

    /// Sends a heartbeat to `target` at `addr`; answered like a ping.
    pub fn send_heartbeat(
        &mut self,
        now: Now,
        target: &str,
        addr: SocketAddr,
        status: Option<JsonMap>,
    ) -> Result<RequestId, SendError> {
        self.check_capacity()?;
        let packet = self.node.heartbeat(now.wall, target, status);
        let (timeout, policy) = (self.config.request_timeout, self.config.retransmit);
        self.send_request(now, packet, addr, RequestKind::Caller, timeout, policy)
    }

    /// Sends our discover packet by unicast to `addr` (a discovery port, or
    /// a host the multicast group cannot reach).
    pub fn announce_to(&mut self, now: Now, addr: SocketAddr) -> Result<(), SendError> {
        let bytes = self.discover_datagram(now)?;
        self.transmit(addr, bytes);
        Ok(())
    }

    /// The packet id of an outstanding request.
    pub fn request_packet_id(&self, id: RequestId) -> Option<&str> {
        self.requests.packet_id(id)
    }

    /// Forgets an outstanding request (its caller gave up); no event follows.
    pub fn cancel_request(&mut self, id: RequestId) {
        self.requests.remove(id);
    }

    /// Forgets every outstanding request (the driver stopped).
    pub fn cancel_all_requests(&mut self) {
        self.requests.clear();
    }

    fn check_capacity(&mut self) -> Result<(), SendError> {
        if self.requests.len() >= self.config.limits.pending_requests {
            self.stats.requests_refused += 1;
            return Err(SendError::TooManyPending {
                capacity: self.config.limits.pending_requests,
            });
        }
        Ok(())
    }

    fn send_request(
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
        if packet.routing_mode == RoutingMode::Mesh {
            // Our own packet flooding back to us must not be relayed again.
            self.relay.mark_seen(now.mono, &packet.packet_id);
            self.routes.stats.mesh_datagrams += 1;
        }
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
            self.transmit(addr, bytes);
        }
        Ok(id)
    }

    fn discover_datagram(&mut self, now: Now) -> Result<Vec<u8>, SendError> {
        let mut packet = self.node.discover(now.wall, &self.announcement);
        packet
            .payload
            .insert(TRANSPORT_PORT_KEY.to_owned(), self.local_port.into());
        // Signed again: the key fields and the port were added after the
        // node signed it.
        self.identity.sign_beacon(&mut packet);
        self.codec
            .encode_packet(&packet)
            .map_err(|e| SendError::Encode(e.to_string()))
    }

    // ---- trust and policy (audited) ------------------------------------

    /// Sets the trust of `did` (clamped to 0..1), audited as a trust change.
    pub fn set_trust(&mut self, now: Now, did: &str, trust: f64) {
        let old = self.node.trust_of(now.wall, did).score;
        self.node.set_trust(did, trust);
        let new = self.node.trust_of(now.wall, did).score;
        self.audit_trust_change(did.to_owned(), old, new, "set_trust");
    }

    fn audit_trust_change(&mut self, did: String, old: f64, new: f64, reason: &str) {
        let airlock = self.node.airlock();
        let (old_zone, new_zone) = (airlock.threshold_zone(old), airlock.threshold_zone(new));
        self.audit(|| AuditRecord::TrustChange {
            did,
            old,
            new,
            old_zone,
            new_zone,
            reason: reason.to_owned(),
        });
    }

    /// Vouches for `dids` (refused when the vouch registry is full), audited.
    pub fn vouch(
        &mut self,
        now: Now,
        dids: Vec<String>,
        options: VouchOptions,
    ) -> Result<Vouch, VouchError> {
        let vouch = self.node.vouch(now.wall, dids, options)?;
        self.audit(|| AuditRecord::Vouched {
            vouch: Box::new(vouch.clone()),
        });
        Ok(vouch)
    }

    /// Adds an airlock rule, audited.
    pub fn add_rule(&mut self, rule: AirlockRule) {
        self.audit(|| AuditRecord::RuleAdded {
            rule: Box::new(rule.clone()),
        });
        self.node.add_rule(rule);
    }

    /// Adds an auto-vouch rule for beacons (refused when invalid), audited.
    pub fn add_auto_vouch_rule(&mut self, rule: AutoVouchRule) -> Result<(), AutoVouchRuleError> {
        let record = self.audit_enabled.then(|| rule.clone());
        self.node.beacon_handler_mut().add_auto_vouch_rule(rule)?;
        if let Some(rule) = record {
            self.audit(|| AuditRecord::AutoVouchRuleAdded {
                rule: Box::new(rule),
            });
        }
        Ok(())
    }

    /// Pings waiting for human review (GEEL).
    pub fn pending(&self) -> impl Iterator<Item = &PendingPing> {
        self.node.pending()
    }

    /// Approves a pending (GEEL) ping, optionally raising the sender's trust;
    /// audited as a review, then (when raised) a trust change. When several
    /// senders used `packet_id`, the first to arrive is taken; see
    /// [`Engine::approve_pending_from`].
    pub fn approve_pending(
        &mut self,
        now: Now,
        packet_id: &str,
        raise_trust_to: Option<f64>,
    ) -> Option<PendingPing> {
        let did = self
            .node
            .pending()
            .find(|p| p.packet.packet_id == packet_id)
            .map(|p| p.packet.source_did.clone())?;
        self.approve_pending_from(now, &did, packet_id, raise_trust_to)
    }

    /// Approves the pending ping `packet_id` from `source_did` exactly (a
    /// review queue may hold one id under several senders: a re-send under
    /// another DID is a separate entry, never a change to the first).
    pub fn approve_pending_from(
        &mut self,
        now: Now,
        source_did: &str,
        packet_id: &str,
        raise_trust_to: Option<f64>,
    ) -> Option<PendingPing> {
        let did = source_did.to_owned();
        let old = self.node.trust_of(now.wall, &did).score;
        let approved = self
            .node
            .approve_pending_from(&did, packet_id, raise_trust_to)?;
        self.audit(|| AuditRecord::PendingReviewed {
            pending: Box::new(approved.clone()),
            approved: true,
        });
        if raise_trust_to.is_some() {
            let new = self.node.trust_of(now.wall, &did).score;
            self.audit_trust_change(did, old, new, "pending approved");
        }
        Some(approved)
    }

    /// Rejects a pending (GEEL) ping (the first to arrive under
    /// `packet_id`); audited as a review.
    pub fn reject_pending(&mut self, packet_id: &str) -> Option<PendingPing> {
        let did = self
            .node
            .pending()
            .find(|p| p.packet.packet_id == packet_id)
            .map(|p| p.packet.source_did.clone())?;
        self.reject_pending_from(&did, packet_id)
    }

    /// Rejects the pending ping `packet_id` from `source_did` exactly;
    /// audited as a review.
    pub fn reject_pending_from(
        &mut self,
        source_did: &str,
        packet_id: &str,
    ) -> Option<PendingPing> {
        let rejected = self.node.reject_pending_from(source_did, packet_id)?;
        self.audit(|| AuditRecord::PendingReviewed {
            pending: Box::new(rejected.clone()),
            approved: false,
        });
        Some(rejected)
    }

    // ---- inputs --------------------------------------------------------

    /// A datagram arrived on the transport socket from `from`.
    pub fn handle_datagram(&mut self, now: Now, from: SocketAddr, datagram: &[u8]) {
        let Some(source) = self.arrive(now, from) else {
            return;
        };
        // Decoded into the engine's own packet, whose strings are reused
        // from one datagram to the next.
        let mut packet = std::mem::replace(&mut self.scratch, PingPacket::new("", "", "", "", ""));
        let decoded = self.codec.decode_into(datagram, &mut packet);
        self.receive(now, source, datagram, decoded, &packet, None);
        if keep_strings(&mut packet, datagram.len()) {
            self.scratch = packet;
        }
    }

    /// Counts a datagram from a socket and makes its [`Source`]; `None`
    /// (dropped as malformed) for the uplink's address, which no socket
    /// receives from.
    fn arrive(&mut self, now: Now, from: SocketAddr) -> Option<Source> {
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
                self.event(Event::RequestFailed {
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
    fn verify_is_free(&self, now: Now, source: Source, packet: &PingPacket) -> bool {
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

    fn identity_refused(&mut self, now: Now, from: SocketAddr, did: &str, reason: &'static str) {
        if self.events_enabled {
            self.event(Event::IdentityRefused {
                from,
                did: did.to_owned(),
                reason,
            });
        }
        if !self.audit_enabled {
            return;
        }
        let source = self.aggregation_key(from);
        if let Some(count) = self.identity.audit_due(now.mono, source) {
            self.audit(|| AuditRecord::IdentityRefused {
                did: did.to_owned(),
                address: from,
                reason,
                count,
            });
        }
    }

    /// A frame arrived over the uplink (docs/FLEETS.md): handled exactly like
    /// a datagram, from [`Source::Uplink`] (named [`UPLINK_ADDR`] in tables,
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

    /// Sends an answer to a datagram's address, or over the uplink to
    /// `origin_did`.
    fn reply(&mut self, source: Source, origin_did: &str, bytes: Vec<u8>) {
        match source {
            Source::Uplink => self.uplink.response(origin_did, bytes),
            Source::Udp(addr) => self.transmit(addr, bytes),
        }
    }

    /// Counts a dropped datagram; the reason is only formatted when someone
    /// listens, so a flood of garbage costs no allocation.
    fn malformed(&mut self, now: Now, from: SocketAddr, reason: impl std::fmt::Display) {
        self.stats.malformed += 1;
        self.note_drop(now, from, "malformed");
        if self.events_enabled {
            let reason = reason.to_string();
            self.event(Event::MalformedDropped { from, reason });
        }
    }

    fn on_packet(&mut self, now: Now, inbound: &mut Inbound, packet: &PingPacket) {
        if packet.target_did != self.node.did() && !packet.is_broadcast() {
            self.on_relay(now, inbound, packet.clone());
            return;
        }
        let (source, from) = (inbound.source, inbound.from());
        let key = self.responses.key(from, &packet.packet_id, &packet.nonce);
        if let Some((bytes, exempt)) = self.responses.get(now.mono, key, from) {
            // A retransmission: the same answer again, not a replay, and
            // only to the address that got the original answer.
            self.stats.duplicates_answered += 1;
            if source.is_uplink() {
                self.reply(source, &packet.source_did, bytes.to_vec());
            } else {
                let mesh = packet.routing_mode == RoutingMode::Mesh;
                let charge = (!exempt).then(|| from.ip());
                self.answer(now, from, bytes, mesh, charge, inbound);
            }
            return;
        }
        if packet.hop_count > 0
            && packet.routing_mode == RoutingMode::Mesh
            && !self.relay.mark_seen(now.mono, &packet.packet_id)
        {
            // A second copy that took another path through the mesh.
            self.stats.mesh_duplicates += 1;
            return;
        }
        let slot = inbound.peer.take().unwrap_or_else(|| {
            (packet.hop_count == 0 && !source.is_uplink())
                .then(|| self.peers.slot(&packet.source_did))
                .flatten()
        });
        // What the peer table remembers of the sender's explicit trust, if
        // still current; else it is read again (once per change).
        let current = slot
            .and_then(|i| self.peers.known_trust(i))
            .filter(|&(_, generation)| generation == self.node.trust_generation());
        let known = current.and_then(|(score, generation)| score.map(|s| (s, generation)));
        let answer = self
            .node
            .answer_known(now.wall, packet, inbound.credential, known);
        if let Some(i) = slot
            && current.is_none()
        {
            let (score, generation) = self.node.explicit_trust(&packet.source_did);
            self.peers.remember_trust(i, score, generation);
        }
        let replay = matches!(answer.outcome, Outcome::Replay);
        let (zone, decision) = (answer.zone, answer.decision);
        self.metrics.observe(zone, decision, answer.rtt_ms);
        let trusted = zone == AirlockZone::Groen;
        // No answer without its record: the record (and a heartbeat's
        // second one) must fit before the answer may go.
        let mut reply = answer.should_reply();
        let mut recorded = false;
        let mut refused = false;
        if reply {
            let direct_heartbeat = packet.ping_type == PingType::Heartbeat
                && packet.hop_count == 0
                && !source.is_uplink();
            let records = 1 + usize::from(direct_heartbeat);
            match self.admit_answer(now, from, trusted, records) {
                Some(Admission::Refuse(_)) => (reply, refused) = (false, true),
                Some(Admission::Record) => recorded = true,
                Some(Admission::Unrecorded) | None => {}
            }
        }
        if !(reply && trusted) {
            // Only a GROEN answer leaves the datagram's credit untaken.
            inbound.settle(&mut self.guard, now);
        }
        inbound.forgo_earn();
        if reply {
            // The owned response is built only for a signature; otherwise
            // the answer is written straight from the node's state into the
            // reused buffer (an audit record keeps only what its token
            // says, `AnsweredPing`).
            // Answers are signed for senders that sign (they can check the
            // answer against a pin); an unsigned sender gets an unsigned
            // answer, so a load of unsigned pings costs no signatures.
            let signs = self.config.identity.key.is_some() && !packet.signature.is_empty();
            let mut response = None;
            if signs {
                let mut r = self.node.response_for(now.wall, &answer, packet);
                self.identity.sign_response(&mut r);
                response = Some(r);
            }
            let mut buf = std::mem::take(&mut self.answer_buf);
            let encoded = match &response {
                Some(r) => self.codec.encode_response_into(r, &mut buf),
                None => {
                    let view = self.node.response_view(now.wall, &answer, packet);
                    self.codec.encode_view_into(&view, &mut buf)
                }
            };
            match encoded {
                Ok(()) => {
                    let mesh = packet.routing_mode == RoutingMode::Mesh;
                    let sent = if source.is_uplink() {
                        // One answer per ping answered, back through the
                        // broker (never onto the LAN): no credit spent.
                        self.reply(source, &packet.source_did, buf.to_vec());
                        true
                    } else {
                        // One exact-size copy for the send queue; the
                        // buffer's spare capacity stays for the next answer.
                        let charge = (!trusted).then(|| from.ip());
                        let copy = Bytes::copy_from_slice(&buf);
                        self.answer(now, from, copy, mesh, charge, inbound)
                    };
                    if sent {
                        // The cache keeps its own copy (its byte log).
                        self.responses.insert(now.mono, key, from, &buf, trusted);
                        if source.is_uplink() {
                            self.uplink.note_origin(
                                now.mono,
                                &packet.packet_id,
                                &packet.source_did,
                            );
                        }
                        self.stats.pings_answered += 1;
                        if mesh && !source.is_uplink() {
                            let relays =
                                (packet.hop_count as usize).min(crate::routes::INFINITY as usize);
                            let seen = &mut self.routes.stats.mesh_relays_seen;
                            if seen.len() <= relays {
                                seen.resize(relays + 1, 0);
                            }
                            seen[relays] += 1;
                        }
                    }
                }
                Err(_) => self.stats.encode_errors += 1,
            }
            self.answer_buf = buf;
            if recorded {
                // Queued before the driver sends the answer (admitted
                // above, so it fits). ROOD drops and replays are
                // aggregated (below), never one record per datagram.
                let authenticated = inbound.proved_its_did();
                let answered = AnsweredPing {
                    decision: answer.decision,
                    trust_score: answer.trust_score(),
                    zone: answer.zone,
                };
                self.audit(|| AuditRecord::Ping {
                    packet: Box::new(packet.clone()),
                    answer: answered,
                    authenticated,
                });
            }
            // Only a packet that passed the replay check and was not ROOD,
            // and came straight from its sender (not over the uplink), may
            // move a peer.
            if packet.hop_count == 0 && !source.is_uplink() {
                let upd = self
                    .peers
                    .record_activity_at(slot, now.mono, &packet.source_did, from);
                self.peer_update(&packet.source_did, from, upd);
                if inbound.identity.is_verified() {
                    // Signed by the DID's pin and fresh: the address is
                    // proven (its signatures are then checked without a
                    // budget, docs/SECURITY.md).
                    self.peers.set_proven(&packet.source_did, true);
                }
                self.learn_from_heartbeat(now, packet, from);
                if packet.ping_type == PingType::Heartbeat && recorded {
                    // One heartbeat record per peer per interval, with
                    // the count it stands for (room was admitted above).
                    if let Some(count) = self.audit.heartbeat_due(now.mono, &packet.source_did)
                        && !self.audit.push(AuditRecord::Heartbeat {
                            did: packet.source_did.clone(),
                            address: from,
                            count,
                        })
                    {
                        self.audit.heartbeat_deferred(now.mono, &packet.source_did);
                    }
                }
            }
        } else if refused {
            // Counted, and noted in the drop records, by `admit_answer`.
        } else if replay {
            self.stats.replays_dropped += 1;
            self.note_drop(now, from, "replay");
        } else {
            self.stats.rood_dropped += 1;
            self.note_drop(now, from, "rood");
        }
        if self.events_enabled {
            self.event(Event::PingDecided {
                from,
                packet_id: packet.packet_id.clone(),
                source_did: packet.source_did.clone(),
                intent: packet.intent.clone(),
                ping_type: packet.ping_type,
                zone,
                decision,
                trust: answer.trust_score(),
                replay,
                authenticated: inbound.proved_its_did(),
            });
        }
    }

    fn on_response(
        &mut self,
        now: Now,
        inbound: &mut Inbound,
        response: PingResponse,
        datagram: &[u8],
    ) {
        let (source, from) = (inbound.source, inbound.from());
        if let Some(req) = self.requests.get_by_packet(&response.in_response_to) {
            let target_ok =
                req.target_did == tibet_ping::BROADCAST || response.responder_did == req.target_did;
            if !(target_ok && (from == req.addr || req.also.contains(&from))) {
                self.stats.responses_foreign += 1;
                return;
            }
            if !self.identity.accept_response(&response) {
                // Forged or unsigned where a signature is due: the request
                // stays open for the real answer, and says why at its
                // deadline if none comes.
                let did = response.responder_did;
                let refused = SendError::AnswerRefused {
                    pinned_key: self
                        .pins()
                        .get(&did)
                        .map(|k| k.sha256_hex()[..16].to_owned()),
                    responder_did: did.clone(),
                    from,
                    signed: !response.signature.is_empty(),
                };
                if let Some(req) = self.requests.get_mut_by_packet(&response.in_response_to) {
                    req.refused = Some(Box::new(refused));
                }
                self.identity_refused(now, from, &did, "response_refused");
                return;
            }
            let id = req.id;
            let req = self.requests.remove(id).expect("present");
            self.stats.responses_matched += 1;
            if req.direct && !source.is_uplink() {
                let upd = self
                    .peers
                    .record_activity(now.mono, &response.responder_did, from);
                // An answer from the address we sent a fresh packet id and
                // nonce to: the peer receives there (a nonce challenge).
                let was = self
                    .peers
                    .get(now.mono, &response.responder_did)
                    .is_some_and(|p| p.proven);
                self.peers.set_proven(&response.responder_did, true);
                self.peer_update(&response.responder_did, from, upd);
                if !was && upd != PeerUpdate::Refused {
                    self.event(Event::PeerProven {
                        did: response.responder_did.clone(),
                        address: from,
                    });
                }
                self.learn_neighbour(now, &response.responder_did, from);
            } else if !source.is_uplink() {
                self.learn_from_response(now, &response.responder_did, from);
            }
            if req.kind == RequestKind::Caller {
                self.event(Event::RequestAnswered {
                    id,
                    response: Box::new(response),
                });
            }
            return;
        }
        if let Some(prev) = self
            .relay
            .reverse_path(now.mono, &response.in_response_to, from)
        {
            if !self
                .relay
                .store_response(now.mono, &response.in_response_to, datagram)
            {
                // A copy of an answer already passed back.
                return;
            }
            if prev == UPLINK_ADDR {
                self.uplink
                    .relayed_response(now.mono, &response.in_response_to, datagram);
            } else {
                let frame = Bytes::copy_from_slice(datagram);
                let charge = (!source.is_uplink()
                    && !self.is_trusted(now, &response.responder_did))
                .then(|| from.ip());
                if !self.answer(now, prev, frame, true, charge, inbound) {
                    return;
                }
            }
            // The uplink is no route on the mesh.
            if !source.is_uplink() {
                self.learn_from_response(now, &response.responder_did, from);
            }
            if self.events_enabled {
                self.event(Event::ResponseRelayed {
                    in_response_to: response.in_response_to,
                    to: prev,
                });
            }
            return;
        }
        if !self.relay.has_path(now.mono, &response.in_response_to) {
            self.stats.responses_orphan += 1;
        }
    }

    fn on_relay(&mut self, now: Now, inbound: &mut Inbound, packet: PingPacket) {
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
        let out = match self.relay.prepare(now.mono, &packet, from) {
            Ok(out) => out,
            Err(RelayRefusal::NotMesh) if self.events_enabled => {
                // A direct ping for a DID that is not ours: most often a
                // typo in the target DID, so the operator gets to see it.
                self.event(Event::Misdirected {
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
        if self.audit_enabled {
            self.audit(|| AuditRecord::Relay {
                packet: Box::new(out.clone()),
                next_hops: hops.clone(),
            });
        }
        if self.events_enabled {
            self.event(Event::PacketRelayed {
                packet_id: out.packet_id,
                target_did: out.target_did,
                hop_count: out.hop_count,
                next_hops: hops.len(),
            });
        }
    }

    fn on_beacon(
        &mut self,
        now: Now,
        inbound: &mut Inbound,
        packet: &PingPacket,
        via_discovery: bool,
    ) {
        let from = inbound.from();
        if packet.source_did == self.node.did() {
            return; // our own beacon, looped back by the multicast group
        }
        let Some(beacon) = Beacon::from_discover_packet(packet) else {
            self.malformed(now, from, "discover packet is not a beacon");
            return;
        };
        // Beacons cost review entries, vouches, audit records and answers:
        // a bucket per address bounds them.
        if !self.guard.allow_beacon(now.mono, from.ip()) {
            self.stats.beacons_rate_limited += 1;
            self.note_drop(now, from, "beacon_limited");
            return;
        }
        // Who the DID already is decides what its beacon may do: nothing it
        // says binds a key to, or changes the trust of, a DID that an
        // operator trusted, pinned or vouched for (docs/SECURITY.md).
        let pinned = self.identity.pins().get(&packet.source_did).is_some();
        let offers_key = matches!(inbound.identity, Identity::SelfCertified(_));
        let admission =
            self.node
                .beacon_admission(now.wall, &packet.source_did, pinned, offers_key);
        let answer = self.node.handle_beacon_as(now.wall, &beacon, admission);
        let decision = answer.decision;
        if decision == BeaconDecision::Rejected {
            self.stats.beacons_rejected += 1;
            self.note_drop(now, from, "beacon_rejected");
            return;
        }
        // Our beacons name the transport port; the reference's come from a
        // throwaway socket and cannot be answered or reached.
        let transport = packet
            .payload
            .get(TRANSPORT_PORT_KEY)
            .and_then(|v| v.as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .map(|p| {
                // `from` with the announced port: a link-local IPv6 source
                // keeps its scope (interface), without which it is unusable.
                let mut addr = from;
                addr.set_port(p);
                addr
            });
        if let Some(addr) = transport {
            // A beacon proves nothing: it may introduce a peer, never move one.
            let upd = self.peers.introduce(now.mono, &packet.source_did, addr);
            self.peer_update(&packet.source_did, addr, upd);
            if upd == PeerUpdate::Joined {
                // Ask the newcomer to prove its address right away.
                self.challenge(now, Some(&mut *inbound), &packet.source_did, addr);
            }
        }
        let address = transport.unwrap_or(from);
        if let Identity::SelfCertified(key) = inbound.identity {
            match decision {
                // Only a DID nobody knew may be pinned by a rule.
                BeaconDecision::AutoVouched if admission == BeaconAdmission::Open => {
                    self.pin_first_use(&packet.source_did, key, "auto_vouched")
                }
                BeaconDecision::HitlPending => {
                    let entry = (packet.source_did.clone(), key);
                    let size = beacon.beacon_id.len() + entry.0.len() + 32;
                    self.beacon_keys
                        .insert_sized(now.mono, beacon.beacon_id.clone(), entry, size);
                }
                _ => {}
            }
        }
        self.audit(|| AuditRecord::Discovery {
            did: packet.source_did.clone(),
            address,
            decision,
        });
        if via_discovery {
            if let Some(addr) = transport {
                self.discovery
                    .on_beacon(now.mono, &packet.nonce, addr, &mut self.rng);
            } else {
                self.discovery.on_beacon_unanswerable();
            }
        } else {
            self.discovery.on_announcement();
        }
        self.event(Event::PeerDiscovered {
            did: packet.source_did.clone(),
            address,
            decision,
            device_type: beacon.device_type.clone(),
            capabilities: beacon.capabilities.clone(),
        });
    }

    /// Runs what is due at `now`: resends, timeouts, heartbeats, peer
    /// cleanup, beacons and discovery answers.
    pub fn handle_timeout(&mut self, now: Now) {
        while let Some(due) = self.requests.pop_due(now.mono) {
            match due {
                Due::Resend(addr, also, bytes, mesh) => {
                    self.stats.retransmissions += 1;
                    if mesh {
                        self.routes.stats.mesh_datagrams += 1 + also.len() as u64;
                    }
                    for a in also {
                        self.transmit(a, bytes.clone());
                    }
                    self.transmit(addr, bytes);
                }
                Due::TimedOut(mut req) if req.fallback.is_some() => {
                    let fb = req.fallback.take().expect("checked");
                    self.retry_by_flood(now, req, *fb);
                }
                Due::TimedOut(req) => {
                    self.stats.requests_timed_out += 1;
                    if req.kind == RequestKind::Caller {
                        self.event(match req.refused {
                            Some(error) => Event::RequestFailed {
                                id: req.id,
                                error: *error,
                            },
                            None => Event::RequestTimedOut { id: req.id },
                        });
                    }
                }
            }
        }
        if self.next_heartbeat.is_some_and(|t| t <= now.mono) {
            self.next_heartbeat = Some(now.mono + self.config.heartbeat_interval);
            let targets: Vec<(compact_str::CompactString, SocketAddr, bool)> = self
                .peers
                .alive(now.mono)
                .map(|p| (p.did.clone(), p.address, p.proven))
                .collect();
            let round = if self.config.routing {
                self.routes.advertisement_round(now.mono)
            } else {
                Vec::new()
            };
            for (did, addr, proven) in targets {
                if self.check_capacity().is_err() {
                    break;
                }
                if !proven {
                    self.challenge(now, None, &did, addr);
                    continue;
                }
                let routes = self.heartbeat_routes(now, &round, &did, addr);
                let packet = self.node.heartbeat_with(now.wall, &did, None, routes);
                self.send_background_heartbeat(now, packet, addr);
            }
        }
        if self.next_cleanup.is_some_and(|t| t <= now.mono) {
            self.next_cleanup = Some(now.mono + self.config.cleanup_interval);
            self.routes.expire(now.mono);
            for gone in self.peers.prune(now.mono) {
                self.forget_neighbour(gone.address);
                self.event(Event::PeerExpired {
                    did: gone.did.into_string(),
                    address: gone.address,
                });
            }
            self.responses.expire(now.mono);
            self.uplink.expire(now.mono);
            self.node.collect_garbage(now.wall);
            let expired = self.node.expire_reviews(now.wall);
            self.stats.reviews_expired += (expired.pings.len() + expired.beacons.len()) as u64;
            for pending in expired.pings {
                self.audit(|| AuditRecord::PendingExpired {
                    pending: Box::new(pending),
                });
            }
            for beacon in expired.beacons {
                self.audit(|| AuditRecord::BeaconReviewExpired {
                    beacon: Box::new(beacon),
                });
            }
        }
        if self.next_drop_flush.is_some_and(|t| t <= now.mono) {
            self.flush_drops(now);
        }
        if self.discovery.beacon_due(now.mono) {
            match self.discover_datagram(now) {
                Ok(bytes) => self.transmit(self.multicast_dest, bytes),
                Err(_) => self.stats.encode_errors += 1,
            }
        }
        for addr in self.discovery.due_replies(now.mono) {
            // An answer to a beacon: paid from the credit the beacon's
            // address earned.
            match self.discover_datagram(now) {
                Ok(bytes) => {
                    self.transmit_charged(now, addr.ip(), addr, bytes);
                }
                Err(_) => self.stats.encode_errors += 1,
            }
        }
    }

    /// Ends the current drop interval now: its counts become
    /// [`AuditRecord::Drops`] records at once (e.g. when the node stops).
    pub fn flush_drops(&mut self, now: Now) {
        self.next_drop_flush = None;
        for record in self.drops.flush(now.wall) {
            self.audit(|| AuditRecord::Drops(record));
        }
    }

    /// Sends a heartbeat of our own (no caller waits for it, no resend);
    /// whether it went out.
    fn send_background_heartbeat(
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

    /// Sends unproven peer `did` at `addr` a heartbeat: its nonce challenge
    /// (an answer from `addr` proves the address). Paid from the credit the
    /// address earned, since only input from it introduced the peer.
    fn challenge(&mut self, now: Now, inbound: Option<&mut Inbound>, did: &str, addr: SocketAddr) {
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

    fn pin_first_use(&mut self, did: &str, key: PublicKey, reason: &str) {
        if self.identity.pin_first_use(did, key) == tibet_ping::identity::PinDecision::Pinned {
            self.pins_generation += 1;
            self.audit(|| AuditRecord::Pinned {
                did: did.to_owned(),
                key: Box::new(key),
                reason: reason.to_owned(),
            });
        }
    }

    /// An operator removes `did`'s pin (a first-use pin they do not want,
    /// or a device that changed its key: its next key offer then waits for
    /// review); audited. The key it had, if any.
    pub fn remove_pin(&mut self, did: &str) -> Option<PublicKey> {
        let key = self.identity.remove_pin(did)?;
        self.pins_generation += 1;
        self.audit(|| AuditRecord::Unpinned {
            did: did.to_owned(),
            key: Box::new(key),
        });
        Some(key)
    }

    /// Beacons waiting for human review.
    pub fn pending_beacons(&self) -> impl Iterator<Item = &Beacon> {
        self.node.pending_beacons()
    }

    /// A human approves a beacon waiting for review: this node vouches for
    /// its device (audited), and a beacon that was signed by the key it
    /// carries pins its DID to that key (trust on first use, audited).
    /// `None` if no such beacon waits.
    pub fn approve_beacon(
        &mut self,
        now: Now,
        beacon_id: &str,
        opts: VouchOptions,
    ) -> Option<Result<Vouch, VouchError>> {
        let key = self.beacon_keys.get(now.mono, beacon_id).cloned();
        let result = self.node.approve_beacon(now.wall, beacon_id, opts)?;
        if let Ok(vouch) = &result {
            self.audit(|| AuditRecord::Vouched {
                vouch: Box::new(vouch.clone()),
            });
            if let Some((did, key)) = key {
                self.pin_first_use(&did, key, "beacon approved");
            }
        }
        Some(result)
    }

    /// A human rejects a beacon waiting for review.
    pub fn reject_beacon(&mut self, beacon_id: &str) -> Option<Beacon> {
        self.node.reject_beacon(beacon_id)
    }

    /// A counter that moves whenever what waits for review changes (see
    /// [`PingNode::reviews_changes`]).
    pub fn reviews_changes(&self) -> u64 {
        self.node.reviews_changes()
    }

    /// A copy of what waits for review, for a state store.
    pub fn waiting_reviews(&self, now: Now) -> WaitingReviews {
        WaitingReviews {
            pings: self.node.pending().cloned().collect(),
            beacons: self
                .node
                .pending_beacon_entries()
                .map(|(queued_at, beacon)| WaitingBeacon {
                    queued_at,
                    beacon: beacon.clone(),
                    key: self
                        .beacon_keys
                        .get(now.mono, beacon.beacon_id.as_str())
                        .filter(|(did, _)| *did == beacon.source_did)
                        .map(|(_, key)| *key),
                })
                .collect(),
        }
    }

    /// Puts back what waited for review when the node last stopped (a
    /// state store restoring it); each review keeps its queue time and
    /// expires when it would have (audited then, as any expiry). Returns
    /// how many were put back; the others were refused by the queues
    /// (full, or waiting already).
    pub fn restore_reviews(&mut self, now: Now, reviews: WaitingReviews) -> usize {
        let mut restored = 0;
        for ping in reviews.pings {
            restored += usize::from(self.node.restore_pending(ping));
        }
        for b in reviews.beacons {
            let (id, did) = (b.beacon.beacon_id.clone(), b.beacon.source_did.clone());
            if !self.node.restore_pending_beacon(b.queued_at, b.beacon) {
                continue;
            }
            restored += 1;
            if let Some(key) = b.key {
                let size = id.len() + did.len() + 32;
                self.beacon_keys
                    .insert_sized(now.mono, id, (did, key), size);
            }
        }
        restored
    }

    /// Refuses every packet and beacon sent at or before `horizon` as a
    /// replay (see [`PingNode::set_replay_horizon`]); the driver passes what
    /// its state directory says of the last run.
    pub fn set_replay_horizon(&mut self, horizon: tibet_ping::Timestamp) {
        self.node.set_replay_horizon(horizon);
    }

    /// The latest timestamp of anything that passed the replay check (see
    /// [`PingNode::latest_accepted`]).
    pub fn latest_accepted(&self) -> Option<tibet_ping::Timestamp> {
        self.node.latest_accepted()
    }

    /// Counters of the identity gate.
    pub fn identity_stats(&self) -> &IdentityStats {
        &self.identity.stats
    }

    /// Counters of the engine and its parts.
    pub fn stats(&self, now: Now) -> NodeStats {
        NodeStats {
            did: self.node.did().to_owned(),
            engine: self.stats.clone(),
            pings: self.metrics.clone(),
            pending_requests: self.requests.len(),
            response_cache_entries: self.responses.len(),
            response_cache_evicted: self.responses.evicted(),
            response_cache_bytes: self.responses.bytes(),
            peers: self.peers.stats(now.mono),
            relay: self.relay.stats(),
            routes: self.routes.stats(),
            discovery: self.discovery.stats(),
            ping: self.node.stats(),
            guard: self.guard.stats(),
            uplink: self.uplink.stats(),
            driver: DriverStats::default(),
            identity: self.identity.stats.clone(),
        }
    }
}
