//! Multi-host tests in network namespaces (root only; skipped with a reason
//! otherwise). Each host runs a node in a child process: this test binary
//! re-executed inside the namespace (`ip netns exec NS <self> netns_child`)
//! with the node's settings in the environment, driven line by line over
//! stdin/stdout. Addresses are 10.77.x.y inside our own namespaces only.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tibet_testkit::NsChild;
use tibet_testkit::netns::{Netns, Switch, netns_available, veth};

// ---- the child: a node inside a namespace ---------------------------------

#[test]
#[ignore = "helper: runs only re-executed inside a namespace by the tests below"]
fn netns_child() {
    let Ok(did) = std::env::var("TIBET_CHILD_DID") else {
        return;
    };
    let discovery = std::env::var("TIBET_CHILD_DISCOVERY").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(child_main(did, discovery));
}

async fn child_main(did: String, discovery: bool) {
    use tibet_iot::{Event, IoTNode, TransportConfig};
    use tokio::io::AsyncBufReadExt;

    // The IPv4 tests: bound to IPv4 alone, so a peer is never learnt at
    // an IPv6 link-local address the namespace's links may also carry (the
    // dual-stack default is tested in netns_ipv6.rs).
    let cfg = TransportConfig {
        bind_host: std::net::Ipv4Addr::UNSPECIFIED.into(),
        discovery_enabled: discovery,
        discovery_reply_delay: Duration::from_millis(100),
        request_timeout: Duration::from_secs(3),
        identity: common::child_identity(),
        ..TransportConfig::default()
    };
    // Shared with the tasks of a `burst`.
    let node = std::sync::Arc::new(IoTNode::new(did, cfg));
    let mut events = node.subscribe();
    let addr = node.start().await.expect("start in namespace");
    let disc = node
        .discovery_addr()
        .map_or_else(|| "none".to_owned(), |a| a.to_string());
    println!("NODE ready {addr} {disc}");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let Some(answer) = common::node_command(&node, &w, "across hosts").await {
            println!("NODE {answer}");
            continue;
        }
        match w.as_slice() {
            ["send_errors"] => {
                // No event reports a refused send: poll the counter, bounded.
                let mut n = 0;
                for _ in 0..500 {
                    n = node.stats().driver.send_errors;
                    if n > 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                println!("NODE send_errors {n}");
            }
            ["burst", d, a, n] => {
                // `n` pings at once to one responder: its answers come back
                // as a burst (the case for segmented sends).
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..n.parse::<usize>().unwrap() {
                    let (node, d, a) = (node.clone(), d.to_string(), a.parse().unwrap());
                    tasks.spawn(async move {
                        let opts = tibet_iot::SendOptions::default();
                        node.send_ping(&d, a, "netns.burst", "burst", opts).await
                    });
                }
                let mut groen = 0;
                while let Some(r) = tasks.join_next().await {
                    if let Ok(Ok(Some(r))) = r
                        && r.airlock_zone == tibet_ping::AirlockZone::Groen
                    {
                        groen += 1;
                    }
                }
                println!("NODE burst {groen}");
            }
            ["segmented"] => {
                let s = node.stats();
                println!(
                    "NODE segmented {} {}",
                    s.driver.sent_segmented, s.driver.send_errors
                );
            }
            ["discovered", want] => {
                let mut found = node
                    .peers()
                    .into_iter()
                    .find(|p| p.did == *want)
                    .map(|p| p.address);
                while found.is_none() {
                    match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                        Ok(Ok(Event::PeerDiscovered { did, address, .. })) if did == *want => {
                            found = Some(address)
                        }
                        Ok(Ok(_)) | Ok(Err(_)) => {}
                        Err(_) => break,
                    }
                }
                match found {
                    Some(a) => println!("NODE discovered {want} {a}"),
                    None => println!("NODE discovered {want} none"),
                }
            }
            ["quit"] => break,
            _ => println!("NODE error unknown command {line}"),
        }
    }
    node.stop().await;
}

// ---- the parent side ------------------------------------------------------

