//! The control socket (`pending list|approve|reject`), the config file,
//! audit recording and port conflicts.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{
    Listener, assert_code, assert_stdout_starts, free_udp_port, hub_toml_copy, json, run, send,
    stderr, stdout,
};

#[test]
fn operator_approves_a_pending_ping_and_raises_trust() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("hub.sock");
    let audit = dir.path().join("audit.jsonl");
    let sock_s = sock.to_str().unwrap();
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:doorbell=0.5"],
        &["--control", sock_s, "--audit", audit.to_str().unwrap()],
    );
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let out = hub.send("door.unlock", "jis:home:doorbell", &["--json"]);
    assert_code(&out, 2);
    let resp = json(&out);
    let id = resp["in_response_to"].as_str().unwrap().to_owned();

    let out = run(&["pending", "list", "--control", sock_s, "--json"]);
    assert_code(&out, 0);
    let list = json(&out);
    let items = list["pending"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["source_did"], "jis:home:doorbell");
    assert_eq!(items[0]["trust"], 0.5);
    let table = stdout(&run(&["pending", "list", "--control", sock_s]));
    assert!(
        table.contains(&id) && table.contains("door.unlock"),
        "{table}"
    );

    let out = run(&[
        "pending",
        "approve",
        &id,
        "--trust",
        "0.9",
        "--control",
        sock_s,
    ]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("approved"), "{}", stdout(&out));
    let line = hub.wait_for_line(&format!("approved {id}"));
    assert!(
        line.contains("jis:home:doorbell") && line.contains("trust -> 0.90"),
        "{line}"
    );
    let out = run(&["pending", "list", "--control", sock_s]);
    assert!(
        stdout(&out).contains("no pending pings"),
        "{}",
        stdout(&out)
    );
    // Approving again names the missing id.
    let out = run(&["pending", "reject", &id, "--control", sock_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&id), "{}", stderr(&out));

    // The raised trust holds: the next ping is GROEN.
    let out = hub.send("door.unlock", "jis:home:doorbell", &[]);
    assert_code(&out, 0);
    assert_stdout_starts(&out, "GROEN — trust: 0.9");

    // Stop gracefully so the audit file is flushed, then look at it.
    assert!(hub.terminate().success());
    assert!(!sock.exists(), "the control socket is removed on exit");
    let text = std::fs::read_to_string(&audit).unwrap();
    let actions: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(actions.iter().any(|a| a == "trust_change"), "{actions:?}");
    assert!(
        actions.iter().filter(|a| *a == "ping.intent").count() >= 2,
        "{actions:?}"
    );
    let change = text.lines().find(|l| {
        l.contains("trust_change") && l.contains("jis:home:doorbell") && l.contains("0.9")
    });
    assert!(change.is_some(), "{text}");
    // The trail verifies (hashes and chain links) with `tibet-iot audit verify`.
    let out = run(&["audit", "verify", audit.to_str().unwrap()]);
    assert_code(&out, 0);
}

#[test]
fn the_example_config_is_accepted_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hub_toml_copy(dir.path());
    let home = tempfile::tempdir().unwrap();
    // Flags override the file's fixed ports so the test never collides.
    let hub = Listener::hub_example(&cfg, home.path(), None);
    assert_eq!(hub.did, "jis:home:hub", "the DID comes from the file");
    let out = hub.send("temperature.read", "jis:home:sensor", &[]);
    assert_code(&out, 0);
    assert_stdout_starts(&out, "GROEN — trust: 0.9 — ");
    // Vouched lamps (0.9 x 0.7 = 0.63) are GEEL by threshold, but the rule
    // "lamps may report" makes status reports GROEN.
    let status_report = hub.send("status.report", "jis:home:lamp1", &[]);
    assert_code(&status_report, 0);
    let light_on = hub.send("light.on", "jis:home:lamp1", &[]);
    assert_code(&light_on, 2);
    // The rule "door needs a human" holds even a trusted sensor for review.
    let out = hub.send("door.unlock", "jis:home:sensor", &[]);
    assert_code(&out, 2);
    assert!(hub.terminate().success());
    // The audit file is under $HOME (`~/` in the file), not in the repository.
    let audit = std::fs::read_to_string(home.path().join(".local/state/tibet-iot/hub-audit.jsonl"))
        .unwrap();
    assert!(audit.lines().count() >= 4, "{audit}");
}

#[test]
fn port_in_use_is_one_clear_line() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&[
        "listen",
        "--did",
        "jis:a:b",
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--no-discovery",
        "--trust",
        "jis:c:d=0.9",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("port {port} is in use")), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn flags_override_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("n.toml");
    std::fs::write(&cfg, "did = \"jis:file:node\"\nport = 1\n[trust]\n\"jis:a:b\" = 0.1\n[discovery]\nenabled = false\n").unwrap();
    let hub = Listener::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--trust",
        "jis:a:b=0.8",
    ]);
    let out = send("jis:file:node", &hub.loopback(), "x", "jis:a:b", &[]);
    assert_code(&out, 0);
    assert_stdout_starts(&out, "GROEN — trust: 0.8");
}

