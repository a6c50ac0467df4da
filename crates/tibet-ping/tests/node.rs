//! The PingNode through its public API: builders, the receive pipeline,
//! review, vouching, beacons and stats.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use tibet_ping::*;

const T0: &str = "2026-11-26T11:00:00Z";

fn t0() -> Timestamp {
    Timestamp::parse(T0).unwrap()
}

fn node(did: &str, seed: u64) -> PingNode {
    node_with(did, seed, PingNodeConfig::default())
}

fn node_with(did: &str, seed: u64, config: PingNodeConfig) -> PingNode {
    let config = PingNodeConfig {
        nonce_capacity: config.nonce_capacity.min(10_000),
        ..config
    };
    PingNode::new(did, config, Box::new(StdRng::seed_from_u64(seed)))
}

fn ping(from: &mut PingNode, now: Timestamp, intent: &str) -> PingPacket {
    from.ping(now, "jis:home:hub", intent, "test", PingOptions::default())
}

fn fira(r: &Reception) -> serde_json::Value {
    serde_json::Value::Object(r.response.fira_breakdown.clone())
}

#[test]
fn ping_builder_fills_wire_fields() {
    let mut a = node("jis:home:a", 1);
    let opts = PingOptions {
        priority: Priority::Urgent,
        routing_mode: RoutingMode::Mesh,
        payload: json!({"x": 1}).as_object().unwrap().clone(),
        pod_id: Some("kitchen".into()),
        max_hops: Some(7),
        ..PingOptions::default()
    };
    let p = a.ping(t0(), "jis:home:b", "temperature.read", "why", opts);
    assert!(p.packet_id.starts_with("ping_") && p.packet_id.len() == 21);
    assert_eq!(p.nonce.len(), 32);
    assert_eq!(p.timestamp, "2026-11-26T11:00:00+00:00");
    assert_eq!(
        (p.ping_type, p.priority, p.routing_mode),
        (PingType::Intent, Priority::Urgent, RoutingMode::Mesh)
    );
    assert_eq!(
        (p.max_hops, p.hop_count, p.pod_id.as_deref()),
        (7, 0, Some("kitchen"))
    );
    assert_eq!(p.source_did, "jis:home:a");
    assert!(p.signature.is_empty());
    let q = a.ping(t0(), "jis:home:b", "x", "y", PingOptions::default());
    assert_ne!(p.nonce, q.nonce);
    assert_eq!(
        (q.ping_type, q.priority, q.routing_mode, q.max_hops),
        (PingType::Intent, Priority::Normal, RoutingMode::Direct, 5)
    );
    // Same seed, same packets: deterministic.
    let mut again = node("jis:home:a", 1);
    assert_eq!(
        again
            .ping(t0(), "jis:home:b", "x", "y", PingOptions::default())
            .packet_id,
        p.packet_id
    );
}

