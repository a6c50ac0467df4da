//! What a new operator trips over in the first hour, and the
//! operator surfaces of the hostile-LAN hardening: each test spawns the built
//! binary and talks to it over loopback.

mod common;

use std::net::UdpSocket;

use common::{
    Listener, assert_code, free_udp_port, hub_toml_copy, json, loopback_args, multicast_loopback,
    run, stderr, stdout,
};

/// `discover --json` on the private discovery `port`, as `jis:iot:cli`.
fn discover_dids(port: &str) -> Vec<String> {
    let out = run(&[
        "discover",
        "--timeout",
        "2",
        "--multicast-if",
        "127.0.0.1",
        "--discovery-port",
        port,
        "--json",
    ]);
    assert_code(&out, 0);
    let mut dids: Vec<String> = json(&out)
        .as_array()
        .expect("array")
        .iter()
        .map(|f| f["did"].as_str().expect("did").to_owned())
        .collect();
    dids.sort();
    dids
}

#[test]
fn a_second_discover_finds_both_listeners_again() {
    let port = free_udp_port().to_string();
    let start = |did: &str| {
        let mut args = multicast_loopback(&port);
        args.extend(["--did", did, "--trust", "jis:x:y=0.9"]);
        Listener::start(&args)
    };
    let _a = start("jis:home:a");
    let _b = start("jis:home:b");
    let both = vec!["jis:home:a".to_owned(), "jis:home:b".to_owned()];
    assert_eq!(discover_dids(&port), both, "first scan");
    // Same default DID, back to back: the listeners must answer again.
    assert_eq!(discover_dids(&port), both, "second scan");
}

