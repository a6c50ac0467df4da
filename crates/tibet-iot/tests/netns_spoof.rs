//! Spoofed-source attacks (docs/SECURITY.md, hostile LAN, rows 1 and 9) on
//! real sockets: hosts in network namespaces on one bridge, an attacker that
//! forges IPv4 source addresses through a raw socket (`IPPROTO_RAW`, the
//! IPv4 and UDP headers built here), a real `IoTNode`, and a victim that
//! counts every UDP byte the node sends it (a raw `IPPROTO_UDP` socket).
//!
//! Root only (raw sockets and namespaces); as non-root each test skips with
//! a printed reason, as root a failure to set up fails the test. Addresses
//! are 10.77.x.y inside namespaces made here, deleted on drop. Each host is
//! this test binary re-executed inside its namespace (`spoof_child`),
//! driven line by line over stdin/stdout.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tibet_testkit::NsChild;
use tibet_testkit::netns::{Netns, Switch, netns_available};

/// Put in the purpose of the attacker's mesh pings, to recognise relayed
/// copies at the victim.
const MARK: &str = "SPOOF-MARK-7d1c";

// ---- the children ----------------------------------------------------------

#[test]
#[ignore = "helper: runs only re-executed inside a namespace by the tests below"]
fn spoof_child() {
    let Ok(role) = std::env::var("TIBET_SPOOF_ROLE") else {
        return;
    };
    let mut out = std::io::stdout();
    let say = |out: &mut std::io::Stdout, line: String| {
        writeln!(out, "OUT {line}").unwrap();
        out.flush().unwrap();
    };
    match role.as_str() {
        "node" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(node_main());
        }
        "victim" => {
            let counter = Victim::start();
            say(&mut out, "ready".into());
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                let w: Vec<&str> = line.split_whitespace().collect();
                match w.as_slice() {
                    ["count", from] => {
                        let (bytes, datagrams, marked) = counter.count(from.parse().unwrap());
                        say(&mut out, format!("count {bytes} {datagrams} {marked}"));
                    }
                    ["quit"] => break,
                    _ => say(&mut out, format!("error {line}")),
                }
            }
        }
        "attacker" => {
            let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))
                .expect("raw socket (IPPROTO_RAW)");
            say(&mut out, "ready".into());
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                let w: Vec<&str> = line.split_whitespace().collect();
                match w.as_slice() {
                    // beacons FROM TO N TRANSPORT_PORT
                    ["beacons", from, to, n, port] => {
                        let (from, to): (SocketAddrV4, SocketAddrV4) =
                            (from.parse().unwrap(), to.parse().unwrap());
                        let mut bytes = 0;
                        for i in 0..n.parse::<u64>().unwrap() {
                            let payload =
                                beacon(&format!("jis:fake:b{i}"), i, port.parse().unwrap());
                            bytes += spoof(&raw, from, to, &payload);
                        }
                        say(&mut out, format!("sent {bytes}"));
                    }
                    // mesh FROM|spread TO N DID TARGET
                    ["mesh", from, to, n, did, target] => {
                        let to: SocketAddrV4 = to.parse().unwrap();
                        let mut dev = device(did, 7);
                        let mut bytes = 0;
                        for i in 0..n.parse::<u32>().unwrap() {
                            let from = if *from == "spread" {
                                // 10.77.128.0 and up: on-link for the node,
                                // owned by nobody.
                                SocketAddrV4::new(
                                    Ipv4Addr::new(
                                        10,
                                        77,
                                        128 + (i / 250) as u8,
                                        1 + (i % 250) as u8,
                                    ),
                                    40000,
                                )
                            } else {
                                from.parse().unwrap()
                            };
                            let payload = mesh_ping(&mut dev, target);
                            bytes += spoof(&raw, from, to, &payload);
                        }
                        say(&mut out, format!("sent {bytes}"));
                    }
                    ["quit"] => break,
                    _ => say(&mut out, format!("error {line}")),
                }
            }
        }
        other => panic!("unknown role {other}"),
    }
}

