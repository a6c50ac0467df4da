//! Bench binary: token creation, FileStore append (group commit) and line
//! verification rates, reported per wall-clock second and per second of
//! this thread's CPU time (from `/proc/thread-self/schedstat`, user + system),
//! so a machine shared with other work still gives a per-core figure.
//!
//! `cargo run --release -p tibet-core --example provenance_rates [N]`
//! (writes `target/rates-append.jsonl`, removed afterwards).

use std::time::{Duration, Instant};

use tibet_core::{FileStore, Provider, Store, Token, TokenIdGen};
use tibet_ping::Timestamp;

mod fixture;

use fixture::{Discard, group_commit_store, ping_intent};

/// This thread's CPU time (user + system), if the kernel reports it.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

fn measure(name: &str, n: u64, mut f: impl FnMut(u64)) {
    let (wall0, cpu0) = (Instant::now(), thread_cpu());
    for i in 0..n {
        f(i);
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = cpu0.zip(thread_cpu()).map(|(a, b)| (b - a).as_secs_f64());
    let per_cpu = cpu.map_or("n/a".to_owned(), |c| {
        format!("{:.0}/s per CPU-second", n as f64 / c)
    });
    println!(
        "{name}: {n} in {wall:.2}s wall = {:.0}/s; {per_cpu}",
        n as f64 / wall
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(300_000);
    let t0 = Timestamp::parse("2026-11-26T11:00:00+00:00").ok_or("time")?;
    let new = ping_intent();

    let mut p = Provider::new("jis:home:hub")
        .with_store(Discard(None))
        .with_id_gen(TokenIdGen::new(1));
    measure("create with SHA-256", n, |i| {
        p.create_at(new.clone(), t0 + Duration::from_micros(i))
            .map(drop)
            .unwrap_or_default()
    });

    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/rates-append.jsonl");
    let _ = std::fs::remove_file(&path);
    let store = group_commit_store(&path)?;
    let mut p = Provider::new("jis:home:hub")
        .with_store(store)
        .with_id_gen(TokenIdGen::new(2));
    measure("create + FileStore append (group commit 100 ms)", n, |i| {
        p.create_at(new.clone(), t0 + Duration::from_micros(i))
            .map(drop)
            .unwrap_or_default()
    });
    drop(p);

    let lines: Vec<String> = std::fs::read_to_string(&path)?
        .lines()
        .map(str::to_owned)
        .collect();
    let mut ok = 0u64;
    measure(
        "parse + verify one line (single thread)",
        lines.len() as u64,
        |i| {
            let t = Token::from_json_line(lines[i as usize].as_bytes()).expect("our own line");
            ok += u64::from(t.verify(None));
        },
    );
    assert_eq!(ok, lines.len() as u64);
    std::fs::remove_file(&path)?;

    // Opening a big file reads only its tail (see gen_audit for the file).
    let big = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/audit-1m.jsonl");
    if let Ok(meta) = std::fs::metadata(&big) {
        let started = Instant::now();
        let store = FileStore::open_read_only(&big)?;
        println!(
            "open {} ({} bytes) to continue its chain: {:.2?} (last id {:?})",
            big.display(),
            meta.len(),
            started.elapsed(),
            store.last_id()
        );
    }
    Ok(())
}
