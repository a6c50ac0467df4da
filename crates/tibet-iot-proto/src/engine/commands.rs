//! Operator commands on the [`Engine`]: trust, vouches, airlock and
//! auto-vouch rules, the review of pending pings and beacons, pins and
//! credential revocations, and their restoration from a driver's state
//! store. Every change made here is reported as an
//! [`AuditRecord`](crate::AuditRecord); restorations of changes audited in
//! an earlier run are not audited again.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use tibet_ping::identity::{PinDecision, PinStore, PublicKey};
use tibet_ping::{
    AirlockRule, AutoVouchRule, AutoVouchRuleError, Beacon, PendingPing, Vouch, VouchError,
    VouchOptions,
};

use super::Engine;
use crate::audit_record::AuditRecord;
use crate::reviews::{WaitingBeacon, WaitingReviews};
use crate::time::Now;

impl Engine {
    /// Revokes every vouch credential `voucher_did` issued for
    /// `device_did`; audited. False when the revocation list is full
    /// (counted in `identity.revocations_refused`).
    pub fn revoke_vouch_credential(&mut self, voucher_did: &str, device_did: &str) -> bool {
        let done = self
            .shared
            .identity
            .revoke_credential(voucher_did, device_did);
        if done {
            self.shared.out.audit(|| AuditRecord::CredentialRevoked {
                voucher_did: voucher_did.to_owned(),
                device_did: device_did.to_owned(),
            });
        }
        done
    }

    /// Restores a revocation made (and audited) in an earlier run, from a
    /// driver's state store: not audited again. False when the revocation
    /// list is full.
    pub fn restore_vouch_credential_revocation(
        &mut self,
        voucher_did: &str,
        device_did: &str,
    ) -> bool {
        self.shared
            .identity
            .revoke_credential(voucher_did, device_did)
    }

    /// A driver dropped a trust decision of its state store because the
    /// configured trust of `did` changed since: audited as a trust change
    /// from the stored score to the trust the node applies now (reason
    /// `configuration changed since the stored decision`).
    pub fn audit_stored_trust_overridden(&mut self, now: Now, did: &str, stored: f64) {
        let new = self.shared.node.trust_of(now.wall, did).score;
        self.audit_trust_change(
            did.to_owned(),
            stored,
            new,
            "configuration changed since the stored decision",
        );
    }

    /// Restores a pin made in an earlier run (and audited then), from a
    /// driver's state store: trust on first use, not audited again. A DID
    /// pinned to another key now (by the configuration) keeps that key
    /// ([`PinDecision::Conflict`](PinDecision)).
    pub fn restore_pin(&mut self, did: &str, key: PublicKey) -> PinDecision {
        let decision = self.shared.identity.pin_first_use(did, key);
        if decision == PinDecision::Pinned {
            self.shared.pins_generation += 1;
        }
        decision
    }

    /// Restores a pin removal made in an earlier run: removes `did`'s pin
    /// if it is still `key` (a configuration that pins another key since
    /// wins); not audited again. Whether it removed one.
    pub fn restore_pin_removal(&mut self, did: &str, key: &PublicKey) -> bool {
        if self.shared.identity.pins().get(did) != Some(key) {
            return false;
        }
        self.shared.identity.remove_pin(did);
        self.shared.pins_generation += 1;
        true
    }

    /// Whether vouch credentials `voucher_did` issued for `device_did` are
    /// revoked (they then count as absent).
    pub fn vouch_credential_revoked(&self, voucher_did: &str, device_did: &str) -> bool {
        self.shared
            .identity
            .credential_revoked(voucher_did, device_did)
    }

    /// The pinned DIDs (configured, and pinned by trust on first use).
    pub fn pins(&self) -> &PinStore {
        self.shared.identity.pins()
    }

    /// Raised on every change of [`Engine::pins`]: a driver that keeps a
    /// pins file saves it when this moved.
    pub fn pins_generation(&self) -> u64 {
        self.shared.pins_generation
    }

