//! `PingNode::receive` throughput, one core.
//!
//! Main case: a trusted packet (GROEN). Each iteration receives a packet with
//! a fresh nonce and a timestamp that moves with a virtual clock, so the
//! nonce tracker reaches its steady state: at 10 µs of virtual time per
//! packet (100,000 packets/s) the tracker holds ~3,000,000 nonces (the design
//! load of the default capacity), at 100 µs ~300,000. Flood cases: fresh
//! packets from an unknown sender (ROOD), and one packet replayed over and
//! over (replay check only).
//!
//! The tracker is filled to its steady state first (untimed). Packets are
//! prepared in untimed chunks (clone, nonce, timestamp text); only the
//! receives, including dropping their responses, are timed.

// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::{PingNode, PingNodeConfig, PingNodeStats, PingOptions, PingPacket, Timestamp};

/// Packets prepared (untimed) per timed run.
const CHUNK: usize = 4096;

fn t0() -> Timestamp {
    Timestamp::parse("2026-11-26T11:00:00Z").unwrap()
}

struct Case {
    name: &'static str,
    /// Virtual time per packet.
    step_us: u64,
    sender: &'static str,
    /// Resend the first packet instead of fresh ones.
    replay: bool,
    check: fn(&PingNodeStats),
}

fn run(group: &mut BenchmarkGroup<'_, WallTime>, case: &Case) {
    let mut hub = PingNode::new(
        "jis:home:hub",
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(1)),
    );
    hub.set_trust("jis:home:sensor", 0.9);
    let mut sender = PingNode::new(
        case.sender,
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(2)),
    );
    let template = sender.ping(
        t0(),
        "jis:home:hub",
        "temperature.report",
        "hourly log",
        PingOptions::default(),
    );
    let step_us = case.step_us;
    let mut next = 0u64;
    let mut chunk: Vec<(Timestamp, PingPacket)> = Vec::with_capacity(CHUNK);
    let mut prepare = |chunk: &mut Vec<(Timestamp, PingPacket)>, n: u64| {
        chunk.clear();
        for _ in 0..n {
            let now = t0() + Duration::from_micros(next * step_us);
            let mut p = template.clone();
            if !case.replay {
                p.nonce = format!("{next:032x}");
                p.timestamp = now.to_iso();
            }
            chunk.push((now, p));
            next += 1;
        }
    };
    // Untimed: fill the tracker to its steady state (one window and a bit).
    let steady = if case.replay { 1 } else { 31_000_000 / step_us };
    for _ in 0..steady.div_ceil(CHUNK as u64) {
        prepare(&mut chunk, CHUNK as u64);
        for (now, p) in &chunk {
            hub.receive(*now, p);
        }
    }
    group.bench_function(case.name, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
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
    (case.check)(&s);
    eprintln!(
        "{}: {} packets, {} nonces tracked at the end",
        case.name, s.received, s.nonce_tracked
    );
}

fn bench_receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("receive");
    group.throughput(Throughput::Elements(1));
    let all_accepted: fn(&PingNodeStats) =
        |s| assert_eq!((s.accepted, s.nonce_refusals), (s.received, 0), "{s:?}");
    let cases = [
        Case {
            name: "trusted_accept/100k_pps_3M_nonces",
            step_us: 10,
            sender: "jis:home:sensor",
            replay: false,
            check: all_accepted,
        },
        Case {
            name: "trusted_accept/10k_pps_300k_nonces",
            step_us: 100,
            sender: "jis:home:sensor",
            replay: false,
            check: all_accepted,
        },
        Case {
            name: "unknown_reject/100k_pps_3M_nonces",
            step_us: 10,
            sender: "jis:evil:x",
            replay: false,
            check: |s| assert_eq!((s.rejected, s.nonce_refusals), (s.received, 0), "{s:?}"),
        },
        Case {
            name: "replay_flood/same_packet",
            step_us: 0,
            sender: "jis:home:sensor",
            replay: true,
            check: |s| {
                assert_eq!(
                    (s.accepted, s.replay_reasons.seen),
                    (1, s.received - 1),
                    "{s:?}"
                )
            },
        },
    ];
    for case in &cases {
        run(&mut group, case);
    }
    group.finish();
}

criterion_group!(benches, bench_receive);
criterion_main!(benches);
