//! Ping tokens written straight from the packet (`NetworkBridge::add_ping`
//! in a batch) are byte for byte the tokens of the generic path
//! (`packet_token` sealed by the provider), and verify.

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value};
use tibet_core::{
    FileStore, HmacKey, NetworkBridge, PingAnswer, Provider, TokenIdGen, packet_token, verify_path,
};
use tibet_ping::{
    AirlockZone, JsonMap, PingDecision, PingPacket, PingResponse, PingType, RoutingMode, Timestamp,
};

/// Text of any kind: escapes, controls, non-BMP, and long multibyte runs
/// that cross the purpose cap.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "(?s).{0,12}",
        2 => "[a-z:._-]{0,20}",
        1 => Just("\"\\/\u{0}\u{1f}\u{7f}\u{2028}🦀𝄞".to_owned()),
        1 => ("[aé☀🦀]{1,4}", 60..120usize).prop_map(|(s, n)| s.repeat(n)),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        prop::sample::select(vec![0.0, -0.0, 0.1, 0.5, 1e-5, 1e16, 5e-324, f64::NAN]),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        float().prop_map(Value::from),
        text().prop_map(Value::String),
        (1..3000usize).prop_map(|n| Value::String("x".repeat(n))),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            vec((text(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn payload() -> impl Strategy<Value = JsonMap> {
    vec((text(), json_value()), 0..5).prop_map(|kv| kv.into_iter().collect::<Map<_, _>>())
}

/// A ping, its answer (or none) and whether its sender was authenticated
/// (or not said).
type Ping = (PingPacket, Option<PingAnswer>, Option<bool>);

fn ping() -> impl Strategy<Value = Ping> {
    (
        (text(), text(), text(), text(), text()),
        (
            prop::sample::select(PingType::ALL),
            prop::sample::select(RoutingMode::ALL),
            any::<u32>(),
            prop::option::of(prop_oneof![Just(String::new()), text()]),
        ),
        payload(),
        prop::option::of((
            prop::sample::select(PingDecision::ALL),
            float(),
            prop::sample::select(AirlockZone::ALL),
        )),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(
                (id, source, target, intent, purpose),
                (ping_type, routing_mode, hop_count, pod_id),
                payload,
                answer,
                authenticated,
            )| {
                let mut p = PingPacket::new(id, source, target, intent, purpose);
                p.ping_type = ping_type;
                p.routing_mode = routing_mode;
                p.hop_count = hop_count;
                p.pod_id = pod_id;
                p.payload = payload;
                let answer = answer.map(|(decision, trust_score, zone)| PingAnswer {
                    decision,
                    trust_score,
                    zone,
                });
                (p, answer, authenticated)
            },
        )
}

/// A bridge over a token file with a deterministic clock and ids.
fn bridge(path: &Path, key: Option<&HmacKey>) -> NetworkBridge {
    let t0 = Timestamp::parse("2026-11-26T11:00:33+00:00").unwrap();
    let tick = std::sync::atomic::AtomicU64::new(0);
    let mut p = Provider::new("jis:home:hub")
        .with_store(FileStore::open(path).unwrap())
        .with_id_gen(TokenIdGen::new(7))
        .with_clock(move || {
            // Whole seconds too (a timestamp without a fraction).
            t0 + std::time::Duration::from_micros(
                tick.fetch_add(499_999, std::sync::atomic::Ordering::Relaxed),
            )
        });
    if let Some(k) = key {
        p = p.with_hmac_key(k.clone());
    }
    NetworkBridge::new(p)
}

/// The generic path: the token content as a `NewToken`, sealed and
/// written by the provider.
fn generic(b: &mut NetworkBridge, (packet, answer, authenticated): &Ping) {
    let response = answer.map(|a| PingResponse {
        response_id: "resp_1".into(),
        in_response_to: packet.packet_id.clone(),
        responder_did: "jis:home:hub".into(),
        decision: a.decision,
        payload: JsonMap::new(),
        capabilities: vec!["x".into()],
        trust_score: a.trust_score,
        fira_breakdown: JsonMap::new(),
        tibet_token_id: None,
        timestamp: String::new(),
        rtt_ms: None,
        airlock_zone: a.zone,
        applied_rule: None,
        signature: String::new(),
    });
    let mut new = packet_token(packet, response.as_ref());
    if let Some(a) = authenticated {
        new.eromheen.insert("authenticated".into(), (*a).into());
    }
    b.add_event(new).unwrap();
}

/// Writes `pings` in batches of `per_batch` (the last token of one batch
/// is the parent of the next one's first) through both paths.
fn both(dir: &Path, pings: &[Ping], per_batch: usize, key: Option<&HmacKey>) -> (Vec<u8>, Vec<u8>) {
    let (fast_path, slow_path) = (dir.join("fast.jsonl"), dir.join("slow.jsonl"));
    let (mut fast, mut slow) = (bridge(&fast_path, key), bridge(&slow_path, key));
    for chunk in pings.chunks(per_batch) {
        fast.begin_batch();
        slow.begin_batch();
        for ping in chunk {
            fast.add_ping(&ping.0, ping.1, ping.2).unwrap();
            generic(&mut slow, ping);
        }
        assert_eq!(fast.commit_batch().unwrap(), chunk.len());
        assert_eq!(slow.commit_batch().unwrap(), chunk.len());
        assert_eq!(fast.last_id(), slow.last_id());
    }
    drop((fast, slow));
    (
        std::fs::read(&fast_path).unwrap(),
        std::fs::read(&slow_path).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn straight_from_the_packet_is_the_generic_token_byte_for_byte(
        pings in vec(ping(), 1..6),
        per_batch in 1..4usize,
        keyed in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let key = keyed.then(|| HmacKey::new(b"k3y".to_vec()));
        let (fast, slow) = both(dir.path(), &pings, per_batch, key.as_ref());
        prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&slow));
        let report = verify_path(&dir.path().join("fast.jsonl"), key.as_ref()).unwrap();
        prop_assert!(report.is_intact(), "{:?}", report);
        prop_assert_eq!(report.valid, pings.len() as u64);
    }
}

/// Outside a batch, and into a memory store, the same token too.
#[test]
fn unbatched_and_memory_pings_match_the_generic_token() {
    let mut p = PingPacket::new("ping_1", "jis:a", "jis:b", "t.read", "");
    p.payload = serde_json::json!({"c": 21.5}).as_object().unwrap().clone();
    let answer = PingAnswer {
        decision: PingDecision::Accept,
        trust_score: 0.95,
        zone: AirlockZone::Groen,
    };
    let mk = || {
        let t0 = Timestamp::parse("2026-11-26T11:00:33+00:00").unwrap();
        NetworkBridge::new(
            Provider::new("jis:b")
                .with_id_gen(TokenIdGen::new(1))
                .with_clock(move || t0),
        )
    };
    let (mut a, mut b, mut c) = (mk(), mk(), mk());
    a.add_ping(&p, Some(answer), Some(true)).unwrap();
    b.begin_batch();
    b.add_ping(&p, Some(answer), Some(true)).unwrap();
    b.commit_batch().unwrap();
    generic(&mut c, &(p.clone(), Some(answer), Some(true)));
    let all = |x: &NetworkBridge| x.provider().store().all().unwrap();
    assert_eq!(all(&a), all(&c));
    assert_eq!(all(&b), all(&c));
    let t = &all(&a)[0];
    assert_eq!(t.erachter, "Ping from jis:a to jis:b");
    assert_eq!(t.eromheen["authenticated"], true);
    assert!(t.verify(None));
}
