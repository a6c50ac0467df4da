//! Runs one `sim::scenario` and prints its report as JSON (the full-size
//! runs of docs/PERFORMANCE.md; `tibet-iot sim` is the operator's front end).
//!
//! `cargo run --release -p tibet-iot-proto --example scenario -- NODES LOSS PINGS [SEED] [off] [AREAS_PER_SIDE]`

use tibet_iot_proto::sim::scenario::{self, ScenarioConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_owned());
    let cfg = ScenarioConfig {
        nodes: arg(0, "1000").parse().expect("nodes"),
        loss: arg(1, "0.1").parse().expect("loss"),
        pings: arg(2, "100").parse().expect("pings"),
        seed: arg(3, "1").parse().expect("seed"),
        baseline: arg(4, "on") != "off",
        areas: args.get(5).map(|a| a.parse().expect("areas per side")),
        ..ScenarioConfig::default()
    };
    let t = std::time::Instant::now();
    let report = scenario::run(&cfg, &mut |_| {});
    println!("{report:?}");
    eprintln!("wall {:.1} s", t.elapsed().as_secs_f64());
}
