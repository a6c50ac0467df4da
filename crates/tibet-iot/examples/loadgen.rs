//! Load generator: drives a node over loopback and reports answered pings
//! per second and round-trip percentiles.
//!
//! ```text
//! cargo run --release -p tibet-iot --example loadgen -- [--seq N] [--count N] [--window W] [--python]
//! ```
//!
//! The node under test is an [`IoTNode`] on 127.0.0.1 (audit off, JSON),
//! driven by a tokio runtime with one worker thread; the client is a plain
//! blocking socket on its own thread. Packets are pre-built (unique packet
//! ids and nonces) so the client measures the node, not packet building.
//! Sequential: one ping in flight, RTT percentiles. Concurrent: `W` pings in
//! flight, answered pings per second. `--python` runs the same load against
//! a Python `tibet_ping.transport.IoTNode` listener for comparison.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot::{IoTNode, TransportConfig};
use tibet_ping::{AirlockZone, Frame, PacketCodec, PingNode, PingNodeConfig, Timestamp};

const CLIENT_DID: &str = "jis:bench:client";
const NODE_DID: &str = "jis:bench:node";

struct Args {
    seq: usize,
    count: usize,
    window: usize,
    python: bool,
}

fn args() -> Args {
    let mut a = Args {
        seq: 20_000,
        count: 400_000,
        window: 128,
        python: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse().ok()).expect("a number");
        match k.as_str() {
            "--seq" => a.seq = num(),
            "--count" => a.count = num(),
            "--window" => a.window = num(),
            "--python" => a.python = true,
            "--bench" => {} // passed by `cargo bench`-style runners
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn packets(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut crafter = PingNode::new(
        CLIENT_DID,
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(seed)),
    );
    let codec = PacketCodec::json();
    (0..n)
        .map(|_| {
            let p = crafter.ping(
                Timestamp::now(),
                NODE_DID,
                "bench.ping",
                "load generator",
                Default::default(),
            );
            codec.encode_packet(&p).expect("encode")
        })
        .collect()
}

fn check_answer(bytes: &[u8]) {
    match PacketCodec::json().decode(bytes) {
        Ok(Frame::Response(r)) => {
            assert_eq!(r.airlock_zone, AirlockZone::Groen, "trusted load is GROEN")
        }
        other => panic!("not a response: {other:?}"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One ping at a time; returns sorted RTTs. The client busy-polls its
/// socket so that its own wake-up latency (a halted vCPU needs an IPI in a
/// VM) is not counted against the node.
fn sequential(sock: &UdpSocket, to: SocketAddr, n: usize, seed: u64) -> Vec<Duration> {
    let pkts = packets(n, seed);
    let mut buf = vec![0u8; 70_000];
    let mut rtts = Vec::with_capacity(n);
    sock.set_nonblocking(true).unwrap();
    for (i, p) in pkts.iter().enumerate() {
        let t0 = Instant::now();
        sock.send_to(p, to).unwrap();
        let len = loop {
            match sock.recv_from(&mut buf) {
                Ok((len, _)) => break Some(len),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if t0.elapsed() > Duration::from_secs(1) {
                        break None;
                    }
                    std::hint::spin_loop();
                }
                Err(e) => panic!("recv: {e}"),
            }
        };
        let Some(len) = len else { continue };
        rtts.push(t0.elapsed());
        if i % 1024 == 0 {
            check_answer(&buf[..len]);
        }
    }
    sock.set_nonblocking(false).unwrap();
    rtts.sort();
    rtts
}

/// `window` pings in flight; returns (answered, elapsed).
fn concurrent(
    sock: &UdpSocket,
    to: SocketAddr,
    n: usize,
    window: usize,
    seed: u64,
) -> (usize, Duration) {
    let pkts = packets(n, seed);
    let mut buf = vec![0u8; 70_000];
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (mut sent, mut answered, mut lost) = (0usize, 0usize, 0usize);
    let t0 = Instant::now();
    while answered + lost < n {
        while sent < n && sent - answered - lost < window {
            sock.send_to(&pkts[sent], to).unwrap();
            sent += 1;
        }
        match sock.recv_from(&mut buf) {
            Ok((len, _)) => {
                if buf[3] & 1 == 1 {
                    answered += 1;
                }
                if answered % 4096 == 0 {
                    check_answer(&buf[..len]);
                }
            }
            // A drop somewhere (socket buffers): count the window as lost.
            Err(_) => lost = sent - answered,
        }
    }
    (answered, t0.elapsed())
}

struct Report {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    rate: f64,
    answered: usize,
    sent: usize,
}

fn client_socket() -> UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    // Room for a full window of answers (the kernel caps it at rmem_max).
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.into()
}

fn run(to: SocketAddr, a: &Args, count: usize, seed: u64) -> Report {
    let sock = client_socket();
    let _ = sequential(&sock, to, a.seq.min(2000), seed); // warm-up
    let rtts = sequential(&sock, to, a.seq, seed + 1);
    let (answered, elapsed) = concurrent(&sock, to, count, a.window, seed + 2);
    Report {
        p50: percentile(&rtts, 0.5),
        p90: percentile(&rtts, 0.9),
        p99: percentile(&rtts, 0.99),
        rate: answered as f64 / elapsed.as_secs_f64(),
        answered,
        sent: count,
    }
}

fn print(name: &str, r: &Report) {
    println!(
        "| {name} | {:.1} | {:.1} | {:.1} | {:.0} | {}/{} |",
        r.p50.as_secs_f64() * 1e6,
        r.p90.as_secs_f64() * 1e6,
        r.p99.as_secs_f64() * 1e6,
        r.rate,
        r.answered,
        r.sent
    );
}

const PY_LISTENER: &str = r#"
import asyncio, sys
from tibet_ping.transport import IoTNode, TransportConfig
async def main():
    node = IoTNode(sys.argv[1], config=TransportConfig(bind_host="127.0.0.1", bind_port=0, broadcast=False),
                   heartbeat_interval=3600, discovery_interval=3600)
    node.set_trust(sys.argv[2], 0.9)
    await node.start()
    print("ready", node.transport._transport.get_extra_info("sockname")[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await node.stop()
asyncio.run(main())
"#;

fn python_listener() -> (Child, SocketAddr) {
    let py = std::env::var("TIBET_PY").unwrap_or_else(|_| "target/pyref/bin/python".into());
    let mut child = Command::new(py)
        .args(["-c", PY_LISTENER, NODE_DID, CLIENT_DID])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python (set TIBET_PY or run scripts/pyref.sh)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("ready <port>");
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let node = IoTNode::new(NODE_DID, TransportConfig::loopback());
    node.set_trust(CLIENT_DID, 0.9);
    let addr = rt.block_on(node.start()).expect("start");
    println!(
        "| node | seq p50 µs | seq p90 µs | seq p99 µs | concurrent pings/s (window {}) | answered |",
        a.window
    );
    println!("|---|---|---|---|---|---|");
    let rust = run(addr, &a, a.count, 1);
    print("tibet-iot (Rust)", &rust);
    let stats = node.stats();
    let send_errors = stats.driver.send_errors;
    let mut counters = HashMap::new();
    counters.insert("pings_answered", stats.engine.pings_answered);
    counters.insert("malformed", stats.engine.malformed);
    counters.insert("send_errors", send_errors);
    rt.block_on(node.stop());
    if a.python {
        let (mut child, py_addr) = python_listener();
        let py_args = Args {
            seq: a.seq.min(5000),
            ..a
        };
        let py = run(py_addr, &py_args, (a.count / 20).max(1000), 100);
        print("tibet-ping 0.3.5 (Python)", &py);
        drop(child.stdin.take());
        let _ = child.wait();
        println!();
        println!(
            "Rust/Python: throughput x{:.1}, sequential p50 x{:.1} faster",
            rust.rate / py.rate,
            py.p50.as_secs_f64() / rust.p50.as_secs_f64()
        );
    }
    println!("node counters: {counters:?}");
}
