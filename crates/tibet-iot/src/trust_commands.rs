//! [`IoTNode`]'s trust commands: trust scores, vouches, airlock and
//! auto-vouch rules, and the review of pending pings. Each is audited, and,
//! while the node runs with a state directory, kept as a decision in the
//! state store (docs/OPERATIONS.md).

use std::sync::atomic::Ordering;

use tibet_ping::{
    AirlockRule, AutoVouchRule, AutoVouchRuleError, PendingPing, Vouch, VouchError, VouchOptions,
};

use crate::state_store::{Decision, RuleEntry, TrustEntry};

use crate::decision_records::{record_approval, record_vouch};
use crate::iot_node::IoTNode;

impl IoTNode {
    /// Sets the trust of `did` (0..1); audited.
    ///
    /// Set while the node is stopped, it is configuration (declared
    /// intent); set while it runs with a state directory, it is a decision
    /// kept in the state store and restored at the next start, unless the
    /// configured trust of `did` changed since (docs/OPERATIONS.md).
    pub fn set_trust(&self, did: &str, trust: f64) {
        let now = self.shared.now();
        {
            let mut st = self.shared.lock();
            if !st.running {
                st.engine.set_trust(now, did, trust);
                if let Some(set) = st.engine.ping_node().explicit_trust(did).0 {
                    st.declared.insert(did.to_owned(), set);
                }
                st.drain_audit(&self.shared.audit_dropped);
                return;
            }
        }
        self.shared.decision(
            |e| e.set_trust(now, did, trust),
            |(), st| {
                let score = st.engine.ping_node().explicit_trust(did).0.unwrap_or(trust);
                vec![Decision::Trust(TrustEntry {
                    did: did.to_owned(),
                    score,
                    declared: st.declared.get(did).copied(),
                    reason: "set_trust".into(),
                    set_at: now.wall,
                })]
            },
        );
    }

    /// The trust of `did` as the pipeline would compute it now.
    pub fn trust_of(&self, did: &str) -> f64 {
        let now = self.shared.now();
        self.shared
            .lock()
            .engine
            .ping_node()
            .trust_of(now.wall, did)
            .score
    }

    /// The zone `trust` falls in by this node's thresholds (rules may still
    /// put one intent elsewhere).
    pub fn threshold_zone(&self, trust: f64) -> tibet_ping::AirlockZone {
        self.shared
            .lock()
            .engine
            .ping_node()
            .airlock()
            .threshold_zone(trust)
    }

    /// Vouches for `dids` (refused when the vouch registry is full); audited.
    /// Kept in the state store while the node runs with one.
    pub fn vouch(&self, dids: Vec<String>, options: VouchOptions) -> Result<Vouch, VouchError> {
        let now = self.shared.now();
        self.shared.decision(
            |e| e.vouch(now, dids, options),
            |r, _| record_vouch(r).into_iter().collect(),
        )
    }

    /// Adds an airlock rule; audited.
    /// Kept in the state store while the node runs with one.
    pub fn add_rule(&self, rule: AirlockRule) {
        let kept = rule.clone();
        self.shared.decision(
            |e| e.add_rule(rule),
            |(), _| vec![Decision::Rule(RuleEntry::Airlock(kept))],
        );
    }

    /// Adds an auto-vouch rule for beacons (refused when invalid); audited.
    /// Kept in the state store while the node runs with one.
    pub fn add_auto_vouch_rule(&self, rule: AutoVouchRule) -> Result<(), AutoVouchRuleError> {
        let kept = rule.clone();
        self.shared.decision(
            |e| e.add_auto_vouch_rule(rule),
            |r, _| match r {
                Ok(()) => vec![Decision::Rule(RuleEntry::AutoVouch(kept))],
                Err(_) => Vec::new(),
            },
        )
    }

    /// Pings waiting for human review (GEEL).
    pub fn pending(&self) -> Vec<PendingPing> {
        self.shared.lock().engine.pending().cloned().collect()
    }

    /// Approves a pending ping, optionally raising its sender's trust;
    /// audited.
    pub fn approve_pending(
        &self,
        packet_id: &str,
        raise_trust_to: Option<f64>,
    ) -> Option<PendingPing> {
        let now = self.shared.now();
        self.shared.decision(
            |e| e.approve_pending(now, packet_id, raise_trust_to),
            |r, st| record_approval(r, st, raise_trust_to, now.wall),
        )
    }

    /// Approves the pending ping `packet_id` from `source_did` exactly,
    /// optionally raising that sender's trust; audited.
    pub fn approve_pending_from(
        &self,
        source_did: &str,
        packet_id: &str,
        raise_trust_to: Option<f64>,
    ) -> Option<PendingPing> {
        let now = self.shared.now();
        self.shared.decision(
            |e| e.approve_pending_from(now, source_did, packet_id, raise_trust_to),
            |r, st| record_approval(r, st, raise_trust_to, now.wall),
        )
    }

    /// Decisions the state store could not record (each also logged as an
    /// error).
    pub fn state_store_failures(&self) -> u64 {
        self.shared.store_failures.load(Ordering::Relaxed)
    }

    /// Rejects a pending ping; audited.
    pub fn reject_pending(&self, packet_id: &str) -> Option<PendingPing> {
        self.shared
            .decision(|e| e.reject_pending(packet_id), |_, _| Vec::new())
    }

    /// Rejects the pending ping `packet_id` from `source_did` exactly;
    /// audited.
    pub fn reject_pending_from(&self, source_did: &str, packet_id: &str) -> Option<PendingPing> {
        self.shared.decision(
            |e| e.reject_pending_from(source_did, packet_id),
            |_, _| Vec::new(),
        )
    }
}
