//! One receive path: a sequence of datagrams gives the same transmits,
//! events, audit records and counters whether the engine takes it one
//! datagram at a time (`Engine::handle_datagram`) or in receive batches of
//! any sizes (`Engine::handle_datagrams`), including the amplification
//! credit a trusted peer's answered ping does not earn.

mod common;

use std::net::SocketAddr;

use common::{key, observe, src};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot_proto::sim::{Sim, did};
use tibet_iot_proto::{IdentityConfig, TransportConfig, UPLINK_ADDR};
use tibet_ping::identity::{IdentityMode, Keypair, PinStore};
use tibet_ping::{PacketCodec, PingNode, PingNodeConfig, PingOptions};

/// A hub that pins DID 1, trusts DIDs 1 and 2 (GROEN) and knows both as
/// peers at their proven addresses; audit records and events on.
fn hub(mode: IdentityMode) -> Sim {
    let mut pins = PinStore::new(8);
    pins.set(&did(1), key(1).public()).unwrap();
    let config = TransportConfig {
        identity: IdentityConfig {
            mode,
            key: Some(key(0)),
            pins,
            ..IdentityConfig::default()
        },
        ..Sim::config()
    };
    let mut sim = Sim::new(5);
    sim.add(0, config);
    let now = sim.now();
    let hub = sim.node(0);
    hub.set_audit_enabled(true);
    hub.set_events_enabled(true);
    for j in 1..=2 {
        hub.set_trust(now, &did(j), 0.9);
        hub.add_peer(now, &did(j), src(j as u8));
    }
    sim
}

/// Datagrams of every kind the receive path tells apart: signed pings of a
/// pinned, trusted peer at its proven address (answered GROEN, earning no
/// credit) and from elsewhere, unsigned pings of a trusted peer, strangers
/// (GEEL), forged signatures, heartbeats, responses nobody asked for,
/// retransmissions, garbage and a datagram claiming the uplink's address.
fn pool(now: tibet_ping::Timestamp) -> Vec<(SocketAddr, Vec<u8>)> {
    let codec = PacketCodec::json();
    let speaker = |d: &str, k: Option<Keypair>, seed: u64| {
        let config = PingNodeConfig {
            nonce_capacity: 256,
            ..PingNodeConfig::default()
        };
        let mut n = PingNode::new(d, config, Box::new(StdRng::seed_from_u64(seed)));
        if let Some(k) = k {
            n.set_signer(Box::new(k));
        }
        n
    };
    let mut owner = speaker(&did(1), Some(key(1)), 1);
    let mut friend = speaker(&did(2), None, 2);
    let mut stranger = speaker("jis:else:lamp", None, 3);
    let mut forger = speaker(&did(1), Some(key(9)), 4);
    let mut out = Vec::new();
    for round in 0..6u8 {
        let ping = owner.ping(
            now,
            &did(0),
            "temperature.read",
            "x",
            PingOptions::default(),
        );
        let bytes = codec.encode_packet(&ping).unwrap();
        out.push((src(1), bytes.clone()));
        out.push((src(1), bytes)); // a retransmission
        let elsewhere = owner.ping(now, &did(0), "a", "x", PingOptions::default());
        out.push((src(40 + round), codec.encode_packet(&elsewhere).unwrap()));
        let hb = friend.heartbeat(now, &did(0), None);
        out.push((src(2), codec.encode_packet(&hb).unwrap()));
        let p = friend.ping(now, &did(0), "a", "x", PingOptions::default());
        out.push((src(2), codec.encode_packet(&p).unwrap()));
        let p = stranger.ping(now, &did(0), "a", "x", PingOptions::default());
        out.push((src(9), codec.encode_packet(&p).unwrap()));
        let p = forger.ping(now, &did(0), "a", "x", PingOptions::default());
        out.push((src(66), codec.encode_packet(&p).unwrap()));
        let answer = stranger.receive(now, &ping).response;
        out.push((src(9), codec.encode_response(&answer).unwrap()));
        out.push((src(9), b"TIBET? not a frame".to_vec()));
        out.push((UPLINK_ADDR, codec.encode_packet(&p).unwrap()));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn one_by_one_and_any_batches_give_the_same_outputs(
        picks in proptest::collection::vec(0usize..60, 1..120),
        cuts in proptest::collection::vec(1usize..80, 1..20),
        mode in prop_oneof![
            Just(IdentityMode::Prefer),
            Just(IdentityMode::Require),
            Just(IdentityMode::Off),
        ],
    ) {
        let mut single = hub(mode);
        let mut batched = hub(mode);
        let now = single.now();
        let pool = pool(now.wall);
        let datagrams: Vec<(SocketAddr, &[u8])> =
            picks.iter().map(|&i| (pool[i].0, pool[i].1.as_slice())).collect();
        for &(from, d) in &datagrams {
            single.node(0).handle_datagram(now, from, d);
        }
        let mut rest = datagrams.as_slice();
        for &cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, tail) = rest.split_at(cut.min(rest.len()));
            batched.node(0).handle_datagrams(now, batch);
            rest = tail;
        }
        let (seen_single, stats_single) = observe(single.node(0), now);
        let (seen_batched, stats_batched) = observe(batched.node(0), now);
        prop_assert_eq!(seen_batched, seen_single);
        prop_assert_eq!(stats_batched, stats_single);
    }
}

