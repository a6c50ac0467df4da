//! The uplink hook (docs/FLEETS.md): two sites that share no LAN, each a
//! simulated network of its own, joined only by a toy broker that moves
//! `Uplink` frames by topic DID, as MQTT would. The real broker is tested in
//! `tibet-iot-cli` (`src/fleet.rs`).

use std::time::Duration;

use tibet_iot_proto::sim::{Sim, addr, did};
use tibet_iot_proto::{Event, NodeStats, SendError, SendOptions, UPLINK_ADDR, Uplink};
use tibet_ping::{AirlockZone, PingOptions, RoutingMode};

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

/// Two sites and the topics their nodes subscribe to: (DID, site, node).
struct Fleet {
    sites: [Sim; 2],
    subscriptions: Vec<(String, usize, usize)>,
    published: Vec<Uplink>,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet {
            sites: [Sim::new(1), Sim::new(2)],
            subscriptions: Vec::new(),
            published: Vec::new(),
        }
    }

    /// Site A: phone 0 (no uplink) and hub 1 (uplink, also subscribed to
    /// the phone's DID), linked; site B: lock 5 (uplink). The lock and the
    /// hub trust the phone (a hub relays only for senders it would not drop
    /// itself, docs/SECURITY.md).
    fn phone_hub_lock() -> Fleet {
        let mut f = Fleet::new();
        f.sites[0].add(0, Sim::config());
        f.add_uplinked(0, 1);
        f.sites[0].link(0, 1);
        f.subscriptions.push((did(0), 0, 1));
        f.add_uplinked(1, 5);
        let now = f.sites[1].now();
        f.sites[1].node(5).set_trust(now, &did(0), 0.9);
        let now = f.sites[0].now();
        f.sites[0].node(1).set_trust(now, &did(0), 0.9);
        f
    }

    /// Node 0 at site A and node 5 at site B, both uplinked; node 5 trusts
    /// node 0 at `trust`.
    fn two_uplinked(trust: f64) -> Fleet {
        let mut f = Fleet::new();
        f.add_uplinked(0, 0);
        f.add_uplinked(1, 5);
        let now = f.sites[1].now();
        f.sites[1].node(5).set_trust(now, &did(0), trust);
        f
    }

    /// Node `i` at `site`, with the uplink attached and subscribed to its
    /// own DID.
    fn add_uplinked(&mut self, site: usize, i: usize) {
        self.sites[site].add(i, Sim::config());
        self.sites[site].node(i).set_uplink_enabled(true);
        self.subscriptions.push((did(i), site, i));
    }

    /// Moves every queued uplink frame to the subscribers of its topic DID;
    /// returns how many moved.
    fn broker(&mut self) -> usize {
        let mut moved = 0;
        loop {
            let mut frames = Vec::new();
            for (site, sim) in self.sites.iter_mut().enumerate() {
                let nodes: Vec<usize> = self
                    .subscriptions
                    .iter()
                    .filter(|s| s.1 == site)
                    .map(|s| s.2)
                    .collect();
                for i in nodes {
                    while let Some(u) = sim.node(i).poll_uplink() {
                        frames.push(u);
                    }
                }
            }
            if frames.is_empty() {
                return moved;
            }
            for u in frames {
                let (topic_did, frame) = match &u {
                    Uplink::Ping {
                        target_did, frame, ..
                    } => (target_did, frame),
                    Uplink::Response { origin_did, frame } => (origin_did, frame),
                    _ => unreachable!("no other kinds yet"),
                };
                for (_, site, i) in self.subscriptions.iter().filter(|s| &s.0 == topic_did) {
                    let sim = &mut self.sites[*site];
                    let now = sim.now();
                    sim.node(*i).handle_uplink_frame(now, frame);
                    moved += 1;
                }
                self.published.push(u.clone());
            }
        }
    }

    fn stats(&mut self, site: usize, i: usize) -> NodeStats {
        let now = self.sites[site].now();
        self.sites[site].node(i).stats(now)
    }

    /// Runs both sites for `d`, brokering between steps of 10 ms.
    fn run_for(&mut self, d: Duration) {
        let step = Duration::from_millis(10);
        let mut t = Duration::ZERO;
        while t < d {
            for sim in &mut self.sites {
                sim.run_for(step);
            }
            self.broker();
            t += step;
        }
    }

    /// Site 0's phone (node 0) sends a mesh ping to the lock (`did(5)`, at
    /// site 1) by way of its hub (node 1), and both sites run for 200 ms;
    /// the answer, if one came.
    fn phone_pings_the_lock(&mut self) -> Option<tibet_ping::PingResponse> {
        let now = self.sites[0].now();
        let id = self.sites[0]
            .node(0)
            .send_ping(
                now,
                &did(5),
                addr(1),
                "lock.open",
                "coming home",
                mesh_opts(),
            )
            .unwrap();
        self.run_for(Duration::from_millis(200));
        self.sites[0].outcome(0, id).expect("decided")
    }
}

