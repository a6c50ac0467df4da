//! Field-aware deserializers for [`PingPacket`] and [`PingResponse`], shared
//! by the JSON and msgpack paths.
//!
//! The derived `Deserialize` cannot say *which* field had the wrong type, and
//! reports missing fields only as text. These visitors read the map once,
//! match keys without allocating, skip unknown keys (as the reference does),
//! refuse duplicate keys, and note the field at fault in an [`IssueCell`], so
//! the codec can return a typed [`DecodeError`](super::DecodeError).

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::str::FromStr;

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

pub(super) fn packet_field(v: &str) -> Option<usize> {
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
        let mut out = String::new();
        CappedInto {
            cap: self,
            out: &mut out,
        }
        .deserialize(d)?;
        Ok(out)
    }
}

/// [`Capped`] into an existing string, reusing its allocation.
struct CappedInto<'a, 'o> {
    cap: Capped<'a>,
    out: &'o mut String,
}

impl<'de> DeserializeSeed<'de> for CappedInto<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for CappedInto<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string of at most {} bytes", self.cap.max)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let Capped { cell, field, max } = self.cap;
        if v.len() > max {
            cell.set(Some(Issue::TooLong(field, v.len(), max)));
            return Err(E::custom("string too long"));
        }
        self.out.clear();
        self.out.push_str(v);
        Ok(())
    }
}

/// Reads a string like `String`'s own `Deserialize` (text, or bytes that
/// are UTF-8), into an existing string.
struct TextInto<'o>(&'o mut String);

impl<'de> DeserializeSeed<'de> for TextInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for TextInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.clear();
        self.0.push_str(v);
        Ok(())
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        match core::str::from_utf8(v) {
            Ok(text) => self.visit_str(text),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
        }
    }
}

/// Reads null or a string into an existing option, reusing the string it
/// may hold; the string capped when `cap` is given.
struct OptInto<'a, 'o> {
    out: &'o mut Option<String>,
    cap: Option<Capped<'a>>,
}

impl<'de> DeserializeSeed<'de> for OptInto<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptInto<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cap {
            Some(cap) => write!(f, "null or a string of at most {} bytes", cap.max),
            None => f.write_str("option"),
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        *self.out = None;
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        *self.out = None;
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let out = self.out.get_or_insert_with(String::new);
        match self.cap {
            Some(cap) => CappedInto { cap, out }.deserialize(d),
            None => TextInto(out).deserialize(d),
        }
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

/// How many of [`PACKET_FIELDS`] are required (the first ones).
pub(super) const PACKET_REQUIRED: usize = 8;

/// Deserializes a [`PingPacket`] from a map into an existing packet, noting
/// failures in the cell. Every field is overwritten (absent optional fields
/// get their defaults), and the strings the packet held are reused, so a
/// caller decoding into one packet over and over allocates nothing once its
/// strings have grown. After an error the packet holds a mix of old and new
/// fields.
pub(super) struct PacketSeed<'a, 'p> {
    pub(super) cell: &'a IssueCell,
    pub(super) out: &'p mut PingPacket,
}

impl<'de> DeserializeSeed<'de> for PacketSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PacketSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PingPacket map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let PacketSeed { cell, out: p } = self;
        let mut seen = 0u32;

        while let Some(i) = next_field(&mut map, PACKET_FIELDS, packet_field, &mut seen, cell)? {
            let name = PACKET_FIELDS[i];
            let capped = |max| Capped {
                cell,
                field: name,
                max,
            };
            let read = match i {
                0 => map.next_value_seed(CappedInto {
                    cap: capped(MAX_ID_LEN),
                    out: &mut p.packet_id,
                }),
                1 => map.next_value_seed(CappedInto {
                    cap: capped(MAX_DID_LEN),
                    out: &mut p.source_did,
                }),
                2 => map.next_value_seed(CappedInto {
                    cap: capped(MAX_DID_LEN),
                    out: &mut p.target_did,
                }),
                3 => map
                    .next_value_seed(Parse::<PingType>::NEW)
                    .map(|v| p.ping_type = v),
                4 => map.next_value::<Priority>().map(|v| p.priority = v),
                5 => map
                    .next_value_seed(Parse::<RoutingMode>::NEW)
                    .map(|v| p.routing_mode = v),
                6 => map.next_value_seed(CappedInto {
                    cap: capped(MAX_INTENT_LEN),
                    out: &mut p.intent,
                }),
                7 => map.next_value_seed(CappedInto {
                    cap: capped(MAX_PURPOSE_LEN),
                    out: &mut p.purpose,
                }),
                8 => map.next_value_seed(MapSeed).map(|v| p.payload = v),
                9 => map.next_value_seed(OptInto {
                    out: &mut p.pod_id,
                    cap: None,
                }),
                10 => map.next_value_seed(OptInto {
                    out: &mut p.station_id,
                    cap: None,
                }),
                11 => map.next_value().map(|v| p.hop_count = v),
                12 => map.next_value().map(|v| p.max_hops = v),
                13 => map.next_value_seed(CappedInto {
                    cap: capped(MAX_NONCE_LEN),
                    out: &mut p.nonce,
                }),
                14 => map.next_value_seed(TextInto(&mut p.timestamp)),
                15 => map.next_value_seed(OptInto {
                    out: &mut p.tibet_token_id,
                    cap: None,
                }),
                16 => map.next_value_seed(OptInto {
                    out: &mut p.vouched_by,
                    cap: Some(capped(MAX_DID_LEN)),
                }),
                17 => map.next_value_seed(OptInto {
                    out: &mut p.vouch_signature,
                    cap: None,
                }),
                _ => map.next_value_seed(TextInto(&mut p.signature)),
            };
            read.map_err(|e| note(cell, Issue::InField(name), e))?;
        }
        // The first required field missing, in table order.
        if let Some(i) = (0..PACKET_REQUIRED).find(|i| seen & (1 << i) == 0) {
            let name = PACKET_FIELDS[i];
            return Err(note(
                cell,
                Issue::Missing(name),
                de::Error::missing_field(name),
            ));
        }
        absent_to_defaults(p, seen);
        Ok(())
    }
}

/// Gives the optional packet fields not marked in `seen` (bit i for
/// [`PACKET_FIELDS`]`[i]`) their wire defaults.
pub(super) fn absent_to_defaults(p: &mut PingPacket, seen: u32) {
    let absent = |i: usize| seen & (1 << i) == 0;
    if absent(8) {
        p.payload.clear();
    }
    if absent(9) {
        p.pod_id = None;
    }
    if absent(10) {
        p.station_id = None;
    }
    if absent(11) {
        p.hop_count = 0;
    }
    if absent(12) {
        p.max_hops = crate::packet::DEFAULT_MAX_HOPS;
    }
    if absent(13) {
        p.nonce.clear();
    }
    if absent(14) {
        p.timestamp.clear();
    }
    if absent(15) {
        p.tibet_token_id = None;
    }
    if absent(16) {
        p.vouched_by = None;
    }
    if absent(17) {
        p.vouch_signature = None;
    }
    if absent(18) {
        p.signature.clear();
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