async fn node_main() {
    use tibet_iot::{IoTNode, TransportConfig};
    use tokio::io::AsyncBufReadExt;

    let did = std::env::var("TIBET_SPOOF_DID").unwrap();
    let discovery = std::env::var("TIBET_SPOOF_DISCOVERY").is_ok_and(|v| v == "1");
    let cfg = TransportConfig {
        discovery_enabled: discovery,
        discovery_reply_delay: Duration::from_millis(50),
        heartbeat_interval: Duration::from_millis(500),
        request_timeout: Duration::from_secs(3),
        ..TransportConfig::default()
    };
    let node = IoTNode::new(did, cfg);
    let addr = node.start().await.expect("start in namespace");
    let disc = node
        .discovery_addr()
        .map_or_else(|| "none".to_owned(), |a| a.to_string());
    println!("OUT ready {addr} {disc}");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let Some(answer) = common::node_command(&node, &w, "trusted").await {
            println!("OUT {answer}");
            continue;
        }
        match w.as_slice() {
            // Waits (bounded) until counter KEY is at least N, or it has not
            // moved for a second; prints its value.
            ["wait", key, n] => {
                let n: u64 = n.parse().unwrap();
                let get = || {
                    stats(&node)
                        .into_iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v)
                        .expect("a known counter")
                };
                let (mut last, mut since) = (get(), Instant::now());
                while last < n && since.elapsed() < Duration::from_secs(1) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let now = get();
                    if now != last {
                        (last, since) = (now, Instant::now());
                    }
                }
                println!("OUT {key} {last}");
            }
            ["stats"] => {
                let line: Vec<String> = stats(&node)
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!("OUT stats {}", line.join(" "));
            }
            ["quit"] => break,
            _ => println!("OUT error unknown command {line}"),
        }
    }
    node.stop().await;
}

/// The node's counters this test looks at.
fn stats(node: &tibet_iot::IoTNode) -> Vec<(&'static str, u64)> {
    let s = node.stats();
    let c = node.with_engine(|e| e.config().clone());
    vec![
        ("datagrams_in", s.engine.datagrams_in),
        ("peers", node.peers().len() as u64),
        ("beacons_received", s.discovery.beacons_received),
        ("beacons_rate_limited", s.engine.beacons_rate_limited),
        ("unproven_skipped", s.engine.relay_unproven_skipped),
        ("relayed", s.relay.relayed),
        (
            "challenges",
            s.engine.challenges_sent + s.engine.challenges_refused,
        ),
        ("challenges_refused", s.engine.challenges_refused),
        ("rate_limited", s.engine.relay_rate_limited),
        ("refused_rood", s.engine.relay_refused_rood),
        ("path_entries", s.relay.path_entries as u64),
        ("path_limit", c.limits.relay_paths as u64),
        ("relay_burst", c.guard.relay_burst as u64),
        ("relay_rate", c.guard.relay_rate.ceil() as u64),
    ]
}

/// A device (the attacker's invention) that makes packets.
fn device(did: &str, seed: u64) -> tibet_ping::PingNode {
    use rand::SeedableRng;
    tibet_ping::PingNode::new(
        did,
        tibet_ping::PingNodeConfig::default(),
        Box::new(rand::rngs::StdRng::seed_from_u64(seed)),
    )
}

/// A discovery beacon frame from `did` naming `port` as its transport port.
fn beacon(did: &str, seed: u64, port: u16) -> Vec<u8> {
    let mut dev = device(did, seed);
    let mut p = dev.discover(
        tibet_ping::Timestamp::now(),
        &tibet_ping::Announcement {
            device_type: Some("sensor".into()),
            ..Default::default()
        },
    );
    p.payload
        .insert(tibet_iot::TRANSPORT_PORT_KEY.to_owned(), port.into());
    tibet_iot::PacketCodec::json().encode_packet(&p).unwrap()
}

/// A mesh ping frame from `dev` for `target`, marked with [`MARK`].
fn mesh_ping(dev: &mut tibet_ping::PingNode, target: &str) -> Vec<u8> {
    let p = dev.ping(
        tibet_ping::Timestamp::now(),
        target,
        "x",
        MARK,
        tibet_ping::PingOptions {
            routing_mode: tibet_ping::RoutingMode::Mesh,
            ..Default::default()
        },
    );
    tibet_iot::PacketCodec::json().encode_packet(&p).unwrap()
}

