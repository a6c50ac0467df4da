//! Routes that heal under churn, on the simulated network: a relay whose
//! next hop died finds out from the sender's resends (a probe that goes
//! unanswered), withdraws the routes through it, and sends the next resend
//! another way, long before the dead neighbour's peer entry times out.

use std::time::Duration;

use tibet_iot_proto::sim::{Sim, addr, did};
use tibet_iot_proto::{RetransmitPolicy, RouteStats, SendOptions};
use tibet_ping::PingOptions;

/// Mesh pings as the scenario runner sends them: resent on silence (the
/// signal relays act on), 10 s in all.
fn resent() -> SendOptions {
    SendOptions {
        ping: PingOptions {
            max_hops: Some(10),
            ..PingOptions::default()
        },
        timeout: Some(Duration::from_secs(10)),
        retransmit: Some(RetransmitPolicy {
            max_retransmits: 4,
            initial_timeout: Duration::from_millis(250),
            random_factor: 1.5,
        }),
    }
}

/// What one run of [`heal`] shows.
#[derive(Debug, PartialEq)]
struct Healed {
    /// The relay's next hop towards node 4 before the break.
    via_before: std::net::SocketAddr,
    /// Virtual time from the first ping to its answer.
    first_answer: Duration,
    /// Pings answered after the repair, of those sent.
    answered_after: (usize, usize),
    /// The relay's routing counters.
    relay: RouteStats,
    /// Floods the sender had to fall back to.
    sender_floods: u64,
}

/// Node 0 pings node 4 through the relay, node 1, which reaches 4 through
/// 2 or 3. Once routes are learned, the one of 2 and 3 that node 1 uses
/// dies; node 0 keeps pinging.
fn heal(seed: u64) -> Healed {
    let mut sim = Sim::new(seed);
    for i in 0..5 {
        sim.add(i, Sim::config());
    }
    for (a, b) in [(0, 1), (1, 2), (1, 3), (2, 4), (3, 4)] {
        sim.link(a, b);
    }
    sim.trust_all(5);
    sim.run_for(Duration::from_secs(95));
    let now = sim.now();
    let via_before = sim.node(1).route_to(now.mono, &did(4)).unwrap().next_hop;
    let dead = if via_before == addr(2) { 2 } else { 3 };
    sim.kill(dead);

    let start = sim.now();
    let id = sim
        .node(0)
        .send_mesh_ping(start, &did(4), "x", "across the break", resent())
        .unwrap();
    let mut first_answer = None;
    for _ in 0..100 {
        sim.run_for(Duration::from_millis(50));
        if let Some(out) = sim.outcome(0, id) {
            assert_eq!(out.expect("answered").responder_did, did(4));
            first_answer = Some(sim.now().mono.saturating_duration_since(start.mono));
            break;
        }
    }
    let first_answer = first_answer.expect("answered within 5 s");

    let mut answered = 0;
    let sent = 5;
    for _ in 0..sent {
        let now = sim.now();
        let id = sim
            .node(0)
            .send_mesh_ping(now, &did(4), "x", "after the repair", resent())
            .unwrap();
        sim.run_for(Duration::from_secs(2));
        if let Some(Some(r)) = sim.outcome(0, id) {
            assert_eq!(r.responder_did, did(4));
            answered += 1;
        }
    }
    let now = sim.now();
    Healed {
        via_before,
        first_answer,
        answered_after: (answered, sent),
        relay: sim.node(1).stats(now).routes,
        sender_floods: sim.node(0).stats(now).routes.flooded,
    }
}

#[test]
fn a_relay_whose_next_hop_died_repairs_the_route_and_pings_keep_arriving() {
    let h = heal(7);
    assert!(
        h.first_answer < Duration::from_secs(3),
        "repaired at the relay within 3 s, before the sender's 5 s fallback: {:?}",
        h.first_answer
    );
    assert_eq!(h.sender_floods, 0, "the sender never fell back to a flood");
    assert_eq!(h.relay.neighbours_lost, 1, "the dead neighbour, found out");
    assert!(h.relay.probes >= 1);
    assert!(h.relay.repaired >= 1, "a resend went another way");
    assert_eq!(h.answered_after, (5, 5), "every later ping arrives");
}

#[test]
fn the_same_seed_heals_the_same_way() {
    assert_eq!(heal(11), heal(11));
}
