//! The wire types: [`PingPacket`], [`PingResponse`] and their enums, with the
//! exact JSON/msgpack mapping of the Python reference (docs/PROTOCOL.md §2 and §3).

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::time::Timestamp;

/// The target DID that addresses every node.
pub const BROADCAST: &str = "broadcast";

/// A JSON object: the shape of every `payload` on the wire.
pub type JsonMap = Map<String, Value>;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }
    };
}

/// A string that names no variant of a wire enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} value {value:?}")]
pub struct UnknownVariant {
    /// The enum's name.
    pub kind: &'static str,
    /// The text that did not match.
    pub value: String,
}

string_enum! {
    /// What a ping is for.
    PingType {
        /// Who is there, what can you do?
        Discover = "discover",
        /// I want something from you.
        Intent = "intent",
        /// I am alive.
        Heartbeat = "heartbeat",
        /// Forward this through the mesh.
        Relay = "relay",
    }
}

string_enum! {
    /// How a packet is routed.
    RoutingMode {
        /// Point to point.
        Direct = "direct",
        /// Multi-hop through the mesh.
        Mesh = "mesh",
        /// Every node in the pod or on the LAN.
        Broadcast = "broadcast",
    }
}

string_enum! {
    /// The airlock's decision on a ping.
    PingDecision {
        /// GROEN: allowed.
        Accept = "accept",
        /// GEEL: waiting for human review.
        Pending = "pending",
        /// ROOD: dropped silently.
        Reject = "reject",
    }
}

string_enum! {
    /// The three trust zones.
    AirlockZone {
        /// Trusted: auto-accept.
        Groen = "GROEN",
        /// In between: pending human review.
        Geel = "GEEL",
        /// Untrusted: silent drop.
        Rood = "ROOD",
    }
}

impl AirlockZone {
    /// The decision this zone implies.
    pub const fn decision(self) -> PingDecision {
        match self {
            AirlockZone::Groen => PingDecision::Accept,
            AirlockZone::Geel => PingDecision::Pending,
            AirlockZone::Rood => PingDecision::Reject,
        }
    }
}

impl Default for PingType {
    /// [`PingType::Intent`], the reference's default for `ping()`.
    fn default() -> Self {
        PingType::Intent
    }
}

impl Default for RoutingMode {
    /// [`RoutingMode::Direct`], the reference's default for `ping()`.
    fn default() -> Self {
        RoutingMode::Direct
    }
}

/// Packet priority, written on the wire as the integers 3, 2 and 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    /// 1: batch at the next heartbeat.
    Lazy = 1,
    /// 2: standard operations.
    #[default]
    Normal = 2,
    /// 3: safety critical.
    Urgent = 3,
}

impl Priority {
    /// Every value, highest first.
    pub const ALL: &'static [Priority] = &[Priority::Urgent, Priority::Normal, Priority::Lazy];

    /// The wire integer.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// From the wire integer.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Priority::Lazy),
            2 => Some(Priority::Normal),
            3 => Some(Priority::Urgent),
            _ => None,
        }
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.as_u8())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        u8::try_from(v)
            .ok()
            .and_then(Priority::from_u8)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("invalid priority {v}, expected 1, 2 or 3"))
            })
    }
}

/// `max_hops` of a packet that does not say.
pub(crate) const DEFAULT_MAX_HOPS: u32 = 5;

fn default_max_hops() -> u32 {
    DEFAULT_MAX_HOPS
}

/// An intent-based ping: who I am, what I want, and why (docs/PROTOCOL.md §2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PingPacket {
    /// `ping_` + 16 lowercase hex.
    pub packet_id: String,
    /// The sender's JIS DID.
    pub source_did: String,
    /// The receiver's DID, or [`BROADCAST`].
    pub target_did: String,
    /// What the ping is for.
    pub ping_type: PingType,
    /// Urgency.
    pub priority: Priority,
    /// How it is routed.
    pub routing_mode: RoutingMode,
    /// What the sender wants, e.g. `temperature.read`.
    pub intent: String,
    /// The human "why" (ERACHTER).
    pub purpose: String,
    /// Intent arguments.
    #[serde(default, serialize_with = "crate::codec::native::serialize_map")]
    pub payload: JsonMap,
    /// Pod context.
    #[serde(default)]
    pub pod_id: Option<String>,
    /// Station context.
    #[serde(default)]
    pub station_id: Option<String>,
    /// Hops travelled so far.
    #[serde(default)]
    pub hop_count: u32,
    /// Hop limit the sender asks for.
    #[serde(default = "default_max_hops")]
    pub max_hops: u32,
    /// Replay nonce: 32 lowercase hex.
    #[serde(default)]
    pub nonce: String,
    /// ISO 8601 send time, kept as sent; see [`PingPacket::sent_at`].
    #[serde(default)]
    pub timestamp: String,
    /// Link to a provenance token.
    #[serde(default)]
    pub tibet_token_id: Option<String>,
    /// DID of the hub vouching for the sender.
    #[serde(default)]
    pub vouched_by: Option<String>,
    /// The voucher's signature.
    #[serde(default)]
    pub vouch_signature: Option<String>,
    /// Signature of the canonical packet (empty when unsigned).
    #[serde(default)]
    pub signature: String,
}

