//! The codec's error types: one enum per operation ([`EncodeError`] for the
//! local caller, [`DecodeError`] for what a peer sent).

use alloc::string::{String, ToString};
use core::fmt;

/// Longest error detail kept from a hostile datagram (bytes of text).
const MAX_REASON: usize = 160;

/// The payload format of a frame, chosen by flag bit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WireFormat {
    /// Compact JSON text (flag bit 1 clear).
    #[default]
    Json,
    /// A msgpack map with string keys (flag bit 1 set).
    Msgpack,
}

impl fmt::Display for WireFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireFormat::Json => "JSON",
            WireFormat::Msgpack => "msgpack",
        })
    }
}

/// Why a packet or response could not be encoded (a local error: the
/// caller's value cannot go on the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded payload is larger than [`MAX_PAYLOAD`](crate::MAX_PAYLOAD);
    /// nothing is truncated, the frame is refused.
    #[error("payload too large: {len} bytes, max {max}", max = crate::MAX_PAYLOAD)]
    TooLarge {
        /// Length of the encoded payload in bytes.
        len: usize,
    },
    /// A float field is NaN or infinite, which JSON cannot carry.
    #[error("field `{field}` is not a finite number")]
    NonFinite {
        /// The field's wire name.
        field: &'static str,
    },
    /// A msgpack frame cannot carry a number in this field: an integer
    /// outside `-2^63..2^64` (msgpack has no bigger ints) or a float literal
    /// beyond the double range. A JSON frame carries it exactly.
    #[error("field `{field}`: number {number} does not fit a msgpack frame")]
    MsgpackNumber {
        /// The field's wire name (`payload` or `fira_breakdown`).
        field: &'static str,
        /// The number's decimal text, shortened.
        number: String,
    },
    /// The serializer failed.
    #[error("cannot serialize {format} payload: {reason}")]
    Serialize {
        /// The payload format.
        format: WireFormat,
        /// The serializer's message.
        reason: String,
    },
}

/// Why a datagram is not a valid frame. Every variant means "the peer broke
/// the rules": drop the datagram without a reply and count it (see
/// [`DecodeError::kind`] for a counter label).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram is shorter than the 8-byte header.
    #[error("short header: {len} bytes, need 8")]
    ShortHeader {
        /// The datagram's length.
        len: usize,
    },
    /// The first two bytes are not `TP`.
    #[error("bad magic {found:02x?}, expected \"TP\"")]
    BadMagic {
        /// The two bytes found.
        found: [u8; 2],
    },
    /// The version byte is not 1.
    #[error("unsupported version {version}, expected 1")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The header declares a payload longer than
    /// [`MAX_PAYLOAD`](crate::MAX_PAYLOAD).
    #[error("declared payload of {declared} bytes exceeds the {max} byte limit", max = crate::MAX_PAYLOAD)]
    TooLarge {
        /// The declared payload length.
        declared: u64,
    },
    /// The header declares more payload than the datagram holds.
    #[error("truncated: header declares {declared} payload bytes, datagram has {available}")]
    Truncated {
        /// The declared payload length.
        declared: usize,
        /// Payload bytes actually present.
        available: usize,
    },
    /// The datagram goes on after the declared payload.
    #[error("{extra} trailing bytes after the {declared} byte payload")]
    TrailingBytes {
        /// The declared payload length.
        declared: usize,
        /// Bytes beyond it.
        extra: usize,
    },
    /// The payload is not well-formed JSON or msgpack (syntax, bad UTF-8,
    /// nesting too deep, a length prefix past the end, not a map, ...).
    #[error("undecodable {format} payload: {reason}")]
    Payload {
        /// The payload format (from the flags).
        format: WireFormat,
        /// What was wrong, shortened.
        reason: String,
    },
    /// A required field is absent.
    #[error("missing required field `{field}`")]
    MissingField {
        /// The field's wire name.
        field: &'static str,
    },
    /// A known field has a value of the wrong type or an unknown enum value.
    #[error("field `{field}`: {reason}")]
    WrongType {
        /// The field's wire name.
        field: &'static str,
        /// What was wrong, shortened.
        reason: String,
    },
    /// A string field is longer than its cap (see
    /// [`MAX_DID_LEN`](crate::MAX_DID_LEN) and its siblings); refused before
    /// the string is stored.
    #[error("field `{field}` is {len} bytes, max {max}")]
    FieldTooLong {
        /// The field's wire name.
        field: &'static str,
        /// The string's length in bytes.
        len: usize,
        /// The cap for that field.
        max: usize,
    },
    /// A known field appears twice in the map (ambiguous, so refused).
    #[error("duplicate field `{field}`")]
    DuplicateField {
        /// The field's wire name.
        field: &'static str,
    },
}

impl DecodeError {
    /// A short stable label for counters and logs, e.g. `"bad_magic"`.
    pub const fn kind(&self) -> &'static str {
        match self {
            DecodeError::ShortHeader { .. } => "short_header",
            DecodeError::BadMagic { .. } => "bad_magic",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::Payload { .. } => "payload",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::DuplicateField { .. } => "duplicate_field",
            DecodeError::FieldTooLong { .. } => "field_too_long",
        }
    }
}

/// Formats `err` into at most [`MAX_REASON`] bytes (hostile input may be
/// echoed in serde messages; keep logs small).
pub(super) fn reason(err: impl fmt::Display) -> String {
    let mut s = err.to_string();
    if s.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_bounded_and_cut_on_a_char_boundary() {
        let long = "é".repeat(500);
        let r = reason(&long);
        assert!(r.len() <= MAX_REASON + 3);
        assert!(r.ends_with("..."));
        assert_eq!(reason("short"), "short");
    }

    #[test]
    fn messages_name_the_problem() {
        let e = DecodeError::MissingField { field: "intent" };
        assert_eq!(e.to_string(), "missing required field `intent`");
        assert_eq!(e.kind(), "missing_field");
        let e = DecodeError::BadMagic { found: *b"XP" };
        assert!(e.to_string().contains("58, 50"), "{e}");
        assert_eq!(
            EncodeError::TooLarge { len: 70_000 }.to_string(),
            "payload too large: 70000 bytes, max 65536"
        );
    }
}
