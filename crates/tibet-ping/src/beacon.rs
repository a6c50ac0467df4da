//! Bootstrap beacons: a new device announces itself (public facts only); a
//! hub auto-vouches for it when a rule matches, else queues it for a human.
//!
//! Beyond the reference (docs/ARCHITECTURE.md), an auto-vouch really registers a
//! vouch in the hub's [`VouchRegistry`], so the device's next ping is
//! assessed as vouched. A beacon travels on the wire as a discover ping:
//! see [`Beacon::from_discover_packet`] and [`Beacon::to_discover_packet`].

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};
use core::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids;
use crate::nonce::NonceTracker;
use crate::packet::{BROADCAST, JsonMap, PingPacket, PingType, RoutingMode};
use crate::pattern::{PatternError, SourcePattern};
use crate::review::{Admission, DEFAULT_REVIEW_TTL, ReviewQueue, ReviewStats};
use crate::time::Timestamp;
use crate::vouch::{DEFAULT_VOUCH_TTL, Vouch, VouchAdmission, VouchError, VouchRegistry};

/// Default maximum beacon age.
pub const DEFAULT_BEACON_MAX_AGE: Duration = Duration::from_secs(300);
/// Default number of beacons that may wait for a human.
pub const DEFAULT_HITL_CAPACITY: usize = 256;
/// Most beacons remembered by the beacon replay check.
pub const DEFAULT_BEACON_REPLAY_CAPACITY: usize = 65_536;
/// Default byte budget of the beacons waiting for review (1 MiB).
pub const DEFAULT_HITL_BYTES: usize = 1 << 20;
/// The device type of a beacon that names none.
pub const GENERIC_DEVICE: &str = "generic";
/// Purpose written into discover packets.
pub const DISCOVER_PURPOSE: &str = "Looking for devices with matching capabilities";

/// What a node says about itself in discover packets and beacons.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Announcement {
    /// What this node can do.
    pub capabilities: Vec<String>,
    /// What this node is looking for (discover packets).
    pub requested_capabilities: Vec<String>,
    /// E.g. `sensor`, `actuator`, `gateway`, `controller`.
    pub device_type: Option<String>,
    /// The pod this node wants to join.
    pub requested_pod: Option<String>,
    /// Hash of this node's public key (never the key).
    pub public_key_hash: Option<String>,
}

/// A bootstrap beacon, serialized as the reference's dict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beacon {
    /// `beacon_` + 16 hex.
    pub beacon_id: String,
    /// The announcing device.
    pub source_did: String,
    /// What it can do.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The pod it asks for.
    #[serde(default)]
    pub requested_pod: Option<String>,
    /// Its kind (default `generic`).
    #[serde(default = "generic")]
    pub device_type: String,
    /// Hash of its public key (empty if none).
    #[serde(default)]
    pub public_key_hash: String,
    /// ISO 8601 send time, as sent.
    #[serde(default)]
    pub timestamp: String,
}

