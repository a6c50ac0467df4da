//! Receive batches (`Engine::handle_datagrams`): signatures of pinned DIDs
//! are verified together, and everything observable is the same as handling
//! the datagrams one by one (docs/PERFORMANCE.md, identity section).

mod common;

use std::net::SocketAddr;

use common::{encode, key, keyed, observe, speaker, src};
use tibet_iot_proto::TransportConfig;
use tibet_iot_proto::sim::{Sim, did};
use tibet_ping::identity::{IdentityMode, add_beacon_key, sign_packet};
use tibet_ping::{Announcement, AutoVouchRule, PingNode, PingOptions};

fn hub_config(mode: IdentityMode) -> TransportConfig {
    keyed(0, &[1, 2, 3], mode)
}

/// A hub (node 0 of a fresh simulation) that pins DIDs 1..=3 and
/// auto-vouches sensors (so a sensor's beacon pins its key on first use).
fn hub(mode: IdentityMode) -> Sim {
    let mut sim = Sim::new(21);
    sim.add(0, hub_config(mode));
    sim.node(0).set_audit_enabled(true);
    sim.node(0).set_events_enabled(true);
    sim.node(0)
        .add_auto_vouch_rule(AutoVouchRule {
            name: "sensors".into(),
            device_type: Some("sensor".into()),
            ..AutoVouchRule::default()
        })
        .unwrap();
    sim
}

/// A receive batch mixing good and bad signed packets from pinned DIDs,
/// unpinned packets, a beacon that pins its sender mid-batch followed by a
/// signed packet of that sender, and garbage.
fn mixed_batch(now: tibet_ping::Timestamp) -> Vec<(SocketAddr, Vec<u8>)> {
    let opts = PingOptions::default;
    let mut out = Vec::new();
    let mut owners: Vec<PingNode> = (1..=3)
        .map(|j| speaker(&did(j), Some(key(j)), j as u64))
        .collect();
    for round in 0..3 {
        for (j, owner) in owners.iter_mut().enumerate() {
            let p = owner.ping(now, &did(0), "temperature.read", "x", opts());
            out.push((src(j as u8 + 1), encode(&p)));
        }
        // Tampered after signing.
        let mut changed = owners[0].ping(now, &did(0), "temperature.read", "x", opts());
        changed.intent = "door.unlock".into();
        out.push((src(66), encode(&changed)));
        if round == 1 {
            // Another key, an unsigned claim and a malformed signature.
            let mut other = speaker(&did(2), Some(key(7)), 70);
            out.push((src(66), encode(&other.ping(now, &did(0), "a", "x", opts()))));
            let mut unsigned = speaker(&did(3), None, 71);
            out.push((
                src(67),
                encode(&unsigned.ping(now, &did(0), "a", "x", opts())),
            ));
            let mut garbage = unsigned.ping(now, &did(0), "a", "x", opts());
            garbage.signature = "A".repeat(86) + "==";
            out.push((src(67), encode(&garbage)));
            // Trust on first use in the middle of the batch, then a signed
            // ping of the freshly pinned DID and one it did not sign.
            let mut sensor = speaker("jis:new:sensor", None, 72);
            let announce = Announcement {
                device_type: Some("sensor".into()),
                ..Announcement::default()
            };
            let mut beacon = sensor.discover(now, &announce);
            add_beacon_key(&mut beacon.payload, &key(5).public());
            sign_packet(&mut beacon, &key(5));
            out.push((src(5), encode(&beacon)));
            let mut signed = speaker("jis:new:sensor", Some(key(5)), 73);
            out.push((src(5), encode(&signed.ping(now, &did(0), "a", "x", opts()))));
            let mut forged = speaker("jis:new:sensor", Some(key(8)), 74);
            out.push((
                src(68),
                encode(&forged.ping(now, &did(0), "a", "x", opts())),
            ));
        }
        // Unpinned and unsigned; then not a frame at all.
        let mut stranger = speaker("jis:else:lamp", None, 80 + round);
        out.push((
            src(9),
            encode(&stranger.ping(now, &did(0), "a", "x", opts())),
        ));
        out.push((src(9), b"TIBET? not a frame".to_vec()));
    }
    out
}

fn one_by_one_and_batched(mode: IdentityMode, batch: &[(SocketAddr, Vec<u8>)]) -> Sim {
    let mut single = hub(mode);
    let mut batched = hub(mode);
    let now = single.now();
    assert_eq!(now, batched.now());
    for (from, d) in batch {
        single.node(0).handle_datagram(now, *from, d);
    }
    let refs: Vec<(SocketAddr, &[u8])> = batch.iter().map(|(f, d)| (*f, d.as_slice())).collect();
    batched.node(0).handle_datagrams(now, &refs);
    let (mut seen_single, stats_single) = observe(single.node(0), now);
    let (mut seen_batched, stats_batched) = observe(batched.node(0), now);
    seen_single.push(format!("pins {:?}", single.node(0).pins()));
    seen_batched.push(format!("pins {:?}", batched.node(0).pins()));
    assert_eq!(seen_batched, seen_single);
    assert_eq!(stats_batched, stats_single);
    batched
}

