//! [`PingNode`]: one device's protocol state (nonces, trust, vouches,
//! airlock, beacons, topology) with packet builders and the receive
//! pipeline of docs/PROTOCOL.md §4. Sans-IO: time comes in as arguments,
//! randomness from the injected RNG.
//!
//! Changes to the reference's node API (docs/PROTOCOL.md §5):
//! - [`PingNode::vouch`] returns `Result<Vouch, VouchError>`: the vouch
//!   registry is bounded and refuses (and counts) when full.
//! - [`PingNodeConfig`] has extra capacity fields (`vouch_capacity`,
//!   `hitl_capacity`, `topology_capacity`); build it with
//!   `..PingNodeConfig::default()`.
//! - [`Reception`] has an extra field, `replay`, saying why the replay check
//!   refused a packet ([`Outcome::Replay`] also covers a full nonce tracker).
//! - Beacons dated more than `future_skew` ahead are not fresh (the
//!   reference only checks age).
//!
//! Additions: [`PacketSigner`] and [`PingNode::set_signer`] (outgoing
//! `signature`), [`PingNode::remove_rule`], [`PingNode::clear_trust`],
//! [`PingNode::revoke_vouch`], [`PingNode::approve_beacon`],
//! [`PingNode::reject_beacon`], [`PingNode::pending_beacons`],
//! [`PingNode::create_pod`], [`PingNode::collect_garbage`], read access
//! to the airlock, vouches and topology, and the allocation-free receive
//! path: [`PingNode::answer`] (the pipeline of [`PingNode::receive_vouched`]
//! without building the response), [`PingNode::response_view`] (the answer
//! to write, borrowed) and [`PingNode::response_for`] (the answer built).
//!
//! Hardening (see docs/SECURITY.md): a ping that would be ROOD stores no
//! nonce; senders below GROEN trust have their own nonce table and per-DID
//! token buckets ([`RateLimiter`](crate::RateLimiter)) for nonce and review
//! entries (a refusal is [`Outcome::Rejected`] with reason `rate_limited`,
//! counted in `rate_limited`); reviews are keyed by (DID, packet id) and
//! expire ([`PingNode::expire_reviews`]); [`PingNode::approve_pending_from`]
//! names the DID; beacon vouches expire (`vouch_ttl`) and are refreshed,
//! not added again.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use rand::RngCore;
use serde_json::Value;

use crate::airlock::{
    Airlock, DEFAULT_PENDING_BYTES, DEFAULT_PENDING_CAPACITY, DEFAULT_TRUST_GROEN,
    DEFAULT_TRUST_ROOD, PendingPing,
};
use crate::beacon::{
    Announcement, Beacon, BeaconHandler, DEFAULT_BEACON_MAX_AGE, DEFAULT_HITL_BYTES,
    DEFAULT_HITL_CAPACITY, DISCOVER_PURPOSE, discover_payload,
};
use crate::ids;
use crate::iso::{self, IsoFormatter};
use crate::nonce::{
    DEFAULT_FUTURE_SKEW, DEFAULT_NONCE_CAPACITY, DEFAULT_NONCE_WINDOW, NonceTracker, ReplayReason,
};
use crate::packet::{
    AirlockZone, BROADCAST, JsonMap, PingDecision, PingPacket, PingResponse, PingType, Priority,
    RoutingMode,
};
use crate::ping_stats::Counters;
use crate::ratelimit::RateLimiter;
use crate::response::{Answer, Fira, Reason, ResponseView};
use crate::review::DEFAULT_REVIEW_TTL;
use crate::time::Timestamp;
use crate::topology::{DEFAULT_TOPOLOGY_CAPACITY, TopologyManager};
use crate::trust::{TrustAssessment, TrustSource, TrustStore};
use crate::vouch::{DEFAULT_VOUCH_BYTES, DEFAULT_VOUCH_CAPACITY, DEFAULT_VOUCH_TTL, VouchRegistry};

