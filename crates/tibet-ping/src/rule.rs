//! Airlock rules: patterns over a packet and its sender's trust that decide
//! the zone before the trust thresholds are consulted.

use alloc::string::String;
use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::packet::{AirlockZone, PingPacket, PingType};

/// A simple glob over a string, as the reference defines it: `*` matches
/// everything, `*mid*` (more than two characters) a substring, `pre*` a
/// prefix, `*suf` a suffix, anything else the exact text. Inner `*` are
/// literal characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    kind: GlobKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GlobKind {
    Any,
    Contains,
    Prefix,
    Suffix,
    Exact,
}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: impl Into<String>) -> Self {
        let text = pattern.into();
        let kind = if text == "*" {
            GlobKind::Any
        } else if text.len() > 2 && text.starts_with('*') && text.ends_with('*') {
            GlobKind::Contains
        } else if text.ends_with('*') {
            GlobKind::Prefix
        } else if text.starts_with('*') {
            GlobKind::Suffix
        } else {
            GlobKind::Exact
        };
        Glob { text, kind }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        let t = self.text.as_str();
        match self.kind {
            GlobKind::Any => true,
            GlobKind::Contains => value.contains(&t[1..t.len() - 1]),
            GlobKind::Prefix => value.starts_with(&t[..t.len() - 1]),
            GlobKind::Suffix => value.ends_with(&t[1..]),
            GlobKind::Exact => value == t,
        }
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

impl From<&str> for Glob {
    fn from(s: &str) -> Self {
        Glob::new(s)
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Glob::new)
    }
}

/// What a rule looks at; a rule matches when every key that is set matches.
/// An empty pattern matches every packet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulePattern {
    /// Glob over the sender's DID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_did: Option<Glob>,
    /// Glob over the intent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<Glob>,
    /// Exact pod id (a packet without one never matches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_id: Option<String>,
    /// Exact ping type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_type: Option<PingType>,
    /// Sender trust must be at least this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_trust: Option<f64>,
}

impl RulePattern {
    /// Whether `packet`, from a sender with `trust`, matches every set key.
    pub fn matches(&self, packet: &PingPacket, trust: f64) -> bool {
        self.source_did.as_ref().is_none_or(|g| g.matches(&packet.source_did))
            && self.intent.as_ref().is_none_or(|g| g.matches(&packet.intent))
            && self.pod_id.as_ref().is_none_or(|p| packet.pod_id.as_deref() == Some(p.as_str()))
            && self.ping_type.is_none_or(|t| packet.ping_type == t)
            // As in the reference (`trust < min` fails), a NaN minimum never blocks.
            && self.min_trust.is_none_or(|m| m.is_nan() || trust >= m)
    }
}

/// The default rule priority, as in the reference.
pub const DEFAULT_RULE_PRIORITY: i32 = 50;

fn default_priority() -> i32 {
    DEFAULT_RULE_PRIORITY
}

/// A pattern-based decision: when it matches, the packet lands in `zone`.
/// Rules are checked highest priority first; equal priorities in the order
/// they were added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirlockRule {
    /// Stable identifier.
    pub rule_id: String,
    /// Human name, reported as `applied_rule` in responses.
    pub name: String,
    /// What the rule matches.
    pub pattern: RulePattern,
    /// The zone (and so the decision) for matching packets.
    pub zone: AirlockZone,
    /// Higher is checked first; default 50.
    #[serde(default = "default_priority")]
    pub priority: i32,
}

impl AirlockRule {
    /// A rule with the default priority (50).
    pub fn new(
        rule_id: impl Into<String>,
        name: impl Into<String>,
        pattern: RulePattern,
        zone: AirlockZone,
    ) -> Self {
        AirlockRule {
            rule_id: rule_id.into(),
            name: name.into(),
            pattern,
            zone,
            priority: DEFAULT_RULE_PRIORITY,
        }
    }

