//! Review integrity through the PingNode API: a pending ping is keyed by
//! (source DID, packet id), re-sends cannot change it, and reviews expire.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::*;

fn t0() -> Timestamp {
    Timestamp::parse("2026-11-26T11:00:00Z").unwrap()
}

fn node(did: &str, seed: u64) -> PingNode {
    let config = PingNodeConfig {
        nonce_capacity: 10_000,
        review_ttl: Duration::from_secs(900),
        ..PingNodeConfig::default()
    };
    PingNode::new(did, config, Box::new(StdRng::seed_from_u64(seed)))
}

#[test]
fn a_geel_ping_id_resent_under_another_did_cannot_steal_the_approval() {
    let now = t0();
    let mut hub = node("jis:home:hub", 1);
    let mut doorbell = node("jis:home:doorbell", 2);
    hub.set_trust("jis:home:doorbell", 0.5);
    hub.set_trust("jis:evil:x", 0.5);
    let original = doorbell.ping(
        now,
        "jis:home:hub",
        "door.ring",
        "visitor",
        PingOptions::default(),
    );
    assert_eq!(hub.receive(now, &original).outcome, Outcome::Pending);

    // The attacker copies the packet id, with its own DID, intent and purpose.
    let mut forged = original.clone();
    forged.source_did = "jis:evil:x".into();
    forged.intent = "door.unlock".into();
    forged.purpose = "approve me".into();
    forged.nonce = "ab".repeat(16);
    hub.receive(now, &forged);
    // And re-sends the original's id under the original DID with new words.
    let mut resent = original.clone();
    resent.intent = "door.unlock".into();
    resent.nonce = "cd".repeat(16);
    hub.receive(now, &resent);

    let first = hub.pending().next().unwrap();
    assert_eq!(
        first.packet, original,
        "the entry under review is unchanged"
    );

    let approved = hub.approve_pending(&original.packet_id, Some(0.9)).unwrap();
    assert_eq!(approved.packet.source_did, "jis:home:doorbell");
    assert_eq!(approved.packet.intent, "door.ring");
    assert_eq!(hub.trust_of(now, "jis:home:doorbell").score, 0.9);
    assert_eq!(
        hub.trust_of(now, "jis:evil:x").score,
        0.5,
        "attacker unchanged"
    );
    // The attacker's copy is its own entry, which a human may reject.
    assert!(hub.reject_pending(&original.packet_id).is_some());
    assert_eq!(hub.pending().count(), 0);
}

#[test]
fn pending_pings_and_beacon_reviews_expire_and_are_returned() {
    let now = t0();
    let mut hub = node("jis:home:hub", 1);
    let mut sensor = node("jis:home:sensor", 2);
    hub.set_trust("jis:home:sensor", 0.5);
    let p = sensor.ping(now, "jis:home:hub", "x", "y", PingOptions::default());
    assert_eq!(hub.receive(now, &p).outcome, Outcome::Pending);
    let beacon = sensor.beacon(now, &Announcement::default());
    assert_eq!(
        hub.handle_beacon(now, &beacon).decision,
        BeaconDecision::HitlPending
    );
    let early = hub.expire_reviews(now + Duration::from_secs(899));
    assert_eq!(early, ExpiredReviews::default());
    let gone = hub.expire_reviews(now + Duration::from_secs(900));
    assert_eq!(gone.pings.len(), 1);
    assert_eq!(gone.pings[0].packet.packet_id, p.packet_id);
    assert_eq!(gone.beacons, [beacon]);
    assert_eq!(hub.pending().count() + hub.pending_beacons().count(), 0);
    assert_eq!(hub.airlock().pending_stats().expired, 1);
}