#[test]
fn a_phone_pings_a_lock_at_another_site_through_its_hub_and_the_answer_returns() {
    let mut f = Fleet::phone_hub_lock();
    f.sites[0].node(1).set_audit_enabled(true);
    let now = f.sites[0].now();

    let resp = f.phone_pings_the_lock().expect("answered across sites");
    assert_eq!(resp.responder_did, did(5));
    assert_eq!(resp.airlock_zone, AirlockZone::Groen);

    // One ping for the lock's topic, one response for the phone's.
    assert_eq!(f.published.len(), 2, "{:?}", f.published);
    assert!(matches!(&f.published[0], Uplink::Ping { target_did, .. } if *target_did == did(5)));
    assert!(
        matches!(&f.published[1], Uplink::Response { origin_did, .. } if *origin_did == did(0))
    );
    let hub = f.sites[0].node(1).stats(now);
    assert_eq!((hub.uplink.pings_out, hub.uplink.frames_in), (1, 1));
    assert_eq!(hub.relay.responses_relayed, 1);
    let relays: Vec<_> = std::iter::from_fn(|| f.sites[0].node(1).poll_audit())
        .filter_map(|r| match r {
            tibet_iot_proto::AuditRecord::Relay { next_hops, .. } => Some(next_hops),
            _ => None,
        })
        .collect();
    assert_eq!(
        relays,
        [vec![UPLINK_ADDR]],
        "the relay to the uplink is audited"
    );
    let lock = f.stats(1, 5);
    assert_eq!(lock.engine.pings_answered, 1);
    assert_eq!(lock.uplink.responses_out, 1);
    // The broker is no LAN: nothing that came over it became a peer.
    assert_eq!(f.sites[1].node(5).peers().len(), 0);
}

#[test]
fn a_node_with_an_uplink_pings_a_far_did_itself_and_is_answered_once() {
    let mut f = Fleet::two_uplinked(0.9);
    let now = f.sites[0].now();
    let id = f.sites[0]
        .node(0)
        .send_ping(
            now,
            &did(5),
            UPLINK_ADDR,
            "lock.status",
            "check",
            mesh_opts(),
        )
        .unwrap();
    f.run_for(Duration::from_millis(100));
    let resp = f.sites[0]
        .outcome(0, id)
        .expect("decided")
        .expect("answered");
    assert_eq!(resp.responder_did, did(5));
    // The same frame delivered twice (QoS 1 redelivery) is answered from
    // the response cache, and the copy of the answer is ignored.
    let Uplink::Ping { frame, .. } = f.published[0].clone() else {
        panic!("{:?}", f.published[0]);
    };
    let now = f.sites[1].now();
    f.sites[1].node(5).handle_uplink_frame(now, &frame);
    f.broker();
    let lock = f.sites[1].node(5).stats(now);
    assert_eq!(lock.engine.duplicates_answered, 1);
    assert_eq!(lock.engine.pings_answered, 1);
    let phone = f.stats(0, 0);
    assert_eq!(phone.engine.responses_matched, 1);
    assert_eq!(phone.engine.responses_orphan, 1);
    assert_eq!(f.sites[0].node(0).peers().len(), 0);
    // No resends over the uplink: it delivers at least once by itself.
    assert_eq!(phone.engine.retransmissions, 0);
}

#[test]
fn an_untrusted_sender_over_the_uplink_is_dropped_as_rood() {
    let mut f = Fleet::two_uplinked(0.0);
    let now = f.sites[0].now();
    let id = f.sites[0]
        .node(0)
        .send_ping(
            now,
            &did(5),
            UPLINK_ADDR,
            "lock.open",
            "let me in",
            mesh_opts(),
        )
        .unwrap();
    f.run_for(Duration::from_secs(11));
    assert_eq!(
        f.sites[0].outcome(0, id),
        Some(None),
        "silence, as over UDP"
    );
    let lock = f.stats(1, 5);
    assert_eq!(lock.engine.rood_dropped, 1);
    assert_eq!(lock.uplink.responses_out, 0);
    let decided: Vec<_> = f.sites[1]
        .events()
        .iter()
        .filter_map(|(_, _, e)| match e {
            Event::PingDecided { from, zone, .. } => Some((*from, *zone)),
            _ => None,
        })
        .collect();
    assert_eq!(decided, [(UPLINK_ADDR, AirlockZone::Rood)]);
}

