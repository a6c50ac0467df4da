//! Errors a person can act on: one line naming the problem, exit status 1,
//! no backtrace.

mod common;

use common::{run, stderr};

fn assert_one_line_error(args: &[&str], needle: &str) {
    let out = run(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: status {:?}, stderr {err}",
        out.status
    );
    assert!(
        err.contains(needle),
        "{args:?}: stderr {err:?} lacks {needle:?}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err:?}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

/// `send jis:a:b 127.0.0.1:7150 x --my-did jis:c:d` followed by `extra`.
fn send_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "send",
        "jis:a:b",
        "127.0.0.1:7150",
        "x",
        "--my-did",
        "jis:c:d",
    ];
    args.extend(extra);
    args
}

#[test]
fn bad_target_did() {
    assert_one_line_error(
        &[
            "send",
            "home:sensor",
            "127.0.0.1:7150",
            "x",
            "--my-did",
            "jis:a:b",
            "--timeout",
            "0.1",
        ],
        "invalid DID 'home:sensor': must start with 'jis:'",
    );
}

#[test]
fn bad_own_did() {
    assert_one_line_error(
        &[
            "send",
            "jis:a:b",
            "127.0.0.1:7150",
            "x",
            "--my-did",
            "jis::b",
            "--timeout",
            "0.1",
        ],
        "invalid DID 'jis::b'",
    );
    assert_one_line_error(
        &["listen", "--did", "hub", "--port", "0"],
        "invalid DID 'hub'",
    );
}

#[test]
fn bad_host_port() {
    assert_one_line_error(
        &["send", "jis:a:b", "127.0.0.1", "x", "--my-did", "jis:c:d"],
        "invalid address '127.0.0.1': expected HOST:PORT",
    );
    assert_one_line_error(
        &[
            "send",
            "jis:a:b",
            "127.0.0.1:70000",
            "x",
            "--my-did",
            "jis:c:d",
        ],
        "port '70000' is not a number from 0 to 65535",
    );
    assert_one_line_error(
        &["bench", "nowhere", "--my-did", "jis:c:d"],
        "invalid address 'nowhere'",
    );
}

#[test]
fn bad_json_payload() {
    assert_one_line_error(
        &send_args(&["--payload", "{unit: C}"]),
        "invalid JSON payload",
    );
    assert_one_line_error(&send_args(&["--payload", "[1,2]"]), "expected an object");
}

#[test]
fn bad_trust_entry() {
    assert_one_line_error(
        &[
            "listen",
            "--did",
            "jis:h:h",
            "--port",
            "0",
            "--trust",
            "jis:a:b=2",
        ],
        "invalid trust entry 'jis:a:b=2'",
    );
}

#[test]
fn unreadable_config() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    assert_one_line_error(
        &["listen", "--config", missing.to_str().unwrap()],
        "cannot read config file",
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "did = \"jis:home:hub\"\n[intervals]\nheartbeet = 3\n").unwrap();
    assert_one_line_error(&["listen", "--config", bad.to_str().unwrap()], "heartbeet");
    std::fs::write(&bad, "did = \"jis:home:hub\"\n[trust]\n\"jis:a:b\" = 7\n").unwrap();
    assert_one_line_error(
        &["listen", "--config", bad.to_str().unwrap()],
        "trust.\"jis:a:b\"",
    );
    std::fs::write(&bad, "did = [1,\n").unwrap();
    assert_one_line_error(&["listen", "--config", bad.to_str().unwrap()], "bad.toml");
}

#[test]
fn bad_timeout_is_one_line() {
    assert_one_line_error(
        &send_args(&["--timeout", "0"]),
        "positive number of seconds",
    );
}

#[test]
fn pending_needs_a_live_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    assert_one_line_error(
        &["pending", "list", "--control", sock.to_str().unwrap()],
        "cannot connect to control socket",
    );
}
