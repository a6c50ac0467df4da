//! `tibet-iot`: UDP transport, LAN discovery, peer tracking and mesh relay
//! for TIBET pings, over tokio.
//!
//! The model follows quinn: the sans-IO [`Engine`] of the `tibet-iot-proto`
//! crate (re-exported here) holds all node behaviour (the
//! [`tibet_ping::PingNode`] decision pipeline, the [`PeerTracker`], the
//! [`MeshRelay`] with its seen-cache and reverse paths, [`NetworkDiscovery`]
//! scheduling, request correlation and retransmission). Datagrams and time go
//! in, datagrams to send, [`Event`]s and the next deadline come out; the
//! engine reads no clock and owns no socket, so a simulated network can
//! drive hundreds of engines deterministically. [`IoTNode`], this crate, is
//! the thin tokio driver: one task owns the sockets and the engine, waits on the
//! transport socket, the multicast discovery socket, the next deadline and
//! API calls, and bounds the work per wake-up so floods cannot starve
//! timers. Every table is bounded and counts what it refused.
//!
//! Beyond the Python reference: mesh responses travel back along the
//! relays' reverse paths; retransmitted requests are answered from a
//! response cache instead of being called replays (also through relays);
//! a node hearing a beacon answers by unicast, so discovery finds every
//! live node; a peer's address moves only on packets that passed the replay
//! check and were not ROOD. Audit records leave the engine as data
//! ([`AuditRecord`]) and reach the [`AuditSink`] on a dedicated thread. With
//! the `tibet-core` feature (default), `tibet_core::NetworkBridge` is an
//! [`AuditSink`].
//!
//! Two nodes on loopback, one trusting the other:
//!
//! ```
//! use tibet_iot::{IoTNode, SendOptions, TransportConfig};
//! use tibet_ping::AirlockZone;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = IoTNode::new("jis:home:hub", TransportConfig::loopback());
//! let sensor = IoTNode::new("jis:home:sensor", TransportConfig::loopback());
//! sensor.set_trust("jis:home:hub", 0.9);
//! hub.start().await?;
//! let sensor_addr = sensor.start().await?;
//!
//! let response = hub
//!     .send_ping("jis:home:sensor", sensor_addr, "temperature.read", "Check room temperature", SendOptions::default())
//!     .await?
//!     .expect("a trusted ping is answered");
//! assert_eq!(response.airlock_zone, AirlockZone::Groen);
//! assert_eq!(response.responder_did, "jis:home:sensor");
//!
//! hub.stop().await;
//! sensor.stop().await;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod audit_sink;
mod audit_worker;
mod batch;
#[cfg(feature = "tibet-core")]
mod bridge_audit;
mod decision_records;
mod direct_send;
mod driver_loop;
mod error;
mod errqueue;
mod identity_commands;
mod iot_node;
mod replay_horizon;
mod request_socket;
mod segment;
mod send_queue;
mod socket;
mod state_keeper;
mod state_restore;
mod state_reviews;
mod state_store;
mod trust_commands;

pub use audit_sink::{AuditError, AuditSink, Stored};
pub use error::StartError;
pub use iot_node::{Answer, Completion, IoTNode};
pub use replay_horizon::{HORIZON_INTERVAL, HORIZON_LEAD, StateError};
pub use request_socket::RequestSocket;
pub use socket::interface_index;
pub use state_store::{
    Decision, PinEntry, RevocationEntry, RuleEntry, SCHEMA_VERSION, STORE_FILE, StateStore,
    StoreError, StoredState, TrustEntry, VouchEntry, reset_state_store,
};
pub use tibet_iot_proto::sim;
pub use tibet_iot_proto::{
    AuditConfig, AuditOverload, AuditRecord, DEFAULT_PORT, DISCOVERY_PORT, DiscoveryStats,
    DriverStats, Engine, EngineStats, Event, IdentityConfig, IdentityStats, Limits,
    MULTICAST_GROUP, MULTICAST_GROUP_V6, MULTICAST_TTL, MeshRelay, MonoTime, NetworkDiscovery,
    NodeStats, Now, PROCESSING_BUCKETS_NS, PacketCodec, PeerRecord, PeerStats, PeerTracker,
    PeerUpdate, PingMetrics, RelayRefusal, RelayStats, RequestId, RetransmitPolicy, SendError,
    SendOptions, TRANSPORT_PORT_KEY, Transmit, TransportConfig, UPLINK_ADDR, UPLINK_QUEUE_CAPACITY,
    Uplink, UplinkStats, WaitingBeacon, WaitingReviews,
};
