//! Property test: arbitrary bytes, and valid frames with arbitrary damage,
//! fed to the engine on both sockets never panic, are counted, and never
//! produce an answer.

use std::net::SocketAddr;

use proptest::prelude::*;
use tibet_iot_proto::{Engine, TransportConfig};
use tibet_iot_proto::{MonoTime, Now};
use tibet_ping::{PacketCodec, PingNode, PingNodeConfig, Timestamp};

fn now() -> Now {
    Now::new(MonoTime::from_secs(1), Timestamp::from_secs(1_800_000_000))
}

fn engine() -> Engine {
    let mut e = Engine::new("jis:prop:node", TransportConfig::default(), 1);
    e.start(now());
    e
}

fn valid_frame() -> Vec<u8> {
    use rand::SeedableRng;
    let mut n = PingNode::new(
        "jis:prop:peer",
        PingNodeConfig::default(),
        Box::new(rand::rngs::StdRng::seed_from_u64(3)),
    );
    let p = n.ping(
        Timestamp::from_secs(1_800_000_000),
        "jis:prop:node",
        "x",
        "y",
        Default::default(),
    );
    PacketCodec::json().encode_packet(&p).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_dropped_and_counted(data in proptest::collection::vec(any::<u8>(), 0..2048), disc in any::<bool>()) {
        let mut e = engine();
        let now = now();
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        if disc { e.handle_discovery_datagram(now, from, &data) } else { e.handle_datagram(now, from, &data) }
        let s = e.stats(now).engine;
        prop_assert_eq!(s.datagrams_in, 1);
        // Random bytes are not a frame: dropped, counted, unanswered.
        prop_assert_eq!(s.malformed, 1);
        prop_assert!(e.poll_transmit().is_none());
    }

    #[test]
    fn damaged_frames_never_panic_or_answer_strangers(cuts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), truncate in any::<usize>()) {
        let mut frame = valid_frame();
        for (at, x) in cuts {
            let i = at % frame.len();
            frame[i] ^= x;
        }
        frame.truncate(truncate % (frame.len() + 1));
        let mut e = engine();
        let now = now();
        e.handle_datagram(now, "127.0.0.1:40001".parse().unwrap(), &frame);
        // The sender is unknown (trust 0): whatever survives decoding is ROOD.
        prop_assert!(e.poll_transmit().is_none());
    }
}
