//! The token of an answered ping written straight from the packet and the
//! answer: its canonical JSON (hashed) and its file line are printed field
//! by field, without building the `serde_json` maps, strings and copies a
//! [`NewToken`](crate::NewToken) holds. An audited node writes one of these
//! per ping, so this is the audit's hot path.
//!
//! The bytes are those of the generic path, [`packet_token`](crate::packet_token)
//! sealed by a [`Provider`](crate::Provider) and written by
//! [`Token::write_json_line`](crate::Token::write_json_line) (with EROMHEEN
//! `authenticated` added when given); a property test compares the two byte
//! for byte.

use tibet_ping::{AirlockZone, JsonMap, PingDecision, PingPacket, PingResponse};

use crate::cap::{self, MAX_TOKEN_PAYLOAD, MAX_TOKEN_PURPOSE};
use crate::pyjson;

/// The three facts of an answer a ping token records (EROMHEEN `decision`,
/// `trust_score`, `zone`): what an audit record needs to keep of a
/// [`PingResponse`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PingAnswer {
    /// The airlock's decision.
    pub decision: PingDecision,
    /// The sender's trust score.
    pub trust_score: f64,
    /// The airlock zone the decision was made in.
    pub zone: AirlockZone,
}

impl From<&PingResponse> for PingAnswer {
    fn from(r: &PingResponse) -> Self {
        PingAnswer {
            decision: r.decision,
            trust_score: r.trust_score,
            zone: r.airlock_zone,
        }
    }
}

/// What a ping token says, borrowed from the packet; the provider adds
/// id, time, parent and hash.
pub(crate) struct PingFacts<'a> {
    pub(crate) packet: &'a PingPacket,
    pub(crate) answer: Option<PingAnswer>,
    pub(crate) authenticated: Option<bool>,
    /// The answer's trust score as JSON text.
    trust: &'a [u8],
    /// The purpose as kept (capped), and the full one's length and hash
    /// when it was capped.
    purpose: (&'a str, Option<(usize, String)>),
    /// `None` when the payload is kept; else its compact JSON's length
    /// and hash.
    payload_capped: Option<(usize, String)>,
}

/// The fields the provider adds to a token.
pub(crate) struct Stamp<'a> {
    pub(crate) token_id: &'a str,
    pub(crate) timestamp: &'a str,
    pub(crate) parent_id: Option<&'a str>,
}

impl<'a> PingFacts<'a> {
    /// The facts of `packet` answered by `answer` (EROMHEEN
    /// `authenticated` when given); `floats` renders the trust score.
    pub(crate) fn new(
        packet: &'a PingPacket,
        answer: Option<PingAnswer>,
        authenticated: Option<bool>,
        floats: &'a mut FloatText,
    ) -> Self {
        let (kept, was_cut) = cap::cut(&packet.purpose, MAX_TOKEN_PURPOSE);
        let purpose_full = was_cut.then(|| {
            (
                packet.purpose.len(),
                cap::sha256_hex(packet.purpose.as_bytes()),
            )
        });
        let payload_capped = (!cap::payload_fits(&packet.payload, MAX_TOKEN_PAYLOAD)).then(|| {
            let text = serde_json::to_vec(&packet.payload).unwrap_or_default();
            (text.len(), cap::sha256_hex(&text))
        });
        let trust = match answer {
            Some(a) => floats.text(a.trust_score),
            None => &[],
        };
        PingFacts {
            packet,
            answer,
            authenticated,
            trust,
            purpose: (kept, purpose_full),
            payload_capped,
        }
    }

    /// Appends the action, `ping.<type>`.
    fn write_action(&self, out: &mut Vec<u8>) {
        write_joined(out, &["ping.", self.packet.ping_type.as_str()]);
    }

    /// Appends ERACHTER: the (capped) purpose, or `Ping from A to B`.
    fn write_erachter(&self, out: &mut Vec<u8>) {
        let p = self.packet;
        if p.purpose.is_empty() {
            write_joined(out, &["Ping from ", &p.source_did, " to ", &p.target_did]);
        } else {
            pyjson::write_str(out, self.purpose.0);
        }
    }

