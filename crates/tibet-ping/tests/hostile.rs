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
