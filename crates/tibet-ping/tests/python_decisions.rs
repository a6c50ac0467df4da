//! Decision interop with the Python reference (`tibet_ping.PingNode` 0.3.5):
//! the same trust set-up, the same packets (as JSON dicts), in both
//! directions (packets built by Rust, packets built by Python), must give
//! the same decision, zone, trust_score, fira_breakdown, applied_rule and
//! payload on both receivers.
//!
//! The reference reads the wall clock, so this test uses real time.

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use std::time::Duration;
use tibet_ping::*;

const RECEIVER: &str = "jis:test:receiver";

const SCRIPT: &str = r#"
import json, sys
from datetime import datetime, timedelta, timezone
from tibet_ping import AirlockRule, AirlockZone, PingDecision, PingNode, PingPacket

req = json.load(sys.stdin)

def receiver(setup):
    node = PingNode(setup["did"])
    for did, trust in setup["trust"]:
        node.set_trust(did, trust)
    for v in setup["vouches"]:
        node.vouch(v["dids"], vouch_factor=v["vouch_factor"], my_trust=v["my_trust"])
    decisions = {"GROEN": PingDecision.ACCEPT, "GEEL": PingDecision.PENDING, "ROOD": PingDecision.REJECT}
    for r in setup["rules"]:
        node.add_rule(AirlockRule(rule_id=r["rule_id"], name=r["name"], pattern=r["pattern"],
                                  decision=decisions[r["zone"]], zone=AirlockZone(r["zone"]),
                                  priority=r["priority"]))
    return node

if req["op"] == "receive":
    node = receiver(req["setup"])
    out = [node.receive(PingPacket.from_dict(p)).to_dict() for p in req["packets"]]
else:
    senders, out = {}, []
    for spec in req["specs"]:
        if "replay_of" in spec:
            out.append(dict(out[spec["replay_of"]]))
            continue
        node = senders.setdefault(spec["from"], PingNode(spec["from"]))
        if spec["kind"] == "heartbeat":
            p = node.heartbeat(target=req["target"])
        else:
            p = node.ping(target=req["target"], intent=spec["intent"], purpose="interop")
        if "offset_s" in spec:
            p.timestamp = (datetime.now(timezone.utc) + timedelta(seconds=spec["offset_s"])).isoformat()
        if "timestamp" in spec:
            p.timestamp = spec["timestamp"]
        out.append(p.to_dict())
print(json.dumps(out))
"#;

/// What to send, from whom, and the decision both receivers must reach.
struct Case {
    spec: Value,
    expect: (&'static str, &'static str),
}

/// A case spec: `from` sends a ping with `intent`.
fn ping(from: &str, intent: &str) -> Value {
    json!({"from": from, "kind": "ping", "intent": intent})
}

/// A case spec: `from` sends a heartbeat.
fn heartbeat(from: &str) -> Value {
    json!({"from": from, "kind": "heartbeat"})
}

/// `spec` with one more key.
fn with(mut spec: Value, key: &str, value: Value) -> Value {
    spec[key] = value;
    spec
}

fn cases() -> Vec<Case> {
    let c = |spec: Value, decision, zone| Case {
        spec,
        expect: (decision, zone),
    };
    vec![
        c(
            ping("jis:test:trusted", "temperature.read"),
            "accept",
            "GROEN",
        ),
        c(
            ping("jis:test:unknown", "temperature.read"),
            "reject",
            "ROOD",
        ),
        c(json!({"replay_of": 0}), "reject", "ROOD"),
        c(
            ping("jis:test:vouched", "temperature.read"),
            "pending",
            "GEEL",
        ),
        c(ping("jis:test:geel", "lights.on"), "pending", "GEEL"),
        c(ping("jis:test:trusted", "door.unlock"), "pending", "GEEL"),
        c(heartbeat("jis:test:vouched"), "accept", "GROEN"),
        c(heartbeat("jis:test:geel"), "pending", "GEEL"),
        c(ping("jis:test:blocked", "anything"), "reject", "ROOD"),
        c(
            with(ping("jis:test:trusted", "x"), "offset_s", json!(-60)),
            "reject",
            "ROOD",
        ),
        c(
            with(ping("jis:test:trusted", "x"), "offset_s", json!(60)),
            "reject",
            "ROOD",
        ),
        c(
            with(
                ping("jis:test:trusted", "x"),
                "timestamp",
                json!("not-a-time"),
            ),
            "reject",
            "ROOD",
        ),
        c(
            with(ping("jis:test:trusted", "x"), "timestamp", json!("")),
            "reject",
            "ROOD",
        ),
    ]
}

