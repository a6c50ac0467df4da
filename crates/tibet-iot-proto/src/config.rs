//! [`TransportConfig`]: everything a node can be told, with the seed's defaults.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use core::time::Duration;

use crate::identity_gate::IdentityConfig;
use crate::retransmit::RetransmitPolicy;

/// Default UDP port of the transport socket.
pub const DEFAULT_PORT: u16 = 7150;
/// Default UDP port of the discovery socket.
pub const DISCOVERY_PORT: u16 = 7151;
/// Multicast group of discovery beacons ("71.50" = TIBET).
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 71, 50);
/// Link-local IPv6 multicast group of discovery beacons (`ff02::71:50`,
/// the IPv4 group's "71.50" again; docs/PROTOCOL.md).
pub const MULTICAST_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0x71, 0x50);
/// Multicast TTL of discovery beacons: LAN only, at most one router hop.
pub const MULTICAST_TTL: u32 = 2;

/// Capacities of every table a node keeps; over capacity it refuses and counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Peers tracked.
    pub peers: usize,
    /// Outstanding requests (own pings and heartbeats waiting for an answer).
    pub pending_requests: usize,
    /// Packet ids remembered by the mesh relay to break loops.
    pub seen_cache: usize,
    /// Reverse paths remembered by the mesh relay (packet id -> previous hop).
    pub relay_paths: usize,
    /// Recent responses kept to answer retransmitted duplicates.
    pub response_cache: usize,
    /// Discovery answers waiting for their random delay.
    pub discovery_replies: usize,
    /// Bytes of the seen-cache (packet ids plus a per-entry overhead).
    pub seen_cache_bytes: usize,
    /// Bytes of the reverse paths (packet ids, next hops, overhead).
    pub relay_path_bytes: usize,
    /// Bytes of the response cache (cached datagrams, keys, overhead).
    pub response_cache_bytes: usize,
    /// Learned routes (destination DID -> next hop).
    pub routes: usize,
    /// Bytes the routing table may hold.
    pub route_bytes: usize,
    /// Datagrams the driver holds for a socket that is not writable yet;
    /// beyond, dropped and counted (UDP is lossy anyway).
    pub send_queue: usize,
    /// Bytes the driver holds for the socket, counted per datagram (frames
    /// sent to several next hops share one buffer but count once each).
    pub send_queue_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            peers: 4096,
            pending_requests: 65_536,
            seen_cache: 10_000,
            relay_paths: 10_000,
            response_cache: 8192,
            discovery_replies: 256,
            seen_cache_bytes: 4 * 1024 * 1024,
            relay_path_bytes: 8 * 1024 * 1024,
            response_cache_bytes: 16 * 1024 * 1024,
            routes: 2048,
            route_bytes: 2048 * 128,
            send_queue: 8192,
            send_queue_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Configuration of a node: its [`Engine`](crate::Engine) and the driver
