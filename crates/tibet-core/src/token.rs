//! [`Token`]: the atomic provenance record, its content hash and its JSON
//! line (docs/PROTOCOL.md §7).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tibet_ping::{JsonMap, Timestamp};

use crate::pyjson;

/// A token's lifecycle state, written as its lowercase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    /// Just recorded.
    #[default]
    Created,
    /// Noticed by a detector.
    Detected,
    /// Classified.
    Classified,
    /// Mitigated.
    Mitigated,
    /// Closed.
    Resolved,
}

impl TokenState {
    /// Every state, in lifecycle order.
    pub const ALL: &'static [TokenState] = &[
        TokenState::Created,
        TokenState::Detected,
        TokenState::Classified,
        TokenState::Mitigated,
        TokenState::Resolved,
    ];

    /// The JSON spelling, e.g. `created`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenState::Created => "created",
            TokenState::Detected => "detected",
            TokenState::Classified => "classified",
            TokenState::Mitigated => "mitigated",
            TokenState::Resolved => "resolved",
        }
    }
}

impl fmt::Display for TokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`TokenState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for TokenState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TokenState::ALL
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// The key that turns the content hash into HMAC-SHA256. An empty key means
/// plain SHA-256, as in the reference (`if key:`).
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKey(Vec<u8>);

impl HmacKey {
    /// Wraps raw key bytes (Python passes the same bytes as `hmac_key=`).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        HmacKey(bytes.into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacKey({} bytes)", self.0.len())
    }
}

/// One provenance record: what happened (ERIN), what it relates to (ERAAN),
/// its context (EROMHEEN) and why (ERACHTER), linked to a parent token and
/// sealed by a content hash. Serde field order is the file's key order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// `tibet_<YYYYmmddHHMMSSffffff>_<8 hex>`.
    pub token_id: String,
    /// What kind of action, e.g. `ping.intent` or `heartbeat`.
    pub action: String,
    /// ISO 8601 creation time, kept exactly as written (it is hashed).
    pub timestamp: String,
    /// Who acted: a JIS DID such as `jis:home:hub`.
    pub actor: String,
    /// ERIN: the content of the action (any JSON, `null` by default).
    #[serde(default)]
    pub erin: Value,
    /// ERAAN: what the action is attached to (ids, DIDs).
    #[serde(default)]
    pub eraan: Vec<String>,
    /// EROMHEEN: the context around it.
    #[serde(default)]
    pub eromheen: JsonMap,
    /// ERACHTER: the intent behind it, in words.
    #[serde(default)]
    pub erachter: String,
    /// The previous token in the chain.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Lifecycle state.
    #[serde(default)]
    pub state: TokenState,
    /// Hex SHA-256 (or HMAC-SHA256) of the canonical content.
    #[serde(default)]
    pub content_hash: String,
    /// An optional signature (empty by default; not part of the hash).
    #[serde(default)]
    pub signature: String,
}

/// Why a JSON line is not a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseTokenError {
    /// Not JSON, a missing required key, an unknown key or a wrong type.
    #[error("not a valid token: {0}")]
    Json(#[from] serde_json::Error),
}

/// The [`HashFields`] of a [`Token`] or a [`TokenRef`]: the two have the same
/// field names but own their texts differently (a macro, as no trait gives
/// borrowed access to ten fields of both without the same ten lines twice).
macro_rules! hash_fields {
    ($t:expr) => {
        HashFields {
            token_id: &$t.token_id,
            action: &$t.action,
            timestamp: &$t.timestamp,
            actor: &$t.actor,
            erin: &$t.erin,
            eraan: $t.eraan.as_slice(),
            eromheen: &$t.eromheen,
            erachter: &$t.erachter,
            parent_id: $t.parent_id.as_deref(),
            state: $t.state,
        }
    };
}

impl Token {
    /// The canonical bytes that are hashed: Python's
    /// `json.dumps(d, sort_keys=True, default=str)` of the first ten fields.
    pub fn hash_content(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_hash_content(&mut out);
        out
    }

    fn write_hash_content(&self, out: &mut Vec<u8>) {
        hash_fields!(self).write(out);
    }

    /// Computes the hex content hash: HMAC-SHA256 with a non-empty key,
    /// plain SHA-256 otherwise.
    pub fn compute_hash(&self, key: Option<&HmacKey>) -> String {
        let mut content = Vec::with_capacity(320);
        self.write_hash_content(&mut content);
        digest_hex(&content, key)
    }

    /// Sets `content_hash` from the current content.
    pub fn seal(&mut self, key: Option<&HmacKey>) {
        self.content_hash = self.compute_hash(key);
    }

    /// Whether `content_hash` matches the content (constant-time compare).
    /// An empty `content_hash` never verifies (the reference would recompute
    /// it on load and call any content valid; we fail closed).
    pub fn verify(&self, key: Option<&HmacKey>) -> bool {
        stored_hash_matches(&self.content_hash, &self.compute_hash(key))
    }

    /// The creation time, if `timestamp` parses.
    pub fn time(&self) -> Option<Timestamp> {
        Timestamp::parse(&self.timestamp)
    }

    /// The JSON line the reference writes (`Token.to_json()`): keys in field
    /// order, `", "`/`": "` separators, ASCII-escaped; no newline.
    pub fn to_json_line(&self) -> String {
        let mut out = Vec::with_capacity(512);
        self.write_json_line(&mut out);
        String::from_utf8(out).expect("pyjson writes ASCII")
    }

    /// Appends [`Token::to_json_line`] to `out`.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"token_id\": ");
        pyjson::write_str(out, &self.token_id);
        out.extend_from_slice(b", \"action\": ");
        pyjson::write_str(out, &self.action);
        out.extend_from_slice(b", \"timestamp\": ");
        pyjson::write_str(out, &self.timestamp);
        out.extend_from_slice(b", \"actor\": ");
        pyjson::write_str(out, &self.actor);
        out.extend_from_slice(b", \"erin\": ");
        pyjson::write_value(out, &self.erin, false);
        out.extend_from_slice(b", \"eraan\": [");
        for (i, item) in self.eraan.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            pyjson::write_str(out, item);
        }
        out.extend_from_slice(b"], \"eromheen\": ");
        pyjson::write_map(out, &self.eromheen, false);
        out.extend_from_slice(b", \"erachter\": ");
        pyjson::write_str(out, &self.erachter);
        out.extend_from_slice(b", \"parent_id\": ");
        match &self.parent_id {
            Some(p) => pyjson::write_str(out, p),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b", \"state\": ");
        pyjson::write_str(out, self.state.as_str());
        out.extend_from_slice(b", \"content_hash\": ");
        pyjson::write_str(out, &self.content_hash);
        out.extend_from_slice(b", \"signature\": ");
        pyjson::write_str(out, &self.signature);
        out.push(b'}');
    }

    /// Parses one JSON line (ours or the reference's). Unknown keys are an
    /// error, as they are for the reference's `Token.from_dict`.
    pub fn from_json_line(line: &[u8]) -> Result<Token, ParseTokenError> {
        Ok(serde_json::from_slice(line)?)
    }
}

/// The ten hashed fields, borrowed from a [`Token`] or a [`TokenRef`].
struct HashFields<'a, S> {
    token_id: &'a str,
    action: &'a str,
    timestamp: &'a str,
    actor: &'a str,
    erin: &'a Value,
    eraan: &'a [S],
    eromheen: &'a JsonMap,
    erachter: &'a str,
    parent_id: Option<&'a str>,
    state: TokenState,
}

impl<S: AsRef<str>> HashFields<'_, S> {
    /// Python's `json.dumps(d, sort_keys=True)` of the ten fields.
    fn write(self, out: &mut Vec<u8>) {
        // The ten top-level keys, already in sorted (code point) order.
        out.extend_from_slice(b"{\"action\": ");
        pyjson::write_str(out, self.action);
        out.extend_from_slice(b", \"actor\": ");
        pyjson::write_str(out, self.actor);
        out.extend_from_slice(b", \"eraan\": [");
        for (i, item) in self.eraan.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            pyjson::write_str(out, item.as_ref());
        }
        out.extend_from_slice(b"], \"erachter\": ");
        pyjson::write_str(out, self.erachter);
        out.extend_from_slice(b", \"erin\": ");
        pyjson::write_value(out, self.erin, true);
        out.extend_from_slice(b", \"eromheen\": ");
        pyjson::write_map(out, self.eromheen, true);
        out.extend_from_slice(b", \"parent_id\": ");
        match self.parent_id {
            Some(p) => pyjson::write_str(out, p),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b", \"state\": ");
        pyjson::write_str(out, self.state.as_str());
        out.extend_from_slice(b", \"timestamp\": ");
        pyjson::write_str(out, self.timestamp);
        out.extend_from_slice(b", \"token_id\": ");
        pyjson::write_str(out, self.token_id);
        out.push(b'}');
    }
}

/// Hex SHA-256, or HMAC-SHA256 with a non-empty key, of `content`.
pub(crate) fn digest_hex(content: &[u8], key: Option<&HmacKey>) -> String {
    hex_lower(&digest(content, key))
}

/// SHA-256 of `content`, or HMAC-SHA256 under a non-empty `key`.
pub(crate) fn digest(content: &[u8], key: Option<&HmacKey>) -> [u8; 32] {
    match key {
        Some(k) if !k.0.is_empty() => {
            let mut mac = Hmac::<Sha256>::new_from_slice(&k.0).expect("HMAC takes any key length");
            mac.update(content);
            mac.finalize().into_bytes().into()
        }
        _ => Sha256::digest(content).into(),
    }
}

/// A token line parsed for verification only: strings borrowed from the
/// line where they need no unescaping (fewer allocations on the hot path
/// of `audit verify`). Same keys, defaults and strictness as [`Token`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRef<'a> {
    #[serde(borrow)]
    pub(crate) token_id: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(default)]
    erin: Value,
    #[serde(default, borrow)]
    eraan: Vec<Cow<'a, str>>,
    #[serde(default)]
    eromheen: JsonMap,
    #[serde(default, borrow)]
    erachter: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) parent_id: Option<Cow<'a, str>>,
    #[serde(default)]
    state: TokenState,
    #[serde(default, borrow)]
    content_hash: Cow<'a, str>,
    #[serde(default, borrow)]
    #[allow(dead_code)] // parsed for strictness, not hashed
    signature: Cow<'a, str>,
}

impl<'a> TokenRef<'a> {
    /// Parses one line (see [`Token::from_json_line`]).
    pub(crate) fn parse(line: &'a [u8]) -> Result<Self, ParseTokenError> {
        Ok(serde_json::from_slice(line)?)
    }

    /// Same as [`Token::verify`].
    pub(crate) fn verify(&self, key: Option<&HmacKey>) -> bool {
        let mut content = Vec::with_capacity(320);
        hash_fields!(self).write(&mut content);
        stored_hash_matches(&self.content_hash, &digest_hex(&content, key))
    }
}

/// Whether a token's `stored` content hash equals the `expected` one
/// (constant-time compare); an empty stored hash never matches (fail closed).
fn stored_hash_matches(stored: &str, expected: &str) -> bool {
    !stored.is_empty() && bool::from(expected.as_bytes().ct_eq(stored.as_bytes()))
}

/// Lowercase hex of a digest (what Python's `hexdigest()` prints).
fn hex_lower(bytes: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Token {
        let mut t = Token {
            token_id: "tibet_20261126110033762558_1a2b3c4d".into(),
            action: "ping.intent".into(),
            timestamp: "2026-11-26T11:00:33.762558+00:00".into(),
            actor: "jis:home:sensor".into(),
            erin: json!({"intent": "temperature.read", "payload": {"celsius": 21.5}}),
            eraan: vec!["jis:home:sensor".into(), "jis:home:hub".into()],
            eromheen: json!({"routing_mode": "direct", "hop_count": 0})
                .as_object()
                .unwrap()
                .clone(),
            erachter: "Zeit für Wärme ☀".into(),
            parent_id: None,
            state: TokenState::Created,
            content_hash: String::new(),
            signature: String::new(),
        };
        t.seal(None);
        t
    }

    #[test]
    fn hash_content_is_sorted_python_json() {
        let t = sample();
        let text = String::from_utf8(t.hash_content()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"action": "ping.intent", "actor": "jis:home:sensor", "eraan": ["jis:home:sensor", "jis:home:hub"], "#,
                r#""erachter": "Zeit f\u00fcr W\u00e4rme \u2600", "erin": {"intent": "temperature.read", "payload": {"celsius": 21.5}}, "#,
                r#""eromheen": {"hop_count": 0, "routing_mode": "direct"}, "parent_id": null, "state": "created", "#,
                r#""timestamp": "2026-11-26T11:00:33.762558+00:00", "token_id": "tibet_20261126110033762558_1a2b3c4d"}"#
            )
        );
    }

    #[test]
    fn verify_detects_tampering_and_wrong_key() {
        let mut t = sample();
        assert!(t.verify(None));
        let key = HmacKey::new(b"secret".to_vec());
        assert!(!t.verify(Some(&key)));
        t.seal(Some(&key));
        assert!(t.verify(Some(&key)));
        assert!(!t.verify(None));
        assert!(t.verify(Some(&HmacKey::new(b"secret".to_vec()))));
        assert!(!t.verify(Some(&HmacKey::new(b"secreT".to_vec()))));
        t.erachter.push('!');
        assert!(!t.verify(Some(&key)));
        let mut empty = sample();
        empty.content_hash.clear();
        assert!(!empty.verify(None));
    }

    #[test]
    fn signature_is_not_hashed_and_empty_key_is_plain_sha256() {
        let mut t = sample();
        t.signature = "sig".into();
        assert!(t.verify(None));
        assert!(t.verify(Some(&HmacKey::new(Vec::new()))));
    }

    #[test]
    fn json_line_round_trips_and_rejects_unknown_keys() {
        let t = sample();
        let line = t.to_json_line();
        assert!(line.starts_with(
            r#"{"token_id": "tibet_20261126110033762558_1a2b3c4d", "action": "ping.intent""#
        ));
        assert!(line.ends_with(&format!(
            r#""state": "created", "content_hash": "{}", "signature": ""}}"#,
            t.content_hash
        )));
        let back = Token::from_json_line(line.as_bytes()).unwrap();
        assert_eq!(back, t);
        assert!(back.verify(None));
        let extra = line.replacen('{', r#"{"bogus": 1, "#, 1);
        assert!(Token::from_json_line(extra.as_bytes()).is_err());
        assert!(Token::from_json_line(br#"{"token_id": "x"}"#).is_err());
        let minimal = Token::from_json_line(
            br#"{"token_id": "x", "action": "a", "timestamp": "t", "actor": "b"}"#,
        )
        .unwrap();
        assert_eq!(minimal.erin, Value::Null);
        assert_eq!(minimal.state, TokenState::Created);
        assert!(Token::from_json_line(br#"{"token_id": "x", "action": "a", "timestamp": "t", "actor": "b", "state": "weird"}"#).is_err());
    }

    #[test]
    fn plain_hash_is_sha256_hex_of_the_content() {
        use sha2::Digest;
        let t = sample();
        let want: String = Sha256::digest(t.hash_content())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(t.content_hash, want);
    }

    #[test]
    fn borrowed_parse_verifies_like_token() {
        let key = HmacKey::new(b"k".to_vec());
        let mut t = sample();
        t.erachter = "with \"escapes\" \u{e9}".into();
        t.parent_id = Some("tibet_parent".into());
        t.seal(Some(&key));
        let line = t.to_json_line();
        let r = TokenRef::parse(line.as_bytes()).unwrap();
        assert!(r.verify(Some(&key)));
        assert!(!r.verify(None));
        assert_eq!(r.parent_id.as_deref(), Some("tibet_parent"));
        let tampered = line.replacen("escapes", "escaped", 1);
        assert!(
            !TokenRef::parse(tampered.as_bytes())
                .unwrap()
                .verify(Some(&key))
        );
        let extra = line.replacen('{', r#"{"bogus": 1, "#, 1);
        assert!(TokenRef::parse(extra.as_bytes()).is_err());
    }

    #[test]
    fn states_spell_lowercase() {
        for s in TokenState::ALL {
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
            assert_eq!(s.as_str().parse::<TokenState>().unwrap(), *s);
        }
        assert!("CREATED".parse::<TokenState>().is_err());
    }
}
