//! [`AuditRecord`]: what a node reports for provenance, as plain data.
//!
//! The engine never calls out to an audit store: it queues records (only
//! while [`Engine::set_audit_enabled`](crate::Engine::set_audit_enabled) is
//! on, so a node without a sink pays nothing), and the driver drains them
//! with [`Engine::poll_audit`](crate::Engine::poll_audit) and hands them to
//! its sink off the receive path. Records come out in the order the events
//! happened. `tibet-iot` turns them into `tibet-core` tokens.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use core::net::SocketAddr;

use tibet_ping::identity::PublicKey;
use tibet_ping::{
    AirlockRule, AirlockZone, AutoVouchRule, Beacon, BeaconDecision, DropRecord, PendingPing,
    PingDecision, PingPacket, Vouch,
};

/// What an answer to a ping said, as its audit record keeps it: the
/// decision, the sender's trust score and the airlock zone (the fields of
/// the answered [`PingResponse`](tibet_ping::PingResponse) a provenance
/// token records).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnsweredPing {
    /// The decision.
    pub decision: PingDecision,
    /// The sender's trust score.
    pub trust_score: f64,
    /// The airlock zone the ping fell in.
    pub zone: AirlockZone,
}

/// One auditable event of a node. New kinds of record are added over time
/// (e.g. identity pins): match with a wildcard arm.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AuditRecord {
    /// A ping addressed to this node was decided and answered (accept,
    /// pending, or a rule's decision).
    Ping {
        /// The packet as received (its id and content).
        packet: Box<PingPacket>,
        /// What the answer said.
        answer: AnsweredPing,
        /// Whether the sender was authenticated (signed by its DID's pin);
        /// otherwise its DID was a claim (docs/SECURITY.md).
        authenticated: bool,
    },
    /// Heartbeats from `did` were answered: at most one record per peer
    /// per interval (`AuditConfig::heartbeat_interval`); each heartbeat
    /// also has its own [`AuditRecord::Ping`].
    Heartbeat {
        /// The sender.
        did: String,
        /// Where the last one came from.
        address: SocketAddr,
        /// Heartbeats this record stands for: this one and those since the
        /// previous record of `did`.
        count: u64,
    },
    /// A beacon (or announcement) of `did` was handled with `decision`.
    Discovery {
        /// The announcing DID.
        did: String,
        /// Its transport address (or the beacon's source address).
        address: SocketAddr,
        /// The beacon handler's decision.
        decision: BeaconDecision,
    },
    /// A mesh packet for another node was forwarded.
    Relay {
        /// The packet as sent on (hop count already raised).
        packet: Box<PingPacket>,
        /// Where it was sent.
        next_hops: Vec<SocketAddr>,
    },
    /// The trust of `did` changed.
    TrustChange {
        /// Whose trust.
        did: String,
        /// Before.
        old: f64,
        /// After.
        new: f64,
        /// The zone `old` falls in by the node's configured thresholds.
        old_zone: AirlockZone,
        /// The zone `new` falls in.
        new_zone: AirlockZone,
        /// Why (`set_trust`, `pending approved`, `vouched`).
        reason: String,
    },
    /// A pending (GEEL) ping was approved or rejected by a human.
    PendingReviewed {
        /// The ping that waited.
        pending: Box<PendingPing>,
        /// Approved (`true`) or rejected.
        approved: bool,
    },
    /// This node vouched for devices.
    Vouched {
        /// The vouch made.
        vouch: Box<Vouch>,
    },
    /// An airlock rule was added.
    RuleAdded {
        /// The rule.
        rule: Box<AirlockRule>,
    },
    /// An auto-vouch rule for beacons was added.
    AutoVouchRuleAdded {
        /// The rule.
        rule: Box<AutoVouchRule>,
    },
    /// Input dropped from one source over one interval (ROOD pings,
    /// replays, malformed frames, refusals by a budget), counted by reason:
    /// never one record per datagram.
    Drops(DropRecord),
    /// A GEEL ping waited for review past the review TTL and was removed.
    PendingExpired {
        /// The ping that waited.
        pending: Box<PendingPing>,
    },
    /// A beacon waited for review past the review TTL and was removed.
    BeaconReviewExpired {
        /// The beacon that waited.
        beacon: Box<Beacon>,
    },
    /// Packets (or answers to our requests) refused by the identity step.
    /// At most one record per source address per interval; `count` is how
    /// many refusals it stands for (this one and those suppressed since the
    /// previous record of the source).
    IdentityRefused {
        /// The DID the refused packet claimed.
        did: String,
        /// Where it came from.
        address: SocketAddr,
        /// Why (`unsigned`, `bad_signature`, `wrong_key`,
        /// `unpinned_in_require`, `bad_beacon_key`, `response_refused`).
        reason: &'static str,
        /// Refusals this record stands for.
        count: u64,
    },
    /// A DID was pinned to a key (trust on first use by an auto-vouch rule
    /// or an approved beacon review).
    Pinned {
        /// The DID.
        did: String,
        /// Its key.
        key: Box<PublicKey>,
        /// Why (`auto_vouched`, `beacon approved`).
        reason: String,
    },
    /// An operator removed a DID's pin.
    Unpinned {
        /// The DID.
        did: String,
        /// The key it was pinned to.
        key: Box<PublicKey>,
    },
    /// Every vouch credential `voucher_did` issued for `device_did` was
    /// revoked: such credentials now count as absent.
    CredentialRevoked {
        /// The voucher.
        voucher_did: String,
        /// The device.
        device_did: String,
    },
}
