//! Learned routing on the simulated network (`tibet_iot_proto::sim`):
//! learning from heartbeats and answers, unicast along routes, failure and
//! recovery, partitions, hostile advertisements, and the scenario runner.

use std::time::Duration;

use tibet_iot_proto::sim::scenario::{self, ScenarioConfig, Topology};
use tibet_iot_proto::sim::{Sim, addr, did};
use tibet_iot_proto::{
    Advert, Engine, ONE_WAY_KEY, ROUTES_KEY, RouteSource, SendOptions, TRIGGER_GAP,
};
use tibet_ping::{PingOptions, PingType};

fn mesh_opts() -> SendOptions {
    SendOptions {
        ping: PingOptions {
            max_hops: Some(10),
            ..PingOptions::default()
        },
        ..SendOptions::default()
    }
}

/// Nodes 0..n, linked by `edges`, everyone trusting everyone.
fn network(seed: u64, n: usize, edges: &[(usize, usize)]) -> Sim {
    let mut sim = Sim::new(seed);
    for i in 0..n {
        sim.add(i, Sim::config());
    }
    for &(a, b) in edges {
        sim.link(a, b);
    }
    sim.trust_all(n);
    sim
}

#[test]
fn heartbeats_teach_a_line_its_routes_and_pings_follow_them() {
    let mut sim = network(1, 4, &[(0, 1), (1, 2), (2, 3)]);
    let now = sim.now();
    assert!(sim.node(0).routes().get(now.mono, &did(3)).is_none());
    // Three heartbeat rounds carry node 3's route to node 0.
    sim.run_for(Duration::from_secs(95));
    let now = sim.now();
    let r = sim
        .node(0)
        .routes()
        .get(now.mono, &did(3))
        .cloned()
        .unwrap();
    assert_eq!((r.next_hop, r.hops), (addr(1), 3));
    assert_eq!(r.source, RouteSource::Advertised);
    let n1 = sim
        .node(0)
        .routes()
        .get(now.mono, &did(1))
        .cloned()
        .unwrap();
    assert_eq!(
        (n1.next_hop, n1.hops, n1.source),
        (addr(1), 1, RouteSource::Neighbour)
    );
    // Node 1 learned node 3 from node 2 and must not learn it back from 0.
    assert_eq!(
        sim.node(1)
            .routes()
            .get(now.mono, &did(3))
            .unwrap()
            .next_hop,
        addr(2)
    );

    let before = sim.mesh_datagrams();
    let id = sim
        .node(0)
        .send_mesh_ping(now, &did(3), "x", "routed", mesh_opts())
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    let resp = sim.outcome(0, id).unwrap().expect("answered");
    assert_eq!(resp.responder_did, did(3));
    assert_eq!(
        sim.mesh_datagrams() - before,
        6,
        "three links there, three back, no flood"
    );
    let now = sim.now();
    assert_eq!(sim.node(1).stats(now).routes.routed, 1);
    assert_eq!(sim.node(1).stats(now).routes.flooded, 0);
}

#[test]
fn a_dead_next_hop_fails_the_route_and_one_flood_finds_the_other_way() {
    // A diamond: 0 reaches 3 through 1 or through 2.
    let mut sim = network(2, 4, &[(0, 1), (0, 2), (1, 3), (2, 3)]);
    sim.run_for(Duration::from_secs(95));
    let now = sim.now();
    let via = sim
        .node(0)
        .routes()
        .get(now.mono, &did(3))
        .unwrap()
        .next_hop;
    let (dead, other) = if via == addr(1) { (1, 2) } else { (2, 1) };
    sim.kill(dead);
    let opts = SendOptions {
        timeout: Some(Duration::from_secs(4)),
        ..mesh_opts()
    };
    let id = sim
        .node(0)
        .send_mesh_ping(now, &did(3), "x", "around the dead", opts)
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.outcome(0, id), None, "the routed try is still waiting");
    sim.run_for(Duration::from_secs(3));
    let resp = sim
        .outcome(0, id)
        .unwrap()
        .expect("answered by the flood retry");
    assert_eq!(resp.responder_did, did(3));
    let now = sim.now();
    let st = sim.node(0).stats(now).routes;
    assert_eq!(st.failed, 1, "the dead route was dropped");
    assert_eq!(st.flooded, 1, "and the ping flooded once");
    assert_eq!(
        sim.node(0)
            .routes()
            .get(now.mono, &did(3))
            .unwrap()
            .next_hop,
        addr(other),
        "the answer taught the way that works"
    );
    // The next ping goes straight along the new route.
    let id = sim
        .node(0)
        .send_mesh_ping(now, &did(3), "x", "again", mesh_opts())
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    assert!(sim.outcome(0, id).unwrap().is_some());
    let now = sim.now();
    assert_eq!(sim.node(0).stats(now).routes.flooded, 1);
}

