//! `bench` as an operator meets it: it reports its own CPU cost, stops
//! early against a listener that does not trust it, and prints a partial
//! report on Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Listener, assert_code, bin, json, stderr};

const CLIENT: &str = "jis:bench:client";

fn trusting_hub() -> Listener {
    Listener::loopback_hub("jis:bench:hub", &[&format!("{CLIENT}=0.9")], &[])
}

fn bench(hub: &Listener, my_did: &str, extra: &[&str]) -> std::process::Output {
    let addr = hub.loopback();
    let mut args = vec!["bench", &addr, "--my-did", my_did];
    args.extend(extra);
    common::run(&args)
}

#[test]
fn bench_json_reports_client_cpu_per_ping() {
    let hub = trusting_hub();
    let out = bench(&hub, CLIENT, &["-n", "3000", "-c", "16", "--json"]);
    assert_code(&out, 0);
    let r = json(&out);
    assert_eq!(r["sent"], 3000, "{r}");
    assert_eq!(r["answered"], 3000, "{r}");
    assert_eq!(r["invalid"], 0, "{r}");
    assert_eq!(r["poll"], "block", "{r}");
    let cpu_s = r["client_cpu_s"].as_f64().expect("client_cpu_s");
    let per_ping = r["client_cpu_us_per_ping"]
        .as_f64()
        .expect("client_cpu_us_per_ping");
    assert!(cpu_s > 0.0 && per_ping > 0.0, "{r}");
    // The per-ping figure is the CPU time divided by the answered pings.
    assert!(
        (per_ping - cpu_s * 1e6 / 3000.0).abs() < 1e-6 * per_ping.max(1.0),
        "{r}"
    );

    // One ping in flight busy-polls by default; every ping still answered.
    let out = bench(&hub, CLIENT, &["-n", "300", "-c", "1", "--json"]);
    assert_code(&out, 0);
    let r = json(&out);
    assert_eq!(r["poll"], "spin", "{r}");
    assert_eq!(r["answered"], 300, "{r}");
    let rtt = &r["rtt"];
    assert!(rtt["p50_ms"].as_f64().unwrap() > 0.0, "{r}");
}

#[test]
fn bench_against_a_non_trusting_listener_exits_non_zero_within_10_s() {
    let hub = trusting_hub();
    let started = Instant::now();
    // A million pings would take minutes if every one waited out its timeout.
    let out = bench(&hub, "jis:bench:stranger", &["-n", "1000000", "--json"]);
    let took = started.elapsed();
    assert_code(&out, 3);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let r = json(&out);
    assert_eq!(r["answered"], 0, "{r}");
    assert_eq!(r["gave_up"], true, "{r}");
    assert!(r["lost"].as_u64().unwrap() >= 32, "{r}");
    let err = stderr(&out);
    assert!(
        err.contains("0 of the first")
            && err.contains("a silent drop (does the listener trust jis:bench:stranger"),
        "{err}"
    );
}

#[test]
fn bench_prints_a_partial_report_on_sigint() {
    let hub = trusting_hub();
    let addr = hub.loopback();
    let mut child = bin()
        .args([
            "bench",
            &addr,
            "--my-did",
            CLIENT,
            "--duration",
            "60",
            "-c",
            "4",
        ])
        .args(["--target", "jis:bench:hub", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    // The start line comes once the SIGINT handler is installed.
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("bench start line");
    assert!(line.starts_with("bench: "), "{line}");
    // Pings are flowing once the listener has decided one.
    hub.wait_for_line("bench.ping");
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait bench");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(130));
    let r = json(&out);
    assert_eq!(r["interrupted"], true, "{r}");
    let sent = r["sent"].as_u64().unwrap();
    assert!(sent >= 1, "{r}");
    assert_eq!(
        r["answered"].as_u64().unwrap()
            + r["lost"].as_u64().unwrap()
            + r["in_flight"].as_u64().unwrap(),
        sent,
        "{r}"
    );
    assert!(r["elapsed_s"].as_f64().unwrap() < 60.0, "{r}");
}

/// Under a burst the listener prints in batches (it lets events collect for
/// a few milliseconds after a busy drain instead of waking per event): every
/// accepted ping still gets its one line, in full, and a lone ping after the
/// burst is printed without waiting for more traffic.
#[test]
fn a_listener_under_a_burst_prints_every_accepted_ping_once() {
    let hub = trusting_hub();
    let out = bench(&hub, CLIENT, &["-n", "3000", "-c", "64", "--json"]);
    assert_code(&out, 0);
    assert_eq!(json(&out)["answered"], 3000);
    let lone = hub.send("after.burst", CLIENT, &[]);
    assert_code(&lone, 0);
    let mut printed = 0;
    loop {
        let line = hub.next_line();
        if line.contains("after.burst") {
            assert!(line.contains("accept"), "{line}");
            break;
        }
        if line.contains("bench.ping") {
            assert!(line.contains("GROEN") && line.contains("accept"), "{line}");
            printed += 1;
        }
    }
    assert_eq!(printed, 3000);
}