/// Sends `payload` as one UDP datagram from `from` (forged) to `to`;
/// returns the UDP payload bytes sent.
fn spoof(raw: &Socket, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) -> u64 {
    let packet = ipv4_udp(from, to, payload);
    let dest = SockAddr::from(SocketAddrV4::new(*to.ip(), 0));
    let sent = raw.send_to(&packet, &dest).expect("raw send");
    assert_eq!(sent, packet.len());
    payload.len() as u64
}

/// An IPv4 header (no options, TTL 64, protocol UDP, checksum filled in)
/// and a UDP header (checksum 0: none, allowed over IPv4) around `payload`.
fn ipv4_udp(from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = u16::try_from(8 + payload.len()).expect("fits a datagram");
    let total = 20 + udp_len;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0]); // id 0 (kernel fills it), DF
    p.extend_from_slice(&[64, 17, 0, 0]); // TTL, UDP, checksum below
    p.extend_from_slice(&from.ip().octets());
    p.extend_from_slice(&to.ip().octets());
    let mut sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(&from.port().to_be_bytes());
    p.extend_from_slice(&to.port().to_be_bytes());
    p.extend_from_slice(&udp_len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Per source address: UDP payload bytes, datagrams, datagrams with [`MARK`].
type Counts = std::collections::HashMap<Ipv4Addr, (u64, u64, u64)>;

/// The victim's counter: every UDP datagram that reaches its namespace, by
/// source address (bytes of UDP payload, datagrams, datagrams carrying
/// [`MARK`]). Sockets on 7150 and 7151 are bound, so nothing bounces.
struct Victim {
    counts: Arc<Mutex<Counts>>,
    _ports: Vec<std::net::UdpSocket>,
}

impl Victim {
    fn start() -> Victim {
        let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))
            .expect("raw socket (IPPROTO_UDP)");
        let ports = [7150, 7151]
            .iter()
            .map(|p| std::net::UdpSocket::bind(("0.0.0.0", *p)).expect("bind victim port"))
            .collect();
        let counts = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let c = counts.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            let mut raw = raw;
            while let Ok(n) = raw.read(&mut buf) {
                let p = &buf[..n];
                if n < 28 || p[9] != 17 {
                    continue;
                }
                let ihl = usize::from(p[0] & 0x0f) * 4;
                let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
                if Ipv4Addr::new(p[16], p[17], p[18], p[19]).is_multicast() {
                    continue; // the group's traffic, not sent to the victim
                }
                let payload = &p[(ihl + 8).min(n)..];
                let marked = payload.windows(MARK.len()).any(|w| w == MARK.as_bytes());
                let mut m = c.lock().unwrap();
                let e = m.entry(src).or_insert((0, 0, 0));
                e.0 += payload.len() as u64;
                e.1 += 1;
                e.2 += u64::from(marked);
            }
        });
        Victim {
            counts,
            _ports: ports,
        }
    }

    fn count(&self, from: Ipv4Addr) -> (u64, u64, u64) {
        self.counts
            .lock()
            .unwrap()
            .get(&from)
            .copied()
            .unwrap_or_default()
    }
}

// ---- the parent side ---------------------------------------------------------

/// A child process in a namespace, one `OUT` line per command.
struct Proc {
    child: NsChild,
    ready: Vec<String>,
}

impl Proc {
    fn spawn(ns: &Netns, role: &str, env: &[(&str, &str)]) -> Proc {
        let mut all = vec![("TIBET_SPOOF_ROLE", role)];
        all.extend_from_slice(env);
        let mut p = Proc {
            child: NsChild::spawn(ns, "spoof_child", "OUT ", &all),
            ready: Vec::new(),
        };
        p.ready = p.next("ready");
        p
    }

    /// The next answer, which must start with `word`.
    fn next(&mut self, word: &str) -> Vec<String> {
        let words = self.child.next(word, Duration::from_secs(60));
        assert_eq!(words.first().map(String::as_str), Some(word), "{words:?}");
        words
    }

