//! Routing by areas (`TransportConfig::route_areas`) on the simulated
//! network: routes to other areas instead of to their nodes, and a neighbour
//! of another area cannot steer traffic inside this one.

use std::time::Duration;

use tibet_iot_proto::sim::scenario::{self, ScenarioConfig};
use tibet_iot_proto::sim::{Sim, addr};
use tibet_iot_proto::{Engine, ROUTES_KEY, SendOptions, TransportConfig};
use tibet_ping::{PingOptions, PingType};

/// Warm-up of the 2,000-node scenario, in virtual seconds.
const WARMUP_S: u64 = 300;

/// Node `i` of area `area` (`jis:t:<area>:n<i>`).
fn name(area: &str, i: usize) -> String {
    format!("jis:t:{area}:n{i}")
}

/// A line of nodes named by `areas` (node i in `areas[i]`), everyone
/// trusting everyone; routing by areas when `by_areas`.
fn line(areas: &[&str], by_areas: bool) -> Sim {
    let mut sim = Sim::new(7);
    let cfg = TransportConfig {
        route_areas: by_areas,
        ..Sim::config()
    };
    for (i, a) in areas.iter().enumerate() {
        sim.add_named(i, name(a, i), cfg.clone());
    }
    for i in 1..areas.len() {
        sim.link(i - 1, i);
    }
    sim.trust_all(areas.len());
    sim
}

#[test]
fn a_node_routes_to_other_areas_and_their_nodes_carry_the_ping_in() {
    let mut sim = line(&["a", "a", "b", "b"], true);
    sim.run_for(Duration::from_secs(95));
    let now = sim.now();
    let keys: Vec<String> = sim
        .node(0)
        .routes()
        .iter()
        .map(|(k, _)| k.to_owned())
        .collect();
    assert_eq!(keys, ["jis:t:a:n1", "jis:t:b:*"], "one route for area b");
    let r = sim.node(0).route_to(now.mono, &name("b", 3)).unwrap();
    assert_eq!((r.next_hop, r.hops), (addr(1), 2), "to b's nearest node");
    let inside = sim.node(2).route_to(now.mono, &name("b", 3)).unwrap();
    assert_eq!((inside.next_hop, inside.hops), (addr(3), 1));

    let before = sim.mesh_datagrams();
    let opts = SendOptions {
        ping: PingOptions {
            max_hops: Some(10),
            ..PingOptions::default()
        },
        ..SendOptions::default()
    };
    let id = sim
        .node(0)
        .send_mesh_ping(now, &name("b", 3), "x", "across areas", opts)
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    let resp = sim.outcome(0, id).unwrap().expect("answered");
    assert_eq!(resp.responder_did, name("b", 3));
    assert_eq!(
        sim.mesh_datagrams() - before,
        6,
        "three links there and back"
    );
    let now = sim.now();
    assert_eq!(sim.node(1).stats(now).routes.flooded, 0);
}

/// A heartbeat from `liar` (named as node 3) to node 2 claiming node 0 is
/// right next to it.
fn lie(sim: &mut Sim, liar: &mut Engine) {
    let now = sim.now();
    let mut advert = tibet_ping::JsonMap::new();
    advert.insert(name("a", 0), 0.into());
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
    let to = sim.did_of(2);
    liar.send_ping(now, &to, addr(2), "heartbeat", "lie", opts)
        .unwrap();
    let bytes = liar.poll_transmit().unwrap().payload.to_vec();
    sim.node(2).handle_datagram(now, addr(3), &bytes);
}

#[test]
fn a_trusted_neighbour_of_another_area_cannot_teach_routes_inside_this_one() {
    for by_areas in [true, false] {
        let mut sim = line(&["a", "a", "a", "b"], by_areas);
        sim.run_for(Duration::from_secs(95));
        let now = sim.now();
        let honest = sim.node(2).route_to(now.mono, &name("a", 0)).unwrap();
        assert_eq!((honest.next_hop, honest.hops), (addr(1), 2));
        let mut liar = Engine::new(name("b", 3), Sim::config(), 99);
        lie(&mut sim, &mut liar);
        let now = sim.now();
        let r = sim.node(2).route_to(now.mono, &name("a", 0)).unwrap();
        if by_areas {
            assert_eq!(r.next_hop, addr(1), "the lie is refused");
            assert!(sim.node(2).stats(now).routes.entries_ignored >= 1);
        } else {
            // Flat, the same trusted neighbour is believed: the refusal
            // above is the area rule, not the trust check.
            assert_eq!((r.next_hop, r.hops), (addr(3), 1));
        }
    }
}