struct Host {
    child: NsChild,
    addr: SocketAddr,
    /// The discovery socket's address, or `none`.
    discovery: String,
}

impl Host {
    fn spawn(ns: &Netns, did: &str, discovery: bool) -> Host {
        Host::spawn_with(ns, did, discovery, &[])
    }

    fn spawn_with(ns: &Netns, did: &str, discovery: bool, env: &[(&str, &str)]) -> Host {
        let mut all = vec![
            ("TIBET_CHILD_DID", did),
            ("TIBET_CHILD_DISCOVERY", if discovery { "1" } else { "0" }),
        ];
        all.extend_from_slice(env);
        let mut child = NsChild::spawn(ns, "netns_child", "NODE ", &all);
        let ready = child.expect("ready", Duration::from_secs(20));
        Host {
            child,
            addr: ready[1].parse().unwrap(),
            discovery: ready[2].clone(),
        }
    }

    fn cmd(&mut self, line: &str, word: &str) -> Vec<String> {
        self.child.cmd(line, word)
    }
}

/// Hosts `jis:ns:a` (10.77.NET.1) and `jis:ns:b` (10.77.NET.2) on one veth
/// link, discovery off; the namespaces live as long as the first two.
fn two_hosts(net: u8) -> (Netns, Netns, Host, Host) {
    let a = Netns::new("a").unwrap();
    let b = Netns::new("b").unwrap();
    let (ip_a, ip_b) = (format!("10.77.{net}.1/24"), format!("10.77.{net}.2/24"));
    veth(&a, "eth0", &ip_a, &b, "eth0", &ip_b).unwrap();
    let ha = Host::spawn(&a, "jis:ns:a", false);
    let hb = Host::spawn(&b, "jis:ns:b", false);
    (a, b, ha, hb)
}

#[test]
fn two_hosts_ping_across_a_veth_link() {
    if !netns_available() {
        return;
    }
    let (_a, _b, mut ha, mut hb) = two_hosts(1);
    assert_eq!(
        ha.cmd("ping jis:ns:b 10.77.1.2:7150 direct", "resp"),
        ["resp", "none"],
        "unknown: silence"
    );
    hb.cmd("trust jis:ns:a 0.9", "ok");
    assert_eq!(
        ha.cmd("ping jis:ns:b 10.77.1.2:7150 direct", "resp"),
        ["resp", "GROEN", "jis:ns:b"]
    );
    assert_eq!(hb.addr.port(), 7150);
    assert_eq!(hb.discovery, "none", "discovery off");
}

#[test]
fn a_burst_of_answers_leaves_segmented_across_a_veth_link_and_all_arrive() {
    if !netns_available() {
        return;
    }
    let (_a, _b, mut ha, mut hb) = two_hosts(4);
    hb.cmd("trust jis:ns:a 0.9", "ok");
    // Whether a burst's pings land in one receive batch depends on timing;
    // every burst must be answered in full, and within a few bursts some
    // answers must have left several to a send, cut by the kernel (or the
    // veth device) into datagrams the requester matched one by one.
    let mut segmented = 0;
    for _ in 0..20 {
        assert_eq!(
            ha.cmd("burst jis:ns:b 10.77.4.2:7150 64", "burst"),
            ["burst", "64"]
        );
        let s = hb.cmd("segmented", "segmented");
        assert_eq!(s[2], "0", "no send errors");
        segmented = s[1].parse::<u64>().unwrap();
        if segmented > 0 {
            break;
        }
    }
    assert!(segmented > 0, "no answer left segmented in 20 bursts");
}

