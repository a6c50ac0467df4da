//! `discover` finding two listeners over multicast on loopback, `demo`
//! matching every step, `bench` reporting a positive rate.

mod common;

use common::{Listener, assert_code, free_udp_port, json, multicast_loopback, run, stderr, stdout};

#[test]
fn discover_finds_two_listeners_on_loopback_multicast() {
    // A private discovery port so parallel tests and real networks never
    // meet; the group stays 224.0.71.50, on the loopback interface only.
    let port = free_udp_port().to_string();
    let mut a_args = multicast_loopback(&port);
    a_args.extend([
        "--did",
        "jis:home:hub",
        "--device-type",
        "hub",
        "--trust",
        "jis:x:y=0.9",
    ]);
    let mut b_args = multicast_loopback(&port);
    b_args.extend([
        "--did",
        "jis:home:sensor",
        "--device-type",
        "sensor",
        "--capability",
        "temperature.read",
        "--trust",
        "jis:x:y=0.9",
    ]);
    let a = Listener::start(&a_args);
    let b = Listener::start(&b_args);
    let out = run(&[
        "discover",
        "--timeout",
        "3",
        "--did",
        "jis:home:phone",
        "--multicast-if",
        "127.0.0.1",
        "--discovery-port",
        &port,
        "--json",
    ]);
    assert_code(&out, 0);
    let found = json(&out);
    let found = found.as_array().expect("array");
    let by_did = |did: &str| {
        found
            .iter()
            .find(|f| f["did"] == did)
            .unwrap_or_else(|| panic!("{did} not in {found:?}"))
    };
    let hub = by_did("jis:home:hub");
    assert_eq!(hub["addr"], a.addr.to_string());
    assert_eq!(hub["device_type"], "hub");
    let sensor = by_did("jis:home:sensor");
    assert_eq!(sensor["addr"], b.addr.to_string());
    assert_eq!(
        sensor["capabilities"],
        serde_json::json!(["temperature.read"])
    );
    assert!(sensor["decision"].is_string());
    // The listeners print the discovery of the phone that sent the beacon.
    let line = a.wait_for_line("discovered jis:home:phone");
    assert!(line.contains("hitl_pending"), "{line}");

    // The table form lists the same nodes.
    let out = run(&[
        "discover",
        "--timeout",
        "2",
        "--multicast-if",
        "127.0.0.1",
        "--discovery-port",
        &port,
    ]);
    let text = stdout(&out);
    assert!(text.starts_with("DID"), "{text}");
    assert!(
        text.contains("jis:home:hub")
            && text.contains("jis:home:sensor")
            && text.contains("temperature.read"),
        "{text}"
    );
}

#[test]
fn demo_matches_every_step() {
    let out = run(&["demo"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(!text.contains("MISMATCH"), "{text}");
    assert!(
        text.contains("7/7 steps matched what was expected"),
        "{text}"
    );
    for step in 1..=7 {
        assert!(
            text.contains(&format!("[{step}/7]")),
            "step {step} missing:\n{text}"
        );
    }
    assert_eq!(text.matches("-> matched").count(), 16, "{text}");
}

/// Runs `bench` against `hub` as `my_did`, followed by `extra`.
fn bench(hub: &Listener, my_did: &str, extra: &[&str]) -> std::process::Output {
    let addr = hub.loopback();
    let mut args = vec!["bench", &addr, "--my-did", my_did];
    args.extend(extra);
    run(&args)
}

#[test]
fn bench_reports_a_positive_rate() {
    let hub = Listener::loopback_hub("jis:bench:hub", &["jis:bench:client=0.9"], &[]);
    let out = bench(
        &hub,
        "jis:bench:client",
        &["-n", "400", "-c", "8", "--json"],
    );
    assert_code(&out, 0);
    let r = json(&out);
    assert_eq!(r["sent"], 400);
    assert_eq!(
        r["answered"].as_u64().unwrap() + r["lost"].as_u64().unwrap(),
        400
    );
    assert!(r["answered"].as_u64().unwrap() >= 390, "{r}");
    assert!(r["answered_per_s"].as_f64().unwrap() > 0.0, "{r}");
    let rtt = &r["rtt"];
    let (p50, p99, max) = (
        rtt["p50_ms"].as_f64().unwrap(),
        rtt["p99_ms"].as_f64().unwrap(),
        rtt["max_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{rtt}");

    // A timed run instead of a count.
    let out = bench(
        &hub,
        "jis:bench:client",
        &["--duration", "0.5", "-c", "4", "--json"],
    );
    assert_code(&out, 0);
    let r = json(&out);
    assert!(r["answered"].as_u64().unwrap() > 0, "{r}");
    let elapsed = r["elapsed_s"].as_f64().unwrap();
    assert!((0.5..5.0).contains(&elapsed), "{r}");

    // An untrusted client: every ping is lost, and the report says so.
    let out = bench(
        &hub,
        "jis:bench:stranger",
        &["-n", "5", "-c", "5", "--timeout", "0.3"],
    );
    assert_code(&out, 3);
    assert!(stdout(&out).contains("lost:     5"), "{}", stdout(&out));
}
