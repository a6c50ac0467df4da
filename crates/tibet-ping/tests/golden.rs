//! Wire interop with the Python reference (tibet-ping 0.3.5), both ways.
//!
//! `scripts/golden.py` is run on every test run: it makes frames with the
//! reference's own `PacketCodec` and prints the `to_dict()` each frame must
//! decode to; we decode them. Then we encode packets and responses in both
//! formats and let the reference decode them back to dicts.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Number, Value};
use tibet_ping::{Frame, PacketCodec, PingPacket, PingResponse, WireFormat, decode_header};
use tibet_testkit::{python, run_python};

const SCRIPT: &str = include_str!("../../../scripts/golden.py");

struct Vector {
    name: String,
    kind: String,
    format: String,
    byte_exact: bool,
    frame: Vec<u8>,
    expected: Value,
}

fn golden(py: &PathBuf) -> Vec<Vector> {
    let out = run_python(py, SCRIPT, &["generate"], b"");
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("golden line is JSON");
            Vector {
                name: v["name"].as_str().unwrap().to_owned(),
                kind: v["kind"].as_str().unwrap().to_owned(),
                format: v["format"].as_str().unwrap().to_owned(),
                byte_exact: v["byte_exact"].as_bool().unwrap(),
                frame: hex::decode(v["frame"].as_str().unwrap()).expect("hex frame"),
                expected: v["expected"].clone(),
            }
        })
        .collect()
}

/// The dict a frame decodes to, as JSON, and its kind.
fn to_dict(frame: &Frame) -> (&'static str, Value) {
    match frame {
        Frame::Packet(p) => ("packet", serde_json::to_value(p).unwrap()),
        Frame::Response(r) => ("response", serde_json::to_value(r).unwrap()),
    }
}

/// Python keeps `trust_score = 1` an int; we hold it as the float 1.0.
fn floats_as_floats(mut dict: Value) -> Value {
    for key in ["trust_score", "rtt_ms"] {
        if let Some(n) = dict.get(key).and_then(Value::as_f64) {
            dict[key] = serde_json::json!(n);
        }
    }
    same_spelling(dict)
}