    /// Sets the trust of `did` (clamped to 0..1), audited as a trust change.
    pub fn set_trust(&mut self, now: Now, did: &str, trust: f64) {
        let old = self.shared.node.trust_of(now.wall, did).score;
        self.shared.node.set_trust(did, trust);
        let new = self.shared.node.trust_of(now.wall, did).score;
        self.audit_trust_change(did.to_owned(), old, new, "set_trust");
    }

    fn audit_trust_change(&mut self, did: String, old: f64, new: f64, reason: &str) {
        let airlock = self.shared.node.airlock();
        let (old_zone, new_zone) = (airlock.threshold_zone(old), airlock.threshold_zone(new));
        self.shared.out.audit(|| AuditRecord::TrustChange {
            did,
            old,
            new,
            old_zone,
            new_zone,
            reason: reason.to_owned(),
        });
    }

    /// Vouches for `dids` (refused when the vouch registry is full), audited.
    pub fn vouch(
        &mut self,
        now: Now,
        dids: Vec<String>,
        options: VouchOptions,
    ) -> Result<Vouch, VouchError> {
        let vouch = self.shared.node.vouch(now.wall, dids, options)?;
        self.shared.out.audit(|| AuditRecord::Vouched {
            vouch: Box::new(vouch.clone()),
        });
        Ok(vouch)
    }

    /// Adds an airlock rule, audited.
    pub fn add_rule(&mut self, rule: AirlockRule) {
        self.shared.out.audit(|| AuditRecord::RuleAdded {
            rule: Box::new(rule.clone()),
        });
        self.shared.node.add_rule(rule);
    }

    /// Adds an auto-vouch rule for beacons (refused when invalid), audited.
    pub fn add_auto_vouch_rule(&mut self, rule: AutoVouchRule) -> Result<(), AutoVouchRuleError> {
        let record = self.shared.out.audit_enabled().then(|| rule.clone());
        self.shared
            .node
            .beacon_handler_mut()
            .add_auto_vouch_rule(rule)?;
        if let Some(rule) = record {
            self.shared.out.audit(|| AuditRecord::AutoVouchRuleAdded {
                rule: Box::new(rule),
            });
        }
        Ok(())
    }

    /// Pings waiting for human review (GEEL).
    pub fn pending(&self) -> impl Iterator<Item = &PendingPing> {
        self.shared.node.pending()
    }

    /// The sender of the first ping waiting for review under `packet_id`.
    fn first_pending_sender(&self, packet_id: &str) -> Option<String> {
        self.shared
            .node
            .pending()
            .find(|p| p.packet.packet_id == packet_id)
            .map(|p| p.packet.source_did.clone())
    }

    /// Approves a pending (GEEL) ping, optionally raising the sender's trust;
    /// audited as a review, then (when raised) a trust change. When several
    /// senders used `packet_id`, the first to arrive is taken; see
    /// [`Engine::approve_pending_from`].
    pub fn approve_pending(
        &mut self,
        now: Now,
        packet_id: &str,
        raise_trust_to: Option<f64>,
    ) -> Option<PendingPing> {
        let did = self.first_pending_sender(packet_id)?;
        self.approve_pending_from(now, &did, packet_id, raise_trust_to)
    }

    /// Approves the pending ping `packet_id` from `source_did` exactly (a
    /// review queue may hold one id under several senders: a re-send under
    /// another DID is a separate entry, never a change to the first).
    pub fn approve_pending_from(
        &mut self,
        now: Now,
        source_did: &str,
        packet_id: &str,
        raise_trust_to: Option<f64>,
    ) -> Option<PendingPing> {
        let did = source_did.to_owned();
        let old = self.shared.node.trust_of(now.wall, &did).score;
        let approved = self
            .shared
            .node
            .approve_pending_from(&did, packet_id, raise_trust_to)?;
        self.shared.out.audit(|| AuditRecord::PendingReviewed {
            pending: Box::new(approved.clone()),
            approved: true,
        });
        if raise_trust_to.is_some() {
            let new = self.shared.node.trust_of(now.wall, &did).score;
            self.audit_trust_change(did, old, new, "pending approved");
        }
        Some(approved)
    }

    /// Rejects a pending (GEEL) ping (the first to arrive under
    /// `packet_id`); audited as a review.
    pub fn reject_pending(&mut self, packet_id: &str) -> Option<PendingPing> {
        let did = self.first_pending_sender(packet_id)?;
        self.reject_pending_from(&did, packet_id)
    }

