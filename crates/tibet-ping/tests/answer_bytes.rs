//! The allocation-free answer path (`PingNode::answer`, `response_view`,
//! `PacketCodec::encode_view_into`) writes exactly the bytes the owned path
//! (`PingNode::receive_vouched`, `PacketCodec::encode_response`) writes, in
//! both formats, over random packets, trust, rules, clocks and outcomes.

use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::{
    AirlockRule, AirlockZone, Frame, Glob, Outcome, PacketCodec, PingNode, PingNodeConfig,
    PingPacket, PingType, RulePattern, Timestamp,
};

/// Any Unicode text, including characters JSON escapes.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9:._-]{0,24}",
        1 => "(?s).{0,12}",
        1 => Just("\"\\/\u{0}\u{1f}\u{7f}\u{2028}🦀".to_owned()),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    trust: f64,
    credential: Option<f64>,
    rule: Option<(String, AirlockZone)>,
    clock: bool,
    micros: i64,
    packets: Vec<(String, String, String, bool)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(0.9), Just(0.5), Just(0.1), 0.0f64..=1.0],
        prop::option::of(0.0f64..=1.0),
        prop::option::of((text(), prop::sample::select(AirlockZone::ALL))),
        any::<bool>(),
        // 1970 to 2100, whole seconds and not.
        0i64..4_102_444_800_000_000,
        prop::collection::vec(
            (
                text(),
                // Half of the intents match the rule, if there is one.
                prop_oneof![text(), Just("rule.read".to_owned())],
                text(),
                any::<bool>(),
            ),
            1..12,
        ),
    )
        .prop_map(|(trust, credential, rule, clock, micros, packets)| Case {
            trust,
            credential,
            rule,
            clock,
            micros,
            packets,
        })
}

/// The sending device.
fn sensor(seed: u64) -> PingNode {
    PingNode::new(
        "jis:test:sensor",
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(seed)),
    )
}

fn node(c: &Case, seed: u64) -> PingNode {
    let config = PingNodeConfig {
        nonce_capacity: 64,
        untrusted_nonce_capacity: 64,
        // A full review queue early, for `pending_queue_full`.
        pending_capacity: 2,
        untrusted_burst: 5.0,
        ..PingNodeConfig::default()
    };
    let mut node = PingNode::new(
        "jis:test:hub",
        config,
        Box::new(StdRng::seed_from_u64(seed)),
    );
    node.set_trust("jis:test:sensor", c.trust);
    if let Some((name, zone)) = &c.rule {
        let pattern = RulePattern {
            intent: Some(Glob::new("rule.*")),
            ..RulePattern::default()
        };
        node.add_rule(AirlockRule::new("r1", name.clone(), pattern, *zone));
    }
    node
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_view_encodes_to_the_bytes_of_the_built_response(c in case()) {
        let now = Timestamp::from_micros(c.micros);
        let mut owned = node(&c, 5);
        let mut fast = node(&c, 5);
        let mut sender = sensor(6);
        let mut buf = Vec::new();
        let mut last: Option<PingPacket> = None;
        let mut ticks = 0u64;
        for (packet_id, intent, purpose, again) in &c.packets {
            let packet = match (&last, again) {
                // The same packet again: a replay, or refused before the
                // replay check.
                (Some(p), true) => p.clone(),
                _ => {
                    let mut p = sender.ping(now, "jis:test:hub", intent, purpose, Default::default());
                    p.packet_id.clone_from(packet_id);
                    p
                }
            };
            let mut reception = owned.receive_vouched(now, &packet, c.credential);
            let mut answer = fast.answer(now, &packet, c.credential);
            if c.clock {
                // The caller's clock readings around the decision.
                let started = Duration::from_nanos(ticks);
                ticks += 1_234_567;
                answer.set_processing_time(started, Duration::from_nanos(ticks));
                reception.response.rtt_ms = answer.rtt_ms;
            }
            prop_assert_eq!(answer.outcome, reception.outcome);
            prop_assert_eq!(answer.replay, reception.replay);
            prop_assert_eq!(answer.should_reply(), reception.should_reply());
            let built = fast.response_for(now, &answer, &packet);
            prop_assert_eq!(&built, &reception.response);
            for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
                let expected = codec.encode_response(&reception.response).unwrap();
                let view = fast.response_view(now, &answer, &packet);
                codec.encode_view_into(&view, &mut buf).unwrap();
                prop_assert_eq!(&buf, &expected);
                prop_assert_eq!(
                    codec.decode(&buf).unwrap(),
                    Frame::Response(reception.response.clone())
                );
                codec.encode_response_into(&reception.response, &mut buf).unwrap();
                prop_assert_eq!(&buf, &expected);
            }
            last = Some(packet);
        }
        prop_assert_eq!(owned.stats(), fast.stats());
    }
}

/// The paths the random cases may miss, each reached on purpose: a replay,
/// a rate-limited sender, a full review queue, a rule, a vouched credential.
#[test]
fn every_refusal_and_reason_encodes_alike() {
    let now = Timestamp::parse("2026-11-29T19:00:00.5Z").unwrap();
    let c = Case {
        trust: 0.5,
        credential: None,
        rule: Some(("rule \"quoted\" ✓".to_owned(), AirlockZone::Geel)),
        clock: true,
        micros: 0,
        packets: Vec::new(),
    };
    let mut hub = node(&c, 9);
    let mut sender = sensor(10);
    let mut seen = Vec::new();
    let mut buf = Vec::new();
    let mut check = |hub: &mut PingNode, packet: &PingPacket, credential: Option<f64>| {
        let answer = hub.answer(now, packet, credential);
        let built = hub.response_for(now, &answer, packet);
        for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
            let view = hub.response_view(now, &answer, packet);
            codec.encode_view_into(&view, &mut buf).unwrap();
            assert_eq!(buf, codec.encode_response(&built).unwrap());
        }
        seen.push((answer.outcome, built.payload.get("reason").cloned()));
        answer
    };
    let ping = |sender: &mut PingNode, intent: &str| {
        sender.ping(now, "jis:test:hub", intent, "why", Default::default())
    };
    // GEEL by a rule, queued; again: a replay.
    let p = ping(&mut sender, "rule.x");
    let a = check(&mut hub, &p, None);
    assert_eq!(a.applied_rule.as_deref(), Some("rule \"quoted\" ✓"));
    assert_eq!(check(&mut hub, &p, None).outcome, Outcome::Replay);
    // GEEL by threshold: one more fits the queue of two, then it is full.
    for _ in 0..3 {
        let p = ping(&mut sender, "geel");
        check(&mut hub, &p, None);
    }
    // The burst of five nonce entries is spent: rate limited.
    let p = ping(&mut sender, "geel");
    check(&mut hub, &p, None);
    // A vouched credential lifts the sender to GROEN.
    let mut p = ping(&mut sender, "plain");
    p.ping_type = PingType::Heartbeat;
    let a = check(&mut hub, &p, Some(0.95));
    assert_eq!(a.zone, AirlockZone::Groen);
    let reasons: Vec<_> = seen
        .iter()
        .filter_map(|(_, r)| r.as_ref().and_then(|r| r.as_str()))
        .collect();
    assert!(reasons.contains(&"replay_detected"), "{seen:?}");
    assert!(reasons.contains(&"pending_queue_full"), "{seen:?}");
    assert!(reasons.contains(&"rate_limited"), "{seen:?}");
}