    /// Appends ERAAN, `[source, target]`.
    fn write_eraan(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        pyjson::write_str(out, &self.packet.source_did);
        out.extend_from_slice(b", ");
        pyjson::write_str(out, &self.packet.target_did);
        out.push(b']');
    }

    /// Appends ERIN with keys in insertion order or sorted.
    fn write_erin(&self, out: &mut Vec<u8>, sorted: bool) {
        let p = self.packet;
        out.extend_from_slice(b"{\"intent\": ");
        pyjson::write_str(out, &p.intent);
        if sorted {
            self.write_payload(out, sorted);
            self.write_purpose(out);
        } else {
            self.write_purpose(out);
            self.write_payload(out, sorted);
        }
        out.push(b'}');
    }

    /// Appends `, "purpose": ...` and its length and hash when capped.
    fn write_purpose(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b", \"purpose\": ");
        pyjson::write_str(out, self.purpose.0);
        if let Some((bytes, sha)) = &self.purpose.1 {
            write_capped(out, "purpose", *bytes, sha);
        }
    }

    /// Appends `, "payload": ...` and its length and hash when capped.
    fn write_payload(&self, out: &mut Vec<u8>, sorted: bool) {
        out.extend_from_slice(b", \"payload\": ");
        match &self.payload_capped {
            None => pyjson::write_map(out, &self.packet.payload, sorted),
            Some((bytes, sha)) => {
                pyjson::write_map(out, &JsonMap::new(), sorted);
                write_capped(out, "payload", *bytes, sha);
            }
        }
    }

    /// Appends EROMHEEN with keys in insertion order or sorted.
    fn write_eromheen(&self, out: &mut Vec<u8>, sorted: bool) {
        use Context::*;
        const INSERTED: [Context; 8] = [
            RoutingMode,
            HopCount,
            PacketId,
            PodId,
            Decision,
            TrustScore,
            Zone,
            Authenticated,
        ];
        const SORTED: [Context; 8] = [
            Authenticated,
            Decision,
            HopCount,
            PacketId,
            PodId,
            RoutingMode,
            TrustScore,
            Zone,
        ];
        let p = self.packet;
        let mut first = true;
        for field in if sorted { SORTED } else { INSERTED } {
            let (key, present) = match field {
                RoutingMode => ("routing_mode", true),
                HopCount => ("hop_count", true),
                PacketId => ("packet_id", true),
                PodId => ("pod_id", p.pod_id.as_deref().is_some_and(|s| !s.is_empty())),
                Decision => ("decision", self.answer.is_some()),
                TrustScore => ("trust_score", self.answer.is_some()),
                Zone => ("zone", self.answer.is_some()),
                Authenticated => ("authenticated", self.authenticated.is_some()),
            };
            if !present {
                continue;
            }
            out.extend_from_slice(if first { b"{" } else { b", " });
            first = false;
            pyjson::write_str(out, key);
            out.extend_from_slice(b": ");
            match (field, &self.answer) {
                (RoutingMode, _) => pyjson::write_str(out, p.routing_mode.as_str()),
                (HopCount, _) => write_int(out, p.hop_count.into()),
                (PacketId, _) => pyjson::write_str(out, &p.packet_id),
                (PodId, _) => pyjson::write_str(out, p.pod_id.as_deref().unwrap_or_default()),
                (Decision, Some(a)) => pyjson::write_str(out, a.decision.as_str()),
                (TrustScore, _) => out.extend_from_slice(self.trust),
                (Zone, Some(a)) => pyjson::write_str(out, a.zone.as_str()),
                (Authenticated, _) => write_bool(out, self.authenticated == Some(true)),
                (Decision | Zone, None) => {}
            }
        }
        out.push(b'}');
    }

    /// Appends the canonical JSON that is hashed (see
    /// [`Token::hash_content`](crate::Token::hash_content)).
    pub(crate) fn write_hash_content(&self, out: &mut Vec<u8>, stamp: &Stamp<'_>) {
        out.extend_from_slice(b"{\"action\": ");
        self.write_action(out);
        out.extend_from_slice(b", \"actor\": ");
        pyjson::write_str(out, &self.packet.source_did);
        out.extend_from_slice(b", \"eraan\": ");
        self.write_eraan(out);
        out.extend_from_slice(b", \"erachter\": ");
        self.write_erachter(out);
        out.extend_from_slice(b", \"erin\": ");
        self.write_erin(out, true);
        out.extend_from_slice(b", \"eromheen\": ");
        self.write_eromheen(out, true);
        out.extend_from_slice(b", \"parent_id\": ");
        write_parent(out, stamp.parent_id);
        out.extend_from_slice(b", \"state\": \"created\", \"timestamp\": ");
        pyjson::write_str(out, stamp.timestamp);
        out.extend_from_slice(b", \"token_id\": ");
        pyjson::write_str(out, stamp.token_id);
        out.push(b'}');
    }

    /// Appends the token's file line (see
    /// [`Token::write_json_line`](crate::Token::write_json_line)), no newline.
    pub(crate) fn write_line(&self, out: &mut Vec<u8>, stamp: &Stamp<'_>, content_hash: &str) {
        out.extend_from_slice(b"{\"token_id\": ");
        pyjson::write_str(out, stamp.token_id);
        out.extend_from_slice(b", \"action\": ");
        self.write_action(out);
        out.extend_from_slice(b", \"timestamp\": ");
        pyjson::write_str(out, stamp.timestamp);
        out.extend_from_slice(b", \"actor\": ");
        pyjson::write_str(out, &self.packet.source_did);
        out.extend_from_slice(b", \"erin\": ");
        self.write_erin(out, false);
        out.extend_from_slice(b", \"eraan\": ");
        self.write_eraan(out);
        out.extend_from_slice(b", \"eromheen\": ");
        self.write_eromheen(out, false);
        out.extend_from_slice(b", \"erachter\": ");
        self.write_erachter(out);
        out.extend_from_slice(b", \"parent_id\": ");
        write_parent(out, stamp.parent_id);
        out.extend_from_slice(b", \"state\": \"created\", \"content_hash\": ");
        pyjson::write_str(out, content_hash);
        out.extend_from_slice(b", \"signature\": \"\"}");
    }
}

