//! Reviews still waiting and pins learnt on first use are in the state
//! store (docs/OPERATIONS.md, "Config and state store"): a GEEL ping and a
//! signed beacon held for review come back after a clean stop and after a
//! crash, keep their queue time (so they expire when they would have), and
//! the beacon's approval still pins the key it was signed by; a review
//! decided before a crash does not come back; a pin an auto-vouch rule
//! learnt survives a crash; a store of the first schema version (before
//! reviews and the replay horizon were kept) is migrated and keeps its
//! decisions, and the horizon file moves into it. Over real
//! sockets on 127.0.0.1.

mod state_common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use state_common::{HUB, hub, started_hub};
use tibet_iot::{
    Event, IdentityConfig, IoTNode, SCHEMA_VERSION, STORE_FILE, SendOptions, StateStore,
    StoredState, TransportConfig,
};
use tibet_ping::identity::{IdentityMode, Keypair};
use tibet_ping::{AutoVouchRule, BeaconDecision, PingDecision, Timestamp, VouchOptions};

const DOOR: &str = "jis:home:door";
const LAMP: &str = "jis:home:lamp";

fn lamp_key() -> Keypair {
    Keypair::from_seed(&[7; 32])
}

/// The lamp, signing with its key, announces itself to `to`; returns once
/// the hub has decided its beacon as `expect`.
async fn lamp_announces(hub: &IoTNode, to: SocketAddr, expect: BeaconDecision) {
    let config = TransportConfig {
        identity: IdentityConfig {
            mode: IdentityMode::Prefer,
            key: Some(lamp_key()),
            ..IdentityConfig::default()
        },
        ..TransportConfig::loopback()
    };
    let lamp = IoTNode::new(LAMP, config);
    lamp.start().await.unwrap();
    let mut events = hub.subscribe();
    lamp.announce_to(to).unwrap();
    let decided = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::PeerDiscovered { did, decision, .. }) = events.recv().await
                && did == LAMP
            {
                return decision;
            }
        }
    })
    .await
    .expect("the hub decides the lamp's beacon");
    assert_eq!(decided, expect);
    lamp.stop().await;
}

/// Holds a GEEL ping from the door and the lamp's signed beacon for review
/// at the running `hub`; the ping's id.
async fn hold_for_review(hub: &IoTNode) -> String {
    let to = hub.local_addr().unwrap();
    hub.set_trust(DOOR, 0.5);
    let door = IoTNode::new(DOOR, TransportConfig::loopback());
    door.start().await.unwrap();
    let answer = door
        .send_ping(HUB, to, "door.ring", "a visitor", SendOptions::default())
        .await
        .unwrap()
        .expect("the hub answers");
    assert_eq!(answer.decision, PingDecision::Pending);
    door.stop().await;
    lamp_announces(hub, to, BeaconDecision::HitlPending).await;
    answer.in_response_to
}

/// What the store of `dir` holds, read beside the running node.
fn stored(dir: &Path) -> StoredState {
    StateStore::open_read_only(dir)
        .unwrap()
        .expect("a store")
        .load()
        .unwrap()
}

/// Waits until the store of `dir` satisfies `done` (the keeper thread
/// copies within a second of a change).
fn until_stored(dir: &Path, done: impl Fn(&StoredState) -> bool) -> StoredState {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = stored(dir);
        if done(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "not stored in time: {state:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The reviews `hub` holds: the ping ids with their queue time, and the
/// beacons' DIDs.
fn waiting(hub: &IoTNode) -> (Vec<(String, Timestamp)>, Vec<String>) {
    let pings = hub
        .pending()
        .into_iter()
        .map(|p| (p.packet.packet_id, p.queued_at))
        .collect();
    let beacons = hub
        .pending_beacons()
        .into_iter()
        .map(|b| b.source_did)
        .collect();
    (pings, beacons)
}

#[test]
fn waiting_reviews_survive_a_clean_stop_and_expire_when_they_would_have() {
    let tmp = tempfile::tempdir().unwrap();
    let (rt, node) = started_hub(tmp.path());
    let ping_id = rt.block_on(hold_for_review(&node));
    let before = waiting(&node);
    assert_eq!(before.0.len(), 1);
    assert_eq!(before.1, [LAMP]);
    rt.block_on(node.stop());

    let node = hub(tmp.path());
    rt.block_on(node.start()).unwrap();
    assert_eq!(
        waiting(&node),
        before,
        "the same reviews, queued when they were"
    );
    let queued_at = before.0[0].1;
    let ttl = TransportConfig::loopback().ping.review_ttl;
    let (early, due) = node.with_engine(|e| {
        let n = e.ping_node_mut();
        let early = n.expire_reviews(queued_at + ttl - Duration::from_millis(1));
        (early.pings.len(), n.expire_reviews(queued_at + ttl).pings)
    });
    assert_eq!(early, 0, "not before its time to live");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].packet.packet_id, ping_id);
    // The restored beacon's approval pins the key that signed it.
    let beacon_id = node.pending_beacons()[0].beacon_id.clone();
    node.approve_beacon(&beacon_id, VouchOptions::default())
        .expect("waiting")
        .unwrap();
    assert_eq!(
        node.with_engine(|e| e.pins().get(LAMP).copied()),
        Some(lamp_key().public())
    );
    assert_eq!(node.state_store_failures(), 0);
    rt.block_on(node.stop());
}