fn generic() -> String {
    GENERIC_DEVICE.to_owned()
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn string_at(payload: &JsonMap, key: &str) -> Option<String> {
    payload.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl Beacon {
    /// A beacon for `source_did` announcing `announce`, sent at `now`.
    pub fn new(
        beacon_id: String,
        source_did: &str,
        announce: &Announcement,
        now: Timestamp,
    ) -> Self {
        Beacon {
            beacon_id,
            source_did: source_did.to_owned(),
            capabilities: announce.capabilities.clone(),
            requested_pod: announce.requested_pod.clone(),
            device_type: announce.device_type.clone().unwrap_or_else(generic),
            public_key_hash: announce.public_key_hash.clone().unwrap_or_default(),
            timestamp: now.to_iso(),
        }
    }

    /// Whether the beacon was sent at most `max_age` before `now` and at
    /// most `future_skew` after it. Unparseable timestamps are not fresh.
    pub fn is_fresh(&self, now: Timestamp, max_age: Duration, future_skew: Duration) -> bool {
        let Some(sent) = Timestamp::parse(&self.timestamp) else {
            return false;
        };
        sent + max_age >= now && sent <= now + future_skew
    }

    /// Reads a discover ping as a beacon: `None` unless `ping_type` is
    /// `discover`. Capabilities, device type, requested pod (falling back to
    /// the packet's `pod_id`) and key hash come from the payload; the beacon
    /// id is the packet id with `beacon_` in place of `ping_`.
    pub fn from_discover_packet(packet: &PingPacket) -> Option<Beacon> {
        if packet.ping_type != PingType::Discover {
            return None;
        }
        let p = &packet.payload;
        let suffix = packet
            .packet_id
            .strip_prefix("ping_")
            .unwrap_or(&packet.packet_id);
        Some(Beacon {
            beacon_id: format!("beacon_{suffix}"),
            source_did: packet.source_did.clone(),
            capabilities: string_list(p.get("capabilities")),
            requested_pod: string_at(p, "requested_pod").or_else(|| packet.pod_id.clone()),
            device_type: string_at(p, "device_type").unwrap_or_else(generic),
            public_key_hash: string_at(p, "public_key_hash").unwrap_or_default(),
            timestamp: packet.timestamp.clone(),
        })
    }

    /// This beacon as a broadcast discover ping carrying `nonce`; the
    /// inverse of [`Beacon::from_discover_packet`].
    pub fn to_discover_packet(&self, nonce: String) -> PingPacket {
        let suffix = self
            .beacon_id
            .strip_prefix("beacon_")
            .unwrap_or(&self.beacon_id);
        let announce = Announcement {
            capabilities: self.capabilities.clone(),
            requested_capabilities: Vec::new(),
            device_type: Some(self.device_type.clone()),
            requested_pod: self.requested_pod.clone(),
            public_key_hash: (!self.public_key_hash.is_empty())
                .then(|| self.public_key_hash.clone()),
        };
        PingPacket {
            ping_type: PingType::Discover,
            routing_mode: RoutingMode::Broadcast,
            payload: discover_payload(&announce),
            nonce,
            timestamp: self.timestamp.clone(),
            ..PingPacket::new(
                format!("ping_{suffix}"),
                self.source_did.clone(),
                BROADCAST,
                "discover",
                DISCOVER_PURPOSE,
            )
        }
    }
}

/// The payload of a discover packet: `requested_capabilities`, then
/// `capabilities`, `device_type`, `requested_pod` and `public_key_hash`
/// when given.
pub fn discover_payload(announce: &Announcement) -> JsonMap {
    let mut m = JsonMap::new();
    m.insert(
        "requested_capabilities".into(),
        Value::from(announce.requested_capabilities.clone()),
    );
    if !announce.capabilities.is_empty() {
        m.insert(
            "capabilities".into(),
            Value::from(announce.capabilities.clone()),
        );
    }
    if let Some(t) = &announce.device_type {
        m.insert("device_type".into(), Value::from(t.clone()));
    }
    if let Some(p) = &announce.requested_pod {
        m.insert("requested_pod".into(), Value::from(p.clone()));
    }
    if let Some(h) = &announce.public_key_hash {
        m.insert("public_key_hash".into(), Value::from(h.clone()));
    }
    m
}

/// The hub's decision on a beacon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BeaconDecision {
    /// A rule matched and a vouch was registered.
    AutoVouched,
    /// Waiting for a human.
    HitlPending,
    /// Too old, or refused for lack of room.
    Rejected,
    /// A device the hub already knows (explicit trust, a pin, a vouch):
    /// recorded as a sign of life; no rule, no review.
    Known,
}

impl BeaconDecision {
    /// The wire spelling, as the reference writes it (`auto_vouched`,
    /// `hitl_pending`, `rejected`); the same as the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            BeaconDecision::AutoVouched => "auto_vouched",
            BeaconDecision::HitlPending => "hitl_pending",
            BeaconDecision::Rejected => "rejected",
            BeaconDecision::Known => "known",
        }
    }
}

impl core::fmt::Display for BeaconDecision {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a hub may do with a beacon, decided by who its DID already is to
/// the hub (docs/SECURITY.md, "Who may bind a key to a DID"). Nothing a
/// beacon says may bind a key to, or change the trust of, a DID that an
/// operator trusted, pinned or vouched for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BeaconAdmission {
    /// A DID nobody trusted, pinned or vouched for: auto-vouch rules, else
    /// human review.
    Open,
    /// A known device without explicit trust (pinned and signed by its pin,
    /// or vouched): a matching rule may renew its vouch; never review.
    RulesOnly,
    /// A key offered for a known DID: human review only (approval pins it).
    ReviewOnly,
    /// A device with explicit trust: recorded, nothing else.
    Known,
}

