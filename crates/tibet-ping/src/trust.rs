//! Sender trust: explicitly set scores win, else the best vouch, else zero;
//! and the `fira_breakdown` that explains the score on the wire.

use alloc::borrow::ToOwned;

use crate::collections::HashMap;

use compact_str::CompactString;

use serde::Serialize;
use serde_json::Value;

use crate::packet::JsonMap;
use crate::time::Timestamp;
use crate::vouch::VouchRegistry;

/// Where a trust score came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustSource {
    /// Set explicitly for this DID.
    Known,
    /// Inherited from a vouch.
    Vouched,
    /// Nothing known: 0.0.
    Unknown,
}

impl TrustSource {
    /// The wire spelling: `known`, `vouched`, `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TrustSource::Known => "known",
            TrustSource::Vouched => "vouched",
            TrustSource::Unknown => "unknown",
        }
    }
}

/// A sender's trust and how it was found.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TrustAssessment {
    /// The score, 0..=1.
    pub score: f64,
    /// Where it came from.
    pub source: TrustSource,
    /// For vouched trust: how many unexpired vouches name the DID.
    pub vouch_count: Option<usize>,
}

impl TrustAssessment {
    /// Nothing known.
    pub const UNKNOWN: TrustAssessment = TrustAssessment {
        score: 0.0,
        source: TrustSource::Unknown,
        vouch_count: None,
    };

    /// The `fira_breakdown` object of a response, keyed exactly as the
    /// reference writes it: `score`, `source`, and `vouch_count` for vouched
    /// trust only.
    pub fn fira_breakdown(&self) -> JsonMap {
        let mut m = JsonMap::with_capacity(3);
        m.insert("score".to_owned(), Value::from(self.score));
        m.insert("source".to_owned(), Value::from(self.source.as_str()));
        if let Some(n) = self.vouch_count {
            m.insert("vouch_count".to_owned(), Value::from(n));
        }
        m
    }
}

/// Clamps a trust value into 0..=1; NaN becomes 0.0 (fail closed).
pub fn clamp_trust(trust: f64) -> f64 {
    if trust.is_nan() {
        0.0
    } else {
        trust.clamp(0.0, 1.0)
    }
}

/// Explicit per-DID trust scores.
///
/// Looked up for every packet, so a hub with thousands of peers pays one
/// cache miss here, not two: DIDs up to 24 bytes sit inline in the table
/// (no pointer to follow to compare a key), hashed by a fast hasher with a
/// random seed (keys are set by the operator, lookups come from the network).
#[derive(Debug, Default, Clone)]
pub struct TrustStore {
    explicit: HashMap<CompactString, f64, foldhash::fast::RandomState>,
    /// Bumped by every change, so a copy of a score can tell it is current.
    generation: u64,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `did`'s trust, clamped into 0..=1.
    pub fn set(&mut self, did: &str, trust: f64) {
        self.generation += 1;
        let t = clamp_trust(trust);
        match self.explicit.get_mut(did) {
            Some(v) => *v = t,
            None => {
                self.explicit.insert(CompactString::from(did), t);
            }
        }
    }

    /// Forgets `did`'s explicit trust; returns it.
    pub fn remove(&mut self, did: &str) -> Option<f64> {
        self.generation += 1;
        self.explicit.remove(did)
    }

    /// Changes so far: a score read at one generation is still the score
    /// while the generation is the same.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The explicitly set trust of `did`.
    pub fn get(&self, did: &str) -> Option<f64> {
        self.explicit.get(did).copied()
    }

    /// How many DIDs have explicit trust.
    pub fn len(&self) -> usize {
        self.explicit.len()
    }

    /// Whether no DID has explicit trust.
    pub fn is_empty(&self) -> bool {
        self.explicit.is_empty()
    }

    /// The trust of `did` at `now`: explicit, else the best unexpired vouch,
    /// else unknown (0.0).
    pub fn assess(&self, now: Timestamp, did: &str, vouches: &VouchRegistry) -> TrustAssessment {
        if let Some(score) = self.get(did) {
            return TrustAssessment {
                score,
                source: TrustSource::Known,
                vouch_count: None,
            };
        }
        match vouches.trust_for(now, did) {
            Some((score, n)) => TrustAssessment {
                score,
                source: TrustSource::Vouched,
                vouch_count: Some(n),
            },
            None => TrustAssessment::UNKNOWN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vouch::Vouch;

    const NOW: Timestamp = Timestamp::from_secs(1_790_000_000);

    fn registry_with(did: &str) -> VouchRegistry {
        let mut r = VouchRegistry::default();
        let v = Vouch {
            vouch_id: "vouch_1".into(),
            voucher_did: "jis:hub".into(),
            voucher_trust: 0.9,
            vouched_dids: vec![did.into()],
            vouch_factor: 0.7,
            pod_id: None,
            reason: String::new(),
            created_at: NOW,
            expires_at: None,
            tibet_token_id: None,
            signature: String::new(),
        };
        r.add(NOW, v).unwrap();
        r
    }

    #[test]
    fn clamps() {
        let mut s = TrustStore::new();
        s.set("a", 1.5);
        s.set("b", -0.2);
        s.set("c", f64::NAN);
        s.set("d", 0.42);
        assert_eq!(
            (s.get("a"), s.get("b"), s.get("c"), s.get("d")),
            (Some(1.0), Some(0.0), Some(0.0), Some(0.42))
        );
    }

    #[test]
    fn explicit_beats_vouch_beats_unknown() {
        let r = registry_with("jis:s");
        let mut s = TrustStore::new();
        let vouched = s.assess(NOW, "jis:s", &r);
        assert_eq!(
            vouched,
            TrustAssessment {
                score: 0.63,
                source: TrustSource::Vouched,
                vouch_count: Some(1)
            }
        );
        s.set("jis:s", 0.2);
        assert_eq!(s.assess(NOW, "jis:s", &r).source, TrustSource::Known);
        assert_eq!(s.assess(NOW, "jis:s", &r).score, 0.2);
        assert_eq!(s.assess(NOW, "jis:x", &r), TrustAssessment::UNKNOWN);
        assert_eq!(s.remove("jis:s"), Some(0.2));
        assert_eq!(s.assess(NOW, "jis:s", &r).source, TrustSource::Vouched);
    }

    #[test]
    fn fira_breakdown_keys() {
        let known = TrustAssessment {
            score: 0.9,
            source: TrustSource::Known,
            vouch_count: None,
        };
        assert_eq!(
            serde_json::to_string(&known.fira_breakdown()).unwrap(),
            r#"{"score":0.9,"source":"known"}"#
        );
        let vouched = TrustAssessment {
            score: 0.63,
            source: TrustSource::Vouched,
            vouch_count: Some(2),
        };
        assert_eq!(
            serde_json::to_string(&vouched.fira_breakdown()).unwrap(),
            r#"{"score":0.63,"source":"vouched","vouch_count":2}"#
        );
        assert_eq!(
            serde_json::to_string(&TrustAssessment::UNKNOWN.fira_breakdown()).unwrap(),
            r#"{"score":0.0,"source":"unknown"}"#
        );
    }
}
