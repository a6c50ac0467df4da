//! IPv6 on real sockets, in network namespaces with IPv6 only (no IPv4
//! address but loopback's), except where a test says otherwise: discovery
//! over the link-local group, a mesh relay, a dual-stack hub, and a flood
//! from one /64 (docs/SECURITY.md, per-source limits).
//!
//! Root only (namespaces, `IPV6_FREEBIND`); as non-root each test skips
//! with a printed reason, as root a failure to set up fails the test.
//! Addresses are `fd00:77::/32` (and 10.77.x.y for the dual-stack hub)
//! inside namespaces made here, deleted on drop. Each host is this test
//! binary re-executed inside its namespace (`ipv6_child`), driven line by
//! line over stdin/stdout.

mod common;

use std::io::BufRead;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tibet_testkit::NsChild;
use tibet_testkit::netns::{Netns, Switch, netns_available, veth};

// ---- the children ----------------------------------------------------------

#[test]
#[ignore = "helper: runs only re-executed inside a namespace by the tests below"]
fn ipv6_child() {
    let Ok(did) = std::env::var("TIBET_V6_DID") else {
        return;
    };
    if did == "flood" {
        flood_main();
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(node_main(did));
}

async fn node_main(did: String) {
    use tibet_iot::{Event, IoTNode, TransportConfig};
    use tokio::io::AsyncBufReadExt;

    let env = |k: &str| std::env::var(k).ok();
    let discovery = env("TIBET_V6_DISCOVERY").is_some();
    let cfg = TransportConfig {
        bind_host: env("TIBET_V6_BIND").map_or(Ipv6Addr::UNSPECIFIED.into(), |b| {
            b.parse().expect("bind address")
        }),
        discovery_enabled: discovery,
        multicast_ifindex: if discovery {
            tibet_iot::interface_index("eth0").expect("eth0")
        } else {
            0
        },
        discovery_reply_delay: Duration::from_millis(100),
        request_timeout: Duration::from_secs(3),
        identity: common::child_identity(),
        ..TransportConfig::default()
    };
    let node = IoTNode::new(did, cfg);
    let mut events = node.subscribe();
    let addr = node.start().await.expect("start in namespace");
    println!("NODE ready {addr}");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let Some(answer) = common::node_command(&node, &w, "over ipv6").await {
            println!("NODE {answer}");
            continue;
        }
        match w.as_slice() {
            ["discovered", want] => {
                let mut found = node.peers().into_iter().any(|p| p.did == *want);
                while !found {
                    match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                        Ok(Ok(Event::PeerDiscovered { did, .. })) => found = did == *want,
                        Ok(Ok(_)) | Ok(Err(_)) => {}
                        Err(_) => break,
                    }
                }
                let at = node.peers().into_iter().find(|p| p.did == *want);
                match at {
                    Some(p) => println!("NODE discovered {want} {}", p.address),
                    None => println!("NODE discovered {want} none"),
                }
            }
            // A ping to the address a peer was discovered at (a link-local
            // one carries its scope id, which no command line spells).
            ["ping_peer", d] => {
                let Some(p) = node.peers().into_iter().find(|p| p.did == *d) else {
                    println!("NODE resp unknown");
                    continue;
                };
                let opts = tibet_iot::SendOptions::default();
                match node
                    .send_ping(d, p.address, "netns.v6", "found", opts)
                    .await
                {
                    Ok(Some(r)) => println!("NODE resp {} {}", r.airlock_zone, r.responder_did),
                    Ok(None) => println!("NODE resp none"),
                    Err(e) => println!("NODE resp error {e}"),
                }
            }
            ["peers"] => {
                let mut all: Vec<String> = node
                    .peers()
                    .into_iter()
                    .map(|p| format!("{}={}", p.did, p.address))
                    .collect();
                all.sort();
                println!("NODE peers {}", all.join(" "));
            }
            ["beacons"] => {
                let g = node.stats().guard;
                println!(
                    "NODE beacons {} {} {}",
                    g.beacons.allowed, g.beacon_prefixes.allowed, g.beacon_prefixes.refused
                );
            }
            ["quit"] => break,
            _ => println!("NODE error unknown command {line}"),
        }
    }
    node.stop().await;
}

