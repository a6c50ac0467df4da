//! How long a hub takes to start with a large state store: fills
//! `state.db` with the trust decisions of N peers (default 10,000; first
//! argument) and a full review queue (1,024 GEEL pings waiting), then
//! times `IoTNode::start` (open, integrity check, restore into the engine,
//! first horizon write, sockets bound) over a few runs, printing each
//! figure.
//! Figures are recorded in docs/PERFORMANCE.md.
//!
//! `cargo run --release -p tibet-iot --example state_start [-- N]`

use std::time::{Duration, Instant};

use tibet_iot::{Decision, IoTNode, StateStore, TransportConfig, TrustEntry, WaitingReviews};
use tibet_ping::{PendingPing, PingPacket, Timestamp};

/// Reviews waiting: a full default queue of GEEL pings.
const REVIEWS: usize = 1024;

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
        let pings = (0..REVIEWS)
            .map(|i| {
                let packet = PingPacket::new(
                    format!("ping_{i:016x}"),
                    format!("jis:site:device-{i:05}"),
                    "jis:site:hub",
                    "door.unlock",
                    "let the plumber in",
                );
                PendingPing {
                    packet,
                    sender_trust: 0.5,
                    reason: "Trust 0.50 in GEEL zone".into(),
                    rule: None,
                    queued_at: Timestamp::now(),
                }
            })
            .collect();
        store
            .record(&[Decision::Reviews(WaitingReviews {
                pings,
                beacons: Vec::new(),
            })])
            .expect("the reviews");
    }
    println!(
        "filled {peers} trust decisions (one transaction each, synchronous=FULL) and {REVIEWS} reviews in {:.2?}",
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
        assert_eq!(node.pending().len(), REVIEWS, "reviews restored");
        println!(
            "run {run}: started with {peers} stored decisions and {REVIEWS} reviews in {took:.2?}"
        );
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
