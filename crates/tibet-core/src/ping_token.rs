//! The token of an answered ping written straight from the packet and the
//! answer: its file line is printed field by field, without building the
//! `serde_json` maps, strings and copies a [`NewToken`](crate::NewToken)
//! holds, and its canonical JSON (hashed) is put together from the line's
//! pieces, so each string is escaped once. An audited node writes one of
//! these per ping, so this is the audit's hot path.
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

    /// Appends the token's file line up to and including
    /// `"content_hash": "` (see
    /// [`Token::write_json_line`](crate::Token::write_json_line)), and its
    /// canonical JSON, the text that is hashed (see
    /// [`Token::hash_content`](crate::Token::hash_content)), to `canon`.
    /// Each string is escaped once, into the line; the canonical JSON is
    /// put together from the line's pieces (its keys sorted). The caller
    /// ends the line with [`end_line`] once the hash is known.
    pub(crate) fn write(&self, line: &mut Vec<u8>, canon: &mut Vec<u8>, stamp: &Stamp<'_>) {
        let p = self.packet;
        let at = |line: &Vec<u8>| line.len();
        line.extend_from_slice(b"{\"token_id\": ");
        let token_id = at(line);
        pyjson::write_str(line, stamp.token_id);
        let token_id = token_id..at(line);
        line.extend_from_slice(b", \"action\": ");
        let action = at(line);
        // `ping.` and a type's name: nothing to escape.
        line.extend_from_slice(b"\"ping.");
        line.extend_from_slice(p.ping_type.as_str().as_bytes());
        line.push(b'"');
        let action = action..at(line);
        line.extend_from_slice(b", \"timestamp\": ");
        let timestamp = at(line);
        pyjson::write_str(line, stamp.timestamp);
        let timestamp = timestamp..at(line);
        line.extend_from_slice(b", \"actor\": ");
        let actor = at(line);
        pyjson::write_str(line, &p.source_did);
        let actor = actor..at(line);

        // ERIN: intent, purpose, payload as received; sorted, the payload
        // goes before the purpose.
        line.extend_from_slice(b", \"erin\": {\"intent\": ");
        let intent = at(line);
        pyjson::write_str(line, &p.intent);
        let intent = intent..at(line);
        line.extend_from_slice(b", ");
        let purpose_group = at(line);
        line.extend_from_slice(b"\"purpose\": ");
        let purpose = at(line);
        pyjson::write_str(line, self.purpose.0);
        let purpose = purpose..at(line);
        if let Some((bytes, sha)) = &self.purpose.1 {
            write_capped(line, "purpose", *bytes, sha);
        }
        let purpose_group = purpose_group..at(line);
        line.extend_from_slice(b", ");
        let payload_group = at(line);
        self.write_payload(line, false);
        let payload_group = payload_group..at(line);

        line.extend_from_slice(b"}, \"eraan\": [");
        let eraan = at(line) - 1;
        line.extend_from_within(actor.clone());
        line.extend_from_slice(b", ");
        let target = at(line);
        pyjson::write_str(line, &p.target_did);
        let target = target..at(line);
        line.push(b']');
        let eraan = eraan..at(line);

        line.extend_from_slice(b", \"eromheen\": {");
        let mut context: [std::ops::Range<usize>; 8] = Default::default();
        let mut first = true;
        for field in Context::INSERTED {
            if !self.has(field) {
                continue;
            }
            if !first {
                line.extend_from_slice(b", ");
            }
            first = false;
            let start = at(line);
            self.write_context(line, field);
            context[field as usize] = start..at(line);
        }
        line.push(b'}');

        line.extend_from_slice(b", \"erachter\": ");
        let erachter = at(line);
        if p.purpose.is_empty() {
            // `Ping from A to B`, from the quoted texts already in the line
            // (without their quotes).
            let (a, b) = (
                actor.start + 1..actor.end - 1,
                target.start + 1..target.end - 1,
            );
            line.extend_from_slice(b"\"Ping from ");
            line.extend_from_within(a);
            line.extend_from_slice(b" to ");
            line.extend_from_within(b);
            line.push(b'"');
        } else {
            line.extend_from_within(purpose.clone());
        }
        let erachter = erachter..at(line);
        line.extend_from_slice(b", \"parent_id\": ");
        let parent = at(line);
        write_parent(line, stamp.parent_id);
        let parent = parent..at(line);
        line.extend_from_slice(b", \"state\": \"created\", \"content_hash\": \"");

        let piece = |canon: &mut Vec<u8>, r: &std::ops::Range<usize>| {
            canon.extend_from_slice(&line[r.clone()]);
        };
        // Each key, then its value as already written in the line.
        let keyed = |canon: &mut Vec<u8>, pairs: &[(&[u8], &std::ops::Range<usize>)]| {
            for (key, r) in pairs {
                canon.extend_from_slice(key);
                piece(canon, r);
            }
        };
        keyed(
            canon,
            &[
                (b"{\"action\": ", &action),
                (b", \"actor\": ", &actor),
                (b", \"eraan\": ", &eraan),
                (b", \"erachter\": ", &erachter),
                (b", \"erin\": {\"intent\": ", &intent),
            ],
        );
        canon.extend_from_slice(b", ");
        if self.payload_capped.is_some() || keys_in_order(&p.payload) {
            piece(canon, &payload_group);
        } else {
            self.write_payload(canon, true);
        }
        canon.extend_from_slice(b", ");
        piece(canon, &purpose_group);
        canon.extend_from_slice(b"}, \"eromheen\": {");
        let mut first = true;
        for field in Context::SORTED {
            let r = &context[field as usize];
            if r.is_empty() {
                continue;
            }
            if !first {
                canon.extend_from_slice(b", ");
            }
            first = false;
            piece(canon, r);
        }
        keyed(
            canon,
            &[
                (b"}, \"parent_id\": ", &parent),
                (b", \"state\": \"created\", \"timestamp\": ", &timestamp),
                (b", \"token_id\": ", &token_id),
            ],
        );
        canon.push(b'}');
    }

    /// Appends `"payload": ...` and its length and hash when capped.
    fn write_payload(&self, out: &mut Vec<u8>, sorted: bool) {
        out.extend_from_slice(b"\"payload\": ");
        match &self.payload_capped {
            None => pyjson::write_map(out, &self.packet.payload, sorted),
            Some((bytes, sha)) => {
                pyjson::write_map(out, &JsonMap::new(), sorted);
                write_capped(out, "payload", *bytes, sha);
            }
        }
    }

    /// Whether this token's EROMHEEN has `field`.
    fn has(&self, field: Context) -> bool {
        use Context::*;
        match field {
            RoutingMode | HopCount | PacketId => true,
            PodId => self.packet.pod_id.as_deref().is_some_and(|s| !s.is_empty()),
            Decision | TrustScore | Zone => self.answer.is_some(),
            Authenticated => self.authenticated.is_some(),
        }
    }

    /// Appends EROMHEEN's `field` as `"key": value`.
    fn write_context(&self, out: &mut Vec<u8>, field: Context) {
        use Context::*;
        let p = self.packet;
        let key: &[u8] = match field {
            RoutingMode => b"\"routing_mode\": ",
            HopCount => b"\"hop_count\": ",
            PacketId => b"\"packet_id\": ",
            PodId => b"\"pod_id\": ",
            Decision => b"\"decision\": ",
            TrustScore => b"\"trust_score\": ",
            Zone => b"\"zone\": ",
            Authenticated => b"\"authenticated\": ",
        };
        out.extend_from_slice(key);
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
}

