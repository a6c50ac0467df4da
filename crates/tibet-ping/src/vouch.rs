//! Trust delegation: a trusted device vouches for a group of devices, which
//! then inherit `voucher_trust x vouch_factor` (e.g. 0.9 x 0.7 = 0.63).

use alloc::string::String;
use alloc::vec::Vec;

use crate::collections::HashMap;
use core::time::Duration;

use serde::Serialize;

use crate::time::Timestamp;

/// Default number of vouches a registry holds.
pub const DEFAULT_VOUCH_CAPACITY: usize = 16_384;
/// Most DIDs one vouch may name.
pub const MAX_DIDS_PER_VOUCH: usize = 1024;
/// Default byte budget of a registry (8 MiB).
pub const DEFAULT_VOUCH_BYTES: usize = 8 << 20;
/// Default lifetime of a vouch made because of network input (a beacon):
/// 24 h, renewed by each fresh beacon of the device.
pub const DEFAULT_VOUCH_TTL: Duration = Duration::from_secs(24 * 3600);

/// Bytes charged per vouch and per vouched DID on top of their strings.
const VOUCH_OVERHEAD: usize = 192;
const DID_OVERHEAD: usize = 64;

/// The bytes a vouch is charged against the registry's budget: its strings,
/// plus the index entries (DID and id) kept for each vouched DID.
fn vouch_bytes(v: &Vouch) -> usize {
    VOUCH_OVERHEAD
        + v.vouch_id.len()
        + v.voucher_did.len()
        + v.vouched_dids
            .iter()
            .map(|d| 2 * d.len() + v.vouch_id.len() + DID_OVERHEAD)
            .sum::<usize>()
        + v.pod_id.as_ref().map_or(0, String::len)
        + v.reason.len()
        + v.tibet_token_id.as_ref().map_or(0, String::len)
        + v.signature.len()
}

/// What [`VouchRegistry::refresh_or_add`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VouchAdmission {
    /// The vouch was registered as a new one.
    Added,
    /// A vouch by the same voucher for the same DIDs existed; it was
    /// refreshed (expiry, trust, factor, pod, reason) and keeps this id.
    Refreshed(String),
}

/// A vouching record; serializes as the reference's `to_dict` (with
/// `computed_trust`, and `signature` only when signed).
#[derive(Clone, Debug, PartialEq)]
pub struct Vouch {
    /// `vouch_` + 16 hex.
    pub vouch_id: String,
    /// Who vouches.
    pub voucher_did: String,
    /// The voucher's own trust.
    pub voucher_trust: f64,
    /// The devices vouched for.
    pub vouched_dids: Vec<String>,
    /// How much of the voucher's trust is passed on.
    pub vouch_factor: f64,
    /// Pod the vouch is for.
    pub pod_id: Option<String>,
    /// Human reason.
    pub reason: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops counting (never if `None`).
    pub expires_at: Option<Timestamp>,
    /// Link to a provenance token.
    pub tibet_token_id: Option<String>,
    /// The voucher's signature (empty when unsigned).
    pub signature: String,
}

impl Serialize for Vouch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let signed = !self.signature.is_empty();
        let mut st = s.serialize_struct("Vouch", 11 + usize::from(signed))?;
        st.serialize_field("vouch_id", &self.vouch_id)?;
        st.serialize_field("voucher_did", &self.voucher_did)?;
        st.serialize_field("voucher_trust", &self.voucher_trust)?;
        st.serialize_field("vouched_dids", &self.vouched_dids)?;
        st.serialize_field("vouch_factor", &self.vouch_factor)?;
        st.serialize_field("computed_trust", &self.computed_trust())?;
        st.serialize_field("pod_id", &self.pod_id)?;
        st.serialize_field("reason", &self.reason)?;
        st.serialize_field("created_at", &self.created_at.to_iso())?;
        st.serialize_field("expires_at", &self.expires_at.map(Timestamp::to_iso))?;
        st.serialize_field("tibet_token_id", &self.tibet_token_id)?;
        if signed {
            st.serialize_field("signature", &self.signature)?;
        }
        st.end()
    }
}

