//! Unit tests of the frame codec: each malformed class, both formats.

use serde_json::json;

use super::*;
use crate::packet::{AirlockZone, PingDecision, PingType, Priority, RoutingMode};

fn packet() -> PingPacket {
    serde_json::from_value(json!({
        "packet_id": "ping_0011223344556677", "source_did": "jis:home:sensor",
        "target_did": "jis:home:hub", "ping_type": "intent", "priority": 3,
        "routing_mode": "mesh", "intent": "temperature.report", "purpose": "warm? 🌡",
        "payload": {"celsius": 21.5, "n": [1, -2, null]}, "pod_id": "pod-1",
        "hop_count": 1, "max_hops": 4, "nonce": "00112233445566778899aabbccddeeff",
        "timestamp": "2026-11-26T11:00:33.762558+00:00",
    }))
    .unwrap()
}

fn response() -> PingResponse {
    serde_json::from_value(json!({
        "response_id": "resp_0011223344556677", "in_response_to": "ping_0011223344556677",
        "responder_did": "jis:home:hub", "decision": "pending", "payload": {"queued": true},
        "capabilities": ["temp", "humidity"], "trust_score": 0.5,
        "fira_breakdown": {"score": 0.5, "source": "vouched", "vouch_count": 1},
        "timestamp": "2026-11-26T11:00:33+00:00", "rtt_ms": 0.25, "airlock_zone": "GEEL",
    }))
    .unwrap()
}

/// A JSON value as msgpack, numbers native (as the codec writes them).
fn to_msgpack(v: &serde_json::Value) -> Vec<u8> {
    rmp_serde::to_vec_named(&native::NativeValue(v)).unwrap()
}

/// A frame around an arbitrary payload.
fn frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![b'T', b'P', 1, flags];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn decode(b: &[u8]) -> Result<Frame, DecodeError> {
    PacketCodec::default().decode(b)
}

#[test]
fn round_trips_both_kinds_in_both_formats() {
    for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
        let b = codec.encode_packet(&packet()).unwrap();
        assert_eq!(&b[..3], b"TP\x01");
        assert_eq!(
            b[3],
            if codec == PacketCodec::msgpack() {
                0b10
            } else {
                0
            }
        );
        assert_eq!(
            u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize,
            b.len() - 8
        );
        assert_eq!(decode(&b), Ok(Frame::Packet(packet())));
        let b = codec.encode_response(&response()).unwrap();
        assert_eq!(b[3] & 1, 1);
        assert_eq!(decode(&b), Ok(Frame::Response(response())));
    }
}