#[test]
fn a_mixed_batch_decides_exactly_as_one_by_one() {
    for mode in [
        IdentityMode::Prefer,
        IdentityMode::Require,
        IdentityMode::Off,
    ] {
        let batch = mixed_batch(hub(mode).now().wall);
        assert!(batch.len() <= 64, "one receive batch");
        let mut batched = one_by_one_and_batched(mode, &batch);
        let now = batched.now();
        let stats = batched.node(0).stats(now);
        if mode == IdentityMode::Off {
            assert_eq!(stats.identity.verified, 0);
            assert_eq!(batched.node(0).batch_verified(), 0);
            continue;
        }
        // The batch did hold valid and invalid signatures of pinned DIDs,
        // and the invalid ones were found.
        assert_eq!(stats.identity.verified, 10, "{mode:?}: 9 owners + new pin");
        assert_eq!(stats.identity.bad_signature, 6, "{mode:?}");
        assert_eq!(stats.identity.unsigned, 1, "{mode:?}");
        assert_eq!(stats.identity.pins_added, 1, "{mode:?}");
        assert_eq!(stats.engine.malformed, 3, "{mode:?}");
        // Checked ahead: 9 owners, 3 tampered, another key, a malformed
        // signature; not the unsigned claim, nor the sensor (pinned only
        // during the batch).
        assert_eq!(batched.node(0).batch_verified(), 14, "{mode:?}");
    }
}

#[test]
fn an_all_good_batch_and_a_batch_larger_than_a_receive_batch_match_too() {
    let now = hub(IdentityMode::Prefer).now().wall;
    let mut owners: Vec<PingNode> = (1..=3)
        .map(|j| speaker(&did(j), Some(key(j)), 100 + j as u64))
        .collect();
    let batch: Vec<(SocketAddr, Vec<u8>)> = (0..150)
        .map(|i| {
            let j = i % 3;
            let p = owners[j].ping(
                now,
                &did(0),
                "temperature.read",
                "x",
                PingOptions::default(),
            );
            (src(j as u8 + 1), encode(&p))
        })
        .collect();
    let mut batched = one_by_one_and_batched(IdentityMode::Prefer, &batch);
    let now = batched.now();
    let stats = batched.node(0).stats(now);
    assert_eq!(stats.identity.verified, 150);
    assert_eq!(stats.identity.refused(), 0);
    assert_eq!(stats.engine.datagrams_in, 150);
    assert_eq!(batched.node(0).batch_verified(), 150);
}

#[test]
fn a_beacon_key_is_parsed_once() {
    let mut sim = hub(IdentityMode::Prefer);
    let now = sim.now();
    for seed in 0..5 {
        let mut sensor = speaker("jis:other:lamp", None, 200 + seed);
        let mut beacon = sensor.discover(now.wall, &Announcement::default());
        add_beacon_key(&mut beacon.payload, &key(9).public());
        sign_packet(&mut beacon, &key(9));
        sim.node(0).handle_datagram(now, src(9), &encode(&beacon));
    }
    let cache = sim.node(0).key_cache_stats();
    assert_eq!((cache.misses, cache.hits), (1, 4));
}

#[test]
fn after_a_batch_with_a_forgery_the_next_batches_are_checked_one_by_one() {
    let mut sim = hub(IdentityMode::Prefer);
    let now = sim.now();
    let mixed = mixed_batch(now.wall);
    let refs: Vec<(SocketAddr, &[u8])> = mixed.iter().map(|(f, d)| (*f, d.as_slice())).collect();
    sim.node(0).handle_datagrams(now, &refs);
    assert_eq!(sim.node(0).batch_verified(), 14);
    let mut owners: Vec<PingNode> = (1..=3)
        .map(|j| speaker(&did(j), Some(key(j)), 300 + j as u64))
        .collect();
    for round in 0..9 {
        let good: Vec<(SocketAddr, Vec<u8>)> = (0..4)
            .map(|i| {
                let j = i % 3;
                let p = owners[j].ping(now.wall, &did(0), "a", "x", PingOptions::default());
                (src(j as u8 + 1), encode(&p))
            })
            .collect();
        let refs: Vec<(SocketAddr, &[u8])> = good.iter().map(|(f, d)| (*f, d.as_slice())).collect();
        sim.node(0).handle_datagrams(now, &refs);
        let expected = if round < 8 { 14 } else { 18 };
        assert_eq!(sim.node(0).batch_verified(), expected, "round {round}");
    }
    // Checked one by one or together, every good packet was verified.
    assert_eq!(sim.node(0).stats(now).identity.verified, 10 + 36);
}
