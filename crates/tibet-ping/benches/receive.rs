//! `PingNode::receive` throughput on a trusted packet (GROEN), one core.
//!
//! Each iteration receives a packet with a fresh nonce and a timestamp that
//! moves with a virtual clock, so the nonce tracker reaches its steady state:
//! at 10 µs of virtual time per packet (100,000 packets/s) the tracker holds
//! ~3,000,000 nonces (the design load of the default capacity), at 100 µs
//! ~300,000.
//! The tracker is filled to its steady state first (untimed). Packets are
//! prepared in untimed chunks (clone, nonce, timestamp text);
//! only the receives, including dropping their responses, are timed.

// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::{PingNode, PingNodeConfig, PingOptions, PingPacket, Timestamp};

/// Packets prepared (untimed) per timed run.
const CHUNK: usize = 4096;

fn t0() -> Timestamp {
    Timestamp::parse("2026-11-26T11:00:00Z").unwrap()
}

fn bench_receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("receive");
    group.throughput(Throughput::Elements(1));
    let cases = [
        ("trusted_accept/100k_pps_3M_nonces", 10u64),
        ("trusted_accept/10k_pps_300k_nonces", 100),
    ];
    for (name, step_us) in cases {
        let mut hub = PingNode::new(
            "jis:home:hub",
            PingNodeConfig::default(),
            Box::new(StdRng::seed_from_u64(1)),
        );
        hub.set_trust("jis:home:sensor", 0.9);
        let mut sensor = PingNode::new(
            "jis:home:sensor",
            PingNodeConfig::default(),
            Box::new(StdRng::seed_from_u64(2)),
        );
        let template = sensor.ping(
            t0(),
            "jis:home:hub",
            "temperature.report",
            "hourly log",
            PingOptions::default(),
        );
        let mut next = 0u64;
        let mut chunk: Vec<(Timestamp, PingPacket)> = Vec::with_capacity(CHUNK);
        let mut prepare = |chunk: &mut Vec<(Timestamp, PingPacket)>, n: u64| {
            chunk.clear();
            for _ in 0..n {
                let now = t0() + Duration::from_micros(next * step_us);
                let mut p = template.clone();
                p.nonce = format!("{next:032x}");
                p.timestamp = now.to_iso();
                chunk.push((now, p));
                next += 1;
            }
        };
        // Untimed: fill the tracker to its steady state (one window and a bit).
        let steady = 31_000_000 / step_us;
        for _ in 0..steady.div_ceil(CHUNK as u64) {
            prepare(&mut chunk, CHUNK as u64);
            for (now, p) in &chunk {
                hub.receive(*now, p);
            }
        }
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    // Untimed: the next packets, each with a fresh nonce and
                    // a timestamp following the virtual clock.
                    prepare(&mut chunk, left.min(CHUNK as u64));
                    left -= chunk.len() as u64;
                    let start = Instant::now();
                    for (now, p) in &chunk {
                        black_box(hub.receive(*now, p).outcome);
                    }
                    timed += start.elapsed();
                }
                timed
            })
        });
        let s = hub.stats();
        assert_eq!(s.accepted, s.received, "every packet accepted: {s:?}");
        assert_eq!(s.nonce_refusals, 0);
        eprintln!(
            "{name}: {} packets, {} nonces tracked at the end",
            s.received, s.nonce_tracked
        );
    }
    group.finish();
}

criterion_group!(benches, bench_receive);
criterion_main!(benches);
