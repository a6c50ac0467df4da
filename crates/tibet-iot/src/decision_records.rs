//! The decisions an operator command made, as the state store records them
//! (docs/OPERATIONS.md).

use tibet_ping::{PendingPing, Timestamp, Vouch, VouchError};

use crate::state_store::{Decision, RevocationEntry, TrustEntry, VouchEntry};

use crate::iot_node::State;

/// The vouch made, to record.
pub(crate) fn record_vouch(r: &Result<Vouch, VouchError>) -> Option<Decision> {
    let v = r.as_ref().ok()?;
    Some(Decision::Vouch(VouchEntry {
        dids: v.vouched_dids.clone(),
        vouch_factor: v.vouch_factor,
        voucher_trust: v.voucher_trust,
        pod_id: v.pod_id.clone(),
        reason: v.reason.clone(),
        created_at: v.created_at,
        expires_at: v.expires_at,
    }))
}

/// The trust an approval raised, to record.
pub(crate) fn record_approval(
    r: &Option<PendingPing>,
    st: &State,
    raise_trust_to: Option<f64>,
    now: Timestamp,
) -> Vec<Decision> {
    let (Some(p), Some(trust)) = (r, raise_trust_to) else {
        return Vec::new();
    };
    let did = &p.packet.source_did;
    let score = st.engine.ping_node().explicit_trust(did).0.unwrap_or(trust);
    vec![Decision::Trust(TrustEntry {
        did: did.clone(),
        score,
        declared: st.declared.get(did).copied(),
        reason: format!("pending approved {}", p.packet.packet_id),
        set_at: now,
    })]
}

/// The revocation made, to record.
pub(crate) fn record_revocation(done: bool, voucher_did: &str, device_did: &str) -> Vec<Decision> {
    if !done {
        return Vec::new();
    }
    vec![Decision::Revocation(RevocationEntry {
        voucher_did: voucher_did.to_owned(),
        device_did: device_did.to_owned(),
        revoked_at: Timestamp::now(),
    })]
}

/// A pin made or removed, to record.
pub(crate) fn record_pin(
    did: &str,
    key: &tibet_ping::identity::PublicKey,
    removed: bool,
    reason: &str,
) -> Decision {
    Decision::Pin(crate::state_store::PinEntry {
        did: did.to_owned(),
        public_key: key.to_base64(),
        removed,
        reason: reason.to_owned(),
        changed_at: Timestamp::now(),
    })
}
