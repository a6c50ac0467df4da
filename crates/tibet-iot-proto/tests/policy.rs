//! Policy scenarios on the simulator (moved from the loopback tests: they
//! test the engine's logic, not sockets): review of GEEL pings, vouching,
//! airlock rules, replay and duplicate handling, and the audit records every
//! policy change leaves.

use std::time::Duration;

use tibet_iot_proto::sim::{Sim, addr, did};
use tibet_iot_proto::{AuditRecord, SendOptions};
use tibet_ping::{
    AirlockRule, AirlockZone, PacketCodec, PingDecision, PingNode, PingNodeConfig, PingPacket,
    PingResponse, RulePattern, VouchOptions,
};

/// Two linked nodes, 0 and 1, trusting nobody; 1 records audit.
fn two() -> Sim {
    let mut sim = Sim::new(17);
    sim.add(0, Sim::config());
    sim.add(1, Sim::config());
    sim.link(0, 1);
    sim.node(1).set_audit_enabled(true);
    sim
}

/// Node `from` pings node `to` with `intent`; the answer, or `None` (silence).
fn ask(sim: &mut Sim, from: usize, to: usize, intent: &str) -> Option<PingResponse> {
    let now = sim.now();
    let opts = SendOptions {
        timeout: Some(Duration::from_secs(2)),
        ..SendOptions::default()
    };
    let id = sim
        .node(from)
        .send_ping(now, &did(to), addr(to), intent, "policy", opts)
        .unwrap();
    sim.run_for(Duration::from_secs(3));
    sim.outcome(from, id).expect("decided within the timeout")
}

fn audited(sim: &mut Sim, i: usize) -> Vec<AuditRecord> {
    let e = sim.node(i);
    std::iter::from_fn(|| e.poll_audit()).collect()
}

#[test]
fn geel_waits_for_review_then_approval_makes_groen() {
    let mut sim = two();
    let now = sim.now();
    sim.node(1).set_trust(now, &did(0), 0.5);
    let first = ask(&mut sim, 0, 1, "x").expect("GEEL is answered");
    assert_eq!(first.airlock_zone, AirlockZone::Geel);
    assert_eq!(first.decision, PingDecision::Pending);
    let pending: Vec<_> = sim.node(1).pending().cloned().collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].packet.packet_id, first.in_response_to);
    let now = sim.now();
    assert!(
        sim.node(1)
            .approve_pending(now, &first.in_response_to, Some(0.9))
            .is_some()
    );
    assert_eq!(sim.node(1).pending().count(), 0);
    let next = ask(&mut sim, 0, 1, "x").expect("answered");
    assert_eq!(next.airlock_zone, AirlockZone::Groen);
    let records = audited(&mut sim, 1);
    let review = records.iter().position(|r| {
        matches!(r, AuditRecord::PendingReviewed { pending, approved: true }
            if pending.packet.packet_id == first.in_response_to)
    });
    let raise = records.iter().position(|r| {
        matches!(r, AuditRecord::TrustChange { did: d, new, reason, .. }
            if *d == did(0) && *new == 0.9 && reason == "pending approved")
    });
    assert!(
        review.is_some() && raise > review,
        "review, then trust change: {records:?}"
    );
}

