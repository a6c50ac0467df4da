//! Numbers in msgpack frames.
//!
//! The workspace's `serde_json` keeps every JSON number as its decimal text
//! (`arbitrary_precision`), so integers of any size survive decoding and
//! re-encoding exactly, in payloads, tokens and the signing input
//! (docs/PROTOCOL.md §6). `serde_json` serialises such a number as a private
//! one-field struct that only its own serializers understand; through
//! `rmp_serde` it would become a one-entry map. Msgpack frames carry native
//! numbers instead: an integer as a msgpack int (the smallest that holds it,
//! as `rmp_serde` writes), anything with a fraction or exponent as a float64.
//!
//! Msgpack has no integers outside `-2^63..2^64` (neither has the Python
//! reference's `msgpack`, which raises `OverflowError`), so a payload holding
//! one cannot go into a msgpack frame: [`unfit_number`] finds it first, and
//! the codec refuses the frame with
//! [`EncodeError::MsgpackNumber`](super::EncodeError::MsgpackNumber).

use serde::ser::{Error as _, Serialize, Serializer};
use serde_json::{Number, Value};

use crate::packet::JsonMap;

/// A number as msgpack writes it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Native {
    /// A non-negative integer up to `u64::MAX`.
    Unsigned(u64),
    /// A negative integer down to `i64::MIN`.
    Signed(i64),
    /// A finite float.
    Float(f64),
}

/// `n` as a native msgpack number, or `None` when msgpack cannot hold it: an
/// integer outside `-2^63..2^64`, or a float literal beyond `f64`'s range
/// (`1e400`).
fn native(n: &Number) -> Option<Native> {
    if let Some(u) = n.as_u64() {
        Some(Native::Unsigned(u))
    } else if let Some(i) = n.as_i64() {
        // Also `-0`, which JSON readers (Python's too) take as the integer 0.
        Some(if i < 0 {
            Native::Signed(i)
        } else {
            Native::Unsigned(i.unsigned_abs())
        })
    } else if n.is_f64() {
        // `is_f64` holds only for a literal with a fraction or exponent that
        // parses to a finite double.
        n.as_f64().map(Native::Float)
    } else {
        None
    }
}

/// The first number in `map` (depth first, in key order) that msgpack
/// cannot hold, if any.
pub(super) fn unfit_number(map: &JsonMap) -> Option<&Number> {
    map.values().find_map(unfit_in)
}

fn unfit_in(value: &Value) -> Option<&Number> {
    match value {
        Value::Number(n) => native(n).is_none().then_some(n),
        Value::Array(items) => items.iter().find_map(unfit_in),
        Value::Object(map) => unfit_number(map),
        Value::Null | Value::Bool(_) | Value::String(_) => None,
    }
}

/// `serialize_with` for the JSON-object fields of the wire types: as
/// `serde_json` writes them for human-readable formats (JSON, `to_value`:
/// numbers exact), with native numbers for binary ones (msgpack).
pub(crate) fn serialize_map<S: Serializer>(map: &JsonMap, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        map.serialize(s)
    } else {
        s.collect_map(map.iter().map(|(k, v)| (k, NativeValue(v))))
    }
}

/// A JSON value serialised with native numbers.
pub(crate) struct NativeValue<'a>(pub(crate) &'a Value);

impl Serialize for NativeValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(n) => match native(n) {
                Some(Native::Unsigned(u)) => s.serialize_u64(u),
                Some(Native::Signed(i)) => s.serialize_i64(i),
                Some(Native::Float(f)) => s.serialize_f64(f),
                // The codec checks with `unfit_number` first; this is the
                // fence for any other caller.
                None => Err(S::Error::custom(format_args!(
                    "number {} does not fit msgpack",
                    super::error::reason(n)
                ))),
            },
            Value::Array(items) => s.collect_seq(items.iter().map(NativeValue)),
            Value::Object(map) => s.collect_map(map.iter().map(|(k, v)| (k, NativeValue(v)))),
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::String(text) => s.serialize_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn numbers_map_to_the_msgpack_kinds() {
        assert_eq!(native(&num("0")), Some(Native::Unsigned(0)));
        assert_eq!(native(&num("-0")), Some(Native::Unsigned(0)));
        assert_eq!(
            native(&num("18446744073709551615")),
            Some(Native::Unsigned(u64::MAX))
        );
        assert_eq!(
            native(&num("-9223372036854775808")),
            Some(Native::Signed(i64::MIN))
        );
        assert_eq!(native(&num("21.5")), Some(Native::Float(21.5)));
        assert_eq!(native(&num("1e-05")), Some(Native::Float(1e-5)));
        assert_eq!(native(&num("1E2")), Some(Native::Float(100.0)));
        // Whole numbers written as floats stay floats (Python: float).
        assert_eq!(native(&num("2.0")), Some(Native::Float(2.0)));
        // Out of msgpack's range.
        for text in [
            "18446744073709551616",
            "-9223372036854775809",
            "1180591620717411303424",
            "1e400",
            "-1e400",
        ] {
            assert_eq!(native(&num(text)), None, "{text}");
        }
    }

    #[test]
    fn unfit_number_finds_nested_ones() {
        let map: JsonMap =
            serde_json::from_str(r#"{"a": 1, "b": [2.5, {"c": [18446744073709551616]}]}"#).unwrap();
        assert_eq!(
            unfit_number(&map).map(Number::as_str),
            Some("18446744073709551616")
        );
        let map: JsonMap = serde_json::from_str(r#"{"a": [1, -2, 3.5, {"b": null}]}"#).unwrap();
        assert_eq!(unfit_number(&map), None);
    }
}
