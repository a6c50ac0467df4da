//! Restoring the state store into the engine at start, before the first
//! packet is read (docs/OPERATIONS.md, "Config and state store").
//!
//! Config is the operator's declared intent; the store is what was decided
//! since. A stored trust decision is restored only while the configured
//! trust of its DID is what it was when the decision was made: a
//! configuration changed since wins, and the decision is dropped from the
//! store (logged as a warning, and audited as a trust change with reason
//! `configuration changed since the stored decision`); so does a configured pin that changed since
//! a pin was made or removed. Expired vouches are dropped. Restoring is not
//! audited again: each decision was audited when it was made.

use std::collections::HashMap;

use tibet_iot_proto::{Engine, Now};
use tibet_ping::VouchOptions;

use tibet_ping::identity::{PinDecision, PublicKey};

use crate::state_store::{PinEntry, RuleEntry, StateStore, StoreError};

/// What a start restored from the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Restored {
    pub(crate) trust: usize,
    pub(crate) trust_overridden_by_config: usize,
    pub(crate) vouches: usize,
    pub(crate) vouches_expired: usize,
    pub(crate) revocations: usize,
    pub(crate) pins: usize,
    pub(crate) rules: usize,
    pub(crate) pins_overridden_by_config: usize,
    pub(crate) reviews: usize,
    pub(crate) refused: usize,
}

/// Applies `store` to `engine`; `declared` is the configured trust.
pub(crate) fn restore(
    store: &StateStore,
    engine: &mut Engine,
    declared: &HashMap<String, f64>,
    now: Now,
) -> Result<Restored, StoreError> {
    let mut done = Restored {
        vouches_expired: store.delete_expired_vouches(now.wall)?,
        ..Restored::default()
    };
    let state = store.load()?;
    for t in &state.trust {
        let configured = declared.get(&t.did).copied();
        if configured != t.declared {
            tracing::warn!(did = %t.did, stored = t.score, was_configured = ?t.declared,
                configured = ?configured,
                "the configured trust changed since the stored decision: the configuration wins");
            store.delete_trust(&t.did)?;
            engine.audit_stored_trust_overridden(now, &t.did, t.score);
            done.trust_overridden_by_config += 1;
            continue;
        }
        engine.ping_node_mut().set_trust(&t.did, t.score);
        done.trust += 1;
    }
    for v in state.vouches {
        let options = VouchOptions {
            vouch_factor: v.vouch_factor,
            my_trust: v.voucher_trust,
            pod_id: v.pod_id,
            reason: v.reason,
            expires_at: v.expires_at,
        };
        match engine.ping_node_mut().vouch(now.wall, v.dids, options) {
            Ok(_) => done.vouches += 1,
            Err(e) => {
                done.refused += 1;
                tracing::warn!(error = %e, "a stored vouch could not be restored");
            }
        }
    }
    for r in &state.revocations {
        if engine.restore_vouch_credential_revocation(&r.voucher_did, &r.device_did) {
            done.revocations += 1;
        } else {
            done.refused += 1;
            tracing::warn!(voucher = %r.voucher_did, device = %r.device_did,
                "a stored revocation could not be restored (revocation list full)");
        }
    }
    for rule in state.rules {
        let node = engine.ping_node_mut();
        match rule {
            RuleEntry::Airlock(r) => node.add_rule(r),
            RuleEntry::AutoVouch(r) => {
                if let Err(e) = node.beacon_handler_mut().add_auto_vouch_rule(r) {
                    done.refused += 1;
                    tracing::warn!(error = %e, "a stored auto-vouch rule could not be restored");
                    continue;
                }
            }
        }
        done.rules += 1;
    }
    for p in &state.pins {
        match restore_pin(engine, p) {
            Some(true) => done.pins += 1,
            Some(false) => {
                tracing::warn!(did = %p.did, removed = p.removed,
                    "the configured pin changed since the stored pin decision: the configuration wins");
                store.delete_pin(&p.did)?;
                done.pins_overridden_by_config += 1;
            }
            None => {
                done.refused += 1;
                tracing::warn!(did = %p.did, "a stored pin could not be restored");
            }
        }
    }
    let waiting = state.reviews.pings.len() + state.reviews.beacons.len();
    done.reviews = engine.restore_reviews(now, state.reviews);
    if done.reviews < waiting {
        done.refused += waiting - done.reviews;
        tracing::warn!(
            stored = waiting,
            restored = done.reviews,
            "some stored reviews could not be restored (review queue full)"
        );
    }
    tracing::info!(path = %store.path().display(), trust = done.trust,
        trust_overridden_by_config = done.trust_overridden_by_config, vouches = done.vouches,
        vouches_expired = done.vouches_expired, revocations = done.revocations,
        rules = done.rules, pins = done.pins, pins_overridden_by_config = done.pins_overridden_by_config,
        reviews = done.reviews, refused = done.refused,
        "state store restored");
    Ok(done)
}

/// Restores one pin decision: `Some(true)` when it holds again,
/// `Some(false)` when the configuration pins the DID otherwise since,
/// `None` when it cannot be restored (a bad key, the pin store full).
fn restore_pin(engine: &mut Engine, p: &PinEntry) -> Option<bool> {
    let key = PublicKey::parse(&p.public_key).ok()?;
    let now = engine.pins().get(&p.did).copied();
    if p.removed {
        // The removal holds while the configuration still pins the key
        // removed (or nothing).
        return match now {
            None => Some(true),
            Some(k) if k == key => Some(engine.restore_pin_removal(&p.did, &key)),
            Some(_) => Some(false),
        };
    }
    match engine.restore_pin(&p.did, key) {
        PinDecision::Pinned | PinDecision::Same => Some(true),
        PinDecision::Conflict => Some(false),
        PinDecision::Full | PinDecision::BadDid => None,
    }
}