/// A node's limits and thresholds; `Default` gives the reference's values.
#[derive(Clone, Debug, PartialEq)]
pub struct PingNodeConfig {
    /// Replay window (30 s).
    pub nonce_window: Duration,
    /// Tolerated sender clock lead (5 s).
    pub future_skew: Duration,
    /// Most nonces remembered (3,200,000: 100k packets/s over 30 s, plus headroom).
    pub nonce_capacity: usize,
    /// Trust at or above this is GROEN (0.7).
    pub trust_groen: f64,
    /// Trust below this is ROOD (0.3).
    pub trust_rood: f64,
    /// Most GEEL pings waiting for review (1024).
    pub pending_capacity: usize,
    /// Oldest beacon accepted (300 s).
    pub beacon_max_age: Duration,
    /// Most vouches held (16,384).
    pub vouch_capacity: usize,
    /// Most beacons waiting for review (256).
    pub hitl_capacity: usize,
    /// Most devices, pods and stations in the topology (65,536 each).
    pub topology_capacity: usize,
    /// How long a GEEL ping or a beacon waits for review before
    /// [`PingNode::expire_reviews`] removes it (15 min).
    pub review_ttl: Duration,
    /// Byte budget of the GEEL pings waiting for review (8 MiB).
    pub pending_bytes: usize,
    /// Byte budget of the beacons waiting for review (1 MiB).
    pub hitl_bytes: usize,
    /// Lifetime of vouches made for beacons (auto-vouch without a rule
    /// TTL, or a beacon approved without an expiry): 24 h, renewed by each
    /// fresh beacon. Vouches made with [`PingNode::vouch`] keep the expiry
    /// they are given.
    pub vouch_ttl: Duration,
    /// Byte budget of the vouch registry (8 MiB).
    pub vouch_bytes: usize,
    /// Most nonces remembered for senders below GROEN trust (65,536), in a
    /// table of their own so they can never crowd out trusted senders'.
    /// Senders whose ping would be ROOD have no nonce stored at all.
    pub untrusted_nonce_capacity: usize,
    /// Per claimed DID below GROEN trust: nonce entries at once (64).
    pub untrusted_burst: f64,
    /// Per claimed DID below GROEN trust: nonce entries per second (16).
    pub untrusted_rate: f64,
    /// Per claimed DID below GROEN trust: review entries at once (8).
    pub untrusted_pending_burst: f64,
    /// Per claimed DID below GROEN trust: review entries per second (0.1).
    pub untrusted_pending_rate: f64,
    /// Most DIDs each of those rate limiters tracks (4,096).
    pub rate_limit_keys: usize,
}

impl Default for PingNodeConfig {
    fn default() -> Self {
        PingNodeConfig {
            nonce_window: DEFAULT_NONCE_WINDOW,
            future_skew: DEFAULT_FUTURE_SKEW,
            nonce_capacity: DEFAULT_NONCE_CAPACITY,
            trust_groen: DEFAULT_TRUST_GROEN,
            trust_rood: DEFAULT_TRUST_ROOD,
            pending_capacity: DEFAULT_PENDING_CAPACITY,
            beacon_max_age: DEFAULT_BEACON_MAX_AGE,
            vouch_capacity: DEFAULT_VOUCH_CAPACITY,
            hitl_capacity: DEFAULT_HITL_CAPACITY,
            topology_capacity: DEFAULT_TOPOLOGY_CAPACITY,
            review_ttl: DEFAULT_REVIEW_TTL,
            pending_bytes: DEFAULT_PENDING_BYTES,
            hitl_bytes: DEFAULT_HITL_BYTES,
            vouch_ttl: DEFAULT_VOUCH_TTL,
            vouch_bytes: DEFAULT_VOUCH_BYTES,
            untrusted_nonce_capacity: 65_536,
            untrusted_burst: 64.0,
            untrusted_rate: 16.0,
            untrusted_pending_burst: 8.0,
            untrusted_pending_rate: 0.1,
            rate_limit_keys: 4096,
        }
    }
}