#[test]
fn rejecting_a_pending_ping_empties_the_queue_keeps_trust_and_is_audited() {
    let mut sim = two();
    let now = sim.now();
    sim.node(1).set_trust(now, &did(0), 0.5);
    let first = ask(&mut sim, 0, 1, "x").expect("GEEL is answered");
    assert_eq!(first.airlock_zone, AirlockZone::Geel);
    let rejected = sim
        .node(1)
        .reject_pending(&first.in_response_to)
        .expect("was pending");
    assert_eq!(rejected.packet.source_did, did(0));
    assert_eq!(sim.node(1).pending().count(), 0);
    assert!(
        sim.node(1).reject_pending(&first.in_response_to).is_none(),
        "only once"
    );
    let records = audited(&mut sim, 1);
    let rejections: Vec<_> = records
        .iter()
        .filter(|r| {
            matches!(
                r,
                AuditRecord::PendingReviewed {
                    approved: false,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(rejections.len(), 1, "one audit record per rejection");
    assert!(
        matches!(rejections[0], AuditRecord::PendingReviewed { pending, .. }
        if pending.packet.packet_id == first.in_response_to)
    );
    let next = ask(&mut sim, 0, 1, "x").expect("answered");
    assert_eq!(
        next.airlock_zone,
        AirlockZone::Geel,
        "still in review territory"
    );
}

#[test]
fn vouched_device_is_accepted_and_the_vouch_audited() {
    let mut sim = two();
    assert_eq!(ask(&mut sim, 0, 1, "x"), None, "unknown first: silence");
    let now = sim.now();
    let vouch = sim
        .node(1)
        .vouch(
            now,
            vec![did(0)],
            VouchOptions {
                vouch_factor: 0.9,
                ..Default::default()
            },
        )
        .unwrap();
    let after = ask(&mut sim, 0, 1, "x").expect("answered");
    assert_ne!(after.decision, PingDecision::Reject);
    assert!(after.trust_score > 0.7, "0.9 x 0.9");
    assert!(
        audited(&mut sim, 1)
            .iter()
            .any(|r| matches!(r, AuditRecord::Vouched { vouch: v } if **v == vouch))
    );
}

#[test]
fn airlock_rules_decide_before_trust_and_are_audited() {
    let mut sim = two();
    let pattern = RulePattern {
        intent: Some("doorbell.*".into()),
        ..Default::default()
    };
    let rule = AirlockRule::new("r1", "doorbell", pattern, AirlockZone::Groen);
    sim.node(1).add_rule(rule.clone());
    let ring = ask(&mut sim, 0, 1, "doorbell.ring").expect("the rule lets a stranger ring");
    assert_eq!(ring.airlock_zone, AirlockZone::Groen);
    assert_eq!(ring.applied_rule.as_deref(), Some("doorbell"));
    assert_eq!(
        ask(&mut sim, 0, 1, "door.open"),
        None,
        "anything else from a stranger stays ROOD"
    );
    let records = audited(&mut sim, 1);
    assert!(matches!(&records[0], AuditRecord::RuleAdded { rule: r } if **r == rule));
}

#[test]
fn duplicate_is_answered_from_cache_but_replays_are_dropped() {
    let mut sim = two();
    let now = sim.now();
    sim.node(1).set_trust(now, "jis:sim:raw", 0.9);
    let from = addr(7);
    let mut crafter = PingNode::new(
        "jis:sim:raw",
        PingNodeConfig::default(),
        Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(2)),
    );
    let codec = PacketCodec::json();
    let packet = crafter.ping(now.wall, &did(1), "x", "y", Default::default());
    let bytes = codec.encode_packet(&packet).unwrap();
    let exchange = |sim: &mut Sim, bytes: &[u8]| {
        let now = sim.now();
        let e = sim.node(1);
        e.handle_datagram(now, from, bytes);
        std::iter::from_fn(|| e.poll_transmit())
            .filter(|t| t.destination == from)
            .map(|t| t.payload.to_vec())
            .next()
    };
    let first = exchange(&mut sim, &bytes).expect("first answer");
    let again = exchange(&mut sim, &bytes).expect("the identical datagram is answered");
    assert_eq!(first, again, "from the response cache, byte for byte");
    // Same nonce, new packet id: a replay, dropped silently.
    let replay = PingPacket {
        packet_id: "ping_00000000000000aa".into(),
        ..packet.clone()
    };
    assert_eq!(
        exchange(&mut sim, &codec.encode_packet(&replay).unwrap()),
        None
    );
    // A fresh nonce but a stale timestamp: also a replay.
    let stale = crafter.ping(
        now.wall - Duration::from_secs(60),
        &did(1),
        "x",
        "y",
        Default::default(),
    );
    assert_eq!(
        exchange(&mut sim, &codec.encode_packet(&stale).unwrap()),
        None
    );
    let now = sim.now();
    let stats = sim.node(1).stats(now);
    assert_eq!(stats.engine.duplicates_answered, 1);
    assert_eq!(stats.engine.replays_dropped, 2);
}

#[test]
fn without_audit_enabled_nothing_is_queued() {
    let mut sim = two();
    sim.node(1).set_audit_enabled(false);
    let now = sim.now();
    sim.node(1).set_trust(now, &did(0), 0.9);
    let _ = ask(&mut sim, 0, 1, "x");
    assert!(audited(&mut sim, 1).is_empty());
}
