//! Signing input, signatures of packets and responses, batch verification
//! (docs/PROTOCOL.md section 6).
//!
//! The signing input is the UTF-8 of Python's `json.dumps(obj,
//! sort_keys=True, separators=(",", ":"), ensure_ascii=True)` where `obj` is
//! the packet's object (its known fields, from the decoded values) minus
//! `signature` and `hop_count`; for a response, minus `signature`. Because
//! it is built from decoded values, a JSON frame and a msgpack frame of the
//! same packet have the same input. The `signature` text is standard base64
//! of the 64-byte Ed25519 signature.

use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer};
use serde::Serialize;
use serde_json::Value;

use super::keys::{Keypair, PublicKey};
use crate::packet::{PingPacket, PingResponse};
use crate::ping_node::PacketSigner;
use crate::pyjson::{self, Style};

/// Length of a signature's base64 text (64 bytes).
pub const SIGNATURE_TEXT_LEN: usize = 88;

/// Why a signature does not verify. The engine counts these by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The `signature` field is empty.
    #[error("unsigned")]
    Missing,
    /// Not standard base64 of 64 bytes.
    #[error("signature is not base64 of 64 bytes")]
    Malformed,
    /// Well-formed, but not a signature of this input by this key.
    #[error("signature does not verify")]
    Invalid,
}

impl SignatureError {
    /// A short stable name for counters and audit records.
    pub const fn as_str(self) -> &'static str {
        match self {
            SignatureError::Missing => "unsigned",
            SignatureError::Malformed | SignatureError::Invalid => "bad_signature",
        }
    }
}

/// Parses a `signature` field.
pub fn parse_signature(text: &str) -> Result<Signature, SignatureError> {
    if text.is_empty() {
        return Err(SignatureError::Missing);
    }
    if text.len() != SIGNATURE_TEXT_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut raw = [0u8; 64];
    match STANDARD.decode_slice(text, &mut raw) {
        Ok(64) => Ok(Signature::from_bytes(&raw)),
        _ => Err(SignatureError::Malformed),
    }
}

/// The base64 text of a signature.
pub fn signature_text(sig: &Signature) -> String {
    STANDARD.encode(sig.to_bytes())
}

fn object_without(value: &impl Serialize, drop: &[&str]) -> Value {
    // Serialising our own wire structs to a `Value` cannot fail: every key
    // is a string and every float is finite once decoded.
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        for key in drop {
            map.remove(*key);
        }
    }
    v
}

/// Canonical compact JSON bytes of any JSON value (sorted keys, compact separators).
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    pyjson::write_value(&mut out, value, Style::compact());
    out
}

/// The bytes a packet's signature covers: every field but `signature` and `hop_count`.
pub fn packet_signing_input(packet: &PingPacket) -> Vec<u8> {
    canonical_json(&object_without(packet, &["signature", "hop_count"]))
}

/// The bytes a response's signature covers: every field but `signature`.
pub fn response_signing_input(response: &PingResponse) -> Vec<u8> {
    canonical_json(&object_without(response, &["signature"]))
}

/// The `signature` text of arbitrary bytes, for callers that build the
/// signing input themselves (e.g. a load generator patching a template of
/// [`packet_signing_input`]).
pub fn sign_bytes(message: &[u8], key: &Keypair) -> String {
    signature_text(&key.signing_key().sign(message))
}

/// Signs `packet` in place: sets its `signature` field.
pub fn sign_packet(packet: &mut PingPacket, key: &Keypair) {
    packet.signature = signature_text(&key.signing_key().sign(&packet_signing_input(packet)));
}

/// A [`Keypair`] signs the packets a [`PingNode`](crate::PingNode) builds
/// (`PingNode::set_signer(Box::new(keypair))`).
impl PacketSigner for Keypair {
    fn sign(&self, packet: &PingPacket) -> String {
        signature_text(&self.signing_key().sign(&packet_signing_input(packet)))
    }
}

/// Checks `packet.signature` against `key`.
pub fn verify_packet(packet: &PingPacket, key: &PublicKey) -> Result<(), SignatureError> {
    let sig = parse_signature(&packet.signature)?;
    verify_bytes(&packet_signing_input(packet), &sig, key)
}

/// The `signature` text for `response`.
pub fn sign_response(response: &PingResponse, key: &Keypair) -> String {
    signature_text(&key.signing_key().sign(&response_signing_input(response)))
}

/// Checks a response's `signature` text against `key`.
pub fn verify_response(
    response: &PingResponse,
    signature: &str,
    key: &PublicKey,
) -> Result<(), SignatureError> {
    let sig = parse_signature(signature)?;
    verify_bytes(&response_signing_input(response), &sig, key)
}

