//! Verification under flood (not a test): a listener on loopback pins two
//! DIDs. One pinned peer pings it 200 times a second; after a second, from
//! the same IP address (127.0.0.1, other ports: two processes behind one
//! NAT), an attacker sends packets claiming the other pinned DID, validly
//! signed by another key (40,000/s by default), and packets with random
//! signatures (150,000/s). Prints the share of the peer's pings answered
//! during the flood, their p50 and p99 round trip, and the listener's
//! signature checks. The figures go in docs/SECURITY.md.
//!
//! ```sh
//! cargo run --release -p tibet-iot --example verify_flood -- --seconds 10
//! cargo run --release -p tibet-iot --example verify_flood -- --budget off   # as before the budget
//! ```

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tibet_iot::{IdentityConfig, IoTNode, TransportConfig};
use tibet_iot_proto::GuardConfig;
use tibet_ping::identity::{IdentityMode, Keypair, PinStore};
use tibet_ping::{PacketCodec, PingNode, PingNodeConfig, PingOptions, Timestamp};

const HUB: &str = "jis:flood:hub";
const LOCK: &str = "jis:flood:lock";
const PHONE: &str = "jis:flood:phone";

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn key(i: u8) -> Keypair {
    Keypair::from_seed(&[i; 32])
}

fn speaker(did: &str, signer: Keypair, seed: u64) -> PingNode {
    let mut node = PingNode::new(
        did,
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(seed)),
    );
    node.set_signer(Box::new(signer));
    node
}

/// Sends `datagrams` round-robin to `target` at about `rate` per second
/// until `stop`; returns how many it sent.
fn flood(
    target: SocketAddr,
    rate: u64,
    datagrams: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind attacker");
        let per_ms = (rate / 1000).max(1);
        let (mut i, mut sent) = (0usize, 0u64);
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            // Paced against the clock, so a slow loop catches up, by at
            // most 10 ms of traffic at a time.
            let due = start.elapsed().as_millis() as u64 * per_ms;
            for _ in 0..due.saturating_sub(sent).min(10 * per_ms) {
                let _ = sock.send_to(&datagrams[i % datagrams.len()], target);
                i += 1;
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        sent
    })
}

fn main() {
    // The clock of the run is kept on this thread, outside the runtime that
    // drives the listener, so a starved listener cannot stall the report.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let seconds: u64 = arg("--seconds", "10").parse().expect("--seconds N");
    let forged_rate: u64 = arg("--forged-rate", "40000")
        .parse()
        .expect("--forged-rate N");
    let random_rate: u64 = arg("--random-rate", "150000")
        .parse()
        .expect("--random-rate N");
    let budget = arg("--budget", "on") != "off";

    let mut pins = PinStore::new(16);
    pins.set(LOCK, key(1).public()).unwrap();
    pins.set(PHONE, key(2).public()).unwrap();
    let mut guard = GuardConfig::default();
    if !budget {
        (guard.verify_burst, guard.verify_rate) = (1e12, 1e12);
        (guard.verify_total_burst, guard.verify_total_rate) = (1e12, 1e12);
    }
    let config = TransportConfig {
        identity: IdentityConfig {
            mode: IdentityMode::Prefer,
            key: Some(key(100)),
            pins,
            ..IdentityConfig::default()
        },
        guard,
        ..TransportConfig::loopback()
    };
    let node = IoTNode::with_seed(HUB, config, 1);
    node.set_trust(LOCK, 0.9);
    node.set_trust(PHONE, 0.9);
    let target = rt.block_on(node.start()).expect("start listener");
    println!(
        "listener {target}; budget {}; flood {forged_rate}/s other-key + {random_rate}/s random signatures for {seconds} s",
        if budget { "on" } else { "off" }
    );

    let codec = PacketCodec::json();
    let mut forger = speaker(LOCK, key(66), 2);
    let forged = vec![
        codec
            .encode_packet(&forger.ping(
                Timestamp::now(),
                HUB,
                "door.unlock",
                "x",
                PingOptions::default(),
            ))
            .unwrap(),
    ];
    let mut rng = StdRng::seed_from_u64(3);
    let random: Vec<Vec<u8>> = (0..1024)
        .map(|_| {
            let mut p = forger.ping(
                Timestamp::now(),
                HUB,
                "door.unlock",
                "x",
                PingOptions::default(),
            );
            let mut sig = [0u8; 64];
            rng.fill_bytes(&mut sig);
            p.signature = base64::engine::general_purpose::STANDARD.encode(sig);
            codec.encode_packet(&p).unwrap()
        })
        .collect();

    // The pinned peer: one ping every 5 ms, each waiting up to 250 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = Arc::new(AtomicBool::new(false));
    let peer = {
        let (stop, flooding) = (stop.clone(), flooding.clone());
        std::thread::spawn(move || {
            let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind peer");
            sock.set_read_timeout(Some(Duration::from_millis(250)))
                .unwrap();
            let mut me = speaker(PHONE, key(2), 4);
            let codec = PacketCodec::json();
            let mut buf = [0u8; 4096];
            let (mut sent, mut rtts) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let p = me.ping(
                    Timestamp::now(),
                    HUB,
                    "temperature.read",
                    "x",
                    PingOptions::default(),
                );
                let bytes = codec.encode_packet(&p).unwrap();
                let during = flooding.load(Ordering::Relaxed);
                let t0 = Instant::now();
                sock.send_to(&bytes, target).unwrap();
                if during {
                    sent += 1;
                }
                if sock.recv_from(&mut buf).is_ok() && during {
                    rtts.push(t0.elapsed());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (sent, rtts)
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    flooding.store(true, Ordering::Relaxed);
    let flood_stop = Arc::new(AtomicBool::new(false));
    let attackers = [
        flood(target, forged_rate, forged, flood_stop.clone()),
        flood(target, random_rate, random, flood_stop.clone()),
    ];
    let cpu0 = cpu_seconds();
    std::thread::sleep(Duration::from_secs(seconds));
    flooding.store(false, Ordering::Relaxed);
    flood_stop.store(true, Ordering::Relaxed);
    let offered: u64 = attackers.into_iter().map(|t| t.join().unwrap()).sum();
    let cpu = cpu_seconds() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let (sent, mut rtts) = peer.join().unwrap();
    rtts.sort();
    let pct = |q: f64| {
        rtts.get(((rtts.len() as f64 - 1.0) * q).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    let stats = node.stats();
    rt.block_on(node.stop());
    let id = &stats.identity;
    println!(
        "attack: {offered} datagrams in {seconds} s ({:.0}/s)",
        offered as f64 / seconds as f64
    );
    println!(
        "pinned peer: {}/{sent} answered during the flood ({:.1} %), p50 {:.2} ms, p99 {:.2} ms",
        rtts.len(),
        100.0 * rtts.len() as f64 / sent.max(1) as f64,
        pct(0.5),
        pct(0.99)
    );
    println!(
        "listener: {} signatures checked ({} verified, {} refused), {} dropped unchecked over budget, datagrams in {}",
        id.verified + id.bad_signature + id.wrong_key,
        id.verified,
        id.bad_signature + id.wrong_key,
        id.over_verify_budget,
        stats.engine.datagrams_in
    );
    println!("process CPU during the flood: {cpu:.2} s (attackers, peer and listener)");
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
