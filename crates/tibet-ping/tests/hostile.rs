//! Hostile-sender scenarios through the PingNode API: beacon replays and
//! vouch growth, nonce floods from unknown and untrusted senders.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::*;

fn t0() -> Timestamp {
    Timestamp::parse("2026-11-26T11:00:00Z").unwrap()
}

fn node_with(did: &str, seed: u64, config: PingNodeConfig) -> PingNode {
    PingNode::new(did, config, Box::new(StdRng::seed_from_u64(seed)))
}

fn small() -> PingNodeConfig {
    PingNodeConfig {
        nonce_capacity: 10_000,
        ..PingNodeConfig::default()
    }
}

fn auto_vouch_all(hub: &mut PingNode) {
    hub.beacon_handler_mut()
        .add_auto_vouch_rule(AutoVouchRule {
            name: "everyone".into(),
            ..AutoVouchRule::default()
        })
        .unwrap();
}

#[test]
fn one_beacon_replayed_16000_times_gives_one_vouch() {
    let now = t0();
    let mut hub = node_with("jis:home:hub", 1, small());
    auto_vouch_all(&mut hub);
    let mut device = node_with("jis:home:lamp", 2, small());
    let beacon = device.beacon(now, &Announcement::default());
    let first = hub.handle_beacon(now, &beacon);
    assert_eq!(first.decision, BeaconDecision::AutoVouched);
    for i in 0..16_000u64 {
        let at = now + Duration::from_millis(i);
        let again = hub.handle_beacon(at, &beacon);
        assert_eq!(again.decision, BeaconDecision::Rejected);
    }
    assert_eq!(hub.vouches().len(), 1);
    assert_eq!(hub.stats().beacons.replayed, 16_000);
    // The vouch expires by default (24 h).
    let vouch = hub
        .vouches()
        .get(first.vouch_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(vouch.expires_at, Some(now + DEFAULT_VOUCH_TTL));
}

#[test]
fn fresh_beacons_of_one_device_refresh_its_vouch_never_add_another() {
    let now = t0();
    let mut hub = node_with("jis:home:hub", 1, small());
    auto_vouch_all(&mut hub);
    let mut device = node_with("jis:home:lamp", 2, small());
    let mut ids = Vec::new();
    for i in 0..16_000u64 {
        let at = now + Duration::from_millis(10 * i);
        let beacon = device.beacon(at, &Announcement::default());
        let answer = hub.handle_beacon(at, &beacon);
        assert_eq!(answer.decision, BeaconDecision::AutoVouched);
        ids.push(answer.vouch_id.unwrap());
    }
    assert_eq!(hub.vouches().len(), 1);
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one vouch id throughout"
    );
    let last = now + Duration::from_millis(10 * 15_999);
    let vouch = hub.vouches().get(&ids[0]).unwrap();
    assert_eq!(vouch.expires_at, Some(last + DEFAULT_VOUCH_TTL), "renewed");
    assert_eq!(hub.stats().beacons.vouch_refreshed, 15_999);
}

/// A ping from `did` with its own unique nonce, sent at `at`.
fn forged(template: &PingPacket, did: &str, i: u64, at: Timestamp) -> PingPacket {
    PingPacket {
        source_did: did.into(),
        packet_id: format!("ping_{i:016x}"),
        nonce: format!("{i:032x}"),
        timestamp: at.to_iso(),
        ..template.clone()
    }
}

#[test]
fn a_unique_nonce_flood_from_unknown_or_untrusted_senders_never_refuses_trusted_pings() {
    let now = t0();
    let config = PingNodeConfig {
        nonce_capacity: 1_000,
        untrusted_nonce_capacity: 1_000,
        ..PingNodeConfig::default()
    };
    let mut hub = node_with("jis:home:hub", 1, config);
    let mut sensor = node_with("jis:home:sensor", 2, small());
    hub.set_trust("jis:home:sensor", 0.9);
    hub.set_trust("jis:home:visitor", 0.5);
    let template = sensor.ping(now, "jis:home:hub", "x", "y", PingOptions::default());

    let mut trusted_ok = 0;
    for i in 0..100_000u64 {
        let at = now + Duration::from_micros(i * 100); // 10 s at 10,000/s
        // Unknown DID (ROOD): nothing stored.
        hub.receive(at, &forged(&template, "jis:evil:x", i, at));
        // Untrusted (GEEL) DID, and a fresh invented DID each time.
        hub.receive(at, &forged(&template, "jis:home:visitor", i, at));
        hub.receive(at, &forged(&template, &format!("jis:evil:{i}"), i, at));
        if i % 100 == 0 {
            let p = sensor.ping(
                at,
                "jis:home:hub",
                "temperature.report",
                "hourly",
                PingOptions::default(),
            );
            let r = hub.receive(at, &p);
            assert_eq!(
                r.outcome,
                Outcome::Accepted,
                "trusted ping {i} refused: {r:?}"
            );
            trusted_ok += 1;
        }
    }
    assert_eq!(trusted_ok, 1_000);
    let s = hub.stats();
    assert_eq!(
        s.nonce_tracked.max(1),
        s.nonce_tracked,
        "only trusted nonces"
    );
    assert!(
        s.nonce_tracked <= 1_000 && s.untrusted_nonce_tracked <= 1_000,
        "{s:?}"
    );
    assert_eq!(s.nonce_refusals, 0, "trusted table never filled");
    // The visitor was held to its rate: 64 at once plus 16/s over 10 s.
    assert!(
        s.rate_limited >= 100_000 - 64 - 16 * 10 - 1,
        "{}",
        s.rate_limited
    );
    assert!(s.nonce_limit.keys <= 4096);
    assert_eq!(
        s.accepted
            + s.pending
            + s.rejected
            + s.replays
            + s.nonce_refusals
            + s.pending_refusals
            + s.rate_limited,
        s.received
    );
}