#[test]
fn a_wrong_multicast_interface_names_its_flag() {
    for cmd in [
        vec!["discover", "--timeout", "1", "--multicast-if", "192.0.2.1"],
        vec![
            "listen",
            "--did",
            "jis:a:b",
            "--port",
            "0",
            "--multicast-if",
            "192.0.2.1",
        ],
    ] {
        let out = run(&cmd);
        assert_code(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("--multicast-if 192.0.2.1"), "{cmd:?}: {err}");
        assert!(!err.contains("--bind"), "{cmd:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    // `send` does not use discovery, so it does not offer the flag.
    let out = run(&[
        "send",
        "jis:a:b",
        "127.0.0.1:9",
        "x",
        "--my-did",
        "jis:c:d",
        "--multicast-if",
        "127.0.0.1",
    ]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("unexpected argument '--multicast-if'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn listen_without_discovery_ignores_the_multicast_interface() {
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:sensor=0.9"],
        &["--multicast-if", "192.0.2.1"],
    );
    assert_code(&hub.send("t", "jis:home:sensor", &[]), 0);
}

#[test]
fn send_json_has_the_sender_measured_round_trip() {
    let hub = Listener::loopback_hub("jis:home:hub", &["jis:home:sensor=0.9"], &[]);
    let out = hub.send("t.read", "jis:home:sensor", &["--json"]);
    assert_code(&out, 0);
    let v = json(&out);
    let round_trip = v["round_trip_ms"].as_f64().expect("round_trip_ms");
    let responder = v["rtt_ms"].as_f64().expect("rtt_ms");
    assert!(round_trip > 0.0, "{v}");
    assert!(round_trip >= responder, "{v}");
}

#[test]
fn the_example_config_writes_nothing_next_to_itself_and_warns_about_geel() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let cfg = hub_toml_copy(dir.path());
    let err_file = home.path().join("stderr.txt");
    let hub = Listener::hub_example(&cfg, home.path(), Some(&err_file));
    assert_code(&hub.send("temperature.read", "jis:home:sensor", &[]), 0);
    assert_code(&hub.send("door.unlock", "jis:home:sensor", &[]), 2);
    let warnings = std::fs::read_to_string(&err_file).unwrap();
    assert!(
        warnings.contains("GEEL") && warnings.contains("--control"),
        "{warnings}"
    );
    assert!(hub.terminate().success());
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["hub.toml"], "only the config itself");
    let audit = home.path().join(".local/state/tibet-iot/hub-audit.jsonl");
    let text = std::fs::read_to_string(&audit).expect("audit under $HOME");
    assert!(text.lines().count() >= 2, "{text}");
}

#[test]
fn verbose_logs_to_a_file_have_no_colour_codes() {
    let hub = Listener::loopback_hub("jis:home:hub", &["jis:home:sensor=0.9"], &[]);
    let out = run(&[
        "-v",
        "send",
        "jis:home:hub",
        &hub.loopback(),
        "t",
        "--my-did",
        "jis:home:sensor",
    ]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("node started"), "{err}");
    assert!(!err.contains('\u{1b}'), "ESC in {err:?}");
}

#[test]
fn json_log_format_makes_warnings_json_and_logs_a_stop_event() {
    let dir = tempfile::tempdir().unwrap();
    let err_file = dir.path().join("stderr.txt");
    let hub = Listener::start_with(
        &loopback_args("jis:home:hub", &[], &["--log-format", "json"]),
        &[],
        Some(&err_file),
    );
    let lines = hub.terminate_and_collect();
    let last: serde_json::Value =
        serde_json::from_str(lines.last().expect("a stop line")).expect("JSON");
    assert_eq!(last["event"], "stopping", "{lines:?}");
    let err = std::fs::read_to_string(&err_file).unwrap();
    let warning = err
        .lines()
        .find(|l| l.contains("every sender is unknown"))
        .unwrap_or_else(|| panic!("no trust warning in {err}"));
    let v: serde_json::Value = serde_json::from_str(warning).expect("a JSON warning");
    assert_eq!(v["level"], "WARN", "{v}");
}

#[test]
fn audit_verify_of_a_missing_file_names_the_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let out = run(&["audit", "verify", missing.to_str().unwrap()]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn audit_list_finds_the_token_of_a_packet_and_says_when_nothing_matches() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("a.jsonl");
    let hub = Listener::start_with(
        &[
            "--log-format",
            "json",
            "--did",
            "jis:home:hub",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--no-discovery",
            "--trust",
            "jis:home:sensor=0.9",
            "--audit",
            audit.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_code(&hub.send("one.read", "jis:home:sensor", &[]), 0);
    assert_code(&hub.send("two.read", "jis:home:sensor", &[]), 0);
    let line = hub.wait_for_line("two.read");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let id = event["packet_id"].as_str().expect("packet_id").to_owned();
    assert!(hub.terminate().success());
    let file = audit.to_str().unwrap();
    let out = run(&["audit", "list", file, "--packet", &id, "--json"]);
    assert_code(&out, 0);
    let tokens: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["eromheen"]["packet_id"], id.as_str());
    assert_eq!(tokens[0]["erin"]["intent"], "two.read");
    let out = run(&["audit", "list", file, "--packet", "ping_none"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("no tokens match"), "{}", stderr(&out));
}

#[test]
fn quiet_and_accepted_filters_hide_what_they_say() {
    let trusted = ["jis:home:sensor=0.9"];
    let accepted = Listener::loopback_hub("jis:home:hub", &trusted, &["--events", "accepted"]);
    assert_code(
        &accepted.send("drop.me", "jis:evil:x", &["--timeout", "0.3"]),
        3,
    );
    assert_code(&accepted.send("keep.me", "jis:home:sensor", &[]), 0);
    let line = accepted.next_line();
    assert!(line.contains("keep.me"), "the drop is not shown: {line}");

    let quiet = Listener::loopback_hub("jis:home:hub", &trusted, &["--quiet"]);
    assert_code(&quiet.send("keep.me", "jis:home:sensor", &[]), 0);
    let lines = quiet.terminate_and_collect();
    assert_eq!(lines, ["stopping"], "no event lines");
}

#[test]
fn network_strings_are_escaped_on_the_listener_terminal() {
    let hub = Listener::loopback_hub("jis:home:hub", &["jis:home:sensor=0.9"], &[]);
    // A DID and an intent that would clear the line and draw a fake accept.
    let evil_did = "jis:evil:\u{1b}[2K\rjis:home:sensor";
    let mut packet = tibet_ping::PingPacket::new(
        "ping_0123456789abcdef",
        evil_did,
        "jis:home:hub",
        "x\u{1b}[31m\rGROEN accept",
        "p",
    );
    packet.nonce = "00112233445566778899aabbccddeeff".into();
    packet.timestamp = tibet_ping::Timestamp::now().to_iso();
    let bytes = tibet_ping::PacketCodec::new(false)
        .encode_packet(&packet)
        .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(&bytes, hub.addr).unwrap();
    let line = hub.wait_for_line("jis:evil:");
    assert!(!line.contains('\u{1b}') && !line.contains('\r'), "{line:?}");
    assert!(
        line.contains("jis:evil:\\u{1b}[2K\\u{d}jis:home:sensor"),
        "{line}"
    );
    assert!(line.contains("x\\u{1b}[31m\\u{d}GROEN accept"), "{line}");
}

#[test]
fn drop_lines_are_limited_per_second_with_a_summary() {
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:sensor=0.9"],
        &["--max-drop-lines", "3"],
    );
    // 40 pings from a stranger in one burst: all dropped (ROOD).
    let out = run(&[
        "bench",
        &hub.loopback(),
        "--my-did",
        "jis:evil:x",
        "-n",
        "40",
        "-c",
        "40",
        "--timeout",
        "0.5",
    ]);
    assert_code(&out, 3);
    let summary = hub.wait_for_line("not shown");
    let lines = hub.terminate_and_collect();
    let drop_lines = lines.iter().filter(|l| l.contains("jis:evil:x")).count();
    assert!(drop_lines <= 3 + 3, "{lines:?}");
    assert!(summary.contains("more drop line(s)"), "{summary}");
}

#[test]
fn argument_errors_are_one_line_with_a_help_pointer() {
    for args in [
        vec!["send", "jis:a:b"],
        vec!["listen", "--nope"],
        vec![
            "send",
            "jis:a:b",
            "127.0.0.1:9",
            "x",
            "--my-did",
            "jis:c:d",
            "--timeout",
            "-1",
        ],
    ] {
        let out = run(&args);
        assert_code(&out, 1);
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("Usage:"), "{err}");
        assert!(
            err.contains(&format!("see `tibet-iot {} --help`", args[0])),
            "{err}"
        );
    }
    let err = stderr(&run(&[
        "send",
        "jis:a:b",
        "127.0.0.1:9",
        "x",
        "--my-did",
        "jis:c:d",
        "--timeout",
        "-1",
    ]));
    assert!(err.contains("positive number of seconds"), "{err}");
}

#[test]
fn start_errors_are_one_line_and_come_first() {
    // A bind failure does not print the trust warning first.
    let out = run(&[
        "listen",
        "--did",
        "jis:a:b",
        "--bind",
        "192.0.2.1",
        "--port",
        "0",
        "--no-discovery",
    ]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // An audit file that cannot be appended to: one line, exit 1, at start.
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "listen",
        "--did",
        "jis:a:b",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-discovery",
        "--audit",
        dir.path().to_str().unwrap(),
    ]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("cannot append to audit file"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_code(&out, 0);
        assert!(stdout(&out).contains("discover"), "{shell}");
    }
    let out = run(&["man"]);
    assert_code(&out, 0);
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH tibet-iot"),
        "{page}"
    );
    assert!(page.contains("listen"), "{page}");
}

