//! Fuzz the TP frame decoder: any datagram must decode or fail with a typed
//! error, never panic, overflow the stack or allocate without bound; and
//! whatever decodes must re-encode to a frame that decodes to the same value
//! (through msgpack, numbers are the same value: msgpack carries a float as
//! a double, so `1e-05` may come back written `0.00001`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tibet_ping::{EncodeError, Frame, PacketCodec};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = PacketCodec::default().decode(data) else {
        return;
    };
    for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
        let encoded = match &frame {
            Frame::Packet(p) => codec.encode_packet(p),
            Frame::Response(r) => codec.encode_response(r),
        };
        match encoded {
            Ok(bytes) => {
                let again = codec.decode(&bytes).expect("a re-encoded frame decodes");
                if codec == PacketCodec::json() {
                    assert_eq!(again, frame);
                } else {
                    assert_eq!(by_value(&again), by_value(&frame));
                }
            }
            // A 64 KiB msgpack frame can grow past the limit as JSON.
            Err(EncodeError::TooLarge { .. }) => {}
            // Msgpack has no integers outside -2^63..2^64 (docs/PROTOCOL.md).
            Err(EncodeError::MsgpackNumber { .. }) if codec != PacketCodec::json() => {}
            Err(e) => panic!("decoded frame does not re-encode: {e}"),
        }
    }
});

/// The frame as JSON with every number written as its value: an integer
/// that fits `i64`/`u64` as that integer (`-0` is 0), anything else as a
/// double.
fn by_value(frame: &Frame) -> serde_json::Value {
    let v = match frame {
        Frame::Packet(p) => serde_json::to_value(p),
        Frame::Response(r) => serde_json::to_value(r),
    }
    .expect("a decoded frame serialises");
    numbers_by_value(v)
}

fn numbers_by_value(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => Value::Number(if let Some(u) = n.as_u64() {
            u.into()
        } else if let Some(i) = n.as_i64() {
            i.into()
        } else {
            n.as_f64().and_then(serde_json::Number::from_f64).unwrap_or(n)
        }),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_by_value).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, numbers_by_value(v)))
                .collect(),
        ),
        other => other,
    }
}
