//! Counters a [`PingNode`](crate::PingNode) reports.

use alloc::string::String;

use serde::Serialize;

use crate::beacon::BeaconStats;
use crate::nonce::ReplayReason;
use crate::ratelimit::RateLimitStats;
use crate::topology::TopologyStats;
use crate::vouch::VouchStats;

/// Replays by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayCounts {
    /// Nonce seen within the window.
    pub seen: u64,
    /// Timestamp older than the window.
    pub too_old: u64,
    /// Timestamp too far in the future.
    pub too_far_in_future: u64,
    /// Timestamp unparseable.
    pub unparseable: u64,
    /// Sent before the node's replay horizon (an earlier run may have seen it).
    pub before_restart: u64,
}

impl ReplayCounts {
    /// All replays.
    pub fn total(&self) -> u64 {
        self.seen + self.too_old + self.too_far_in_future + self.unparseable + self.before_restart
    }
}

/// The receive pipeline's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Counters {
    pub(crate) received: u64,
    pub(crate) accepted: u64,
    pub(crate) pending: u64,
    pub(crate) rejected: u64,
    pub(crate) replays: ReplayCounts,
    pub(crate) nonce_refusals: u64,
    pub(crate) pending_refusals: u64,
    pub(crate) rate_limited: u64,
}

impl Counters {
    pub(crate) fn count_replay(&mut self, reason: ReplayReason) {
        match reason {
            ReplayReason::Seen => self.replays.seen += 1,
            ReplayReason::TooOld => self.replays.too_old += 1,
            ReplayReason::TooFarInFuture => self.replays.too_far_in_future += 1,
            ReplayReason::Unparseable => self.replays.unparseable += 1,
            ReplayReason::CapacityExhausted => self.nonce_refusals += 1,
            ReplayReason::BeforeRestart => self.replays.before_restart += 1,
        }
    }
}

/// A snapshot of a node's state and counters. Every received packet is
/// counted in exactly one of `accepted`, `pending`, `rejected`, `replays`,
/// `nonce_refusals`, `pending_refusals` and `rate_limited`, so they sum to
/// `received`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PingNodeStats {
    /// The node's DID.
    pub device_did: String,
    /// Packets given to `receive`.
    pub received: u64,
    /// GROEN: accepted.
    pub accepted: u64,
    /// GEEL: queued for review.
    pub pending: u64,
    /// ROOD: rejected by the airlock.
    pub rejected: u64,
    /// Rejected by the replay check (sum of `replay_reasons`).
    pub replays: u64,
    /// Replays by reason.
    pub replay_reasons: ReplayCounts,
    /// Refused because the nonce tracker was full (fail closed).
    pub nonce_refusals: u64,
    /// GEEL pings refused because the review queue was full.
    pub pending_refusals: u64,
    /// Pings from senders below GROEN trust refused by the per-DID rate
    /// limits (nonce entries or review entries).
    pub rate_limited: u64,
    /// Nonces remembered now for GROEN-trust senders.
    pub nonce_tracked: usize,
    /// Nonces remembered now for senders below GROEN trust.
    pub untrusted_nonce_tracked: usize,
    /// The per-DID limiter of nonce entries for senders below GROEN.
    pub nonce_limit: RateLimitStats,
    /// The per-DID limiter of review entries for senders below GROEN.
    pub pending_limit: RateLimitStats,
    /// Pings waiting for review now.
    pub pending_count: usize,
    /// Airlock rules.
    pub rules: usize,
    /// DIDs with explicitly set trust.
    pub known_devices: usize,
    /// Vouch registry counts (active as of the latest time the node saw).
    pub vouching: VouchStats,
    /// Beacon handling counts.
    pub beacons: BeaconStats,
    /// Topology counts.
    pub topology: TopologyStats,
}
