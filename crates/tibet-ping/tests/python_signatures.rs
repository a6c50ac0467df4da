//! An independent implementation (scripts/signing.py, Python `cryptography`)
//! agrees with ours on the signing input and on signatures, both directions.

use serde_json::json;
use tibet_ping::identity::{
    Keypair, PublicKey, packet_signing_input, response_signing_input, sign_packet, sign_response,
    verify_packet, verify_response,
};
use tibet_ping::{AirlockZone, PingDecision, PingPacket, PingResponse, RoutingMode};
use tibet_testkit::{python, run_python};

const SCRIPT: &str = include_str!("../../../scripts/signing.py");
const SEED: [u8; 32] = [0x42; 32];

fn packets() -> Vec<PingPacket> {
    let mut p = PingPacket::new(
        "ping_0011223344556677",
        "jis:home:sensor",
        "jis:home:hub",
        "temperature.report",
        "hourly log \u{e9}\u{1f600} \"quoted\"",
    );
    p.nonce = "00112233445566778899aabbccddeeff".into();
    p.timestamp = "2026-11-26T11:00:33.762558+00:00".into();
    p.payload = json!({
        "celsius": 21.5, "tiny": 1e-5, "huge": 1e16, "third": 1.0 / 3.0, "neg": -0.0,
        "max_u64": u64::MAX, "min_i64": i64::MIN, "nested": {"b": [1, null, true], "a": {}},
        "unicode \u{fc}": "\u{1}\t"
    })
    .as_object()
    .unwrap()
    .clone();
    p.hop_count = 2;
    let mut q = PingPacket::new(
        "ping_ffeeddccbbaa9988",
        "jis:a",
        "broadcast",
        "discover",
        "",
    );
    q.routing_mode = RoutingMode::Mesh;
    q.pod_id = Some("pod-1".into());
    q.vouched_by = Some("jis:home:hub".into());
    vec![p, q]
}

fn response() -> PingResponse {
    PingResponse {
        response_id: "resp_0011223344556677".into(),
        in_response_to: "ping_0011223344556677".into(),
        responder_did: "jis:home:hub".into(),
        decision: PingDecision::Accept,
        payload: json!({"ok": true, "reading": 0.1})
            .as_object()
            .unwrap()
            .clone(),
        capabilities: vec!["temperature".into()],
        trust_score: 0.63,
        fira_breakdown: json!({"score": 0.63, "source": "vouched", "vouch_count": 1})
            .as_object()
            .unwrap()
            .clone(),
        tibet_token_id: None,
        timestamp: "2026-11-26T11:00:33.800000+00:00".into(),
        rtt_ms: Some(0.125),
        airlock_zone: AirlockZone::Groen,
        applied_rule: Some("sensors".into()),
        signature: String::new(),
    }
}

#[test]
fn python_and_rust_agree_on_input_and_signatures_both_ways() {
    let Some(py) = python() else { return };
    let key = Keypair::from_seed(&SEED);
    let public = key.public().to_base64();
    let seed_hex = hex::encode(SEED);
    for packet in packets() {
        let wire = serde_json::to_vec(&packet).unwrap();
        // Same signing input, byte for byte.
        let input = run_python(&py, SCRIPT, &["input"], &wire).stdout;
        assert_eq!(
            String::from_utf8_lossy(&input),
            String::from_utf8_lossy(&packet_signing_input(&packet))
        );

        // Python signs, we verify (and Ed25519 is deterministic: same signature).
        let signed = run_python(&py, SCRIPT, &["sign", &seed_hex], &wire).stdout;
        let theirs: PingPacket = serde_json::from_slice(&signed).unwrap();
        assert_eq!(verify_packet(&theirs, &key.public()), Ok(()));
        let mut ours = packet.clone();
        sign_packet(&mut ours, &key);
        assert_eq!(theirs.signature, ours.signature);

        // We sign, Python verifies; a tampered copy fails there too.
        let out = run_python(
            &py,
            SCRIPT,
            &["verify", &public],
            &serde_json::to_vec(&ours).unwrap(),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
        let mut tampered = ours.clone();
        tampered.max_hops += 1;
        let out = run_python(
            &py,
            SCRIPT,
            &["verify", &public],
            &serde_json::to_vec(&tampered).unwrap(),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bad");
    }
}

#[test]
fn python_and_rust_agree_on_responses() {
    let Some(py) = python() else { return };
    let key = Keypair::from_seed(&SEED);
    let r = response();
    let mut wire = serde_json::to_value(&r).unwrap();
    let input = run_python(
        &py,
        SCRIPT,
        &["input", "resp"],
        &serde_json::to_vec(&wire).unwrap(),
    )
    .stdout;
    assert_eq!(input, response_signing_input(&r));
    let sig = sign_response(&r, &key);
    wire["signature"] = json!(sig);
    let public: PublicKey = key.public();
    let out = run_python(
        &py,
        SCRIPT,
        &["verify", &public.to_base64(), "resp"],
        &serde_json::to_vec(&wire).unwrap(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let signed = run_python(
        &py,
        SCRIPT,
        &["sign", &hex::encode(SEED), "resp"],
        &serde_json::to_vec(&response()).unwrap(),
    )
    .stdout;
    let v: serde_json::Value = serde_json::from_slice(&signed).unwrap();
    assert_eq!(
        verify_response(&r, v["signature"].as_str().unwrap(), &public),
        Ok(())
    );
}

/// Integers beyond 64 bits (2**64, 2**70, -2**64-1) in a payload: the
/// signing input is Python's, and signatures verify both ways.
#[test]
fn big_integers_sign_the_same_in_python() {
    let Some(py) = python() else { return };
    let key = Keypair::from_seed(&SEED);
    let wire = br#"{"packet_id":"ping_0011223344556677","source_did":"jis:home:sensor","target_did":"jis:home:hub","ping_type":"intent","priority":2,"routing_mode":"direct","intent":"counter.report","purpose":"big","payload":{"two64":18446744073709551616,"two70":1180591620717411303424,"neg":-18446744073709551617,"list":[1e-05,-0,2.50]},"pod_id":null,"station_id":null,"hop_count":3,"max_hops":5,"nonce":"00112233445566778899aabbccddeeff","timestamp":"2026-11-26T11:00:33.762558+00:00","tibet_token_id":null,"vouched_by":null,"vouch_signature":null,"signature":""}"#;
    let packet: PingPacket = serde_json::from_slice(wire).unwrap();
    let input = run_python(&py, SCRIPT, &["input"], wire).stdout;
    assert_eq!(
        String::from_utf8_lossy(&input),
        String::from_utf8_lossy(&packet_signing_input(&packet))
    );
    assert!(
        String::from_utf8_lossy(&input).contains(
            r#""payload":{"list":[1e-05,0,2.5],"neg":-18446744073709551617,"two64":18446744073709551616,"two70":1180591620717411303424}"#
        ),
        "{}",
        String::from_utf8_lossy(&input)
    );
    // Python signs, we verify; we sign, Python verifies.
    let signed = run_python(&py, SCRIPT, &["sign", &hex::encode(SEED)], wire).stdout;
    let theirs: PingPacket = serde_json::from_slice(&signed).unwrap();
    assert_eq!(verify_packet(&theirs, &key.public()), Ok(()));
    let mut ours = packet.clone();
    sign_packet(&mut ours, &key);
    assert_eq!(theirs.signature, ours.signature);
    let out = run_python(
        &py,
        SCRIPT,
        &["verify", &key.public().to_base64()],
        &serde_json::to_vec(&ours).unwrap(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
