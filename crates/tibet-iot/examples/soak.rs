//! Soak under attack (not a test): a listener on loopback, with an audit
//! file, takes mixed attack traffic for `--seconds` (60 by default) while a
//! trusted neighbour pings it; then prints peak RSS, the amplification
//! factor (bytes the attackers' addresses received per byte they sent),
//! trusted-ping loss, the audit file's size and the node's refusal
//! counters. The figures go in docs/SECURITY.md.
//!
//! ```sh
//! cargo run --release -p tibet-iot --example soak -- --seconds 60
//! ```
//!
//! Attackers, each from its own loopback address (127.0.0.10 and up):
//! unknown-DID pings with unique nonces (ROOD), one datagram re-sent
//! (replays), GEEL pings with unique nonces (answered, within the credit),
//! 60 KB mesh pings to unknown targets (relay candidates) with 256 peers
//! introduced by beacons, invented beacons, and garbage bytes. Peak RSS is
//! the process's (listener and load generators share it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot::{IoTNode, TransportConfig};
use tibet_ping::{
    Announcement, Frame, JsonMap, PacketCodec, PingNode, PingNodeConfig, PingOptions, RoutingMode,
    Timestamp,
};

const NODE: &str = "jis:soak:node";
const FRIEND: &str = "jis:soak:friend";
const GEEL: &str = "jis:soak:geel";

struct Totals {
    sent: AtomicU64,
    received: AtomicU64,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn device(did: &str, seed: u64) -> PingNode {
    PingNode::new(
        did,
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(seed)),
    )
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One attacker: binds 127.0.0.`n`, sends what `make` returns at about
/// `rate` datagrams per second until `stop`, and counts what comes back.
fn attacker(
    n: u8,
    target: SocketAddr,
    rate: u64,
    stop: Arc<AtomicBool>,
    totals: Arc<Totals>,
    mut make: impl FnMut(u64) -> Vec<u8> + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let sock = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, n), 0)).expect("bind attacker");
        sock.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 70_000];
        let per_ms = (rate / 1000).max(1);
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..per_ms {
                let d = make(i);
                i += 1;
                if sock.send_to(&d, target).is_ok() {
                    totals.sent.fetch_add(d.len() as u64, Ordering::Relaxed);
                }
            }
            while let Ok((len, _)) = sock.recv_from(&mut buf) {
                totals.received.fetch_add(len as u64, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(200));
        while let Ok((len, _)) = sock.recv_from(&mut buf) {
            totals.received.fetch_add(len as u64, Ordering::Relaxed);
        }
    })
}

