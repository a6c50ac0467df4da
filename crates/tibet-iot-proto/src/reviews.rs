//! What waits for a human, as a copy a state store keeps across restarts
//! (docs/OPERATIONS.md, "Config and state store"): the GEEL pings and the
//! beacons in review, each with the time it was queued (so a restored
//! review expires when it would have), and for a self-certified beacon the
//! key its approval will pin.

use alloc::vec::Vec;

use tibet_ping::identity::PublicKey;
use tibet_ping::{Beacon, PendingPing, Timestamp};

/// A beacon waiting for review.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitingBeacon {
    /// When it was queued.
    pub queued_at: Timestamp,
    /// The beacon.
    pub beacon: Beacon,
    /// The key the beacon was signed by (a self-certified beacon): its
    /// approval pins the beacon's DID to it.
    pub key: Option<PublicKey>,
}

/// The reviews waiting in an [`Engine`](crate::Engine), oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WaitingReviews {
    /// GEEL pings.
    pub pings: Vec<PendingPing>,
    /// Beacons.
    pub beacons: Vec<WaitingBeacon>,
}

impl WaitingReviews {
    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pings.is_empty() && self.beacons.is_empty()
    }
}
