//! A packet whose payload holds an integer beyond 64 bits is relayed
//! exactly by a JSON node; a msgpack node cannot encode it, drops it and
//! counts an encode error (docs/PROTOCOL.md §1).

use std::net::SocketAddr;

use tibet_iot_proto::{Engine, MonoTime, Now, TransportConfig};
use tibet_ping::Timestamp;

fn now() -> Now {
    Now::new(MonoTime::from_secs(1), Timestamp::from_secs(1_800_000_000))
}

/// A mesh packet for another node, its payload holding 2**70.
fn datagram() -> Vec<u8> {
    let ts = Timestamp::from_secs(1_800_000_000).to_string();
    let json = format!(
        r#"{{"packet_id":"ping_0011223344556677","source_did":"jis:home:sensor","target_did":"jis:home:far","ping_type":"intent","priority":2,"routing_mode":"mesh","intent":"counter.report","purpose":"big","payload":{{"n":1180591620717411303424}},"hop_count":0,"max_hops":5,"nonce":"00112233445566778899aabbccddeeff","timestamp":"{ts}"}}"#
    );
    let mut v = vec![b'T', b'P', 1, 0];
    v.extend_from_slice(&(json.len() as u32).to_be_bytes());
    v.extend_from_slice(json.as_bytes());
    v
}

fn relay_once(use_msgpack: bool) -> (u64, Option<Vec<u8>>) {
    let config = TransportConfig {
        use_msgpack,
        ..TransportConfig::default()
    };
    let mut e = Engine::new("jis:home:relay", config, 7);
    e.start(now());
    let peer: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    e.add_peer(now(), "jis:home:far", peer);
    // A relay forwards only for senders it would not drop (docs/SECURITY.md).
    e.set_trust(now(), "jis:home:sensor", 0.9);
    e.handle_datagram(now(), from, &datagram());
    let mut out = None;
    while let Some(t) = e.poll_transmit() {
        if t.destination == peer {
            out = Some(t.payload.to_vec());
        }
    }
    (e.stats(now()).engine.encode_errors, out)
}

#[test]
fn msgpack_relay_counts_the_unencodable_packet_json_relay_keeps_it_exact() {
    let (errors, sent) = relay_once(true);
    assert_eq!(errors, 1);
    assert_eq!(sent, None);
    let (errors, sent) = relay_once(false);
    assert_eq!(errors, 0);
    let sent = String::from_utf8(sent.expect("relayed")[8..].to_vec()).unwrap();
    assert!(
        sent.contains(r#""payload":{"n":1180591620717411303424}"#),
        "{sent}"
    );
}