    fn cmd(&mut self, line: &str, word: &str) -> Vec<String> {
        self.child.send(line);
        self.next(word)
    }

    fn node(ns: &Netns, did: &str, discovery: bool) -> Proc {
        Proc::spawn(
            ns,
            "node",
            &[
                ("TIBET_SPOOF_DID", did),
                ("TIBET_SPOOF_DISCOVERY", if discovery { "1" } else { "0" }),
            ],
        )
    }

    /// `stats` as `key -> value`.
    fn stats(&mut self) -> std::collections::HashMap<String, u64> {
        self.cmd("stats", "stats")[1..]
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect()
    }
}

/// A bridge with one host per name, at 10.77.`net`.(1..) /16 (so addresses
/// in 10.77.128.0/17 are on-link and owned by nobody).
fn lan(net: u8, names: &[&str]) -> (Switch, Vec<Netns>) {
    let mut sw = Switch::new().unwrap();
    let hosts: Vec<Netns> = names.iter().map(|n| Netns::new(n).unwrap()).collect();
    for (i, h) in hosts.iter().enumerate() {
        sw.plug(h, "eth0", &format!("10.77.{net}.{}/16", i + 1))
            .unwrap();
        h.multicast_route("eth0").unwrap();
    }
    (sw, hosts)
}

fn addr(net: u8, host: u8, port: u16) -> String {
    SocketAddr::from(([10, 77, net, host], port)).to_string()
}

// Row 1: beacons with the victim's source address introduce peers at the
// victim; a mesh ping to an unknown target would then go to each of them.
#[test]
fn row1_spoofed_beacons_on_real_sockets_give_the_victim_at_most_twice_their_bytes() {
    if !netns_available() {
        return;
    }
    const NET: u8 = 61;
    let (_sw, h) = lan(NET, &["node", "victim", "attack", "friend"]);
    let mut node = Proc::node(&h[0], "jis:sp:node", true);
    assert_ne!(node.ready[2], "none", "the discovery socket is up");
    let victim = Proc::spawn(&h[1], "victim", &[]);
    let mut victim = victim;
    let mut attacker = Proc::spawn(&h[2], "attacker", &[]);
    let mut friend = Proc::node(&h[3], "jis:sp:friend", false);
    node.cmd("trust jis:sp:friend 0.9", "ok");
    node.cmd("trust jis:evil:a 0.5", "ok");

    // 256 beacons "from" the victim's discovery port, to the node's.
    let before = node.stats();
    let sent = attacker.cmd(
        &format!(
            "beacons {} {} 256 7150",
            addr(NET, 2, 7151),
            addr(NET, 1, 7151)
        ),
        "sent",
    );
    let beacon_bytes: u64 = sent[1].parse().unwrap();
    let want = before["datagrams_in"] + 256;
    let heard = node.cmd(&format!("wait datagrams_in {want}"), "datagrams_in");
    assert!(
        heard[1].parse::<u64>().unwrap() >= want,
        "the forged beacons reached the node: {heard:?}"
    );
    let s = node.stats();
    assert!(
        s["beacons_received"] + s["beacons_rate_limited"]
            >= before["beacons_received"] + before["beacons_rate_limited"] + 256,
        "every forged beacon was heard or refused by the address bucket: {s:?}"
    );
    let s = node.stats();
    let introduced = s["peers"];
    assert!(introduced >= 1, "beacons may introduce peers: {s:?}");

    // One small mesh ping (from the attacker's own address, GEEL there) to
    // a DID nobody has: a candidate for relay to every peer.
    attacker.cmd(
        &format!(
            "mesh {} {} 1 jis:evil:a jis:nobody",
            addr(NET, 3, 40000),
            addr(NET, 1, 7150)
        ),
        "sent",
    );
    node.cmd(
        &format!("wait unproven_skipped {}", s["unproven_skipped"] + 1),
        "unproven_skipped",
    );
    // Let the heartbeat loop challenge the introduced peers (at the
    // victim's address) for several rounds.
    let want = s["challenges"] + 4 * introduced;
    let waited = node.cmd(&format!("wait challenges {want}"), "challenges");
    assert!(waited[1].parse::<u64>().unwrap() >= want, "{waited:?}");
    let s = node.stats();
    assert!(
        s["unproven_skipped"] >= 1,
        "the relay skipped the unproven peers: {s:?}"
    );
    // (`relayed` counts the reverse path taken, not copies; the victim's
    // count below shows whether a copy went out.)

    // A trusted ping is still answered.
    assert_eq!(
        friend.cmd(
            &format!("ping jis:sp:node {} direct", addr(NET, 1, 7150)),
            "resp"
        ),
        ["resp", "GROEN", "jis:sp:node"]
    );

    let got = victim.cmd(&format!("count 10.77.{NET}.1"), "count");
    let (bytes, datagrams, marked): (u64, u64, u64) = (
        got[1].parse().unwrap(),
        got[2].parse().unwrap(),
        got[3].parse().unwrap(),
    );
    eprintln!(
        "row 1 on real sockets: {beacon_bytes} forged beacon bytes, {introduced} peers \
         introduced, victim got {bytes} bytes in {datagrams} datagrams ({marked} relayed)"
    );
    assert_eq!(
        marked, 0,
        "no relayed copy of the mesh ping reached the victim"
    );
    assert!(
        bytes <= 2 * beacon_bytes,
        "the victim got {bytes} bytes for {beacon_bytes} forged in its name"
    );
}

