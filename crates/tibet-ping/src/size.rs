//! Byte sizes charged against table budgets: the heap held by an entry's
//! strings and JSON values, not the wire size.

use alloc::string::String;

use serde_json::Value;

use crate::packet::{JsonMap, PingPacket};

/// Bytes charged per JSON value on top of its text (enum tag, map node).
const VALUE_OVERHEAD: usize = 16;

/// The heap a JSON value holds, roughly.
pub(crate) fn value(v: &Value) -> usize {
    VALUE_OVERHEAD
        + match v {
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(value).sum(),
            Value::Object(m) => map(m),
        }
}

/// The heap a JSON map holds, roughly.
pub(crate) fn map(m: &JsonMap) -> usize {
    m.iter().map(|(k, v)| k.len() + value(v)).sum()
}

fn opt(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

/// The heap a packet holds, roughly.
pub(crate) fn packet(p: &PingPacket) -> usize {
    p.packet_id.len()
        + p.source_did.len()
        + p.target_did.len()
        + p.intent.len()
        + p.purpose.len()
        + map(&p.payload)
        + opt(&p.pod_id)
        + opt(&p.station_id)
        + p.nonce.len()
        + p.timestamp.len()
        + opt(&p.tibet_token_id)
        + opt(&p.vouched_by)
        + opt(&p.vouch_signature)
        + p.signature.len()
}