/// Sends one GEEL-bound ping and one beacon, both full of terminal escapes,
/// to a listener; `pending list` and `status` must show them escaped and
/// capped (docs/SECURITY.md, row 10).
#[test]
fn pending_list_and_status_escape_and_cap_network_strings() {
    use std::net::UdpSocket;

    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("hub.sock");
    let sock_s = sock.to_str().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(&config, DOOR_RULE).unwrap();
    let disc_port = free_udp_port().to_string();
    let mut args = common::multicast_loopback(&disc_port);
    args.extend([
        "--did",
        "jis:home:hub",
        "--config",
        config.to_str().unwrap(),
        "--control",
        sock_s,
    ]);
    let hub = Listener::start(&args);
    let evil = "\u{1b}[2K\rGROEN accept";
    let codec = tibet_ping::PacketCodec::new(false);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();

    // A GEEL ping: ESC/CR in the id, the DID, the intent and the purpose,
    // and a purpose far longer than a terminal line.
    let mut ping = tibet_ping::PingPacket::new(
        format!("ping_01234567{evil}"),
        format!("jis:evil:{evil}"),
        "jis:home:hub",
        format!("door.{evil}"),
        format!("{evil}{}", "P".repeat(2000)),
    );
    ping.nonce = "00112233445566778899aabbccddeeff".into();
    ping.timestamp = tibet_ping::Timestamp::now().to_iso();
    udp.send_to(&codec.encode_packet(&ping).unwrap(), hub.addr)
        .unwrap();

    // A beacon: ESC/CR in its DID and device type, to the discovery port.
    let mut dev = tibet_ping::PingNode::new(
        format!("jis:beacon:{evil}"),
        tibet_ping::PingNodeConfig::default(),
        Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3)),
    );
    let mut beacon = dev.discover(
        tibet_ping::Timestamp::now(),
        &tibet_ping::Announcement {
            device_type: Some(format!("lamp{evil}")),
            ..Default::default()
        },
    );
    beacon.payload.insert(
        tibet_iot::TRANSPORT_PORT_KEY.to_owned(),
        udp.local_addr().unwrap().port().into(),
    );
    udp.send_to(
        &codec.encode_packet(&beacon).unwrap(),
        format!("127.0.0.1:{disc_port}"),
    )
    .unwrap();

    // Both wait for review (the control socket is the only way to see them).
    let mut items = Vec::new();
    for _ in 0..100 {
        let out = run(&["pending", "list", "--control", sock_s, "--json"]);
        assert_code(&out, 0);
        items = json(&out)["pending"].as_array().unwrap().clone();
        if items.len() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(items.len(), 2, "the ping and the beacon: {items:?}");

    for args in [
        vec!["pending", "list", "--control", sock_s],
        vec!["status", "--control", sock_s, "--interval", "0.1"],
    ] {
        let out = run(&args);
        assert_code(&out, 0);
        let text = stdout(&out);
        assert!(!text.contains(['\u{1b}', '\r']), "{args:?}: {text:?}");
        assert!(
            text.contains("jis:evil:\\u{1b}[2K\\u{d}GROEN accept"),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("jis:beacon:\\u{1b}[2K\\u{d}GROEN accept"),
            "{args:?}: {text}"
        );
        assert!(
            text.lines().all(|l| l.chars().count() < 1000),
            "lines are capped: {args:?}: {text}"
        );
    }
    let list = stdout(&run(&["pending", "list", "--control", sock_s]));
    assert!(list.contains("lamp\\u{1b}[2K\\u{d}GROEN accept"), "{list}");
    assert!(list.contains('…'), "the long purpose is cut: {list}");
}

/// A config where every `door.*` ping waits for a human, whoever sends it.
const DOOR_RULE: &str = "[[airlock_rule]]\nname = \"door\"\nzone = \"GEEL\"\nintent = \"door.*\"\n";

/// Starts `jis:home:hub` on 127.0.0.1 (no discovery) with `config` as its
/// config file and a control socket, both in `dir`; returns the socket path.
fn hub_with_config(dir: &std::path::Path, config: &str) -> (Listener, std::path::PathBuf) {
    let sock = dir.join("hub.sock");
    let file = dir.join("hub.toml");
    std::fs::write(&file, config).unwrap();
    let hub = Listener::start(&[
        "--did",
        "jis:home:hub",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-discovery",
        "--config",
        file.to_str().unwrap(),
        "--control",
        sock.to_str().unwrap(),
    ]);
    (hub, sock)
}