    /// The same rule with another priority.
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Whether the rule applies to `packet` from a sender with `trust`.
    pub fn matches(&self, packet: &PingPacket, trust: f64) -> bool {
        self.pattern.matches(packet, trust)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn packet(source: &str, intent: &str) -> PingPacket {
        PingPacket::new(
            "ping_0000000000000001",
            source,
            "jis:home:hub",
            intent,
            "test",
        )
    }

    #[test]
    fn glob_cases() {
        let g = |p: &str, v: &str| Glob::new(p).matches(v);
        assert!(g("*", "") && g("*", "anything"));
        assert!(g("temp*", "temperature.read") && !g("temp*", "xtemp"));
        assert!(g("*.read", "temperature.read") && !g("*.read", "temperature.write"));
        assert!(g("*ture*", "temperature.read") && !g("*ture*", "door.unlock"));
        assert!(g("door.unlock", "door.unlock") && !g("door.unlock", "door.unlock2"));
        // Inner stars are literal.
        assert!(g("a*b", "a*b") && !g("a*b", "axb"));
        // "**" is the reference's prefix rule with the literal prefix "*".
        assert!(g("**", "*x") && !g("**", "x"));
        // "*" prefix with empty rest: "*x*" needs "x" somewhere.
        assert!(g("*x*", "x") && !g("*x*", "y"));
    }

    #[test]
    fn pattern_keys() {
        let mut p = packet("jis:home:sensor", "temperature.read");
        let pat = RulePattern {
            source_did: Some("jis:home:*".into()),
            intent: Some("temperature.*".into()),
            pod_id: Some("kitchen".into()),
            ping_type: Some(PingType::Intent),
            min_trust: Some(0.5),
        };
        assert!(
            !pat.matches(&p, 0.9),
            "packet without pod_id never matches a pod_id key"
        );
        p.pod_id = Some("kitchen".into());
        assert!(pat.matches(&p, 0.9));
        assert!(pat.matches(&p, 0.5), "min_trust is inclusive");
        assert!(!pat.matches(&p, 0.49));
        p.ping_type = PingType::Heartbeat;
        assert!(!pat.matches(&p, 0.9));
        assert!(
            RulePattern::default().matches(&p, 0.0),
            "empty pattern matches all"
        );
    }

    #[test]
    fn rule_serde_round_trip() {
        let rule = AirlockRule::new(
            "r1",
            "door needs human",
            RulePattern {
                intent: Some("door.*".into()),
                ..Default::default()
            },
            AirlockZone::Geel,
        );
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(
            json,
            r#"{"rule_id":"r1","name":"door needs human","pattern":{"intent":"door.*"},"zone":"GEEL","priority":50}"#
        );
        let back: AirlockRule = serde_json::from_str(r#"{"rule_id":"r1","name":"door needs human","pattern":{"intent":"door.*"},"zone":"GEEL"}"#).unwrap();
        assert_eq!(back, rule);
        assert!(serde_json::from_str::<RulePattern>(r#"{"colour":"red"}"#).is_err());
    }

    /// The reference's definition, written naively for comparison.
    fn naive(value: &str, pattern: &str) -> bool {
        let chars: Vec<char> = pattern.chars().collect();
        let n = chars.len();
        if pattern == "*" {
            true
        } else if n > 2 && chars[0] == '*' && chars[n - 1] == '*' {
            let mid: String = chars[1..n - 1].iter().collect();
            value.contains(mid.as_str())
        } else if n >= 1 && chars[n - 1] == '*' {
            let pre: String = chars[..n - 1].iter().collect();
            value.starts_with(pre.as_str())
        } else if n >= 1 && chars[0] == '*' {
            let suf: String = chars[1..].iter().collect();
            value.ends_with(suf.as_str())
        } else {
            value == pattern
        }
    }

    proptest! {
        #[test]
        fn glob_agrees_with_naive_model(pattern in "[*ab.é]{0,6}", value in "[*ab.é]{0,8}") {
            prop_assert_eq!(Glob::new(pattern.as_str()).matches(&value), naive(&value, &pattern));
        }
    }
}