impl Vouch {
    /// The trust vouched devices inherit: `voucher_trust x vouch_factor`.
    pub fn computed_trust(&self) -> f64 {
        self.voucher_trust * self.vouch_factor
    }

    /// Whether the vouch has expired at `now` (strictly after `expires_at`).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| now > e)
    }
}

/// Options for making a vouch; defaults as in the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct VouchOptions {
    /// Passed-on share of the voucher's trust (default 0.7).
    pub vouch_factor: f64,
    /// The voucher's own trust (default 0.9).
    pub my_trust: f64,
    /// Pod the vouch is for.
    pub pod_id: Option<String>,
    /// Human reason.
    pub reason: String,
    /// Expiry (default: never).
    pub expires_at: Option<Timestamp>,
}

impl Default for VouchOptions {
    fn default() -> Self {
        VouchOptions {
            vouch_factor: 0.7,
            my_trust: 0.9,
            pod_id: None,
            reason: String::new(),
            expires_at: None,
        }
    }
}

/// Why a vouch was not registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VouchError {
    /// The registry holds its capacity of unexpired vouches.
    #[error("vouch registry full ({capacity} vouches)")]
    Full {
        /// The registry's capacity.
        capacity: usize,
    },
    /// The vouch names more DIDs than [`MAX_DIDS_PER_VOUCH`].
    #[error("vouch names {count} DIDs, at most {MAX_DIDS_PER_VOUCH} allowed")]
    TooManyDids {
        /// How many it named.
        count: usize,
    },
    /// The registry's byte budget would be exceeded.
    #[error("vouch registry full ({byte_capacity} bytes)")]
    FullBytes {
        /// The registry's byte budget.
        byte_capacity: usize,
    },
    /// A vouch with this id is already registered.
    #[error("duplicate vouch id {0}")]
    Duplicate(String),
}

/// Counts reported by [`VouchRegistry::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VouchStats {
    /// Vouches held (expired ones included until purged).
    pub total_vouches: usize,
    /// Vouches not expired at the time asked.
    pub active_vouches: usize,
    /// Distinct DIDs named by held vouches.
    pub vouched_devices: usize,
    /// Vouches refused because the registry was full (entries or bytes).
    pub refused: u64,
    /// Bytes charged for the held vouches.
    pub bytes: usize,
    /// Vouches refreshed in place instead of added again.
    pub refreshed: u64,
}

/// The vouches a node knows, indexed by vouched DID; bounded.
#[derive(Debug)]
pub struct VouchRegistry {
    capacity: usize,
    byte_capacity: usize,
    bytes: usize,
    vouches: HashMap<String, Vouch>,
    by_did: HashMap<String, Vec<String>>,
    refused: u64,
    refreshed: u64,
}

impl Default for VouchRegistry {
    fn default() -> Self {
        VouchRegistry::new(DEFAULT_VOUCH_CAPACITY)
    }
}

impl VouchRegistry {
    /// An empty registry holding at most `capacity` vouches.
    pub fn new(capacity: usize) -> Self {
        Self::with_byte_capacity(capacity, DEFAULT_VOUCH_BYTES)
    }

    /// An empty registry holding at most `capacity` vouches and
    /// `byte_capacity` bytes (as charged by the registry).
    pub fn with_byte_capacity(capacity: usize, byte_capacity: usize) -> Self {
        VouchRegistry {
            capacity,
            byte_capacity,
            bytes: 0,
            vouches: HashMap::new(),
            by_did: HashMap::new(),
            refused: 0,
            refreshed: 0,
        }
    }

