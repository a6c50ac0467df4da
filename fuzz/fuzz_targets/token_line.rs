//! Fuzz the audit token line parser (`Token::from_json_line`, what `audit
//! verify` and `FileStore::open` read): any line must parse or fail with a
//! typed error, never panic; a parsed token re-serializes to a line that
//! parses to the same token, and its hash check does not panic. A float
//! literal beyond the double range (`1e400`) is written as Python writes
//! the float it reads as, `Infinity`, which strict JSON readers refuse
//! (Python reads it): such a token is checked for no panic only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tibet_core::Token;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = Token::from_json_line(data) else {
        return;
    };
    let _ = token.verify(None);
    let line = token.to_json_line();
    if !finite(&token.erin) || !token.eromheen.values().all(finite) {
        return;
    }
    let again = Token::from_json_line(line.as_bytes()).expect("our own line parses");
    // NaN-free JSON values compare equal after a round trip.
    assert_eq!(again.to_json_line(), line);
});

/// Whether no float literal in `v` lies beyond the double range (integers
/// of any size are written exactly).
fn finite(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => {
            !n.to_string().contains(['.', 'e', 'E']) || n.as_f64().is_some_and(f64::is_finite)
        }
        serde_json::Value::Array(a) => a.iter().all(finite),
        serde_json::Value::Object(m) => m.values().all(finite),
        _ => true,
    }
}
