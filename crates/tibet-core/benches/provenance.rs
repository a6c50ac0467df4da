//! Provenance throughput: token creation with hash, FileStore append with
//! group commit, line verification, and ping tokens made in batches (as an
//! audited node makes them). Results go to docs/PERFORMANCE.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use tibet_core::{NetworkBridge, PingAnswer, Provider, Token, TokenIdGen, packet_token};
use tibet_ping::{AirlockZone, PingDecision, PingPacket, Timestamp};

#[path = "../examples/fixture/mod.rs"]
mod fixture;

use fixture::{Discard, group_commit_store, ping_intent};

fn provider() -> Provider {
    let t0 = Timestamp::from_secs(1_795_000_000);
    Provider::new("jis:home:hub")
        .with_id_gen(TokenIdGen::new(1))
        .with_clock(move || t0)
}

fn create(c: &mut Criterion) {
    let mut g = c.benchmark_group("token");
    g.throughput(Throughput::Elements(1));
    let mut p = provider().with_store(Discard(None));
    let template = ping_intent();
    g.bench_function("create_sha256", |b| {
        b.iter(|| black_box(p.create(template.clone()).unwrap()))
    });
    let sample = p.create(template.clone()).unwrap();
    let line = sample.to_json_line();
    g.bench_function("parse_and_verify_line", |b| {
        b.iter(|| black_box(Token::from_json_line(line.as_bytes()).unwrap().verify(None)))
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("bench-append.jsonl");
    let _ = std::fs::remove_file(&path);
    let store = group_commit_store(&path).unwrap();
    let mut p = provider().with_store(store);
    let template = ping_intent();
    let mut g = c.benchmark_group("file_store");
    g.throughput(Throughput::Elements(1));
    g.bench_function("create_and_append_group_commit_100ms", |b| {
        b.iter(|| black_box(p.create(template.clone()).unwrap()))
    });
    g.finish();
    drop(p);
    let _ = std::fs::remove_file(&path);
}

/// Ping tokens in batches of 256 (an audited node's path): through a
/// `NewToken` (`packet_token`, the generic path) and straight from the
/// packet (`add_ping`). Creation only (a store that discards).
fn ping_batches(c: &mut Criterion) {
    const BATCH: usize = 256;
    let mut packet = PingPacket::new(
        "ping_114e000000000001",
        "jis:home:sensor",
        "jis:home:hub",
        "temperature.read",
        "Thermostat check",
    );
    packet.payload = serde_json::json!({"celsius": 21.5, "unit": "°C"})
        .as_object()
        .unwrap()
        .clone();
    let answer = PingAnswer {
        decision: PingDecision::Accept,
        trust_score: 0.9,
        zone: AirlockZone::Groen,
    };
    let mut g = c.benchmark_group("ping_token_batch");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut bridge = NetworkBridge::new(provider().with_store(Discard(None)));
    g.bench_function("generic_new_token", |b| {
        b.iter(|| {
            bridge.begin_batch();
            for _ in 0..BATCH {
                let mut new = packet_token(&packet, None);
                new.eromheen
                    .insert("decision".into(), answer.decision.as_str().into());
                new.eromheen.insert("trust_score".into(), 0.9.into());
                new.eromheen
                    .insert("zone".into(), answer.zone.as_str().into());
                new.eromheen.insert("authenticated".into(), false.into());
                bridge.add_event(new).unwrap();
            }
            black_box(bridge.commit_batch().unwrap())
        })
    });
    g.bench_function("straight_from_the_packet", |b| {
        b.iter(|| {
            bridge.begin_batch();
            for _ in 0..BATCH {
                bridge.add_ping(&packet, Some(answer), Some(false)).unwrap();
            }
            black_box(bridge.commit_batch().unwrap())
        })
    });
    g.finish();
}

// criterion's macro generates an undocumented function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::create, super::append, super::ping_batches);
}
use group::benches;
criterion_main!(benches);
