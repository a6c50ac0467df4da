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
//!
//! One file per concern (docs/ARCHITECTURE.md has the map): this file holds
//! the state and the accessors; `receive.rs` the inputs and the identity
//! step, with `inbound.rs` the context of one frame and `batch.rs` receive
//! batches; `answer.rs` the ping path; `response.rs` the response path;
//! `mesh.rs` relay and routing; `beacons.rs` discovery; `send.rs` our own
//! requests; `timers.rs` what [`Engine::handle_timeout`] runs;
//! `commands.rs` the operator's commands; `output.rs` the output queues.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::identity::{IdentityMode, PublicKey};
use tibet_ping::{Announcement, PacketCodec, PingNode, PingPacket, PingType};

mod answer;
mod batch;
mod beacons;
mod commands;
mod inbound;
mod mesh;
mod output;
mod receive;
mod response;
mod send;
mod timers;

pub use batch::MAX_DATAGRAM_BATCH;
pub use mesh::FLOOD_FANOUT;

use crate::audit_record::AuditRecord;
use crate::bounded::{BoundedMap, WhenFull};
use crate::config::TransportConfig;
use crate::discovery::NetworkDiscovery;
use crate::event::Event;
use crate::identity_gate::{IdentityGate, IdentityStats};
use crate::metrics::PingMetrics;
use crate::node_stats::{DriverStats, EngineStats, NodeStats};
use crate::peers::{PeerTracker, PeerUpdate};
use crate::relay::MeshRelay;
use crate::requests::Requests;
use crate::response_cache::ResponseCache;
use crate::retransmit::RetransmitPolicy;
use crate::routes::RoutingTable;
use crate::source_guard::SourceGuard;
use crate::time::{MonoTime, Now};
use crate::uplink::{Uplink, UplinkState};
use batch::BatchState;
use output::Outputs;
use timers::Timers;

/// Payload key of our beacons carrying the port of the sender's transport
/// socket (an extension; the reference ignores unknown payload keys).
pub const TRANSPORT_PORT_KEY: &str = "transport_port";

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

/// A monotonic clock the driver installs ([`Engine::set_processing_clock`]):
/// time since an origin of its choosing.
type ProcessingClock = Box<dyn Fn() -> Duration + Send>;

/// The sans-IO node engine.
pub struct Engine {
    node: PingNode,
    /// The driver's monotonic clock, read around each decision for the
    /// response's `rtt_ms` (processing time); none in simulations.
    processing_clock: Option<ProcessingClock>,
    codec: PacketCodec,
    /// Shared, not copied, by engines built from one configuration
    /// ([`Engine::new_shared`]: the simulator's thousands of nodes).
    config: Arc<TransportConfig>,
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
    /// Datagrams, events, audit and drop records on their way out.
    out: Outputs,
    /// When the heartbeat round and the cleanup are due.
    timers: Timers,
    uplink: UplinkState,
    stats: EngineStats,
    guard: SourceGuard,
    metrics: PingMetrics,
    identity: IdentityGate,
    /// What receive batches keep between batches (`engine/batch.rs`).
    batch: BatchState,
    /// Keys of self-certified beacons waiting for human review, by beacon id.
    beacon_keys: BoundedMap<String, (String, PublicKey)>,
    pins_generation: u64,
    /// Where answers are written before their exact-size copy is sent.
    answer_buf: Vec<u8>,
    /// The packet datagrams are decoded into (see [`Engine::handle_datagram`]).
    scratch: PingPacket,
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

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("did", &self.node.did())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Copies of one mesh datagram arriving within this window are one packet
/// (with `mesh_copies` > 1); real resends come much later.
const MESH_COPY_WINDOW: Duration = Duration::from_millis(50);

impl Engine {
    /// An engine for `did`; all randomness (ids, nonces, jitter, discovery
    /// delays) comes from `seed`.
    pub fn new(did: impl Into<String>, config: TransportConfig, seed: u64) -> Self {
        Self::new_shared(did, Arc::new(config), seed)
    }

