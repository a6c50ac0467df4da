//! Identity through the binary: `listen --key --pin`, `send --key --pin`,
//! the start-up warning for unpinned trust, and bad identity input as one
//! error line with exit status 1.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Listener, assert_code, loopback_args, run, stderr, stdout};

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = run(&["keygen", "--out", path.to_str().unwrap()]);
    assert_code(&out, 0);
    (path, stdout(&out).trim().to_owned())
}

#[track_caller]
fn assert_one_line_error(out: &std::process::Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr {err}");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
}

#[test]
fn a_pinned_sender_must_sign_and_a_pinned_responder_must_answer_signed() {
    let dir = tempfile::tempdir().unwrap();
    let (hub_key, hub_pub) = keygen(dir.path(), "hub.key");
    let (dev_key, dev_pub) = keygen(dir.path(), "dev.key");
    let (_, other_pub) = keygen(dir.path(), "other.key");
    let pin_dev = format!("jis:home:sensor={dev_pub}");
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:sensor=0.9"],
        &["--key", hub_key.to_str().unwrap(), "--pin", &pin_dev],
    );
    let pin_hub = format!("jis:home:hub={hub_pub}");
    let dev = dev_key.to_str().unwrap();

    // Signed, and the signed answer verifies against the pin: accepted.
    let out = hub.send(
        "temperature.read",
        "jis:home:sensor",
        &["--key", dev, "--pin", &pin_hub, "--timeout", "5"],
    );
    assert_code(&out, 0);

    // The same DID unsigned (anyone on the LAN): dropped silently.
    let out = hub.send("temperature.read", "jis:home:sensor", &["--timeout", "1"]);
    assert_code(&out, 3);

    // A sender that pins another key for the hub refuses its (genuine)
    // answer as forged, and says so (exit status 5).
    let wrong = format!("jis:home:hub={other_pub}");
    let out = hub.send(
        "temperature.read",
        "jis:home:sensor",
        &["--key", dev, "--pin", &wrong, "--timeout", "1"],
    );
    assert_code(&out, 5);
}

#[test]
fn listen_warns_once_per_trusted_did_without_a_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pinned_pub) = keygen(dir.path(), "pinned.key");
    let err_file = dir.path().join("stderr");
    let pin = format!("jis:home:pinned={pinned_pub}");
    let hub = Listener::start_with(
        &loopback_args(
            "jis:home:hub",
            &["jis:home:open=0.9", "jis:home:pinned=0.9"],
            &["--pin", &pin],
        ),
        &[],
        Some(&err_file),
    );
    hub.terminate();
    let err = fs::read_to_string(&err_file).unwrap();
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("without a pin"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("jis:home:open"), "{err}");
}

#[test]
fn bad_identity_input_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "listen",
        "--did",
        "jis:home:hub",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-discovery",
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        run(&args)
    };
    // A command that keeps no state (no node key of its own) cannot demand
    // signatures; `listen` and `send` sign with their node key by default.
    let probe = run(&[
        "discover",
        "--did",
        "jis:home:probe",
        "--identity",
        "require",
        "--timeout",
        "0.1",
    ]);
    assert_one_line_error(&probe, "--key");
    assert_one_line_error(&with(&["--pin", "jis:home:sensor=AAAA"]), "jis:home:sensor");
    let missing = dir.path().join("missing.key");
    assert_one_line_error(&with(&["--key", missing.to_str().unwrap()]), "missing.key");
    let (shared, _) = keygen(dir.path(), "shared.key");
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o640)).unwrap();
    assert_one_line_error(&with(&["--key", shared.to_str().unwrap()]), "shared.key");
    // send checks the same way.
    let out = run(&[
        "send",
        "jis:home:hub",
        "127.0.0.1:9",
        "x",
        "--my-did",
        "jis:home:sensor",
        "--key",
        missing.to_str().unwrap(),
    ]);
    assert_one_line_error(&out, "missing.key");
}

#[test]
fn an_approved_signed_beacon_pins_its_key_in_the_pins_file() {
    let dir = tempfile::tempdir().unwrap();
    let (lamp_key, lamp_pub) = keygen(dir.path(), "lamp.key");
    let port = common::free_udp_port().to_string();
    let sock = dir.path().join("hub.sock");
    let audit = dir.path().join("audit.jsonl");
    let mut args = common::multicast_loopback(&port);
    args.extend([
        "--did",
        "jis:home:hub",
        "--trust",
        "jis:x:y=0.9",
        "--control",
        sock.to_str().unwrap(),
        "--audit",
        audit.to_str().unwrap(),
    ]);
    let hub = Listener::start(&args);
    // The lamp announces itself with its key (a signed beacon).
    let out = common::announce_with_key("jis:home:lamp", &lamp_key, &port, "2");
    assert_code(&out, 0);
    hub.wait_for_line("jis:home:lamp");
    let sock = sock.to_str().unwrap();
    let out = run(&["pending", "list", "--control", sock, "--json"]);
    assert_code(&out, 0);
    let listed = common::json(&out);
    let item = listed["pending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["source_did"] == "jis:home:lamp")
        .unwrap_or_else(|| panic!("no beacon review in {listed}"))
        .clone();
    let id = item["id"].as_str().unwrap();
    assert!(id.starts_with("beacon_"), "{item}");
    let hash = tibet_ping::identity::PublicKey::parse(&lamp_pub)
        .unwrap()
        .sha256_hex();
    assert!(item["purpose"].as_str().unwrap().contains(&hash), "{item}");
    let out = run(&["pending", "approve", id, "--control", sock]);
    assert_code(&out, 0);
    let pins = fs::read_to_string(dir.path().join("pins")).expect("pins file written");
    assert!(
        pins.lines()
            .any(|l| l == format!("jis:home:lamp {lamp_pub}")),
        "{pins}"
    );
    hub.terminate();
}

#[test]
fn a_quiet_listener_saves_a_key_pinned_on_first_use_in_the_pins_file() {
    let dir = tempfile::tempdir().unwrap();
    let (lamp_key, lamp_pub) = keygen(dir.path(), "lamp.key");
    let port = common::free_udp_port().to_string();
    let config = dir.path().join("hub.toml");
    fs::write(
        &config,
        "[[auto_vouch]]\nname = \"lamps\"\nsource_pattern = \"^jis:home:lamp\"\n",
    )
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut args = common::multicast_loopback(&port);
    args.extend([
        "--did",
        "jis:home:hub",
        "--config",
        config.to_str().unwrap(),
        "--audit",
        audit.to_str().unwrap(),
        "--quiet",
    ]);
    let hub = Listener::start(&args);
    let out = common::announce_with_key("jis:home:lamp", &lamp_key, &port, "2");
    assert_code(&out, 0);
    // No event is read by a quiet listener: the pins file is saved by its
    // once-a-second check.
    let want = format!("jis:home:lamp {lamp_pub}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let pins = fs::read_to_string(dir.path().join("pins")).unwrap_or_default();
        if pins.lines().any(|l| l == want) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not saved: {pins:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    hub.terminate();
}
