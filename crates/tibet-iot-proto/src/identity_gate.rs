//! The engine's identity gate (docs/PROTOCOL.md section 6,
//! docs/SECURITY.md): signs what the node sends, checks every received
//! packet and every answer to our own requests against the pinned keys,
//! counts refusals by reason and audits them at most once per source per
//! interval.

use alloc::borrow::ToOwned;
use alloc::string::String;

use core::net::SocketAddr;
use core::time::Duration;

use serde::Serialize;
use tibet_ping::identity::{
    DEFAULT_KEY_CACHE_CAPACITY, DEFAULT_PIN_CAPACITY, Identity, IdentityMode, IdentityRefusal,
    KeyCache, KeyCacheStats, Keypair, PinDecision, PinStore, PublicKey, SignatureError,
    VouchCredential, add_beacon_key, check_identity_cached, sign_packet, sign_response,
    verify_packet_vouch, verify_response,
};
use tibet_ping::{PingPacket, PingResponse, PingType, Timestamp};

use crate::bounded::{BoundedMap, WhenFull};
use crate::time::MonoTime;

/// Identity settings of a node.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// How strictly signatures are demanded (default `prefer`).
    pub mode: IdentityMode,
    /// The node's own key: with one, every packet, response, beacon and
    /// heartbeat it sends is signed, and beacons carry the public key.
    pub key: Option<Keypair>,
    /// DIDs pinned to keys (by the operator, or by trust on first use).
    pub pins: PinStore,
    /// Refusals from one source address are audited at most once per this
    /// interval; the record carries how many it stands for.
    pub audit_interval: Duration,
    /// Source addresses whose refusals are being rate-limited; beyond it
    /// refusals from new sources are counted but not audited.
    pub audit_sources: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            mode: IdentityMode::Prefer,
            key: None,
            pins: PinStore::new(DEFAULT_PIN_CAPACITY),
            audit_interval: Duration::from_secs(60),
            audit_sources: 1024,
        }
    }
}

/// Counters of the identity gate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IdentityStats {
    /// Packets signed by the key their DID is pinned to.
    pub verified: u64,
    /// Beacons of unpinned DIDs signed by the key they carry.
    pub self_certified: u64,
    /// Packets of unpinned DIDs let through in `prefer` mode.
    pub unpinned: u64,
    /// Refused: a pinned DID sent an unsigned packet.
    pub unsigned: u64,
    /// Refused: malformed signature, or one that does not verify (a field
    /// changed after signing, another key).
    pub bad_signature: u64,
    /// Refused: signed by a carried key that is not the pinned one.
    pub wrong_key: u64,
    /// Refused: unpinned (or unsigned) in `require` mode.
    pub unpinned_in_require: u64,
    /// Refused: a carried beacon key that does not prove itself.
    pub bad_beacon_key: u64,
    /// Vouch credentials that verified (pinned voucher, unexpired, device
    /// signature): the device got voucher trust x factor.
    pub vouch_credentials: u64,
    /// Vouch credentials presented that did not verify (expired, forged,
    /// unknown voucher, mismatched): treated as absent.
    pub vouch_credentials_absent: u64,
    /// Revocations of vouch credentials refused because the revocation list
    /// was full.
    pub revocations_refused: u64,
    /// Answers to our requests verified against the responder's pin.
    pub responses_verified: u64,
    /// Answers to our requests refused: a pinned responder did not sign
    /// them (or the signature is forged), or `require` and no pin.
    pub responses_refused: u64,
    /// DIDs pinned by trust on first use.
    pub pins_added: u64,
    /// Beacons that tried to re-pin a DID to another key (refused).
    pub pin_conflicts: u64,
    /// Dropped unchecked: a signature check over the source's verification
    /// budget (not from the DID's proven address; docs/SECURITY.md).
    pub over_verify_budget: u64,
    /// Refusals not audited because their source was audited within the
    /// interval (the next record of that source carries them in its count).
    pub audit_suppressed: u64,
    /// Refusals not audited because the table of audited sources was full.
    pub audit_sources_refused: u64,
}

