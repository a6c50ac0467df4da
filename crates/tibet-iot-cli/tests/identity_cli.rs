//! Identity through the binary: `listen --key --pin`, `send --key --pin`,
//! the start-up warning for unpinned trust, and bad identity input as one
//! error line with exit status 1.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Listener, assert_code, run, stderr, stdout};

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
    // answer as forged: no response.
    let wrong = format!("jis:home:hub={other_pub}");
    let out = hub.send(
        "temperature.read",
        "jis:home:sensor",
        &["--key", dev, "--pin", &wrong, "--timeout", "1"],
    );
    assert_code(&out, 3);
}

#[test]
fn listen_warns_once_per_trusted_did_without_a_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pinned_pub) = keygen(dir.path(), "pinned.key");
    let err_file = dir.path().join("stderr");
    let pin = format!("jis:home:pinned={pinned_pub}");
    let hub = Listener::start_with(
        &[
            "--did",
            "jis:home:hub",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--no-discovery",
            "--trust",
            "jis:home:open=0.9",
            "--trust",
            "jis:home:pinned=0.9",
            "--pin",
            &pin,
        ],
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
    assert_one_line_error(&with(&["--identity", "require"]), "--key");
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
