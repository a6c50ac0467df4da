//! Engine scenarios on a simulated network: virtual clock, latency, loss,
//! seeded RNG, nodes keyed by address, links deciding who hears whom.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tibet_iot::{Engine, Event, RetransmitPolicy, SendOptions, TransportConfig};
use tibet_ping::{AirlockZone, PingOptions, PingResponse, RoutingMode, Timestamp};

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 1) as u8)),
        7150,
    )
}

fn did(i: usize) -> String {
    format!("jis:sim:n{i}")
}

struct InFlight {
    at: Timestamp,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    discovery: bool,
    bytes: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Sim {
    now: Timestamp,
    rng: StdRng,
    nodes: BTreeMap<SocketAddr, Engine>,
    links: HashSet<(SocketAddr, SocketAddr)>,
    latency: Duration,
    loss: f64,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    sent: u64,
    events: VecDeque<(Timestamp, SocketAddr, Event)>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        Sim {
            now: Timestamp::parse("2026-11-26T11:00:00+00:00").unwrap(),
            rng: StdRng::seed_from_u64(seed),
            nodes: BTreeMap::new(),
            links: HashSet::new(),
            latency: Duration::from_millis(1),
            loss: 0.0,
            queue: BinaryHeap::new(),
            seq: 0,
            sent: 0,
            events: VecDeque::new(),
        }
    }

    fn config() -> TransportConfig {
        TransportConfig {
            discovery_enabled: false,
            ..TransportConfig::default()
        }
    }

    fn add(&mut self, i: usize, config: TransportConfig) {
        let seed = self.rng.r#gen();
        let mut e = Engine::new(did(i), config, seed);
        e.set_local(7150, SocketAddr::from(([224, 0, 71, 50], 7151)));
        e.start(self.now);
        self.nodes.insert(addr(i), e);
    }

    fn node(&mut self, i: usize) -> &mut Engine {
        self.nodes.get_mut(&addr(i)).expect("node")
    }

    /// A link both ways; each side knows and trusts the other.
    fn link(&mut self, a: usize, b: usize) {
        self.links.insert((addr(a), addr(b)));
        self.links.insert((addr(b), addr(a)));
        let now = self.now;
        self.node(a).add_peer(now, &did(b), addr(b));
        self.node(b).add_peer(now, &did(a), addr(a));
    }

    fn trust_all(&mut self, n: usize) {
        let now = self.now;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    self.node(i).set_trust(now, &did(j), 0.9);
                }
            }
        }
    }

    /// Moves every queued transmit onto the wire and collects events.
    fn flush(&mut self) {
        let addrs: Vec<SocketAddr> = self.nodes.keys().copied().collect();
        for from in addrs {
            while let Some(t) = self.nodes.get_mut(&from).unwrap().poll_transmit() {
                self.sent += 1;
                let multicast = t.destination.ip().is_multicast();
                let targets: Vec<SocketAddr> = if multicast {
                    self.links
                        .iter()
                        .filter(|(a, _)| *a == from)
                        .map(|(_, b)| *b)
                        .collect()
                } else if self.links.contains(&(from, t.destination)) {
                    vec![t.destination]
                } else {
                    vec![] // unreachable: dropped
                };
                for to in targets {
                    if self.rng.gen_bool(self.loss) {
                        continue;
                    }
                    let jitter = Duration::from_micros(self.rng.gen_range(0..1000));
                    self.seq += 1;
                    self.queue.push(Reverse(InFlight {
                        at: self.now + self.latency + jitter,
                        seq: self.seq,
                        from,
                        to,
                        discovery: multicast,
                        bytes: t.payload.clone(),
                    }));
                }
            }
            while let Some(ev) = self.nodes.get_mut(&from).unwrap().poll_event() {
                self.events.push_back((self.now, from, ev));
            }
        }
    }

    fn run_until(&mut self, end: Timestamp) {
        loop {
            self.flush();
            let next_packet = self.queue.peek().map(|r| r.0.at);
            let next_timer = self.nodes.values().filter_map(|e| e.poll_timeout()).min();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            while self.queue.peek().is_some_and(|r| r.0.at <= self.now) {
                let p = self.queue.pop().unwrap().0;
                let now = self.now;
                if let Some(e) = self.nodes.get_mut(&p.to) {
                    if p.discovery {
                        e.handle_discovery_datagram(now, p.from, &p.bytes);
                    } else {
                        e.handle_datagram(now, p.from, &p.bytes);
                    }
                }
            }
            let now = self.now;
            for e in self.nodes.values_mut() {
                if e.poll_timeout().is_some_and(|t| t <= now) {
                    e.handle_timeout(now);
                }
            }
        }
        self.now = self.now.max(end);
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// The answer (or timeout) of request `id` at node `at`, draining events.
    fn outcome(&mut self, at: usize, id: tibet_iot::RequestId) -> Option<Option<PingResponse>> {
        let pos = self.events.iter().position(|(_, a, e)| {
            *a == addr(at)
                && matches!(e, Event::RequestAnswered { id: i, .. } | Event::RequestTimedOut { id: i } if *i == id)
        })?;
        match self.events.remove(pos).unwrap().2 {
            Event::RequestAnswered { response, .. } => Some(Some(*response)),
            _ => Some(None),
        }
    }
}

