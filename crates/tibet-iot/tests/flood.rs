//! Hostile input: a flood of random datagrams and broken frames does not
//! crash a node, and a legitimate ping sent during the flood is answered.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tibet_iot::{IoTNode, RetransmitPolicy, SendOptions, TransportConfig};
use tibet_ping::{AirlockZone, PacketCodec, PingNode, PingNodeConfig, Timestamp};
use tokio::net::UdpSocket;

/// Upper bound of the flood; it stops earlier once the checks are done.
const FLOOD_MAX: usize = 300_000;

fn garbage(rng: &mut StdRng, valid: &[u8]) -> Vec<u8> {
    match rng.gen_range(0..6) {
        // Random bytes.
        0 => (0..rng.gen_range(0..1500)).map(|_| rng.r#gen()).collect(),
        // A valid frame cut short.
        1 => valid[..rng.gen_range(0..valid.len())].to_vec(),
        // A header declaring far more than it carries.
        2 => {
            let mut v = b"TP\x01\x00".to_vec();
            v.extend_from_slice(&u32::MAX.to_be_bytes());
            v.extend_from_slice(b"{}");
            v
        }
        // Valid header, payload that is not a packet.
        3 => {
            let body = br#"{"packet_id": 5, "nested": [[[[[[[[[]]]]]]]]]}"#;
            let mut v = b"TP\x01\x00".to_vec();
            v.extend_from_slice(&(body.len() as u32).to_be_bytes());
            v.extend_from_slice(body);
            v
        }
        // Msgpack flag over random bytes.
        4 => {
            let body: Vec<u8> = (0..rng.gen_range(1..200)).map(|_| rng.r#gen()).collect();
            let mut v = b"TP\x01\x02".to_vec();
            v.extend_from_slice(&(body.len() as u32).to_be_bytes());
            v.extend_from_slice(&body);
            v
        }
        // A valid frame with flipped bytes.
        _ => {
            let mut v = valid.to_vec();
            for _ in 0..4 {
                let i = rng.gen_range(0..v.len());
                v[i] ^= rng.r#gen::<u8>() | 1;
            }
            v
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_garbage_neither_crashes_nor_starves_a_legitimate_ping() {
    let target = IoTNode::new("jis:home:target", TransportConfig::loopback());
    target.set_trust("jis:home:legit", 0.9);
    let target_addr = target.start().await.unwrap();
    let legit = IoTNode::new("jis:home:legit", TransportConfig::loopback());
    legit.start().await.unwrap();

    let mut crafter = PingNode::new(
        "jis:x:valid",
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(1)),
    );
    let valid = PacketCodec::json()
        .encode_packet(&crafter.ping(
            Timestamp::now(),
            "jis:home:target",
            "x",
            "y",
            Default::default(),
        ))
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooding = stop.clone();
    let flooder = tokio::spawn(async move {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut rng = StdRng::seed_from_u64(99);
        let mut sent = 0;
        while sent < FLOOD_MAX && !flooding.load(std::sync::atomic::Ordering::Relaxed) {
            let d = garbage(&mut rng, &valid);
            let _ = sock.send_to(&d, target_addr).await;
            sent += 1;
            if sent % 256 == 0 {
                tokio::task::yield_now().await;
            }
        }
        sent
    });

    // Pings during the flood; resends cover datagrams the kernel dropped
    // from a full socket buffer.
    let opts = || SendOptions {
        timeout: Some(Duration::from_secs(5)),
        retransmit: Some(RetransmitPolicy {
            max_retransmits: 6,
            initial_timeout: Duration::from_millis(100),
            random_factor: 1.5,
        }),
        ..SendOptions::default()
    };
    let mut answered = 0;
    for _ in 0..10 {
        let r = legit
            .send_ping("jis:home:target", target_addr, "x", "during flood", opts())
            .await
            .unwrap();
        if r.is_some_and(|r| r.airlock_zone == AirlockZone::Groen) {
            answered += 1;
        }
    }
    // The flooded node's own timers still fire: its request to a silent
    // socket times out instead of hanging behind the garbage.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let short = SendOptions {
        timeout: Some(Duration::from_millis(300)),
        ..SendOptions::default()
    };
    let timed_out = tokio::time::timeout(
        Duration::from_secs(5),
        target.send_ping(
            "jis:x:silent",
            silent.local_addr().unwrap(),
            "x",
            "y",
            short,
        ),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flooded = flooder.await.unwrap();
    assert!(
        flooded >= 1000,
        "the checks ran during the flood ({flooded} datagrams)"
    );
    assert_eq!(timed_out, Ok(Ok(None)), "a timer of the flooded node fired");
    assert_eq!(
        answered, 10,
        "every legitimate ping answered during the flood"
    );
    let after = legit
        .send_ping("jis:home:target", target_addr, "x", "after flood", opts())
        .await
        .unwrap();
    assert!(after.is_some(), "still serving after the flood");
    let stats = target.stats();
    assert!(
        stats.engine.malformed > 1000,
        "garbage counted: {}",
        stats.engine.malformed
    );
    assert!(target.is_running());
    target.stop().await;
    legit.stop().await;
}
