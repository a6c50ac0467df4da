//! Provenance throughput: token creation with hash, FileStore append with
//! group commit, and line verification. Results go to docs/PERFORMANCE.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use tibet_core::{Provider, Token, TokenIdGen};
use tibet_ping::Timestamp;

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

// criterion's macro generates an undocumented function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::create, super::append);
}
use group::benches;
criterion_main!(benches);