    /// As [`Engine::new`], sharing `config` with the other engines built
    /// from it instead of holding a copy (about 1 KiB per engine, and the
    /// configuration's strings).
    pub fn new_shared(did: impl Into<String>, config: Arc<TransportConfig>, seed: u64) -> Self {
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
            out: Outputs::new(
                config.audit.clone(),
                config.guard.drop_interval,
                config.guard.drop_sources,
            ),
            timers: Timers::default(),
            uplink: UplinkState::new(
                config.limits.relay_paths,
                nonce_window.max(config.request_timeout),
            ),
            stats: EngineStats::default(),
            // Every tracked peer may need a challenge paid from its
            // address's credit: a hub of 10,000 peers whose credit table
            // held 8,192 sources never proved the rest.
            guard: SourceGuard::new(crate::source_guard::GuardConfig {
                credit_sources: config.guard.credit_sources.max(config.limits.peers),
                ..config.guard.clone()
            }),
            metrics: PingMetrics::default(),
            identity: IdentityGate::new(&config.identity),
            batch: BatchState::default(),
            beacon_keys: BoundedMap::new(
                config.limits.discovery_replies.max(256),
                config.ping.review_ttl,
                WhenFull::EvictOldest,
            ),
            pins_generation: 0,
            answer_buf: Vec::new(),
            scratch: PingPacket::new("", "", "", "", ""),
            node,
            processing_clock: None,
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

    /// Installs a monotonic clock, read just before and after each ping's
    /// decision to fill the response's `rtt_ms` (processing time, see
    /// [`tibet_ping::Answer::set_processing_time`]). Without one, `rtt_ms`
    /// is `None`.
    pub fn set_processing_clock(&mut self, clock: Box<dyn Fn() -> Duration + Send>) {
        self.processing_clock = Some(clock);
    }

    /// The protocol core, mutably, for set-up that is not a policy change
    /// (e.g. a signer). Policy changes made here bypass the
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
        self.out.set_audit_enabled(enabled);
    }

    /// Counts one dropped input from `from` for the aggregated drop record
    /// (only while audit records are on).
    fn note_drop(&mut self, now: Now, from: SocketAddr, reason: &'static str) {
        self.out.note_drop(now, &self.guard, from, reason);
    }

    /// Records that fit the audit queue now: a driver that reads a batch of
    /// datagrams only while this is at least the batch's worth (two per
    /// datagram: a ping and a heartbeat record) never has an answer refused
    /// for want of room (docs/SECURITY.md, audit).
    pub fn audit_room(&self) -> usize {
        self.out.audit_room()
    }

    /// Audit records queued and not yet polled.
    pub fn audit_queued(&self) -> usize {
        self.out.audit_queued()
    }

    /// Turns event generation off (a driver with no listeners saves the work);
    /// request outcomes are always reported.
    pub fn set_events_enabled(&mut self, enabled: bool) {
        self.out.set_events_enabled(enabled);
    }

    fn peer_update(&mut self, did: &str, address: SocketAddr, upd: PeerUpdate) {
        if upd == PeerUpdate::Joined {
            self.out.event(Event::PeerJoined {
                did: did.to_owned(),
                address,
            });
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.poll_event()
    }

    /// The next audit record (while audit records are enabled).
    pub fn poll_audit(&mut self) -> Option<AuditRecord> {
        self.out.poll_audit()
    }

    /// The next frame for the uplink (while an uplink is attached).
    pub fn poll_uplink(&mut self) -> Option<Uplink> {
        self.uplink.poll()
    }

    /// Attaches or detaches the uplink (off by default). While attached, a
    /// mesh ping with no local next hop goes to the uplink, and
    /// [`UPLINK_ADDR`](crate::UPLINK_ADDR) is a valid destination for [`Engine::send_ping`].
    pub fn set_uplink_enabled(&mut self, enabled: bool) {
        self.uplink.set_enabled(enabled);
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
        let mut engine = self.stats.clone();
        self.out.count_into(&mut engine);
        NodeStats {
            did: self.node.did().to_owned(),
            engine,
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
