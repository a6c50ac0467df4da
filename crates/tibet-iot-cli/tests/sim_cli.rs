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
        "p99_hops",
        "p50_latency_ms",
        "p99_latency_ms",
        "areas",
        "churned_per_minute",
        "control_datagrams_per_node_minute",
        "control_bytes_per_node_minute",
        "bytes_per_node_peak",
        "virtual_seconds",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {a}");
    }
    assert!(v.get("wall_seconds").is_none());
    assert_eq!(v["nodes"], 25);
    assert_eq!(v["attempted"], 8);
}

/// Runs `sim` with `args`, killed (and the test failed) after 60 s: a run
/// that should have been refused before it started must not run for hours.
fn sim_within_a_minute(args: &[&str]) -> std::process::Output {
    use std::time::{Duration, Instant};
    let mut child = common::bin()
        .arg("sim")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sim {args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_run_that_cannot_fit_is_refused_before_it_starts_and_pings_are_bounded() {
    let out = sim_within_a_minute(&["--nodes", "60000", "--memory-limit", "1024"]);
    common::assert_code(&out, 1);
    let err = common::stderr(&out);
    assert!(
        err.contains("60000 nodes and 100 pings need about ")
            && err.contains("GiB of memory; 1.0 GiB allowed by --memory-limit: at most "),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing simulated");
    // The nodes it names do fit.
    let fit: String = err
        .split("at most ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let fit: u32 = fit.parse().unwrap();
    assert!((2..60_000).contains(&fit), "{err}");

    let out = sim_within_a_minute(&["--pings", "1000000000"]);
    common::assert_code(&out, 1);
    assert!(
        common::stderr(&out).contains("--pings"),
        "{}",
        common::stderr(&out)
    );
}