/// The hub's answer to a beacon, shaped like the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BeaconResponse {
    /// `resp_` + the beacon id.
    pub response_id: String,
    /// The beacon id.
    pub in_response_to: String,
    /// The answering hub.
    pub hub_did: String,
    /// What happened.
    pub decision: BeaconDecision,
    /// The vouch registered, for `auto_vouched`.
    pub vouch_id: Option<String>,
    /// The pod the rule assigns.
    pub assigned_pod: Option<String>,
    /// Human-readable detail.
    pub message: String,
    /// ISO 8601 time of the answer.
    pub timestamp: String,
}

/// A rule for vouching automatically for matching beacons. Every condition
/// that is set must hold; a rule with none matches every fresh beacon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoVouchRule {
    /// Name, reported in the response message.
    pub name: String,
    /// The beacon's device type must equal this.
    pub device_type: Option<String>,
    /// The beacon must announce all of these capabilities.
    pub required_capabilities: Option<Vec<String>>,
    /// Regex (Rust `regex` syntax) that must match at the start of the DID,
    /// as Python's `re.match` does.
    pub source_pattern: Option<String>,
    /// Pod assigned to matching devices.
    pub pod_id: Option<String>,
    /// The hub's own trust used in the vouch (default 0.9).
    pub voucher_trust: f64,
    /// Passed-on share (default 0.7).
    pub vouch_factor: f64,
    /// How long the vouch lasts (default: the handler's default vouch
    /// lifetime, 24 h; each fresh beacon of the device renews it).
    pub vouch_ttl: Option<Duration>,
}

impl Default for AutoVouchRule {
    fn default() -> Self {
        AutoVouchRule {
            name: "unnamed".into(),
            device_type: None,
            required_capabilities: None,
            source_pattern: None,
            pod_id: None,
            voucher_trust: 0.9,
            vouch_factor: 0.7,
            vouch_ttl: None,
        }
    }
}

/// Why an auto-vouch rule was not added.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AutoVouchRuleError {
    /// `source_pattern` is not a valid regex (or too large).
    #[error("invalid source_pattern {pattern:?}: {source}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What the regex compiler said.
        source: PatternError,
    },
}

#[derive(Debug)]
struct CompiledRule {
    rule: AutoVouchRule,
    source: Option<SourcePattern>,
}

impl CompiledRule {
    fn matches(&self, b: &Beacon) -> bool {
        self.rule
            .device_type
            .as_ref()
            .is_none_or(|t| *t == b.device_type)
            && self
                .rule
                .required_capabilities
                .as_ref()
                .is_none_or(|req| req.iter().all(|c| b.capabilities.contains(c)))
            && self
                .source
                .as_ref()
                .is_none_or(|re| re.is_match(&b.source_did))
    }
}

/// Counters of a [`BeaconHandler`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BeaconStats {
    /// Beacons handled.
    pub handled: u64,
    /// Auto-vouched.
    pub auto_vouched: u64,
    /// Queued for a human.
    pub hitl_pending: u64,
    /// Rejected as stale.
    pub stale: u64,
    /// Refused because the human-review queue was full.
    pub hitl_refused: u64,
    /// Refused because the vouch registry was full.
    pub vouch_refused: u64,
    /// Rejected by the replay check (the same beacon again within its
    /// freshness window, or the replay table full).
    pub replayed: u64,
    /// Auto-vouches that refreshed the device's existing vouch.
    pub vouch_refreshed: u64,
    /// Beacons of known devices: recorded, no rule, no review.
    pub known: u64,
    /// Beacons whose device already waited for review: no second entry.
    pub hitl_joined: u64,
    /// Beacons waiting for a human now.
    pub hitl_waiting: usize,
}