/// around it (`tibet_iot::IoTNode`).
///
/// `Default` gives the reference's values: `0.0.0.0:7150`, JSON, discovery on
/// `224.0.71.50:7151` with TTL 2, heartbeat 30 s, discovery 60 s, cleanup
/// 45 s, peer timeout 120 s, request timeout 10 s, no retransmission, relay
/// hop cap 10.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Address the transport socket binds to (default `::`: IPv4 and IPv6,
    /// or IPv4 alone on a host without IPv6).
    pub bind_host: IpAddr,
    /// The interface index of a scoped (link-local) IPv6 `bind_host` (0:
    /// none).
    pub bind_scope_id: u32,
    /// Port the transport socket binds to (0: any free port).
    pub bind_port: u16,
    /// Encode outgoing frames as msgpack instead of JSON (both are decoded).
    pub use_msgpack: bool,
    /// Allow sending to broadcast addresses (`SO_BROADCAST`).
    pub broadcast: bool,
    /// Run discovery: the multicast listener and the periodic beacon.
    pub discovery_enabled: bool,
    /// Multicast group of beacons over IPv4.
    pub multicast_group: Ipv4Addr,
    /// Multicast group of beacons over IPv6 (link-local scope), used when
    /// the transport socket is an IPv6 one (`::` listens on both families).
    pub multicast_group_v6: Ipv6Addr,
    /// Port of the discovery socket (0: any free port, for tests).
    pub discovery_port: u16,
    /// Multicast TTL of beacons.
    pub multicast_ttl: u32,
    /// Interface address to join the group on and send beacons from
    /// (unspecified: the kernel's choice; `127.0.0.1` keeps it on loopback).
    pub multicast_interface: Ipv4Addr,
    /// Index of the interface to join the groups on and send beacons from
    /// (0: none given). The IPv6 group is link-local, so on a host with
    /// several interfaces this names the link; for IPv4 it applies when no
    /// `multicast_interface` address is given.
    pub multicast_ifindex: u32,
    /// Interval between heartbeats to live peers.
    pub heartbeat_interval: Duration,
    /// Interval between discovery beacons (the first one goes out at start).
    pub discovery_interval: Duration,
    /// Interval between sweeps of idle peers.
    pub cleanup_interval: Duration,
    /// Idle time after which a peer counts as gone.
    pub peer_timeout: Duration,
    /// How long `send_ping` waits for an answer by default.
    pub request_timeout: Duration,
    /// Retransmission of requests (off by default).
    pub retransmit: RetransmitPolicy,
    /// The node's own hop limit for mesh relay (caps each packet's max_hops).
    pub max_hops: u32,
    /// Largest random delay before answering a beacon.
    pub discovery_reply_delay: Duration,
    /// Least time between two answers to the beacons of one peer.
    pub discovery_reply_interval: Duration,
    /// Capabilities announced in beacons.
    pub capabilities: Vec<String>,
    /// Device type announced in beacons.
    pub device_type: String,
    /// Learned routing (on by default): mesh packets follow learned next
    /// hops and flood, boundedly, only when no route is known; heartbeats
    /// carry route advertisements. Off: every mesh packet is flooded to
    /// every live peer (the reference's behaviour; the baseline of
    /// `tibet-iot sim`).
    pub routing: bool,
    /// How many times a mesh packet sent along a route, and a mesh answer,
    /// is transmitted (1: once, the default). On lossy radio links 2 makes
    /// a hop fail only when both copies are lost; copies of one datagram
    /// arriving within 50 ms count as one.
    pub mesh_copies: u8,
    /// Route by areas (off by default): a node keeps a route per DID only
    /// inside its own area (its DID up to the last `:`) and one route per
    /// other area, so its table grows with its area and the number of
    /// areas, not with the mesh (docs/ARCHITECTURE.md, "Routing"). For
    /// meshes whose DIDs follow their topology (an area per building,
    /// pod or street), each area connected within itself.
    pub route_areas: bool,
    /// Table capacities.
    pub limits: Limits,
    /// What untrusted input may make the node do: amplification credit,
    /// per-address buckets, drop aggregation.
    pub guard: crate::source_guard::GuardConfig,
    /// Settings of the protocol core.
    pub ping: tibet_ping::PingNodeConfig,
    /// Keys, pins and the identity policy (default: `prefer`, no key, no pins).
    pub identity: IdentityConfig,
    /// The audit queue: its bound, what overload does (blocking by
    /// default), the budget of untrusted senders, heartbeat aggregation.
    pub audit: crate::audit_queue::AuditConfig,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            bind_host: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            bind_scope_id: 0,
            bind_port: DEFAULT_PORT,
            use_msgpack: false,
            broadcast: true,
            discovery_enabled: true,
            multicast_group: MULTICAST_GROUP,
            multicast_group_v6: MULTICAST_GROUP_V6,
            discovery_port: DISCOVERY_PORT,
            multicast_ttl: MULTICAST_TTL,
            multicast_interface: Ipv4Addr::UNSPECIFIED,
            multicast_ifindex: 0,
            heartbeat_interval: Duration::from_secs(30),
            discovery_interval: Duration::from_secs(60),
            cleanup_interval: Duration::from_secs(45),
            peer_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(10),
            retransmit: RetransmitPolicy::OFF,
            max_hops: 10,
            discovery_reply_delay: Duration::from_millis(500),
            discovery_reply_interval: Duration::from_secs(10),
            capabilities: Vec::new(),
            device_type: "generic".to_owned(),
            routing: true,
            mesh_copies: 1,
            route_areas: false,
            limits: Limits::default(),
            guard: crate::source_guard::GuardConfig::default(),
            ping: tibet_ping::PingNodeConfig::default(),
            identity: IdentityConfig::default(),
            audit: crate::audit_queue::AuditConfig::default(),
        }
    }
}

impl TransportConfig {
    /// A config for tests and local tools: `127.0.0.1`, any free port,
    /// discovery off.
    pub fn loopback() -> Self {
        TransportConfig {
            bind_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            bind_port: 0,
            discovery_enabled: false,
            multicast_interface: Ipv4Addr::LOCALHOST,
            ..TransportConfig::default()
        }
    }

    /// The address the transport socket binds to.
    pub fn bind_addr(&self) -> SocketAddr {
        match self.bind_host {
            IpAddr::V6(ip) => SocketAddrV6::new(ip, self.bind_port, 0, self.bind_scope_id).into(),
            ip => SocketAddr::new(ip, self.bind_port),
        }
    }

    /// Where beacons are sent.
    pub fn multicast_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.multicast_group), self.discovery_port)
    }

    /// Where beacons are sent over IPv6: the link-local group on the
    /// configured interface (scope id).
    pub fn multicast_addr_v6(&self) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(
            self.multicast_group_v6,
            self.discovery_port,
            0,
            self.multicast_ifindex,
        ))
    }
}