/// Every float in one spelling per double. `serde_json` keeps a number's
/// text (`1e-05` from Python's JSON, `0.00001` from a msgpack float) and
/// compares numbers by it; integers are exact either way and stay as they are.
fn same_spelling(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            Value::Number(n.as_f64().and_then(Number::from_f64).unwrap_or(n))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(same_spelling).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, same_spelling(v)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn reference_frames_decode_to_the_reference_dicts() {
    let Some(py) = python() else { return };
    let vectors = golden(&py);
    assert!(
        vectors.len() >= 120,
        "only {} golden vectors",
        vectors.len()
    );
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for v in &vectors {
        let header = decode_header(&v.frame).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let want_format = if v.format == "msgpack" {
            WireFormat::Msgpack
        } else {
            WireFormat::Json
        };
        assert_eq!(header.format(), want_format, "{}", v.name);
        let frame = PacketCodec::default()
            .decode(&v.frame)
            .unwrap_or_else(|e| panic!("{} ({}): {e}", v.name, v.format));
        let (kind, dict) = to_dict(&frame);
        assert_eq!(kind, v.kind, "{}", v.name);
        assert_eq!(
            same_spelling(dict.clone()),
            floats_as_floats(v.expected.clone()),
            "{} ({})",
            v.name,
            v.format
        );
        // Record which enum values the vectors really exercised.
        for key in [
            "ping_type",
            "priority",
            "routing_mode",
            "decision",
            "airlock_zone",
        ] {
            if let Some(val) = dict.get(key) {
                seen.insert(format!("{key}={val}"));
            }
        }
    }
    let expected_values = [
        "ping_type=\"discover\"",
        "ping_type=\"intent\"",
        "ping_type=\"heartbeat\"",
        "ping_type=\"relay\"",
        "priority=1",
        "priority=2",
        "priority=3",
        "routing_mode=\"direct\"",
        "routing_mode=\"mesh\"",
        "routing_mode=\"broadcast\"",
        "decision=\"accept\"",
        "decision=\"pending\"",
        "decision=\"reject\"",
        "airlock_zone=\"GROEN\"",
        "airlock_zone=\"GEEL\"",
        "airlock_zone=\"ROOD\"",
    ];
    for want in expected_values {
        assert!(seen.contains(want), "no golden vector has {want}");
    }
}

#[test]
fn our_encoding_matches_the_reference_bytes() {
    let Some(py) = python() else { return };
    let mut exact = 0;
    for v in golden(&py) {
        let frame = PacketCodec::default().decode(&v.frame).unwrap();
        let msgpack = v.format == "msgpack";
        if !msgpack && !v.byte_exact {
            continue;
        }
        let codec = PacketCodec::new(msgpack);
        let ours = match &frame {
            Frame::Packet(p) => codec.encode_packet(p),
            Frame::Response(r) => codec.encode_response(r),
        }
        .unwrap();
        if v.name == "response-int-trust" {
            continue; // Python writes the int 1, we write the float 1.0.
        }
        assert_eq!(
            hex::encode(&ours),
            hex::encode(&v.frame),
            "{} ({})",
            v.name,
            v.format
        );
        exact += 1;
    }
    assert!(exact > 80, "only {exact} byte-exact comparisons");
}

/// Extra objects only the Rust side makes (raw UTF-8 JSON, extremes).
fn rust_made() -> (Vec<PingPacket>, Vec<PingResponse>) {
    let p: PingPacket = serde_json::from_value(serde_json::json!({
        "packet_id": "ping_a1b2c3d4e5f60718", "source_did": "jis:thuis:🌡️", "target_did": "broadcast",
        "ping_type": "relay", "priority": 1, "routing_mode": "mesh", "intent": "温度.read",
        "purpose": "why? \u{1F984} \"quoted\" \\ \u{7}", "payload": {
            "f": [0.1, 1e-5, 1e16, -0.0, 2.5e-308, 1.7976931348623157e308], "big": u64::MAX,
            "neg": i64::MIN, "deep": {"a": [{"b": [null, true, false, "", {}]}]}, "𝄞": "🎵"
        },
        "pod_id": null, "station_id": "s", "hop_count": 2, "max_hops": 10, "nonce": "ff",
        "timestamp": "2026-11-26T11:00:33Z", "tibet_token_id": null, "vouched_by": "jis:hub",
        "vouch_signature": null, "signature": "sig"
    }))
    .unwrap();
    let r: PingResponse = serde_json::from_value(serde_json::json!({
        "response_id": "resp_0000000000000000", "in_response_to": "ping_a1b2c3d4e5f60718",
        "responder_did": "jis:thuis:hub-ü", "decision": "reject", "payload": {"reason": "replay_detected"},
        "capabilities": ["🦀", "x"], "trust_score": 0.63,
        "fira_breakdown": {"score": 0.63, "source": "vouched", "vouch_count": 1},
        "tibet_token_id": "t", "timestamp": "2026-11-26T11:00:33.000001+00:00", "rtt_ms": 0.001,
        "airlock_zone": "ROOD", "applied_rule": "block-🚫"
    }))
    .unwrap();
    (vec![p], vec![r])
}

#[test]
fn reference_decodes_our_frames() {
    let Some(py) = python() else { return };
    let (mut packets, mut responses) = rust_made();
    for v in golden(&py) {
        match PacketCodec::default().decode(&v.frame).unwrap() {
            Frame::Packet(p) => packets.push(p),
            Frame::Response(r) => responses.push(r),
        }
    }
    let mut lines = String::new();
    let mut want = Vec::new();
    for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
        for p in &packets {
            lines.push_str(&hex::encode(codec.encode_packet(p).unwrap()));
            lines.push('\n');
            want.push(("packet", serde_json::to_value(p).unwrap()));
        }
        for r in &responses {
            lines.push_str(&hex::encode(codec.encode_response(r).unwrap()));
            lines.push('\n');
            want.push(("response", serde_json::to_value(r).unwrap()));
        }
    }
    let out = run_python(&py, SCRIPT, &["decode"], lines.as_bytes());
    let text = String::from_utf8(out.stdout).unwrap();
    let got: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want.len());
    for (i, (g, (kind, dict))) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["kind"], *kind, "frame {i}");
        assert_eq!(
            floats_as_floats(g["dict"].clone()),
            same_spelling(dict.clone()),
            "frame {i}"
        );
    }
}
