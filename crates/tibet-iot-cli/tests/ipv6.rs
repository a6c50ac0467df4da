//! IPv6 from the command line, on loopback: a listener on `::` (its
//! default) answers `send` over IPv4 and over IPv6, and the metrics
//! endpoint serves on `[::1]`; a scope naming no interface is refused.

mod common;

use common::{Listener, assert_code, send};

fn free_tcp_port_v6() -> u16 {
    std::net::TcpListener::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_dual_stack_listener_answers_both_families_and_serves_metrics_on_ipv6() {
    let metrics = format!("[::1]:{}", free_tcp_port_v6());
    let hub = Listener::start(&[
        "--did",
        "jis:home:hub",
        "--port",
        "0",
        "--no-discovery",
        "--trust",
        "jis:home:phone=0.9",
        "--metrics",
        &metrics,
    ]);
    assert!(
        hub.addr.is_ipv6() && hub.addr.ip().is_unspecified(),
        "listens on [::] by default: {}",
        hub.addr
    );
    let port = hub.addr.port();
    for to in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let out = send("jis:home:hub", &to, "light.on", "jis:home:phone", &[]);
        assert_code(&out, 0);
    }
    let page = ureq::get(&format!("http://{metrics}/metrics"))
        .call()
        .expect("scrape over IPv6")
        .into_string()
        .unwrap();
    let accepted = page
        .lines()
        .find_map(|l| l.strip_prefix("tibet_pings_total{zone=\"GROEN\",decision=\"accept\"} "))
        .and_then(|v| v.split(' ').next()?.parse::<f64>().ok());
    assert_eq!(accepted, Some(2.0), "{page}");
}

#[test]
fn a_bad_scope_or_interface_is_one_line_and_exit_1() {
    let out = send(
        "jis:home:hub",
        "[fe80::1%nosuchif9]:7150",
        "light.on",
        "jis:home:phone",
        &[],
    );
    assert_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no interface 'nosuchif9'"), "{err}");
    let out = common::run(&[
        "listen",
        "--did",
        "jis:home:hub",
        "--port",
        "0",
        "--multicast-if",
        "nosuchif9",
    ]);
    assert_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--multicast-if nosuchif9"), "{err}");
}

/// `listen --bind fe80::10%lo`: a link-local address is bound on the link
/// its scope names, and `send` reaches it at `[fe80::10%lo]:PORT`. In a
/// network namespace of its own (root), whose loopback gets the address.
#[test]
fn a_link_local_address_is_bound_with_its_interface_and_answers() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use tibet_testkit::netns::{Netns, netns_available};

    if !netns_available() {
        return;
    }
    let ns = Netns::new_v6("bindll").expect("a namespace");
    ns.ip(&["addr", "add", "fe80::10/64", "dev", "lo", "nodad"])
        .expect("a link-local address on the namespace's loopback");
    let state = tempfile::tempdir().unwrap();
    let mut listen = ns
        .command(env!("CARGO_BIN_EXE_tibet-iot"))
        .args(["listen", "--did", "jis:home:hub", "--bind", "fe80::10%lo"])
        .args([
            "--port",
            "0",
            "--no-discovery",
            "--trust",
            "jis:home:phone=0.9",
        ])
        .env("XDG_STATE_HOME", state.path())
        .env_remove("STATE_DIRECTORY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(listen.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "listening on [fe80::10%1]:PORT as jis:home:hub"
    assert!(line.starts_with("listening on [fe80::10%"), "{line}");
    let port = line
        .split("]:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    let out = ns
        .command(env!("CARGO_BIN_EXE_tibet-iot"))
        .args([
            "send",
            "jis:home:hub",
            &format!("[fe80::10%lo]:{port}"),
            "light.on",
        ])
        .args(["--my-did", "jis:home:phone"])
        .env("XDG_STATE_HOME", state.path())
        .env_remove("STATE_DIRECTORY")
        .output()
        .unwrap();
    let _ = listen.kill();
    let _ = listen.wait();
    assert_code(&out, 0);
}
