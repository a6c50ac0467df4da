//! A hub engine holding N live peers that heartbeat every 30 s: the memory
//! held per peer (resident set growth), the cost of answering a round of
//! heartbeats, of the hub's own heartbeat round, of a cleanup sweep, and of
//! one ping, at 10 and at 10,000 peers (docs/PERFORMANCE.md, "Hub with
//! 10,000 peers").
//!
//! `cargo run --release -p tibet-iot-proto --example hub [PEERS...]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot_proto::sim::{addr, did};
use tibet_iot_proto::{Engine, Limits, MonoTime, Now, PacketCodec, TransportConfig};
use tibet_ping::{
    AirlockRule, AirlockZone, PingNode, PingNodeConfig, PingOptions, RulePattern, Timestamp,
};

const PINGS: usize = 20_000;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn at(s: f64) -> Now {
    let d = Duration::from_secs_f64(s);
    Now::new(
        MonoTime::from_secs(0) + d,
        Timestamp::from_secs(1_795_690_800) + d,
    )
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("peer count"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 10_000]
    } else {
        sizes
    };
    println!(
        "peers\talive\thb sent\tbytes/peer\thb in (us/hb)\thb out (us/peer)\tcleanup (ms)\tping (us)"
    );
    for n in sizes {
        run(n);
    }
}

fn run(n: usize) {
    let codec = PacketCodec::json();
    let hub_did = "jis:sim:hub";
    // The peers: only their packets are needed, made before measuring.
    let mut peers: Vec<PingNode> = (0..n)
        .map(|i| {
            PingNode::new(
                did(i),
                PingNodeConfig::default(),
                Box::new(StdRng::seed_from_u64(i as u64)),
            )
        })
        .collect();
    let round = |peers: &mut Vec<PingNode>, t: f64| -> Vec<Vec<u8>> {
        peers
            .iter_mut()
            .map(|p| {
                codec
                    .encode_packet(&p.heartbeat(at(t).wall, hub_did, None))
                    .unwrap()
            })
            .collect()
    };
    let hb0 = round(&mut peers, 0.0);
    let hb1 = round(&mut peers, 29.0);
    let pings: Vec<(usize, Vec<u8>)> = (0..PINGS)
        .map(|k| {
            let i = k % n;
            let p = peers[i].ping(
                at(50.0).wall,
                hub_did,
                "temperature.report",
                "bench",
                PingOptions::default(),
            );
            (i, codec.encode_packet(&p).unwrap())
        })
        .collect();

    let before = rss_bytes();
    let cfg = TransportConfig {
        discovery_enabled: false,
        limits: Limits {
            peers: 16_384,
            ..Limits::default()
        },
        ..TransportConfig::default()
    };
    let mut hub = Engine::new(hub_did, cfg, 1);
    hub.set_events_enabled(false);
    hub.add_rule(AirlockRule {
        rule_id: "fleet".into(),
        name: "fleet".into(),
        pattern: RulePattern {
            source_did: Some("jis:sim:*".into()),
            ..RulePattern::default()
        },
        zone: AirlockZone::Groen,
        priority: 50,
    });
    // Commissioned devices: each peer is trusted (its trust entry counts
    // towards the bytes held per peer).
    for i in 0..n {
        hub.set_trust(at(0.0), &did(i), 0.9);
    }
    hub.start(at(0.0));
    let feed = |hub: &mut Engine, t: f64, dgrams: &[Vec<u8>]| -> Duration {
        let now = at(t);
        let start = Instant::now();
        for (i, d) in dgrams.iter().enumerate() {
            hub.handle_datagram(now, addr(i), d);
            while let Some(tx) = hub.poll_transmit() {
                black_box(tx);
            }
        }
        start.elapsed()
    };
    feed(&mut hub, 0.0, &hb0);
    let hb_in = feed(&mut hub, 29.0, &hb1);
    let held = rss_bytes().saturating_sub(before);

    // The hub's own heartbeat round (due at 30 s) and the cleanup (45 s).
    let start = Instant::now();
    hub.handle_timeout(at(30.0));
    let mut sent = 0;
    while let Some(tx) = hub.poll_transmit() {
        black_box(tx);
        sent += 1;
    }
    let hb_out = start.elapsed();
    let start = Instant::now();
    hub.handle_timeout(at(45.0));
    let cleanup = start.elapsed();
    let alive = hub.peers().stats(at(45.0).mono).alive;

    let now = at(50.0);
    let start = Instant::now();
    for (i, d) in &pings {
        hub.handle_datagram(now, addr(*i), d);
        while let Some(tx) = hub.poll_transmit() {
            black_box(tx);
        }
    }
    let ping = start.elapsed();
    let st = hub.stats(now);
    println!(
        "{n}\t{alive}\t{sent}\t{}\t{:.2}\t{:.2}\t{:.2}\t{:.2}",
        held / n as u64,
        hb_in.as_secs_f64() * 1e6 / n as f64,
        hb_out.as_secs_f64() * 1e6 / n as f64,
        cleanup.as_secs_f64() * 1e3,
        ping.as_secs_f64() * 1e6 / PINGS as f64,
    );
    if std::env::var_os("HUB_DEBUG").is_some() {
        eprintln!("{:?} {:?} {:?}", st.engine, st.peers, st.ping);
    }
    assert_eq!(st.engine.rood_dropped, 0, "every ping answered");
}