/// The hub side of bootstrapping: auto-vouch rules and the review queue.
#[derive(Debug)]
pub struct BeaconHandler {
    max_age: Duration,
    future_skew: Duration,
    rules: Vec<CompiledRule>,
    queue: ReviewQueue<Beacon>,
    replays: NonceTracker,
    vouch_ttl: Duration,
    stats: BeaconStats,
}

impl Default for BeaconHandler {
    fn default() -> Self {
        BeaconHandler::new(
            DEFAULT_BEACON_MAX_AGE,
            Duration::from_secs(5),
            DEFAULT_HITL_CAPACITY,
        )
    }
}

impl BeaconHandler {
    /// A handler accepting beacons up to `max_age` old and `future_skew`
    /// ahead, queueing at most `hitl_capacity` for review.
    pub fn new(max_age: Duration, future_skew: Duration, hitl_capacity: usize) -> Self {
        BeaconHandler {
            max_age,
            future_skew,
            rules: Vec::new(),
            queue: ReviewQueue::new(hitl_capacity, DEFAULT_HITL_BYTES, DEFAULT_REVIEW_TTL),
            replays: NonceTracker::new(max_age, future_skew, DEFAULT_BEACON_REPLAY_CAPACITY),
            vouch_ttl: DEFAULT_VOUCH_TTL,
            stats: BeaconStats::default(),
        }
    }

    /// Sets the lifetime of auto-vouches whose rule gives none (default
    /// [`DEFAULT_VOUCH_TTL`]); each fresh beacon of the device renews it.
    pub fn set_default_vouch_ttl(&mut self, ttl: Duration) {
        self.vouch_ttl = ttl;
    }

    /// The lifetime of auto-vouches whose rule gives none.
    pub fn default_vouch_ttl(&self) -> Duration {
        self.vouch_ttl
    }

    /// Sets the review queue's byte budget and how long a beacon may wait
    /// before [`BeaconHandler::expire_pending`] removes it.
    pub fn set_review_limits(&mut self, byte_capacity: usize, ttl: Duration) {
        self.queue.set_limits(byte_capacity, ttl);
    }

    /// Adds an auto-vouch rule (checked in insertion order), compiling its
    /// regex once.
    pub fn add_auto_vouch_rule(&mut self, rule: AutoVouchRule) -> Result<(), AutoVouchRuleError> {
        let source = match &rule.source_pattern {
            None => None,
            Some(p) => {
                let pattern =
                    SourcePattern::new(p).map_err(|source| AutoVouchRuleError::InvalidPattern {
                        pattern: p.clone(),
                        source,
                    })?;
                Some(pattern)
            }
        };
        self.rules.push(CompiledRule { rule, source });
        Ok(())
    }

    /// Refuses beacons sent at or before `horizon` as replays (see
    /// [`NonceTracker::set_horizon`]).
    pub fn set_replay_horizon(&mut self, horizon: Timestamp) {
        self.replays.set_horizon(horizon);
    }

