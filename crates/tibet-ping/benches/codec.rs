//! Frame codec throughput: encode and decode a typical ~500-byte packet in
//! JSON and msgpack (target: >= 500,000 JSON decodes per second, one core).
//!
//! `cargo bench -p tibet-ping --bench codec -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;

use common::typical_packet;
use criterion::{Criterion, Throughput, criterion_group};
use tibet_ping::{Frame, PacketCodec, PingResponse};

fn typical_response() -> PingResponse {
    serde_json::from_value(serde_json::json!({
        "response_id": "resp_0a1b2c3d4e5f6071", "in_response_to": "ping_3f9a1c2b7d4e5f60",
        "responder_did": "jis:home:hub", "decision": "accept", "payload": {"ack": true},
        "capabilities": ["temperature", "humidity"], "trust_score": 0.63,
        "fira_breakdown": {"score": 0.63, "source": "vouched", "vouch_count": 1},
        "tibet_token_id": null, "timestamp": "2026-11-26T11:00:33.812558+00:00",
        "rtt_ms": 0.042, "airlock_zone": "GROEN", "applied_rule": null
    }))
    .expect("valid response")
}

fn bench(c: &mut Criterion) {
    let packet = typical_packet();
    let response = typical_response();
    for (name, codec) in [
        ("json", PacketCodec::json()),
        ("msgpack", PacketCodec::msgpack()),
    ] {
        let frame = codec.encode_packet(&packet).expect("encodes");
        let resp_frame = codec.encode_response(&response).expect("encodes");
        println!(
            "{name}: packet frame {} bytes, response frame {} bytes",
            frame.len(),
            resp_frame.len()
        );
        assert_eq!(codec.decode(&frame), Ok(Frame::Packet(packet.clone())));

        let mut g = c.benchmark_group(format!("codec/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("encode_packet", |b| {
            b.iter(|| codec.encode_packet(black_box(&packet)))
        });
        g.bench_function("decode_packet", |b| {
            b.iter(|| codec.decode(black_box(&frame)))
        });
        g.bench_function("encode_response", |b| {
            b.iter(|| codec.encode_response(black_box(&response)))
        });
        g.bench_function("decode_response", |b| {
            b.iter(|| codec.decode(black_box(&resp_frame)))
        });
        g.finish();
    }
}

/// This thread's on-CPU time in nanoseconds (Linux `schedstat`), so a rate
/// can be stated per CPU-second even when other jobs share the cores.
fn on_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Decodes per second of CPU time on one core, for the typical packet.
fn cpu_time_rates() {
    const N: u32 = 400_000;
    let packet = typical_packet();
    for (name, codec) in [
        ("json", PacketCodec::json()),
        ("msgpack", PacketCodec::msgpack()),
    ] {
        let frame = codec.encode_packet(&packet).expect("encodes");
        let (Some(start), wall) = (on_cpu_ns(), std::time::Instant::now()) else {
            println!("cpu-time rate: /proc/thread-self/schedstat unavailable, skipped");
            return;
        };
        for _ in 0..N {
            black_box(codec.decode(black_box(&frame)).expect("decodes"));
        }
        let cpu = on_cpu_ns().unwrap_or(start).saturating_sub(start).max(1);
        println!(
            "cpu-time rate: {name} decode_packet ({} B frame): {:.0} decodes per CPU-second \
             ({:.0} per wall-second)",
            frame.len(),
            f64::from(N) * 1e9 / cpu as f64,
            f64::from(N) / wall.elapsed().as_secs_f64()
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    cpu_time_rates();
}
