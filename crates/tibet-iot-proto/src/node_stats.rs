//! [`EngineStats`] and [`NodeStats`]: the counters of a node, refusals included.

use alloc::string::String;

use serde::Serialize;

/// Counters of the engine itself (the parts count their own).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Datagrams handed to the engine.
    pub datagrams_in: u64,
    /// Datagrams the engine asked to send.
    pub datagrams_out: u64,
    /// Datagrams dropped as malformed (bad frame, bad payload, wrong socket).
    pub malformed: u64,
    /// The codec's refusals among them, by reason.
    pub decode: tibet_ping::DecodeCounts,
    /// Packets for another node not relayed because their sender would be
    /// ROOD here.
    pub relay_refused_rood: u64,
    /// Untrusted packets for another node not relayed: the address's
    /// reverse-path bucket was empty.
    pub relay_rate_limited: u64,
    /// Relayed copies not sent to an introduced peer that has not proven
    /// its address.
    pub relay_unproven_skipped: u64,
    /// Beacons dropped: the address's beacon bucket was empty.
    pub beacons_rate_limited: u64,
    /// Audit records not made for an untrusted address whose audit bucket
    /// was empty (counted in the drop records instead).
    pub audit_rate_limited: u64,
    /// Challenge heartbeats sent to unproven peers (also counted in
    /// `heartbeats_sent`).
    pub challenges_sent: u64,
    /// Challenge heartbeats to unproven peers not sent for want of credit.
    pub challenges_refused: u64,
    /// Review entries (GEEL pings, beacons) that expired unreviewed.
    pub reviews_expired: u64,
    /// Pings answered (GROEN and GEEL).
    pub pings_answered: u64,
    /// Pings dropped silently as ROOD.
    pub rood_dropped: u64,
    /// Pings dropped by the replay check.
    pub replays_dropped: u64,
    /// Retransmitted duplicates answered from the response cache.
    pub duplicates_answered: u64,
    /// Copies of a mesh packet for us that arrived by a second path.
    pub mesh_duplicates: u64,
    /// Requests sent (pings, heartbeats).
    pub requests_sent: u64,
    /// Requests refused because too many were outstanding.
    pub requests_refused: u64,
    /// Requests that timed out.
    pub requests_timed_out: u64,
    /// Requests ended early: their address answered "port unreachable".
    pub requests_unreachable: u64,
    /// Resends of requests.
    pub retransmissions: u64,
    /// Responses matched to our requests.
    pub responses_matched: u64,
    /// Responses to our requests from someone other than the target: ignored.
    pub responses_foreign: u64,
    /// Responses for nothing we sent or relayed.
    pub responses_orphan: u64,
    /// Heartbeats sent by the background loop (rounds and triggered route
    /// updates).
    pub heartbeats_sent: u64,
    /// Triggered route updates received and, as they ask, not answered
    /// ([`crate::ONE_WAY_KEY`]).
    pub updates_unanswered: u64,
    /// Beacons refused by the beacon handler (too old).
    pub beacons_rejected: u64,
    /// Encoding failures of our own frames.
    pub encode_errors: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Audit records dropped because the audit queue was full (with
    /// `on_overload = drop`, answers that went without their record).
    pub audit_dropped: u64,
    /// Pings not answered because their audit record could not be queued
    /// (the queue was full, or an untrusted sender was over its audit
    /// budget): no answer leaves without its record.
    pub audit_refused: u64,
}

/// Everything a node counts.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStats {
    /// The node's DID.
    pub did: String,
    /// Engine counters.
    pub engine: EngineStats,
    /// Pings decided, by zone and decision, and their processing time.
    pub pings: crate::metrics::PingMetrics,
    /// Requests waiting for an answer.
    pub pending_requests: usize,
    /// Responses cached for duplicates.
    pub response_cache_entries: usize,
    /// Responses evicted from the cache to make room, or not cached because
    /// they were larger than its byte bound.
    pub response_cache_evicted: u64,
    /// Bytes held by the response cache (datagrams, keys, overhead).
    pub response_cache_bytes: usize,
    /// Peer table.
    pub peers: crate::peers::PeerStats,
    /// Mesh relay.
    pub relay: crate::relay::RelayStats,
    /// Learned routes.
    pub routes: crate::routes::RouteStats,
    /// Discovery.
    pub discovery: crate::discovery::DiscoveryStats,
    /// The protocol core.
    pub ping: tibet_ping::PingNodeStats,
    /// Amplification credit and per-address buckets.
    pub guard: crate::source_guard::GuardStats,
    /// The uplink (fleets, docs/FLEETS.md).
    pub uplink: crate::uplink::UplinkStats,
    /// The socket driver (zero when the engine runs without one).
    pub driver: DriverStats,
    /// The identity gate: verified and refused packets, by reason.
    pub identity: crate::identity_gate::IdentityStats,
}

/// Counters of the tokio driver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DriverStats {
    /// Datagrams the OS refused to send (unreachable, no route, ...).
    pub send_errors: u64,
    /// Datagrams that left in segmented sends (several in one `sendmsg`,
    /// cut by the kernel: `UDP_SEGMENT`).
    pub sent_segmented: u64,
    /// Requests' datagrams sent by the caller's thread itself, without a
    /// hand-over to the driver (`IoTNode::send_ping` and its kin).
    pub sent_direct: u64,
    /// Datagrams dropped because the send queue was full, in datagrams or
    /// in bytes (socket not writable for long).
    pub send_queue_dropped: u64,
    /// Bytes of the datagrams dropped so.
    pub send_queue_bytes_dropped: u64,
    /// Audit records dropped because the sink fell behind (only with
    /// `on_overload = drop`; blocking nodes read less instead).
    pub audit_dropped: u64,
    /// Audit records the sink failed to store.
    pub audit_failures: u64,
    /// Audit records the sink stored (tokens written).
    pub audit_written: u64,
    /// Driver wake-ups that read nothing from the sockets because the audit
    /// sink was behind (backpressure).
    pub audit_backpressure: u64,
    /// Uplink frames dropped because the uplink's channel was full or closed.
    pub uplink_dropped: u64,
}
