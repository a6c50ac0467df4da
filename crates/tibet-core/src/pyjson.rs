//! Python-compatible JSON text for tokens: the writer lives in
//! `tibet_ping::pyjson` (shared with the signing input of packets); this
//! module keeps the calls in `token.rs` short.

use serde_json::{Map, Value};
use tibet_ping::pyjson::{self, Style};

pub(crate) use tibet_ping::pyjson::write_str;

/// Appends `json.dumps(value, sort_keys=sort_keys)` of `value` to `out`.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value, sort_keys: bool) {
    pyjson::write_value(out, value, Style::python(sort_keys));
}

/// Appends `json.dumps(map, sort_keys=sort_keys)` of a JSON object to `out`.
pub(crate) fn write_map(out: &mut Vec<u8>, map: &Map<String, Value>, sort_keys: bool) {
    pyjson::write_map(out, map, Style::python(sort_keys));
}
