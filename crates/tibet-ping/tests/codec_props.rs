//! Property tests of the frame codec: hostile bytes never panic, valid
//! values round-trip losslessly in both formats.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value};
use tibet_ping::{
    AirlockZone, DecodeError, EncodeError, Frame, HEADER_LEN, JsonMap, PacketCodec, PingDecision,
    PingPacket, PingResponse, PingType, Priority, RoutingMode,
};

/// Any Unicode text, including controls, quotes, escapes and non-BMP.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "(?s).{0,16}",
        1 => "[a-z:._-]{0,24}",
        1 => Just("\"\\/\u{0}\u{1f}\u{7f}\u{2028}🦀𝄞".to_owned()),
    ]
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        prop::sample::select(vec![
            0.1,
            1e-5,
            1e16,
            -0.0,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE
        ]),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite_f64().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((text(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn json_map() -> impl Strategy<Value = JsonMap> {
    vec((text(), json_value()), 0..6).prop_map(|kv| kv.into_iter().collect::<Map<_, _>>())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn packet() -> impl Strategy<Value = PingPacket> {
    (
        (text(), text(), text(), text(), text()),
        (
            prop::sample::select(PingType::ALL),
            prop::sample::select(Priority::ALL),
            prop::sample::select(RoutingMode::ALL),
        ),
        json_map(),
        (opt_text(), opt_text(), any::<u32>(), any::<u32>()),
        (text(), text(), opt_text(), opt_text(), opt_text(), text()),
    )
        .prop_map(
            |(
                (packet_id, source_did, target_did, intent, purpose),
                (ping_type, priority, routing_mode),
                payload,
                (pod_id, station_id, hop_count, max_hops),
                (nonce, timestamp, tibet_token_id, vouched_by, vouch_signature, signature),
            )| PingPacket {
                packet_id,
                source_did,
                target_did,
                ping_type,
                priority,
                routing_mode,
                intent,
                purpose,
                payload,
                pod_id,
                station_id,
                hop_count,
                max_hops,
                nonce,
                timestamp,
                tibet_token_id,
                vouched_by,
                vouch_signature,
                signature,
            },
        )
}

fn response() -> impl Strategy<Value = PingResponse> {
    (
        (
            text(),
            text(),
            text(),
            prop::sample::select(PingDecision::ALL),
        ),
        (json_map(), vec(text(), 0..5), finite_f64(), json_map()),
        (opt_text(), text(), prop::option::of(finite_f64())),
        (prop::sample::select(AirlockZone::ALL), opt_text()),
    )
        .prop_map(
            |(
                (response_id, in_response_to, responder_did, decision),
                (payload, capabilities, trust_score, fira_breakdown),
                (tibet_token_id, timestamp, rtt_ms),
                (airlock_zone, applied_rule),
            )| PingResponse {
                response_id,
                in_response_to,
                responder_did,
                decision,
                payload,
                capabilities,
                trust_score,
                fira_breakdown,
                tibet_token_id,
                timestamp,
                rtt_ms,
                airlock_zone,
                applied_rule,
                signature: String::new(),
            },
        )
}

fn codec() -> impl Strategy<Value = PacketCodec> {
    any::<bool>().prop_map(PacketCodec::new)
}

/// A valid frame of an arbitrary packet or response, in either format.
fn valid_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (codec(), packet()).prop_map(|(c, p)| c.encode_packet(&p).unwrap()),
        (codec(), response()).prop_map(|(c, r)| c.encode_response(&r).unwrap()),
    ]
}

/// A well-formed header around arbitrary payload bytes, so the fuzzing
/// reaches the JSON and msgpack parsers.
fn framed_garbage() -> impl Strategy<Value = Vec<u8>> {
    (any::<u8>(), vec(any::<u8>(), 0..256)).prop_map(|(flags, body)| {
        let mut v = vec![b'T', b'P', 1, flags];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(&body);
        v
    })
}

/// Decoding succeeded: then encoding it again decodes to the same frame.
/// Msgpack may refuse a number it cannot hold (a JSON frame's
/// `1e+4356862938`, say), as documented; nothing else.
fn reencodes_stably(frame: &Frame) {
    for c in [PacketCodec::json(), PacketCodec::msgpack()] {
        let encoded = match frame {
            Frame::Packet(p) => c.encode_packet(p),
            Frame::Response(r) => c.encode_response(r),
        };
        let bytes = match encoded {
            Err(EncodeError::MsgpackNumber { .. }) if c == PacketCodec::msgpack() => continue,
            other => other.expect("a decoded frame can be encoded"),
        };
        assert_eq!(&c.decode(&bytes).unwrap(), frame);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        if let Ok(frame) = PacketCodec::default().decode(&bytes) {
            reencodes_stably(&frame);
        }
    }

    #[test]
    fn framed_garbage_never_panics(bytes in framed_garbage()) {
        if let Ok(frame) = PacketCodec::default().decode(&bytes) {
            reencodes_stably(&frame);
        }
    }

    #[test]
    fn packets_round_trip(c in codec(), p in packet()) {
        let bytes = c.encode_packet(&p).unwrap();
        prop_assert_eq!(bytes.len() - HEADER_LEN, u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize);
        prop_assert_eq!(PacketCodec::default().decode(&bytes), Ok(Frame::Packet(p)));
    }

    #[test]
    fn responses_round_trip(c in codec(), r in response()) {
        let bytes = c.encode_response(&r).unwrap();
        prop_assert_eq!(PacketCodec::default().decode(&bytes), Ok(Frame::Response(r)));
    }

    #[test]
    fn truncation_is_always_an_error(frame in valid_frame(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(frame.len());
        let err = PacketCodec::default().decode(&frame[..cut]).unwrap_err();
        let expected = if cut < HEADER_LEN { "short_header" } else { "truncated" };
        prop_assert_eq!(err.kind(), expected);
    }

    #[test]
    fn mutations_never_panic(
        frame in valid_frame(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        insert in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut m = frame.clone();
        for (at, xor) in flips {
            let i = at.index(m.len());
            m[i] ^= xor;
        }
        if let Some((at, byte)) = insert {
            m.insert(at.index(m.len() + 1), byte);
        }
        match PacketCodec::default().decode(&m) {
            Ok(frame) => reencodes_stably(&frame),
            Err(e) => {
                // Every error names its class and formats without panicking.
                prop_assert!(!e.to_string().is_empty());
                if let DecodeError::Payload { reason, .. } | DecodeError::WrongType { reason, .. } = &e {
                    prop_assert!(reason.len() <= 200);
                }
            }
        }
    }
}

/// A packet frame with a random subset of its optional fields left out
/// (their wire defaults apply), in either format.
fn sparse_packet_frame() -> impl Strategy<Value = Vec<u8>> {
    const OPTIONAL: &[&str] = &[
        "payload",
        "pod_id",
        "station_id",
        "hop_count",
        "max_hops",
        "nonce",
        "timestamp",
        "tibet_token_id",
        "vouched_by",
        "vouch_signature",
        "signature",
    ];
    (codec(), packet(), vec(any::<bool>(), OPTIONAL.len())).prop_map(|(c, p, keep)| {
        let mut v = serde_json::to_value(&p).unwrap();
        let map = v.as_object_mut().unwrap();
        for (name, keep) in OPTIONAL.iter().zip(keep) {
            if !keep {
                map.remove(*name);
            }
        }
        let body = match c.format() {
            tibet_ping::WireFormat::Json => serde_json::to_vec(&v).unwrap(),
            tibet_ping::WireFormat::Msgpack => rmp_serde::to_vec_named(&v).unwrap(),
        };
        let flags = if c == PacketCodec::msgpack() { 0b10 } else { 0 };
        let mut frame = vec![b'T', b'P', 1, flags];
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        frame
    })
}

/// A frame for the reuse test: valid, sparse, or mutated into garbage.
fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        valid_frame(),
        sparse_packet_frame(),
        (
            sparse_packet_frame(),
            any::<prop::sample::Index>(),
            any::<u8>()
        )
            .prop_map(|(mut f, at, xor)| {
                let i = at.index(f.len());
                f[i] ^= xor;
                f
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// One packet reused for a run of frames decodes each exactly as a
    /// fresh `decode` does: no field of an earlier packet (or of a failed
    /// decode) survives into a later one.
    #[test]
    fn decoding_into_a_reused_packet_agrees_with_decode(frames in vec(any_frame(), 1..10)) {
        let codec = PacketCodec::default();
        let mut slot = PingPacket::new("x", "x", "x", "x", "x");
        for frame in &frames {
            let fresh = codec.decode(frame);
            let reused = codec.decode_into(frame, &mut slot);
            match (fresh, reused) {
                (Ok(Frame::Packet(p)), Ok(tibet_ping::Decoded::Packet)) => prop_assert_eq!(&slot, &p),
                (Ok(Frame::Response(a)), Ok(tibet_ping::Decoded::Response(b))) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "decode {:?}, decode_into {:?}", a, b),
            }
        }
    }
}