fn rules() -> Vec<AirlockRule> {
    vec![
        AirlockRule::new(
            "r-doors",
            "doors need a human",
            RulePattern {
                source_did: Some("jis:test:*".into()),
                intent: Some("door.*".into()),
                ..Default::default()
            },
            AirlockZone::Geel,
        )
        .with_priority(80),
        AirlockRule::new(
            "r-heartbeat",
            "heartbeats from the fairly trusted",
            RulePattern {
                ping_type: Some(PingType::Heartbeat),
                min_trust: Some(0.6),
                ..Default::default()
            },
            AirlockZone::Groen,
        )
        .with_priority(60),
        AirlockRule::new(
            "r-block",
            "blocked device",
            RulePattern {
                source_did: Some("*blocked".into()),
                ..Default::default()
            },
            AirlockZone::Rood,
        ),
    ]
}

fn setup_json() -> Value {
    json!({
        "did": RECEIVER,
        "trust": [["jis:test:trusted", 0.9], ["jis:test:geel", 0.5], ["jis:test:blocked", 1.0]],
        "vouches": [{"dids": ["jis:test:vouched"], "vouch_factor": 0.7, "my_trust": 0.9}],
        "rules": rules(),
    })
}

fn rust_receiver() -> PingNode {
    let config = PingNodeConfig {
        nonce_capacity: 4096,
        ..PingNodeConfig::default()
    };
    let mut node = PingNode::new(RECEIVER, config, Box::new(StdRng::seed_from_u64(7)));
    node.set_trust("jis:test:trusted", 0.9);
    node.set_trust("jis:test:geel", 0.5);
    node.set_trust("jis:test:blocked", 1.0);
    let now = Timestamp::now();
    let opts = VouchOptions {
        vouch_factor: 0.7,
        my_trust: 0.9,
        ..Default::default()
    };
    node.vouch(now, vec!["jis:test:vouched".into()], opts)
        .unwrap();
    for r in rules() {
        node.add_rule(r);
    }
    node
}

/// Packets built by our PingNode, as JSON dicts.
fn rust_packets(cases: &[Case]) -> Vec<Value> {
    let mut senders: Vec<PingNode> = Vec::new();
    let mut out: Vec<Value> = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let s = &case.spec;
        if let Some(j) = s.get("replay_of") {
            out.push(out[j.as_u64().unwrap() as usize].clone());
            continue;
        }
        let from = s["from"].as_str().unwrap();
        let at = match senders.iter().position(|n| n.did() == from) {
            Some(at) => at,
            None => {
                let rng = StdRng::seed_from_u64(100 + i as u64);
                senders.push(PingNode::new(
                    from,
                    PingNodeConfig::default(),
                    Box::new(rng),
                ));
                senders.len() - 1
            }
        };
        let mut now = Timestamp::now();
        if let Some(off) = s.get("offset_s").and_then(Value::as_i64) {
            let d = Duration::from_secs(off.unsigned_abs());
            now = if off < 0 { now - d } else { now + d };
        }
        let sender = &mut senders[at];
        let mut p = if s["kind"] == "heartbeat" {
            sender.heartbeat(now, RECEIVER, None)
        } else {
            sender.ping(
                now,
                RECEIVER,
                s["intent"].as_str().unwrap(),
                "interop",
                PingOptions::default(),
            )
        };
        if let Some(ts) = s.get("timestamp").and_then(Value::as_str) {
            p.timestamp = ts.to_owned();
        }
        out.push(serde_json::to_value(&p).unwrap());
    }
    out
}