#[test]
fn heartbeat_and_discover_shapes() {
    let mut a = node("jis:home:a", 1);
    let hb = a.heartbeat(t0(), BROADCAST, None);
    assert_eq!(
        (hb.ping_type, hb.priority, hb.routing_mode),
        (PingType::Heartbeat, Priority::Lazy, RoutingMode::Broadcast)
    );
    assert_eq!(hb.intent, "heartbeat");
    assert_eq!(
        serde_json::Value::Object(hb.payload),
        json!({"status": {"alive": true}})
    );
    let status = json!({"battery": 80}).as_object().unwrap().clone();
    let hb = a.heartbeat(t0(), "jis:home:b", Some(status));
    assert_eq!(hb.routing_mode, RoutingMode::Direct);
    assert_eq!(
        serde_json::Value::Object(hb.payload),
        json!({"status": {"battery": 80}})
    );

    let bare = a.discover(
        t0(),
        &Announcement {
            requested_capabilities: vec!["temp".into()],
            ..Default::default()
        },
    );
    assert_eq!(
        (bare.ping_type, bare.routing_mode, bare.target_did.as_str()),
        (PingType::Discover, RoutingMode::Broadcast, BROADCAST)
    );
    assert_eq!(bare.intent, "discover");
    assert_eq!(
        serde_json::to_string(&bare.payload).unwrap(),
        r#"{"requested_capabilities":["temp"]}"#
    );
    let full = a.discover(
        t0(),
        &Announcement {
            capabilities: vec!["light".into()],
            device_type: Some("actuator".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        serde_json::to_string(&full.payload).unwrap(),
        r#"{"requested_capabilities":[],"capabilities":["light"],"device_type":"actuator"}"#
    );
}

#[test]
fn receive_pipeline_zones_and_responses() {
    let mut hub = node("jis:home:hub", 1);
    let mut trusted = node("jis:home:trusted", 2);
    let mut middling = node("jis:home:middling", 3);
    let mut unknown = node("jis:evil:x", 4);
    hub.set_trust("jis:home:trusted", 0.9);
    hub.set_trust("jis:home:middling", 0.5);

    let p = ping(&mut trusted, t0(), "temperature.read");
    let r = hub.receive(t0(), &p);
    assert_eq!(r.outcome, Outcome::Accepted);
    assert_eq!(
        (r.response.decision, r.response.airlock_zone),
        (PingDecision::Accept, AirlockZone::Groen)
    );
    assert_eq!(r.response.in_response_to, p.packet_id);
    assert_eq!(r.response.responder_did, "jis:home:hub");
    assert_eq!(r.response.trust_score, 0.9);
    assert_eq!(fira(&r), json!({"score": 0.9, "source": "known"}));
    assert_eq!(
        (r.response.rtt_ms, r.response.applied_rule.as_deref()),
        (None, None)
    );
    assert_eq!(r.response.timestamp, "2026-11-26T11:00:00+00:00");
    assert!(r.should_reply());

    let r = hub.receive(t0(), &ping(&mut middling, t0(), "door.open"));
    assert_eq!(
        (r.outcome, r.response.decision, r.response.airlock_zone),
        (Outcome::Pending, PingDecision::Pending, AirlockZone::Geel)
    );
    assert!(r.should_reply());
    assert_eq!(hub.pending().count(), 1);

    let r = hub.receive(t0(), &ping(&mut unknown, t0(), "door.open"));
    assert_eq!(
        (r.outcome, r.response.decision, r.response.airlock_zone),
        (Outcome::Rejected, PingDecision::Reject, AirlockZone::Rood)
    );
    assert_eq!(fira(&r), json!({"score": 0.0, "source": "unknown"}));
    assert!(!r.should_reply());

    // Replays: same packet, stale, future, garbage timestamp.
    let r = hub.receive(t0(), &p);
    assert_eq!(
        (r.outcome, r.replay),
        (Outcome::Replay, Some(ReplayReason::Seen))
    );
    assert_eq!(
        (r.response.decision, r.response.airlock_zone),
        (PingDecision::Reject, AirlockZone::Rood)
    );
    assert_eq!(
        serde_json::Value::Object(r.response.payload.clone()),
        json!({"reason": "replay_detected"})
    );
    assert_eq!(
        (r.response.trust_score, r.response.fira_breakdown.len()),
        (0.0, 0)
    );
    assert!(!r.should_reply());
    let stale = ping(&mut trusted, t0() - Duration::from_secs(31), "x");
    assert_eq!(hub.receive(t0(), &stale).replay, Some(ReplayReason::TooOld));
    let future = ping(&mut trusted, t0() + Duration::from_secs(6), "x");
    assert_eq!(
        hub.receive(t0(), &future).replay,
        Some(ReplayReason::TooFarInFuture)
    );
    let mut garbage = ping(&mut trusted, t0(), "x");
    garbage.timestamp = "soon".into();
    assert_eq!(
        hub.receive(t0(), &garbage).replay,
        Some(ReplayReason::Unparseable)
    );

    let s = hub.stats();
    assert_eq!(
        (s.received, s.accepted, s.pending, s.rejected, s.replays),
        (7, 1, 1, 1, 4)
    );
    assert_eq!(
        s.replay_reasons,
        ReplayCounts {
            seen: 1,
            too_old: 1,
            too_far_in_future: 1,
            unparseable: 1,
            before_restart: 0,
        }
    );
    // Trusted, untrusted (GEEL) and none for the ROOD sender.
    assert_eq!(
        (
            s.nonce_tracked,
            s.untrusted_nonce_tracked,
            s.pending_count,
            s.known_devices
        ),
        (1, 1, 1, 2)
    );
}

#[test]
fn rules_decide_before_thresholds_and_are_reported() {
    let mut hub = node("jis:home:hub", 1);
    let mut trusted = node("jis:home:trusted", 2);
    hub.set_trust("jis:home:trusted", 0.95);
    let pattern = RulePattern {
        intent: Some("door.*".into()),
        ..Default::default()
    };
    hub.add_rule(
        AirlockRule::new("r1", "doors need a human", pattern, AirlockZone::Geel).with_priority(90),
    );
    let r = hub.receive(t0(), &ping(&mut trusted, t0(), "door.unlock"));
    assert_eq!(
        (r.outcome, r.response.airlock_zone),
        (Outcome::Pending, AirlockZone::Geel)
    );
    assert_eq!(
        r.response.applied_rule.as_deref(),
        Some("doors need a human")
    );
    assert_eq!(r.response.trust_score, 0.95);
    assert_eq!(
        hub.pending().next().unwrap().reason,
        "Trust 0.95 in GEEL zone (rule: doors need a human)"
    );
    let r = hub.receive(t0(), &ping(&mut trusted, t0(), "light.on"));
    assert_eq!(
        (r.outcome, r.response.applied_rule),
        (Outcome::Accepted, None)
    );
    assert_eq!(
        hub.remove_rule("r1").map(|r| r.name),
        Some("doors need a human".to_owned())
    );
    let r = hub.receive(t0(), &ping(&mut trusted, t0(), "door.unlock"));
    assert_eq!(
        (r.outcome, r.response.applied_rule),
        (Outcome::Accepted, None)
    );
}

#[test]
fn approve_with_raised_trust_makes_next_ping_groen() {
    let mut hub = node("jis:home:hub", 1);
    let mut dev = node("jis:home:new", 2);
    hub.set_trust("jis:home:new", 0.5);
    let first = ping(&mut dev, t0(), "temperature.report");
    assert_eq!(hub.receive(t0(), &first).outcome, Outcome::Pending);
    let approved = hub
        .approve_pending(&first.packet_id, Some(0.8))
        .expect("was pending");
    assert_eq!(approved.packet, first);
    assert_eq!(approved.sender_trust, 0.5);
    assert!(hub.approve_pending(&first.packet_id, Some(0.8)).is_none());
    let next = ping(&mut dev, t0(), "temperature.report");
    let r = hub.receive(t0(), &next);
    assert_eq!(
        (r.outcome, r.response.airlock_zone),
        (Outcome::Accepted, AirlockZone::Groen)
    );
    assert_eq!(hub.trust_of(t0(), "jis:home:new").score, 0.8);

    // Reject just drops it; trust unchanged.
    hub.set_trust("jis:home:new", 0.4);
    let p = ping(&mut dev, t0(), "x");
    assert_eq!(hub.receive(t0(), &p).outcome, Outcome::Pending);
    assert!(hub.reject_pending(&p.packet_id).is_some());
    assert_eq!(hub.pending().count(), 0);
    assert_eq!(hub.trust_of(t0(), "jis:home:new").score, 0.4);
}

#[test]
fn full_review_queue_fails_closed() {
    let mut hub = node_with(
        "jis:home:hub",
        1,
        PingNodeConfig {
            pending_capacity: 2,
            ..Default::default()
        },
    );
    let mut dev = node("jis:home:dev", 2);
    hub.set_trust("jis:home:dev", 0.5);
    let outcomes: Vec<_> = (0..3)
        .map(|_| hub.receive(t0(), &ping(&mut dev, t0(), "x")))
        .collect();
    assert_eq!(outcomes[1].outcome, Outcome::Pending);
    let refused = &outcomes[2];
    assert_eq!(
        (refused.outcome, refused.response.decision),
        (Outcome::Rejected, PingDecision::Reject)
    );
    assert_eq!(refused.response.airlock_zone, AirlockZone::Rood);
    assert_eq!(
        serde_json::Value::Object(refused.response.payload.clone()),
        json!({"reason": "pending_queue_full"})
    );
    assert!(!refused.should_reply());
    let s = hub.stats();
    assert_eq!(
        (s.pending, s.pending_refusals, s.rejected, s.pending_count),
        (2, 1, 0, 2)
    );
}

#[test]
fn nonce_capacity_fails_closed_and_counts() {
    let mut hub = node_with(
        "jis:home:hub",
        1,
        PingNodeConfig {
            nonce_capacity: 2,
            ..Default::default()
        },
    );
    let mut dev = node("jis:home:dev", 2);
    hub.set_trust("jis:home:dev", 1.0);
    for _ in 0..2 {
        assert_eq!(
            hub.receive(t0(), &ping(&mut dev, t0(), "x")).outcome,
            Outcome::Accepted
        );
    }
    let r = hub.receive(t0(), &ping(&mut dev, t0(), "x"));
    assert_eq!(
        (r.outcome, r.replay),
        (Outcome::Replay, Some(ReplayReason::CapacityExhausted))
    );
    let s = hub.stats();
    assert_eq!((s.nonce_refusals, s.replays, s.nonce_tracked), (1, 0, 2));
    // After the window, old nonces are collected and traffic flows again.
    let later = t0() + Duration::from_secs(31);
    assert_eq!(
        hub.receive(later, &ping(&mut dev, later, "x")).outcome,
        Outcome::Accepted
    );
}

#[test]
fn vouched_trust_and_expiry_through_the_node() {
    let mut hub = node("jis:home:hub", 1);
    let mut dev = node("jis:home:dev", 2);
    let v = hub
        .vouch(
            t0(),
            vec!["jis:home:dev".into()],
            VouchOptions {
                expires_at: Some(t0() + Duration::from_secs(10)),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(v.computed_trust(), 0.63);
    let r = hub.receive(t0(), &ping(&mut dev, t0(), "x"));
    assert_eq!(
        (r.outcome, r.response.trust_score),
        (Outcome::Pending, 0.63)
    );
    assert_eq!(
        fira(&r),
        json!({"score": 0.63, "source": "vouched", "vouch_count": 1})
    );
    let strong = VouchOptions {
        my_trust: 1.0,
        vouch_factor: 0.75,
        ..Default::default()
    };
    hub.vouch(t0(), vec!["jis:home:dev".into()], strong)
        .unwrap();
    let r = hub.receive(t0(), &ping(&mut dev, t0(), "x"));
    assert_eq!(
        (r.outcome, r.response.trust_score),
        (Outcome::Accepted, 0.75)
    );
    assert_eq!(fira(&r)["vouch_count"], 2);
    // The short vouch expires; the strong one remains.
    let later = t0() + Duration::from_secs(11);
    assert_eq!(hub.trust_of(later, "jis:home:dev").vouch_count, Some(1));
    assert!(hub.revoke_vouch(&v.vouch_id).is_some());
    assert_eq!(hub.stats().vouching.total_vouches, 1);
    hub.set_trust("jis:home:dev", 0.1);
    assert_eq!(
        hub.trust_of(later, "jis:home:dev").source,
        TrustSource::Known
    );
}

#[test]
fn vouch_registry_bounded_through_the_node() {
    let mut hub = node_with(
        "jis:home:hub",
        1,
        PingNodeConfig {
            vouch_capacity: 1,
            ..Default::default()
        },
    );
    hub.vouch(t0(), vec!["a".into()], VouchOptions::default())
        .unwrap();
    let err = hub
        .vouch(t0(), vec!["b".into()], VouchOptions::default())
        .unwrap_err();
    assert_eq!(err, VouchError::Full { capacity: 1 });
    assert_eq!(hub.stats().vouching.refused, 1);
}

/// The `rtt_ms` of one trusted ping answered by a hub, timed by the
/// caller's clock readings `started` and `finished` around the decision.
fn rtt_with_readings(started: Duration, finished: Duration) -> Option<f64> {
    let mut hub = node("jis:home:hub", 1);
    let mut dev = node("jis:home:dev", 2);
    hub.set_trust("jis:home:dev", 0.9);
    let packet = ping(&mut dev, t0(), "x");
    let mut answer = hub.answer(t0(), &packet, None);
    answer.set_processing_time(started, finished);
    hub.response_for(t0(), &answer, &packet).rtt_ms
}

#[test]
fn processing_time_fills_rtt() {
    let got = rtt_with_readings(Duration::from_micros(1_000), Duration::from_micros(1_250));
    assert_eq!(got, Some(0.25));
}

#[test]
fn rtt_is_counted_in_whole_microseconds_of_the_clock() {
    // Readings at 0.9 µs, then 2.3 µs: the clock's microseconds are 0 and
    // 2, so 2 µs, as two readings of a microsecond clock would say.
    let got = rtt_with_readings(Duration::from_nanos(900), Duration::from_nanos(2_300));
    assert_eq!(got, Some(0.002));
}

#[test]
fn untimed_and_refused_answers_carry_no_rtt() {
    let mut hub = node("jis:home:hub", 1);
    let mut dev = node("jis:home:dev", 2);
    hub.set_trust("jis:home:dev", 0.9);
    let packet = ping(&mut dev, t0(), "x");
    // The core reads no clock: without the caller's readings, no rtt.
    assert_eq!(hub.receive(t0(), &packet).response.rtt_ms, None);
    // A replay is refused before the airlock: no processing time to tell.
    let mut again = hub.answer(t0(), &packet, None);
    assert_eq!(again.outcome, Outcome::Replay);
    again.set_processing_time(Duration::ZERO, Duration::from_micros(5));
    assert_eq!(again.rtt_ms, None);
}

#[test]
fn signer_fills_signature() {
    struct Len;
    impl PacketSigner for Len {
        fn sign(&self, p: &PingPacket) -> String {
            assert!(p.signature.is_empty());
            format!("sig:{}", p.packet_id)
        }
    }
    let mut a = node("jis:home:a", 1);
    a.set_signer(Box::new(Len));
    let p = a.heartbeat(t0(), BROADCAST, None);
    assert_eq!(p.signature, format!("sig:{}", p.packet_id));
}

#[test]
fn discover_from_network_goes_through_beacon_handling_and_vouches() {
    let mut hub = node("jis:home:hub", 1);
    hub.create_pod("kitchen", "Kitchen", None, []).unwrap();
    hub.beacon_handler_mut()
        .add_auto_vouch_rule(AutoVouchRule {
            name: "sensors".into(),
            device_type: Some("sensor".into()),
            required_capabilities: Some(vec!["temperature".into()]),
            source_pattern: Some(r"jis:home:sensor_".into()),
            pod_id: Some("kitchen".into()),
            ..Default::default()
        })
        .unwrap();
    let mut sensor = node("jis:home:sensor_1", 2);
    let announce = Announcement {
        capabilities: vec!["temperature".into(), "humidity".into()],
        device_type: Some("sensor".into()),
        ..Default::default()
    };
    let packet = sensor.discover(t0(), &announce);
    let beacon = Beacon::from_discover_packet(&packet).unwrap();
    let resp = hub.handle_beacon(t0(), &beacon);
    assert_eq!(resp.decision, BeaconDecision::AutoVouched);
    assert_eq!(resp.in_response_to, beacon.beacon_id);
    assert_eq!(resp.hub_did, "jis:home:hub");
    let vouch_id = resp.vouch_id.clone().unwrap();
    assert_eq!(
        hub.vouches().get(&vouch_id).unwrap().voucher_did,
        "jis:home:hub"
    );
    assert_eq!(
        hub.topology().role_of("jis:home:sensor_1"),
        Some(NodeRole::Hubby)
    );
    assert_eq!(hub.topology().role_of("jis:home:hub"), Some(NodeRole::Hub));
    // The sensor's next ping is assessed as vouched.
    let r = hub.receive(t0(), &ping(&mut sensor, t0(), "temperature.report"));
    assert_eq!(
        fira(&r),
        json!({"score": 0.63, "source": "vouched", "vouch_count": 1})
    );

    // An unmatched device waits for a human; approval vouches.
    let mut other = node("jis:home:lamp", 3);
    let b = other.beacon(
        t0(),
        &Announcement {
            device_type: Some("actuator".into()),
            ..Default::default()
        },
    );
    assert!(b.beacon_id.starts_with("beacon_") && b.beacon_id.len() == 23);
    let resp = hub.handle_beacon(t0(), &b);
    assert_eq!(resp.decision, BeaconDecision::HitlPending);
    assert_eq!(
        hub.pending_beacons()
            .map(|b| b.source_did.as_str())
            .collect::<Vec<_>>(),
        ["jis:home:lamp"]
    );
    let v = hub
        .approve_beacon(t0(), &b.beacon_id, VouchOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(v.vouched_dids, ["jis:home:lamp"]);
    assert!(
        hub.approve_beacon(t0(), &b.beacon_id, VouchOptions::default())
            .is_none()
    );
    // A stale beacon is rejected.
    let old = other.beacon(t0() - Duration::from_secs(301), &Announcement::default());
    assert_eq!(
        hub.handle_beacon(t0(), &old).decision,
        BeaconDecision::Rejected
    );
    let s = hub.stats().beacons;
    assert_eq!(
        (s.handled, s.auto_vouched, s.hitl_pending, s.stale),
        (3, 1, 1, 1)
    );
}

#[test]
fn stats_serialize_and_counts_sum_to_received() {
    let mut hub = node_with(
        "jis:home:hub",
        1,
        PingNodeConfig {
            pending_capacity: 1,
            ..Default::default()
        },
    );
    let mut dev = node("jis:home:dev", 2);
    let mut mid = node("jis:home:mid", 3);
    hub.set_trust("jis:home:dev", 0.9);
    hub.set_trust("jis:home:mid", 0.5);
    for i in 0..20u64 {
        let now = t0() + Duration::from_secs(i);
        let p = if i % 3 == 0 {
            ping(&mut mid, now, "x")
        } else {
            ping(&mut dev, now, "x")
        };
        hub.receive(now, &p);
        if i % 4 == 0 {
            hub.receive(now, &p);
        }
    }
    let s = hub.stats();
    assert_eq!(s.received, 25);
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
    assert!(s.pending_refusals > 0);
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["device_did"], "jis:home:hub");
    assert_eq!(v["replay_reasons"]["seen"], 5);
}

#[test]
fn node_can_move_into_a_task() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<PingNode>();
    assert_send::<Reception>();
}

#[test]
fn rejected_beacon_leaves_no_vouch() {
    let mut hub = node("jis:home:hub", 1);
    let mut dev = node("jis:home:lamp", 2);
    let b = dev.beacon(t0(), &Announcement::default());
    assert_eq!(
        hub.handle_beacon(t0(), &b).decision,
        BeaconDecision::HitlPending
    );
    assert_eq!(hub.reject_beacon(&b.beacon_id), Some(b.clone()));
    assert_eq!(hub.pending_beacons().count(), 0);
    assert!(hub.vouches().is_empty());
    assert_eq!(
        hub.trust_of(t0(), "jis:home:lamp").source,
        TrustSource::Unknown
    );
}

#[test]
fn pending_ping_serializes_for_review_tools() {
    let mut hub = node("jis:home:hub", 1);
    let mut dev = node("jis:home:dev", 2);
    hub.set_trust("jis:home:dev", 0.5);
    let p = ping(&mut dev, t0(), "door.open");
    hub.receive(t0(), &p);
    let v = serde_json::to_value(hub.pending().next().unwrap()).unwrap();
    assert_eq!(v["packet"]["packet_id"], p.packet_id.as_str());
    assert_eq!(v["sender_trust"], 0.5);
    assert_eq!(v["queued_at"], "2026-11-26T11:00:00+00:00");
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[ -~]{0,40}",
            "\\PC{0,20}",
            Just("2026-11-26T11:00:00Z".to_owned()),
            Just("2026-11-26T11:00:10.000001+00:00".to_owned()),
        ]
    }

    prop_compose! {
        fn packet()(
            source in prop_oneof![Just("jis:home:dev".to_owned()), Just("jis:home:mid".to_owned()), text()],
            intent in text(), nonce in prop_oneof![Just("00".repeat(16)), text()], timestamp in text(),
            pod in proptest::option::of(text()), ping_type in proptest::sample::select(PingType::ALL.to_vec()),
        ) -> PingPacket {
            let packet_id = format!("ping_{nonce}");
            PingPacket {
                ping_type,
                pod_id: pod,
                nonce,
                timestamp,
                ..PingPacket::new(packet_id, source, "jis:home:hub", intent, "")
            }
        }
    }

    proptest! {
        /// Arbitrary packets never panic the pipeline, every packet is
        /// counted exactly once, and every bound holds.
        #[test]
        fn receive_is_total_and_bounded(
            packets in proptest::collection::vec((packet(), 0u64..40), 1..60),
        ) {
            let config = PingNodeConfig { nonce_capacity: 8, pending_capacity: 3, ..Default::default() };
            let mut hub = node_with("jis:home:hub", 1, config);
            hub.set_trust("jis:home:dev", 0.9);
            hub.set_trust("jis:home:mid", 0.5);
            hub.add_rule(AirlockRule::new("r", "odd", RulePattern { intent: Some("*a*".into()), ..Default::default() }, AirlockZone::Geel));
            for (p, secs) in packets {
                let now = t0() + Duration::from_secs(secs);
                let r = hub.receive(now, &p);
                prop_assert_eq!(r.should_reply(), matches!(r.response.decision, PingDecision::Accept | PingDecision::Pending));
                prop_assert_eq!(&r.response.in_response_to, &p.packet_id);
                let s = hub.stats();
                prop_assert!(s.nonce_tracked <= 8 && s.pending_count <= 3);
                prop_assert_eq!(s.accepted + s.pending + s.rejected + s.replays + s.nonce_refusals + s.pending_refusals + s.rate_limited, s.received);
            }
        }
    }
}

#[test]
fn packets_and_responses_survive_the_wire_codec() {
    let mut hub = node("jis:home:hub", 1);
    let mut dev = node("jis:home:dev", 2);
    hub.set_trust("jis:home:dev", 0.9);
    for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
        let sent = dev.heartbeat(t0(), "jis:home:hub", None);
        let Frame::Packet(got) = codec.decode(&codec.encode_packet(&sent).unwrap()).unwrap() else {
            panic!("expected a packet frame")
        };
        assert_eq!(got, sent);
        let r = hub.receive(t0(), &got);
        assert_eq!(r.outcome, Outcome::Accepted);
        let Frame::Response(back) = codec
            .decode(&codec.encode_response(&r.response).unwrap())
            .unwrap()
        else {
            panic!("expected a response frame")
        };
        assert_eq!(back, r.response);
    }
}
