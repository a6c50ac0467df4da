//! The sans-IO engine alone: one trusted ping in, one answer out, no sockets.
//! Separates the node's own work (decode, pipeline, encode, tables) from the
//! kernel's share measured by `examples/loadgen.rs`. The `parts` group takes
//! the trusted ping apart: decoding the datagram (`decode`; `decode_into`
//! reuses one packet's strings, as the engine does), the protocol pipeline
//! (trust, airlock, replay check, building the response) and encoding the
//! answer, and `answer_written` the engine's path through the pipeline (the
//! answer written into a reused buffer, no `PingResponse` built); what
//! `engine/groen_answered` costs beyond their sum is the
//! engine's own tables (response cache, peers, routes, credit, metrics).
//! The `_v6` cases come from an IPv6 source, which the per-source limits
//! also count under its /64.
//!
//! `cargo bench -p tibet-iot --bench engine -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::net::SocketAddr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot::{Engine, MonoTime, Now, TransportConfig};
use tibet_ping::{Frame, PacketCodec, PingNode, PingNodeConfig, PingPacket, Timestamp};

fn bench(c: &mut Criterion) {
    let now = Now::new(MonoTime::ZERO, Timestamp::now());
    let from4: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    // An IPv6 source: every per-source limit also counts it under its /64.
    let from6: SocketAddr = "[fd00:77::1]:40000".parse().unwrap();
    let mut crafter = PingNode::new(
        "jis:bench:client",
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(1)),
    );
    let codec = PacketCodec::json();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    for (name, trust, from) in [
        ("groen_answered", 0.9, from4),
        ("rood_dropped", 0.0, from4),
        ("groen_answered_v6", 0.9, from6),
        ("rood_dropped_v6", 0.0, from6),
    ] {
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

    let mut parts = c.benchmark_group("parts");
    parts.throughput(Throughput::Elements(1));
    let fresh = |crafter: &mut PingNode| {
        crafter.ping(
            now.wall,
            "jis:bench:node",
            "bench.ping",
            "engine bench",
            Default::default(),
        )
    };
    let datagram = codec.encode_packet(&fresh(&mut crafter)).unwrap();
    parts.bench_function("decode", |b| b.iter(|| codec.decode(&datagram)));
    // The engine's way: into one packet whose strings are reused.
    let mut slot = PingPacket::new("", "", "", "", "");
    parts.bench_function("decode_into", |b| {
        b.iter(|| codec.decode_into(&datagram, &mut slot).is_ok())
    });
    let mut node = PingNode::new(
        "jis:bench:node",
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(2)),
    );
    node.set_trust("jis:bench:client", 0.9);
    parts.bench_function("pipeline", |b| {
        b.iter_batched(
            || fresh(&mut crafter),
            |packet| node.receive(now.wall, &packet),
            BatchSize::SmallInput,
        )
    });
    // The engine's path: the same pipeline, the answer written into a reused
    // buffer without building a `PingResponse`.
    let mut buf = Vec::new();
    parts.bench_function("answer_written", |b| {
        b.iter_batched(
            || fresh(&mut crafter),
            |packet| {
                let answer = node.answer(now.wall, &packet, None);
                let view = node.response_view(now.wall, &answer, &packet);
                codec.encode_view_into(&view, &mut buf).unwrap();
                buf.len()
            },
            BatchSize::SmallInput,
        )
    });
    let packet = match codec.decode(&datagram).unwrap() {
        Frame::Packet(p) => p,
        Frame::Response(_) => unreachable!("a ping was encoded"),
    };
    let response = node.receive(now.wall, &packet).response;
    parts.bench_function("encode_response", |b| {
        b.iter(|| codec.encode_response(&response))
    });
    parts.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
