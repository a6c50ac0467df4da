//! The engine writes an answer straight from the node's state unless
//! something needs the built response (an audit record, a signature); both
//! ways must put the same bytes on the wire.

use std::net::SocketAddr;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot_proto::{Engine, MonoTime, Now, TransportConfig};
use tibet_ping::{Frame, PacketCodec, PingNode, PingNodeConfig, PingOptions, Timestamp};

fn engine(msgpack: bool, audit: bool) -> Engine {
    let config = TransportConfig {
        use_msgpack: msgpack,
        ..TransportConfig::loopback()
    };
    let mut e = Engine::new("jis:test:hub", config, 11);
    e.set_audit_enabled(audit);
    e
}

#[test]
fn answers_are_the_same_bytes_with_and_without_the_built_response() {
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    for msgpack in [false, true] {
        let mut plain = engine(msgpack, false);
        let mut audited = engine(msgpack, true);
        let mut sender = PingNode::new(
            "jis:test:sensor",
            PingNodeConfig::default(),
            Box::new(StdRng::seed_from_u64(3)),
        );
        let mut answered = 0;
        for (i, (trust, intent)) in [
            (0.9, "a.read"),
            (0.5, "geel \"quoted\" ✓"),
            (0.9, "b.read"),
            (0.0, "rood"),
        ]
        .into_iter()
        .enumerate()
        {
            let now = Now::new(
                MonoTime::from_duration(std::time::Duration::from_millis(i as u64)),
                Timestamp::from_micros(1_764_442_800_000_000 + i as i64 * 1_234),
            );
            plain.set_trust(now, "jis:test:sensor", trust);
            audited.set_trust(now, "jis:test:sensor", trust);
            let packet = sender.ping(
                now.wall,
                "jis:test:hub",
                intent,
                "why",
                PingOptions::default(),
            );
            let datagram = PacketCodec::new(msgpack).encode_packet(&packet).unwrap();
            // Sent twice: the second is answered from the response cache.
            for _ in 0..2 {
                plain.handle_datagram(now, from, &datagram);
                audited.handle_datagram(now, from, &datagram);
                loop {
                    let (a, b) = (plain.poll_transmit(), audited.poll_transmit());
                    assert_eq!(a, b, "msgpack {msgpack}, ping {i}");
                    let Some(t) = a else { break };
                    let Ok(Frame::Response(r)) = PacketCodec::json().decode(&t.payload) else {
                        panic!("not a response");
                    };
                    assert_eq!(r.in_response_to, packet.packet_id);
                    assert_eq!(r.timestamp, now.wall.to_iso());
                    answered += 1;
                }
            }
        }
        // GROEN twice and GEEL, each answered twice; ROOD never.
        assert_eq!(answered, 6, "msgpack {msgpack}");
        assert!(audited.poll_audit().is_some());
    }
}
