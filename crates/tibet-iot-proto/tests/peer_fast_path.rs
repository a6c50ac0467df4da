//! The hub's fast path for a known peer (docs/PERFORMANCE.md, "Hub with
//! 10,000 peers"): a trusted peer's ping from the address it proved is
//! answered without looking up the trust table or the credit table. What
//! must not change: a new trust score applies to the very next ping, and
//! everyone else (untrusted senders, trusted peers that have not proved
//! their address, peers that moved) earns amplification credit as before.

use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot_proto::{Engine, MonoTime, Now, TransportConfig};
use tibet_ping::{PacketCodec, PingNode, PingNodeConfig, PingOptions, Timestamp};

const HUB: &str = "jis:test:hub";

struct Bench {
    hub: Engine,
    codec: PacketCodec,
    t: u64,
}

impl Bench {
    fn new() -> Self {
        let cfg = TransportConfig {
            discovery_enabled: false,
            ..TransportConfig::default()
        };
        let mut hub = Engine::new(HUB, cfg, 1);
        hub.set_events_enabled(false);
        hub.start(Bench::at(0));
        Bench {
            hub,
            codec: PacketCodec::json(),
            t: 0,
        }
    }

    fn at(ms: u64) -> Now {
        let d = Duration::from_millis(ms);
        Now::new(MonoTime::ZERO + d, Timestamp::from_secs(1_795_690_800) + d)
    }

    fn now(&self) -> Now {
        Bench::at(self.t)
    }

    /// One ping from `sender` at `from`; whether it was answered.
    fn ping(&mut self, sender: &mut PingNode, from: SocketAddr) -> bool {
        self.t += 10;
        let now = self.now();
        let p = sender.ping(now.wall, HUB, "t.read", "why", PingOptions::default());
        let d = self.codec.encode_packet(&p).expect("encodes");
        self.hub.handle_datagram(now, from, &d);
        let mut answered = false;
        while let Some(tx) = self.hub.poll_transmit() {
            answered |= tx.destination == from;
        }
        answered
    }

    /// `jis:test:a` at 10.0.0.1:7150, a known peer of the hub trusted 0.9.
    fn trusted_peer(&mut self) -> (PingNode, SocketAddr) {
        let (a, at_a) = (node("jis:test:a", 1), addr("10.0.0.1:7150"));
        self.hub.add_peer(self.now(), "jis:test:a", at_a);
        self.hub.set_trust(self.now(), "jis:test:a", 0.9);
        (a, at_a)
    }

    fn credit(&self, from: SocketAddr) -> u64 {
        self.hub.guard().credit(from.ip())
    }
}

fn node(did: &str, seed: u64) -> PingNode {
    PingNode::new(
        did,
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(seed)),
    )
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

#[test]
fn a_trusted_peer_at_its_proven_address_earns_no_credit_once_known() {
    let mut b = Bench::new();
    let (mut a, at_a) = b.trusted_peer();
    // The first ping teaches the hub the peer's trust (and earns as usual).
    assert!(b.ping(&mut a, at_a));
    let after_first = b.credit(at_a);
    assert!(after_first > 0, "the first ping earns credit");
    for _ in 0..20 {
        assert!(b.ping(&mut a, at_a));
    }
    assert_eq!(
        b.credit(at_a),
        after_first,
        "GROEN pings at a proven address earn none"
    );

    // An untrusted sender (answered GEEL/ROOD or not at all) earns on
    // every datagram.
    let (mut u, at_u) = (node("jis:test:stranger", 2), addr("10.0.0.2:7150"));
    b.ping(&mut u, at_u);
    let one = b.credit(at_u);
    b.ping(&mut u, at_u);
    assert!(one > 0 && b.credit(at_u) > one, "an untrusted sender earns");

    // A trusted peer that has not proved its address earns, so that its
    // challenge can be paid for.
    let (mut c, at_c) = (node("jis:test:c", 3), addr("10.0.0.3:7150"));
    b.hub.set_trust(b.now(), "jis:test:c", 0.9);
    for _ in 0..3 {
        assert!(b.ping(&mut c, at_c));
    }
    let before = b.credit(at_c);
    assert!(b.ping(&mut c, at_c));
    assert!(b.credit(at_c) > before, "an unproven peer keeps earning");

    // The proven peer moves: at its new address it earns again.
    let moved = addr("10.0.0.9:7150");
    assert!(b.ping(&mut a, moved));
    let there = b.credit(moved);
    assert!(there > 0);
    assert!(b.ping(&mut a, moved));
    assert!(
        b.credit(moved) > there,
        "a moved peer is not proven at its new address"
    );
}

#[test]
fn a_new_trust_score_applies_to_the_next_ping() {
    let mut b = Bench::new();
    let (mut a, at_a) = b.trusted_peer();
    for _ in 0..3 {
        assert!(b.ping(&mut a, at_a), "trusted: answered");
    }
    // Distrusted: the very next ping is dropped (ROOD), not answered from
    // what the peer table remembered.
    b.hub.set_trust(b.now(), "jis:test:a", 0.0);
    let dropped = b.hub.stats(b.now()).engine.rood_dropped;
    assert!(!b.ping(&mut a, at_a), "distrusted: not answered");
    assert_eq!(b.hub.stats(b.now()).engine.rood_dropped, dropped + 1);
    // And its datagrams earn credit again.
    let before = b.credit(at_a);
    assert!(!b.ping(&mut a, at_a));
    assert!(b.credit(at_a) > before);
    // Trusted again: answered again at once.
    b.hub.set_trust(b.now(), "jis:test:a", 0.9);
    assert!(b.ping(&mut a, at_a));
    assert!(b.ping(&mut a, at_a));
}