impl IdentityStats {
    fn count(&mut self, refusal: IdentityRefusal) {
        match refusal {
            IdentityRefusal::Unsigned => self.unsigned += 1,
            IdentityRefusal::WrongKey => self.wrong_key += 1,
            IdentityRefusal::UnpinnedInRequire => self.unpinned_in_require += 1,
            IdentityRefusal::BadBeaconKey => self.bad_beacon_key += 1,
            _ => self.bad_signature += 1,
        }
    }

    /// All refusals of received packets.
    pub fn refused(&self) -> u64 {
        self.unsigned
            + self.bad_signature
            + self.wrong_key
            + self.unpinned_in_require
            + self.bad_beacon_key
            + self.over_verify_budget
    }
}

#[derive(Debug)]
struct AuditWindow {
    last_record: MonoTime,
    pending: u64,
}

/// The gate itself, owned by the engine.
#[derive(Debug)]
pub(crate) struct IdentityGate {
    mode: IdentityMode,
    key: Option<Keypair>,
    pins: PinStore,
    interval: Duration,
    windows: BoundedMap<SocketAddr, AuditWindow>,
    /// Parsed keys carried in beacons, so a beacon's key is not re-parsed
    /// every beacon.
    keys: KeyCache,
    /// Revoked vouch credentials, as (voucher DID, device DID): every
    /// credential that voucher issued for that device counts as absent.
    revoked: alloc::collections::BTreeSet<(String, String)>,
    pub(crate) stats: IdentityStats,
}

/// Revoked (voucher, device) pairs held at most; past it a revocation is
/// refused and counted.
pub(crate) const MAX_REVOKED_CREDENTIALS: usize = 4096;

/// Whether a packet's signature check is paid for
/// ([`crate::SourceGuard::allow_verify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Free (no check, or the DID's proven address) or paid.
    Granted,
    /// Over budget: dropped unchecked.
    Refused,
}

/// A packet's signature already checked against a key (by a batch check):
/// the gate uses it only while that key is still the DID's pin.
pub(crate) type PreVerified = (PublicKey, Result<(), SignatureError>);

impl IdentityGate {
    pub(crate) fn new(config: &IdentityConfig) -> Self {
        IdentityGate {
            mode: config.mode,
            key: config.key.clone(),
            pins: config.pins.clone(),
            interval: config.audit_interval,
            windows: BoundedMap::new(
                config.audit_sources,
                config.audit_interval.saturating_mul(10),
                WhenFull::Refuse,
            ),
            keys: KeyCache::new(DEFAULT_KEY_CACHE_CAPACITY),
            revoked: alloc::collections::BTreeSet::new(),
            stats: IdentityStats::default(),
        }
    }

    /// Counters of the cache of parsed beacon keys.
    pub(crate) fn key_cache_stats(&self) -> KeyCacheStats {
        self.keys.stats()
    }

    pub(crate) fn mode(&self) -> IdentityMode {
        self.mode
    }

    pub(crate) fn pins(&self) -> &PinStore {
        &self.pins
    }

    /// Removes `did`'s pin; its key, if it had one.
    pub(crate) fn remove_pin(&mut self, did: &str) -> Option<PublicKey> {
        self.pins.remove(did)
    }

    /// Revokes every vouch credential `voucher_did` issued for
    /// `device_did`; false when the revocation list is full (counted).
    pub(crate) fn revoke_credential(&mut self, voucher_did: &str, device_did: &str) -> bool {
        let pair = (voucher_did.to_owned(), device_did.to_owned());
        if self.revoked.contains(&pair) {
            return true;
        }
        if self.revoked.len() >= MAX_REVOKED_CREDENTIALS {
            self.stats.revocations_refused += 1;
            return false;
        }
        self.revoked.insert(pair);
        true
    }

    /// Whether credentials `voucher_did` issued for `device_did` are revoked.
    pub(crate) fn credential_revoked(&self, voucher_did: &str, device_did: &str) -> bool {
        self.revoked
            .contains(&(voucher_did.to_owned(), device_did.to_owned()))
    }

    fn is_revoked(&self, cred: &VouchCredential) -> bool {
        self.revoked
            .contains(&(cred.voucher_did.clone(), cred.device_did.clone()))
    }