#[test]
fn waiting_reviews_survive_a_crash_and_a_decided_one_stays_decided() {
    let tmp = tempfile::tempdir().unwrap();
    let before = {
        let (rt, node) = started_hub(tmp.path());
        rt.block_on(hold_for_review(&node));
        let before = waiting(&node);
        let state = until_stored(tmp.path(), |s| {
            s.reviews.pings.len() == 1 && s.reviews.beacons.len() == 1
        });
        assert!(state.reviews.beacons[0].key.is_some(), "with its key");
        // No stop: the runtime and node go as a SIGKILL leaves them.
        drop(node);
        drop(rt);
        before
    };
    let (rt, node) = started_hub(tmp.path());
    assert_eq!(waiting(&node), before);
    // Decided, then a crash: the decision's own write took the review out.
    let ping_id = before.0[0].0.clone();
    assert!(node.approve_pending(&ping_id, Some(0.9)).is_some());
    let beacon_id = node.pending_beacons()[0].beacon_id.clone();
    assert!(node.reject_beacon(&beacon_id).is_some());
    assert!(stored(tmp.path()).reviews.is_empty());
    drop(node);
    drop(rt);

    let (rt, node) = started_hub(tmp.path());
    assert_eq!(waiting(&node), (Vec::new(), Vec::new()));
    assert_eq!(node.trust_of(DOOR), 0.9);
    rt.block_on(node.stop());
}

#[test]
fn a_pin_learnt_by_an_auto_vouch_rule_survives_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (rt, node) = started_hub(tmp.path());
        let rule = AutoVouchRule {
            name: "lamps".into(),
            source_pattern: Some("^jis:home:lamp".into()),
            ..AutoVouchRule::default()
        };
        node.add_auto_vouch_rule(rule).unwrap();
        let to = node.local_addr().unwrap();
        rt.block_on(lamp_announces(&node, to, BeaconDecision::AutoVouched));
        let key = lamp_key().public().to_base64();
        let state = until_stored(tmp.path(), |s| s.pins.iter().any(|p| p.did == LAMP));
        let pin = state.pins.iter().find(|p| p.did == LAMP).unwrap();
        assert_eq!(
            (pin.public_key.as_str(), pin.removed),
            (key.as_str(), false)
        );
        assert_eq!(pin.reason, "learnt on first use");
        drop(node);
        drop(rt);
    }
    let (rt, node) = started_hub(tmp.path());
    assert_eq!(
        node.with_engine(|e| e.pins().get(LAMP).copied()),
        Some(lamp_key().public())
    );
    rt.block_on(node.stop());
}

#[test]
fn a_store_of_the_first_version_is_migrated_and_keeps_its_decisions() {
    let tmp = tempfile::tempdir().unwrap();
    let (rt, node) = started_hub(tmp.path());
    node.set_trust(DOOR, 0.8);
    rt.block_on(node.stop());
    // Back to what the first version wrote: no review or horizon tables,
    // version 1, and the horizon in a file of its own.
    {
        let conn = rusqlite::Connection::open(tmp.path().join(STORE_FILE)).unwrap();
        conn.execute_batch(
            "DROP TABLE review_pings; DROP TABLE review_beacons; DROP TABLE horizon;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let legacy = tmp.path().join("replay-horizon");
    std::fs::write(&legacy, Timestamp::now().to_iso()).unwrap();
    let node = hub(tmp.path());
    rt.block_on(node.start()).unwrap();
    assert_eq!(node.trust_of(DOOR), 0.8);
    assert!(!legacy.exists(), "the horizon moved into the store");
    assert!(stored(tmp.path()).horizon.is_some());
    rt.block_on(hold_for_review(&node));
    rt.block_on(node.stop());
    let conn = rusqlite::Connection::open(tmp.path().join(STORE_FILE)).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let state = stored(tmp.path());
    assert_eq!(
        (state.reviews.pings.len(), state.reviews.beacons.len()),
        (1, 1)
    );
}