    /// Registers `vouch`, unless a vouch by the same voucher naming the
    /// same DIDs is held: that one is refreshed instead (its id stays, its
    /// expiry, trust, factor, pod and reason become `vouch`'s). So a beacon
    /// replayed many times keeps one vouch alive, never adds more.
    pub fn refresh_or_add(
        &mut self,
        now: Timestamp,
        vouch: Vouch,
    ) -> Result<VouchAdmission, VouchError> {
        let existing = vouch.vouched_dids.first().and_then(|first| {
            self.by_did
                .get(first)?
                .iter()
                .filter_map(|id| self.vouches.get(id))
                .find(|v| {
                    v.voucher_did == vouch.voucher_did && v.vouched_dids == vouch.vouched_dids
                })
                .map(|v| v.vouch_id.clone())
        });
        let Some(id) = existing else {
            return self.add(now, vouch).map(|()| VouchAdmission::Added);
        };
        let held = self.vouches.get_mut(&id).expect("indexed vouch is held");
        let before = vouch_bytes(held);
        let after = before - held.reason.len() - held.pod_id.as_ref().map_or(0, String::len)
            + vouch.reason.len()
            + vouch.pod_id.as_ref().map_or(0, String::len);
        if self.bytes - before + after > self.byte_capacity {
            self.refused += 1;
            return Err(VouchError::FullBytes {
                byte_capacity: self.byte_capacity,
            });
        }
        held.expires_at = vouch.expires_at;
        held.voucher_trust = vouch.voucher_trust;
        held.vouch_factor = vouch.vouch_factor;
        held.pod_id = vouch.pod_id;
        held.reason = vouch.reason;
        self.bytes = self.bytes - before + vouch_bytes(held);
        self.refreshed += 1;
        Ok(VouchAdmission::Refreshed(id))
    }

    /// Registers a vouch. When full, expired vouches are purged first; if
    /// still full the vouch is refused and counted.
    pub fn add(&mut self, now: Timestamp, vouch: Vouch) -> Result<(), VouchError> {
        if vouch.vouched_dids.len() > MAX_DIDS_PER_VOUCH {
            return Err(VouchError::TooManyDids {
                count: vouch.vouched_dids.len(),
            });
        }
        if self.vouches.contains_key(&vouch.vouch_id) {
            return Err(VouchError::Duplicate(vouch.vouch_id));
        }
        let bytes = vouch_bytes(&vouch);
        if self.vouches.len() >= self.capacity || self.bytes + bytes > self.byte_capacity {
            self.purge_expired(now);
            if self.vouches.len() >= self.capacity {
                self.refused += 1;
                return Err(VouchError::Full {
                    capacity: self.capacity,
                });
            }
            if self.bytes + bytes > self.byte_capacity {
                self.refused += 1;
                return Err(VouchError::FullBytes {
                    byte_capacity: self.byte_capacity,
                });
            }
        }
        self.bytes += bytes;
        for did in &vouch.vouched_dids {
            let ids = self.by_did.entry(did.clone()).or_default();
            if !ids.contains(&vouch.vouch_id) {
                ids.push(vouch.vouch_id.clone());
            }
        }
        self.vouches.insert(vouch.vouch_id.clone(), vouch);
        Ok(())
    }

    /// Removes a vouch (e.g. its voucher was compromised); returns it.
    pub fn revoke(&mut self, vouch_id: &str) -> Option<Vouch> {
        let vouch = self.vouches.remove(vouch_id)?;
        self.bytes -= vouch_bytes(&vouch);
        for did in &vouch.vouched_dids {
            if let Some(ids) = self.by_did.get_mut(did) {
                ids.retain(|id| id != vouch_id);
                if ids.is_empty() {
                    self.by_did.remove(did);
                }
            }
        }
        Some(vouch)
    }

    /// Drops every vouch expired at `now`; returns how many.
    pub fn purge_expired(&mut self, now: Timestamp) -> usize {
        let expired: Vec<String> = self
            .vouches
            .values()
            .filter(|v| v.is_expired(now))
            .map(|v| v.vouch_id.clone())
            .collect();
        for id in &expired {
            self.revoke(id);
        }
        expired.len()
    }

    /// A vouch by id.
    pub fn get(&self, vouch_id: &str) -> Option<&Vouch> {
        self.vouches.get(vouch_id)
    }

