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
//! Each concern is a type of its own, owning its state (docs/ARCHITECTURE.md
//! has the map): `Shared` (`shared.rs`) holds what every path uses and the
//! steps made with it alone (the identity step, credit, our requests);
//! `Answers` (`answer.rs`) the ping path; `Mesh` (`mesh.rs`) the relay,
//! with `Router` (`router.rs`) its routing decisions; `Discovery`
//! (`beacons.rs`) beacons; the response path is a function
//! (`response.rs`). A concern is handed `Shared` and, where it needs one,
//! another concern, explicitly; none reaches into another's state. The
//! `Engine`'s own methods are its public API, spread by subject: this file
//! the state and accessors, `receive.rs` the inputs (with `inbound.rs`, the
//! context of one frame, and `batch.rs`, receive batches), `send.rs` what
//! the caller sends, `timers.rs` what [`Engine::handle_timeout`] runs,
//! `commands.rs` the operator's commands; `output.rs` the output queues.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;

use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::identity::IdentityMode;
use tibet_ping::{PacketCodec, PingNode, PingPacket};

mod answer;
mod batch;
mod beacons;
mod commands;
mod inbound;
mod mesh;
mod output;
mod receive;
mod response;
mod router;
mod send;
mod shared;
mod timers;

pub use batch::MAX_DATAGRAM_BATCH;
pub use router::FLOOD_FANOUT;

use crate::audit_record::AuditRecord;
use crate::config::TransportConfig;
use crate::event::Event;
use crate::identity_gate::{IdentityGate, IdentityStats};
use crate::node_stats::{DriverStats, EngineStats, NodeStats};
use crate::peers::PeerTracker;
use crate::requests::Requests;
use crate::retransmit::RetransmitPolicy;
use crate::routes::RoutingTable;
use crate::source_guard::SourceGuard;
use crate::time::{MonoTime, Now};
use crate::uplink::{Uplink, UplinkState};
use answer::Answers;
use batch::BatchState;
use beacons::Discovery;
use mesh::Mesh;
use output::Outputs;
use shared::Shared;
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

