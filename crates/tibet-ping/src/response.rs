//! [`Answer`]: what [`PingNode::answer`](crate::PingNode::answer) decided for
//! a ping, without the owned [`PingResponse`](crate::PingResponse); and
//! [`ResponseView`], that answer's wire form borrowed from the node and the
//! packet, which the codec writes byte for byte as it writes the equivalent
//! `PingResponse` (docs/PROTOCOL.md §3).
//!
//! The receive hot path of a listener needs the response only as bytes:
//! building a `PingResponse` costs a dozen allocations (ids, DIDs, the
//! timestamp, the `fira_breakdown` map with its keys and number texts), all
//! dropped right after encoding. [`PingNode::receive`](crate::PingNode::receive)
//! still builds it, from the same [`Answer`].

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::nonce::ReplayReason;
use crate::packet::{AirlockZone, PingDecision};
use crate::ping_node::Outcome;
use crate::trust::TrustAssessment;

/// Length of a response id: `resp_` and 16 lowercase hex digits.
pub(crate) const RESPONSE_ID_LEN: usize = 21;

/// The decision on one received ping; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// What happened.
    pub outcome: Outcome,
    /// For [`Outcome::Replay`]: why.
    pub replay: Option<ReplayReason>,
    /// The decision the response carries.
    pub decision: PingDecision,
    /// The zone the response carries.
    pub zone: AirlockZone,
    /// The sender's trust, as the response carries it (`trust_score` and
    /// `fira_breakdown`); `None` for a ping refused before the airlock (rate
    /// limit, replay), whose response says 0.0 and an empty breakdown.
    pub trust: Option<TrustAssessment>,
    /// Name of the airlock rule that decided, if any.
    pub applied_rule: Option<String>,
    /// The payload's `reason`, for a refusal that gives one.
    pub reason: Option<&'static str>,
    /// Processing time in milliseconds, as the caller measured it
    /// ([`Answer::set_processing_time`]); `None` until then.
    pub rtt_ms: Option<f64>,
    pub(crate) response_id: [u8; RESPONSE_ID_LEN],
}

impl Answer {
    /// Whether the response goes on the wire, as
    /// [`Reception::should_reply`](crate::Reception::should_reply).
    pub fn should_reply(&self) -> bool {
        matches!(self.outcome, Outcome::Accepted | Outcome::Pending)
    }

    /// The trust score the response carries (0.0 without an assessment).
    pub fn trust_score(&self) -> f64 {
        self.trust.map_or(0.0, |t| t.score)
    }

    /// Records how long deciding took: `started` and `finished` are the
    /// caller's readings of its own monotonic clock just before and just
    /// after [`PingNode::answer`](crate::PingNode::answer). The response's
    /// `rtt_ms` counts whole microseconds of that clock, as the reference's
    /// (two readings of a microsecond clock): no false precision, and
    /// answers of one burst come out the same length, so the driver can
    /// send them segmented (docs/PROTOCOL.md). A ping refused before the
    /// airlock (no [`Answer::trust`]) carries none.
    pub fn set_processing_time(&mut self, started: Duration, finished: Duration) {
        if self.trust.is_some() {
            let micros = finished.as_micros().saturating_sub(started.as_micros());
            self.rtt_ms = Some(micros as f64 / 1000.0);
        }
    }

    /// The response id drawn for this answer.
    pub fn response_id(&self) -> &str {
        // Built from ASCII only (see `ids::response_id_bytes`).
        core::str::from_utf8(&self.response_id).unwrap_or_default()
    }
}

/// A response borrowed from an [`Answer`], the packet it answers and the
/// answering node: the same fields, in the same order, serialised exactly
/// as the owned [`PingResponse`](crate::PingResponse) with an empty
/// `capabilities`, no `tibet_token_id` and no signature. Made by
/// [`PingNode::response_view`](crate::PingNode::response_view), written by
/// [`PacketCodec::encode_view_into`](crate::PacketCodec::encode_view_into).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ResponseView<'a> {
    pub(crate) response_id: &'a str,
    pub(crate) in_response_to: &'a str,
    pub(crate) responder_did: &'a str,
    pub(crate) decision: PingDecision,
    pub(crate) payload: Reason,
    pub(crate) capabilities: &'static [&'static str],
    pub(crate) trust_score: f64,
    pub(crate) fira_breakdown: Fira,
    pub(crate) tibet_token_id: Option<&'a str>,
    pub(crate) timestamp: &'a str,
    pub(crate) rtt_ms: Option<f64>,
    pub(crate) airlock_zone: AirlockZone,
    pub(crate) applied_rule: Option<&'a str>,
}