fn python_packets(py: &std::path::PathBuf, cases: &[Case]) -> Vec<Value> {
    let specs: Vec<&Value> = cases.iter().map(|c| &c.spec).collect();
    let req = json!({"op": "build", "target": RECEIVER, "specs": specs});
    let out = tibet_testkit::run_python(py, SCRIPT, &[], req.to_string().as_bytes());
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

fn python_receive(py: &std::path::PathBuf, packets: &[Value]) -> Vec<Value> {
    let req = json!({"op": "receive", "setup": setup_json(), "packets": packets});
    let out = tibet_testkit::run_python(py, SCRIPT, &[], req.to_string().as_bytes());
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

fn rust_receive(packets: &[Value]) -> Vec<Value> {
    let mut node = rust_receiver();
    packets
        .iter()
        .map(|p| {
            let packet: PingPacket = serde_json::from_value(p.clone()).expect("packet decodes");
            serde_json::to_value(node.receive(Timestamp::now(), &packet).response).unwrap()
        })
        .collect()
}

const COMPARED: [&str; 6] = [
    "decision",
    "airlock_zone",
    "trust_score",
    "fira_breakdown",
    "applied_rule",
    "payload",
];

fn compare(direction: &str, cases: &[Case], packets: &[Value], ours: &[Value], theirs: &[Value]) {
    assert_eq!(ours.len(), cases.len());
    assert_eq!(theirs.len(), cases.len());
    for (i, case) in cases.iter().enumerate() {
        let (o, t) = (&ours[i], &theirs[i]);
        for key in COMPARED {
            assert_eq!(
                o[key], t[key],
                "{direction}, case {i} ({}), key {key}:\nrust {o}\npython {t}",
                case.spec
            );
        }
        assert_eq!(o["in_response_to"], packets[i]["packet_id"]);
        assert_eq!(t["in_response_to"], packets[i]["packet_id"]);
        assert_eq!(o["responder_did"], RECEIVER);
        let got = (
            o["decision"].as_str().unwrap(),
            o["airlock_zone"].as_str().unwrap(),
        );
        assert_eq!(got, case.expect, "{direction}, case {i} ({})", case.spec);
    }
}

#[test]
fn same_decisions_as_python_in_both_directions() {
    let Some(py) = tibet_testkit::python() else {
        return;
    };
    let cases = cases();

    let from_rust = rust_packets(&cases);
    let ours = rust_receive(&from_rust);
    let theirs = python_receive(&py, &from_rust);
    compare("rust-built packets", &cases, &from_rust, &ours, &theirs);

    let from_python = python_packets(&py, &cases);
    let ours = rust_receive(&from_python);
    let theirs = python_receive(&py, &from_python);
    compare("python-built packets", &cases, &from_python, &ours, &theirs);

    // The breakdowns that matter, spelled out once.
    assert_eq!(
        ours[0]["fira_breakdown"],
        json!({"score": 0.9, "source": "known"})
    );
    assert_eq!(
        ours[1]["fira_breakdown"],
        json!({"score": 0.0, "source": "unknown"})
    );
    assert_eq!(ours[2]["payload"], json!({"reason": "replay_detected"}));
    assert_eq!(ours[2]["fira_breakdown"], json!({}));
    assert_eq!(
        ours[3]["fira_breakdown"],
        json!({"score": 0.63, "source": "vouched", "vouch_count": 1})
    );
    assert_eq!(ours[5]["applied_rule"], "doors need a human");
    assert_eq!(
        ours[6]["applied_rule"],
        "heartbeats from the fairly trusted"
    );
    assert_eq!(ours[8]["applied_rule"], "blocked device");
}
