//! The state store through the CLI (docs/OPERATIONS.md): an approval with
//! `--trust` holds after a restart (clean, and SIGKILL); a ping waiting for
//! review waits again after one and can be approved then; `tibet-iot state
//! list|export|reset` read and reset it.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use common::{Listener, assert_code, bin, json, run, stderr, stdout};

const HUB: &str = "jis:home:hub";
const DOOR: &str = "jis:home:doorbell";

fn hub(state: &Path, sock: &Path) -> Listener {
    Listener::loopback_hub(
        HUB,
        &["jis:home:doorbell=0.5"],
        &[
            "--state",
            state.to_str().unwrap(),
            "--control",
            sock.to_str().unwrap(),
        ],
    )
}

/// Sends from the doorbell: held for review; its packet id.
fn held_for_review(hub: &Listener) -> String {
    let out = hub.send("door.ring", DOOR, &["--json"]);
    assert_code(&out, 2);
    json(&out)["in_response_to"].as_str().unwrap().to_owned()
}

/// `pending approve ID --trust 0.9`.
fn approve_with_trust(id: &str, sock: &Path) -> std::process::Output {
    let sock = sock.to_str().unwrap();
    run(&[
        "pending",
        "approve",
        id,
        "--trust",
        "0.9",
        "--control",
        sock,
    ])
}

/// Sends from the doorbell (held for review), approves with `--trust 0.9`,
/// and checks the next ping is accepted.
fn approve(hub: &Listener, sock: &Path) {
    let id = held_for_review(hub);
    assert_code(&approve_with_trust(&id, sock), 0);
    assert_code(&hub.send("door.ring", DOOR, &[]), 0);
}

fn approved_then_restarted(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let sock = tmp.path().join("c.sock");
    let first = hub(&state, &sock);
    approve(&first, &sock);
    let status = first.signal(signal);
    if signal == "-KILL" {
        assert!(!status.success());
    } else {
        assert!(status.success(), "{status:?}");
    }

    if signal == "-KILL" {
        // After a crash the node refuses what was sent before the replay
        // horizon the killed run kept ahead of its clock (docs/SECURITY.md).
        let out = run(&["state", "export", "--state", state.to_str().unwrap()]);
        assert_code(&out, 0);
        let exported = json(&out);
        let horizon = exported["horizon"]
            .as_str()
            .expect("a horizon in the store");
        let horizon = tibet_ping::Timestamp::parse(horizon).unwrap();
        while tibet_ping::Timestamp::now() <= horizon {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let second = hub(&state, &sock);
    let out = second.send("door.ring", DOOR, &["--json"]);
    assert_code(&out, 0);
    assert_eq!(json(&out)["airlock_zone"], "GROEN", "{}", stdout(&out));
    drop(second);

    let dir = state.to_str().unwrap();
    let out = run(&["state", "list", "--state", dir]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(DOOR) && text.contains("0.90") && text.contains("pending approved"),
        "{text}"
    );
    let out = run(&["state", "export", "--state", dir]);
    assert_code(&out, 0);
    let v = json(&out);
    assert_eq!(v["trust"][0]["did"], DOOR);
    assert_eq!(v["trust"][0]["score"], 0.9);
    assert_eq!(v["trust"][0]["declared"], 0.5);
    let dump = run(&["state", "dump", "--state", dir]);
    assert_eq!(json(&dump), v, "dump is export");
}

#[test]
fn an_approval_survives_a_clean_restart() {
    approved_then_restarted("-TERM");
}

#[test]
fn an_approval_survives_sigkill() {
    approved_then_restarted("-KILL");
}

#[test]
fn a_waiting_review_is_listed_and_waits_again_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let sock = tmp.path().join("c.sock");
    let first = hub(&state, &sock);
    let id = held_for_review(&first);
    assert!(first.signal("-TERM").success());

    let out = run(&["state", "list", "--state", state.to_str().unwrap()]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("waiting  ping {id} from {DOOR}")),
        "{text}"
    );
    let second = hub(&state, &sock);
    let out = run(&["pending", "list", "--control", sock.to_str().unwrap()]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    assert_code(&approve_with_trust(&id, &sock), 0);
    assert_code(&second.send("door.ring", DOOR, &[]), 0);
}

#[test]
fn reset_asks_first_and_is_refused_while_the_node_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let sock = tmp.path().join("c.sock");
    let dir = state.to_str().unwrap();
    let running = hub(&state, &sock);
    approve(&running, &sock);

    let out = run(&["state", "reset", "--yes", "--state", dir]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    running.terminate();

    // Anything but yes keeps the store.
    let mut child = bin()
        .args(["state", "reset", "--state", dir])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    assert!(stdout(&run(&["state", "list", "--state", dir])).contains(DOOR));

    let out = run(&["state", "reset", "--yes", "--state", dir]);
    assert_code(&out, 0);
    assert!(stdout(&run(&["state", "list", "--state", dir])).contains("no decisions kept"));
    let again = hub(&state, &sock);
    assert_code(&again.send("door.ring", DOOR, &[]), 2);
}

#[test]
fn a_corrupt_store_stops_listen_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let db = state.join("state.db");
    std::fs::write(&db, vec![0x5a; 4096]).unwrap();
    let out = run(&[
        "listen",
        "--did",
        HUB,
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-discovery",
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("corrupt"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&db).unwrap(), vec![0x5a; 4096]);
}

#[test]
fn the_config_file_names_the_state_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("hub.toml");
    std::fs::write(
        &config,
        format!("did = \"{HUB}\"\n[state]\ndir = \"hub-state\"\n"),
    )
    .unwrap();
    let sock = tmp.path().join("c.sock");
    let hub = Listener::start(&[
        "--config",
        config.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-discovery",
        "--control",
        sock.to_str().unwrap(),
    ]);
    // Relative to the config file, not the working directory.
    let dir = tmp.path().join("hub-state");
    assert!(dir.join("state.db").exists() && dir.join("lock").exists());
    drop(hub);
}

#[test]
fn an_approval_the_store_cannot_record_is_not_acknowledged_as_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let sock = tmp.path().join("c.sock");
    let hub = hub(&state, &sock);
    let id = held_for_review(&hub);
    // Someone broke the store under the running node.
    let conn = rusqlite::Connection::open(state.join("state.db")).unwrap();
    conn.execute_batch("DROP TABLE trust").unwrap();
    drop(conn);
    let out = approve_with_trust(&id, &sock);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("will not survive a restart"),
        "{}",
        stderr(&out)
    );
}