/// The attacker: `flood TARGET PREFIX SECONDS` sends discovery beacons of
/// fresh DIDs to TARGET, each from the next address of PREFIX (a /64,
/// through `IPV6_FREEBIND`: none of them is configured), for SECONDS;
/// answers `flooded DATAGRAMS ADDRESSES`.
fn flood_main() {
    use socket2::{Domain, Protocol, Socket, Type};
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let ["flood", target, prefix, secs] = w.as_slice() else {
            break;
        };
        let target: SocketAddr = target.parse().unwrap();
        let prefix = u128::from(prefix.parse::<Ipv6Addr>().unwrap());
        let until = Instant::now() + Duration::from_secs(secs.parse().unwrap());
        let (mut sent, mut host) = (0u64, 0u64);
        let addresses = 5000;
        while Instant::now() < until {
            host = host % addresses + 1;
            let from = Ipv6Addr::from(prefix | 0x1000 | u128::from(host));
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
            s.set_freebind_ipv6(true).expect("IPV6_FREEBIND");
            s.bind(&SocketAddr::from((from, 7150)).into())
                .expect("bind a forged source");
            let frame = beacon(&format!("jis:flood:{host}"), host);
            if s.send_to(&frame, &target.into()).is_ok() {
                sent += 1;
            }
            if sent % 64 == 0 {
                // Fair to the node's one core in the test: a flood, not a
                // stall of the whole machine.
                std::thread::yield_now();
            }
        }
        println!("NODE flooded {sent} {}", sent.min(addresses));
    }
}

/// A discovery beacon frame from `did` naming 7150 as its transport port.
fn beacon(did: &str, seed: u64) -> Vec<u8> {
    use rand::SeedableRng;
    let mut dev = tibet_ping::PingNode::new(
        did,
        tibet_ping::PingNodeConfig::default(),
        Box::new(rand::rngs::StdRng::seed_from_u64(seed)),
    );
    let mut p = dev.discover(
        tibet_ping::Timestamp::now(),
        &tibet_ping::Announcement {
            device_type: Some("sensor".into()),
            ..Default::default()
        },
    );
    p.payload
        .insert(tibet_iot::TRANSPORT_PORT_KEY.to_owned(), 7150.into());
    tibet_iot::PacketCodec::json().encode_packet(&p).unwrap()
}

// ---- the parent side ---------------------------------------------------------

struct Host {
    child: NsChild,
}

impl Host {
    fn spawn(ns: &Netns, did: &str, env: &[(&str, &str)]) -> Host {
        let mut all = vec![("TIBET_V6_DID", did)];
        all.extend_from_slice(env);
        let mut host = Host {
            child: NsChild::spawn(ns, "ipv6_child", "NODE ", &all),
        };
        if did != "flood" {
            host.expect("ready", Duration::from_secs(20));
        }
        host
    }

    fn expect(&mut self, word: &str, wait: Duration) -> Vec<String> {
        self.child.expect(word, wait)
    }

    fn send(&mut self, line: &str) {
        self.child.send(line);
    }

    fn cmd(&mut self, line: &str, word: &str) -> Vec<String> {
        self.child.cmd(line, word)
    }
}

