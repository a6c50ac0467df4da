//! How long a hub takes to start with a large state store: fills
//! `state.db` with the trust decisions of N peers (default 10,000; first
//! argument), then times `IoTNode::start` (open, integrity check, restore
//! into the engine, sockets bound) over a few runs, printing each figure.
//! Figures are recorded in docs/PERFORMANCE.md.
//!
//! `cargo run --release -p tibet-iot --example state_start [-- N]`

use std::time::{Duration, Instant};

use tibet_iot::{IoTNode, StateStore, TransportConfig, TrustEntry};
use tibet_ping::Timestamp;

fn main() {
    let peers: usize = std::env::args()
        .nth(1)
        .map_or(10_000, |n| n.parse().expect("N: a number of peers"));
    let tmp = std::env::temp_dir().join(format!("tibet-state-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("temporary state directory");

    let fill = Instant::now();
    {
        let store = StateStore::open(&tmp).expect("open the store");
        for i in 0..peers {
            store
                .put_trust(&TrustEntry {
                    did: format!("jis:site:device-{i:05}"),
                    score: 0.5 + (i % 50) as f64 / 100.0,
                    declared: None,
                    reason: format!("pending approved ping_{i:016x}"),
                    set_at: Timestamp::now(),
                })
                .expect("a trust decision");
        }
    }
    println!(
        "filled {peers} trust decisions in {:.2?} (one transaction each, synchronous=FULL)",
        fill.elapsed()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut worst = Duration::ZERO;
    for run in 1..=5 {
        let node = IoTNode::new("jis:site:hub", TransportConfig::loopback());
        node.set_state_dir(Some(tmp.clone()));
        let t = Instant::now();
        rt.block_on(node.start()).expect("start");
        let took = t.elapsed();
        worst = worst.max(took);
        let probe = format!("jis:site:device-{:05}", peers - 1);
        assert!(node.trust_of(&probe) >= 0.5, "restored");
        println!("run {run}: started with {peers} stored decisions in {took:.2?}");
        rt.block_on(node.stop());
    }
    println!(
        "worst start: {worst:.2?} (target <= 1 s): {}",
        if worst <= Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