#[test]
fn a_partition_loses_routes_and_healing_brings_them_back() {
    // Discovery on: after the heal, beacons reintroduce the lost peers.
    let mut sim = Sim::new(3);
    let cfg = tibet_iot_proto::TransportConfig {
        discovery_enabled: true,
        ..Sim::config()
    };
    for i in 0..3 {
        sim.add(i, cfg.clone());
    }
    sim.link(0, 1);
    sim.link(1, 2);
    sim.trust_all(3);
    sim.run_for(Duration::from_secs(65));
    let now = sim.now();
    assert!(sim.node(0).routes().get(now.mono, &did(2)).is_some());
    sim.cut(1, 2);
    // Node 1 stops hearing node 2, expires it as a peer (120 s idle, 45 s
    // sweeps) and with it every route through it; node 0 hears of it by
    // poisoned advertisements or age.
    sim.run_for(Duration::from_secs(400));
    let now = sim.now();
    assert!(sim.node(1).routes().get(now.mono, &did(2)).is_none());
    assert!(sim.node(0).routes().get(now.mono, &did(2)).is_none());
    let lost = sim
        .node(0)
        .send_mesh_ping(now, &did(2), "x", "cut", mesh_opts())
        .unwrap();
    sim.run_for(Duration::from_secs(11));
    assert_eq!(sim.outcome(0, lost), Some(None), "no way across the cut");

    sim.heal(1, 2);
    // The link is back, but nodes 1 and 2 expired each other as peers: the
    // next beacons reintroduce them, heartbeats and advertisements follow.
    sim.run_for(Duration::from_secs(160));
    let now = sim.now();
    assert_eq!(
        sim.node(0).routes().get(now.mono, &did(2)).map(|r| r.hops),
        Some(2),
        "routes learned again after the heal"
    );
    let ok = sim
        .node(0)
        .send_mesh_ping(now, &did(2), "x", "healed", mesh_opts())
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    assert!(sim.outcome(0, ok).unwrap().is_some());
}

/// A next hop that went silent stops carrying routes after two heartbeat
/// intervals and a fifth (66 s), long before the peer timeout (120 s): the
/// ping floods at once around it instead of waiting half its timeout.
#[test]
fn a_silent_next_hop_stops_carrying_routes_before_the_peer_timeout() {
    let mut sim = network(2, 4, &[(0, 1), (0, 2), (1, 3), (2, 3)]);
    sim.run_for(Duration::from_secs(95));
    let now = sim.now();
    let via = sim.node(0).route_to(now.mono, &did(3)).unwrap().next_hop;
    let dead = if via == addr(1) { 1 } else { 2 };
    sim.kill(dead);
    sim.run_for(Duration::from_secs(70));
    let now = sim.now();
    assert!(
        sim.node(0).peers().get(now.mono, &did(dead)).is_some(),
        "still a peer: the peer timeout has not passed"
    );
    assert_ne!(
        sim.node(0).route_to(now.mono, &did(3)).map(|r| r.next_hop),
        Some(via),
        "an unanswered heartbeat and probe withdrew the route through it"
    );
    assert_eq!(sim.node(0).stats(now).routes.neighbours_lost, 1);
    let id = sim
        .node(0)
        .send_mesh_ping(now, &did(3), "x", "around the silent", mesh_opts())
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    let resp = sim.outcome(0, id).unwrap().expect("answered within 1 s");
    assert_eq!(resp.responder_did, did(3));
    let now = sim.now();
    let st = sim.node(0).stats(now).routes;
    assert_eq!(st.routed + st.flooded, 1, "one try, around the silent one");
}

