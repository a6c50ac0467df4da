//! The first hour, second pass: man pages per subcommand, clap's hints kept
//! in the one-line error, a LAN-ready example config and the loopback
//! warning, routine trusted traffic counted rather than printed, Ctrl-C on
//! `discover`, `sim` progress without a terminal, and small output fixes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Listener, assert_code, free_udp_port, json, multicast_loopback, run, stderr, stdout};

#[test]
fn man_dir_writes_a_page_per_subcommand_with_its_options() {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet, as on a fresh machine.
    let man1 = dir.path().join("share/man/man1");
    let out = run(&["man", "--dir", man1.to_str().unwrap()]);
    assert_code(&out, 0);
    let mut pages: Vec<String> = std::fs::read_dir(&man1)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for page in [
        "tibet-iot.1",
        "tibet-iot-listen.1",
        "tibet-iot-send.1",
        "tibet-iot-audit-verify.1",
        "tibet-iot-pending-approve.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} in {pages:?}");
    }
    assert!(
        stdout(&out).contains(&format!("{} man pages written", pages.len())),
        "{}",
        stdout(&out)
    );
    let listen = std::fs::read_to_string(man1.join("tibet-iot-listen.1")).unwrap();
    assert!(listen.contains("max\\-drop\\-lines"), "{listen}");
    let top = std::fs::read_to_string(man1.join("tibet-iot.1")).unwrap();
    assert!(
        top.contains("ICMP port unreachable"),
        "exit statuses: {top}"
    );
}

#[test]
fn argument_errors_keep_the_suggestion_on_their_one_line() {
    for (args, hint) in [
        (
            vec!["send", "jis:a:b", "127.0.0.1:9", "x", "--mydid", "jis:c:d"],
            "'--my-did'",
        ),
        (vec!["lisen"], "'listen'"),
        (
            vec!["sim", "--topology", "ring"],
            "geometric, random, line, grid, star",
        ),
    ] {
        let out = run(&args);
        assert_code(&out, 1);
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(hint), "{args:?}: {err}");
        assert!(err.contains("--help`)"), "{err}");
    }
}

#[test]
fn the_example_config_is_for_a_lan_and_loopback_with_discovery_warns() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hub.toml"
    ))
    .unwrap();
    let cfg = tibet_iot_cli::config_file::ConfigFile::from_toml(&example).unwrap();
    assert_eq!(
        cfg.bind,
        Some("0.0.0.0".parse().unwrap()),
        "LAN devices reach it"
    );

    let dir = tempfile::tempdir().unwrap();
    let disc = free_udp_port().to_string();
    let warning = "only this machine can find or reach this node";
    // Bound to loopback with discovery on (its interface follows the bind
    // address, so the beacons stay on loopback): a warning.
    let err_file = dir.path().join("loopback.txt");
    let hub = Listener::start_with(
        &[
            "--did",
            "jis:home:hub",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--discovery-port",
            &disc,
            "--trust",
            "jis:home:sensor=0.9",
        ],
        &[],
        Some(&err_file),
    );
    assert!(hub.terminate().success());
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert!(err.contains(warning), "{err}");
    // Loopback on purpose (the discovery interface too): no warning.
    let err_file = dir.path().join("local.txt");
    let mut args = multicast_loopback(&disc);
    args.extend(["--did", "jis:home:hub", "--trust", "jis:home:sensor=0.9"]);
    let hub = Listener::start_with(&args, &[], Some(&err_file));
    assert!(hub.terminate().success());
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert!(!err.contains(warning), "{err}");
}

/// A config file in `dir` for a listener whose heartbeats and beacons come
/// every second.
fn fast_config(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        "[intervals]\nheartbeat = 1\ndiscovery = 1\npeer_cleanup = 45\npeer_timeout = 120\n",
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn routine_traffic_of_trusted_peers_is_counted_unless_events_all() {
    let dir = tempfile::tempdir().unwrap();
    let disc = free_udp_port().to_string();
    let start = |did: &str, peer: &str, extra: &[&str]| {
        let cfg = fast_config(dir.path(), &format!("{did}.toml"));
        let trust = format!("{peer}=0.9");
        let mut args = multicast_loopback(&disc);
        args.extend(["--did", did, "--trust", &trust, "--config", &cfg]);
        args.extend(extra);
        Listener::start(&args)
    };
    let quiet = start("jis:lab:a", "jis:lab:b", &[]);
    let chatty = start("jis:lab:b", "jis:lab:a", &["--events", "all"]);
    // `--events all` prints each heartbeat of its trusted peer; by the third
    // the default listener has had heartbeats and beacons of its own peer.
    for _ in 0..3 {
        let line = chatty.wait_for_line("heartbeat");
        assert!(
            line.contains("jis:lab:a") && line.contains("accept"),
            "{line}"
        );
    }
    let lines = quiet.terminate_and_collect();
    let summary = lines
        .iter()
        .find(|l| l.contains("counted, not shown"))
        .unwrap_or_else(|| panic!("a summary in {lines:?}"));
    let heartbeats: u64 = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(heartbeats >= 1, "{summary}");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("  heartbeat  ") && l.contains("accept")),
        "no heartbeat lines by default: {lines:?}"
    );
    let discovered = lines
        .iter()
        .filter(|l| l.contains("discovered jis:lab:b"))
        .count();
    // Once per address it was heard at (its beacon, its answer).
    assert!(
        discovered <= 2,
        "a peer is shown discovered once: {lines:?}"
    );
}

#[test]
fn ctrl_c_on_discover_prints_the_nodes_heard_so_far() {
    let disc = free_udp_port().to_string();
    let mut args = multicast_loopback(&disc);
    args.extend(["--did", "jis:home:a", "--trust", "jis:x:y=0.9"]);
    let _a = Listener::start(&args);
    let mut child = common::bin()
        .args([
            "-v",
            "discover",
            "--timeout",
            "60",
            "--multicast-if",
            "127.0.0.1",
            "--discovery-port",
            &disc,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stderr is read to its end (a closed pipe would fail the process).
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("discover hears the listener");
        if line.contains("heard a node") && line.contains("jis:home:a") {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 130);
    let text = stdout(&out);
    assert!(text.contains("interrupted"), "{text}");
    assert!(text.contains("jis:home:a"), "{text}");
    assert!(text.contains("1 node(s) found"), "{text}");
}

#[test]
fn sim_without_a_terminal_says_it_runs_and_names_the_topology_as_the_flag() {
    let out = run(&["sim", "--nodes", "20", "--pings", "4", "--warmup-s", "60"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("sim: 20 nodes, 4 pings"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("links (geometric)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn small_output_fixes() {
    // The round trip to the microsecond.
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:sensor=0.9"],
        &["--metrics", "127.0.0.1:0"],
    );
    // The metrics address is printed after the listening line.
    let line = hub.wait_for_line("metrics at http://127.0.0.1:");
    assert!(line.ends_with("/metrics"), "{line}");
    let out = hub.send("t.read", "jis:home:sensor", &["--json"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let ms = text
        .split("\"round_trip_ms\":")
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .expect("round_trip_ms");
    let decimals = ms.split('.').nth(1).map_or(0, str::len);
    assert!(decimals <= 3, "{ms}");
    assert!(json(&out)["round_trip_ms"].as_f64().unwrap() > 0.0);

    // keygen labels the key on stderr and keeps stdout the bare key.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let out = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("public key"), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim().len(), 44, "{}", stdout(&out));
}