/// (target, hop count, next hops) of each relay audited by `engine`.
fn relays_audited(engine: &mut Engine) -> Vec<(String, u32, Vec<SocketAddr>)> {
    std::iter::from_fn(|| engine.poll_audit())
        .filter_map(|r| match r {
            tibet_iot::AuditRecord::Relay { packet, next_hops } => {
                Some((packet.target_did, packet.hop_count, next_hops))
            }
            _ => None,
        })
        .collect()
}

fn mesh_opts() -> SendOptions {
    SendOptions {
        ping: PingOptions {
            routing_mode: RoutingMode::Mesh,
            max_hops: Some(10),
            ..PingOptions::default()
        },
        ..SendOptions::default()
    }
}

#[test]
fn line_a_b_c_mesh_ping_reaches_c_and_the_answer_returns() {
    let mut sim = Sim::new(1);
    for i in 0..3 {
        sim.add(i, Sim::config());
    }
    sim.link(0, 1);
    sim.link(1, 2);
    sim.trust_all(3);
    let now = sim.now;
    // A cannot reach C directly: a direct ping is lost.
    let direct = sim
        .node(0)
        .send_ping(now, &did(2), addr(2), "x", "y", SendOptions::default())
        .unwrap();
    sim.run_for(Duration::from_secs(11));
    assert_eq!(sim.outcome(0, direct), Some(None), "no route from A to C");

    sim.node(1).set_audit_enabled(true);
    let now = sim.now;
    let id = sim
        .node(0)
        .send_ping(
            now,
            &did(2),
            addr(1),
            "temperature.read",
            "via B",
            mesh_opts(),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    let resp = sim
        .outcome(0, id)
        .expect("decided")
        .expect("answered through B");
    assert_eq!(resp.responder_did, did(2));
    assert_eq!(resp.airlock_zone, AirlockZone::Groen);
    let b = sim.node(1).stats(now);
    assert_eq!(b.relay.relayed, 1);
    assert_eq!(b.relay.responses_relayed, 1);
    assert_eq!(
        relays_audited(sim.node(1)),
        [(did(2), 1, vec![addr(2)])],
        "the relay was audited"
    );
    assert!(sim.events.iter().any(|(_, a, e)| *a == addr(2)
        && matches!(e, Event::PingDecided { source_did, .. } if *source_did == did(0))));
    // A forged answer injected at B by someone B did not forward to is dropped.
    let relayed_id = sim
        .events
        .iter()
        .find_map(|(_, a, e)| match e {
            Event::PacketRelayed { packet_id, .. } if *a == addr(1) => Some(packet_id.clone()),
            _ => None,
        })
        .unwrap();
    let forged = tibet_ping::PingResponse {
        response_id: "resp_0000000000000001".into(),
        in_response_to: relayed_id,
        responder_did: did(2),
        decision: tibet_ping::PingDecision::Accept,
        payload: Default::default(),
        capabilities: vec![],
        trust_score: 1.0,
        fira_breakdown: Default::default(),
        tibet_token_id: None,
        timestamp: String::new(),
        rtt_ms: None,
        airlock_zone: AirlockZone::Groen,
        applied_rule: None,
    };
    let bytes = tibet_ping::PacketCodec::json()
        .encode_response(&forged)
        .unwrap();
    let now = sim.now;
    let b = sim.node(1);
    b.handle_datagram(now, "10.66.0.1:7150".parse().unwrap(), &bytes);
    assert!(b.poll_transmit().is_none());
    assert_eq!(b.stats(now).relay.responses_foreign, 1);
}

fn first_hop_towards(src: usize, dst: usize, neighbours: &dyn Fn(usize) -> Vec<usize>) -> usize {
    let mut prev = BTreeMap::new();
    let mut queue = VecDeque::from([dst]);
    prev.insert(dst, dst);
    while let Some(x) = queue.pop_front() {
        for y in neighbours(x) {
            if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(y) {
                e.insert(x);
                queue.push_back(y);
            }
        }
    }
    prev[&src]
}

#[test]
fn fifty_node_mesh_delivers_any_to_any_with_bounded_transmissions() {
    let n = 50;
    let mut sim = Sim::new(7);
    // No heartbeats during the run: count only the pings' own traffic.
    let quiet = TransportConfig {
        heartbeat_interval: Duration::from_secs(3600),
        ..Sim::config()
    };
    for i in 0..n {
        sim.add(i, quiet.clone());
    }
    let mut edges = HashSet::new();
    for i in 1..n {
        let j = sim.rng.gen_range(0..i);
        edges.insert((j.min(i), j.max(i)));
    }
    while edges.len() < n - 1 + 40 {
        let (a, b) = (sim.rng.gen_range(0..n), sim.rng.gen_range(0..n));
        if a != b {
            edges.insert((a.min(b), a.max(b)));
        }
    }
    for &(a, b) in &edges {
        sim.link(a, b);
    }
    sim.trust_all(n);
    let neighbours = |i: usize| -> Vec<usize> {
        edges
            .iter()
            .filter_map(|&(a, b)| {
                if a == i {
                    Some(b)
                } else if b == i {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    };
    let bound = 2 * edges.len() as u64 + 20;
    for round in 0..25 {
        let src = sim.rng.gen_range(0..n);
        let mut dst = sim.rng.gen_range(0..n);
        if dst == src {
            dst = (dst + 1) % n;
        }
        // The origin hands the packet to its neighbour on a shortest path.
        let first_hop = first_hop_towards(src, dst, &neighbours);
        let before = sim.sent;
        let now = sim.now;
        let id = sim
            .node(src)
            .send_ping(
                now,
                &did(dst),
                addr(first_hop),
                "mesh.test",
                "any to any",
                mesh_opts(),
            )
            .unwrap();
        sim.run_for(Duration::from_secs(2));
        let resp = sim
            .outcome(src, id)
            .unwrap_or_else(|| panic!("round {round}: no outcome"));
        let resp = resp.unwrap_or_else(|| panic!("round {round}: {src} -> {dst} not answered"));
        assert_eq!(resp.responder_did, did(dst));
        let sent = sim.sent - before;
        assert!(
            sent <= bound,
            "round {round}: {sent} transmissions > bound {bound} (2E + path)"
        );
    }
    let now = sim.now;
    let stopped: u64 = sim
        .nodes
        .values()
        .map(|e| e.stats(now).relay.dropped_seen)
        .sum();
    assert!(stopped > 0, "the seen-cache stopped loops");
}

#[test]
fn heartbeats_every_interval_and_idle_peers_expire_on_cleanup() {
    let mut sim = Sim::new(3);
    sim.add(0, Sim::config());
    sim.add(1, Sim::config());
    sim.link(0, 1);
    sim.trust_all(2);
    let start = sim.now;
    sim.run_for(Duration::from_secs(29));
    assert_eq!(sim.node(0).stats(start).engine.heartbeats_sent, 0);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        sim.node(0).stats(start).engine.heartbeats_sent,
        1,
        "first heartbeat at 30 s"
    );
    sim.run_for(Duration::from_secs(60));
    assert_eq!(
        sim.node(0).stats(start).engine.heartbeats_sent,
        3,
        "then every 30 s"
    );
    let now = sim.now;
    assert!(
        sim.node(0).peers().get(now, &did(1)).is_some(),
        "heartbeats keep the peer alive"
    );

    // Cut the link: no more heartbeat answers; the peer expires 120 s after
    // its last activity, at the next 45 s cleanup sweep.
    sim.links.clear();
    let last_seen = sim.node(0).peers().get(now, &did(1)).unwrap().last_seen;
    sim.run_for(Duration::from_secs(300));
    let (at, _, _) = sim
        .events
        .iter()
        .find(|(_, a, e)| {
            *a == addr(0) && matches!(e, Event::PeerExpired { did: d, .. } if *d == did(1))
        })
        .expect("peer expired");
    let idle = at.saturating_duration_since(last_seen);
    assert!(
        idle > Duration::from_secs(120) && idle <= Duration::from_secs(120 + 45),
        "expired after {idle:?}"
    );
}

#[test]
fn retransmission_gets_through_thirty_percent_loss_without_replay_alarms() {
    let retx = RetransmitPolicy {
        max_retransmits: 5,
        initial_timeout: Duration::from_millis(500),
        random_factor: 1.5,
    };
    let run = |policy: RetransmitPolicy| -> (usize, u64, u64) {
        let mut sim = Sim::new(11);
        sim.add(0, Sim::config());
        sim.add(1, Sim::config());
        sim.link(0, 1);
        sim.trust_all(2);
        sim.loss = 0.3;
        let mut ok = 0;
        for _ in 0..100 {
            let now = sim.now;
            let opts = SendOptions {
                timeout: Some(Duration::from_secs(29)),
                retransmit: Some(policy),
                ..SendOptions::default()
            };
            let id = sim
                .node(0)
                .send_ping(now, &did(1), addr(1), "x", "lossy", opts)
                .unwrap();
            sim.run_for(Duration::from_secs(30));
            if let Some(Some(_)) = sim.outcome(0, id) {
                ok += 1;
            }
        }
        let now = sim.now;
        let s = sim.node(1).stats(now).engine;
        (ok, s.duplicates_answered, s.replays_dropped)
    };
    let (plain, _, _) = run(RetransmitPolicy::default());
    let (with_retx, duplicates, replays) = run(retx);
    assert!(plain < 70, "without resends about half fail: {plain}/100");
    assert!(with_retx >= 95, "with resends: {with_retx}/100");
    assert!(duplicates > 0, "lost answers were resent from the cache");
    assert_eq!(replays, 0, "a resend is never called a replay");
}

#[test]
fn hop_limit_stops_mesh_packets_at_the_smaller_of_packet_and_node_cap() {
    let mut sim = Sim::new(5);
    for i in 0..5 {
        sim.add(i, Sim::config());
    }
    for i in 0..4 {
        sim.link(i, i + 1);
    }
    sim.trust_all(5);
    let opts = |max| SendOptions {
        ping: PingOptions {
            routing_mode: RoutingMode::Mesh,
            max_hops: Some(max),
            ..PingOptions::default()
        },
        timeout: Some(Duration::from_secs(1)),
        ..SendOptions::default()
    };
    let now = sim.now;
    let short = sim
        .node(0)
        .send_ping(now, &did(4), addr(1), "x", "too far", opts(2))
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        sim.outcome(0, short),
        Some(None),
        "three relays needed, two allowed"
    );
    let now = sim.now;
    assert_eq!(sim.node(3).stats(now).relay.dropped_hop_limit, 1);
    let enough = sim
        .node(0)
        .send_ping(now, &did(4), addr(1), "x", "far enough", opts(3))
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    assert!(sim.outcome(0, enough).unwrap().is_some());
    // The node's own cap (here 1) wins over a generous packet.
    let mut capped = Sim::new(6);
    for i in 0..3 {
        capped.add(
            i,
            TransportConfig {
                max_hops: 1,
                ..Sim::config()
            },
        );
    }
    capped.link(0, 1);
    capped.link(1, 2);
    capped.trust_all(3);
    let now = capped.now;
    let id = capped
        .node(0)
        .send_ping(now, &did(2), addr(1), "x", "y", opts(50))
        .unwrap();
    capped.run_for(Duration::from_secs(2));
    assert!(
        capped.outcome(0, id).unwrap().is_some(),
        "one relay allowed by a cap of 1"
    );
}

#[test]
fn discovery_beacons_and_unicast_answers_find_every_node() {
    let mut sim = Sim::new(9);
    let cfg = TransportConfig {
        discovery_enabled: true,
        ..TransportConfig::default()
    };
    for i in 0..3 {
        sim.add(i, cfg.clone());
    }
    // A LAN: everyone hears everyone's multicast; no peers configured.
    for i in 0..3 {
        for j in 0..3 {
            if i != j {
                sim.links.insert((addr(i), addr(j)));
            }
        }
    }
    sim.run_for(Duration::from_secs(2));
    let now = sim.now;
    for i in 0..3 {
        let alive: Vec<String> = sim
            .node(i)
            .peers()
            .alive(now)
            .map(|p| p.did.clone())
            .collect();
        assert_eq!(alive.len(), 2, "n{i} knows {alive:?}");
        let s = sim.node(i).stats(now).discovery;
        assert_eq!(s.beacons_sent, 1, "one beacon at start");
        assert!(s.beacons_received == 2, "heard both others: {s:?}");
    }
    // Answers are rate-limited per peer: the next beacon round, 60 s later,
    // is answered again (interval 10 s), but a burst of beacons is not.
    sim.run_for(Duration::from_secs(60));
    let now = sim.now;
    let s = sim.node(0).stats(now).discovery;
    assert_eq!(s.beacons_sent, 2);
    assert!(s.replies_sent >= 2, "{s:?}");
}

#[test]
fn outstanding_requests_are_bounded_and_refusals_counted() {
    let mut sim = Sim::new(4);
    let mut cfg = Sim::config();
    cfg.limits.pending_requests = 2;
    sim.add(0, cfg);
    let now = sim.now;
    let to = addr(1);
    assert!(
        sim.node(0)
            .send_ping(now, "jis:x", to, "x", "y", SendOptions::default())
            .is_ok()
    );
    assert!(
        sim.node(0)
            .send_ping(now, "jis:x", to, "x", "y", SendOptions::default())
            .is_ok()
    );
    let third = sim
        .node(0)
        .send_ping(now, "jis:x", to, "x", "y", SendOptions::default());
    assert_eq!(
        third,
        Err(tibet_iot::SendError::TooManyPending { capacity: 2 })
    );
    assert_eq!(sim.node(0).stats(now).engine.requests_refused, 1);
    sim.run_for(Duration::from_secs(11));
    let now = sim.now;
    assert!(
        sim.node(0)
            .send_ping(now, "jis:x", to, "x", "y", SendOptions::default())
            .is_ok(),
        "room after timeouts"
    );
}

#[test]
fn beacon_matching_an_auto_vouch_rule_makes_the_newcomer_trusted() {
    let mut sim = Sim::new(12);
    let hub_cfg = TransportConfig {
        discovery_enabled: true,
        ..TransportConfig::default()
    };
    let sensor_cfg = TransportConfig {
        device_type: "sensor".into(),
        capabilities: vec!["temp".into()],
        ..hub_cfg.clone()
    };
    sim.add(0, hub_cfg);
    sim.add(1, sensor_cfg);
    sim.links.insert((addr(0), addr(1)));
    sim.links.insert((addr(1), addr(0)));
    sim.node(0)
        .add_auto_vouch_rule(tibet_ping::AutoVouchRule {
            name: "sensors".into(),
            device_type: Some("sensor".into()),
            required_capabilities: Some(vec!["temp".into()]),
            vouch_factor: 0.8,
            ..Default::default()
        })
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    let decided = sim.events.iter().find_map(|(_, a, e)| match e {
        Event::PeerDiscovered {
            did: d,
            decision,
            device_type,
            ..
        } if *a == addr(0) && *d == did(1) => Some((*decision, device_type.clone())),
        _ => None,
    });
    assert_eq!(
        decided,
        Some((tibet_ping::BeaconDecision::AutoVouched, "sensor".to_owned()))
    );
    // The vouch is real: 0.9 x 0.8 = 0.72 >= 0.7, so the sensor's ping is GROEN.
    let now = sim.now;
    let id = sim
        .node(1)
        .send_ping(
            now,
            &did(0),
            addr(0),
            "temperature.report",
            "hello hub",
            SendOptions::default(),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    let resp = sim.outcome(1, id).unwrap().expect("answered");
    assert_eq!(resp.airlock_zone, AirlockZone::Groen);
    // The hub, with no rule at the sensor, stays unknown there: beacons alone
    // never grant trust.
    let now = sim.now;
    let back = sim
        .node(0)
        .send_ping(now, &did(1), addr(1), "x", "y", SendOptions::default())
        .unwrap();
    sim.run_for(Duration::from_secs(11));
    assert_eq!(sim.outcome(0, back), Some(None));
}

#[test]
fn mesh_retransmission_through_a_relay_survives_thirty_percent_loss() {
    let run = |max_retransmits: u32| -> (usize, u64, u64) {
        let mut sim = Sim::new(21);
        for i in 0..3 {
            sim.add(i, Sim::config());
        }
        sim.link(0, 1);
        sim.link(1, 2);
        sim.trust_all(3);
        sim.loss = 0.3;
        let mut ok = 0;
        for _ in 0..60 {
            let now = sim.now;
            let opts = SendOptions {
                timeout: Some(Duration::from_secs(25)),
                retransmit: Some(RetransmitPolicy {
                    max_retransmits,
                    initial_timeout: Duration::from_millis(300),
                    random_factor: 1.5,
                }),
                ..mesh_opts()
            };
            let id = sim
                .node(0)
                .send_ping(now, &did(2), addr(1), "x", "lossy mesh", opts)
                .unwrap();
            sim.run_for(Duration::from_secs(26));
            if let Some(Some(_)) = sim.outcome(0, id) {
                ok += 1;
            }
        }
        let now = sim.now;
        let (b, c) = (sim.node(1).stats(now), sim.node(2).stats(now));
        (ok, b.relay.resends_forwarded, c.engine.duplicates_answered)
    };
    let (plain, _, _) = run(0);
    let (ok, forwarded, cached) = run(6);
    // Four lossy legs: about a quarter get through without resends; with up
    // to six resends in the window, about 85 %.
    assert!(plain < 25, "without resends: {plain}/60");
    assert!(
        ok >= 42 && ok >= 2 * plain,
        "with resends through the relay: {ok}/60 vs {plain}/60"
    );
    assert!(
        forwarded > 0,
        "the relay forwarded resends from its previous hop"
    );
    assert!(cached > 0, "the target answered resends from its cache");
}

#[test]
fn replayed_or_rood_packets_never_move_a_peer() {
    let mut sim = Sim::new(31);
    sim.add(0, Sim::config());
    sim.add(1, Sim::config());
    sim.link(0, 1);
    let now = sim.now;
    sim.node(0).set_trust(now, &did(1), 0.9);
    // Capture one genuine datagram of node 1 to node 0.
    let id = sim
        .node(1)
        .send_ping(now, &did(0), addr(0), "x", "y", SendOptions::default())
        .unwrap();
    let genuine = sim.node(1).poll_transmit().unwrap();
    sim.node(1).cancel_request(id);
    sim.node(0).handle_datagram(now, addr(1), &genuine.payload);
    assert_eq!(sim.node(0).peers().get_address(now, &did(1)), Some(addr(1)));
    // The same bytes from elsewhere: a replay, dropped, peer stays put.
    let elsewhere: SocketAddr = "10.9.9.9:7150".parse().unwrap();
    sim.node(0)
        .handle_datagram(now, elsewhere, &genuine.payload);
    assert_eq!(sim.node(0).peers().get_address(now, &did(1)), Some(addr(1)));
    assert_eq!(sim.node(0).stats(now).engine.replays_dropped, 1);
    // A fresh packet claiming an untrusted DID (ROOD) creates no peer.
    let mut stranger = Engine::new("jis:sim:stranger", Sim::config(), 5);
    stranger
        .send_ping(now, &did(0), addr(0), "x", "y", SendOptions::default())
        .unwrap();
    let rood = stranger.poll_transmit().unwrap();
    sim.node(0).handle_datagram(now, elsewhere, &rood.payload);
    assert!(sim.node(0).peers().get(now, "jis:sim:stranger").is_none());
    assert_eq!(sim.node(0).stats(now).engine.rood_dropped, 1);
}