/// New routes travel in triggered updates: down a line of eight nodes in
/// seconds after the first heartbeat round (30 s), where one heartbeat
/// round a link would take seven rounds (3.5 min); each node sends at most
/// one advertisement per `TRIGGER_GAP`.
#[test]
fn triggered_updates_carry_new_routes_down_a_line_within_seconds() {
    let n = 8;
    let edges: Vec<(usize, usize)> = (1..n).map(|i| (i - 1, i)).collect();
    let mut sim = network(2, n, &edges);
    sim.run_for(Duration::from_secs(29));
    assert!(sim.node(0).routes().is_empty(), "before the first round");
    let sent_before = sim.sent();
    sim.run_for(Duration::from_secs(30));
    let now2 = sim.now();
    for (from, to) in [(0, n - 1), (n - 1, 0)] {
        let r = sim.node(from).routes().get(now2.mono, &did(to)).cloned();
        assert_eq!(r.map(|r| r.hops), Some(7), "{from} -> {to}");
    }
    // Bounded: each node's first round (a heartbeat and its answer per
    // neighbour), a whole table to each neighbour that began to advertise
    // and at most one update per gap to each neighbour (updates are not
    // answered), within 30 s.
    let per_node_link = 2 + 1 + 30 / TRIGGER_GAP.as_secs();
    let sent = sim.sent() - sent_before;
    assert!(
        sent <= per_node_link * 2 * (n as u64 - 1),
        "{sent} datagrams in 30 s"
    );
}

/// A heartbeat on the wire.
struct Heartbeat {
    at: tibet_iot_proto::MonoTime,
    from: std::net::SocketAddr,
    to: std::net::SocketAddr,
    id: String,
    one_way: bool,
}

/// The heartbeats on the wire, and the packet ids answered.
fn heartbeats(sim: &Sim) -> (Vec<Heartbeat>, std::collections::HashSet<String>) {
    let codec = tibet_ping::PacketCodec::json();
    let mut all = Vec::new();
    let mut answered = std::collections::HashSet::new();
    for d in sim.wire() {
        match codec.decode(&d.bytes) {
            Ok(tibet_ping::Frame::Packet(p)) if p.ping_type == PingType::Heartbeat => {
                let one_way = p.payload.get(ONE_WAY_KEY) == Some(&true.into());
                assert!(
                    !one_way || p.payload.contains_key(ROUTES_KEY),
                    "an update carries routes"
                );
                all.push(Heartbeat {
                    at: d.at,
                    from: d.from,
                    to: d.to,
                    id: p.packet_id,
                    one_way,
                });
            }
            Ok(tibet_ping::Frame::Response(r)) => {
                answered.insert(r.in_response_to);
            }
            _ => {}
        }
    }
    (all, answered)
}

/// Triggered updates to a neighbour heard within the request timeout say
/// they want no answer and get none; the rounds' heartbeats are answered
/// (the neighbour's liveness), and what the updates carry is learned all
/// the same. An update to a neighbour not heard lately (here: cut off)
/// asks for an answer, so that its silence gets the neighbour probed.
#[test]
fn updates_are_one_way_to_neighbours_heard_lately_and_rounds_are_answered() {
    let n = 12;
    let edges: Vec<(usize, usize)> = (1..n).map(|i| (i - 1, i)).collect();
    let mut sim = network(3, n, &edges);
    sim.record_wire(true);
    // The first round is at 30 s; the routes then travel in updates.
    sim.run_for(Duration::from_secs(31));
    let cut_at = sim.now().mono;
    sim.cut(5, 6);
    sim.run_for(Duration::from_secs(27));
    let (all, answered) = heartbeats(&sim);
    let across = |h: &Heartbeat| {
        [(addr(5), addr(6)), (addr(6), addr(5))].contains(&(h.from, h.to)) && h.at >= cut_at
    };
    let one_way = all.iter().filter(|h| h.one_way).count();
    assert!(one_way >= n, "{one_way} one-way updates");
    for h in all.iter().filter(|h| !across(h)) {
        assert_eq!(
            answered.contains(&h.id),
            !h.one_way,
            "{} -> {}",
            h.from,
            h.to
        );
    }
    let now = sim.now();
    let unanswered: u64 = (0..n)
        .map(|i| sim.node(i).stats(now).engine.updates_unanswered)
        .sum();
    assert!(unanswered > 0);
    let r = sim.node(0).routes().get(now.mono, &did(5)).cloned();
    assert_eq!(r.map(|r| r.hops), Some(5));
    // Across the cut, once node 6 was not heard for the request timeout:
    // updates, not one-way.
    let quiet = cut_at + Duration::from_secs(11);
    let late: Vec<&Heartbeat> = all
        .iter()
        .filter(|h| (h.from, h.to) == (addr(5), addr(6)) && h.at >= quiet)
        .collect();
    assert!(!late.is_empty(), "node 5 kept sending node 6 updates");
    assert!(
        late.iter().all(|h| !h.one_way),
        "a one-way update to a quiet neighbour"
    );
}

