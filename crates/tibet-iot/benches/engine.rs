//! The sans-IO engine alone: one trusted ping in, one answer out, no sockets.
//! Separates the node's own work (decode, pipeline, encode, tables) from the
//! kernel's share measured by `examples/loadgen.rs`.
//!
//! `cargo bench -p tibet-iot --bench engine -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::net::SocketAddr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot::{Engine, MonoTime, Now, TransportConfig};
use tibet_ping::{PacketCodec, PingNode, PingNodeConfig, Timestamp};

fn bench(c: &mut Criterion) {
    let now = Now::new(MonoTime::ZERO, Timestamp::now());
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut crafter = PingNode::new(
        "jis:bench:client",
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(1)),
    );
    let codec = PacketCodec::json();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    for (name, trust) in [("groen_answered", 0.9), ("rood_dropped", 0.0)] {
        let mut engine = Engine::new("jis:bench:node", TransportConfig::loopback(), 7);
        engine.set_trust(now, "jis:bench:client", trust);
        engine.set_events_enabled(false);
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let p = crafter.ping(
                        now.wall,
                        "jis:bench:node",
                        "bench.ping",
                        "engine bench",
                        Default::default(),
                    );
                    codec.encode_packet(&p).unwrap()
                },
                |datagram| {
                    engine.handle_datagram(now, from, &datagram);
                    engine.poll_transmit()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
