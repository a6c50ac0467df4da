//! Decoding the JSON-object fields (`payload`, `fira_breakdown`) on the hot
//! path.
//!
//! The workspace's `serde_json` keeps every number as its text
//! (`arbitrary_precision`, so integers of any size survive). Its parser
//! hands a float or a big integer to the visitor as a one-entry map under a
//! private key, and its own `Value` visitor then parses that text a second
//! time. This visitor builds the same [`Value`] but keeps the already
//! scanned text, after checking it is a JSON number literal (a msgpack peer
//! can send that map too). Everything else matches `serde_json::Value`:
//! later duplicate keys win, key order is kept, nesting is bounded by the
//! format (see [`MAX_DEPTH`](super::MAX_DEPTH)).

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::packet::JsonMap;

/// The key under which `serde_json` passes a number kept as text.
const NUMBER_KEY: &str = "$serde_json::private::Number";

/// Reads a JSON object (a msgpack map) into a [`JsonMap`].
pub(super) struct MapSeed;

impl<'de> DeserializeSeed<'de> for MapSeed {
    type Value = JsonMap;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<JsonMap, D::Error> {
        match d.deserialize_map(ValueVisitor)? {
            Value::Object(map) => Ok(map),
            // msgpack nil, which `serde_json::Map` also reads as empty.
            Value::Null => Ok(Map::new()),
            other => Err(de::Error::invalid_type(
                de::Unexpected::Other(kind(&other)),
                &"a map",
            )),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

/// Reads any JSON value.
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As `serde_json::Value` does: a non-finite float becomes null.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // No pre-allocation from a size hint: growth follows the datagram.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let first = match map.next_key_seed(KeySeed)? {
            None => return Ok(Value::Object(Map::new())),
            Some(Key::Number) => {
                let text: String = map.next_value()?;
                return number(text).map(Value::Number);
            }
            Some(Key::Plain(k)) => k,
        };
        let mut out = Map::new();
        out.insert(first, map.next_value_seed(ValueSeed)?);
        while let Some(k) = map.next_key::<String>()? {
            out.insert(k, map.next_value_seed(ValueSeed)?);
        }
        Ok(Value::Object(out))
    }
}

/// A map key: `serde_json`'s number marker or an ordinary key.
enum Key {
    Number,
    Plain(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(if v == NUMBER_KEY {
            Key::Number
        } else {
            Key::Plain(v.to_owned())
        })
    }

    fn visit_string<E>(self, v: String) -> Result<Key, E> {
        Ok(if v == NUMBER_KEY {
            Key::Number
        } else {
            Key::Plain(v)
        })
    }
}

/// The number whose JSON text `text` is, kept as that text.
fn number<E: de::Error>(text: String) -> Result<Number, E> {
    if is_json_number(text.as_bytes()) {
        // The text was just checked against the JSON number grammar, which
        // is all `Number` holds with `arbitrary_precision`.
        Ok(Number::from_string_unchecked(text))
    } else {
        Err(E::custom("invalid number"))
    }
}

/// Whether `b` is a JSON number literal:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(b: &[u8]) -> bool {
    fn digits(b: &[u8], mut i: usize) -> (usize, bool) {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i, i > start)
    }
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(b, i).0,
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        let (next, any) = digits(b, i + 1);
        if !any {
            return false;
        }
        i = next;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (next, any) = digits(b, i);
        if !any {
            return false;
        }
        i = next;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_number_grammar() {
        for ok in [
            "0",
            "-0",
            "7",
            "-12",
            "1.5",
            "0.25",
            "1e5",
            "1E+5",
            "2.5e-300",
            "1180591620717411303424",
        ] {
            assert!(is_json_number(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "-", "01", "+1", "1.", ".5", "1e", "1e+", "0x10", "NaN", "1 ", "abc", "--1",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn decodes_like_serde_json_value() {
        let text = r#"{"a": 1, "b": -2, "c": 2.50, "d": 1e-05, "e": 18446744073709551616,
            "f": [true, null, "s", {"g": -0}], "a": 3, "h": {}}"#;
        let mut de = serde_json::Deserializer::from_str(text);
        let ours = MapSeed.deserialize(&mut de).unwrap();
        let theirs: JsonMap = serde_json::from_str(text).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(ours["c"].to_string(), "2.50");
        assert_eq!(ours["e"].to_string(), "18446744073709551616");
        assert_eq!(ours["a"], 3);
    }

    #[test]
    fn a_forged_number_marker_must_hold_a_number() {
        let forged = |text: &str| {
            rmp_serde::to_vec(&std::collections::BTreeMap::from([(NUMBER_KEY, text)])).unwrap()
        };
        let big = forged("12345678901234567890123");
        let mut de = rmp_serde::Deserializer::from_read_ref(&big);
        let v = ValueSeed.deserialize(&mut de).unwrap();
        assert_eq!(v.to_string(), "12345678901234567890123");
        let bad = forged("1,2");
        let mut de = rmp_serde::Deserializer::from_read_ref(&bad);
        assert!(ValueSeed.deserialize(&mut de).is_err());
    }
}