#[test]
fn two_hosts_discover_each_other_over_the_ipv6_group_and_ping_signed() {
    if !netns_available() {
        return;
    }
    let mut sw = Switch::new().unwrap();
    let a = Netns::new_v6("a").unwrap();
    let b = Netns::new_v6("b").unwrap();
    sw.plug(&a, "eth0", "fd00:77:10::1/64").unwrap();
    sw.plug(&b, "eth0", "fd00:77:10::2/64").unwrap();
    let keyed = |key: &'static str, pin: &'static str| {
        [
            ("TIBET_V6_DISCOVERY", "1"),
            ("TIBET_CHILD_KEY", key),
            ("TIBET_CHILD_PINS", pin),
        ]
    };
    let mut ha = Host::spawn(&a, "jis:v6:a", &keyed("1", "jis:v6:b=2"));
    let mut hb = Host::spawn(&b, "jis:v6:b", &keyed("2", "jis:v6:a=1"));
    for (h, other) in [(&mut ha, "jis:v6:b"), (&mut hb, "jis:v6:a")] {
        let got = h.cmd(&format!("discovered {other}"), "discovered");
        let at: SocketAddr = match got[2].as_str() {
            "none" => panic!("{other} not discovered over IPv6"),
            // A link-local source carries its scope (`%N`), which std's
            // parser does not read: the address is checked without it.
            s => s
                .split_once('%')
                .map_or(s.to_owned(), |(ip, rest)| {
                    format!("{ip}{}", &rest[rest.find(']').unwrap()..])
                })
                .parse()
                .unwrap(),
        };
        assert!(at.is_ipv6(), "found over IPv6: {at}");
        assert_eq!(at.port(), 7150, "its transport port");
    }
    hb.cmd("trust jis:v6:a 0.9", "ok");
    assert_eq!(
        ha.cmd("ping_peer jis:v6:b", "resp"),
        ["resp", "GROEN", "jis:v6:b"],
        "ping to the discovered address"
    );
    assert_eq!(
        ha.cmd("ping jis:v6:b [fd00:77:10::2]:7150 direct", "resp"),
        ["resp", "GROEN", "jis:v6:b"],
        "ping to the unique-local address"
    );
    let ia = ha.cmd("identity", "identity");
    assert_eq!(ia[3], "2", "A verified both of B's signed answers: {ia:?}");
    let ib = hb.cmd("identity", "identity");
    assert!(
        ib[1].parse::<u64>().unwrap() >= 2 && ib[2] == "0",
        "B verified A's signed pings and refused none: {ib:?}"
    );
}

#[test]
fn three_hosts_relay_over_ipv6_and_the_answer_returns() {
    if !netns_available() {
        return;
    }
    let a = Netns::new_v6("a").unwrap();
    let b = Netns::new_v6("b").unwrap();
    let c = Netns::new_v6("c").unwrap();
    veth(
        &a,
        "eth0",
        "fd00:77:21::1/64",
        &b,
        "eth0",
        "fd00:77:21::2/64",
    )
    .unwrap();
    veth(
        &b,
        "eth1",
        "fd00:77:22::2/64",
        &c,
        "eth0",
        "fd00:77:22::3/64",
    )
    .unwrap();
    let mut ha = Host::spawn(&a, "jis:v6:a", &[]);
    let mut hb = Host::spawn(&b, "jis:v6:b", &[]);
    let mut hc = Host::spawn(&c, "jis:v6:c", &[]);
    common::relay_through_the_middle(
        [&mut ha.child, &mut hb.child, &mut hc.child],
        ["jis:v6:a", "jis:v6:c"],
        [
            "[fd00:77:22::3]:7150",
            "[fd00:77:21::1]:7150",
            "[fd00:77:22::3]:7150",
            "[fd00:77:21::2]:7150",
        ],
    );
}

#[test]
fn a_dual_stack_hub_answers_each_family_and_keeps_one_peer_per_did() {
    if !netns_available() {
        return;
    }
    let mut sw = Switch::new().unwrap();
    let hub = Netns::new_v6("hub").unwrap();
    let v4 = Netns::new_v6("v4").unwrap();
    let v6 = Netns::new_v6("v6").unwrap();
    let both = Netns::new_v6("both").unwrap();
    sw.plug(&hub, "eth0", "10.77.30.1/24").unwrap();
    hub.addr("eth0", "fd00:77:30::1/64").unwrap();
    sw.plug(&v4, "eth0", "10.77.30.2/24").unwrap();
    sw.plug(&v6, "eth0", "fd00:77:30::3/64").unwrap();
    sw.plug(&both, "eth0", "10.77.30.4/24").unwrap();
    both.addr("eth0", "fd00:77:30::4/64").unwrap();
    let mut hh = Host::spawn(&hub, "jis:ds:hub", &[]);
    let mut h4 = Host::spawn(&v4, "jis:ds:four", &[("TIBET_V6_BIND", "0.0.0.0")]);
    let mut h6 = Host::spawn(&v6, "jis:ds:six", &[]);
    let mut hb = Host::spawn(&both, "jis:ds:both", &[]);
    for d in ["jis:ds:four", "jis:ds:six", "jis:ds:both"] {
        hh.cmd(&format!("trust {d} 0.9"), "ok");
    }
    let groen = ["resp", "GROEN", "jis:ds:hub"];
    assert_eq!(
        h4.cmd("ping jis:ds:hub 10.77.30.1:7150 direct", "resp"),
        groen
    );
    assert_eq!(
        h6.cmd("ping jis:ds:hub [fd00:77:30::1]:7150 direct", "resp"),
        groen
    );
    assert_eq!(
        hb.cmd("ping jis:ds:hub 10.77.30.1:7150 direct", "resp"),
        groen,
        "asked over IPv4, answered over IPv4"
    );
    assert_eq!(
        hb.cmd("ping jis:ds:hub [fd00:77:30::1]:7150 direct", "resp"),
        groen,
        "asked over IPv6, answered over IPv6"
    );
    assert_eq!(
        hh.cmd("peers", "peers"),
        [
            "peers",
            "jis:ds:both=[fd00:77:30::4]:7150",
            "jis:ds:four=10.77.30.2:7150",
            "jis:ds:six=[fd00:77:30::3]:7150",
        ],
        "an IPv4 sender as IPv4 (not IPv4-mapped), an IPv6 one as IPv6, and \
         the DID heard on both as one peer at its latest address"
    );
}