/// Options for [`PingNode::ping`]; defaults as in the reference (intent,
/// normal priority, direct routing, empty payload, max_hops 5).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PingOptions {
    /// What the ping is for.
    pub ping_type: PingType,
    /// Urgency.
    pub priority: Priority,
    /// Routing.
    pub routing_mode: RoutingMode,
    /// Intent arguments.
    pub payload: JsonMap,
    /// Pod context.
    pub pod_id: Option<String>,
    /// Station context.
    pub station_id: Option<String>,
    /// Hop limit (default 5).
    pub max_hops: Option<u32>,
}

/// What happened to a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// GROEN: accepted.
    Accepted,
    /// GEEL: queued for human review.
    Pending,
    /// ROOD, or GEEL with a full review queue: dropped silently.
    Rejected,
    /// Refused by the replay check (see [`Reception::replay`]): dropped silently.
    Replay,
}

/// The result of [`PingNode::receive`].
#[derive(Clone, Debug, PartialEq)]
pub struct Reception {
    /// The response (sent only when [`Reception::should_reply`]).
    pub response: PingResponse,
    /// What happened.
    pub outcome: Outcome,
    /// For [`Outcome::Replay`]: why.
    pub replay: Option<ReplayReason>,
}

impl Reception {
    /// Whether the response goes on the wire: for accepted and pending
    /// pings; rejects and replays are dropped without a word.
    pub fn should_reply(&self) -> bool {
        matches!(self.outcome, Outcome::Accepted | Outcome::Pending)
    }
}

/// What [`PingNode::expire_reviews`] removed, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExpiredReviews {
    /// GEEL pings nobody approved or rejected in time.
    pub pings: Vec<PendingPing>,
    /// Beacons nobody approved or rejected in time.
    pub beacons: Vec<Beacon>,
}

/// Signs outgoing packets; the node fills `signature` with its result.
pub trait PacketSigner: Send {
    /// The signature for `packet` (whose `signature` is still empty).
    fn sign(&self, packet: &PingPacket) -> String;
}

/// One device's sans-IO protocol state; see the module docs.
pub struct PingNode {
    pub(crate) did: String,
    pub(crate) config: PingNodeConfig,
    pub(crate) rng: Box<dyn RngCore + Send>,
    pub(crate) nonces: NonceTracker,
    pub(crate) untrusted_nonces: NonceTracker,
    pub(crate) nonce_limit: RateLimiter<String>,
    pub(crate) pending_limit: RateLimiter<String>,
    pub(crate) trust: TrustStore,
    pub(crate) vouches: VouchRegistry,
    pub(crate) airlock: Airlock,
    pub(crate) beacons: BeaconHandler,
    pub(crate) topology: TopologyManager,
    pub(crate) signer: Option<Box<dyn PacketSigner>>,
    pub(crate) counters: Counters,
    pub(crate) latest: Timestamp,
    pub(crate) iso: IsoFormatter,
}

impl fmt::Debug for PingNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingNode")
            .field("did", &self.did)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

const REPLAY_REASON: &str = "replay_detected";
const PENDING_FULL_REASON: &str = "pending_queue_full";
const RATE_LIMITED_REASON: &str = "rate_limited";