    /// The latest timestamp of a beacon that passed the replay check.
    pub fn latest_accepted(&self) -> Option<Timestamp> {
        self.replays.latest_accepted()
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> impl Iterator<Item = &AutoVouchRule> {
        self.rules.iter().map(|r| &r.rule)
    }

    /// Handles a beacon at `now` for hub `hub_did` within what `admission`
    /// allows: stale beacons are rejected; where rules are allowed, the first
    /// matching rule registers a vouch in `vouches`; where review is allowed,
    /// the beacon waits for a human (bounded); else the decision is
    /// [`BeaconDecision::Known`]. A beacon of a device whose review (same
    /// DID, same key hash) already waits joins that review instead of
    /// queueing another.
    pub fn handle(
        &mut self,
        now: Timestamp,
        beacon: &Beacon,
        hub_did: &str,
        vouches: &mut VouchRegistry,
        rng: &mut dyn RngCore,
        admission: BeaconAdmission,
    ) -> BeaconResponse {
        self.stats.handled += 1;
        let respond = |decision, vouch_id, assigned_pod, message: String| BeaconResponse {
            response_id: format!("resp_{}", beacon.beacon_id),
            in_response_to: beacon.beacon_id.clone(),
            hub_did: hub_did.to_owned(),
            decision,
            vouch_id,
            assigned_pod,
            message,
            timestamp: now.to_iso(),
        };
        if !beacon.is_fresh(now, self.max_age, self.future_skew) {
            self.stats.stale += 1;
            return respond(
                BeaconDecision::Rejected,
                None,
                None,
                "Beacon too old".into(),
            );
        }
        // The same beacon (device and id) counts once within its freshness
        // window; the tracker is bounded and fails closed when full.
        let key = format!("{}\u{0}{}", beacon.source_did, beacon.beacon_id);
        if self
            .replays
            .check_at(now, &key, Timestamp::parse(&beacon.timestamp))
            .is_err()
        {
            self.stats.replayed += 1;
            return respond(
                BeaconDecision::Rejected,
                None,
                None,
                "Beacon replayed".into(),
            );
        }
        let rules = matches!(
            admission,
            BeaconAdmission::Open | BeaconAdmission::RulesOnly
        );
        if let Some(rule) = self
            .rules
            .iter()
            .filter(|_| rules)
            .find(|r| r.matches(beacon))
            .map(|r| &r.rule)
        {
            let vouch = Vouch {
                vouch_id: ids::vouch_id(rng),
                voucher_did: hub_did.to_owned(),
                voucher_trust: rule.voucher_trust,
                vouched_dids: vec![beacon.source_did.clone()],
                vouch_factor: rule.vouch_factor,
                pod_id: rule.pod_id.clone(),
                reason: format!("Auto-vouched via rule: {}", rule.name),
                created_at: now,
                expires_at: Some(now + rule.vouch_ttl.unwrap_or(self.vouch_ttl)),
                tibet_token_id: None,
                signature: String::new(),
            };
            let message = vouch.reason.clone();
            return match vouches.refresh_or_add(now, vouch.clone()) {
                Ok(admission) => {
                    self.stats.auto_vouched += 1;
                    let id = match admission {
                        VouchAdmission::Added => vouch.vouch_id,
                        VouchAdmission::Refreshed(id) => {
                            self.stats.vouch_refreshed += 1;
                            id
                        }
                    };
                    respond(
                        BeaconDecision::AutoVouched,
                        Some(id),
                        rule.pod_id.clone(),
                        message,
                    )
                }
                Err(e) => {
                    self.stats.vouch_refused += u64::from(matches!(
                        e,
                        VouchError::Full { .. } | VouchError::FullBytes { .. }
                    ));
                    respond(
                        BeaconDecision::Rejected,
                        None,
                        None,
                        format!("Vouch refused: {e}"),
                    )
                }
            };
        }
        if !matches!(
            admission,
            BeaconAdmission::Open | BeaconAdmission::ReviewOnly
        ) {
            self.stats.known += 1;
            return respond(BeaconDecision::Known, None, None, "Known device".into());
        }
        if self.review_waits(beacon) {
            self.stats.hitl_joined += 1;
            return respond(
                BeaconDecision::HitlPending,
                None,
                None,
                "Awaiting HITL approval (already queued)".into(),
            );
        }
        if self.enqueue(now, beacon.clone()).is_waiting() {
            self.stats.hitl_pending += 1;
            respond(
                BeaconDecision::HitlPending,
                None,
                None,
                "Awaiting HITL approval".into(),
            )
        } else {
            self.stats.hitl_refused += 1;
            respond(
                BeaconDecision::Rejected,
                None,
                None,
                "HITL queue full".into(),
            )
        }
    }

    /// Whether a beacon of the same device (DID and key hash) waits for
    /// review already. The queue holds at most `hitl_capacity` entries and
    /// beacons are rate-limited per address before they get here.
    fn review_waits(&self, beacon: &Beacon) -> bool {
        self.queue.iter().any(|b| {
            b.source_did == beacon.source_did && b.public_key_hash == beacon.public_key_hash
        })
    }

    fn enqueue(&mut self, now: Timestamp, beacon: Beacon) -> Admission {
        let bytes = beacon.beacon_id.len()
            + beacon.source_did.len()
            + beacon
                .capabilities
                .iter()
                .map(|c| c.len() + 24)
                .sum::<usize>()
            + beacon.requested_pod.as_ref().map_or(0, String::len)
            + beacon.device_type.len()
            + beacon.public_key_hash.len()
            + beacon.timestamp.len();
        let (did, id) = (beacon.source_did.clone(), beacon.beacon_id.clone());
        self.queue.offer(now, &did, &id, beacon, bytes)
    }

    /// Beacons waiting for a human, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Beacon> {
        self.queue.iter()
    }

