//! Numbers survive exactly: integers of any size in payloads round-trip
//! through JSON frames byte for byte and keep their signing input, msgpack
//! frames carry native numbers and refuse what msgpack cannot hold.

use serde::Deserialize;
use tibet_ping::identity::packet_signing_input;
use tibet_ping::{EncodeError, Frame, PacketCodec, PingPacket, PingResponse};

/// 2**64, 2**70, -2**64-1, 10**40 and u64::MAX / i64::MIN next to floats.
const PAYLOAD: &str = r#"{"two64":18446744073709551616,"two70":1180591620717411303424,"neg":-18446744073709551617,"googolish":10000000000000000000000000000000000000000,"u64max":18446744073709551615,"i64min":-9223372036854775808,"f":1e-05,"g":1e+16,"h":-2.5e-300,"list":[2.5,-0,36893488147419103232,{"deep":-36893488147419103233}]}"#;

fn packet_json(payload: &str) -> String {
    format!(
        r#"{{"packet_id":"ping_0011223344556677","source_did":"jis:home:sensor","target_did":"jis:home:hub","ping_type":"intent","priority":2,"routing_mode":"direct","intent":"counter.report","purpose":"big numbers","payload":{payload},"pod_id":null,"station_id":null,"hop_count":0,"max_hops":5,"nonce":"00112233445566778899aabbccddeeff","timestamp":"2026-11-26T11:00:33.762558+00:00","tibet_token_id":null,"vouched_by":null,"vouch_signature":null,"signature":""}}"#
    )
}

fn frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![b'T', b'P', 1, flags];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn big_packet() -> PingPacket {
    serde_json::from_str(&packet_json(PAYLOAD)).unwrap()
}

#[test]
fn json_frames_with_big_integers_round_trip_byte_exact() {
    let text = packet_json(PAYLOAD);
    let datagram = frame(0, text.as_bytes());
    let Ok(Frame::Packet(packet)) = PacketCodec::json().decode(&datagram) else {
        panic!("decodes");
    };
    assert_eq!(
        packet.payload["two70"].to_string(),
        "1180591620717411303424"
    );
    assert_eq!(packet.payload["neg"].to_string(), "-18446744073709551617");
    assert_eq!(
        PacketCodec::json().encode_packet(&packet).unwrap(),
        datagram
    );

    let response = format!(
        r#"{{"response_id":"resp_0011223344556677","in_response_to":"ping_0011223344556677","responder_did":"jis:home:hub","decision":"accept","payload":{PAYLOAD},"capabilities":[],"trust_score":0.5,"fira_breakdown":{{"score":0.5,"count":18446744073709551616}},"tibet_token_id":null,"timestamp":"2026-11-26T11:00:33+00:00","rtt_ms":null,"airlock_zone":"GROEN","applied_rule":null}}"#
    );
    let datagram = frame(1, response.as_bytes());
    let Ok(Frame::Response(r)) = PacketCodec::json().decode(&datagram) else {
        panic!("decodes");
    };
    assert_eq!(PacketCodec::json().encode_response(&r).unwrap(), datagram);
}

#[test]
fn the_signing_input_keeps_big_integers_exact() {
    let input = String::from_utf8(packet_signing_input(&big_packet())).unwrap();
    // Sorted keys, compact, integers in full, floats as Python's repr,
    // `-0` as Python's int 0.
    assert!(
        input.contains(r#""payload":{"f":1e-05,"g":1e+16,"googolish":10000000000000000000000000000000000000000,"h":-2.5e-300,"i64min":-9223372036854775808,"list":[2.5,0,36893488147419103232,{"deep":-36893488147419103233}],"neg":-18446744073709551617,"two64":18446744073709551616,"two70":1180591620717411303424,"u64max":18446744073709551615}"#),
        "{input}"
    );
}

#[test]
fn msgpack_refuses_integers_it_cannot_hold_with_a_typed_error() {
    let codec = PacketCodec::msgpack();
    assert_eq!(
        codec.encode_packet(&big_packet()),
        Err(EncodeError::MsgpackNumber {
            field: "payload",
            number: "18446744073709551616".into()
        })
    );
    for (text, number) in [
        (
            r#"{"a":[{"b":-9223372036854775809}]}"#,
            "-9223372036854775809",
        ),
        // serde_json may respell the exponent (`1e+400`).
        (r#"{"a":1e400}"#, "400"),
    ] {
        let p: PingPacket = serde_json::from_str(&packet_json(text)).unwrap();
        match codec.encode_packet(&p) {
            Err(EncodeError::MsgpackNumber {
                field: "payload",
                number: n,
            }) => assert!(n.ends_with(number), "{n}"),
            other => panic!("{text}: {other:?}"),
        }
        // JSON frames carry them.
        assert!(PacketCodec::json().encode_packet(&p).is_ok());
    }
    let mut r: PingResponse = serde_json::from_str(
        r#"{"response_id":"r","in_response_to":"p","responder_did":"d","decision":"accept"}"#,
    )
    .unwrap();
    r.fira_breakdown.insert(
        "n".into(),
        serde_json::from_str("1180591620717411303424").unwrap(),
    );
    let err = codec.encode_response(&r).unwrap_err();
    assert!(
        matches!(
            &err,
            EncodeError::MsgpackNumber {
                field: "fira_breakdown",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "field `fira_breakdown`: number 1180591620717411303424 does not fit a msgpack frame"
    );
}

#[test]
fn msgpack_frames_carry_native_numbers() {
    let payload = r#"{"u":18446744073709551615,"i":-9223372036854775808,"small":7,"neg":-1,"zero":-0,"f":21.5,"e":1e-05,"whole":2.0,"nested":[1,{"x":-2.5}]}"#;
    let p: PingPacket = serde_json::from_str(&packet_json(payload)).unwrap();
    let datagram = PacketCodec::msgpack().encode_packet(&p).unwrap();
    // A typed reader that accepts only native msgpack numbers.
    #[derive(Deserialize)]
    struct Wire {
        priority: u8,
        payload: Numbers,
    }
    #[derive(Deserialize)]
    struct Numbers {
        u: u64,
        i: i64,
        small: u8,
        neg: i8,
        zero: u8,
        f: f64,
        e: f64,
        whole: f64,
        nested: (u8, Nested),
    }
    #[derive(Deserialize)]
    struct Nested {
        x: f64,
    }
    let wire: Wire = rmp_serde::from_slice(&datagram[8..]).unwrap();
    assert_eq!(wire.priority, 2);
    let n = wire.payload;
    assert_eq!(
        (n.u, n.i, n.small, n.neg, n.zero),
        (u64::MAX, i64::MIN, 7, -1, 0)
    );
    assert_eq!(
        (n.f, n.e, n.whole, n.nested.0, n.nested.1.x),
        (21.5, 1e-5, 2.0, 1, -2.5)
    );
    // Small ints take one byte, as rmp_serde writes them.
    assert!(datagram.windows(7).any(|w| w == b"\xa5small\x07"));

    // Decoded, the packet has the same signing input as from JSON.
    let Ok(Frame::Packet(back)) = PacketCodec::json().decode(&datagram) else {
        panic!("decodes");
    };
    assert_eq!(packet_signing_input(&back), packet_signing_input(&p));
}