/// Strict Ed25519 verification of `message` (rejects non-canonical and small-order parts).
pub fn verify_bytes(
    message: &[u8],
    sig: &Signature,
    key: &PublicKey,
) -> Result<(), SignatureError> {
    key.verifying_key()
        .verify_strict(message, sig)
        .map_err(|_| SignatureError::Invalid)
}

/// Verifies several packets at once, each against its key; one result per
/// packet, in order.
///
/// Well-formed signatures go through one `ed25519-dalek` batch check; if the
/// batch fails, each is checked alone so that only the bad ones are refused.
/// A batch that passes is re-checked by nothing: batch verification accepts
/// exactly what honest signers produce, and keys with small order are
/// refused when parsed ([`PublicKey::from_bytes`]).
pub fn verify_packets(items: &[(&PingPacket, &PublicKey)]) -> Vec<Result<(), SignatureError>> {
    let mut results = Vec::with_capacity(items.len());
    let mut messages = Vec::new();
    let mut sigs = Vec::new();
    let mut keys = Vec::new();
    let mut slots = Vec::new();
    for (i, (packet, key)) in items.iter().enumerate() {
        match parse_signature(&packet.signature) {
            Ok(sig) => {
                messages.push(packet_signing_input(packet));
                sigs.push(sig);
                keys.push(*key.verifying_key());
                slots.push(i);
                results.push(Ok(()));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    if messages.len() == 1 {
        results[slots[0]] = verify_bytes(&messages[0], &sigs[0], items[slots[0]].1);
        return results;
    }
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    if ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_err() {
        for (j, &slot) in slots.iter().enumerate() {
            results[slot] = verify_bytes(&messages[j], &sigs[j], items[slot].1);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{PingDecision, RoutingMode};
    use serde_json::json;

    fn packet() -> PingPacket {
        let mut p = PingPacket::new(
            "ping_0011223344556677",
            "jis:home:sensor",
            "jis:home:hub",
            "temperature.report",
            "hourly log",
        );
        p.nonce = "00112233445566778899aabbccddeeff".into();
        p.timestamp = "2026-11-26T11:00:33.762558+00:00".into();
        p.payload = json!({"celsius": 21.5, "big": 18446744073709551615u64, "tiny": 1e-5, "name": "k\u{fc}che"})
            .as_object()
            .unwrap()
            .clone();
        p
    }

    #[test]
    fn signing_input_is_compact_sorted_and_skips_hop_count_and_signature() {
        let text = String::from_utf8(packet_signing_input(&packet())).unwrap();
        assert!(
            text.starts_with(r#"{"intent":"temperature.report","max_hops":5,"nonce":"#),
            "{text}"
        );
        assert!(text.contains(r#""payload":{"big":18446744073709551615,"celsius":21.5,"name":"k\u00fcche","tiny":1e-05}"#), "{text}");
        assert!(!text.contains("hop_count") && !text.contains("\"signature\""));
        assert!(!text.contains(' ') || text.contains("hourly log"));
    }

    #[test]
    fn sign_verify_and_every_tamper_fails() {
        let key = Keypair::from_seed(&[42; 32]);
        let mut p = packet();
        sign_packet(&mut p, &key);
        assert_eq!(p.signature.len(), SIGNATURE_TEXT_LEN);
        assert_eq!(verify_packet(&p, &key.public()), Ok(()));

        // Relays change hop_count; the signature still holds.
        let mut hopped = p.clone();
        hopped.hop_count = 3;
        assert_eq!(verify_packet(&hopped, &key.public()), Ok(()));

        let other = Keypair::from_seed(&[43; 32]).public();
        assert_eq!(verify_packet(&p, &other), Err(SignatureError::Invalid));
        let tampers: [fn(&mut PingPacket); 4] = [
            |p| p.max_hops = 9,
            |p| p.purpose.push('!'),
            |p| p.routing_mode = RoutingMode::Mesh,
            |p| {
                p.payload.insert("extra".into(), json!(1));
            },
        ];
        for tamper in tampers {
            let mut t = p.clone();
            tamper(&mut t);
            assert_eq!(
                verify_packet(&t, &key.public()),
                Err(SignatureError::Invalid)
            );
        }
        let mut unsigned = p.clone();
        unsigned.signature.clear();
        assert_eq!(
            verify_packet(&unsigned, &key.public()),
            Err(SignatureError::Missing)
        );
        let mut garbage = p.clone();
        garbage.signature = "x".repeat(88);
        assert_eq!(
            verify_packet(&garbage, &key.public()),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn json_and_msgpack_frames_give_the_same_input() {
        use crate::codec::{Frame, PacketCodec};
        let p = packet();
        let want = packet_signing_input(&p);
        for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
            let datagram = codec.encode_packet(&p).unwrap();
            let Ok(Frame::Packet(back)) = codec.decode(&datagram) else {
                panic!("decode {:?}", codec.format());
            };
            assert_eq!(packet_signing_input(&back), want, "{:?}", codec.format());
        }
    }

    #[test]
    fn responses_sign_and_verify() {
        let key = Keypair::from_seed(&[5; 32]);
        let mut r = PingResponse {
            response_id: "resp_0011223344556677".into(),
            in_response_to: "ping_0011223344556677".into(),
            responder_did: "jis:home:hub".into(),
            decision: PingDecision::Accept,
            payload: Default::default(),
            capabilities: vec!["temperature".into()],
            trust_score: 0.9,
            fira_breakdown: Default::default(),
            tibet_token_id: None,
            timestamp: "2026-11-26T11:00:33+00:00".into(),
            rtt_ms: Some(0.25),
            airlock_zone: crate::packet::AirlockZone::Groen,
            applied_rule: None,
            signature: String::new(),
        };
        let sig = sign_response(&r, &key);
        assert_eq!(verify_response(&r, &sig, &key.public()), Ok(()));
        r.decision = PingDecision::Reject;
        assert_eq!(
            verify_response(&r, &sig, &key.public()),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn a_ping_node_with_a_keypair_signer_sends_verifiable_packets() {
        use crate::{PingNode, PingNodeConfig, PingOptions, Timestamp};
        use rand::{SeedableRng, rngs::StdRng};
        let key = Keypair::from_seed(&[21; 32]);
        let config = PingNodeConfig {
            nonce_capacity: 64,
            ..PingNodeConfig::default()
        };
        let mut node = PingNode::new(
            "jis:home:sensor",
            config,
            Box::new(StdRng::seed_from_u64(1)),
        );
        node.set_signer(Box::new(key.clone()));
        let now = Timestamp::parse("2026-11-26T11:00:00Z").unwrap();
        let p = node.ping(
            now,
            "jis:home:hub",
            "temperature.report",
            "log",
            PingOptions::default(),
        );
        assert_eq!(verify_packet(&p, &key.public()), Ok(()));
    }

    #[test]
    fn batch_finds_the_bad_one() {
        let keys: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed(&[i + 1; 32])).collect();
        let pubs: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let mut packets: Vec<PingPacket> = keys
            .iter()
            .map(|k| {
                let mut p = packet();
                sign_packet(&mut p, k);
                p
            })
            .collect();
        let items: Vec<(&PingPacket, &PublicKey)> = packets.iter().zip(&pubs).collect();
        assert!(verify_packets(&items).iter().all(Result::is_ok));
        packets[2].intent = "door.unlock".into();
        packets[3].signature.clear();
        let items: Vec<(&PingPacket, &PublicKey)> = packets.iter().zip(&pubs).collect();
        assert_eq!(
            verify_packets(&items),
            vec![
                Ok(()),
                Ok(()),
                Err(SignatureError::Invalid),
                Err(SignatureError::Missing)
            ]
        );
    }
}

#[cfg(test)]
mod vector {
    //! The test vector of docs/PROTOCOL.md section 6.
    use super::*;
    use serde_json::json;

    pub(super) fn vector_packet() -> PingPacket {
        let mut p = PingPacket::new(
            "ping_0011223344556677",
            "jis:home:sensor",
            "jis:home:hub",
            "temperature.report",
            "hourly log",
        );
        p.payload = json!({"celsius": 21.5}).as_object().unwrap().clone();
        p.hop_count = 1;
        p.nonce = "00112233445566778899aabbccddeeff".into();
        p.timestamp = "2026-11-26T11:00:33.762558+00:00".into();
        p
    }

    #[test]
    fn protocol_md_test_vector() {
        let key = Keypair::from_seed(&[0x42; 32]);
        assert_eq!(
            key.public().to_base64(),
            "IVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI="
        );
        let mut p = vector_packet();
        assert_eq!(
            String::from_utf8(packet_signing_input(&p)).unwrap(),
            concat!(
                r#"{"intent":"temperature.report","max_hops":5,"nonce":"00112233445566778899aabbccddeeff","#,
                r#""packet_id":"ping_0011223344556677","payload":{"celsius":21.5},"ping_type":"intent","#,
                r#""pod_id":null,"priority":2,"purpose":"hourly log","routing_mode":"direct","#,
                r#""source_did":"jis:home:sensor","station_id":null,"target_did":"jis:home:hub","#,
                r#""tibet_token_id":null,"timestamp":"2026-11-26T11:00:33.762558+00:00","#,
                r#""vouch_signature":null,"vouched_by":null}"#
            )
        );
        sign_packet(&mut p, &key);
        assert_eq!(
            p.signature,
            "RuDvz1yE06qOt84vCCmWSv5mHnIs4EOKmf2MNL36Hr/9u21tu4PsCiWlJSYLEKkRVT9RDrycggAt1dwbzuqoCA=="
        );
    }
}
