//! `listen --control PATH` through the binary: it replaces only a stale
//! socket, and a client over the connection limit is told why.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use common::{Listener, loopback_args, run, stderr};

/// Runs `listen --control path` expecting it to refuse to start.
fn listen_refuses(path: &Path) -> String {
    let mut args = vec!["listen"];
    args.extend(hub_args(path));
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

fn listen_with_control(path: &Path) -> Listener {
    Listener::start(&hub_args(path))
}

/// A loopback hub trusting the sensor, with its control socket at `path`.
fn hub_args(path: &Path) -> Vec<&str> {
    loopback_args(
        "jis:home:hub",
        &["jis:home:sensor=0.9"],
        &["--control", path.to_str().unwrap()],
    )
}

#[test]
fn a_regular_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("precious.txt");
    std::fs::write(&file, "keep me").unwrap();
    let err = listen_refuses(&file);
    assert!(
        err.contains("refusing to replace") && err.contains("regular file"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn a_directory_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("d");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("inside"), "x").unwrap();
    let err = listen_refuses(&sub);
    assert!(err.contains("directory"), "{err}");
    assert!(sub.join("inside").exists());
}

#[test]
fn a_live_socket_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.sock");
    let other = UnixListener::bind(&path).unwrap();
    let err = listen_refuses(&path);
    assert!(err.contains("in use"), "{err}");
    // The other owner still has its socket.
    let _client = UnixStream::connect(&path).unwrap();
    assert!(other.accept().is_ok());
}

#[test]
fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(UnixStream::connect(&path).is_err(), "stale: nobody listens");
    let _hub = listen_with_control(&path);
    let out = run(&[
        "pending",
        "list",
        "--control",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_client_over_the_limit_gets_a_json_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctl.sock");
    let _hub = listen_with_control(&path);
    let idle: Vec<UnixStream> = (0..16)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    // The 16 are counted as the server accepts them; the first connection
    // that gets an answer without asking is the refused one.
    let line = loop {
        let s = UnixStream::connect(&path).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        if !line.is_empty() {
            break line;
        }
    };
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("too many control clients"),
        "{v}"
    );
    // Once the idle clients go, `pending` works again (the server notices
    // each close on its own schedule, so a refused try may come first).
    drop(idle);
    let ok = (0..200).any(|_| {
        run(&[
            "pending",
            "list",
            "--control",
            path.to_str().unwrap(),
            "--json",
        ])
        .status
        .success()
    });
    assert!(ok, "pending stays locked out after the idle clients left");
}