// Row 9: tiny untrusted mesh datagrams from 10,000 forged source addresses
// try to fill the reverse-path table; a trusted mesh ping still gets
// through and is answered.
#[test]
fn row9_mesh_floods_from_forged_sources_never_fill_the_reverse_path_table() {
    if !netns_available() {
        return;
    }
    const NET: u8 = 62;
    let (_sw, h) = lan(NET, &["node", "far", "attack", "friend"]);
    let mut node = Proc::node(&h[0], "jis:sp:node", false);
    let mut far = Proc::node(&h[1], "jis:sp:far", false);
    let mut attacker = Proc::spawn(&h[2], "attacker", &[]);
    let mut friend = Proc::node(&h[3], "jis:sp:friend", false);
    node.cmd(&format!("peer jis:sp:far {}", addr(NET, 2, 7150)), "ok");
    node.cmd("trust jis:sp:friend 0.9", "ok");
    node.cmd("trust jis:geel:m 0.5", "ok");
    far.cmd("trust jis:sp:friend 0.9", "ok");
    // Before: the trusted mesh ping goes through the node to `far`.
    assert_eq!(
        friend.cmd(
            &format!("ping jis:sp:far {} mesh", addr(NET, 1, 7150)),
            "resp"
        ),
        ["resp", "GROEN", "jis:sp:far"]
    );

    let start = Instant::now();
    let sent = attacker.cmd(
        &format!(
            "mesh spread {} 10000 jis:geel:m jis:sp:nowhere",
            addr(NET, 1, 7150)
        ),
        "sent",
    );
    assert!(sent[1].parse::<u64>().unwrap() > 0);
    let arrived: u64 = node.cmd("wait datagrams_in 10000", "datagrams_in")[1]
        .parse()
        .unwrap();
    let s = node.stats();
    eprintln!("row 9 on real sockets: {arrived} datagrams in, {s:?}");
    assert!(arrived >= 5_000, "the flood reached the node: {arrived}");
    // One claimed DID: its bucket's burst plus its rate over the attack,
    // plus the trusted ping's path; far below the table's limit.
    let secs = start.elapsed().as_secs() + 1;
    let bound = s["relay_burst"] + s["relay_rate"] * secs + 1;
    assert!(
        s["path_entries"] <= bound && s["path_entries"] < s["path_limit"],
        "reverse paths bounded by the DID's bucket ({bound}): {s:?}"
    );
    assert!(
        s["rate_limited"] > 0,
        "the per-address buckets refused: {s:?}"
    );

    // After: a trusted mesh ping is still relayed and answered.
    assert_eq!(
        friend.cmd(
            &format!("ping jis:sp:far {} mesh", addr(NET, 1, 7150)),
            "resp"
        ),
        ["resp", "GROEN", "jis:sp:far"]
    );
}