/// The keys of a ping token's EROMHEEN.
#[derive(Clone, Copy)]
enum Context {
    RoutingMode,
    HopCount,
    PacketId,
    PodId,
    Decision,
    TrustScore,
    Zone,
    Authenticated,
}

/// Appends `, "<key>_bytes": N, "<key>_sha256": "..."`.
fn write_capped(out: &mut Vec<u8>, key: &str, bytes: usize, sha: &str) {
    out.extend_from_slice(b", ");
    pyjson::write_str(out, &format!("{key}_bytes"));
    out.extend_from_slice(b": ");
    write_int(out, bytes as u64);
    out.extend_from_slice(b", ");
    pyjson::write_str(out, &format!("{key}_sha256"));
    out.extend_from_slice(b": ");
    pyjson::write_str(out, sha);
}

/// Appends the JSON string of `parts` joined, without joining them first.
fn write_joined(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for part in parts {
        let start = out.len();
        pyjson::write_str(out, part);
        // Drop the part's own quotes.
        out.pop();
        out.remove(start);
    }
    out.push(b'"');
}

/// Appends an integer in decimal (no allocation).
fn write_int(out: &mut Vec<u8>, n: u64) {
    use std::io::Write;
    let _ = write!(out, "{n}");
}

fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// The JSON text of the last float rendered, kept: a node answers most
/// pings with one of a few trust scores, and Python's `repr` is costly.
#[derive(Debug, Default)]
pub(crate) struct FloatText {
    bits: Option<u64>,
    text: Vec<u8>,
}

impl FloatText {
    /// What `json!(f)` holds, as Python prints it: a finite float's repr,
    /// else `null`.
    fn text(&mut self, f: f64) -> &[u8] {
        if self.bits != Some(f.to_bits()) {
            self.text.clear();
            if f.is_finite() {
                tibet_ping::pyjson::write_float(&mut self.text, f);
            } else {
                self.text.extend_from_slice(b"null");
            }
            self.bits = Some(f.to_bits());
        }
        &self.text
    }
}

fn write_parent(out: &mut Vec<u8>, parent: Option<&str>) {
    match parent {
        Some(p) => pyjson::write_str(out, p),
        None => out.extend_from_slice(b"null"),
    }
}
