//! Field-aware deserializers for [`PingPacket`] and [`PingResponse`], shared
//! by the JSON and msgpack paths.
//!
//! The derived `Deserialize` cannot say *which* field had the wrong type, and
//! reports missing fields only as text. These visitors read the map once,
//! match keys without allocating, skip unknown keys (as the reference does),
//! refuse duplicate keys, and note the field at fault in an [`IssueCell`], so
//! the codec can return a typed [`DecodeError`](super::DecodeError).

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::payload::MapSeed;
use crate::packet::{
    AirlockZone, JsonMap, PingDecision, PingPacket, PingResponse, PingType, Priority, RoutingMode,
};

/// What the visitor knows about a failure beyond the format's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Issue {
    /// A required field is absent.
    Missing(&'static str),
    /// A known field appears twice.
    Duplicate(&'static str),
    /// Reading this field's value failed.
    InField(&'static str),
    /// A string field is longer than its cap (field, length in bytes, cap).
    TooLong(&'static str, usize, usize),
}

/// Side channel from the visitor to the codec.
pub(super) type IssueCell = Cell<Option<Issue>>;

/// Wire names of a packet's fields; the first eight are required.
const PACKET_FIELDS: &[&str] = &[
    "packet_id",
    "source_did",
    "target_did",
    "ping_type",
    "priority",
    "routing_mode",
    "intent",
    "purpose",
    "payload",
    "pod_id",
    "station_id",
    "hop_count",
    "max_hops",
    "nonce",
    "timestamp",
    "tibet_token_id",
    "vouched_by",
    "vouch_signature",
    "signature",
];

/// Wire names of a response's fields; the first four are required.
const RESPONSE_FIELDS: &[&str] = &[
    "response_id",
    "in_response_to",
    "responder_did",
    "decision",
    "payload",
    "capabilities",
    "trust_score",
    "fira_breakdown",
    "tibet_token_id",
    "timestamp",
    "rtt_ms",
    "airlock_zone",
    "applied_rule",
    "signature",
];

/// Maps a key to its index in a field table (`None` for unknown keys).
///
/// The lookup is a `match` the compiler turns into a branch on the length
/// and a few byte compares, not a scan of the table (the scan was an eighth
/// of the cost of decoding a ping). `field_tables_agree_with_their_lookups`
/// checks that both say the same.
struct Key(fn(&str) -> Option<usize>);

fn packet_field(v: &str) -> Option<usize> {
    Some(match v {
        "packet_id" => 0,
        "source_did" => 1,
        "target_did" => 2,
        "ping_type" => 3,
        "priority" => 4,
        "routing_mode" => 5,
        "intent" => 6,
        "purpose" => 7,
        "payload" => 8,
        "pod_id" => 9,
        "station_id" => 10,
        "hop_count" => 11,
        "max_hops" => 12,
        "nonce" => 13,
        "timestamp" => 14,
        "tibet_token_id" => 15,
        "vouched_by" => 16,
        "vouch_signature" => 17,
        "signature" => 18,
        _ => return None,
    })
}

fn response_field(v: &str) -> Option<usize> {
    Some(match v {
        "response_id" => 0,
        "in_response_to" => 1,
        "responder_did" => 2,
        "decision" => 3,
        "payload" => 4,
        "capabilities" => 5,
        "trust_score" => 6,
        "fira_breakdown" => 7,
        "tibet_token_id" => 8,
        "timestamp" => 9,
        "rtt_ms" => 10,
        "airlock_zone" => 11,
        "applied_rule" => 12,
        "signature" => 13,
        _ => return None,
    })
}

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((self.0)(v))
    }
}

/// Reads a string and parses it with `FromStr`, without allocating.
struct Parse<T>(PhantomData<T>);

impl<T> Parse<T> {
    const NEW: Self = Parse(PhantomData);
}

impl<'de, T: FromStr> DeserializeSeed<'de> for Parse<T>
where
    T::Err: fmt::Display,
{
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<T: FromStr> Visitor<'_> for Parse<T>
where
    T::Err: fmt::Display,
{
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

/// Longest DID accepted in any DID field, in bytes.
pub const MAX_DID_LEN: usize = 256;
/// Longest `packet_id`, `response_id` or `in_response_to`, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest `nonce`, in bytes.
pub const MAX_NONCE_LEN: usize = 128;
/// Longest `intent`, in bytes.
pub const MAX_INTENT_LEN: usize = 256;
/// Longest `purpose`, in bytes (4 KiB).
pub const MAX_PURPOSE_LEN: usize = 4096;

/// Reads a string of at most `max` bytes; a longer one is refused before
/// anything is allocated for it, and noted as [`Issue::TooLong`].
struct Capped<'a> {
    cell: &'a IssueCell,
    field: &'static str,
    max: usize,
}

impl<'de> DeserializeSeed<'de> for Capped<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Capped<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string of at most {} bytes", self.max)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if v.len() > self.max {
            self.cell
                .set(Some(Issue::TooLong(self.field, v.len(), self.max)));
            return Err(E::custom("string too long"));
        }
        Ok(v.to_owned())
    }
}

