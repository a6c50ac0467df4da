//! [`IoTNode`]'s identity commands (docs/PROTOCOL.md section 6): the pins
//! in force, and the review of beacons, whose approval pins the key a
//! beacon proved (trust on first use). Audited like the other commands.

use tibet_ping::identity::{IdentityMode, PinStore};
use tibet_ping::{Beacon, Vouch, VouchError, VouchOptions};

use crate::iot_node::IoTNode;

impl IoTNode {
    /// The identity policy in force.
    pub fn identity_mode(&self) -> IdentityMode {
        self.with_engine(|e| e.identity_mode())
    }

    /// The pins in force (configured, and learnt by trust on first use),
    /// and their generation, raised on every change (a caller that keeps a
    /// pins file saves it when the generation moved).
    pub fn pins(&self) -> (PinStore, u64) {
        self.with_engine(|e| (e.pins().clone(), e.pins_generation()))
    }

    /// The generation of the pins, raised on every change (cheap: no copy).
    pub fn pins_generation(&self) -> u64 {
        self.with_engine(|e| e.pins_generation())
    }

    /// The fingerprint of the key `did` is pinned to: the first 16 hex
    /// digits of the SHA-256 of the raw key (as in `public_key_hash`).
    pub fn key_fingerprint(&self, did: &str) -> Option<String> {
        self.with_engine(|e| e.pins().get(did).map(|k| k.sha256_hex()[..16].to_owned()))
    }

    /// Revokes every vouch credential `voucher_did` issued for
    /// `device_did` (they then count as absent); audited. False when the
    /// revocation list is full.
    /// Kept in the state store while the node runs with one.
    pub fn revoke_vouch_credential(&self, voucher_did: &str, device_did: &str) -> bool {
        self.decision(
            |e| e.revoke_vouch_credential(voucher_did, device_did),
            |done, _| crate::decision_records::record_revocation(*done, voucher_did, device_did),
        )
    }

    /// Removes `did`'s pin; audited. The key it had, if any.
    ///
    /// Kept in the state store while the node runs with one: a restart
    /// does not bring the pin back (unless the configuration pins another
    /// key since).
    pub fn remove_pin(&self, did: &str) -> Option<tibet_ping::identity::PublicKey> {
        self.decision(
            |e| e.remove_pin(did),
            |key, _| {
                key.iter()
                    .map(|k| crate::decision_records::record_pin(did, k, true, "removed"))
                    .collect()
            },
        )
    }

    /// Beacons waiting for human review.
    pub fn pending_beacons(&self) -> Vec<Beacon> {
        self.with_engine(|e| e.pending_beacons().cloned().collect())
    }

    /// Approves a beacon waiting for review: vouches for its device and,
    /// when the beacon proved a key, pins the DID to it; audited, and kept
    /// in the state store while the node runs with one. `None` if no such
    /// beacon waits.
    pub fn approve_beacon(
        &self,
        beacon_id: &str,
        options: VouchOptions,
    ) -> Option<Result<Vouch, VouchError>> {
        let now = self.clock();
        let (_, r) = self.decision(
            |e| {
                let did = e
                    .pending_beacons()
                    .find(|b| b.beacon_id == beacon_id)
                    .map(|b| b.source_did.clone());
                (did, e.approve_beacon(now, beacon_id, options))
            },
            |(did, r), st| {
                let mut decisions: Vec<_> = r
                    .iter()
                    .filter_map(crate::decision_records::record_vouch)
                    .collect();
                let pinned = did
                    .as_deref()
                    .and_then(|d| Some((d, st.engine.pins().get(d)?)));
                if let (false, Some((did, key))) = (decisions.is_empty(), pinned) {
                    decisions.push(crate::decision_records::record_pin(
                        did,
                        key,
                        false,
                        "beacon approved",
                    ));
                }
                decisions
            },
        );
        r
    }

    /// Rejects a beacon waiting for review.
    pub fn reject_beacon(&self, beacon_id: &str) -> Option<Beacon> {
        self.decision(|e| e.reject_beacon(beacon_id), |_, _| Vec::new())
    }
}
