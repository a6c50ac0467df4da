//! The first hour, second pass: every way a request fails is named (nothing
//! listening, an answer our pin refused, a wrong target DID, a silent
//! drop), and identity refusals are visible on the listener's terminal, in
//! `status` and on `/metrics`. Each test spawns the built binary and talks
//! to it over loopback.

mod common;

use std::time::{Duration, Instant};

use common::{Listener, assert_code, json, run, stderr, stdout};

/// A UDP port on 127.0.0.1 where nothing listens (bound, then closed).
fn closed_port() -> String {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    drop(sock);
    addr.to_string()
}

/// A fresh key file in `dir` and its public key text.
fn keygen(dir: &std::path::Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let out = run(&["keygen", "--out", path.to_str().unwrap()]);
    assert_code(&out, 0);
    (
        path.to_str().unwrap().to_owned(),
        stdout(&out).trim().to_owned(),
    )
}

/// The fingerprint `status` and the errors show for a public key.
fn fingerprint(public: &str) -> String {
    tibet_ping::identity::PublicKey::parse(public)
        .unwrap()
        .sha256_hex()[..16]
        .to_owned()
}

#[test]
fn nothing_listening_is_named_at_once_with_its_own_exit_status() {
    let addr = closed_port();
    let started = Instant::now();
    let out = run(&[
        "send",
        "jis:home:hub",
        &addr,
        "t.read",
        "--my-did",
        "jis:home:sensor",
        "--timeout",
        "30",
    ]);
    assert_code(&out, 4);
    assert!(
        stdout(&out).contains(&format!(
            "nothing is listening at {addr} (ICMP port unreachable)"
        )),
        "{}",
        stdout(&out)
    );
    // The port unreachable ends the wait; the 30 s timeout is not waited out.
    assert!(started.elapsed() < Duration::from_secs(20));

    let out = run(&[
        "send",
        "jis:home:hub",
        &addr,
        "t.read",
        "--my-did",
        "jis:home:sensor",
        "--json",
    ]);
    assert_code(&out, 4);
    assert_eq!(json(&out)["reason"], "unreachable", "{}", stdout(&out));

    let out = run(&["bench", &addr, "--my-did", "jis:home:sensor", "-n", "50"]);
    assert_code(&out, 4);
    assert!(
        stderr(&out).contains(&format!("nothing is listening at {addr}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_silent_drop_is_a_timeout_with_its_own_exit_status_and_words() {
    // A listener that does not trust the sender: no answer, no ICMP error.
    let hub = Listener::loopback_hub("jis:home:hub", &["jis:home:other=0.9"], &[]);
    let out = hub.send("t.read", "jis:home:sensor", &["--timeout", "0.5"]);
    assert_code(&out, 3);
    let text = stdout(&out);
    assert!(text.contains("a timeout, or a silent drop"), "{text}");
    assert!(!text.contains("nothing is listening"), "{text}");
    let out = run(&[
        "bench",
        &hub.loopback(),
        "--my-did",
        "jis:home:sensor",
        "-n",
        "8",
        "--timeout",
        "0.3",
    ]);
    assert_code(&out, 3);
    assert!(
        stderr(&out).contains("no ICMP error came back: a silent drop"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_answer_refused_by_our_pin_names_the_pinned_key() {
    let dir = tempfile::tempdir().unwrap();
    let (hub_key, _) = keygen(dir.path(), "hub.pem");
    let (_, other_public) = keygen(dir.path(), "other.pem");
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:sensor=0.9"],
        &["--key", &hub_key],
    );
    let pin = format!("jis:home:hub={other_public}");
    let out = hub.send(
        "t.read",
        "jis:home:sensor",
        &["--pin", &pin, "--timeout", "1"],
    );
    assert_code(&out, 5);
    let text = stdout(&out);
    assert!(
        text.contains("the answer from jis:home:hub")
            && text.contains("does not verify with the pinned key"),
        "{text}"
    );
    assert!(text.contains(&fingerprint(&other_public)), "{text}");

    // An unsigned answer where a pin demands a signature says so.
    let plain = Listener::loopback_hub(
        "jis:home:plain",
        &["jis:home:sensor=0.9"],
        &["--identity", "off"],
    );
    let pin = format!("jis:home:plain={other_public}");
    let out = plain.send(
        "t.read",
        "jis:home:sensor",
        &["--pin", &pin, "--timeout", "1", "--json"],
    );
    assert_code(&out, 5);
    let v = json(&out);
    assert_eq!(v["reason"], "answer_refused", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("it is unsigned"),
        "{v}"
    );
}

#[test]
fn a_typo_in_the_target_did_is_shown_on_both_sides() {
    let hub = Listener::loopback_hub("jis:home:hub", &["jis:home:sensor=0.9"], &[]);
    let out = common::send(
        "jis:home:hbu",
        &hub.loopback(),
        "t.read",
        "jis:home:sensor",
        &["--timeout", "0.5"],
    );
    assert_code(&out, 3);
    assert!(
        stdout(&out).contains("is jis:home:hbu the listener's DID?"),
        "{}",
        stdout(&out)
    );
    let line = hub.wait_for_line("addressed to");
    assert!(
        line.contains("jis:home:sensor  dropped: addressed to jis:home:hbu, not to this node"),
        "{line}"
    );
}

#[test]
fn identity_refusals_show_on_the_terminal_in_status_and_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (_, sensor_public) = keygen(dir.path(), "sensor.pem");
    let (forger_key, _) = keygen(dir.path(), "forger.pem");
    let control = dir.path().join("hub.sock");
    let pin = format!("jis:home:sensor={sensor_public}");
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:sensor=0.9"],
        &[
            "--pin",
            &pin,
            "--control",
            control.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let metrics = hub.wait_for_line("metrics at http://");
    let url = metrics.trim_start_matches("metrics at ").to_owned();
    // Unsigned, then signed by another key: both claim the pinned DID.
    let unsigned = hub.send(
        "t.read",
        "jis:home:sensor",
        &["--timeout", "0.3", "--identity", "off"],
    );
    assert_code(&unsigned, 3);
    let forged = hub.send(
        "t.read",
        "jis:home:sensor",
        &["--timeout", "0.3", "--key", &forger_key],
    );
    assert_code(&forged, 3);

    let mut refused = 0;
    let mut lines = Vec::new();
    while refused < 2 {
        let line = hub.wait_for_line("identity refused");
        refused += line
            .split("identity refused ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse::<u32>().ok())
            .expect("a count");
        assert!(
            line.contains("last: jis:home:sensor from 127.0.0.1:"),
            "{line}"
        );
        lines.push(line);
    }
    let all = lines.join("\n");
    assert!(all.contains("unsigned 1"), "{all}");
    assert!(all.contains("bad_signature 1"), "{all}");

    let out = run(&["status", "--control", control.to_str().unwrap()]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let section = text
        .split("\nidentity\n")
        .nth(1)
        .expect("an identity section");
    let row = |name: &str| -> u64 {
        let line = section
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {section}"));
        line[name.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(row("refused: unsigned"), 1, "{section}");
    assert_eq!(row("refused: bad signature"), 1, "{section}");

    let page = ureq::get(&url).call().unwrap().into_string().unwrap();
    assert!(
        page.contains("tibet_identity_refused_total{reason=\"unsigned\"} 1"),
        "{page}"
    );
    assert!(
        page.contains("tibet_identity_refused_total{reason=\"bad_signature\"} 1"),
        "{page}"
    );
}
