//! Beacon interop with the Python reference (`tibet_ping.BeaconHandler`):
//! the same auto-vouch rules and beacons (built by Rust and by Python, as
//! JSON dicts) give the same decision, response id, assigned pod and message
//! on both hubs; our auto-vouch also registers the vouch (docs/ARCHITECTURE.md).
//!
//! The reference reads the wall clock, so this test uses real time.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tibet_ping::*;

const HUB: &str = "jis:test:hub";

const SCRIPT: &str = r#"
import dataclasses, json, sys
from datetime import datetime, timedelta, timezone
from tibet_ping import Beacon, BeaconHandler

req = json.load(sys.stdin)
if req["op"] == "handle":
    handler = BeaconHandler(auto_vouch_rules=req["rules"])
    out = [dataclasses.asdict(handler.handle_beacon(Beacon(**b), req["hub"])) for b in req["beacons"]]
else:
    out = []
    for spec in req["specs"]:
        b = Beacon.create(source_did=spec["did"], capabilities=spec["caps"], device_type=spec["type"])
        b.timestamp = (datetime.now(timezone.utc) + timedelta(seconds=spec["offset_s"])).isoformat()
        out.append(b.to_dict())
print(json.dumps(out))
"#;

/// (did, device type, capabilities, age offset in s, expected decision)
const CASES: &[(&str, &str, &[&str], i64, &str)] = &[
    (
        "jis:home:sensor_1",
        "sensor",
        &["temperature", "humidity"],
        0,
        "auto_vouched",
    ),
    (
        "jis:home:sensor_2",
        "sensor",
        &["humidity"],
        0,
        "hitl_pending",
    ),
    (
        "jis:home:sensor_3",
        "actuator",
        &["temperature"],
        0,
        "hitl_pending",
    ),
    (
        "x:jis:home:sensor_4",
        "sensor",
        &["temperature"],
        0,
        "hitl_pending",
    ),
    ("jis:lab:anything", "gateway", &[], -10, "auto_vouched"),
    (
        "jis:home:sensor_5",
        "sensor",
        &["temperature"],
        -400,
        "rejected",
    ),
];

fn rules() -> Vec<AutoVouchRule> {
    vec![
        AutoVouchRule {
            name: "home sensors".into(),
            device_type: Some("sensor".into()),
            required_capabilities: Some(vec!["temperature".into()]),
            source_pattern: Some(r"jis:home:sensor_\d+".into()),
            pod_id: Some("kitchen".into()),
            ..Default::default()
        },
        AutoVouchRule {
            name: "lab".into(),
            source_pattern: Some("jis:lab".into()),
            ..Default::default()
        },
    ]
}

/// The rules as the reference's dicts (only the keys it knows).
fn rules_json() -> Value {
    let rules: Vec<Value> = rules()
        .iter()
        .map(|r| {
            let mut m = serde_json::Map::new();
            m.insert("name".into(), json!(r.name));
            if let Some(t) = &r.device_type {
                m.insert("device_type".into(), json!(t));
            }
            if let Some(c) = &r.required_capabilities {
                m.insert("required_capabilities".into(), json!(c));
            }
            if let Some(p) = &r.source_pattern {
                m.insert("source_pattern".into(), json!(p));
            }
            if let Some(p) = &r.pod_id {
                m.insert("pod_id".into(), json!(p));
            }
            Value::Object(m)
        })
        .collect();
    Value::Array(rules)
}

fn shifted(offset_s: i64) -> Timestamp {
    let d = Duration::from_secs(offset_s.unsigned_abs());
    if offset_s < 0 {
        Timestamp::now() - d
    } else {
        Timestamp::now() + d
    }
}

fn rust_beacons() -> Vec<Value> {
    CASES
        .iter()
        .enumerate()
        .map(|(i, &(did, kind, caps, off, _))| {
            let mut node = PingNode::new(
                did,
                PingNodeConfig::default(),
                Box::new(StdRng::seed_from_u64(i as u64)),
            );
            let announce = Announcement {
                capabilities: caps.iter().map(|c| c.to_string()).collect(),
                device_type: Some(kind.into()),
                ..Default::default()
            };
            serde_json::to_value(node.beacon(shifted(off), &announce)).unwrap()
        })
        .collect()
}

fn python_beacons(py: &std::path::PathBuf) -> Vec<Value> {
    let specs: Vec<Value> = CASES
        .iter()
        .map(|&(did, kind, caps, off, _)| json!({"did": did, "type": kind, "caps": caps, "offset_s": off}))
        .collect();
    let out = tibet_testkit::run_python(
        py,
        SCRIPT,
        &[],
        json!({"op": "build", "specs": specs})
            .to_string()
            .as_bytes(),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(direction: &str, py: &std::path::PathBuf, beacons: &[Value]) {
    let req = json!({"op": "handle", "rules": rules_json(), "hub": HUB, "beacons": beacons});
    let out = tibet_testkit::run_python(py, SCRIPT, &[], req.to_string().as_bytes());
    let theirs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();

    let config = PingNodeConfig {
        nonce_capacity: 64,
        ..PingNodeConfig::default()
    };
    let mut hub = PingNode::new(HUB, config, Box::new(StdRng::seed_from_u64(99)));
    for r in rules() {
        hub.beacon_handler_mut().add_auto_vouch_rule(r).unwrap();
    }
    for (i, b) in beacons.iter().enumerate() {
        let beacon: Beacon = serde_json::from_value(b.clone()).expect("beacon decodes");
        let ours = serde_json::to_value(hub.handle_beacon(Timestamp::now(), &beacon)).unwrap();
        let t = &theirs[i];
        for key in [
            "response_id",
            "in_response_to",
            "hub_did",
            "decision",
            "assigned_pod",
            "message",
        ] {
            assert_eq!(
                ours[key], t[key],
                "{direction}, case {i}, key {key}:\nrust {ours}\npython {t}"
            );
        }
        assert_eq!(ours["decision"], CASES[i].4, "{direction}, case {i}");
        assert_eq!(ours["vouch_id"].is_string(), t["vouch_id"].is_string());
        // Beyond the reference: the vouch is real.
        if ours["decision"] == "auto_vouched" {
            let id = ours["vouch_id"].as_str().unwrap();
            assert_eq!(hub.vouches().get(id).unwrap().vouched_dids, [CASES[i].0]);
            let trust = hub.trust_of(Timestamp::now(), CASES[i].0);
            assert_eq!((trust.source, trust.score), (TrustSource::Vouched, 0.63));
        }
    }
}

#[test]
fn same_beacon_answers_as_python_in_both_directions() {
    let Some(py) = tibet_testkit::python() else {
        return;
    };
    check("rust-built beacons", &py, &rust_beacons());
    check("python-built beacons", &py, &python_beacons(&py));
}