/// The Quick Start example, as `cargo test` built it beside this test.
fn quick_start() -> std::process::Command {
    let deps = std::env::current_exe().unwrap();
    let exe = deps
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("examples").join("quick_start"))
        .unwrap();
    assert!(exe.exists(), "{} was not built", exe.display());
    std::process::Command::new(exe)
}

#[test]
fn the_quick_start_says_no_answer_and_exits_non_zero_then_answers() {
    // Nothing answers on this socket: it only swallows the ping.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = quick_start()
        .arg(silent.local_addr().unwrap().to_string())
        .output()
        .unwrap();
    assert_code(&out, 3);
    assert!(stdout(&out).contains("no answer"), "{}", stdout(&out));

    // Nothing at all on the port: the ICMP port unreachable says so.
    let closed = silent.local_addr().unwrap().to_string();
    drop(silent);
    let out = quick_start().arg(&closed).output().unwrap();
    assert_code(&out, 4);
    assert!(
        stdout(&out).contains("nothing is listening"),
        "{}",
        stdout(&out)
    );

    // A sensor that trusts the hub answers; the example's own port is any
    // free one, so it runs beside a listener on the default port too.
    let sensor = Listener::loopback_hub("jis:home:sensor", &["jis:home:hub=0.9"], &[]);
    let out = quick_start().arg(sensor.loopback()).output().unwrap();
    assert_code(&out, 0);
    assert!(
        stdout(&out).starts_with("accept — zone: GROEN"),
        "{}",
        stdout(&out)
    );
}
