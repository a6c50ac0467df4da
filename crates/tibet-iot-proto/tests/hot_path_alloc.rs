//! What a trusted ping costs the engine in allocations once it is warm:
//! decoding reuses the engine's packet, the answer is written into a reused
//! buffer, the response cache copies it into its byte log, and what remains
//! is the answer's own bytes for the send queue. Measured
//! with a counting global allocator; one test in this binary, so no other
//! test thread allocates meanwhile.

use std::alloc::System;
use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tibet_iot_proto::{Engine, MonoTime, Now, TransportConfig};
use tibet_ping::{PacketCodec, PingNode, PingNodeConfig, PingOptions, Timestamp};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn batches(from: SocketAddr, all: &[Vec<u8>], batched: bool) -> Vec<Vec<(SocketAddr, &[u8])>> {
    all.chunks(if batched { 32 } else { 1 })
        .map(|b| b.iter().map(|d| (from, d.as_slice())).collect())
        .collect()
}

#[test]
fn a_trusted_ping_allocates_little_once_warm() {
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let wall = Timestamp::parse("2026-11-29T19:00:00Z").unwrap();
    let mut sender = PingNode::new(
        "jis:test:sensor",
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(2)),
    );
    let codec = PacketCodec::json();
    let start = Now::new(MonoTime::ZERO, wall);
    let datagrams: Vec<Vec<u8>> = (0..2_000)
        .map(|_| {
            let p = sender.ping(
                wall,
                "jis:test:hub",
                "t.read",
                "why",
                PingOptions::default(),
            );
            codec.encode_packet(&p).unwrap()
        })
        .collect();
    let (warm, measured) = datagrams.split_at(1_000);
    let mut tick = 0u64;
    // One by one (`handle_datagram`), then in receive batches of 32
    // (`handle_datagrams`, as the driver calls it; identity mode `prefer`,
    // so the batch is decoded ahead for signature checks).
    for batched in [false, true] {
        // Built before measuring: the test's own vectors are not counted.
        let (warm, measured) = (
            batches(from, warm, batched),
            batches(from, measured, batched),
        );
        let mut run = |engine: &mut Engine, all: &[Vec<(SocketAddr, &[u8])>]| {
            for batch in all {
                tick += 1;
                let now = Now::new(
                    MonoTime::from_duration(Duration::from_micros(tick)),
                    wall + Duration::from_micros(tick),
                );
                if batched {
                    engine.handle_datagrams(now, batch);
                } else {
                    engine.handle_datagram(now, batch[0].0, batch[0].1);
                }
                for _ in batch {
                    assert!(engine.poll_transmit().is_some());
                }
            }
        };
        let mut engine = Engine::new("jis:test:hub", TransportConfig::loopback(), 1);
        engine.set_events_enabled(false);
        engine.set_trust(start, "jis:test:sensor", 0.9);
        run(&mut engine, &warm);
        let region = Region::new(GLOBAL);
        run(&mut engine, &measured);
        let s = region.change();
        let per_ping = s.allocations as f64 / 1_000.0;
        eprintln!(
            "batched {batched}: {per_ping:.2} allocations per answered ping ({} reallocations)",
            s.reallocations
        );
        // The batch path also allocates its per-batch vectors (under 0.3
        // per ping at 32 a batch). One remains per ping (the answer's
        // exact-size bytes); with a shared `Bytes` in the response cache it
        // was two, with a built `PingResponse` and a freshly decoded packet
        // 19.
        assert!(
            per_ping <= 1.5,
            "batched {batched}: {per_ping:.2} allocations per ping"
        );
    }
}
