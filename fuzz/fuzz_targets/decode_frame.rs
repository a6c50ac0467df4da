//! Fuzz the TP frame decoder: any datagram must decode or fail with a typed
//! error, never panic, overflow the stack or allocate without bound; and
//! whatever decodes must re-encode to a frame that decodes to the same value.
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
            Ok(bytes) => assert_eq!(codec.decode(&bytes).as_ref(), Ok(&frame)),
            // A 64 KiB msgpack frame can grow past the limit as JSON.
            Err(EncodeError::TooLarge { .. }) => {}
            Err(e) => panic!("decoded frame does not re-encode: {e}"),
        }
    }
});
