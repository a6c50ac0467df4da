//! Counters of refused datagrams by [`DecodeError`] kind, with the field
//! length caps counted per field class.

use serde::Serialize;

use super::DecodeError;

/// Datagrams refused by the codec, by reason. Feed every decode failure to
/// [`DecodeCounts::record`]; [`DecodeCounts::total`] is the malformed count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecodeCounts {
    /// Header problems: short, bad magic, version, too large, truncated,
    /// trailing bytes.
    pub header: u64,
    /// Undecodable payloads (syntax, nesting, not a map).
    pub payload: u64,
    /// Missing, duplicate or mistyped fields.
    pub fields: u64,
    /// A DID field over [`MAX_DID_LEN`](crate::MAX_DID_LEN).
    pub did_too_long: u64,
    /// An id field over [`MAX_ID_LEN`](crate::MAX_ID_LEN).
    pub id_too_long: u64,
    /// A nonce over [`MAX_NONCE_LEN`](crate::MAX_NONCE_LEN).
    pub nonce_too_long: u64,
    /// An intent over [`MAX_INTENT_LEN`](crate::MAX_INTENT_LEN).
    pub intent_too_long: u64,
    /// A purpose over [`MAX_PURPOSE_LEN`](crate::MAX_PURPOSE_LEN).
    pub purpose_too_long: u64,
}

impl DecodeCounts {
    /// Counts one refused datagram.
    pub fn record(&mut self, err: &DecodeError) {
        let slot = match err {
            DecodeError::ShortHeader { .. }
            | DecodeError::BadMagic { .. }
            | DecodeError::UnsupportedVersion { .. }
            | DecodeError::TooLarge { .. }
            | DecodeError::Truncated { .. }
            | DecodeError::TrailingBytes { .. } => &mut self.header,
            DecodeError::Payload { .. } => &mut self.payload,
            DecodeError::MissingField { .. }
            | DecodeError::WrongType { .. }
            | DecodeError::DuplicateField { .. } => &mut self.fields,
            DecodeError::FieldTooLong { field, .. } => match *field {
                "source_did" | "target_did" | "vouched_by" | "responder_did" => {
                    &mut self.did_too_long
                }
                "nonce" => &mut self.nonce_too_long,
                "intent" => &mut self.intent_too_long,
                "purpose" => &mut self.purpose_too_long,
                _ => &mut self.id_too_long,
            },
        };
        *slot += 1;
    }

    /// Fields refused for their length.
    pub fn too_long(&self) -> u64 {
        self.did_too_long
            + self.id_too_long
            + self.nonce_too_long
            + self.intent_too_long
            + self.purpose_too_long
    }

    /// All refused datagrams.
    pub fn total(&self) -> u64 {
        self.header + self.payload + self.fields + self.too_long()
    }
}