impl PingNode {
    /// A node for `did` with `config`, drawing ids and nonces from `rng`.
    pub fn new(
        did: impl Into<String>,
        config: PingNodeConfig,
        rng: Box<dyn RngCore + Send>,
    ) -> Self {
        let mut airlock = Airlock::new(
            config.trust_groen,
            config.trust_rood,
            config.pending_capacity,
        );
        airlock.set_pending_limits(config.pending_bytes, config.review_ttl);
        let mut beacons = BeaconHandler::new(
            config.beacon_max_age,
            config.future_skew,
            config.hitl_capacity,
        );
        beacons.set_review_limits(config.hitl_bytes, config.review_ttl);
        beacons.set_default_vouch_ttl(config.vouch_ttl);
        PingNode {
            did: did.into(),
            nonces: NonceTracker::new(
                config.nonce_window,
                config.future_skew,
                config.nonce_capacity,
            ),
            untrusted_nonces: NonceTracker::new(
                config.nonce_window,
                config.future_skew,
                config.untrusted_nonce_capacity,
            ),
            nonce_limit: RateLimiter::new(
                config.untrusted_burst,
                config.untrusted_rate,
                config.rate_limit_keys,
            ),
            pending_limit: RateLimiter::new(
                config.untrusted_pending_burst,
                config.untrusted_pending_rate,
                config.rate_limit_keys,
            ),
            trust: TrustStore::new(),
            vouches: VouchRegistry::with_byte_capacity(config.vouch_capacity, config.vouch_bytes),
            airlock,
            beacons,
            topology: TopologyManager::new(config.topology_capacity),
            config,
            rng,
            signer: None,
            counters: Counters::default(),
            latest: Timestamp::EPOCH,
            iso: IsoFormatter::default(),
        }
    }

    /// This node's DID.
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The configuration.
    pub fn config(&self) -> &PingNodeConfig {
        &self.config
    }

    /// Installs a signer for outgoing packets (unsigned without one).
    pub fn set_signer(&mut self, signer: Box<dyn PacketSigner>) {
        self.signer = Some(signer);
    }

    pub(crate) fn seen(&mut self, now: Timestamp) {
        self.latest = self.latest.max(now);
    }

    // ── building packets ────────────────────────────────────────────

    /// A ping from this node to `target`, sent at `now`.
    pub fn ping(
        &mut self,
        now: Timestamp,
        target: &str,
        intent: &str,
        purpose: &str,
        opts: PingOptions,
    ) -> PingPacket {
        self.seen(now);
        let packet_id = ids::packet_id(&mut self.rng);
        let mut packet = PingPacket {
            ping_type: opts.ping_type,
            priority: opts.priority,
            routing_mode: opts.routing_mode,
            payload: opts.payload,
            pod_id: opts.pod_id,
            station_id: opts.station_id,
            max_hops: opts.max_hops.unwrap_or(5),
            nonce: ids::nonce(&mut self.rng),
            timestamp: now.to_iso(),
            ..PingPacket::new(packet_id, self.did.clone(), target, intent, purpose)
        };
        if let Some(signer) = &self.signer {
            packet.signature = signer.sign(&packet);
        }
        packet
    }

    /// A heartbeat: lazy priority, payload `{"status": status}` (default
    /// `{"alive": true}`), broadcast routing when `target` is broadcast.
    pub fn heartbeat(
        &mut self,
        now: Timestamp,
        target: &str,
        status: Option<JsonMap>,
    ) -> PingPacket {
        self.heartbeat_with(now, target, status, JsonMap::new())
    }

    /// [`PingNode::heartbeat`] with `extra` payload keys beside `status`
    /// (an extension such as route advertisements; signed with them).
    pub fn heartbeat_with(
        &mut self,
        now: Timestamp,
        target: &str,
        status: Option<JsonMap>,
        extra: JsonMap,
    ) -> PingPacket {
        let status =
            status.unwrap_or_else(|| JsonMap::from_iter([("alive".to_owned(), Value::Bool(true))]));
        let mut payload = extra;
        payload.insert("status".to_owned(), Value::Object(status));
        let opts = PingOptions {
            ping_type: PingType::Heartbeat,
            priority: Priority::Lazy,
            routing_mode: if target == BROADCAST {
                RoutingMode::Broadcast
            } else {
                RoutingMode::Direct
            },
            payload,
            ..PingOptions::default()
        };
        self.ping(now, target, "heartbeat", "Periodic keep-alive", opts)
    }

