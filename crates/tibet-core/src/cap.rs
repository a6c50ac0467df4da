//! Caps on network-supplied text and values recorded in tokens: what a
//! sender chooses to put in a packet is kept short in the audit trail, with
//! the SHA-256 of the full value so it can still be matched.

use serde_json::Value;
use sha2::{Digest, Sha256};
use tibet_ping::JsonMap;

/// Longest purpose (and ERACHTER taken from it) kept in a token, in bytes.
pub const MAX_TOKEN_PURPOSE: usize = 256;
/// Longest payload kept in a token, in bytes of compact JSON.
pub const MAX_TOKEN_PAYLOAD: usize = 1024;

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `s` cut to at most `max` bytes on a character boundary, and whether it
/// was cut.
pub(crate) fn cut(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    (&s[..at], true)
}

/// Writes `key` (the text, capped) into `erin`, and when capped also
/// `key_bytes` (full length) and `key_sha256` (hex SHA-256 of the full
/// text). Returns the capped text.
pub(crate) fn put_text<'a>(erin: &mut JsonMap, key: &str, text: &'a str, max: usize) -> &'a str {
    let (kept, was_cut) = cut(text, max);
    erin.insert(key.to_owned(), Value::from(kept));
    if was_cut {
        erin.insert(format!("{key}_bytes"), Value::from(text.len()));
        erin.insert(
            format!("{key}_sha256"),
            Value::from(sha256_hex(text.as_bytes())),
        );
    }
    kept
}

/// Writes `payload` into `erin` under `key` when its compact JSON is at
/// most `max` bytes; otherwise an empty object, plus `key_bytes` and
/// `key_sha256` of its compact JSON (keys in received order).
pub(crate) fn put_payload(erin: &mut JsonMap, key: &str, payload: &JsonMap, max: usize) {
    if payload_fits(payload, max) {
        erin.insert(key.to_owned(), Value::Object(payload.clone()));
        return;
    }
    let text = serde_json::to_vec(payload).unwrap_or_default();
    erin.insert(key.to_owned(), Value::Object(JsonMap::new()));
    erin.insert(format!("{key}_bytes"), Value::from(text.len()));
    erin.insert(format!("{key}_sha256"), Value::from(sha256_hex(&text)));
}

/// Whether `payload`'s compact JSON is at most `max` bytes, measured
/// without building the text (every ping token asks).
pub(crate) fn payload_fits(payload: &JsonMap, max: usize) -> bool {
    let mut size = Size { bytes: 0, max };
    serde_json::to_writer(&mut size, payload).is_ok()
}

/// Counts the bytes written, failing once they exceed `max`.
struct Size {
    bytes: usize,
    max: usize,
}

impl std::io::Write for Size {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len();
        if self.bytes > self.max {
            return Err(std::io::Error::other("over the cap"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_on_a_char_boundary() {
        assert_eq!(cut("abc", 3), ("abc", false));
        assert_eq!(cut("abcd", 3), ("abc", true));
        assert_eq!(cut("aé", 2), ("a", true));
        let mut erin = JsonMap::new();
        let small = serde_json::json!({"a": 1}).as_object().unwrap().clone();
        put_payload(&mut erin, "p", &small, 7);
        assert_eq!(
            Value::Object(erin.clone()),
            serde_json::json!({"p": {"a": 1}})
        );
        put_payload(&mut erin, "p", &small, 6);
        assert_eq!(erin["p"], serde_json::json!({}));
        assert_eq!(erin["p_bytes"], 7);
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
