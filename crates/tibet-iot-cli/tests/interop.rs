//! Interop with the Python reference (tibet-ping 0.3.5 in the test venv):
//! our `send` against a Python `IoTNode` listener, and the Python CLI's
//! `tibet-ping send` against our `listen`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Listener, assert_code, assert_stdout_starts, json, send, stderr, stdout};

/// A Python tibet-ping listener on 127.0.0.1 (free port) that trusts
/// `jis:rust:cli` (0.9) and `jis:rust:door` (0.5), prints `READY <port>`
/// and then one line per answered ping.
const PY_LISTENER: &str = r#"
import asyncio, sys
from tibet_ping.transport.udp import TransportConfig
from tibet_ping.transport.iot_node import IoTNode

async def main():
    node = IoTNode("jis:py:hub", config=TransportConfig(bind_host="127.0.0.1", bind_port=0),
                   heartbeat_interval=3600, discovery_interval=3600)
    node.set_trust("jis:rust:cli", 0.9)
    node.set_trust("jis:rust:door", 0.5)
    await node.start()
    port = node.transport._transport.get_extra_info("sockname")[1]
    print(f"READY {port}", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"#;

struct Py(Child);

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn our_send_to_a_python_listener() {
    let Some(py) = tibet_testkit::python() else {
        return;
    };
    let mut child = Command::new(&py)
        .args(["-c", PY_LISTENER])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn python listener");
    let out = child.stdout.take().unwrap();
    let guard = Py(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("python listener ready line");
    let port = ready.strip_prefix("READY ").expect("READY <port>");
    let addr = format!("127.0.0.1:{port}");

    let out = send("jis:py:hub", &addr, "temperature.read", "jis:rust:cli", &[]);
    assert_code(&out, 0);
    assert_stdout_starts(&out, "GROEN — trust: 0.9 — RTT: ");

    // msgpack frames are understood by the reference too.
    let out = send(
        "jis:py:hub",
        &addr,
        "t.read",
        "jis:rust:cli",
        &["--msgpack", "--json"],
    );
    assert_code(&out, 0);
    let v = json(&out);
    assert_eq!(v["responder_did"], "jis:py:hub");

    let out = send("jis:py:hub", &addr, "door.unlock", "jis:rust:door", &[]);
    assert_code(&out, 2);

    let out = send(
        "jis:py:hub",
        &addr,
        "door.unlock",
        "jis:rust:nobody",
        &["--timeout", "0.5"],
    );
    assert_code(&out, 3);
    drop(guard);
}

#[test]
fn python_cli_send_to_our_listener() {
    let Some(py) = tibet_testkit::python() else {
        return;
    };
    let cli = py.parent().unwrap().join("tibet-ping");
    assert!(cli.exists(), "{} missing", cli.display());
    let hub = Listener::loopback_hub("jis:rust:hub", &["jis:py:cli=0.9"], &[]);
    let out = Command::new(&cli)
        .args([
            "send",
            "jis:rust:hub",
            &hub.loopback(),
            "temperature.read",
            "--my-did",
            "jis:py:cli",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run tibet-ping send");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("Response: accept"), "{text}");
    assert!(text.contains("zone: GROEN"), "{text}");
    assert!(text.contains("trust: 0.9"), "{text}");
    let seen = hub.wait_for_line("jis:py:cli");
    assert!(seen.contains("GROEN"), "{seen}");
}