    /// Rejects the pending ping `packet_id` from `source_did` exactly;
    /// audited as a review.
    pub fn reject_pending_from(
        &mut self,
        source_did: &str,
        packet_id: &str,
    ) -> Option<PendingPing> {
        let rejected = self
            .shared
            .node
            .reject_pending_from(source_did, packet_id)?;
        self.shared.out.audit(|| AuditRecord::PendingReviewed {
            pending: Box::new(rejected.clone()),
            approved: false,
        });
        Some(rejected)
    }

    /// An operator removes `did`'s pin (a first-use pin they do not want,
    /// or a device that changed its key: its next key offer then waits for
    /// review); audited. The key it had, if any.
    pub fn remove_pin(&mut self, did: &str) -> Option<PublicKey> {
        let key = self.shared.identity.remove_pin(did)?;
        self.shared.pins_generation += 1;
        self.shared.out.audit(|| AuditRecord::Unpinned {
            did: did.to_owned(),
            key: Box::new(key),
        });
        Some(key)
    }

    /// Beacons waiting for human review.
    pub fn pending_beacons(&self) -> impl Iterator<Item = &Beacon> {
        self.shared.node.pending_beacons()
    }

    /// A human approves a beacon waiting for review: this node vouches for
    /// its device (audited), and a beacon that was signed by the key it
    /// carries pins its DID to that key (trust on first use, audited).
    /// `None` if no such beacon waits.
    pub fn approve_beacon(
        &mut self,
        now: Now,
        beacon_id: &str,
        opts: VouchOptions,
    ) -> Option<Result<Vouch, VouchError>> {
        let key = self.discovery.beacon_key(now, beacon_id).cloned();
        let result = self.shared.node.approve_beacon(now.wall, beacon_id, opts)?;
        if let Ok(vouch) = &result {
            self.shared.out.audit(|| AuditRecord::Vouched {
                vouch: Box::new(vouch.clone()),
            });
            if let Some((did, key)) = key {
                self.shared.pin_first_use(&did, key, "beacon approved");
            }
        }
        Some(result)
    }

    /// A human rejects a beacon waiting for review.
    pub fn reject_beacon(&mut self, beacon_id: &str) -> Option<Beacon> {
        self.shared.node.reject_beacon(beacon_id)
    }

    /// A counter that moves whenever what waits for review changes (see
    /// [`PingNode::reviews_changes`](tibet_ping::PingNode::reviews_changes)).
    pub fn reviews_changes(&self) -> u64 {
        self.shared.node.reviews_changes()
    }

    /// A copy of what waits for review, for a state store.
    pub fn waiting_reviews(&self, now: Now) -> WaitingReviews {
        WaitingReviews {
            pings: self.shared.node.pending().cloned().collect(),
            beacons: self
                .shared
                .node
                .pending_beacon_entries()
                .map(|(queued_at, beacon)| WaitingBeacon {
                    queued_at,
                    beacon: beacon.clone(),
                    key: self
                        .discovery
                        .beacon_key(now, beacon.beacon_id.as_str())
                        .filter(|(did, _)| *did == beacon.source_did)
                        .map(|(_, key)| *key),
                })
                .collect(),
        }
    }

    /// Puts back what waited for review when the node last stopped (a
    /// state store restoring it); each review keeps its queue time and
    /// expires when it would have (audited then, as any expiry). Returns
    /// how many were put back; the others were refused by the queues
    /// (full, or waiting already).
    pub fn restore_reviews(&mut self, now: Now, reviews: WaitingReviews) -> usize {
        let mut restored = 0;
        for ping in reviews.pings {
            restored += usize::from(self.shared.node.restore_pending(ping));
        }
        for b in reviews.beacons {
            let (id, did) = (b.beacon.beacon_id.clone(), b.beacon.source_did.clone());
            if !self
                .shared
                .node
                .restore_pending_beacon(b.queued_at, b.beacon)
            {
                continue;
            }
            restored += 1;
            if let Some(key) = b.key {
                self.discovery.keep_beacon_key(now, id, did, key);
            }
        }
        restored
    }
}
