//! `tibet-iot status` against a real listener through its control socket.

mod common;

use common::{Listener, assert_code, run, stdout};

#[test]
fn status_shows_identity_peers_reviews_and_rates() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("control.sock");
    let sock = sock.to_str().unwrap();
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:phone=0.9", "jis:home:guest=0.5"],
        &["--control", sock],
    );
    assert_code(&hub.send("light.on", "jis:home:phone", &[]), 0);
    assert_code(&hub.send("door.unlock", "jis:home:guest", &[]), 2);

    let out = run(&["status", "--control", sock, "--json", "--interval", "0.2"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["did"], "jis:home:hub");
    let pending = v["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{v}");
    assert_eq!(pending[0]["source_did"], "jis:home:guest");
    let phone = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["did"] == "jis:home:phone")
        .unwrap_or_else(|| panic!("phone not among the peers: {v}"));
    assert_eq!(phone["trust"], 0.9);
    assert_eq!(phone["zone"], "GROEN");
    assert!(phone["address"].as_str().unwrap().starts_with("127.0.0.1:"));
    let counter = |name: &str| {
        v["counters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no counter {name}: {v}"))
            .clone()
    };
    assert_eq!(counter("accepted (GROEN)")["total"], 1);
    assert_eq!(counter("pending (GEEL)")["total"], 1);
    // Nothing arrived between the two samples.
    assert_eq!(counter("pings received")["per_second"], 0.0);

    let out = run(&["status", "--control", sock, "--interval", "0.1"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.starts_with("node jis:home:hub\n"), "{text}");
    assert!(text.contains("jis:home:phone"), "{text}");
    assert!(text.contains("pending reviews (1)"), "{text}");
    assert!(text.contains("door.unlock"), "{text}");

    // Rates: once the first refresh is out, its sample is the base of the
    // next; a ping sent now shows up as a rate in the second refresh.
    let mut watch = common::bin()
        .args([
            "status",
            "--control",
            sock,
            "--json",
            "--watch",
            "--count",
            "2",
            "--interval",
            "3",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(watch.stdout.take().unwrap()));
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_code(&hub.send("light.on", "jis:home:phone", &[]), 0);
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(watch.wait().unwrap().success());
    let accepted = |v: &serde_json::Value| {
        v["counters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "accepted (GROEN)")
            .unwrap()
            .clone()
    };
    assert_eq!(accepted(&first)["total"], 1);
    assert_eq!(accepted(&first)["per_second"], 0.0);
    assert_eq!(accepted(&second)["total"], 2);
    let rate = accepted(&second)["per_second"].as_f64().unwrap();
    let expected = 1.0 / second["interval_secs"].as_f64().unwrap();
    assert!((rate - expected).abs() < 1e-9, "{second}");
}

#[test]
fn status_without_a_listener_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let out = run(&["status", "--control", sock.to_str().unwrap()]);
    assert_code(&out, 1);
    let err = common::stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn status_shows_the_fingerprint_of_a_pinned_peer() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("phone.key");
    let key = key.to_str().unwrap();
    let out = run(&["keygen", "--out", key]);
    assert_code(&out, 0);
    let public = stdout(&out).trim().to_owned();
    let sock = dir.path().join("control.sock");
    let sock = sock.to_str().unwrap();
    let pin = format!("jis:home:phone={public}");
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:phone=0.9", "jis:home:tv=0.9"],
        &["--control", sock, "--pin", &pin],
    );
    assert_code(&hub.send("light.on", "jis:home:phone", &["--key", key]), 0);
    assert_code(&hub.send("volume.up", "jis:home:tv", &[]), 0);

    let out = run(&["status", "--control", sock, "--json", "--interval", "0.1"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let peer = |did: &str| {
        v["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["did"] == did)
            .unwrap_or_else(|| panic!("{did} not among the peers: {v}"))
            .clone()
    };
    let fingerprint = peer("jis:home:phone")["key_fingerprint"].clone();
    let fingerprint = fingerprint.as_str().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(fingerprint.len(), 16, "{fingerprint}");
    assert!(
        fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
        "{fingerprint}"
    );
    assert!(peer("jis:home:tv")["key_fingerprint"].is_null(), "{v}");
}