    /// A broadcast discover packet announcing `announce`.
    pub fn discover(&mut self, now: Timestamp, announce: &Announcement) -> PingPacket {
        let opts = PingOptions {
            ping_type: PingType::Discover,
            routing_mode: RoutingMode::Broadcast,
            payload: discover_payload(announce),
            ..PingOptions::default()
        };
        self.ping(now, BROADCAST, "discover", DISCOVER_PURPOSE, opts)
    }

    // ── receiving ───────────────────────────────────────────────────

    /// Runs a received packet through replay check, trust and airlock
    /// (docs/PROTOCOL.md §4) and builds the response.
    pub fn receive(&mut self, now: Timestamp, packet: &PingPacket) -> Reception {
        self.receive_vouched(now, packet, None)
    }

    /// [`PingNode::receive`] for a packet that presented a verified vouch
    /// credential (docs/PROTOCOL.md section 6) worth `credential_trust`
    /// (the voucher's trust x the factor): the sender gets that trust if it
    /// is higher than what this node knows of it. The caller verifies the
    /// credential; `None` is plain `receive`.
    pub fn receive_vouched(
        &mut self,
        now: Timestamp,
        packet: &PingPacket,
        credential_trust: Option<f64>,
    ) -> Reception {
        let answer = self.answer(now, packet, credential_trust);
        let response = self.response_for(now, &answer, packet);
        Reception {
            response,
            outcome: answer.outcome,
            replay: answer.replay,
        }
    }

    /// The allocation-free sibling of [`PingNode::receive_vouched`]: the
    /// same pipeline, counters and state changes, but the answer comes back
    /// as an [`Answer`] rather than a built [`PingResponse`]. Write it with
    /// [`PingNode::response_view`] and
    /// [`PacketCodec::encode_view_into`](crate::PacketCodec::encode_view_into),
    /// or build the response with [`PingNode::response_for`] (same `now`).
    pub fn answer(
        &mut self,
        now: Timestamp,
        packet: &PingPacket,
        credential_trust: Option<f64>,
    ) -> Answer {
        self.answer_known(now, packet, credential_trust, None)
    }

    /// [`PingNode::answer`] with the sender's explicit trust already known:
    /// `known` is `(score, generation)` as [`PingNode::explicit_trust`]
    /// returned it. A caller that keeps per-sender state (the engine's peer
    /// table) saves the trust table's lookup this way; a score read at an
    /// older generation is ignored and looked up again.
    pub fn answer_known(
        &mut self,
        now: Timestamp,
        packet: &PingPacket,
        credential_trust: Option<f64>,
        known: Option<(f64, u64)>,
    ) -> Answer {
        self.seen(now);
        self.counters.received += 1;

        // Trust and zone first: a ping that would be ROOD is dropped without
        // storing its nonce (there is nothing to protect), and senders below
        // GROEN use their own, rate-limited nonce table.
        let mut trust = match known {
            Some((score, generation)) if generation == self.trust.generation() => TrustAssessment {
                score,
                source: TrustSource::Known,
                vouch_count: None,
            },
            _ => self.trust.assess(now, &packet.source_did, &self.vouches),
        };
        if let Some(t) = credential_trust.map(crate::trust::clamp_trust)
            && t > trust.score
        {
            trust = TrustAssessment {
                score: t,
                source: TrustSource::Vouched,
                vouch_count: Some(1),
            };
        }
        let decided = self.airlock.classify(packet, trust.score);
        if decided.0 != AirlockZone::Rood {
            let trusted = trust.score >= self.config.trust_groen;
            if !trusted
                && (!self.nonce_limit.allow(now, packet.source_did.as_str())
                    || (decided.0 == AirlockZone::Geel
                        && !self.pending_limit.allow(now, packet.source_did.as_str())))
            {
                self.counters.rate_limited += 1;
                return self.refusal(Outcome::Rejected, None, RATE_LIMITED_REASON);
            }
            let table = if trusted {
                &mut self.nonces
            } else {
                &mut self.untrusted_nonces
            };
            if let Err(reason) = table.check_at(now, &packet.nonce, iso::parse(&packet.timestamp)) {
                self.counters.count_replay(reason);
                return self.refusal(Outcome::Replay, Some(reason), REPLAY_REASON);
            }
        }

        let verdict = self
            .airlock
            .process_classified(now, packet, trust.score, decided);
        let (zone, queued) = (verdict.zone, verdict.queued);
        let applied_rule = verdict.rule.map(|r| r.name.clone());

        let (outcome, zone, refused) = match zone {
            AirlockZone::Groen => (Outcome::Accepted, zone, false),
            AirlockZone::Geel if queued => (Outcome::Pending, zone, false),
            // No room to queue for review: fail closed.
            AirlockZone::Geel => (Outcome::Rejected, AirlockZone::Rood, true),
            AirlockZone::Rood => (Outcome::Rejected, zone, false),
        };
        match outcome {
            Outcome::Accepted => self.counters.accepted += 1,
            Outcome::Pending => self.counters.pending += 1,
            _ if refused => self.counters.pending_refusals += 1,
            _ => self.counters.rejected += 1,
        }
        let response_id = ids::response_id_bytes(&mut self.rng);
        Answer {
            outcome,
            replay: None,
            decision: zone.decision(),
            zone,
            trust: Some(trust),
            applied_rule,
            reason: refused.then_some(PENDING_FULL_REASON),
            rtt_ms: None,
            response_id,
        }
    }