    /// The unexpired vouches naming `did`, in the order they were added.
    pub fn active_for<'a>(
        &'a self,
        now: Timestamp,
        did: &str,
    ) -> impl Iterator<Item = &'a Vouch> + 'a {
        self.by_did
            .get(did)
            .into_iter()
            .flatten()
            .filter_map(|id| self.vouches.get(id))
            .filter(move |v| !v.is_expired(now))
    }

    /// The highest computed trust among the unexpired vouches naming `did`,
    /// with the number of those vouches; `None` when there is no vouch or
    /// the highest trust is not above zero (as in the reference).
    pub fn trust_for(&self, now: Timestamp, did: &str) -> Option<(f64, usize)> {
        let (best, count) = self
            .active_for(now, did)
            .fold((0.0f64, 0usize), |(best, n), v| {
                (best.max(v.computed_trust()), n + 1)
            });
        (best > 0.0).then_some((best, count))
    }

    /// Counts, with `active_vouches` as of `now`.
    pub fn stats(&self, now: Timestamp) -> VouchStats {
        VouchStats {
            total_vouches: self.vouches.len(),
            active_vouches: self.vouches.values().filter(|v| !v.is_expired(now)).count(),
            vouched_devices: self.by_did.len(),
            refused: self.refused,
            bytes: self.bytes,
            refreshed: self.refreshed,
        }
    }

    /// Vouches refused because the registry was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// How many vouches are held.
    pub fn len(&self) -> usize {
        self.vouches.len()
    }

    /// Whether no vouch is held.
    pub fn is_empty(&self) -> bool {
        self.vouches.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    const NOW: Timestamp = Timestamp::from_secs(1_790_000_000);

    fn vouch(
        id: &str,
        trust: f64,
        factor: f64,
        dids: &[&str],
        expires_at: Option<Timestamp>,
    ) -> Vouch {
        Vouch {
            vouch_id: id.into(),
            voucher_did: "jis:home:hub".into(),
            voucher_trust: trust,
            vouched_dids: dids.iter().map(|d| d.to_string()).collect(),
            vouch_factor: factor,
            pod_id: None,
            reason: String::new(),
            created_at: NOW,
            expires_at,
            tibet_token_id: None,
            signature: String::new(),
        }
    }

    #[test]
    fn highest_unexpired_wins_and_counts() {
        let mut r = VouchRegistry::default();
        r.add(NOW, vouch("v1", 0.9, 0.7, &["jis:s1", "jis:s2"], None))
            .unwrap();
        r.add(
            NOW,
            vouch(
                "v2",
                1.0,
                0.8,
                &["jis:s1"],
                Some(NOW + Duration::from_secs(60)),
            ),
        )
        .unwrap();
        assert_eq!(r.trust_for(NOW, "jis:s1"), Some((0.8, 2)));
        assert_eq!(r.trust_for(NOW, "jis:s2"), Some((0.9 * 0.7, 1)));
        assert_eq!(r.trust_for(NOW, "jis:s2").unwrap().0, 0.63);
        // At the expiry instant still valid, one microsecond later not.
        let at = NOW + Duration::from_secs(60);
        assert_eq!(r.trust_for(at, "jis:s1"), Some((0.8, 2)));
        let after = at + Duration::from_micros(1);
        assert_eq!(r.trust_for(after, "jis:s1"), Some((0.63, 1)));
        assert_eq!(
            r.stats(after),
            VouchStats {
                total_vouches: 2,
                active_vouches: 1,
                vouched_devices: 2,
                refused: 0,
                bytes: r.stats(after).bytes,
                refreshed: 0,
            }
        );
        assert_eq!(r.trust_for(NOW, "jis:nobody"), None);
    }

    #[test]
    fn revoke_removes_trust() {
        let mut r = VouchRegistry::default();
        r.add(NOW, vouch("v1", 0.9, 0.7, &["jis:s1"], None))
            .unwrap();
        assert!(r.revoke("v1").is_some());
        assert!(r.revoke("v1").is_none());
        assert_eq!(r.trust_for(NOW, "jis:s1"), None);
        assert_eq!(r.stats(NOW).vouched_devices, 0);
    }

    #[test]
    fn zero_trust_vouch_is_no_vouch() {
        let mut r = VouchRegistry::default();
        r.add(NOW, vouch("v0", 0.9, 0.0, &["jis:s1"], None))
            .unwrap();
        assert_eq!(r.trust_for(NOW, "jis:s1"), None);
    }

    #[test]
    fn bounded_purges_expired_then_refuses() {
        let mut r = VouchRegistry::new(2);
        let soon = Some(NOW + Duration::from_secs(1));
        r.add(NOW, vouch("v1", 0.9, 0.7, &["a"], soon)).unwrap();
        r.add(NOW, vouch("v2", 0.9, 0.7, &["b"], None)).unwrap();
        assert_eq!(
            r.add(NOW, vouch("v3", 0.9, 0.7, &["c"], None)),
            Err(VouchError::Full { capacity: 2 })
        );
        assert_eq!(r.refused(), 1);
        // After v1 expired there is room.
        r.add(
            NOW + Duration::from_secs(2),
            vouch("v3", 0.9, 0.7, &["c"], None),
        )
        .unwrap();
        assert!(r.get("v1").is_none() && r.len() == 2);
        assert!(matches!(
            r.add(NOW, vouch("v3", 0.9, 0.7, &[], None)),
            Err(VouchError::Duplicate(_))
        ));
        let many: Vec<String> = (0..=MAX_DIDS_PER_VOUCH).map(|i| i.to_string()).collect();
        let mut big = vouch("big", 0.9, 0.7, &[], None);
        big.vouched_dids = many;
        assert!(matches!(
            r.add(NOW, big),
            Err(VouchError::TooManyDids { .. })
        ));
    }

    #[test]
    fn refresh_keeps_one_vouch_per_voucher_and_dids() {
        let mut r = VouchRegistry::default();
        let first = vouch(
            "v1",
            0.9,
            0.7,
            &["jis:s1"],
            Some(NOW + Duration::from_secs(10)),
        );
        assert_eq!(r.refresh_or_add(NOW, first), Ok(VouchAdmission::Added));
        let bytes = r.stats(NOW).bytes;
        let later = Some(NOW + Duration::from_secs(100));
        let again = vouch("v2", 0.8, 0.7, &["jis:s1"], later);
        assert_eq!(
            r.refresh_or_add(NOW, again),
            Ok(VouchAdmission::Refreshed("v1".into()))
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r.get("v1").unwrap().expires_at, later);
        assert_eq!(r.stats(NOW).bytes, bytes);
        assert_eq!(r.stats(NOW).refreshed, 1);
        // Another voucher, or other DIDs, is another vouch.
        let mut other = vouch("v3", 0.9, 0.7, &["jis:s1"], None);
        other.voucher_did = "jis:other:hub".into();
        assert_eq!(r.refresh_or_add(NOW, other), Ok(VouchAdmission::Added));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn bounded_in_bytes() {
        let mut r = VouchRegistry::with_byte_capacity(1_000_000, 64 * 1024);
        let long = "d".repeat(256);
        let mut added = 0;
        for i in 0..1000 {
            let did = format!("{long}{i}");
            if r.add(NOW, vouch(&format!("v{i}"), 0.9, 0.7, &[&did], None))
                .is_ok()
            {
                added += 1;
            }
        }
        let s = r.stats(NOW);
        assert!(s.bytes <= 64 * 1024, "{s:?}");
        assert!((60..120).contains(&added), "{added}");
        assert_eq!(s.refused, 1000 - added);
        assert_eq!(
            r.add(NOW, vouch("x", 0.9, 0.7, &[&long], None)),
            Err(VouchError::FullBytes {
                byte_capacity: 64 * 1024
            })
        );
        // Revoking gives the bytes back.
        for i in 0..added {
            r.revoke(&format!("v{i}"));
        }
        assert_eq!(r.stats(NOW).bytes, 0);
    }

    #[test]
    fn serializes_like_reference_dict() {
        let v = vouch("vouch_1", 0.9, 0.7, &["jis:s1"], None);
        let json = serde_json::to_value(&v).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "vouch_id",
                "voucher_did",
                "voucher_trust",
                "vouched_dids",
                "vouch_factor",
                "computed_trust",
                "pod_id",
                "reason",
                "created_at",
                "expires_at",
                "tibet_token_id"
            ]
        );
        assert_eq!(json["created_at"], NOW.to_iso());
        assert!(json["expires_at"].is_null());
        assert_eq!(json["vouched_dids"][0], "jis:s1");
        assert_eq!(json["computed_trust"], 0.63);
        let signed = Vouch {
            signature: "sig".into(),
            ..v
        };
        assert_eq!(serde_json::to_value(&signed).unwrap()["signature"], "sig");
    }
}
