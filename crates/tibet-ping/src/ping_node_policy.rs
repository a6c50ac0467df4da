//! [`PingNode`]'s policy: trust, vouches, airlock rules, the reviews of
//! pending pings and beacons, the replay horizon and the topology, with
//! the node's statistics. The packet builders and the receive pipeline are
//! in `ping_node.rs`.

use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};
use core::time::Duration;

use crate::airlock::{Airlock, PendingPing};
use crate::beacon::{
    Announcement, Beacon, BeaconAdmission, BeaconDecision, BeaconHandler, BeaconResponse,
};
use crate::ids;
use crate::ping_stats::PingNodeStats;
use crate::rule::AirlockRule;
use crate::time::Timestamp;
use crate::topology::{Pod, TopologyError, TopologyManager};
use crate::trust::{TrustAssessment, TrustSource};
use crate::vouch::{Vouch, VouchError, VouchOptions, VouchRegistry};

use crate::ping_node::{ExpiredReviews, PingNode};

impl PingNode {
    // ── trust and policy ────────────────────────────────────────────

    /// Sets `did`'s trust, clamped into 0..=1 (NaN counts as 0).
    pub fn set_trust(&mut self, did: &str, trust: f64) {
        self.trust.set(did, trust);
    }

    /// Forgets `did`'s explicit trust; returns it.
    pub fn clear_trust(&mut self, did: &str) -> Option<f64> {
        self.trust.remove(did)
    }

    /// `did`'s trust at `now`, and where it comes from.
    pub fn trust_of(&self, now: Timestamp, did: &str) -> TrustAssessment {
        self.trust.assess(now, did, &self.vouches)
    }

    /// `did`'s explicitly set trust, and the trust store's generation it
    /// was read at (see [`PingNode::answer_known`]).
    pub fn explicit_trust(&self, did: &str) -> (Option<f64>, u64) {
        (self.trust.get(did), self.trust.generation())
    }

    /// The trust store's generation: it changes whenever an explicit score
    /// is set or removed.
    pub fn trust_generation(&self) -> u64 {
        self.trust.generation()
    }

    /// Vouches for `dids` as this node: they inherit `my_trust x vouch_factor`.
    pub fn vouch(
        &mut self,
        now: Timestamp,
        dids: Vec<String>,
        opts: VouchOptions,
    ) -> Result<Vouch, VouchError> {
        self.seen(now);
        let vouch = Vouch {
            vouch_id: ids::vouch_id(&mut self.rng),
            voucher_did: self.did.clone(),
            voucher_trust: opts.my_trust,
            vouched_dids: dids,
            vouch_factor: opts.vouch_factor,
            pod_id: opts.pod_id,
            reason: opts.reason,
            created_at: now,
            expires_at: opts.expires_at,
            tibet_token_id: None,
            signature: String::new(),
        };
        self.vouches.add(now, vouch.clone())?;
        Ok(vouch)
    }

    /// Withdraws a vouch; returns it.
    pub fn revoke_vouch(&mut self, vouch_id: &str) -> Option<Vouch> {
        self.vouches.revoke(vouch_id)
    }

    /// The vouch registry.
    pub fn vouches(&self) -> &VouchRegistry {
        &self.vouches
    }

    /// Adds an airlock rule.
    pub fn add_rule(&mut self, rule: AirlockRule) {
        self.airlock.add_rule(rule);
    }

    /// Removes the airlock rule with `rule_id`; returns it.
    pub fn remove_rule(&mut self, rule_id: &str) -> Option<AirlockRule> {
        self.airlock.remove_rule(rule_id)
    }

    /// The airlock (rules, thresholds, review queue).
    pub fn airlock(&self) -> &Airlock {
        &self.airlock
    }