/// The sans-IO node engine: the state every path shares, and one value
/// per concern (docs/ARCHITECTURE.md, "The engine").
pub struct Engine {
    /// The protocol node, codec, outputs, counters, credit, peers, identity
    /// gate, uplink and our requests (`engine/shared.rs`).
    shared: Shared,
    /// Relay and routing (`engine/mesh.rs`).
    mesh: Mesh,
    /// The ping path and its answer cache (`engine/answer.rs`).
    answers: Answers,
    /// Beacons, sent and received (`engine/beacons.rs`).
    discovery: Discovery,
    /// When the heartbeat round and the cleanup are due.
    timers: Timers,
    /// What receive batches keep between batches (`engine/batch.rs`).
    batch: BatchState,
    /// The packet datagrams are decoded into (see [`Engine::handle_datagram`]).
    scratch: PingPacket,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("did", &self.shared.node.did())
            .field("stats", &self.shared.stats)
            .finish_non_exhaustive()
    }
}

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
        Engine {
            mesh: Mesh::new(&config, node.did()),
            answers: Answers::new(&config),
            discovery: Discovery::new(&config),
            timers: Timers::default(),
            batch: BatchState::default(),
            scratch: PingPacket::new("", "", "", "", ""),
            shared: Shared {
                codec: PacketCodec::new(config.use_msgpack),
                rng,
                peers: PeerTracker::new(config.peer_timeout, config.limits.peers),
                requests: Requests::default(),
                out: Outputs::new(
                    config.audit.clone(),
                    config.guard.drop_interval,
                    config.guard.drop_sources,
                ),
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
                identity: Box::new(IdentityGate::new(&config.identity)),
                pins_generation: 0,
                node,
                processing_clock: None,
                config,
            },
        }
    }

    /// This node's DID.
    pub fn did(&self) -> &str {
        self.shared.node.did()
    }

    /// The configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.shared.config
    }

    /// The protocol core, read-only (trust, pending pings, vouches, rules).
    /// Changes go through the engine's commands so that they are audited.
    pub fn ping_node(&self) -> &PingNode {
        &self.shared.node
    }

    /// Installs a monotonic clock, read just before and after each ping's
    /// decision to fill the response's `rtt_ms` (processing time, see
    /// [`tibet_ping::Answer::set_processing_time`]). Without one, `rtt_ms`
    /// is `None`.
    pub fn set_processing_clock(&mut self, clock: Box<dyn Fn() -> Duration + Send>) {
        self.shared.processing_clock = Some(clock);
    }

    /// The protocol core, mutably, for set-up that is not a policy change
    /// (e.g. a signer). Policy changes made here bypass the
    /// audit: use [`Engine::set_trust`], [`Engine::vouch`],
    /// [`Engine::add_rule`], [`Engine::add_auto_vouch_rule`],
    /// [`Engine::approve_pending`] and [`Engine::reject_pending`].
    pub fn ping_node_mut(&mut self) -> &mut PingNode {
        &mut self.shared.node
    }

    /// The peer table.
    pub fn peers(&self) -> &PeerTracker {
        &self.shared.peers
    }

    /// The identity policy in force.
    pub fn identity_mode(&self) -> IdentityMode {
        self.shared.identity.mode()
    }

    /// The learned route to `destination` at `now`, if any (next hop and
    /// hop count).
    /// With areas, a DID of another area is reached by its area's route.
    pub fn route_to(&self, now: MonoTime, destination: &str) -> Option<crate::routes::Route> {
        let routes = self.mesh.routes();
        let key = routes.key_for(destination)?;
        routes.get(now, &key).cloned()
    }

    /// The routing table.
    pub fn routes(&self) -> &RoutingTable {
        self.mesh.routes()
    }

    /// Whether `did` may teach this node routes: it is trusted (its trust
    /// reaches the GROEN threshold, set explicitly or through vouches).
    pub fn may_teach_routes(&self, now: Now, did: &str) -> bool {
        self.shared.may_teach_routes(now, did)
    }

    /// The one next hop this node would give a mesh packet for `target`
    /// that came from `from` (`None`: our own), when it is not flooded
    /// (the simulator's trace of a ping's way).
    #[cfg(feature = "std")]
    pub(crate) fn routed_next_hop(
        &self,
        now: Now,
        target: &str,
        from: Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        self.mesh
            .router
            .routed_next_hop(&self.shared, now, target, from)
    }

    /// Records a peer by hand (a static configuration, a CLI `--peer`).
    pub fn add_peer(&mut self, now: Now, did: &str, addr: SocketAddr) {
        let shared = &mut self.shared;
        let upd = shared.peers.record_activity(now.mono, did, addr);
        // The operator vouches for the address.
        shared.peers.set_proven(did, true);
        shared.peer_update(did, addr, upd);
    }

    /// Marks peer `did` as having proven its current address (e.g. by a
    /// packet whose signature was checked); `false` when it is unknown.
    pub fn set_peer_proven(&mut self, did: &str, proven: bool) -> bool {
        self.shared.peers.set_proven(did, proven)
    }

    /// The amplification credit and per-address buckets.
    pub fn guard(&self) -> &SourceGuard {
        &self.shared.guard
    }

    /// Tells the engine the transport socket's bound port (announced in
    /// beacons) and where beacons go (the multicast group and the bound
    /// discovery port).
    pub fn set_local(&mut self, transport_port: u16, multicast_dest: SocketAddr) {
        self.discovery.set_local(transport_port, multicast_dest);
    }

    /// Turns audit records on or off (off by default: a node without a
    /// sink pays nothing). Turning them off discards the queued ones.
    pub fn set_audit_enabled(&mut self, enabled: bool) {
        self.shared.out.set_audit_enabled(enabled);
    }

    /// Records that fit the audit queue now: a driver that reads a batch of
    /// datagrams only while this is at least the batch's worth (two per
    /// datagram: a ping and a heartbeat record) never has an answer refused
    /// for want of room (docs/SECURITY.md, audit).
    pub fn audit_room(&self) -> usize {
        self.shared.out.audit_room()
    }

    /// Audit records queued and not yet polled.
    pub fn audit_queued(&self) -> usize {
        self.shared.out.audit_queued()
    }

    /// Turns event generation off (a driver with no listeners saves the work);
    /// request outcomes are always reported.
    pub fn set_events_enabled(&mut self, enabled: bool) {
        self.shared.out.set_events_enabled(enabled);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.shared.out.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.shared.out.poll_event()
    }

    /// The next audit record (while audit records are enabled).
    pub fn poll_audit(&mut self) -> Option<AuditRecord> {
        self.shared.out.poll_audit()
    }

    /// The next frame for the uplink (while an uplink is attached).
    pub fn poll_uplink(&mut self) -> Option<Uplink> {
        self.shared.uplink.poll()
    }

    /// Attaches or detaches the uplink (off by default). While attached, a
    /// mesh ping with no local next hop goes to the uplink, and
    /// [`UPLINK_ADDR`](crate::UPLINK_ADDR) is a valid destination for [`Engine::send_ping`].
    pub fn set_uplink_enabled(&mut self, enabled: bool) {
        self.shared.uplink.set_enabled(enabled);
    }

    /// Refuses every packet and beacon sent at or before `horizon` as a
    /// replay (see [`PingNode::set_replay_horizon`]); the driver passes what
    /// its state directory says of the last run.
    pub fn set_replay_horizon(&mut self, horizon: tibet_ping::Timestamp) {
        self.shared.node.set_replay_horizon(horizon);
    }

    /// The latest timestamp of anything that passed the replay check (see
    /// [`PingNode::latest_accepted`]).
    pub fn latest_accepted(&self) -> Option<tibet_ping::Timestamp> {
        self.shared.node.latest_accepted()
    }

    /// Counters of the identity gate.
    pub fn identity_stats(&self) -> &IdentityStats {
        &self.shared.identity.stats
    }

    /// Counters of the cache of parsed keys carried in beacons.
    pub fn key_cache_stats(&self) -> tibet_ping::identity::KeyCacheStats {
        self.shared.identity.key_cache_stats()
    }

    /// Counters of the engine and its parts.
    pub fn stats(&self, now: Now) -> NodeStats {
        let shared = &self.shared;
        let mut engine = shared.stats.clone();
        shared.out.count_into(&mut engine);
        let responses = self.answers.responses();
        NodeStats {
            did: shared.node.did().to_owned(),
            engine,
            pings: self.answers.metrics().clone(),
            pending_requests: shared.requests.len(),
            response_cache_entries: responses.len(),
            response_cache_evicted: responses.evicted(),
            response_cache_bytes: responses.bytes(),
            peers: shared.peers.stats(now.mono),
            relay: self.mesh.relay().stats(),
            routes: self.mesh.routes().stats(),
            discovery: self.discovery.schedule().stats(),
            ping: shared.node.stats(),
            guard: shared.guard.stats(),
            uplink: shared.uplink.stats(),
            driver: DriverStats::default(),
            identity: shared.identity.stats.clone(),
        }
    }
}
