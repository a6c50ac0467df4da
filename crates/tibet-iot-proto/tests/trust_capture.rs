//! Who may bind a key to a DID (docs/SECURITY.md): an operator, or a vouch
//! credential from a pinned voucher. A beacon never binds a key to, or
//! changes the trust of, a DID that has explicit trust, a pin or a vouch;
//! a key it offers for one waits for review. Known devices' beacons never
//! enter review, and one device waits in review once, however often it
//! beacons.

use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot_proto::sim::Sim;
use tibet_iot_proto::{Engine, IdentityConfig, Now, TransportConfig};
use tibet_ping::identity::{IdentityMode, Keypair, PinStore, add_beacon_key, sign_packet};
use tibet_ping::{
    Announcement, AutoVouchRule, BeaconDecision, PacketCodec, PingNode, PingNodeConfig,
    PingOptions, PingPacket,
};

const SENSOR: &str = "jis:home:sensor";

fn key(i: u8) -> Keypair {
    Keypair::from_seed(&[i; 32])
}

fn encode(p: &PingPacket) -> Vec<u8> {
    PacketCodec::json().encode_packet(p).unwrap()
}

fn speaker(did: &str, seed: u64) -> PingNode {
    let config = PingNodeConfig {
        nonce_capacity: 64,
        ..PingNodeConfig::default()
    };
    PingNode::new(did, config, Box::new(StdRng::seed_from_u64(seed)))
}

/// A beacon of `did` carrying `signer`'s key and signed by it (or unsigned
/// and keyless with `None`, as the Python reference sends them).
fn beacon(did: &str, signer: Option<&Keypair>, seed: u64, now: Now) -> Vec<u8> {
    let announce = Announcement {
        device_type: Some("sensor".into()),
        ..Announcement::default()
    };
    let mut p = speaker(did, seed).discover(now.wall, &announce);
    if let Some(k) = signer {
        add_beacon_key(&mut p.payload, &k.public());
        sign_packet(&mut p, k);
    }
    encode(&p)
}

/// A signed `door.unlock` from `did`, signed by `signer`.
fn unlock(did: &str, signer: &Keypair, seed: u64, now: Now) -> Vec<u8> {
    let mut node = speaker(did, seed);
    node.set_signer(Box::new(signer.clone()));
    let p = node.ping(
        now.wall,
        &tibet_iot_proto::sim::did(0),
        "door.unlock",
        "x",
        PingOptions::default(),
    );
    encode(&p)
}

fn source(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 66, 0, i], 7150))
}

/// The hub of `examples/hub.toml` with identity on: `jis:home:sensor`
/// trusted 0.9 without a pin, and an auto-vouch rule for `^jis:home:`.
fn hub(mode: IdentityMode) -> (Sim, usize) {
    let mut sim = Sim::new(31);
    let config = TransportConfig {
        identity: IdentityConfig {
            mode,
            key: Some(key(100)),
            pins: PinStore::new(64),
            ..IdentityConfig::default()
        },
        ..Sim::config()
    };
    sim.add(0, config);
    let now = sim.now();
    let hub = sim.node(0);
    hub.set_trust(now, SENSOR, 0.9);
    hub.add_auto_vouch_rule(AutoVouchRule {
        name: "home".into(),
        source_pattern: Some("^jis:home:".into()),
        ..AutoVouchRule::default()
    })
    .unwrap();
    (sim, 0)
}

fn decisions(engine: &mut Engine) -> Vec<BeaconDecision> {
    std::iter::from_fn(|| engine.poll_event())
        .filter_map(|e| match e {
            tibet_iot_proto::Event::PeerDiscovered { decision, .. } => Some(decision),
            _ => None,
        })
        .collect()
}

/// The `authenticated` mark of each ping decided since the last call.
fn authenticated(engine: &mut Engine) -> Vec<bool> {
    std::iter::from_fn(|| engine.poll_event())
        .filter_map(|e| match e {
            tibet_iot_proto::Event::PingDecided { authenticated, .. } => Some(authenticated),
            _ => None,
        })
        .collect()
}

fn answered(engine: &mut Engine) -> usize {
    std::iter::from_fn(|| engine.poll_transmit()).count()
}

#[test]
fn row1_one_beacon_cannot_capture_a_trusted_did_that_has_no_pin() {
    for mode in [IdentityMode::Prefer, IdentityMode::Require] {
        let (mut sim, h) = hub(mode);
        let now = sim.now();
        let hub = sim.node(h);
        hub.set_events_enabled(true);
        let attacker = key(66);
        hub.handle_discovery_datagram(now, source(66), &beacon(SENSOR, Some(&attacker), 1, now));
        assert_eq!(hub.pins().get(SENSOR), None, "{mode}: nothing pinned");
        assert_eq!(hub.pins_generation(), 0, "{mode}");
        assert_eq!(hub.identity_stats().pins_added, 0, "{mode}");
        // The key offered waits for a human, with its fingerprint.
        let offers: Vec<String> = hub
            .pending_beacons()
            .map(|b| b.public_key_hash.clone())
            .collect();
        assert_eq!(offers, [attacker.public().sha256_hex()], "{mode}");
        assert_eq!(decisions(hub), [BeaconDecision::HitlPending], "{mode}");
        // No rule vouched for the DID: its trust is still the operator's.
        let trust = hub.ping_node().trust_of(now.wall, SENSOR);
        assert_eq!(trust.score, 0.9, "{mode}");
        assert_eq!(hub.ping_node().vouches().len(), 0, "{mode}: no vouch");

        // The real sensor, with its own key, is not refused for a pin
        // conflict; in prefer mode it is answered as before.
        let real = key(7);
        hub.handle_datagram(now, source(7), &unlock(SENSOR, &real, 2, now));
        assert_eq!(hub.identity_stats().pin_conflicts, 0, "{mode}");
        assert_eq!(hub.identity_stats().wrong_key, 0, "{mode}");
        if mode == IdentityMode::Prefer {
            assert_eq!(answered(hub), 1, "{mode}: the real sensor is answered");
            assert_eq!(authenticated(hub), [false], "{mode}: as a claim, marked so");
        }
    }
}