/// A heartbeat from `hostile` to node 0 claiming node 2 one hop away.
fn hostile_advert(sim: &mut Sim, hostile: &mut Engine) -> Vec<u8> {
    let now = sim.now();
    let mut advert = tibet_ping::JsonMap::new();
    advert.insert(did(2), 0.into());
    let mut payload = tibet_ping::JsonMap::new();
    payload.insert(ROUTES_KEY.to_owned(), advert.into());
    let opts = SendOptions {
        ping: PingOptions {
            ping_type: PingType::Heartbeat,
            payload,
            ..PingOptions::default()
        },
        ..SendOptions::default()
    };
    hostile
        .send_ping(now, &did(0), addr(0), "heartbeat", "trust me", opts)
        .unwrap();
    hostile.poll_transmit().unwrap().payload.to_vec()
}

#[test]
fn an_untrusted_node_advertising_routes_it_does_not_have_is_ignored() {
    let mut sim = network(4, 3, &[(0, 1), (1, 2)]);
    sim.run_for(Duration::from_secs(65));
    let now = sim.now();
    assert_eq!(
        sim.node(0)
            .routes()
            .get(now.mono, &did(2))
            .unwrap()
            .next_hop,
        addr(1)
    );
    // The hostile node is answered (GEEL: trust 0.5) but is not trusted.
    let h = 66;
    let mut hostile = Engine::new(did(h), Sim::config(), 9);
    sim.node(0).set_trust(now, &did(h), 0.5);
    let answered = sim.node(0).stats(now).engine.pings_answered;
    let bytes = hostile_advert(&mut sim, &mut hostile);
    sim.node(0).handle_datagram(now, addr(h), &bytes);
    assert!(
        !sim.node(0).routes().wants_advertisements(now.mono, addr(h)),
        "an untrusted node is sent no routes either"
    );
    let st = sim.node(0).stats(now);
    assert_eq!(st.engine.pings_answered, answered + 1, "answered, as GEEL");
    assert!(st.routes.untrusted_ignored >= 1);
    let r = sim.node(0).routes().get(now.mono, &did(2)).unwrap().clone();
    assert_eq!((r.next_hop, r.hops), (addr(1), 2), "the real route stays");
    assert!(sim.node(0).routes().get(now.mono, &did(h)).is_none());

    // The same advertisement from a trusted neighbour is learned: the
    // check above is the trust predicate, not a parsing accident.
    sim.node(0).set_trust(now, &did(h), 0.9);
    assert!(sim.node(0).may_teach_routes(now, &did(h)));
    let bytes = hostile_advert(&mut sim, &mut hostile);
    sim.node(0).handle_datagram(now, addr(h), &bytes);
    let r = sim.node(0).routes().get(now.mono, &did(2)).unwrap().clone();
    assert_eq!((r.next_hop, r.hops), (addr(h), 1));
}

