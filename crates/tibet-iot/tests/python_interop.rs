//! Rust nodes against Python `tibet_ping.transport.IoTNode` (0.3.5) on
//! 127.0.0.1: pings both ways in JSON and msgpack, beacons both ways.
//!
//! The Python node runs with its heartbeat and discovery loops pushed out to
//! an hour (its heartbeat would broadcast to 255.255.255.255 and its
//! discovery would multicast on the default interface); beacons are
//! exchanged by unicast to the discovery port instead, which is what the
//! reference's listener accepts too.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tibet_iot::{Event, IoTNode, SendOptions, TransportConfig};
use tibet_ping::{AirlockZone, PingDecision};
use tibet_testkit::free_udp_port;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::timeout;

const SCRIPT: &str = r#"
import asyncio, json, socket, sys
from tibet_ping.transport import IoTNode, TransportConfig
from tibet_ping.transport.discovery import NetworkDiscovery
from tibet_ping.transport.codec import PacketCodec

did, msgpack, disc_port = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])

async def main():
    cfg = TransportConfig(bind_host="127.0.0.1", bind_port=0, use_msgpack=msgpack, broadcast=False)
    node = IoTNode(did, config=cfg, heartbeat_interval=3600, discovery_interval=3600)
    node._discovery = NetworkDiscovery(did, node.ping_node, node.transport, discovery_port=disc_port)
    async def found(src, addr, resp):
        print("discovered", src, resp.decision, flush=True)
    node.discovery.on_discovered(found)
    await node.start()
    port = node.transport._transport.get_extra_info("sockname")[1]
    print("ready", port, flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = line.split()
        if cmd[0] == "trust":
            node.set_trust(cmd[1], float(cmd[2]))
            print("ok", flush=True)
        elif cmd[0] == "ping":
            r = await node.send_ping(cmd[1], ("127.0.0.1", int(cmd[2])), "temperature.read", "interop", timeout=2.0)
            print("resp", json.dumps(r.to_dict() if r else None), flush=True)
        elif cmd[0] == "beacon":
            pkt = node.ping_node.discover(capabilities=["temp"])
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(PacketCodec(use_msgpack=msgpack).encode_packet(pkt), ("127.0.0.1", int(cmd[1])))
            s.close()
            print("ok", flush=True)
        elif cmd[0] == "quit":
            break
    await node.stop()

asyncio.run(main())
"#;

struct PyNode {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    addr: SocketAddr,
}

impl PyNode {
    async fn spawn(did: &str, msgpack: bool, disc_port: u16) -> Option<PyNode> {
        let py = tibet_testkit::python()?;
        let mut child = Command::new(py)
            .args([
                "-c",
                SCRIPT,
                did,
                if msgpack { "1" } else { "0" },
                &disc_port.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn python");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut node = PyNode {
            child,
            stdin,
            lines,
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let ready = node.expect("ready").await;
        node.addr.set_port(ready[1].parse().unwrap());
        Some(node)
    }

    /// The next stdout line starting with `word`, split on whitespace
    /// (bounded wait: the line is the synchronisation, not a sleep).
    async fn expect(&mut self, word: &str) -> Vec<String> {
        timeout(Duration::from_secs(10), async {
            loop {
                let line = self
                    .lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("python exited early");
                if line.split_whitespace().next() == Some(word) {
                    return line.split_whitespace().map(str::to_owned).collect();
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("python did not print {word:?}"))
    }

    async fn cmd(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    /// Python pings `did` at `port`; its answer as JSON (null when none).
    async fn ping(&mut self, did: &str, port: u16) -> serde_json::Value {
        self.cmd(&format!("ping {did} {port}")).await;
        let words = self.expect("resp").await;
        serde_json::from_str(&words[1..].join(" ")).unwrap()
    }

    async fn quit(mut self) {
        self.cmd("quit").await;
        let _ = timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

async fn rust_node(did: &str, msgpack: bool) -> (IoTNode, SocketAddr) {
    let cfg = TransportConfig {
        use_msgpack: msgpack,
        request_timeout: Duration::from_secs(2),
        ..TransportConfig::loopback()
    };
    let node = IoTNode::new(did, cfg);
    let addr = node.start().await.unwrap();
    (node, addr)
}

async fn python_pings_rust(msgpack: bool) {
    let Some(mut py) = PyNode::spawn("jis:py:sensor", msgpack, free_udp_port()).await else {
        return;
    };
    let (rust, addr) = rust_node("jis:rust:hub", !msgpack).await;
    let silent = py.ping("jis:rust:hub", addr.port()).await;
    assert!(
        silent.is_null(),
        "unknown Python sender: ROOD, silence: {silent}"
    );
    rust.set_trust("jis:py:sensor", 0.5);
    let geel = py.ping("jis:rust:hub", addr.port()).await;
    assert_eq!(
        (geel["decision"].as_str(), geel["airlock_zone"].as_str()),
        (Some("pending"), Some("GEEL")),
        "{geel}"
    );
    rust.set_trust("jis:py:sensor", 0.9);
    let groen = py.ping("jis:rust:hub", addr.port()).await;
    assert_eq!(groen["decision"], "accept", "{groen}");
    assert_eq!(groen["airlock_zone"], "GROEN");
    assert_eq!(groen["responder_did"], "jis:rust:hub");
    assert_eq!(rust.stats().engine.rood_dropped, 1);
    py.quit().await;
    rust.stop().await;
}

async fn rust_pings_python(msgpack: bool) {
    let Some(mut py) = PyNode::spawn("jis:py:hub", msgpack, free_udp_port()).await else {
        return;
    };
    let (rust, _) = rust_node("jis:rust:sensor", !msgpack).await;
    let opts = || SendOptions {
        timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let silent = rust
        .send_ping("jis:py:hub", py.addr, "x", "y", opts())
        .await
        .unwrap();
    assert_eq!(silent, None, "Python drops an unknown sender silently");
    py.cmd("trust jis:rust:sensor 0.95").await;
    py.expect("ok").await;
    let resp = rust
        .send_ping("jis:py:hub", py.addr, "temperature.read", "interop", opts())
        .await
        .unwrap()
        .expect("answered");
    assert_eq!(resp.airlock_zone, AirlockZone::Groen);
    assert_eq!(resp.decision, PingDecision::Accept);
    assert_eq!(resp.responder_did, "jis:py:hub");
    assert!((resp.trust_score - 0.95).abs() < 1e-9);
    py.quit().await;
    rust.stop().await;
}

#[tokio::test]
async fn python_pings_rust_json() {
    python_pings_rust(false).await;
}

#[tokio::test]
async fn python_pings_rust_msgpack() {
    python_pings_rust(true).await;
}

#[tokio::test]
async fn rust_pings_python_json() {
    rust_pings_python(false).await;
}

#[tokio::test]
async fn rust_pings_python_msgpack() {
    rust_pings_python(true).await;
}

#[tokio::test]
async fn beacons_are_understood_both_ways() {
    let py_disc = free_udp_port();
    let Some(mut py) = PyNode::spawn("jis:py:lamp", false, py_disc).await else {
        return;
    };
    let cfg = TransportConfig {
        discovery_enabled: true,
        discovery_port: 0,
        capabilities: vec!["relay".into()],
        device_type: "gateway".into(),
        ..TransportConfig::loopback()
    };
    let rust = IoTNode::new("jis:rust:gw", cfg);
    rust.start().await.unwrap();
    let mut events = rust.subscribe();
    let rust_disc = rust.discovery_addr().expect("discovery socket on loopback");

    // Python -> Rust: the reference's discover packet, to our discovery port.
    py.cmd(&format!("beacon {}", rust_disc.port())).await;
    let (did, decision) = timeout(Duration::from_secs(5), async {
        loop {
            if let Event::PeerDiscovered { did, decision, .. } = events.recv().await.unwrap() {
                return (did, decision);
            }
        }
    })
    .await
    .expect("Rust heard the Python beacon");
    assert_eq!(did, "jis:py:lamp");
    assert_eq!(decision, tibet_ping::BeaconDecision::HitlPending);

    // Rust -> Python: our discover packet, to the Python discovery port.
    rust.announce_to(SocketAddr::from(([127, 0, 0, 1], py_disc)))
        .unwrap();
    let words = py.expect("discovered").await;
    assert_eq!(words[1], "jis:rust:gw");
    assert_eq!(words[2], "hitl_pending");
    py.quit().await;
    rust.stop().await;
}

/// A Rust node with a key in `mode`, trusting the Python sensor.
async fn keyed_rust_node(
    did: &str,
    mode: tibet_ping::identity::IdentityMode,
) -> (IoTNode, SocketAddr) {
    let cfg = TransportConfig {
        request_timeout: Duration::from_secs(2),
        identity: tibet_iot::IdentityConfig {
            mode,
            key: Some(tibet_ping::identity::Keypair::from_seed(&[3; 32])),
            ..Default::default()
        },
        ..TransportConfig::loopback()
    };
    let node = IoTNode::new(did, cfg);
    let addr = node.start().await.unwrap();
    node.set_trust("jis:py:sensor", 0.9);
    (node, addr)
}

#[tokio::test]
async fn an_unsigned_python_peer_works_in_prefer_and_is_dropped_in_require() {
    use tibet_ping::identity::IdentityMode;
    let Some(mut py) = PyNode::spawn("jis:py:sensor", false, free_udp_port()).await else {
        return;
    };
    let (prefer, pa) = keyed_rust_node("jis:rust:prefer", IdentityMode::Prefer).await;
    let (require, ra) = keyed_rust_node("jis:rust:require", IdentityMode::Require).await;
    // Python reads our signed answer (the extra `signature` key is ignored).
    let answer = py.ping("jis:rust:prefer", pa.port()).await;
    assert_eq!(answer["decision"], "accept", "{answer}");
    assert_eq!(answer["responder_did"], "jis:rust:prefer");
    let silent = py.ping("jis:rust:require", ra.port()).await;
    assert!(
        silent.is_null(),
        "require drops the unsigned peer: {silent}"
    );
    assert_eq!(require.stats().identity.unpinned_in_require, 1);
    assert_eq!(require.stats().engine.pings_answered, 0);
    // Our signed ping is understood by Python, whose answer is unsigned
    // and accepted in prefer mode (the Python DID is not pinned).
    py.cmd("trust jis:rust:prefer 0.95").await;
    py.expect("ok").await;
    let opts = SendOptions {
        timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let resp = prefer
        .send_ping("jis:py:sensor", py.addr, "temperature.read", "signed", opts)
        .await
        .unwrap()
        .expect("Python answered our signed ping");
    assert_eq!(resp.decision, PingDecision::Accept);
    assert_eq!(resp.signature, "");
    py.quit().await;
    prefer.stop().await;
    require.stop().await;
}