/// 2,000 geometric nodes at 10 % loss, 20 pings, no flood baseline, with
/// `seed` and `warmup_s` seconds of warm-up.
fn two_thousand(seed: u64, warmup_s: u64) -> ScenarioConfig {
    ScenarioConfig {
        nodes: 2_000,
        loss: 0.1,
        pings: 20,
        seed,
        baseline: false,
        warmup: Duration::from_secs(warmup_s),
        ..ScenarioConfig::default()
    }
}

/// The scale scenario at 2,000 geometric nodes in areas at 10 % loss:
/// tables hold the own area and the other areas, not the mesh, and the
/// pings still arrive. About 17 s in a release build
/// (`cargo test --release -p tibet-iot-proto --test areas -- --ignored`);
/// a debug build takes minutes, so the default run leaves it out.
#[test]
#[ignore = "minutes in a debug build; run with --release -- --ignored"]
fn two_thousand_nodes_in_areas_at_ten_percent_loss() {
    let cfg = two_thousand(1, WARMUP_S);
    let r = scenario::run(&cfg, &mut |_| {});
    eprintln!("{r:?}");
    assert!(r.areas > 1, "{r:?}");
    assert!(r.delivery_ratio >= 0.95, "{r:?}");
    assert!(r.transmissions_per_delivery <= 200.0, "{r:?}");
    assert!(
        r.routes_per_node < 300.0,
        "a flat table would hold 1,999: {r:?}"
    );
}

/// 2,000 geometric nodes that start together route after one minute:
/// triggered updates carry new routes across the mesh within it (with
/// heartbeat rounds only, a route crosses about one link per round: 17 and
/// 18 of 20 pings arrived on seeds 1 and 2, most of them by flood, some
/// 3,600 datagrams each). Released like the test above.
#[test]
#[ignore = "minutes in a debug build; run with --release -- --ignored"]
fn two_thousand_nodes_that_start_together_route_after_one_minute() {
    let cfg = two_thousand(1, 60);
    let r = scenario::run(&cfg, &mut |_| {});
    eprintln!("{r:?}");
    assert!(r.delivery_ratio >= 0.95, "{r:?}");
    assert!(r.transmissions_per_delivery <= 200.0, "{r:?}");
    // One update per gap at most: the control traffic of the first minute
    // stays within a few times that of the heartbeat rounds.
    assert!(r.control_datagrams_per_node_minute <= 400.0, "{r:?}");
}

/// Nested areas at 2,000 geometric nodes: 7 x 7 regions of 2 x 2 cells
/// (the 49 cells per side rounded up to 14 x 14 = 196 cells). A table holds
/// the own cell, the other cells of its region and the other regions, and
/// the pings still arrive. Released like the test above.
#[test]
#[ignore = "minutes in a debug build; run with --release -- --ignored"]
fn two_thousand_nodes_in_regions_of_areas_at_ten_percent_loss() {
    let cfg = ScenarioConfig {
        areas: Some(13),
        regions: Some(7),
        ..two_thousand(2, WARMUP_S)
    };
    let r = scenario::run(&cfg, &mut |_| {});
    eprintln!("{r:?}");
    assert_eq!((r.areas, r.regions), (14 * 14, Some(49)), "{r:?}");
    assert!(r.delivery_ratio >= 0.95, "{r:?}");
    // One level would hold about 10 per cell + 195 cells.
    assert!(
        r.routes_per_node < 10.0 * 2.0 + 3.0 + 48.0,
        "own cell, 3 cells of the region, 48 regions: {r:?}"
    );
}