    /// A ping refused before the airlock: ROOD, with a reason.
    fn refusal(
        &mut self,
        outcome: Outcome,
        replay: Option<ReplayReason>,
        reason: &'static str,
    ) -> Answer {
        Answer {
            outcome,
            replay,
            decision: PingDecision::Reject,
            zone: AirlockZone::Rood,
            trust: None,
            applied_rule: None,
            reason: Some(reason),
            rtt_ms: None,
            response_id: ids::response_id_bytes(&mut self.rng),
        }
    }

    /// The response [`PingNode::receive_vouched`] builds for `answer`, which
    /// [`PingNode::answer`] gave for `packet` at `now`.
    pub fn response_for(
        &mut self,
        now: Timestamp,
        answer: &Answer,
        packet: &PingPacket,
    ) -> PingResponse {
        let mut payload = JsonMap::new();
        if let Some(reason) = answer.reason {
            payload.insert("reason".to_owned(), Value::from(reason));
        }
        PingResponse {
            response_id: answer.response_id().to_owned(),
            in_response_to: packet.packet_id.clone(),
            responder_did: self.did.clone(),
            decision: answer.decision,
            payload,
            capabilities: Vec::new(),
            trust_score: answer.trust_score(),
            fira_breakdown: answer
                .trust
                .map_or_else(JsonMap::new, |t| t.fira_breakdown()),
            tibet_token_id: None,
            timestamp: self.iso.format(now),
            rtt_ms: answer.rtt_ms,
            airlock_zone: answer.zone,
            applied_rule: answer.applied_rule.clone(),
            signature: String::new(),
        }
    }

    /// The response to `packet` for `answer` (given at `now`), borrowed:
    /// what [`PingNode::response_for`] builds, without building it. The
    /// codec writes both to the same bytes.
    pub fn response_view<'a>(
        &'a mut self,
        now: Timestamp,
        answer: &'a Answer,
        packet: &'a PingPacket,
    ) -> ResponseView<'a> {
        let timestamp = self.iso.text_of(now);
        ResponseView {
            response_id: answer.response_id(),
            in_response_to: &packet.packet_id,
            responder_did: &self.did,
            decision: answer.decision,
            payload: Reason(answer.reason),
            capabilities: &[],
            trust_score: answer.trust_score(),
            fira_breakdown: Fira(answer.trust),
            tibet_token_id: None,
            timestamp,
            rtt_ms: answer.rtt_ms,
            airlock_zone: answer.zone,
            applied_rule: answer.applied_rule.as_deref(),
        }
    }
}