#[test]
fn json_is_compact_utf8_in_reference_key_order() {
    let b = PacketCodec::json().encode_packet(&packet()).unwrap();
    let text = core::str::from_utf8(&b[8..]).unwrap();
    assert!(
        text.starts_with(r#"{"packet_id":"ping_0011223344556677","source_did":"#),
        "{text}"
    );
    assert!(text.contains(r#""purpose":"warm? 🌡","payload":{"celsius":21.5,"n":[1,-2,null]}"#));
    assert!(
        text.ends_with(r#""vouch_signature":null,"signature":""}"#),
        "{text}"
    );
    assert!(!text.contains(": ") && !text.contains(", "));
    assert!(text.contains(r#""priority":3,"#));
}

#[test]
fn header_errors() {
    assert_eq!(decode(b"TP\x01"), Err(DecodeError::ShortHeader { len: 3 }));
    assert_eq!(decode(&[]), Err(DecodeError::ShortHeader { len: 0 }));
    let good = PacketCodec::json().encode_packet(&packet()).unwrap();
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(decode(&b), Err(DecodeError::BadMagic { found: *b"XP" }));
    let mut b = good.clone();
    b[2] = 2;
    assert_eq!(
        decode(&b),
        Err(DecodeError::UnsupportedVersion { version: 2 })
    );
    let n = good.len() - 8;
    assert_eq!(
        decode(&good[..good.len() - 1]),
        Err(DecodeError::Truncated {
            declared: n,
            available: n - 1
        })
    );
    let mut b = good.clone();
    b.extend_from_slice(b"  ");
    assert_eq!(
        decode(&b),
        Err(DecodeError::TrailingBytes {
            declared: n,
            extra: 2
        })
    );
    // A huge declared length is refused from the header alone.
    let b = [b'T', b'P', 1, 0, 0xff, 0xff, 0xff, 0xff, b'{'];
    assert_eq!(
        decode(&b),
        Err(DecodeError::TooLarge {
            declared: u64::from(u32::MAX)
        })
    );
    let mut b = vec![b'T', b'P', 1, 0];
    b.extend_from_slice(&(MAX_PAYLOAD as u32 + 1).to_be_bytes());
    assert!(matches!(
        decode(&b),
        Err(DecodeError::TooLarge { declared: 65_537 })
    ));
}

#[test]
fn unknown_flag_bits_are_ignored() {
    let mut b = PacketCodec::msgpack().encode_response(&response()).unwrap();
    b[3] |= 0b1111_1100;
    assert_eq!(decode(&b), Ok(Frame::Response(response())));
    let h = decode_header(&b).unwrap();
    assert!(h.is_response());
    assert_eq!(h.format(), WireFormat::Msgpack);
    assert_eq!(h.payload_len as usize, b.len() - HEADER_LEN);
}

#[test]
fn undecodable_payloads() {
    for bad in [
        &b"{"[..],
        b"{\"packet_id\":}",
        b"[1,2]",
        b"\"x\"",
        b"",
        b"\xef\xbb\xbf{}",
    ] {
        assert!(
            matches!(
                decode(&frame(0, bad)),
                Err(DecodeError::Payload {
                    format: WireFormat::Json,
                    ..
                })
            ),
            "{bad:?}: {:?}",
            decode(&frame(0, bad))
        );
    }
    // A whole valid packet followed by garbage inside the payload.
    let mut body = serde_json::to_vec(&packet()).unwrap();
    body.extend_from_slice(b" x");
    assert!(matches!(
        decode(&frame(0, &body)),
        Err(DecodeError::Payload { .. })
    ));
    // Invalid UTF-8 inside a JSON string.
    let bad = frame(0, b"{\"packet_id\":\"\xff\"}");
    assert!(
        matches!(decode(&bad), Err(DecodeError::Payload { .. })),
        "{:?}",
        decode(&bad)
    );
    // Invalid UTF-8 in a msgpack string, a msgpack array at top level, bin.
    for bad in [
        &[0x81, 0xa1, b'a', 0xa1, 0xff][..],
        &[0x90],
        &[0x81, 0xa1, b'a', 0xc4, 0],
    ] {
        assert!(
            matches!(
                decode(&frame(2, bad)),
                Err(DecodeError::Payload {
                    format: WireFormat::Msgpack,
                    ..
                })
            ),
            "{bad:?}: {:?}",
            decode(&frame(2, bad))
        );
    }
}

#[test]
fn missing_fields_are_named() {
    let mut v = serde_json::to_value(packet()).unwrap();
    v.as_object_mut().unwrap().remove("routing_mode");
    let json = frame(0, &serde_json::to_vec(&v).unwrap());
    assert_eq!(
        decode(&json),
        Err(DecodeError::MissingField {
            field: "routing_mode"
        })
    );
    let mp = frame(2, &to_msgpack(&v));
    assert_eq!(
        decode(&mp),
        Err(DecodeError::MissingField {
            field: "routing_mode"
        })
    );
    let r = frame(
        1,
        br#"{"response_id":"r","in_response_to":"p","decision":"accept"}"#,
    );
    assert_eq!(
        decode(&r),
        Err(DecodeError::MissingField {
            field: "responder_did"
        })
    );
    assert_eq!(
        decode(&frame(0, b"{}")),
        Err(DecodeError::MissingField { field: "packet_id" })
    );
}

#[test]
fn wrong_types_are_named() {
    let cases: &[(&str, serde_json::Value)] = &[
        ("priority", json!("high")),
        ("priority", json!(7)),
        ("ping_type", json!("shout")),
        ("hop_count", json!(-1)),
        ("payload", json!([1])),
        ("pod_id", json!(5)),
        ("intent", json!(null)),
        ("signature", json!(null)),
    ];
    for (field, value) in cases {
        let mut v = serde_json::to_value(packet()).unwrap();
        v[*field] = value.clone();
        for b in [
            frame(0, &serde_json::to_vec(&v).unwrap()),
            frame(2, &to_msgpack(&v)),
        ] {
            match decode(&b) {
                Err(DecodeError::WrongType { field: f, .. }) => assert_eq!(f, *field),
                other => panic!("{field}={value}: {other:?}"),
            }
        }
    }
    let r = frame(1, br#"{"response_id":"r","in_response_to":"p","responder_did":"d","decision":"accept","airlock_zone":"BLAUW"}"#);
    assert!(matches!(
        decode(&r),
        Err(DecodeError::WrongType {
            field: "airlock_zone",
            ..
        })
    ));
    let r = frame(1, br#"{"response_id":"r","in_response_to":"p","responder_did":"d","decision":"accept","capabilities":"all"}"#);
    assert!(matches!(
        decode(&r),
        Err(DecodeError::WrongType {
            field: "capabilities",
            ..
        })
    ));
}

#[test]
fn duplicate_known_fields_are_refused_unknown_keys_ignored() {
    let b = frame(1, br#"{"response_id":"r","in_response_to":"p","responder_did":"d","decision":"accept","decision":"reject"}"#);
    assert_eq!(
        decode(&b),
        Err(DecodeError::DuplicateField { field: "decision" })
    );
    let b = frame(1, br#"{"x":{"deep":[1,2,{"y":null}]},"response_id":"r","in_response_to":"p","responder_did":"d","decision":"accept","rtt_ms":3}"#);
    let Ok(Frame::Response(r)) = decode(&b) else {
        panic!("{:?}", decode(&b))
    };
    assert_eq!(
        (r.decision, r.airlock_zone, r.rtt_ms, r.trust_score),
        (PingDecision::Accept, AirlockZone::Rood, Some(3.0), 0.0)
    );
}

#[test]
fn defaults_apply_to_optional_fields() {
    let b = frame(0, br#"{"packet_id":"p","source_did":"a","target_did":"broadcast","ping_type":"discover","priority":1,"routing_mode":"broadcast","intent":"discover","purpose":""}"#);
    let Ok(Frame::Packet(p)) = decode(&b) else {
        panic!()
    };
    assert_eq!(
        (p.ping_type, p.priority, p.routing_mode),
        (PingType::Discover, Priority::Lazy, RoutingMode::Broadcast)
    );
    assert_eq!(
        (p.hop_count, p.max_hops, p.pod_id, p.signature.as_str()),
        (0, 5, None, "")
    );
}

#[test]
fn encoding_refuses_oversize_and_non_finite() {
    let mut p = packet();
    p.payload
        .insert("blob".into(), json!("x".repeat(MAX_PAYLOAD)));
    for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
        assert!(
            matches!(codec.encode_packet(&p), Err(EncodeError::TooLarge { len }) if len > MAX_PAYLOAD)
        );
    }
    // Just at the limit is fine.
    let mut p = packet();
    let base = PacketCodec::json().encode_packet(&p).unwrap().len() - HEADER_LEN;
    let filler = MAX_PAYLOAD - base - r#","pad":"""#.len();
    p.payload.insert("pad".into(), json!("y".repeat(filler)));
    let b = PacketCodec::json().encode_packet(&p).unwrap();
    assert_eq!(b.len(), HEADER_LEN + MAX_PAYLOAD);
    assert_eq!(decode(&b), Ok(Frame::Packet(p)));
    let mut r = response();
    r.trust_score = f64::NAN;
    assert_eq!(
        PacketCodec::json().encode_response(&r),
        Err(EncodeError::NonFinite {
            field: "trust_score"
        })
    );
    r.trust_score = 0.1;
    r.rtt_ms = Some(f64::INFINITY);
    assert_eq!(
        PacketCodec::msgpack().encode_response(&r),
        Err(EncodeError::NonFinite { field: "rtt_ms" })
    );
}

#[test]
fn msgpack_non_finite_floats_are_refused_on_decode() {
    let mut v = serde_json::to_value(response()).unwrap();
    v.as_object_mut().unwrap().remove("trust_score");
    let mut body = to_msgpack(&v);
    // Append "trust_score": NaN by bumping the fixmap count.
    body[0] += 1;
    body.extend_from_slice(&rmp_serde::to_vec("trust_score").unwrap());
    body.extend_from_slice(&rmp_serde::to_vec(&f64::NAN).unwrap());
    assert!(matches!(
        decode(&frame(3, &body)),
        Err(DecodeError::WrongType {
            field: "trust_score",
            ..
        })
    ));
}

#[test]
fn deep_nesting_is_bounded_in_both_formats() {
    let wrap = |depth: usize| {
        let mut s = String::from(
            r#"{"response_id":"r","in_response_to":"p","responder_did":"d","decision":"accept","payload":{"x":"#,
        );
        s.push_str(&"[".repeat(depth));
        s.push_str(&"]".repeat(depth));
        s.push_str("}}");
        s
    };
    assert!(decode(&frame(1, wrap(100).as_bytes())).is_ok());
    let deep = decode(&frame(1, wrap(30_000).as_bytes()));
    assert!(matches!(deep, Err(DecodeError::Payload { .. })), "{deep:?}");
    let mp = |depth: usize| {
        let v: serde_json::Value = serde_json::from_str(&wrap(1)).unwrap();
        let mut b = to_msgpack(&v);
        // Replace the trailing empty array (0x90) by `depth` nested arrays.
        assert_eq!(b.pop(), Some(0x90));
        b.extend(core::iter::repeat_n(0x91u8, depth - 1));
        b.push(0x90);
        b
    };
    assert!(decode(&frame(3, &mp(MAX_DEPTH - 2))).is_ok());
    assert!(matches!(
        decode(&frame(3, &mp(MAX_DEPTH))),
        Err(DecodeError::Payload { .. })
    ));
    assert!(matches!(
        decode(&frame(3, &mp(60_000))),
        Err(DecodeError::Payload { .. })
    ));
}

#[test]
fn msgpack_length_prefixes_cannot_claim_more_than_the_datagram() {
    // capabilities: array32 of 4 billion strings, in a 30-byte payload.
    let mut body = vec![0x85];
    for (k, v) in [
        ("response_id", "r"),
        ("in_response_to", "p"),
        ("responder_did", "d"),
        ("decision", "accept"),
    ] {
        body.extend(rmp_serde::to_vec(k).unwrap());
        body.extend(rmp_serde::to_vec(v).unwrap());
    }
    body.extend(rmp_serde::to_vec("capabilities").unwrap());
    body.extend([0xdd, 0xff, 0xff, 0xff, 0xff, 0xa0]);
    assert!(matches!(
        decode(&frame(3, &body)),
        Err(DecodeError::Payload { .. })
    ));
}

/// Each capped field: at the cap it decodes, one byte over it is refused
/// with `FieldTooLong` naming the field, in both formats.
#[test]
fn field_length_caps_at_limit_pass_and_one_over_is_refused() {
    let packet_caps: [(&str, usize); 7] = [
        ("packet_id", MAX_ID_LEN),
        ("source_did", MAX_DID_LEN),
        ("target_did", MAX_DID_LEN),
        ("intent", MAX_INTENT_LEN),
        ("purpose", MAX_PURPOSE_LEN),
        ("nonce", MAX_NONCE_LEN),
        ("vouched_by", MAX_DID_LEN),
    ];
    let response_caps: [(&str, usize); 3] = [
        ("response_id", MAX_ID_LEN),
        ("in_response_to", MAX_ID_LEN),
        ("responder_did", MAX_DID_LEN),
    ];
    let mut counts = DecodeCounts::default();
    for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
        for (is_response, caps) in [(false, &packet_caps[..]), (true, &response_caps[..])] {
            for &(field, max) in caps {
                for len in [max, max + 1] {
                    let mut value = if is_response {
                        serde_json::to_value(response()).unwrap()
                    } else {
                        serde_json::to_value(packet()).unwrap()
                    };
                    value[field] = json!("é".repeat(len / 2) + &"x".repeat(len % 2));
                    let bytes = if is_response {
                        let r: PingResponse = serde_json::from_value(value).unwrap();
                        codec.encode_response(&r).unwrap()
                    } else {
                        let p: PingPacket = serde_json::from_value(value).unwrap();
                        codec.encode_packet(&p).unwrap()
                    };
                    let got = decode(&bytes);
                    if len == max {
                        assert!(got.is_ok(), "{field} at {max} ({codec:?}): {got:?}");
                    } else {
                        let err = got.unwrap_err();
                        assert_eq!(
                            err,
                            DecodeError::FieldTooLong {
                                field,
                                len: max + 1,
                                max
                            },
                            "{codec:?}"
                        );
                        assert_eq!(err.kind(), "field_too_long");
                        counts.record(&err);
                    }
                }
            }
        }
    }
    assert_eq!(counts.too_long(), 20);
    assert_eq!(counts.total(), 20);
    assert_eq!(counts.did_too_long, 2 * 4);
    assert_eq!(counts.id_too_long, 2 * 3);
    assert_eq!(
        (
            counts.nonce_too_long,
            counts.intent_too_long,
            counts.purpose_too_long
        ),
        (2, 2, 2)
    );
}

#[test]
fn a_long_field_is_refused_in_an_escaped_json_string_too() {
    let id = "\\u0041".repeat(MAX_ID_LEN + 1);
    let text = serde_json::to_string(&packet())
        .unwrap()
        .replace("\"ping_0011223344556677\"", &format!("\"{id}\""));
    let err = decode(&frame(0, text.as_bytes())).unwrap_err();
    assert!(
        matches!(err, DecodeError::FieldTooLong { field: "packet_id", len, .. } if len == MAX_ID_LEN + 1),
        "{err:?}"
    );
}

#[test]
fn response_signature_is_omitted_when_empty_and_round_trips_when_set() {
    for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
        let unsigned = response();
        assert_eq!(unsigned.signature, "");
        let bytes = codec.encode_response(&unsigned).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"signature"),
            "{:?}",
            codec.format()
        );
        let mut signed = response();
        signed.signature = "A".repeat(86) + "==";
        let bytes = codec.encode_response(&signed).unwrap();
        let Ok(Frame::Response(back)) = codec.decode(&bytes) else {
            panic!("decode {:?}", codec.format());
        };
        assert_eq!(back, signed);
    }
}

/// Decodes a packet's JSON text with the full visitor only.
fn visitor_decode(text: &str, p: &mut PingPacket) -> Result<(), ()> {
    let issue = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(PacketSeed {
        cell: &issue,
        out: p,
    })
    .and_then(|()| de.end())
    .map_err(|_| ())
}

/// What the fast path accepts, the visitor decodes to the same packet;
/// whether the fast path took it.
fn fast_agrees(text: &str) -> bool {
    let mut fast_out = PingPacket::new("stale", "stale", "stale", "stale", "stale");
    fast_out.nonce = "stale".into();
    fast_out.pod_id = Some("stale".into());
    let took = fast::packet(text, &mut fast_out);
    let mut full = PingPacket::new("", "", "", "", "");
    let result = visitor_decode(text, &mut full);
    if took {
        assert_eq!(
            result,
            Ok(()),
            "fast path took what the visitor refuses: {text}"
        );
        assert_eq!(fast_out, full, "{text}");
    }
    took
}

#[test]
fn fast_path_agrees_with_the_visitor() {
    let typical = PingPacket {
        payload: JsonMap::new(),
        ..packet()
    };
    let text = |p: &PingPacket| serde_json::to_string(p).unwrap();
    // The common packet takes the fast path (else the test is vacuous).
    assert!(fast_agrees(&text(&typical)));
    let signed = PingPacket {
        signature: "c2lnbmF0dXJl".into(),
        vouched_by: Some("jis:home:hub".into()),
        ..typical.clone()
    };
    assert!(fast_agrees(&text(&signed)));
    // Required fields only: defaults for the rest.
    assert!(fast_agrees(
        "{\"packet_id\":\"p\",\"source_did\":\"a\",\"target_did\":\"b\",\"ping_type\":\"relay\",\
         \"priority\":1,\"routing_mode\":\"broadcast\",\"intent\":\"\",\"purpose\":\"\u{7f}é\"}"
    ));
    // Shapes it must leave to the visitor (valid or not), or may take.
    let base = text(&typical);
    let nonce = r#""nonce":"00112233445566778899aabbccddeeff""#;
    let long = |n: usize, c: &str| c.repeat(n);
    let edits: Vec<String> = vec![
        base.replace(r#""payload":{}"#, r#""payload":null"#),
        base.replace(r#""payload":{}"#, r#""payload":{"a":1}"#),
        base.replace(r#""payload":{}"#, r#""payload":[]"#),
        base.replace(r#""priority":3"#, r#""priority":03"#),
        base.replace(r#""priority":3"#, r#""priority":3.0"#),
        base.replace(r#""priority":3"#, r#""priority":-3"#),
        base.replace(r#""priority":3"#, r#""priority":4"#),
        base.replace(r#""priority":3"#, r#""priority":"3""#),
        base.replace(r#""hop_count":1"#, r#""hop_count":4294967295"#),
        base.replace(r#""hop_count":1"#, r#""hop_count":4294967296"#),
        base.replace(r#""hop_count":1"#, r#""hop_count":1e0"#),
        base.replace(r#""hop_count":1"#, r#""hop_count":00"#),
        base.replace(r#""hop_count":1"#, r#""hop_count":0"#),
        base.replace(r#""pod_id":"pod-1""#, r#""pod_id":null"#),
        base.replace(r#""pod_id":"pod-1""#, r#""pod_id":7"#),
        base.replace(r#""pod_id":"pod-1""#, r#""pod_id":"p\"od""#),
        base.replace(r#""intent":"temperature.report""#, r#""intent":"t\u0041""#),
        base.replace(r#""intent":"temperature.report""#, "\"intent\":\"t\u{1}\""),
        base.replace(r#""ping_type":"intent""#, r#""ping_type":"INTENT""#),
        base.replace(r#""routing_mode":"mesh""#, r#""routing_mode":"mesh ""#),
        base.replace(r#""packet_id""#, r#""packet_\u0069d""#),
        base.replace(r#""nonce""#, r#""nonce ""#),
        base.replace(r#""nonce""#, r#""packet_id""#),
        base.replace(r#""max_hops":4,"#, ""),
        base.replace(r#""intent":"temperature.report","#, ""),
        base.replace(",", ", "),
        format!(" {base}"),
        format!("{base} "),
        format!("{base}x"),
        base.replace(nonce, &format!(r#""nonce":"{}""#, long(MAX_NONCE_LEN, "a"))),
        base.replace(
            nonce,
            &format!(r#""nonce":"{}""#, long(MAX_NONCE_LEN + 1, "a")),
        ),
        base.replace(
            r#""source_did":"jis:home:sensor""#,
            &format!(r#""source_did":"{}""#, long(MAX_DID_LEN / 2 + 1, "é")),
        ),
        base.replace(r#""signature":"""#, r#""signature":null"#),
        base.replace(r#""tibet_token_id":null"#, r#""tibet_token_id":"t""#),
        base.replace(
            r#""vouched_by":null"#,
            &format!(r#""vouched_by":"{}""#, long(MAX_DID_LEN + 1, "d")),
        ),
        "{}".to_owned(),
        "{".to_owned(),
        String::new(),
    ];
    let mut taken = 0;
    for e in &edits {
        assert_ne!(e, &base, "an edit did not apply");
        taken += usize::from(fast_agrees(e));
    }
    // Some edits are plain valid packets the fast path takes.
    assert!(taken >= 5, "{taken}");
    // No proper prefix of the typical packet is taken.
    for cut in 0..base.len() {
        if let Some(prefix) = base.get(..cut) {
            assert!(!fast_agrees(prefix), "{prefix}");
        }
    }
}

mod fast_props {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-z0-9:._-]{0,20}",
            1 => "(?s).{0,8}",
            1 => Just("\"\\/\u{0}\u{1f}\u{7f}\u{2028}🦀".to_owned()),
        ]
    }

    proptest! {
        /// Random packets, with random optional fields left out: whatever
        /// the fast path takes, the visitor decodes alike.
        #[test]
        fn fast_path_agrees_on_random_packets(
            ids in proptest::collection::vec(text(), 9),
            nums in (0u8..6, 0u32..6, any::<u32>()),
            opts in proptest::collection::vec(prop::option::of(text()), 4),
            drop in proptest::collection::vec(any::<bool>(), 11),
        ) {
            let p = PingPacket {
                priority: Priority::from_u8(nums.0 % 3 + 1).unwrap(),
                hop_count: nums.1,
                max_hops: nums.2,
                nonce: ids[5].clone(),
                timestamp: ids[6].clone(),
                signature: ids[7].clone(),
                pod_id: opts[0].clone(),
                station_id: opts[1].clone(),
                tibet_token_id: opts[2].clone(),
                vouched_by: opts[3].clone(),
                vouch_signature: Some(ids[8].clone()),
                ..PingPacket::new(&ids[0], &ids[1], &ids[2], &ids[3], &ids[4])
            };
            let mut v = serde_json::to_value(&p).unwrap();
            let map = v.as_object_mut().unwrap();
            let optional = [
                "payload", "pod_id", "station_id", "hop_count", "max_hops", "nonce",
                "timestamp", "tibet_token_id", "vouched_by", "vouch_signature", "signature",
            ];
            for (name, gone) in optional.iter().zip(drop) {
                if gone {
                    map.remove(*name);
                }
            }
            let text = serde_json::to_string(&v).unwrap();
            fast_agrees(&text);
        }
    }
}
