//! Safe by default (docs/SECURITY.md): `listen` and `send` sign with a node
//! key kept in their state directory (created on first use), so once the
//! listener pins the sender, anyone else claiming its DID is refused with
//! no flag on either side; and a listener's state directory keeps the
//! replay horizon, so a ping captured before a SIGKILL is refused after it.

mod common;

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Listener, assert_code, run, send, stdout};

fn state_arg(dir: &std::path::Path) -> String {
    dir.to_str().unwrap().to_owned()
}

#[test]
fn send_signs_with_its_node_key_and_a_pinned_did_cannot_be_claimed_by_another() {
    let tmp = tempfile::tempdir().unwrap();
    let phone_state = tmp.path().join("phone");
    // The phone's key, made by the first `send` with this state directory.
    let first = run(&[
        "send",
        "jis:home:hub",
        "127.0.0.1:9",
        "x",
        "--my-did",
        "jis:home:phone",
        "--state",
        &state_arg(&phone_state),
        "--timeout",
        "0.2",
    ]);
    assert_ne!(first.status.code(), Some(0), "nothing listens there");
    let key_file = phone_state.join("node.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the node key is private");
    let public = run(&["pubkey", key_file.to_str().unwrap()]);
    assert_code(&public, 0);
    let public = stdout(&public).trim().to_owned();

    let pin = format!("jis:home:phone={public}");
    let hub = Listener::loopback_hub("jis:home:hub", &["jis:home:phone=0.9"], &["--pin", &pin]);
    let out = hub.send(
        "door.unlock",
        "jis:home:phone",
        &["--state", &state_arg(&phone_state), "--timeout", "5"],
    );
    assert_code(&out, 0);
    assert!(stdout(&out).contains("GROEN"), "{}", stdout(&out));
    // Anyone else claiming the phone's DID signs with its own key (the
    // default state of another user): refused, never answered.
    let spoof = send(
        &hub.did,
        &hub.loopback(),
        "door.unlock",
        "jis:home:phone",
        &["--timeout", "1"],
    );
    assert_ne!(spoof.status.code(), Some(0), "{}", stdout(&spoof));
    assert!(!stdout(&spoof).contains("GROEN"), "{}", stdout(&spoof));
}

#[test]
fn a_ping_captured_before_a_sigkill_is_refused_after_the_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let state = state_arg(tmp.path());
    let args = |port: &str| {
        vec![
            "--did".to_owned(),
            "jis:home:hub".into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_owned(),
            "--no-discovery".into(),
            "--trust".into(),
            "jis:home:door=0.9".into(),
            "--state".into(),
            state.clone(),
        ]
    };
    let first: Vec<String> = args("0");
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let hub = Listener::start(&first);
    let port = hub.addr.port().to_string();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut door = common::crafter("jis:home:door", 7);
    let captured = common::ping_bytes(&mut door, "jis:home:hub", "door.unlock");
    sock.send_to(&captured, hub.addr).unwrap();
    let mut buf = [0u8; 8192];
    sock.recv_from(&mut buf).expect("answered before the kill");
    drop(hub); // SIGKILL

    let second: Vec<String> = args(&port);
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let hub = Listener::start(&second);
    // Fresh pings are answered once past the horizon the killed run wrote
    // (at most a few seconds); the captured one never is.
    let started = Instant::now();
    loop {
        sock.send_to(&captured, hub.addr).unwrap();
        let fresh = common::ping_bytes(&mut door, "jis:home:hub", "temperature.read");
        sock.send_to(&fresh, hub.addr).unwrap();
        let mut answered = Vec::new();
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            answered.push(common::response_to(&buf[..n]));
        }
        let captured_id = common::packet_id(&captured);
        assert!(
            !answered.contains(&captured_id),
            "the captured ping was answered after the restart"
        );
        if !answered.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "fresh pings still refused after 15 s"
        );
    }
}

#[test]
fn pins_are_listed_and_removed_through_the_control_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("phone.key");
    let made = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert_code(&made, 0);
    let public = stdout(&made).trim().to_owned();
    let socket = tmp.path().join("c.sock");
    let socket = socket.to_str().unwrap();
    let audit = tmp.path().join("audit.jsonl");
    let pin = format!("jis:home:phone={public}");
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:phone=0.9"],
        &[
            "--pin",
            &pin,
            "--control",
            socket,
            "--audit",
            audit.to_str().unwrap(),
        ],
    );
    let list = run(&["pins", "list", "--control", socket]);
    assert_code(&list, 0);
    assert!(
        stdout(&list).starts_with("jis:home:phone  "),
        "{}",
        stdout(&list)
    );
    assert!(stdout(&list).contains(&public), "{}", stdout(&list));

    let removed = run(&["pins", "remove", "jis:home:phone", "--control", socket]);
    assert_code(&removed, 0);
    assert!(stdout(&removed).starts_with("removed the pin of jis:home:phone"));
    assert_eq!(
        stdout(&run(&["pins", "list", "--control", socket])).trim(),
        "no pins"
    );
    let again = run(&["pins", "remove", "jis:home:phone", "--control", socket]);
    assert_code(&again, 1);
    // The pins file beside the audit file follows, and the removal is
    // audited.
    let pins = std::fs::read_to_string(tmp.path().join("pins")).expect("the pins file is saved");
    assert!(!pins.contains("jis:home:phone"), "{pins}");
    // A clean stop stores every record (awaited, not polled).
    hub.terminate_and_collect();
    let tokens = std::fs::read_to_string(&audit).unwrap();
    assert!(tokens.contains("identity.unpinned"), "{tokens}");
}

#[test]
fn a_key_offered_for_a_trusted_did_waits_for_review_with_the_trust_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("lamp.key");
    assert_code(&run(&["keygen", "--out", key.to_str().unwrap()]), 0);
    let port = common::free_udp_port().to_string();
    let socket = tmp.path().join("hub.sock");
    let socket = socket.to_str().unwrap();
    let mut args = common::multicast_loopback(&port);
    args.extend([
        "--did",
        "jis:home:hub",
        "--trust",
        "jis:home:lamp=0.9",
        "--control",
        socket,
    ]);
    let hub = Listener::start(&args);
    let out = common::announce_with_key("jis:home:lamp", &key, &port, "1");
    assert_code(&out, 0);
    hub.wait_for_line("jis:home:lamp");
    let listed = common::json(&run(&["pending", "list", "--control", socket, "--json"]));
    let item = listed["pending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["source_did"] == "jis:home:lamp")
        .unwrap_or_else(|| panic!("no key offer in {listed}"))
        .clone();
    let purpose = item["purpose"].as_str().unwrap();
    assert!(
        purpose.starts_with("key offered for jis:home:lamp"),
        "{item}"
    );
    assert_eq!(
        item["trust"].as_f64(),
        Some(0.9),
        "the trust the node applies"
    );
    // Not pinned until a human approves it.
    let pins = run(&["pins", "list", "--control", socket]);
    assert_eq!(stdout(&pins).trim(), "no pins");
}
