//! `listen` and `send` in separate processes over real UDP on loopback.

mod common;

use common::{
    Listener, assert_code, assert_stdout_starts, json, multicast_loopback, run, send, stderr,
    stdout,
};

fn listener() -> Listener {
    Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:sensor=0.95", "jis:home:doorbell=0.5"],
        &[],
    )
}

#[test]
fn trusted_sender_gets_groen_in_the_seeds_form() {
    let hub = listener();
    let out = hub.send("temperature.read", "jis:home:sensor", &[]);
    assert_code(&out, 0);
    let line = stdout(&out);
    let line = line.trim_end();
    let rest = line
        .strip_prefix("GROEN — trust: 0.95 — RTT: ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let ms = rest.strip_suffix("ms").expect("ms suffix");
    assert!(ms.parse::<f64>().unwrap() > 0.0);
    assert_eq!(ms.split('.').nth(1).map(str::len), Some(3), "{line}");
    // The listener printed the decided ping.
    let seen = hub.wait_for_line("jis:home:sensor");
    assert!(
        seen.contains("temperature.read") && seen.contains("GROEN") && seen.contains("0.95"),
        "{seen}"
    );
}

#[test]
fn unknown_sender_gets_silence_and_status_3() {
    let hub = listener();
    let out = hub.send("door.unlock", "jis:evil:x", &["--timeout", "0.5"]);
    assert_code(&out, 3);
    assert!(stdout(&out).contains("no response"), "{}", stdout(&out));
    // The listener did receive it and dropped it.
    let seen = hub.wait_for_line("jis:evil:x");
    assert!(seen.contains("ROOD") && seen.contains("reject"), "{seen}");
}

#[test]
fn half_trusted_sender_is_pending_with_status_2() {
    let hub = listener();
    let out = hub.send("door.unlock", "jis:home:doorbell", &[]);
    assert_code(&out, 2);
    assert_stdout_starts(&out, "GEEL — trust: 0.5 — RTT: ");
}

#[test]
fn json_output_is_the_whole_response() {
    let hub = listener();
    let out = hub.send(
        "temperature.read",
        "jis:home:sensor",
        &["--payload", r#"{"unit":"C"}"#, "--json", "--msgpack"],
    );
    assert_code(&out, 0);
    let v = json(&out);
    assert_eq!(v["decision"], "accept");
    assert_eq!(v["airlock_zone"], "GROEN");
    assert_eq!(v["responder_did"], "jis:home:hub");
    assert_eq!(v["trust_score"], 0.95);
    assert!(v["in_response_to"].as_str().unwrap().starts_with("ping_"));
    assert_eq!(v["fira_breakdown"]["source"], "known");

    let out = hub.send("x", "jis:evil:x", &["--timeout", "0.3", "--json"]);
    assert_code(&out, 3);
    let v = json(&out);
    assert_eq!(v["no_response"], true);
}

#[test]
fn sigterm_stops_the_listener_gracefully() {
    let hub = listener();
    let status = hub.terminate();
    assert!(status.success(), "{status:?}");
    // Ctrl-C (SIGINT) too.
    let hub = listener();
    let status = hub.signal("-INT");
    assert!(status.success(), "{status:?}");
}

#[test]
fn listen_warns_when_no_sender_is_trusted() {
    let mut child = common::bin()
        .args([
            "listen",
            "--did",
            "jis:home:hub",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--no-discovery",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("every sender is unknown") && line.contains("dropped silently"),
        "{line}"
    );
}

#[test]
fn json_log_format_gives_machine_lines() {
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:sensor=0.9"],
        &["--log-format", "json"],
    );
    let out = hub.send("t.read", "jis:home:sensor", &[]);
    assert_code(&out, 0);
    let line = hub.wait_for_line("jis:home:sensor");
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON event line");
    assert_eq!(v["event"], "ping");
    assert_eq!(v["zone"], "GROEN");
    assert_eq!(v["intent"], "t.read");
}

#[test]
fn verbose_flag_turns_on_debug_logs() {
    let hub = listener();
    let quiet = hub.send("t", "jis:home:sensor", &[]);
    // Only the warning that the answer is not authenticated (the hub is not
    // pinned here); no log lines.
    assert!(
        stderr(&quiet)
            .lines()
            .all(|l| l.starts_with("warning: the answer is not authenticated")),
        "{}",
        stderr(&quiet)
    );
    let loud = run(&[
        "-v",
        "send",
        "jis:home:hub",
        &hub.loopback(),
        "t",
        "--my-did",
        "jis:home:sensor",
    ]);
    assert_code(&loud, 0);
    assert!(
        stderr(&loud).contains("DEBUG") || stderr(&loud).contains("INFO"),
        "{}",
        stderr(&loud)
    );
    assert!(stderr(&loud).contains("node started"), "{}", stderr(&loud));
}

#[test]
fn mesh_send_crosses_a_relay_listener() {
    // Relay and far node find each other by discovery (multicast on
    // loopback, private port); the sender only knows the relay.
    let port = common::free_udp_port().to_string();
    let mut relay_args = multicast_loopback(&port);
    // The relay relays only for senders it would not drop (the hub is GEEL
    // there), and only to peers that proved their address: far answers the
    // relay's challenge heartbeat because it trusts the relay.
    relay_args.extend(["--did", "jis:mesh:relay", "--trust", "jis:mesh:hub=0.5"]);
    let relay = Listener::start(&relay_args);
    let mut far_args = multicast_loopback(&port);
    far_args.extend([
        "--did",
        "jis:mesh:far",
        "--trust",
        "jis:mesh:hub=0.9",
        "--trust",
        "jis:mesh:relay=0.9",
    ]);
    let far = Listener::start(&far_args);
    relay.wait_for_line("proven jis:mesh:far");
    let out = send(
        "jis:mesh:far",
        &relay.loopback(),
        "data.sync",
        "jis:mesh:hub",
        &["--mesh", "--timeout", "3", "--json"],
    );
    assert_code(&out, 0);
    let v = json(&out);
    assert_eq!(v["responder_did"], "jis:mesh:far");
    assert_eq!(v["airlock_zone"], "GROEN");
    let seen = far.wait_for_line("jis:mesh:hub");
    assert!(
        seen.contains("data.sync") && seen.contains("GROEN"),
        "{seen}"
    );
}