#[test]
fn row1_an_approved_key_offer_pins_and_then_only_that_key_is_answered() {
    let (mut sim, h) = hub(IdentityMode::Prefer);
    let now = sim.now();
    let hub = sim.node(h);
    let (real, attacker) = (key(7), key(66));
    hub.handle_discovery_datagram(now, source(7), &beacon(SENSOR, Some(&real), 1, now));
    hub.handle_discovery_datagram(now, source(66), &beacon(SENSOR, Some(&attacker), 2, now));
    let waiting: Vec<(String, String)> = hub
        .pending_beacons()
        .map(|b| (b.beacon_id.clone(), b.public_key_hash.clone()))
        .collect();
    assert_eq!(
        waiting.len(),
        2,
        "both offers wait, told apart by fingerprint"
    );
    let real_offer = waiting
        .iter()
        .find(|(_, hash)| *hash == real.public().sha256_hex())
        .unwrap();
    hub.approve_beacon(now, &real_offer.0, Default::default())
        .expect("waiting")
        .expect("approved");
    assert_eq!(hub.pins().get(SENSOR), Some(&real.public()));
    hub.handle_datagram(now, source(66), &unlock(SENSOR, &attacker, 3, now));
    assert_eq!(answered(hub), 0, "the attacker's key is refused");
    hub.set_events_enabled(true);
    hub.handle_datagram(now, source(7), &unlock(SENSOR, &real, 4, now));
    assert_eq!(answered(hub), 1, "the pinned key is answered");
    assert_eq!(authenticated(hub), [true], "and marked authenticated");
}

#[test]
fn row1_a_brand_new_did_is_pinned_by_a_rule_at_no_more_than_the_rules_score() {
    let (mut sim, h) = hub(IdentityMode::Prefer);
    let now = sim.now();
    let hub = sim.node(h);
    let lamp = "jis:home:lamp";
    hub.handle_discovery_datagram(now, source(8), &beacon(lamp, Some(&key(8)), 1, now));
    assert_eq!(hub.pins().get(lamp), Some(&key(8).public()));
    let rule = AutoVouchRule::default();
    let trust = hub.ping_node().trust_of(now.wall, lamp);
    assert!(
        trust.score <= rule.voucher_trust * rule.vouch_factor + 1e-9,
        "{}",
        trust.score
    );
    // A second key for the now pinned DID is refused, never re-pinned.
    hub.handle_discovery_datagram(now, source(66), &beacon(lamp, Some(&key(66)), 2, now));
    assert_eq!(hub.pins().get(lamp), Some(&key(8).public()));
    assert_eq!(hub.identity_stats().pin_conflicts, 1);
}

#[test]
fn known_devices_beacons_never_enter_review_and_one_device_waits_once() {
    let (mut sim, h) = hub(IdentityMode::Prefer);
    let t0 = sim.now();
    // An approved device (pinned by the approval) and a trusted unsigned
    // Python-style device beacon once a minute for 15 minutes; an unknown
    // device that matches no rule beacons as often.
    let hub = sim.node(h);
    hub.set_events_enabled(true);
    let lab = "jis:lab:b";
    hub.handle_discovery_datagram(t0, source(9), &beacon(lab, Some(&key(9)), 1, t0));
    let id = hub.pending_beacons().next().unwrap().beacon_id.clone();
    hub.approve_beacon(t0, &id, Default::default())
        .unwrap()
        .unwrap();
    assert_eq!(hub.pins().get(lab), Some(&key(9).public()));
    decisions(hub);
    let stranger = "jis:lab:stranger";
    for minute in 1..=15u64 {
        sim.run_for(Duration::from_secs(60));
        let now = sim.now();
        let hub = sim.node(h);
        hub.handle_discovery_datagram(
            now,
            source(9),
            &beacon(lab, Some(&key(9)), 1000 + minute, now),
        );
        hub.handle_discovery_datagram(now, source(10), &beacon(SENSOR, None, 100 + minute, now));
        hub.handle_discovery_datagram(
            now,
            source(11),
            &beacon(stranger, Some(&key(11)), 200 + minute, now),
        );
        let d = decisions(hub);
        assert_eq!(
            d[..2],
            [BeaconDecision::Known, BeaconDecision::Known],
            "minute {minute}"
        );
        assert_eq!(d[2], BeaconDecision::HitlPending, "minute {minute}");
    }
    let hub = sim.node(h);
    let waiting: Vec<&str> = hub
        .pending_beacons()
        .map(|b| b.source_did.as_str())
        .collect();
    assert_eq!(
        waiting,
        [stranger],
        "one review for the stranger, none for known devices"
    );
    let stats = hub.ping_node().stats().beacons;
    assert_eq!(stats.known, 30);
    assert!(stats.hitl_joined >= 14, "{stats:?}");
}
