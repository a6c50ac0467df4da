//! The cost of authenticated identity against its raw crypto floor: one
//! Ed25519 sign plus one verify of a packet-sized message, next to the
//! signed path (signing input build + sign, signing input build + verify)
//! for a typical packet, and batch verification of 64 packets. The
//! goal: the signed path costs at most 1.3x the raw floor.
//!
//! `cargo bench -p tibet-ping --bench signing -- --warm-up-time 1 --measurement-time 3`
//! (groups `cpu` and `cpu_batch` report CPU time of the thread, not wall time)

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::typical_packet;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ed25519_dalek::Signer;
use tibet_ping::PingPacket;
use tibet_ping::identity::{
    Keypair, PublicKey, packet_signing_input, sign_packet, verify_packet, verify_packets,
};

fn bench(c: &mut Criterion) {
    let key = Keypair::from_seed(&[7; 32]);
    let public = key.public();
    let packet = typical_packet();
    let input = packet_signing_input(&packet);
    let raw_sig = key.signing_key().sign(&input);
    let mut signed = packet.clone();
    sign_packet(&mut signed, &key);

    let mut g = c.benchmark_group("ed25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw_sign_plus_verify", |b| {
        b.iter(|| {
            let sig = key.signing_key().sign(black_box(&input));
            public.verifying_key().verify_strict(&input, &sig).is_ok()
        })
    });
    g.bench_function("raw_verify", |b| {
        b.iter(|| {
            public
                .verifying_key()
                .verify_strict(black_box(&input), &raw_sig)
                .is_ok()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("packet");
    g.throughput(Throughput::Elements(1));
    g.bench_function("signing_input", |b| {
        b.iter(|| packet_signing_input(black_box(&packet)))
    });
    g.bench_function("sign_plus_verify", |b| {
        b.iter(|| {
            let mut p = black_box(&packet).clone();
            sign_packet(&mut p, &key);
            verify_packet(&p, &public).is_ok()
        })
    });
    g.bench_function("verify", |b| {
        b.iter(|| verify_packet(black_box(&signed), &public).is_ok())
    });
    g.bench_function("parse_public_key", |b| {
        let text = public.to_base64();
        b.iter(|| PublicKey::parse(black_box(&text)).is_ok())
    });
    g.finish();

    let batch: Vec<PingPacket> = (0..64u8)
        .map(|i| {
            let mut p = typical_packet();
            p.nonce = format!("{i:032x}");
            sign_packet(&mut p, &key);
            p
        })
        .collect();
    let items: Vec<(&PingPacket, &PublicKey)> = batch.iter().map(|p| (p, &public)).collect();
    let mut g = c.benchmark_group("batch64");
    g.throughput(Throughput::Elements(64));
    g.bench_function("verify_packets", |b| {
        b.iter(|| verify_packets(black_box(&items)))
    });
    g.finish();

    // The same cases in CPU time of this thread rather than wall time, so
    // that they compare with the listener's CPU per ping
    // (scripts/bench-identity.sh) on a loaded machine.
    // The kernel updates a running thread's CPU time at scheduler ticks:
    // few, long samples (flat sampling) keep that error near 1%.
    let mut g = c.benchmark_group("cpu");
    cpu_sampling(&mut g);
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw_sign_plus_verify", |b| {
        b.iter_custom(|iters| {
            cpu_time(|| {
                for _ in 0..iters {
                    let sig = key.signing_key().sign(black_box(&input));
                    black_box(public.verifying_key().verify_strict(&input, &sig).is_ok());
                }
            })
        })
    });
    g.bench_function("raw_verify", |b| {
        b.iter_custom(|iters| {
            cpu_time(|| {
                for _ in 0..iters {
                    let ok = public
                        .verifying_key()
                        .verify_strict(black_box(&input), &raw_sig);
                    black_box(ok.is_ok());
                }
            })
        })
    });
    g.finish();
    let mut g = c.benchmark_group("cpu_batch");
    cpu_sampling(&mut g);
    for n in [8usize, 64] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("verify_packets_{n}"), |b| {
            b.iter_custom(|iters| {
                cpu_time(|| {
                    for _ in 0..iters {
                        black_box(verify_packets(black_box(&items[..n])));
                    }
                })
            })
        });
    }
    g.finish();
}

fn cpu_sampling<M: criterion::measurement::Measurement>(g: &mut criterion::BenchmarkGroup<'_, M>) {
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
}

/// CPU time this thread spends in `f` (Linux: `/proc/thread-self/schedstat`,
/// nanoseconds on a CPU); wall time where that file is missing.
fn cpu_time(f: impl FnOnce()) -> Duration {
    fn on_cpu() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
    let wall = Instant::now();
    let before = on_cpu();
    f();
    match (before, on_cpu()) {
        (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
        _ => wall.elapsed(),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