#[test]
fn three_hosts_relay_through_the_middle_and_answer_back() {
    if !netns_available() {
        return;
    }
    let a = Netns::new("a").unwrap();
    let b = Netns::new("b").unwrap();
    let c = Netns::new("c").unwrap();
    veth(&a, "eth0", "10.77.2.1/24", &b, "eth0", "10.77.2.2/24").unwrap();
    veth(&b, "eth1", "10.77.3.2/24", &c, "eth0", "10.77.3.3/24").unwrap();
    let mut ha = Host::spawn(&a, "jis:ns:a", false);
    let mut hb = Host::spawn(&b, "jis:ns:b", false);
    let mut hc = Host::spawn(&c, "jis:ns:c", false);
    common::relay_through_the_middle(
        [&mut ha.child, &mut hb.child, &mut hc.child],
        ["jis:ns:a", "jis:ns:c"],
        [
            "10.77.3.3:7150",
            "10.77.2.1:7150",
            "10.77.3.3:7150",
            "10.77.2.2:7150",
        ],
    );
}

#[test]
fn discovery_by_multicast_across_a_bridge_of_three_hosts() {
    if !netns_available() {
        return;
    }
    let mut sw = Switch::new().unwrap();
    let hosts: Vec<Netns> = (0..3)
        .map(|i| Netns::new(&format!("h{i}")).unwrap())
        .collect();
    for (i, h) in hosts.iter().enumerate() {
        sw.plug(h, "eth0", &format!("10.77.4.{}/24", i + 1))
            .unwrap();
        h.multicast_route("eth0").unwrap();
    }
    let mut nodes: Vec<Host> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Host::spawn(h, &format!("jis:lan:n{i}"), true))
        .collect();
    for (i, node) in nodes.iter_mut().enumerate() {
        for j in (0..3).filter(|j| *j != i) {
            let got = node.cmd(&format!("discovered jis:lan:n{j}"), "discovered");
            assert_eq!(got[2], format!("10.77.4.{}:7150", j + 1), "n{i} found n{j}");
        }
    }
}

#[test]
fn a_host_without_multicast_route_still_starts() {
    if !netns_available() {
        return;
    }
    let lonely = Netns::new("lonely").unwrap();
    let mut h = Host::spawn(&lonely, "jis:ns:lonely", true);
    assert_eq!(h.addr.port(), 7150, "started despite discovery trouble");
    assert_eq!(h.discovery, "none", "no multicast listener without a route");
    let ready_line = h.cmd("send_errors", "send_errors");
    // The start-up beacon had no route: counted, not fatal.
    assert_ne!(ready_line[1], "0", "beacon send failure counted");
}

#[test]
fn two_hosts_with_keys_verify_each_other_and_a_third_cannot_pose_as_one() {
    if !netns_available() {
        return;
    }
    let mut sw = Switch::new().unwrap();
    let hosts: Vec<Netns> = ["ka", "kb", "kx"]
        .iter()
        .map(|n| Netns::new(n).unwrap())
        .collect();
    for (i, h) in hosts.iter().enumerate() {
        sw.plug(h, "eth0", &format!("10.77.5.{}/24", i + 1))
            .unwrap();
    }
    let mut ha = Host::spawn_with(
        &hosts[0],
        "jis:ns:a",
        false,
        &[("TIBET_CHILD_KEY", "1"), ("TIBET_CHILD_PINS", "jis:ns:b=2")],
    );
    let mut hb = Host::spawn_with(
        &hosts[1],
        "jis:ns:b",
        false,
        &[("TIBET_CHILD_KEY", "2"), ("TIBET_CHILD_PINS", "jis:ns:a=1")],
    );
    // The impostor claims A's DID without A's key.
    let mut hx = Host::spawn(&hosts[2], "jis:ns:a", false);
    hb.cmd("trust jis:ns:a 0.9", "ok");
    assert_eq!(
        ha.cmd("ping jis:ns:b 10.77.5.2:7150 direct", "resp"),
        ["resp", "GROEN", "jis:ns:b"]
    );
    assert_eq!(
        ha.cmd("identity", "identity"),
        ["identity", "0", "0", "1", "0"],
        "A verified B's signed answer"
    );
    assert_eq!(
        hx.cmd("ping jis:ns:b 10.77.5.2:7150 direct", "resp"),
        ["resp", "none"],
        "the impostor is dropped silently"
    );
    assert_eq!(
        hb.cmd("identity", "identity"),
        ["identity", "1", "1", "0", "0"],
        "B verified A once and refused the impostor once"
    );
}