    /// The waiting beacons with the time each was queued, oldest first.
    pub fn pending_entries(&self) -> impl Iterator<Item = (Timestamp, &Beacon)> {
        self.queue.entries().map(|(_, at, b)| (at, b))
    }

    /// Puts back a beacon that waited for review when the node last
    /// stopped (a state store restoring it), queued at `queued_at` as
    /// before, so it expires when it would have. `false` when the queue
    /// refuses it (full, or the same beacon waits already).
    pub fn restore_pending(&mut self, queued_at: Timestamp, beacon: Beacon) -> bool {
        !self.review_waits(&beacon) && self.enqueue(queued_at, beacon) == Admission::Queued
    }

    /// A counter that moves whenever the waiting beacons change.
    pub fn pending_changes(&self) -> u64 {
        self.queue.changes()
    }

    /// Takes a waiting beacon out of the queue (if several devices used
    /// `beacon_id`, the one that arrived first).
    pub fn take_pending(&mut self, beacon_id: &str) -> Option<Beacon> {
        self.queue.take_oldest(beacon_id)
    }

    /// Removes and returns the beacons that waited the time to live (15
    /// min by default) by `now`, oldest first, so the caller can audit them.
    pub fn expire_pending(&mut self, now: Timestamp) -> Vec<Beacon> {
        self.queue.expire(now)
    }

    /// The review queue's counters and sizes.
    pub fn review_stats(&self) -> ReviewStats {
        self.queue.stats()
    }