impl ResponseView<'_> {
    /// The `trust_score` written.
    pub fn trust_score(&self) -> f64 {
        self.trust_score
    }

    /// The `rtt_ms` written.
    pub fn rtt_ms(&self) -> Option<f64> {
        self.rtt_ms
    }
}

impl ResponseView<'_> {
    /// Writes the compact JSON `serde_json` writes for this view (and for
    /// the equivalent `PingResponse`): the keys and fixed parts as
    /// constants, the strings and numbers through `serde_json`, so escapes
    /// and number spellings are its own. `answer_bytes` checks the two
    /// agree byte for byte.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        fn text(out: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
            crate::codec::write_json(out, s)
        }
        fn word(out: &mut Vec<u8>, s: &str) {
            // Enum spellings: plain ASCII letters, nothing to escape.
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        fn float(out: &mut Vec<u8>, v: f64) -> Result<(), serde_json::Error> {
            crate::codec::write_json(out, &v)
        }
        out.extend_from_slice(br#"{"response_id":"#);
        text(out, self.response_id)?;
        out.extend_from_slice(br#","in_response_to":"#);
        text(out, self.in_response_to)?;
        out.extend_from_slice(br#","responder_did":"#);
        text(out, self.responder_did)?;
        out.extend_from_slice(br#","decision":"#);
        word(out, self.decision.as_str());
        out.extend_from_slice(br#","payload":"#);
        match self.payload.0 {
            None => out.extend_from_slice(b"{}"),
            Some(reason) => {
                out.extend_from_slice(br#"{"reason":"#);
                text(out, reason)?;
                out.push(b'}');
            }
        }
        out.extend_from_slice(br#","capabilities":[],"trust_score":"#);
        float(out, self.trust_score)?;
        out.extend_from_slice(br#","fira_breakdown":"#);
        match self.fira_breakdown.0 {
            None => out.extend_from_slice(b"{}"),
            Some(t) => {
                out.extend_from_slice(br#"{"score":"#);
                float(out, t.score)?;
                out.extend_from_slice(br#","source":"#);
                word(out, t.source.as_str());
                if let Some(n) = t.vouch_count {
                    out.extend_from_slice(br#","vouch_count":"#);
                    crate::codec::write_json(out, &(n as u64))?;
                }
                out.push(b'}');
            }
        }
        out.extend_from_slice(br#","tibet_token_id":null,"timestamp":"#);
        text(out, self.timestamp)?;
        out.extend_from_slice(br#","rtt_ms":"#);
        match self.rtt_ms {
            None => out.extend_from_slice(b"null"),
            Some(v) => float(out, v)?,
        }
        out.extend_from_slice(br#","airlock_zone":"#);
        word(out, self.airlock_zone.as_str());
        out.extend_from_slice(br#","applied_rule":"#);
        match self.applied_rule {
            None => out.extend_from_slice(b"null"),
            Some(rule) => text(out, rule)?,
        }
        out.push(b'}');
        Ok(())
    }
}

/// The `payload` of a node's own response: `{}` or `{"reason": ...}`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Reason(pub(crate) Option<&'static str>);

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(usize::from(self.0.is_some())))?;
        if let Some(reason) = self.0 {
            map.serialize_entry("reason", reason)?;
        }
        map.end()
    }
}

/// The `fira_breakdown` of [`TrustAssessment::fira_breakdown`], written
/// without building the map: `{}` without an assessment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Fira(pub(crate) Option<TrustAssessment>);

impl Serialize for Fira {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(t) = self.0 else {
            return s.serialize_map(Some(0))?.end();
        };
        let len = 2 + usize::from(t.vouch_count.is_some());
        let mut map = s.serialize_map(Some(len))?;
        // `serde_json` keeps a float `Value` as the text `ryu` writes, the
        // same text its serializer writes for an `f64`; msgpack writes a
        // float64 either way (see `codec/native.rs`).
        map.serialize_entry("score", &t.score)?;
        map.serialize_entry("source", t.source.as_str())?;
        if let Some(n) = t.vouch_count {
            map.serialize_entry("vouch_count", &(n as u64))?;
        }
        map.end()
    }
}