#[test]
fn lan_traffic_over_the_uplink_and_the_uplink_address_over_udp_are_refused() {
    let mut f = Fleet::new();
    f.add_uplinked(1, 5);
    // A beacon from a node on another site: refused, never a peer.
    let mut other = Sim::new(9);
    other.add(7, Sim::config());
    other.node(7).set_uplink_enabled(true);
    let now = other.now();
    other.node(7).announce_to(now, addr(5)).unwrap();
    let beacon = other.node(7).poll_transmit().unwrap().payload;
    let now = f.sites[1].now();
    f.sites[1].node(5).handle_uplink_frame(now, &beacon);
    f.sites[1]
        .node(5)
        .handle_uplink_frame(now, b"\xffnot a frame");
    let s = f.sites[1].node(5).stats(now);
    assert_eq!(s.uplink.frames_refused, 1);
    assert_eq!(s.engine.malformed, 1);
    assert_eq!(f.sites[1].node(5).peers().len(), 0);
    // A datagram cannot pretend to come from the uplink.
    let ping = {
        let now = other.now();
        other
            .node(7)
            .send_ping(now, &did(5), addr(5), "x", "y", SendOptions::default())
            .unwrap();
        other.node(7).poll_transmit().unwrap().payload
    };
    f.sites[1].node(5).handle_datagram(now, UPLINK_ADDR, &ping);
    let s = f.sites[1].node(5).stats(now);
    assert_eq!(s.engine.malformed, 2);
    assert_eq!(s.engine.pings_answered + s.engine.rood_dropped, 0);
    // Without an uplink, nothing is taken and nothing can be sent to it.
    let mut lone = Sim::new(3);
    lone.add(2, Sim::config());
    let now = lone.now();
    lone.node(2).handle_uplink_frame(now, &ping);
    assert_eq!(lone.node(2).stats(now).uplink.frames_refused, 1);
    assert_eq!(
        lone.node(2)
            .send_ping(now, &did(5), UPLINK_ADDR, "x", "y", SendOptions::default()),
        Err(SendError::NoUplink)
    );
}

#[test]
fn a_ping_from_the_uplink_for_an_unknown_did_never_goes_back_to_it() {
    // Site B's node 5 also subscribes to DID 6, which it does not know; it
    // relays for node 0, whom it trusts.
    let mut f = Fleet::two_uplinked(0.9);
    f.subscriptions.push((did(6), 1, 5));
    let now = f.sites[0].now();
    f.sites[0]
        .node(0)
        .send_ping(now, &did(6), UPLINK_ADDR, "x", "y", mesh_opts())
        .unwrap();
    f.run_for(Duration::from_millis(100));
    assert_eq!(f.published.len(), 1, "no loop: {:?}", f.published);
    let s = f.stats(1, 5);
    assert_eq!(s.uplink.pings_out, 0);
    assert_eq!(s.uplink.frames_in, 1);
    // It was relayed (to no one: node 5 has no peers), not uplinked again.
    assert_eq!(s.relay.relayed, 1);
}

#[test]
fn a_hub_delivers_a_far_ping_to_its_local_device_and_sends_the_answer_back_up() {
    let mut f = Fleet::new();
    // Site A: phone 0 on the uplink; site B: hub 6 (uplink, subscribed to
    // its device's DID) and lock 5, a plain device on the hub's LAN.
    f.add_uplinked(0, 0);
    f.add_uplinked(1, 6);
    f.sites[1].add(5, Sim::config());
    f.sites[1].link(5, 6);
    f.subscriptions.push((did(5), 1, 6));
    let now = f.sites[1].now();
    f.sites[1].node(5).set_trust(now, &did(0), 0.9);
    // A hub relays only for senders it would not drop itself, from the
    // broker as from the LAN.
    f.sites[1].node(6).set_trust(now, &did(0), 0.9);
    let now = f.sites[0].now();
    let id = f.sites[0]
        .node(0)
        .send_ping(now, &did(5), UPLINK_ADDR, "lock.open", "home", mesh_opts())
        .unwrap();
    f.run_for(Duration::from_millis(200));
    let resp = f.sites[0]
        .outcome(0, id)
        .expect("decided")
        .expect("answered through hub B");
    assert_eq!(resp.responder_did, did(5));
    let hub = f.stats(1, 6);
    assert_eq!(hub.relay.relayed, 1);
    assert_eq!(hub.relay.responses_relayed, 1);
    assert_eq!(hub.uplink.responses_out, 1, "addressed to the phone's DID");
    assert_eq!(hub.uplink.pings_out, 0);
    assert!(
        matches!(f.published.last(), Some(Uplink::Response { origin_did, .. }) if *origin_did == did(0))
    );
    // The lock heard the ping from its hub (one hop), not from the broker.
    assert_eq!(f.stats(1, 5).engine.pings_answered, 1);
}