#[test]
fn a_flood_from_one_slash_64_gets_one_prefix_budget_and_a_trusted_peer_is_answered() {
    if !netns_available() {
        return;
    }
    let mut sw = Switch::new().unwrap();
    let hub = Netns::new_v6("hub").unwrap();
    let attacker = Netns::new_v6("atk").unwrap();
    let friend = Netns::new_v6("friend").unwrap();
    sw.plug(&hub, "eth0", "fd00:77:40::1/64").unwrap();
    hub.addr("eth0", "fd00:77:41::1/64").unwrap();
    sw.plug(&attacker, "eth0", "fd00:77:40::2/64").unwrap();
    sw.plug(&friend, "eth0", "fd00:77:41::2/64").unwrap();
    let mut hh = Host::spawn(&hub, "jis:fl:hub", &[]);
    let mut hf = Host::spawn(&friend, "jis:fl:friend", &[]);
    let mut ha = Host::spawn(&attacker, "flood", &[]);
    hh.cmd("trust jis:fl:friend 0.9", "ok");

    let started = Instant::now();
    ha.send("flood [fd00:77:40::1]:7150 fd00:77:40:: 3");
    // While the flood runs, the trusted peer in the other /64 is answered.
    let mut answered = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let r = hf.cmd("ping jis:fl:hub [fd00:77:41::1]:7150 direct", "resp");
        assert_eq!(
            r,
            ["resp", "GROEN", "jis:fl:hub"],
            "answered during the flood"
        );
        answered += 1;
    }
    let flooded = ha.expect("flooded", Duration::from_secs(30));
    let elapsed = started.elapsed().as_secs_f64();
    let (sent, addresses): (u64, u64) = (flooded[1].parse().unwrap(), flooded[2].parse().unwrap());
    assert!(answered >= 2, "the friend kept being answered ({answered})");
    assert!(
        sent > 1000 && addresses >= 1000,
        "a real flood: {sent} datagrams from {addresses} addresses"
    );
    // The hub reads what it can; every beacon it reads takes the /64's
    // bucket (4 addresses' burst of 8, refilled at 4 x 0.5 a second).
    let b = hh.cmd("beacons", "beacons");
    let (allowed, refused): (u64, u64) = (b[1].parse().unwrap(), b[3].parse().unwrap());
    let budget = 32.0 + 2.0 * (elapsed + 1.0);
    eprintln!(
        "flood: {sent} beacons from {addresses} addresses in {elapsed:.1} s; \
         {allowed} reviews allowed, {refused} refused by the /64; {answered} friend pings answered"
    );
    assert!(
        allowed as f64 <= budget,
        "{allowed} beacon reviews from one /64 in {elapsed:.1} s (budget {budget:.0})"
    );
    assert!(
        refused > 500,
        "the /64's bucket refused the rest ({refused} refused, {allowed} allowed)"
    );
}
