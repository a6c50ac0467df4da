//! The control protocol's messages: one JSON object per line each way.
//! Kept free of I/O and of the rest of the CLI so that the fuzz target in
//! `fuzz/` can include this file as it is.

use serde::{Deserialize, Serialize};

/// Longest error detail echoed back for a bad request, in bytes.
const MAX_ERROR_DETAIL: usize = 200;

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Request {
    /// The pending pings.
    List,
    /// Accept a pending ping; optionally set the sender's trust.
    Approve {
        /// The pending ping's packet id.
        id: String,
        /// Its sender, when several senders used the id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// New trust score for the sender (0..1).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "optional_number"
        )]
        trust: Option<f64>,
    },
    /// Drop a pending ping.
    Reject {
        /// The pending ping's packet id.
        id: String,
        /// Its sender, when several senders used the id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// The node's counters.
    Stats,
    /// The peer table (for `tibet-iot status`).
    Peers,
    /// The pins in force (`tibet-iot pins list`).
    Pins,
    /// Remove a DID's pin (`tibet-iot pins remove DID`).
    Unpin {
        /// The DID.
        did: String,
    },
}

/// A pin as shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PinItem {
    /// The pinned DID.
    pub(crate) did: String,
    /// Its public key (base64).
    pub(crate) public_key: String,
    /// The first 16 hex digits of the key's SHA-256.
    pub(crate) fingerprint: String,
}

/// A pending ping as shown to the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PendingItem {
    /// Packet id; the handle for approve/reject.
    pub(crate) id: String,
    /// Who sent it.
    pub(crate) source_did: String,
    /// What it wants.
    pub(crate) intent: String,
    /// Why.
    pub(crate) purpose: String,
    /// The sender's trust when it arrived.
    pub(crate) trust: f64,
    /// The zone it was put in.
    pub(crate) zone: String,
    /// When it arrived (ISO 8601).
    pub(crate) received_at: String,
}

/// One response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub(crate) struct Response {
    /// Whether the request succeeded.
    pub(crate) ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// For `list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<Vec<PendingItem>>,
    /// For `approve` / `reject`: the item acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) item: Option<PendingItem>,
    /// For `stats`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stats: Option<serde_json::Value>,
    /// For `peers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) peers: Option<Vec<PeerItem>>,
    /// For `pins` (all of them) and `unpin` (the one removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pins: Option<Vec<PinItem>>,
}

impl Response {
    /// A failure with a message.
    pub(crate) fn error(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// Reads an optional JSON number as `f64`. The workspace's `serde_json`
/// keeps each number as its text (`arbitrary_precision`), which an
/// internally tagged enum buffers as a map that `f64` cannot read; a
/// `serde_json::Value` can.
fn optional_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("trust is out of range")),
        Some(_) => Err(serde::de::Error::custom("trust must be a number")),
    }
}

/// Parses one request line; a bad one gives the error message to send
/// back (bounded, whatever the line held).
pub(crate) fn parse_request(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice::<Request>(line).map_err(|e| {
        let mut detail = e.to_string();
        if detail.len() > MAX_ERROR_DETAIL {
            let mut at = MAX_ERROR_DETAIL;
            while !detail.is_char_boundary(at) {
                at -= 1;
            }
            detail.truncate(at);
            detail.push_str("...");
        }
        format!("bad request: {detail}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_requests_get_a_bounded_error() {
        let long = format!(r#"{{"op":"{}"}}"#, "x".repeat(100_000));
        let msg = parse_request(long.as_bytes()).unwrap_err();
        assert!(msg.starts_with("bad request: unknown variant"), "{msg}");
        assert!(msg.len() < 260, "{}", msg.len());
        assert_eq!(parse_request(br#"{"op":"list"}"#), Ok(Request::List));
    }

    #[test]
    fn approve_reads_trust_in_any_number_spelling() {
        for (text, trust) in [
            (r#"{"op":"approve","id":"p","trust":0.9}"#, Some(0.9)),
            (r#"{"op":"approve","id":"p","trust":0.90}"#, Some(0.9)),
            (r#"{"op":"approve","id":"p","trust":1}"#, Some(1.0)),
            (r#"{"op":"approve","id":"p","trust":5e-1}"#, Some(0.5)),
            (r#"{"op":"approve","id":"p","trust":null}"#, None),
            (r#"{"op":"approve","id":"p"}"#, None),
        ] {
            assert_eq!(
                parse_request(text.as_bytes()),
                Ok(Request::Approve {
                    id: "p".into(),
                    from: None,
                    trust
                }),
                "{text}"
            );
        }
        for bad in [
            r#"{"op":"approve","id":"p","trust":"high"}"#,
            r#"{"op":"approve","id":"p","trust":1e400}"#,
        ] {
            assert!(parse_request(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}

/// A peer as the control socket's `peers` op reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PeerItem {
    /// Its DID.
    pub(crate) did: String,
    /// Its last known address.
    pub(crate) address: String,
    /// When it was last heard from (ISO 8601).
    pub(crate) last_seen: String,
    /// Seconds since then.
    pub(crate) idle_secs: f64,
    /// Packets counted from it.
    pub(crate) packets: u64,
    /// Its trust as the node computes it now.
    pub(crate) trust: f64,
    /// The zone that trust falls in by the thresholds (rules may differ per
    /// intent).
    pub(crate) zone: String,
    /// Its pinned key's fingerprint (16 hex digits of the key's SHA-256).
    pub(crate) key_fingerprint: Option<String>,
    /// Its learned route: next hop and hop count.
    pub(crate) route: Option<String>,
}