#[test]
fn a_hub_with_other_local_peers_still_publishes_a_ping_it_cannot_route() {
    // The first test's sites, and a local sensor 2 the hub also knows. The
    // hub has no route to the lock, so it floods to the sensor and
    // publishes to the broker.
    let mut f = Fleet::phone_hub_lock();
    f.sites[0].add(2, Sim::config());
    f.sites[0].link(1, 2);

    let resp = f
        .phone_pings_the_lock()
        .expect("answered across sites although the hub had another peer");
    assert_eq!(resp.responder_did, did(5));
    assert!(
        f.published
            .iter()
            .any(|u| matches!(u, Uplink::Ping { target_did, .. } if *target_did == did(5))),
        "the ping went to the broker"
    );
}

/// What a client of the broker can publish to a hub's topic: `n` mesh pings
/// of its own making from `source` for `target`, each with a fresh packet id
/// and nonce.
fn frames_from(now: tibet_iot_proto::Now, source: &str, target: &str, n: usize) -> Vec<Vec<u8>> {
    use rand::SeedableRng;
    let mut node = tibet_ping::PingNode::new(
        source,
        tibet_ping::PingNodeConfig::default(),
        Box::new(rand::rngs::StdRng::seed_from_u64(9)),
    );
    let codec = tibet_ping::PacketCodec::json();
    (0..n)
        .map(|_| {
            let opts = PingOptions {
                routing_mode: RoutingMode::Mesh,
                max_hops: Some(5),
                ..PingOptions::default()
            };
            let p = node.ping(now.wall, target, "door.unlock", "flood", opts);
            codec.encode_packet(&p).unwrap()
        })
        .collect()
}

#[test]
fn a_broker_client_flooding_a_hub_fills_no_reverse_path_table_and_no_audit() {
    // The set-up of the first test; the hub audits.
    let mut f = Fleet::phone_hub_lock();
    f.sites[0].node(1).set_audit_enabled(true);
    let now = f.sites[0].now();
    // The hub half trusts a guest (GEEL): relayed, within its buckets.
    f.sites[0].node(1).set_trust(now, "jis:x:guest", 0.5);

    // 12,000 frames from an unknown sender (ROOD here) and 12,000 from the
    // guest, published to the hub's topic in one burst.
    let rood = frames_from(now, "jis:x:intruder", &did(5), 12_000);
    let geel = frames_from(now, "jis:x:guest", &did(5), 12_000);
    for frame in rood.iter().chain(&geel) {
        f.sites[0].node(1).handle_uplink_frame(now, frame);
    }
    let hub = f.stats(0, 1);
    assert_eq!(hub.uplink.frames_in, 24_000);
    assert_eq!(
        hub.engine.relay_refused_rood, 12_000,
        "ROOD is never relayed"
    );
    // The guest gets the burst of its buckets (64), no more.
    let relayed = hub.relay.relayed;
    assert_eq!(relayed, 64);
    assert_eq!(hub.engine.relay_rate_limited, 12_000 - relayed);
    assert_eq!(hub.relay.path_entries as u64, relayed);
    assert_eq!(hub.relay.paths_refused, 0);
    // One audit record per reverse path at most, and the drops in one
    // aggregated record per source and interval (after it ends).
    f.run_for(Duration::from_secs(11));
    let records: Vec<_> = std::iter::from_fn(|| f.sites[0].node(1).poll_audit()).collect();
    let relays = records
        .iter()
        .filter(|r| matches!(r, tibet_iot_proto::AuditRecord::Relay { .. }))
        .count();
    assert_eq!(relays as u64, relayed);
    assert!(records.len() <= relays + 4, "{} records", records.len());

    // The phone's real cross-site ping still gets through.
    let resp = f
        .phone_pings_the_lock()
        .expect("answered across sites after the flood");
    assert_eq!(resp.responder_did, did(5));
}