impl PingPacket {
    /// A direct, normal-priority intent ping with the wire defaults for
    /// everything else: empty payload, no pod or station, hop 0 of 5, empty
    /// nonce, timestamp and signature, no token or vouch.
    ///
    /// Change fields with struct update syntax:
    /// `PingPacket { max_hops: 2, ..PingPacket::new(..) }`.
    /// [`PingNode::ping`](crate::PingNode::ping) builds a ready-to-send one.
    pub fn new(
        packet_id: impl Into<String>,
        source_did: impl Into<String>,
        target_did: impl Into<String>,
        intent: impl Into<String>,
        purpose: impl Into<String>,
    ) -> Self {
        PingPacket {
            packet_id: packet_id.into(),
            source_did: source_did.into(),
            target_did: target_did.into(),
            ping_type: PingType::Intent,
            priority: Priority::Normal,
            routing_mode: RoutingMode::Direct,
            intent: intent.into(),
            purpose: purpose.into(),
            payload: JsonMap::new(),
            pod_id: None,
            station_id: None,
            hop_count: 0,
            max_hops: default_max_hops(),
            nonce: String::new(),
            timestamp: String::new(),
            tibet_token_id: None,
            vouched_by: None,
            vouch_signature: None,
            signature: String::new(),
        }
    }

    /// The send time, if the timestamp parses.
    pub fn sent_at(&self) -> Option<Timestamp> {
        Timestamp::parse(&self.timestamp)
    }

    /// Whether this packet addresses every node.
    pub fn is_broadcast(&self) -> bool {
        self.target_did == BROADCAST
    }
}

/// The answer to a [`PingPacket`] (docs/PROTOCOL.md §3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PingResponse {
    /// `resp_` + 16 lowercase hex.
    pub response_id: String,
    /// The packet id answered.
    pub in_response_to: String,
    /// Who answers.
    pub responder_did: String,
    /// The airlock's decision.
    pub decision: PingDecision,
    /// Response data.
    #[serde(default, serialize_with = "crate::codec::native::serialize_map")]
    pub payload: JsonMap,
    /// What the responder can do.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The trust the responder computed for the sender.
    #[serde(default)]
    pub trust_score: f64,
    /// How the trust was computed: `score`, `source`, `vouch_count`.
    #[serde(default, serialize_with = "crate::codec::native::serialize_map")]
    pub fira_breakdown: JsonMap,
    /// Link to a provenance token.
    #[serde(default)]
    pub tibet_token_id: Option<String>,
    /// ISO 8601 time of the answer.
    #[serde(default)]
    pub timestamp: String,
    /// The responder's processing time in milliseconds (the wire name says
    /// RTT; it is not the round trip a sender measures).
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    /// The zone the ping landed in.
    #[serde(default = "default_zone")]
    pub airlock_zone: AirlockZone,
    /// Name of the airlock rule that decided, if any.
    #[serde(default)]
    pub applied_rule: Option<String>,
    /// Standard base64 of the responder's Ed25519 signature over the
    /// response minus this field (docs/PROTOCOL.md section 6); empty when
    /// unsigned, and then left out of the frame, as the reference sends it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

fn default_zone() -> AirlockZone {
    AirlockZone::Rood
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_spell_like_the_reference() {
        assert_eq!(
            serde_json::to_string(&PingType::Heartbeat).unwrap(),
            "\"heartbeat\""
        );
        assert_eq!(
            serde_json::to_string(&AirlockZone::Geel).unwrap(),
            "\"GEEL\""
        );
        assert_eq!(serde_json::to_string(&Priority::Urgent).unwrap(), "3");
        assert_eq!(
            serde_json::from_str::<Priority>("1").unwrap(),
            Priority::Lazy
        );
        assert!(serde_json::from_str::<Priority>("4").is_err());
        assert_eq!("mesh".parse::<RoutingMode>(), Ok(RoutingMode::Mesh));
        assert!("MESH".parse::<RoutingMode>().is_err());
    }

    #[test]
    fn decodes_minimal_packet_with_defaults() {
        let p: PingPacket = serde_json::from_str(
            r#"{"packet_id":"ping_0011223344556677","source_did":"jis:a","target_did":"jis:b",
                "ping_type":"intent","priority":2,"routing_mode":"direct","intent":"x","purpose":"y",
                "extension":{"ignored":true}}"#,
        )
        .unwrap();
        assert_eq!(p.max_hops, 5);
        assert_eq!(p.hop_count, 0);
        assert!(p.payload.is_empty() && p.nonce.is_empty() && p.signature.is_empty());
        assert_eq!(p.sent_at(), None);
    }
}