/// Two senders used one packet id (docs/SECURITY.md, row 4): a review by id
/// alone is refused and names both senders, `--from DID` picks one, and the
/// other stays waiting untouched.
#[test]
fn a_review_of_an_id_two_senders_used_must_name_the_sender() {
    use std::net::UdpSocket;

    let dir = tempfile::tempdir().unwrap();
    let (hub, sock) = hub_with_config(dir.path(), DOOR_RULE);
    let sock_s = sock.to_str().unwrap();
    let codec = tibet_ping::PacketCodec::new(false);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let id = "ping_00000000000000aa";
    for (did, nonce) in [
        ("jis:home:alice", "00112233445566778899aabbccddeef0"),
        ("jis:evil:mallory", "00112233445566778899aabbccddeef1"),
    ] {
        let mut ping =
            tibet_ping::PingPacket::new(id, did, "jis:home:hub", "door.open", "let me in");
        ping.nonce = nonce.into();
        ping.timestamp = tibet_ping::Timestamp::now().to_iso();
        udp.send_to(&codec.encode_packet(&ping).unwrap(), hub.addr)
            .unwrap();
    }
    let waiting = || -> Vec<String> {
        let out = run(&["pending", "list", "--control", sock_s, "--json"]);
        assert_code(&out, 0);
        json(&out)["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["source_did"].as_str().unwrap().to_owned())
            .collect()
    };
    // The listener prints each decided ping once it is queued for review.
    for _ in 0..2 {
        hub.wait_for_line("door.open");
    }
    assert_eq!(waiting(), ["jis:home:alice", "jis:evil:mallory"]);

    let out = run(&[
        "pending",
        "approve",
        id,
        "--control",
        sock_s,
        "--trust",
        "0.9",
    ]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("2 pings wait under id ping_00000000000000aa")
            && err.contains("jis:home:alice")
            && err.contains("jis:evil:mallory")
            && err.contains("--from DID"),
        "{err}"
    );
    assert_eq!(waiting().len(), 2, "nothing was approved");

    let out = run(&[
        "pending",
        "approve",
        id,
        "--from",
        "jis:home:alice",
        "--control",
        sock_s,
    ]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("from jis:home:alice"),
        "{}",
        stdout(&out)
    );
    assert_eq!(waiting(), ["jis:evil:mallory"]);

    // With one sender left, the id alone is enough again.
    let out = run(&["pending", "reject", id, "--control", sock_s]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("jis:evil:mallory"),
        "{}",
        stdout(&out)
    );
    assert!(waiting().is_empty());
    drop(hub);
}

/// `[limits]` reaches the node: with room for one peer, a second trusted
/// sender is still answered but not tracked, and the refusal is counted.
#[test]
fn the_limits_section_sets_the_node_capacities() {
    use std::io::{BufRead, BufReader, Write};

    let dir = tempfile::tempdir().unwrap();
    let (hub, sock) = hub_with_config(
        dir.path(),
        "[trust]\n\"jis:home:a\" = 0.9\n\"jis:home:b\" = 0.9\n\n[limits]\npeers = 1\nnonce_capacity = 1000\n",
    );
    assert_code(&hub.send("light.on", "jis:home:a", &[]), 0);
    assert_code(&hub.send("light.on", "jis:home:b", &[]), 0);

    let mut conn = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    conn.write_all(b"{\"op\":\"stats\"}\n").unwrap();
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let peers = &v["stats"]["peers"];
    assert_eq!(peers["tracked"], 1, "{v}");
    assert_eq!(peers["refused"], 1, "{v}");
    drop(hub);
}

/// The senders of an ambiguous id are network input: the refusal names a
/// few and counts the rest, however many used the id.
#[test]
fn an_ambiguous_review_names_at_most_five_senders() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, sock) = hub_with_config(dir.path(), DOOR_RULE);
    let sock_s = sock.to_str().unwrap();
    let codec = tibet_ping::PacketCodec::new(false);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let id = "ping_00000000000000bb";
    for i in 0..8 {
        let mut ping = tibet_ping::PingPacket::new(
            id,
            format!("jis:crowd:d{i}"),
            "jis:home:hub",
            "door.open",
            "let me in",
        );
        ping.nonce = format!("00112233445566778899aabbccddee{i:02x}");
        ping.timestamp = tibet_ping::Timestamp::now().to_iso();
        udp.send_to(&codec.encode_packet(&ping).unwrap(), hub.addr)
            .unwrap();
    }
    // The listener prints each decided ping once it is queued for review.
    for _ in 0..8 {
        hub.wait_for_line("door.open");
    }
    let out = run(&["pending", "list", "--control", sock_s, "--json"]);
    assert_eq!(json(&out)["pending"].as_array().unwrap().len(), 8);
    let out = run(&["pending", "approve", id, "--control", sock_s]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("8 pings wait under id") && err.contains("3 more"),
        "{err}"
    );
    assert_eq!(err.matches("jis:crowd:").count(), 5, "{err}");
    drop(hub);
}