    /// GEEL pings waiting for review, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &PendingPing> {
        self.airlock.pending()
    }

    /// A human approves a pending ping; with `raise_trust_to`, the sender's
    /// trust is set to that value, so its next ping may land in GROEN.
    pub fn approve_pending(
        &mut self,
        packet_id: &str,
        raise_trust_to: Option<f64>,
    ) -> Option<PendingPing> {
        let pending = self.airlock.take_pending(packet_id)?;
        if let Some(t) = raise_trust_to {
            self.trust.set(&pending.packet.source_did, t);
        }
        Some(pending)
    }

    /// Like [`PingNode::approve_pending`], for the ping `packet_id` from
    /// `source_did` exactly (when several senders used one packet id,
    /// [`PingNode::approve_pending`] takes the first to arrive).
    pub fn approve_pending_from(
        &mut self,
        source_did: &str,
        packet_id: &str,
        raise_trust_to: Option<f64>,
    ) -> Option<PendingPing> {
        let pending = self.airlock.take_pending_from(source_did, packet_id)?;
        if let Some(t) = raise_trust_to {
            self.trust.set(&pending.packet.source_did, t);
        }
        Some(pending)
    }

    /// A human rejects a pending ping (the first to arrive under
    /// `packet_id`, like [`PingNode::approve_pending`]).
    pub fn reject_pending(&mut self, packet_id: &str) -> Option<PendingPing> {
        self.airlock.take_pending(packet_id)
    }

    /// Like [`PingNode::reject_pending`], for the ping `packet_id` from
    /// `source_did` exactly.
    pub fn reject_pending_from(
        &mut self,
        source_did: &str,
        packet_id: &str,
    ) -> Option<PendingPing> {
        self.airlock.take_pending_from(source_did, packet_id)
    }

    /// Removes the GEEL pings and beacons that waited for review longer
    /// than [`PingNodeConfig::review_ttl`](crate::PingNodeConfig::review_ttl) by `now`, and returns them so the
    /// caller can audit their expiry. Call it periodically.
    pub fn expire_reviews(&mut self, now: Timestamp) -> ExpiredReviews {
        self.seen(now);
        ExpiredReviews {
            pings: self.airlock.expire_pending(now),
            beacons: self.beacons.expire_pending(now),
        }
    }

    // ── beacons and topology ────────────────────────────────────────

    /// A bootstrap beacon for this node.
    pub fn beacon(&mut self, now: Timestamp, announce: &Announcement) -> Beacon {
        self.seen(now);
        let id = ids::packet_id(&mut self.rng);
        let suffix = id.strip_prefix("ping_").unwrap_or(&id);
        Beacon::new(format!("beacon_{suffix}"), &self.did, announce, now)
    }

    /// Handles a beacon as hub: auto-vouch (registered in this node's vouch
    /// registry; the device joins the assigned pod if this node knows it),
    /// or human review.
    pub fn handle_beacon(&mut self, now: Timestamp, beacon: &Beacon) -> BeaconResponse {
        self.handle_beacon_as(now, beacon, BeaconAdmission::Open)
    }

    /// [`PingNode::handle_beacon`] within what `admission` allows (the caller
    /// knows who the DID is: explicit trust, pins, vouches; see
    /// [`PingNode::beacon_admission`]).
    pub fn handle_beacon_as(
        &mut self,
        now: Timestamp,
        beacon: &Beacon,
        admission: BeaconAdmission,
    ) -> BeaconResponse {
        self.seen(now);
        let response = self.beacons.handle(
            now,
            beacon,
            &self.did,
            &mut self.vouches,
            &mut self.rng,
            admission,
        );
        if response.decision == BeaconDecision::AutoVouched
            && let Some(pod) = &response.assigned_pod
        {
            // Best effort: an unknown pod or a full topology leaves the vouch in place.
            let _ = self.topology.add_hubby_to_pod(pod, &beacon.source_did);
        }
        response
    }

    /// What a beacon of `did` may do here: `pinned` says whether the DID is
    /// pinned to a key, `offers_key` whether the beacon carries a key of its
    /// own that is not pinned (self-certified). A DID with explicit trust,
    /// a pin or an unexpired vouch is known: its beacons never enter review
    /// as a device, and a key they offer goes to review, never to a rule.
    pub fn beacon_admission(
        &self,
        now: Timestamp,
        did: &str,
        pinned: bool,
        offers_key: bool,
    ) -> BeaconAdmission {
        let explicit = self.trust.get(did).is_some();
        let known = explicit || pinned || self.trust_of(now, did).source == TrustSource::Vouched;
        match (known, offers_key) {
            (false, _) => BeaconAdmission::Open,
            (true, true) => BeaconAdmission::ReviewOnly,
            (true, false) if explicit => BeaconAdmission::Known,
            (true, false) => BeaconAdmission::RulesOnly,
        }
    }

    /// A human approves a beacon waiting for review: this node vouches for
    /// its device (until `opts.expires_at`, else for
    /// [`PingNodeConfig::vouch_ttl`](crate::PingNodeConfig::vouch_ttl)). `None` if no such beacon waits.
    pub fn approve_beacon(
        &mut self,
        now: Timestamp,
        beacon_id: &str,
        mut opts: VouchOptions,
    ) -> Option<Result<Vouch, VouchError>> {
        let beacon = self.beacons.take_pending(beacon_id)?;
        opts.expires_at = opts.expires_at.or(Some(now + self.config.vouch_ttl));
        Some(self.vouch(now, vec![beacon.source_did], opts))
    }

    /// A human rejects a beacon waiting for review.
    pub fn reject_beacon(&mut self, beacon_id: &str) -> Option<Beacon> {
        self.beacons.take_pending(beacon_id)
    }

    /// Beacons waiting for review, oldest first.
    pub fn pending_beacons(&self) -> impl Iterator<Item = &Beacon> {
        self.beacons.pending()
    }

    /// Beacons waiting for review with the time each was queued, oldest
    /// first.
    pub fn pending_beacon_entries(&self) -> impl Iterator<Item = (Timestamp, &Beacon)> {
        self.beacons.pending_entries()
    }

    /// A counter that moves whenever the pings or beacons waiting for
    /// review change (queued, approved, rejected, expired): whoever keeps a
    /// copy of them (a state store) knows from it whether the copy is
    /// current.
    pub fn reviews_changes(&self) -> u64 {
        self.airlock.pending_changes() + self.beacons.pending_changes()
    }

    /// Puts back a GEEL ping that waited for review when the node last
    /// stopped; it expires when it would have. `false` if refused (queue
    /// full, or already waiting).
    pub fn restore_pending(&mut self, pending: PendingPing) -> bool {
        self.airlock.restore_pending(pending)
    }

    /// Puts back a beacon that waited for review when the node last
    /// stopped, queued at `queued_at`. `false` if refused.
    pub fn restore_pending_beacon(&mut self, queued_at: Timestamp, beacon: Beacon) -> bool {
        self.beacons.restore_pending(queued_at, beacon)
    }

    /// Refuses every packet and beacon sent at or before `horizon` as a
    /// replay ([`ReplayReason::BeforeRestart`](crate::ReplayReason)): a node
    /// that restarts does not know the nonces its last run saw, so it
    /// refuses whatever that run could have accepted: the caller passes
    /// [`PingNode::latest_accepted`] of a run that stopped cleanly, the last
    /// instant a crashed run could have been alive plus
    /// [`PingNode::future_skew`], or, knowing of no earlier run, its own
    /// start.
    pub fn set_replay_horizon(&mut self, horizon: Timestamp) {
        self.nonces.set_horizon(horizon);
        self.untrusted_nonces.set_horizon(horizon);
        self.beacons.set_replay_horizon(horizon);
    }

    /// The latest timestamp of any packet or beacon that passed the replay
    /// check: after a clean stop, the next run's horizon.
    pub fn latest_accepted(&self) -> Option<Timestamp> {
        [
            self.nonces.latest_accepted(),
            self.untrusted_nonces.latest_accepted(),
            self.beacons.latest_accepted(),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// How far in the future a packet's timestamp may be.
    pub fn future_skew(&self) -> Duration {
        self.nonces.future_skew()
    }

    /// The beacon handler (auto-vouch rules, review queue).
    pub fn beacon_handler_mut(&mut self) -> &mut BeaconHandler {
        &mut self.beacons
    }

    /// The topology.
    pub fn topology(&self) -> &TopologyManager {
        &self.topology
    }

    /// The topology, for changes.
    pub fn topology_mut(&mut self) -> &mut TopologyManager {
        &mut self.topology
    }

    /// Creates a pod with this node as hub.
    pub fn create_pod(
        &mut self,
        pod_id: &str,
        name: &str,
        station_id: Option<&str>,
        capabilities: impl IntoIterator<Item = String>,
    ) -> Result<&Pod, TopologyError> {
        self.topology
            .create_pod(pod_id, name, &self.did, station_id, capabilities)
    }

    /// Forgets expired nonces and vouches (also done incrementally on use).
    pub fn collect_garbage(&mut self, now: Timestamp) {
        self.seen(now);
        self.nonces.collect_garbage(now);
        self.untrusted_nonces.collect_garbage(now);
        self.vouches.purge_expired(now);
    }

    /// Counters and sizes.
    pub fn stats(&self) -> PingNodeStats {
        let c = self.counters;
        PingNodeStats {
            device_did: self.did.clone(),
            received: c.received,
            accepted: c.accepted,
            pending: c.pending,
            rejected: c.rejected,
            replays: c.replays.total(),
            replay_reasons: c.replays,
            nonce_refusals: c.nonce_refusals,
            pending_refusals: c.pending_refusals,
            rate_limited: c.rate_limited,
            nonce_tracked: self.nonces.tracked(),
            untrusted_nonce_tracked: self.untrusted_nonces.tracked(),
            nonce_limit: self.nonce_limit.stats(),
            pending_limit: self.pending_limit.stats(),
            pending_count: self.airlock.pending_len(),
            rules: self.airlock.rules().len(),
            known_devices: self.trust.len(),
            vouching: self.vouches.stats(self.latest),
            beacons: self.beacons.stats(),
            topology: self.topology.stats(),
        }
    }
}
