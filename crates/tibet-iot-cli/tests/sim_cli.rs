//! `tibet-iot sim`: the same flags print the same JSON, byte for byte.

mod common;

fn run(seed: &str) -> String {
    let out = common::bin()
        .args([
            "sim",
            "--nodes",
            "25",
            "--pings",
            "8",
            "--warmup-s",
            "60",
            "--loss",
            "0.05",
            "--seed",
            seed,
            "--json",
            "--no-wall-clock",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn same_seed_same_json_and_the_required_fields() {
    let a = run("4");
    assert_eq!(a, run("4"));
    assert_ne!(a, run("5"));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    for key in [
        "nodes",
        "edges",
        "attempted",
        "delivered",
        "delivery_ratio",
        "transmissions_per_delivery",
        "flood_transmissions_per_delivery",
        "p50_hops",
        "p99_latency_ms",
        "bytes_per_node_peak",
        "virtual_seconds",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {a}");
    }
    assert!(v.get("wall_seconds").is_none());
    assert_eq!(v["nodes"], 25);
    assert_eq!(v["attempted"], 8);
}