#[test]
fn a_trusted_peers_answered_ping_earns_no_credit_in_a_batch_either() {
    let mut single = hub(IdentityMode::Prefer);
    let mut batched = hub(IdentityMode::Prefer);
    let now = single.now();
    let pool = pool(now.wall);
    // The owner's signed pings at its proven address, and the friend's
    // (unsigned) pings at its own: all trusted, all answered GROEN.
    let trusted: Vec<(SocketAddr, &[u8])> = pool
        .iter()
        .filter(|(from, _)| *from == src(1) || *from == src(2))
        .map(|(f, d)| (*f, d.as_slice()))
        .collect();
    assert!(trusted.len() >= 4);
    for &(from, d) in &trusted {
        single.node(0).handle_datagram(now, from, d);
    }
    batched.node(0).handle_datagrams(now, &trusted);
    let s = single.node(0).stats(now);
    let b = batched.node(0).stats(now);
    assert!(s.engine.pings_answered >= 2);
    assert_eq!(b.engine.pings_answered, s.engine.pings_answered);
    assert_eq!(b.guard, s.guard);
    // Only the retransmissions earned: the answered pings did not.
    let total: usize = trusted.iter().map(|(_, d)| d.len()).sum();
    assert!(s.guard.untrusted_bytes_in > 0, "{:?}", s.guard);
    assert!(s.guard.untrusted_bytes_in < total as u64, "{:?}", s.guard);
}

#[test]
fn a_datagram_claiming_the_uplinks_address_is_refused_in_a_batch_too() {
    for mode in [IdentityMode::Prefer, IdentityMode::Off] {
        let mut sim = hub(mode);
        let now = sim.now();
        let pool = pool(now.wall);
        // The friend's ping, once from its own address and once claiming to
        // come from the uplink, in one receive batch.
        let ping = pool
            .iter()
            .find(|(from, _)| *from == src(2))
            .map(|(_, d)| d.as_slice())
            .unwrap();
        let hub = sim.node(0);
        hub.set_uplink_enabled(true);
        hub.handle_datagrams(now, &[(src(2), ping), (UPLINK_ADDR, ping)]);
        let s = hub.stats(now);
        assert_eq!(s.engine.datagrams_in, 2, "{mode:?}");
        assert_eq!(s.engine.malformed, 1, "{mode:?}");
        assert_eq!(s.engine.pings_answered, 1, "{mode:?}");
        assert_eq!(s.uplink.responses_out, 0, "{mode:?}");
        assert!(hub.poll_uplink().is_none());
        let answers: Vec<_> = std::iter::from_fn(|| hub.poll_transmit()).collect();
        assert_eq!(answers.len(), 1, "{mode:?}");
        assert_eq!(answers[0].destination, src(2));
    }
}