/// The routes of every heartbeat `from` sent `to` on the wire (`None`: a
/// heartbeat without the `routes` key).
fn adverts(sim: &Sim, from: usize, to: usize) -> Vec<Option<Vec<(String, u32)>>> {
    let codec = tibet_ping::PacketCodec::json();
    sim.wire()
        .iter()
        .filter(|d| d.from == addr(from) && d.to == addr(to))
        .filter_map(|d| match codec.decode(&d.bytes) {
            Ok(tibet_ping::Frame::Packet(p)) if p.ping_type == PingType::Heartbeat => {
                Some(p.payload.get(ROUTES_KEY).map(|v| {
                    let text = v.as_str().expect("routes are advertised as text");
                    Advert::Text(text)
                        .entries()
                        .map(|e| e.map(|(k, h)| (k.to_owned(), h)).expect("well formed"))
                        .collect()
                }))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn only_neighbours_that_route_are_sent_advertisements() {
    // A hub (0) with a routing neighbour (1, which has a neighbour of its
    // own, 3) and a device that does not route (2).
    let mut sim = Sim::new(7);
    for i in 0..4 {
        let config = tibet_iot_proto::TransportConfig {
            routing: i != 2,
            ..Sim::config()
        };
        sim.add(i, config);
    }
    for (a, b) in [(0, 1), (0, 2), (1, 3)] {
        sim.link(a, b);
    }
    sim.trust_all(4);
    sim.record_wire(true);
    sim.run_for(Duration::from_secs(125));
    let now = sim.now();

    let to_router = adverts(&sim, 0, 1);
    let to_device = adverts(&sim, 0, 2);
    assert!(
        to_router.len() >= 3 && to_device.len() >= 3,
        "heartbeats flowed"
    );
    assert!(
        to_router.iter().flatten().any(|r| r.contains(&(did(2), 1))),
        "the routing neighbour is told of the device: {to_router:?}"
    );
    assert!(
        to_device
            .iter()
            .all(|r| r.as_ref().is_some_and(|m| m.is_empty())),
        "the device only hears that the hub routes: {to_device:?}"
    );
    assert!(
        adverts(&sim, 2, 0).iter().all(Option::is_none),
        "a node with routing off says nothing of routes"
    );
    assert!(sim.node(0).routes().wants_advertisements(now.mono, addr(1)));
    assert!(!sim.node(0).routes().wants_advertisements(now.mono, addr(2)));
    // Routes still travel both ways through the hub.
    assert_eq!(
        sim.node(0)
            .routes()
            .get(now.mono, &did(3))
            .map(|r| r.next_hop),
        Some(addr(1))
    );
    assert_eq!(
        sim.node(1)
            .routes()
            .get(now.mono, &did(2))
            .map(|r| r.next_hop),
        Some(addr(0))
    );
}

fn small(seed: u64) -> ScenarioConfig {
    ScenarioConfig {
        nodes: 40,
        pings: 20,
        seed,
        loss: 0.05,
        warmup: Duration::from_secs(120),
        ..ScenarioConfig::default()
    }
}

#[test]
fn the_same_scenario_and_seed_give_the_same_report() {
    let a = scenario::run(&small(5), &mut |_| {});
    let b = scenario::run(&small(5), &mut |_| {});
    assert_eq!(a, b);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert!(a.delivered > 0 && a.flood_transmissions_per_delivery.is_some());
    let c = scenario::run(&small(6), &mut |_| {});
    assert_ne!(a, c, "another seed, another network");
}

/// The same with areas and churn: nodes named into 3 x 3 areas, routes to
/// the other areas, 5 % of the nodes leaving and coming back each minute.
#[test]
fn the_same_scenario_with_areas_and_churn_gives_the_same_report() {
    let cfg = ScenarioConfig {
        nodes: 60,
        areas: Some(3),
        churn: 0.05,
        baseline: false,
        warmup: Duration::from_secs(150),
        ..small(5)
    };
    let a = scenario::run(&cfg, &mut |_| {});
    let b = scenario::run(&cfg, &mut |_| {});
    assert_eq!(a, b);
    // The diagnostic (routes followed, counters, the warm-up's lines)
    // only reads the engines.
    let traced = ScenarioConfig {
        diagnostics: true,
        ..cfg.clone()
    };
    assert_eq!(
        a,
        scenario::run(&traced, &mut |_| {}),
        "diagnostics change nothing"
    );
    assert_eq!((a.areas, a.churned_per_minute), (9, 3));
    assert!(a.delivered > 0, "{a:?}");
    let flat = scenario::run(
        &ScenarioConfig {
            areas: Some(1),
            ..cfg.clone()
        },
        &mut |_| {},
    );
    assert_ne!(a, flat, "areas change the routes");
}

#[test]
fn topologies_are_connected_and_shaped_as_named() {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    assert_eq!(scenario::edges(Topology::Line, 5, &mut rng).len(), 4);
    assert_eq!(
        scenario::edges(Topology::Star, 5, &mut rng),
        [(0, 1), (0, 2), (0, 3), (0, 4)]
    );
    assert_eq!(scenario::edges(Topology::Grid, 9, &mut rng).len(), 12);
    let g = scenario::edges(Topology::Geometric, 200, &mut rng);
    assert!(g.len() > 200, "{} links", g.len());
    assert!(scenario::edges(Topology::Random, 50, &mut rng).len() >= 49);
}

/// The 1,000-node target of docs/PERFORMANCE.md at reduced size: at 10 %
/// loss nearly every mesh ping is answered, and routing sends at most a
/// tenth of what flooding sends for the same pings.
#[test]
fn a_hundred_geometric_nodes_at_ten_percent_loss() {
    let cfg = ScenarioConfig {
        nodes: 100,
        pings: 40,
        seed: 3,
        loss: 0.1,
        warmup: Duration::from_secs(150),
        ..ScenarioConfig::default()
    };
    let r = scenario::run(&cfg, &mut |_| {});
    assert!(r.delivery_ratio >= 0.98, "{r:?}");
    let flood = r.flood_transmissions_per_delivery.unwrap();
    assert!(
        r.transmissions_per_delivery * 10.0 <= flood,
        "routed {} vs flood {flood}",
        r.transmissions_per_delivery
    );
    assert!(r.p50_hops >= 2, "{r:?}");
}
