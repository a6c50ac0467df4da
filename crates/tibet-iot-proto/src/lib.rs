//! `tibet-iot-proto`: the sans-IO node engine of TIBET IoT.
//!
//! The model follows quinn-proto: an [`Engine`] holds all node behaviour
//! (the [`tibet_ping::PingNode`] decision pipeline, the [`PeerTracker`], the
//! [`MeshRelay`] with its seen-cache and reverse paths, [`NetworkDiscovery`]
//! scheduling, request correlation and retransmission). Datagrams and time
//! ([`Now`]: a monotonic [`MonoTime`] for timers, a wall-clock timestamp for
//! packets and replay windows) go in; datagrams to send, [`Event`]s,
//! [`AuditRecord`]s and the next deadline come out. The
//! engine reads no clock and owns no socket, so a simulated network can drive
//! hundreds of engines deterministically, and this crate depends on neither
//! tokio nor a socket library. The tokio driver is the `tibet-iot` crate.
//! Every table is bounded and counts what it refused. [`sim::Sim`] runs
//! many engines on a simulated network, deterministically.
//!
//! The default `std` feature adds the simulator. Built with
//! `--no-default-features` the crate is `#![no_std]` + `alloc`: the engine
//! runs on firmware that brings its allocator, its time ([`Now`]) and its
//! sockets (docs/ARCHITECTURE.md, "A core without std").
//!
//! See `docs/ARCHITECTURE.md` for where each concern lives.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod advert;
mod audit_queue;
mod audit_record;
mod bounded;
mod collections;
mod config;
mod discovery;
mod engine;
mod error;
mod event;
mod hold_down;
mod identity_gate;
mod metrics;
mod node_stats;
mod peers;
mod prefix;
mod relay;
mod requests;
mod response_cache;
mod retransmit;
mod reviews;
mod routes;
#[cfg(feature = "std")]
pub mod sim;
mod source;
mod source_guard;
mod time;
mod uplink;

pub use advert::{
    Advert, AdvertText, Entries as AdvertEntries, MAX_ADVERTISED, ONE_WAY_KEY, ROUTES_KEY,
};
pub use audit_queue::{AuditConfig, AuditOverload};
pub use audit_record::{AnsweredPing, AuditRecord};
pub use compact_str::CompactString;
pub use config::{
    DEFAULT_PORT, DISCOVERY_PORT, Limits, MULTICAST_GROUP, MULTICAST_GROUP_V6, MULTICAST_TTL,
    TransportConfig,
};
pub use discovery::{DiscoveryStats, NetworkDiscovery};
pub use engine::{
    Engine, FLOOD_FANOUT, MAX_DATAGRAM_BATCH, SendOptions, TRANSPORT_PORT_KEY, Transmit,
};
pub use error::SendError;
pub use event::Event;
pub use identity_gate::{IdentityConfig, IdentityStats};
pub use metrics::{PROCESSING_BUCKETS_NS, PingMetrics};
pub use node_stats::{DriverStats, EngineStats, NodeStats};
pub use peers::{PeerRecord, PeerStats, PeerTracker, PeerUpdate};
pub use prefix::{DEFAULT_V6_PREFIX, canonical_ip, source_prefix};
pub use relay::{MeshRelay, RelayRefusal, RelayStats};
pub use requests::RequestId;
pub use retransmit::RetransmitPolicy;
pub use reviews::{WaitingBeacon, WaitingReviews};
pub use routes::{
    AREA_SUFFIX, AdvertEntry, INFINITY, REFRESH_PER_ROUND, Route, RouteSource, RouteStats,
    RoutingTable, TRIGGER_DELAY, TRIGGER_GAP, UNKNOWN_HOPS, area_key, area_of,
};
pub use source_guard::{GuardConfig, GuardStats, SourceGuard};
pub use tibet_ping::PacketCodec;
pub use time::{MonoTime, Now};
pub use uplink::{UPLINK_ADDR, UPLINK_QUEUE_CAPACITY, Uplink, UplinkStats};