/// Like [`Capped`], for a field that may be null.
struct CappedOpt<'a>(Capped<'a>);

impl<'de> DeserializeSeed<'de> for CappedOpt<'_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for CappedOpt<'_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "null or a string of at most {} bytes", self.0.max)
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// Records `issue` and passes `err` on; a length cap noted by [`Capped`]
/// is the more precise reason and is kept.
fn note<E>(cell: &IssueCell, issue: Issue, err: E) -> E {
    if !matches!(cell.get(), Some(Issue::TooLong(..))) {
        cell.set(Some(issue));
    }
    err
}

/// Reads keys until the next one of `fields`, skipping unknown keys and
/// refusing a field already marked in `seen`; `None` at the end of the map.
fn next_field<'de, A: MapAccess<'de>>(
    map: &mut A,
    fields: &'static [&'static str],
    lookup: fn(&str) -> Option<usize>,
    seen: &mut u32,
    cell: &IssueCell,
) -> Result<Option<usize>, A::Error> {
    while let Some(key) = map.next_key_seed(Key(lookup))? {
        let Some(i) = key else {
            map.next_value::<IgnoredAny>()?;
            continue;
        };
        if *seen & (1 << i) != 0 {
            let name = fields[i];
            return Err(note(
                cell,
                Issue::Duplicate(name),
                de::Error::duplicate_field(name),
            ));
        }
        *seen |= 1 << i;
        return Ok(Some(i));
    }
    Ok(None)
}

/// Unwraps a required field, or notes it as missing (named after the
/// variable, which is named after the wire field) and returns the error.
macro_rules! required {
    ($cell:expr, $v:ident) => {
        $v.ok_or_else(|| {
            let name = stringify!($v);
            note($cell, Issue::Missing(name), de::Error::missing_field(name))
        })?
    };
}

/// Deserializes a [`PingPacket`] from a map, noting failures in the cell.
pub(super) struct PacketSeed<'a>(pub(super) &'a IssueCell);

impl<'de> DeserializeSeed<'de> for PacketSeed<'_> {
    type Value = PingPacket;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PingPacket, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PacketSeed<'_> {
    type Value = PingPacket;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PingPacket map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PingPacket, A::Error> {
        let cell = self.0;
        let mut seen = 0u32;
        let (mut packet_id, mut source_did, mut target_did) = (None, None, None);
        let (mut ping_type, mut priority, mut routing_mode) = (None, None, None);
        let (mut intent, mut purpose) = (None, None);
        let mut payload = JsonMap::new();
        let (mut pod_id, mut station_id) = (None, None);
        let (mut hop_count, mut max_hops) = (0u32, 5u32);
        let (mut nonce, mut timestamp, mut signature) =
            (String::new(), String::new(), String::new());
        let (mut tibet_token_id, mut vouched_by, mut vouch_signature) = (None, None, None);

        while let Some(i) = next_field(&mut map, PACKET_FIELDS, packet_field, &mut seen, cell)? {
            let name = PACKET_FIELDS[i];
            let capped = |max| Capped {
                cell,
                field: name,
                max,
            };
            let read = match i {
                0 => map
                    .next_value_seed(capped(MAX_ID_LEN))
                    .map(|v| packet_id = Some(v)),
                1 => map
                    .next_value_seed(capped(MAX_DID_LEN))
                    .map(|v| source_did = Some(v)),
                2 => map
                    .next_value_seed(capped(MAX_DID_LEN))
                    .map(|v| target_did = Some(v)),
                3 => map
                    .next_value_seed(Parse::<PingType>::NEW)
                    .map(|v| ping_type = Some(v)),
                4 => map.next_value::<Priority>().map(|v| priority = Some(v)),
                5 => map
                    .next_value_seed(Parse::<RoutingMode>::NEW)
                    .map(|v| routing_mode = Some(v)),
                6 => map
                    .next_value_seed(capped(MAX_INTENT_LEN))
                    .map(|v| intent = Some(v)),
                7 => map
                    .next_value_seed(capped(MAX_PURPOSE_LEN))
                    .map(|v| purpose = Some(v)),
                8 => map.next_value_seed(MapSeed).map(|v| payload = v),
                9 => map.next_value().map(|v| pod_id = v),
                10 => map.next_value().map(|v| station_id = v),
                11 => map.next_value().map(|v| hop_count = v),
                12 => map.next_value().map(|v| max_hops = v),
                13 => map
                    .next_value_seed(capped(MAX_NONCE_LEN))
                    .map(|v| nonce = v),
                14 => map.next_value().map(|v| timestamp = v),
                15 => map.next_value().map(|v| tibet_token_id = v),
                16 => map
                    .next_value_seed(CappedOpt(capped(MAX_DID_LEN)))
                    .map(|v| vouched_by = v),
                17 => map.next_value().map(|v| vouch_signature = v),
                _ => map.next_value().map(|v| signature = v),
            };
            read.map_err(|e| note(cell, Issue::InField(name), e))?;
        }
        Ok(PingPacket {
            packet_id: required!(cell, packet_id),
            source_did: required!(cell, source_did),
            target_did: required!(cell, target_did),
            ping_type: required!(cell, ping_type),
            priority: required!(cell, priority),
            routing_mode: required!(cell, routing_mode),
            intent: required!(cell, intent),
            purpose: required!(cell, purpose),
            payload,
            pod_id,
            station_id,
            hop_count,
            max_hops,
            nonce,
            timestamp,
            tibet_token_id,
            vouched_by,
            vouch_signature,
            signature,
        })
    }
}

