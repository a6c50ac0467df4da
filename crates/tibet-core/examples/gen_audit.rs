//! Writes a token file for load tests: `cargo run --release -p tibet-core
//! --example gen_audit -- PATH [COUNT]` (default 1,000,000 tokens, chained,
//! with unicode and floats in ERIN). Keep PATH under `target/`.

use std::time::{Duration, Instant};

use serde_json::json;
use tibet_core::{NewToken, Provider, TokenIdGen};
use tibet_ping::Timestamp;

mod fixture;

use fixture::group_commit_store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: gen_audit PATH [COUNT]")?;
    let count: u64 = args
        .next()
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let _ = std::fs::remove_file(&path);
    let store = group_commit_store(&path)?;
    let mut t = Timestamp::parse("2026-11-26T11:00:00+00:00").ok_or("bad time")?;
    let mut p = Provider::new("jis:home:hub")
        .with_store(store)
        .with_id_gen(TokenIdGen::new(7));
    let started = Instant::now();
    for i in 0..count {
        t = t + Duration::from_micros(137);
        let new = NewToken::new(if i % 10 == 0 { "heartbeat" } else { "ping.intent" })
            .erin(json!({"intent": "temperature.read", "payload": {"celsius": 20.0 + (i % 50) as f64 / 10.0, "note": "Wärme ☀"}}))
            .eraan(["jis:home:sensor", "jis:home:hub"])
            .eromheen(json!({"routing_mode": "direct", "hop_count": i % 3, "trust_score": 0.9}))
            .erachter(format!("reading {i}"))
            .actor(format!("jis:home:sensor{}", i % 16));
        p.create_at(new, t)?;
    }
    eprintln!(
        "wrote {count} tokens to {path} in {:.2?}",
        started.elapsed()
    );
    Ok(())
}