/// Ends a line begun by [`PingFacts::write`]: the hash, the signature,
/// the newline.
pub(crate) fn end_line(line: &mut Vec<u8>, digest: &[u8; 32]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in digest {
        line.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
    }
    line.extend_from_slice(b"\", \"signature\": \"\"}\n");
}

/// Whether every object in `map` (itself included) has its keys in sorted
/// order already, so that its JSON with sorted keys is its JSON as
/// received.
fn keys_in_order(map: &JsonMap) -> bool {
    fn value_in_order(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => keys_in_order(m),
            serde_json::Value::Array(items) => items.iter().all(value_in_order),
            _ => true,
        }
    }
    let mut last: Option<&String> = None;
    for (k, v) in map {
        if last.is_some_and(|l| l >= k) || !value_in_order(v) {
            return false;
        }
        last = Some(k);
    }
    true
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

impl Context {
    /// In the order the generic path inserts them (the file line's order).
    const INSERTED: [Context; 8] = [
        Context::RoutingMode,
        Context::HopCount,
        Context::PacketId,
        Context::PodId,
        Context::Decision,
        Context::TrustScore,
        Context::Zone,
        Context::Authenticated,
    ];
    /// Sorted by key (the hashed text's order).
    const SORTED: [Context; 8] = [
        Context::Authenticated,
        Context::Decision,
        Context::HopCount,
        Context::PacketId,
        Context::PodId,
        Context::RoutingMode,
        Context::TrustScore,
        Context::Zone,
    ];
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