#[tokio::main]
async fn main() {
    let seconds = arg("--seconds", 60);
    let rate = arg("--rate", 5_000);
    let audit_path = std::env::temp_dir().join(format!("tibet-soak-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&audit_path);

    let config = TransportConfig::loopback();
    let node = IoTNode::with_seed(NODE, config, 1);
    node.set_trust(FRIEND, 0.9);
    node.set_trust(GEEL, 0.5);
    let store = tibet_core::FileStore::open(&audit_path).expect("audit file");
    let provider = tibet_core::Provider::new(NODE).with_store(store);
    node.set_audit(Some(Box::new(tibet_core::NetworkBridge::new(provider))));
    let target = node.start().await.expect("start listener");
    println!("listener {target}, {seconds} s, {rate} datagrams/s per attacker");

    let codec = PacketCodec::json();
    let wall = Timestamp::now;
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Totals {
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
    });
    let mut threads = Vec::new();

    // Unknown DID, unique nonces: ROOD.
    let mut rood = device("jis:soak:unknown", 2);
    threads.push(attacker(
        10,
        target,
        rate,
        stop.clone(),
        totals.clone(),
        move |_| {
            let p = rood.ping(wall(), NODE, "x", "y", PingOptions::default());
            codec.encode_packet(&p).unwrap()
        },
    ));
    // One datagram re-sent: replays (and cached answers for the first).
    let mut rep = device(GEEL, 3);
    let once = codec
        .encode_packet(&rep.ping(wall(), NODE, "x", "y", PingOptions::default()))
        .unwrap();
    threads.push(attacker(
        11,
        target,
        rate,
        stop.clone(),
        totals.clone(),
        move |_| once.clone(),
    ));
    // GEEL pings, unique nonces: answered pending, within credit and buckets.
    let mut geel = device(GEEL, 4);
    threads.push(attacker(
        12,
        target,
        rate,
        stop.clone(),
        totals.clone(),
        move |_| {
            let p = geel.ping(wall(), NODE, "x", "y", PingOptions::default());
            codec.encode_packet(&p).unwrap()
        },
    ));
    // Invented beacons (to the transport socket), then 60 KB mesh pings.
    let mut beacons: Vec<Vec<u8>> = (0..256)
        .map(|i| {
            let mut d = device(&format!("jis:soak:fake{i}"), 100 + i);
            let mut p = d.discover(wall(), &Announcement::default());
            p.payload.insert(
                tibet_iot::TRANSPORT_PORT_KEY.to_owned(),
                (7000 + i as u16).into(),
            );
            codec.encode_packet(&p).unwrap()
        })
        .collect();
    let mut mesh = device(GEEL, 5);
    let mut blob = JsonMap::new();
    blob.insert("blob".into(), "x".repeat(60_000).into());
    threads.push(attacker(
        13,
        target,
        rate / 50,
        stop.clone(),
        totals.clone(),
        move |i| {
            if let Some(b) = beacons.pop() {
                return b;
            }
            let p = mesh.ping(
                wall(),
                &format!("jis:soak:nowhere{i}"),
                "x",
                "y",
                PingOptions {
                    routing_mode: RoutingMode::Mesh,
                    payload: blob.clone(),
                    ..PingOptions::default()
                },
            );
            codec.encode_packet(&p).unwrap()
        },
    ));
    // Garbage.
    threads.push(attacker(
        14,
        target,
        rate,
        stop.clone(),
        totals.clone(),
        move |i| {
            let mut g = b"TIBE\x01garbage".to_vec();
            g.extend_from_slice(&i.to_le_bytes());
            g
        },
    ));

    // The trusted neighbour: 50 pings a second, each awaited up to 1 s.
    let friend_sock = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).unwrap();
    friend_sock
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut friend = device(FRIEND, 6);
    let (mut asked, mut answered) = (0u64, 0u64);
    let mut rtt_max = Duration::ZERO;
    let mut buf = vec![0u8; 70_000];
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let p = friend.ping(wall(), NODE, "read", "status", PingOptions::default());
        let sent_at = Instant::now();
        friend_sock
            .send_to(&codec.encode_packet(&p).unwrap(), target)
            .unwrap();
        asked += 1;
        let deadline = sent_at + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Ok((n, _)) = friend_sock.recv_from(&mut buf)
                && let Ok(Frame::Response(r)) = codec.decode(&buf[..n])
                && r.in_response_to == p.packet_id
            {
                answered += 1;
                rtt_max = rtt_max.max(sent_at.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    node.flush_audit().await;
    let stats = node.stats();
    node.stop().await;

    let sent = totals.sent.load(Ordering::Relaxed);
    let received = totals.received.load(Ordering::Relaxed);
    let audit_bytes = std::fs::metadata(&audit_path).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(&audit_path);
    let _ = IpAddr::V4(Ipv4Addr::LOCALHOST);
    println!(
        "peak RSS (VmHWM, whole process): {} MiB",
        vm_hwm_kib() / 1024
    );
    println!(
        "attack: {:.1} MB sent, {:.1} MB came back: amplification factor {:.3}",
        sent as f64 / 1e6,
        received as f64 / 1e6,
        received as f64 / sent.max(1) as f64
    );
    println!(
        "trusted pings: {answered}/{asked} answered, loss {:.2} %, slowest {:.1} ms",
        100.0 * (asked - answered) as f64 / asked.max(1) as f64,
        rtt_max.as_secs_f64() * 1e3
    );
    println!("audit file: {:.1} KB", audit_bytes as f64 / 1e3);
    let e = &stats.engine;
    println!(
        "engine: in {} out {} malformed {} rood {} replays {} answered {} relay_rood {} relay_limited {} beacons_limited {} audit_limited {} challenges {}/{} refused",
        e.datagrams_in,
        e.datagrams_out,
        e.malformed,
        e.rood_dropped,
        e.replays_dropped,
        e.pings_answered,
        e.relay_refused_rood,
        e.relay_rate_limited,
        e.beacons_rate_limited,
        e.audit_rate_limited,
        e.challenges_sent,
        e.challenges_refused
    );
    println!(
        "guard: refused {} datagrams / {} bytes; driver: send queue dropped {}, audit dropped {}, audit failures {}; peers {}",
        stats.guard.refused_datagrams,
        stats.guard.refused_bytes,
        stats.driver.send_queue_dropped,
        stats.driver.audit_dropped,
        stats.driver.audit_failures,
        stats.peers.tracked
    );
}