    /// Counters.
    pub fn stats(&self) -> BeaconStats {
        BeaconStats {
            hitl_waiting: self.queue.len(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const NOW: Timestamp = Timestamp::from_secs(1_790_000_000);

    fn beacon(did: &str, device: &str, caps: &[&str], at: Timestamp) -> Beacon {
        let announce = Announcement {
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            device_type: Some(device.into()),
            ..Default::default()
        };
        Beacon::new("beacon_00000000000000aa".into(), did, &announce, at)
    }

    fn handle(h: &mut BeaconHandler, r: &mut VouchRegistry, b: &Beacon) -> BeaconResponse {
        h.handle(
            NOW,
            b,
            "jis:home:hub",
            r,
            &mut StdRng::seed_from_u64(1),
            BeaconAdmission::Open,
        )
    }

    #[test]
    fn freshness() {
        let b = |t| beacon("jis:x", "sensor", &[], t);
        let (age, skew) = (Duration::from_secs(300), Duration::from_secs(5));
        assert!(b(NOW - age).is_fresh(NOW, age, skew));
        assert!(!b(NOW - age - Duration::from_micros(1)).is_fresh(NOW, age, skew));
        assert!(b(NOW + skew).is_fresh(NOW, age, skew));
        assert!(!b(NOW + skew + Duration::from_secs(1)).is_fresh(NOW, age, skew));
        let mut bad = b(NOW);
        bad.timestamp = "garbage".into();
        assert!(!bad.is_fresh(NOW, age, skew));
        let mut h = BeaconHandler::default();
        let mut r = VouchRegistry::default();
        let resp = handle(&mut h, &mut r, &b(NOW - Duration::from_secs(301)));
        assert_eq!(
            (resp.decision, resp.message.as_str()),
            (BeaconDecision::Rejected, "Beacon too old")
        );
        assert_eq!(resp.response_id, "resp_beacon_00000000000000aa");
    }

    #[test]
    fn auto_vouch_by_device_type_capabilities_and_regex() {
        let mut h = BeaconHandler::default();
        let rule = AutoVouchRule {
            name: "kitchen sensors".into(),
            device_type: Some("sensor".into()),
            required_capabilities: Some(vec!["temperature".into(), "humidity".into()]),
            source_pattern: Some(r"jis:home:sensor_\w+".into()),
            pod_id: Some("kitchen".into()),
            ..Default::default()
        };
        h.add_auto_vouch_rule(rule).unwrap();
        let mut r = VouchRegistry::default();
        let good = beacon(
            "jis:home:sensor_t1",
            "sensor",
            &["humidity", "temperature", "motion"],
            NOW,
        );
        let resp = handle(&mut h, &mut r, &good);
        assert_eq!(resp.decision, BeaconDecision::AutoVouched);
        assert_eq!(resp.assigned_pod.as_deref(), Some("kitchen"));
        assert_eq!(resp.message, "Auto-vouched via rule: kitchen sensors");
        let vid = resp.vouch_id.unwrap();
        assert_eq!(r.get(&vid).unwrap().vouched_dids, ["jis:home:sensor_t1"]);
        assert_eq!(r.trust_for(NOW, "jis:home:sensor_t1"), Some((0.63, 1)));

        // Each condition on its own can fail the match.
        let missing_cap = beacon("jis:home:sensor_t2", "sensor", &["temperature"], NOW);
        let wrong_type = beacon(
            "jis:home:sensor_t3",
            "actuator",
            &["humidity", "temperature"],
            NOW,
        );
        let wrong_did = beacon(
            "jis:office:sensor_t4",
            "sensor",
            &["humidity", "temperature"],
            NOW,
        );
        for (i, mut b) in [missing_cap, wrong_type, wrong_did].into_iter().enumerate() {
            b.beacon_id = format!("beacon_{i}");
            let resp = handle(&mut h, &mut r, &b);
            assert_eq!(
                resp.decision,
                BeaconDecision::HitlPending,
                "{}",
                b.source_did
            );
            assert_eq!(resp.message, "Awaiting HITL approval");
        }
        assert_eq!(r.len(), 1);
        assert_eq!(h.stats().hitl_waiting, 3);
    }

    #[test]
    fn regex_is_anchored_at_start_only_like_re_match() {
        let mut h = BeaconHandler::default();
        h.add_auto_vouch_rule(AutoVouchRule {
            source_pattern: Some("jis:lab".into()),
            ..Default::default()
        })
        .unwrap();
        let mut r = VouchRegistry::default();
        assert_eq!(
            handle(&mut h, &mut r, &beacon("jis:lab:x", "g", &[], NOW)).decision,
            BeaconDecision::AutoVouched
        );
        assert_eq!(
            handle(&mut h, &mut r, &beacon("x:jis:lab", "g", &[], NOW)).decision,
            BeaconDecision::HitlPending
        );
        // An alternation does not escape the anchor.
        let mut h = BeaconHandler::default();
        h.add_auto_vouch_rule(AutoVouchRule {
            source_pattern: Some("a|b".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            handle(&mut h, &mut r, &beacon("xb", "g", &[], NOW)).decision,
            BeaconDecision::HitlPending
        );
    }

    #[test]
    fn invalid_regex_is_a_typed_error() {
        let mut h = BeaconHandler::default();
        for bad in ["(unclosed", "a)(b"] {
            let err = h.add_auto_vouch_rule(AutoVouchRule {
                source_pattern: Some(bad.into()),
                ..Default::default()
            });
            assert!(
                matches!(err, Err(AutoVouchRuleError::InvalidPattern { .. })),
                "{bad}"
            );
        }
        assert_eq!(h.rules().count(), 0);
    }

    #[test]
    fn beacon_reviews_expire_are_byte_bounded_and_keep_the_first_arrival() {
        let mut h = BeaconHandler::new(DEFAULT_BEACON_MAX_AGE, Duration::from_secs(5), 256);
        h.set_review_limits(16 * 1024, Duration::from_secs(900));
        let mut r = VouchRegistry::default();
        let first = beacon("jis:a", "g", &[], NOW);
        assert_eq!(
            handle(&mut h, &mut r, &first).decision,
            BeaconDecision::HitlPending
        );
        let mut changed = first.clone();
        changed.device_type = "door_lock".into();
        handle(&mut h, &mut r, &changed);
        assert_eq!(h.pending().collect::<Vec<_>>(), [&first]);
        // 256 invented beacons with long capability lists cannot fill 16 KiB.
        for i in 0..256 {
            let caps: Vec<String> = (0..8).map(|c| format!("cap{c:0>120}")).collect();
            let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
            let mut b = beacon(&format!("jis:x:{i}"), "g", &caps, NOW);
            b.beacon_id = format!("beacon_{i:016x}");
            handle(&mut h, &mut r, &b);
        }
        let rs = h.review_stats();
        assert!(rs.bytes <= 16 * 1024 && rs.refused_bytes > 200, "{rs:?}");
        assert_eq!(h.stats().hitl_refused, rs.refused_bytes);
        // After the time to live they all go, and new devices fit again.
        let later = NOW + Duration::from_secs(900);
        let gone = h.expire_pending(later);
        assert_eq!(gone.len(), rs.waiting);
        assert_eq!(gone[0], first);
        assert_eq!(h.stats().hitl_waiting, 0);
        let fresh = beacon("jis:new", "g", &[], later);
        assert_eq!(
            h.handle(
                later,
                &fresh,
                "jis:hub",
                &mut r,
                &mut StdRng::seed_from_u64(1),
                BeaconAdmission::Open,
            )
            .decision,
            BeaconDecision::HitlPending
        );
    }

    #[test]
    fn hitl_queue_bounded() {
        let mut h = BeaconHandler::new(DEFAULT_BEACON_MAX_AGE, Duration::from_secs(5), 1);
        let mut r = VouchRegistry::default();
        let mut b1 = beacon("jis:a", "g", &[], NOW);
        assert_eq!(
            handle(&mut h, &mut r, &b1).decision,
            BeaconDecision::HitlPending
        );
        // Another beacon of the same device joins its waiting review.
        let mut again = b1.clone();
        again.beacon_id = "beacon_1".into();
        assert_eq!(
            handle(&mut h, &mut r, &again).decision,
            BeaconDecision::HitlPending
        );
        assert_eq!((h.stats().hitl_joined, h.pending().count()), (1, 1));
        b1.beacon_id = "beacon_2".into();
        b1.source_did = "jis:b".into();
        let resp = handle(&mut h, &mut r, &b1);
        assert_eq!(
            (resp.decision, resp.message.as_str()),
            (BeaconDecision::Rejected, "HITL queue full")
        );
        assert_eq!(h.stats().hitl_refused, 1);
        assert!(h.take_pending("beacon_00000000000000aa").is_some());
        // The same beacon again is a replay; a new one fits.
        assert_eq!(handle(&mut h, &mut r, &b1).message, "Beacon replayed");
        b1.beacon_id = "beacon_3".into();
        assert_eq!(
            handle(&mut h, &mut r, &b1).decision,
            BeaconDecision::HitlPending
        );
    }

    #[test]
    fn discover_packet_round_trip() {
        let announce = Announcement {
            capabilities: vec!["temperature".into()],
            requested_capabilities: vec![],
            device_type: Some("sensor".into()),
            requested_pod: Some("kitchen".into()),
            public_key_hash: Some("ab12".into()),
        };
        let b = Beacon::new("beacon_0123456789abcdef".into(), "jis:s", &announce, NOW);
        let p = b.to_discover_packet("00".repeat(16));
        assert_eq!(p.packet_id, "ping_0123456789abcdef");
        assert_eq!(
            (p.ping_type, p.routing_mode, p.target_did.as_str()),
            (PingType::Discover, RoutingMode::Broadcast, BROADCAST)
        );
        assert_eq!(Beacon::from_discover_packet(&p), Some(b.clone()));
        let mut not_discover = p.clone();
        not_discover.ping_type = PingType::Intent;
        assert_eq!(Beacon::from_discover_packet(&not_discover), None);
        // A bare discover from the reference: defaults, pod from the packet.
        let mut bare = p;
        bare.payload =
            serde_json::from_str(r#"{"requested_capabilities":["x"],"capabilities":["a",1]}"#)
                .unwrap();
        bare.pod_id = Some("hall".into());
        let got = Beacon::from_discover_packet(&bare).unwrap();
        assert_eq!(
            (got.device_type.as_str(), got.requested_pod.as_deref()),
            ("generic", Some("hall"))
        );
        assert_eq!(got.capabilities, ["a"]);
        let json = serde_json::to_value(&b).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "beacon_id",
                "source_did",
                "capabilities",
                "requested_pod",
                "device_type",
                "public_key_hash",
                "timestamp"
            ]
        );
    }
}