/// Deserializes a [`PingResponse`] from a map, noting failures in the cell.
pub(super) struct ResponseSeed<'a>(pub(super) &'a IssueCell);

impl<'de> DeserializeSeed<'de> for ResponseSeed<'_> {
    type Value = PingResponse;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PingResponse, D::Error> {
        d.deserialize_map(self)
    }
}

/// Reads a float field and refuses NaN and infinities (JSON cannot carry
/// them, so such a value could not be forwarded).
fn finite<E: de::Error>(v: f64) -> Result<f64, E> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(E::custom("expected a finite number"))
    }
}

impl<'de> Visitor<'de> for ResponseSeed<'_> {
    type Value = PingResponse;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PingResponse map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PingResponse, A::Error> {
        let cell = self.0;
        let mut seen = 0u32;
        let (mut response_id, mut in_response_to, mut responder_did) = (None, None, None);
        let mut decision = None;
        let (mut payload, mut fira_breakdown) = (JsonMap::new(), JsonMap::new());
        let mut capabilities = Vec::new();
        let mut trust_score = 0.0f64;
        let (mut tibet_token_id, mut applied_rule) = (None, None);
        let mut timestamp = String::new();
        let mut rtt_ms: Option<f64> = None;
        let mut airlock_zone = AirlockZone::Rood;
        let mut signature = String::new();

        while let Some(i) = next_field(&mut map, RESPONSE_FIELDS, response_field, &mut seen, cell)?
        {
            let name = RESPONSE_FIELDS[i];
            let capped = |max| Capped {
                cell,
                field: name,
                max,
            };
            let read = match i {
                0 => map
                    .next_value_seed(capped(MAX_ID_LEN))
                    .map(|v| response_id = Some(v)),
                1 => map
                    .next_value_seed(capped(MAX_ID_LEN))
                    .map(|v| in_response_to = Some(v)),
                2 => map
                    .next_value_seed(capped(MAX_DID_LEN))
                    .map(|v| responder_did = Some(v)),
                3 => map
                    .next_value_seed(Parse::<PingDecision>::NEW)
                    .map(|v| decision = Some(v)),
                4 => map.next_value_seed(MapSeed).map(|v| payload = v),
                5 => map.next_value().map(|v| capabilities = v),
                6 => map.next_value().and_then(finite).map(|v| trust_score = v),
                7 => map.next_value_seed(MapSeed).map(|v| fira_breakdown = v),
                8 => map.next_value().map(|v| tibet_token_id = v),
                9 => map.next_value().map(|v| timestamp = v),
                10 => map
                    .next_value::<Option<f64>>()
                    .and_then(|v| v.map(finite).transpose())
                    .map(|v| rtt_ms = v),
                11 => map
                    .next_value_seed(Parse::<AirlockZone>::NEW)
                    .map(|v| airlock_zone = v),
                12 => map.next_value().map(|v| applied_rule = v),
                _ => map.next_value().map(|v| signature = v),
            };
            read.map_err(|e| note(cell, Issue::InField(name), e))?;
        }
        Ok(PingResponse {
            response_id: required!(cell, response_id),
            in_response_to: required!(cell, in_response_to),
            responder_did: required!(cell, responder_did),
            decision: required!(cell, decision),
            payload,
            capabilities,
            trust_score,
            fira_breakdown,
            tibet_token_id,
            timestamp,
            rtt_ms,
            airlock_zone,
            applied_rule,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_tables_agree_with_their_lookups() {
        for (table, lookup) in [
            (PACKET_FIELDS, packet_field as fn(&str) -> Option<usize>),
            (RESPONSE_FIELDS, response_field),
        ] {
            for (i, name) in table.iter().enumerate() {
                assert_eq!(lookup(name), Some(i), "{name}");
            }
            for unknown in ["", "packet_ID", "nonce ", "extra", "signatures"] {
                assert_eq!(lookup(unknown), None, "{unknown:?}");
            }
        }
    }
}