    /// The identity step for a received packet, with the vouch credential
    /// it presents (if any, and valid); refusals are counted. In `require`
    /// mode a valid credential from a pinned voucher admits an unpinned
    /// device: the voucher bound the device's DID to the key it signed with.
    pub(crate) fn check(
        &mut self,
        packet: &PingPacket,
        now: Timestamp,
        pre: Option<PreVerified>,
    ) -> (Result<Identity, IdentityRefusal>, Option<VouchCredential>) {
        let credential = if self.mode != IdentityMode::Off && packet.vouched_by.is_some() {
            match verify_packet_vouch(packet, &self.pins, now) {
                Ok(Some(cred)) if self.is_revoked(&cred) => {
                    self.stats.vouch_credentials_absent += 1;
                    None
                }
                Ok(cred) => {
                    self.stats.vouch_credentials += u64::from(cred.is_some());
                    cred
                }
                Err(_) => {
                    self.stats.vouch_credentials_absent += 1;
                    None
                }
            }
        } else {
            None
        };
        let pre = pre.as_ref().map(|(key, result)| (key, *result));
        let mut result = check_identity_cached(packet, &self.pins, self.mode, pre, &mut self.keys);
        if let (Err(IdentityRefusal::UnpinnedInRequire), Some(cred)) = (&result, &credential) {
            result = Ok(Identity::Verified(cred.device_key));
        }
        match &result {
            Ok(Identity::Verified(_)) => self.stats.verified += 1,
            Ok(Identity::SelfCertified(_)) => self.stats.self_certified += 1,
            Ok(Identity::Unpinned) => self.stats.unpinned += 1,
            Ok(Identity::NotChecked) => {}
            Err(refusal) => {
                if *refusal == IdentityRefusal::WrongKey && packet.ping_type == PingType::Discover {
                    self.stats.pin_conflicts += 1;
                }
                self.stats.count(*refusal)
            }
        }
        (result, credential)
    }

    /// Whether a refusal from `from` is audited now; `Some(count)` with the
    /// number of refusals the record stands for.
    pub(crate) fn audit_due(&mut self, now: MonoTime, from: SocketAddr) -> Option<u64> {
        let interval = self.interval;
        if let Some(w) = self.windows.get_mut(now, &from) {
            if now.saturating_duration_since(w.last_record) < interval {
                w.pending += 1;
                self.stats.audit_suppressed += 1;
                return None;
            }
            let count = w.pending + 1;
            w.pending = 0;
            w.last_record = now;
            return Some(count);
        }
        let window = AuditWindow {
            last_record: now,
            pending: 0,
        };
        if self.windows.insert_sized(now, from, window, 0) {
            Some(1)
        } else {
            self.stats.audit_sources_refused += 1;
            None
        }
    }

    /// Whether an answer to our request from `responder` may be accepted.
    pub(crate) fn accept_response(&mut self, response: &PingResponse) -> bool {
        if self.mode == IdentityMode::Off {
            return true;
        }
        let ok = match self.pins.get(&response.responder_did) {
            Some(key) => verify_response(response, &response.signature, key).is_ok(),
            None => self.mode != IdentityMode::Require,
        };
        if !ok {
            self.stats.responses_refused += 1;
        } else if self.pins.get(&response.responder_did).is_some() {
            self.stats.responses_verified += 1;
        }
        ok
    }

    /// Signs an outgoing packet whose fields were changed after the node
    /// built it (beacons get their key fields here).
    pub(crate) fn sign_beacon(&self, packet: &mut PingPacket) {
        if let Some(key) = &self.key {
            add_beacon_key(&mut packet.payload, &key.public());
            sign_packet(packet, key);
        }
    }

    /// Signs an outgoing response.
    pub(crate) fn sign_response(&self, response: &mut PingResponse) {
        if let Some(key) = &self.key {
            response.signature.clear();
            response.signature = sign_response(response, key);
        }
    }

    /// Trust on first use: pins `did` to `key` when unknown.
    pub(crate) fn pin_first_use(&mut self, did: &str, key: PublicKey) -> PinDecision {
        let decision = self.pins.pin_first_use(did, key);
        match decision {
            PinDecision::Pinned => self.stats.pins_added += 1,
            PinDecision::Conflict => self.stats.pin_conflicts += 1,
            _ => {}
        }
        decision
    }
}
