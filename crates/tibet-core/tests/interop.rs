//! Interop with the Python reference (`tibet_core` 0.5.0): the canonical
//! hash content, files written by either side, and tampering detected by
//! both.

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Number, Value, json};
use tibet_core::{
    DropAggregator, DropSource, Durability, FileStore, HmacKey, MAX_TOKEN_PURPOSE, NewToken,
    Provider, Token, TokenIdGen, TokenState, verify_path,
};
use tibet_ping::Timestamp;
use tibet_testkit::{python, run_python};

fn provider(path: &Path, key: Option<&[u8]>) -> Provider {
    let store = FileStore::open_with(path, Durability::EveryToken).unwrap();
    let t0 = Timestamp::parse("2026-11-26T11:00:33.762558+00:00").unwrap();
    let tick = std::sync::atomic::AtomicI64::new(0);
    let mut p = Provider::new("jis:home:hub")
        .with_store(store)
        .with_id_gen(TokenIdGen::new(99))
        .with_clock(move || {
            t0 + std::time::Duration::from_micros(
                tick.fetch_add(1_000_001, std::sync::atomic::Ordering::Relaxed) as u64,
            )
        });
    if let Some(k) = key {
        p = p.with_hmac_key(HmacKey::new(k.to_vec()));
    }
    p
}

/// ERIN values that stress the canonical form: unicode, emoji, controls,
/// nesting, floats of every magnitude, big integers.
fn tricky_erins() -> Vec<Value> {
    vec![
        json!({"temp": 21.5, "tiny": 1e-5, "big": 1e16, "bigger": 1.5e16, "whole": 1.0, "neg": -0.0}),
        json!({"naïve": "Zeit für Wärme ☀", "emoji": "🌡️🔥😀", "ctl": "tab\tnl\ncr\r\u{1}\u{7f}", "q": "\"\\/"}),
        json!({"z": {"y": [1, 2.25, {"b": null, "a": true}], "x": []}, "A": {}, "é": 0.1, "": "empty key"}),
        json!([u64::MAX, i64::MIN, 0, -1, 1e300, 5e-324, 123456789.125]),
        json!("just a string with \u{10FFFF} and \u{FFFF}"),
        json!(std::f64::consts::PI),
        Value::Null,
    ]
}

fn write_ours(path: &Path, key: Option<&[u8]>) -> Vec<Token> {
    let mut p = provider(path, key);
    let mut out = Vec::new();
    for (i, erin) in tricky_erins().into_iter().enumerate() {
        out.push(
            p.create(
                NewToken::new(format!("test.{i}"))
                    .erin(erin)
                    .eraan(["jis:a", "jis:β"])
                    .eromheen(json!({"rate": 0.30000000000000004, "n": i, "where": "Küche"}))
                    .erachter("Warum? Darum ✓")
                    .state(TokenState::ALL[i % 5]),
            )
            .unwrap(),
        );
    }
    let hb = p.record_heartbeat("jis:sensor:temp1", Some("ok")).unwrap();
    p.update_state(&hb.token_id, TokenState::Resolved, "")
        .unwrap();
    out
}

const PY_CHECK_FILE: &str = r#"
import sys, json
from tibet_core import FileStore
path, key = sys.argv[1], sys.argv[2].encode() or None
store = FileStore(path)
tokens = store.all()
with open(path, encoding="utf-8") as f:
    lines = [l.rstrip("\n") for l in f if l.strip()]
print(json.dumps({
    "count": len(tokens),
    "report": store.verify_file(),
    "keyed_ok": [t.token_id for t in tokens if t.verify(key)],
    "same_lines": [t.to_json() for t in tokens] == lines,
}))
"#;

fn py_check(py: &std::path::PathBuf, path: &Path, key: &str) -> Value {
    let out = run_python(py, PY_CHECK_FILE, &[path.to_str().unwrap(), key], b"");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn our_files_verify_in_python_byte_for_byte() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();

    let plain = dir.path().join("plain.jsonl");
    let tokens = write_ours(&plain, None);
    let r = py_check(&py, &plain, "");
    assert_eq!(r["count"], tokens.len() + 2);
    assert_eq!(r["report"]["integrity"], true, "{r}");
    assert_eq!(r["report"]["valid"], tokens.len() + 2);
    assert_eq!(
        r["same_lines"], true,
        "Python re-serialises our lines identically"
    );

    let keyed = dir.path().join("hmac.jsonl");
    write_ours(&keyed, Some(b"hub-secret"));
    let r = py_check(&py, &keyed, "hub-secret");
    assert_eq!(
        r["keyed_ok"].as_array().unwrap().len(),
        tokens.len() + 2,
        "{r}"
    );
    // Without the key Python's verify_file must reject every keyed token.
    assert_eq!(r["report"]["valid"], 0);
    let r = py_check(&py, &keyed, "wrong");
    assert!(r["keyed_ok"].as_array().unwrap().is_empty());
}

const PY_WRITE: &str = r#"
import sys
from tibet_core import Provider, FileStore, NetworkBridge
path, key = sys.argv[1], sys.argv[2].encode() or None
p = Provider(actor="jis:py:hub", store=FileStore(path), hmac_key=key)
p.create("boot", erin={"temp": 21.5, "tiny": 1e-05, "big": 1e16, "huge_int": 2**62, "name": "Wärme ☀ 🌡️", "nested": {"b": [1, 2.5, None], "a": True}}, eraan=["jis:x"], eromheen={"ratio": 0.1}, erachter="Grund: Test ✓")
b = NetworkBridge(p)
b.record_discovery("jis:new:sensor", ("192.168.1.50", 7150), "accepted")
b.record_heartbeat("jis:sensor:temp1", addr=("192.168.1.50", 7150))
b.record_trust_change("jis:sensor:temp1", 0.5, 0.9, "Vouched by admin")
b.record_relay({"source_did": "jis:a", "target_did": "jis:b", "hop_count": 2}, ("10.0.0.2", 7150))
p.update_state(p.find(action="discovery")[0].token_id, __import__("tibet_core").TokenState.MITIGATED)
"#;

#[test]
fn python_files_verify_in_ours() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for key in ["", "py-secret"] {
        let path = dir.path().join(format!("py{}.jsonl", key.len()));
        run_python(&py, PY_WRITE, &[path.to_str().unwrap(), key], b"");
        let hkey = (!key.is_empty()).then(|| HmacKey::new(key.as_bytes().to_vec()));
        let report = verify_path(&path, hkey.as_ref()).unwrap();
        assert_eq!(report.valid, 6, "{report:?}");
        assert!(report.is_intact(), "{report:?}");
        if hkey.is_some() {
            assert_eq!(verify_path(&path, None).unwrap().invalid, 6);
        }
        // We can continue the Python file: the chain picks up its last token.
        let store = FileStore::open(&path).unwrap();
        let last = store
            .recovered()
            .is_none()
            .then(|| tibet_core::Store::last_id(&store))
            .flatten();
        let mut p = Provider::new("jis:rs").with_store(store);
        if let Some(k) = hkey.clone() {
            p = p.with_hmac_key(k);
        }
        let t = p.create(NewToken::new("continued")).unwrap();
        assert_eq!(t.parent_id, last);
        assert!(verify_path(&path, hkey.as_ref()).unwrap().is_intact());
    }
}

const PY_TAMPER_CHECK: &str = r#"
import sys, json
from tibet_core import FileStore
print(json.dumps(FileStore(sys.argv[1]).verify_file()))
"#;

#[test]
fn one_changed_character_fails_in_both() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let tokens = write_ours(&path, None);
    let text = std::fs::read_to_string(&path).unwrap();
    let victim = &tokens[2];
    // Change one character of ERACHTER in the third token's line.
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!(r#"{{"token_id": "{}""#, victim.token_id)) {
                l.replacen("Warum", "Wbrum", 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert_ne!(lines.join("\n") + "\n", text);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let ours = verify_path(&path, None).unwrap();
    assert_eq!(ours.invalid, 1);
    assert_eq!(ours.corrupt[0].token_id, victim.token_id);
    assert_eq!(ours.corrupt[0].line, 3);
    let out = run_python(&py, PY_TAMPER_CHECK, &[path.to_str().unwrap()], b"");
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs["invalid"], 1);
    assert_eq!(theirs["corrupted_ids"], json!([victim.token_id]));
}

/// Arbitrary JSON values biased towards what breaks serialisers.
fn json_value() -> impl Strategy<Value = Value> {
    let float = prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (-20i32..25, -9_999i64..9_999).prop_map(|(e, m)| m as f64 * 10f64.powi(e)),
        (1u32..60).prop_map(|e| 2f64.powi(e as i32)),
        Just(1e16),
        Just(1e-5),
        Just(0.1),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Integers beyond 64 bits, which Python ints hold.
        any::<i128>().prop_map(|i| Value::Number(Number::from_i128(i).unwrap())),
        "-?[1-9][0-9]{19,50}".prop_map(|s| serde_json::from_str(&s).unwrap()),
        float.prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-zA-Z\u{e9}\u{1F600}\\\\\"\n ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

const PY_HASH_CONTENT: &str = r#"
import sys
from tibet_core import Token
# Read everything first: the caller writes all of stdin before reading.
lines = sys.stdin.buffer.read().splitlines()
for line in lines:
    sys.stdout.buffer.write(Token.from_json(line.decode())._hash_content() + b"\n")
"#;

#[test]
fn canonical_content_matches_python_for_random_values() {
    let Some(py) = python() else { return };
    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let strategy = (
        json_value(),
        prop::collection::hash_map(any::<String>(), json_value(), 0..4),
        any::<String>(),
    );
    let mut tokens = Vec::new();
    let mut input = Vec::new();
    for i in 0..1500 {
        let (erin, eromheen, erachter) = strategy.new_tree(&mut runner).unwrap().current();
        let mut t = Token {
            token_id: format!("tibet_20261126110033762558_{i:08x}"),
            action: "prop".into(),
            timestamp: "2026-11-26T11:00:33.762558+00:00".into(),
            actor: erachter.chars().rev().collect(),
            erin,
            eraan: vec![erachter.clone()],
            eromheen: eromheen
                .into_iter()
                .collect::<HashMap<_, _>>()
                .into_iter()
                .collect(),
            erachter,
            parent_id: (i % 2 == 0).then(|| "tibet_parent".to_owned()),
            state: TokenState::ALL[i % 5],
            content_hash: String::new(),
            signature: String::new(),
        };
        t.seal(None);
        // Fed to Python as serde_json's own compact JSON (not our writer), so
        // the comparison does not depend on the code under test.
        input.extend_from_slice(serde_json::to_string(&t).unwrap().as_bytes());
        input.push(b'\n');
        tokens.push(t);
    }
    let out = run_python(&py, PY_HASH_CONTENT, &[], &input);
    let theirs: Vec<&[u8]> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(theirs.len(), tokens.len());
    for (t, py_bytes) in tokens.iter().zip(theirs) {
        let ours = t.hash_content();
        assert!(
            ours == py_bytes,
            "mismatch for {:?}\n ours: {}\n   py: {}",
            t.erin,
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(py_bytes)
        );
    }
}

/// Tokens with capped purpose and payload (made generically and straight
/// from the packet), and aggregated drop records, verify in Python
/// tibet-core byte for byte.
#[test]
fn capped_and_drop_tokens_verify_in_python() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capped.jsonl");
    let mut bridge = tibet_core::NetworkBridge::new(provider(&path, None));
    let mut packet = tibet_ping::PingPacket::new(
        "ping_0011223344556677",
        "jis:evil:x",
        "jis:home:hub",
        "door.unlock",
        "Wärme ☀ ".repeat(100),
    );
    packet.payload = json!({"blob": "x".repeat(5000), "n": [1, 2.5]})
        .as_object()
        .unwrap()
        .clone();
    let capped = bridge.record_ping(&packet, None).unwrap();
    assert!(capped.erin["purpose"].as_str().unwrap().len() <= MAX_TOKEN_PURPOSE);
    assert_eq!(capped.erin["payload"], json!({}));
    assert_eq!(capped.erin["payload_sha256"].as_str().unwrap().len(), 64);
    // The same ping and a small one, written straight from the packet in a
    // batch (the audited node's path).
    let answer = tibet_core::PingAnswer {
        decision: tibet_ping::PingDecision::Pending,
        trust_score: 0.1,
        zone: tibet_ping::AirlockZone::Geel,
    };
    let mut small =
        tibet_ping::PingPacket::new("ping_2", "jis:home:s", "jis:home:hub", "t.read", "");
    small.payload = json!({"c": 21.5, "u": "é🦀", "n": 1e16})
        .as_object()
        .unwrap()
        .clone();
    bridge.begin_batch();
    bridge.add_ping(&packet, Some(answer), Some(false)).unwrap();
    bridge.add_ping(&small, Some(answer), Some(true)).unwrap();
    assert_eq!(bridge.commit_batch().unwrap(), 2);
    let mut agg = DropAggregator::new(std::time::Duration::from_secs(10), 8);
    let t0 = Timestamp::parse("2026-11-26T11:00:00Z").unwrap();
    for i in 0..5_000u64 {
        let at = t0 + std::time::Duration::from_millis(i);
        agg.note(
            at,
            DropSource::Addr("10.0.0.9:7150".parse().unwrap()),
            "rood",
        );
        agg.note(at, DropSource::did("jis:evil:x"), "replay");
    }
    let records = agg.flush(t0 + std::time::Duration::from_secs(10));
    assert_eq!(records.len(), 2, "one record per source");
    for r in &records {
        bridge.record_drops(r).unwrap();
    }
    drop(bridge);
    let r = py_check(&py, &path, "");
    assert_eq!(r["count"], 5, "{r}");
    assert_eq!(r["report"]["integrity"], true, "{r}");
    assert_eq!(r["same_lines"], true, "{r}");
}

const PY_WRITE_BIG: &str = r#"
import sys
from tibet_core import Provider, FileStore
path, key = sys.argv[1], sys.argv[2].encode() or None
p = Provider(actor="jis:py:hub", store=FileStore(path), hmac_key=key)
p.create("counter", erin={"two64": 2**64, "two70": 2**70, "neg": -2**64-1, "list": [2**100, -2**63, 2**64-1, 1.5]}, eraan=["jis:x"], eromheen={"big": 2**64, "small": 1}, erachter="big integers")
p.create("plain", erin=-2**64-1)
"#;

/// Integers beyond 64 bits, as Python writes them: the file verifies, the
/// lines read back byte for byte, and our tokens with them verify in Python.
#[test]
fn big_integers_verify_in_both_directions() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for key in ["", "py-secret"] {
        let path = dir.path().join(format!("big{}.jsonl", key.len()));
        run_python(&py, PY_WRITE_BIG, &[path.to_str().unwrap(), key], b"");
        let hkey = (!key.is_empty()).then(|| HmacKey::new(key.as_bytes().to_vec()));
        let report = verify_path(&path, hkey.as_ref()).unwrap();
        assert_eq!(report.valid, 2, "{report:?}");
        assert!(report.is_intact(), "{report:?}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(r#""two70": 1180591620717411303424"#),
            "{text}"
        );
        for line in text.lines() {
            let t = Token::from_json_line(line.as_bytes()).unwrap();
            assert_eq!(t.to_json_line(), line);
        }
        let first = Token::from_json_line(text.lines().next().unwrap().as_bytes()).unwrap();
        assert_eq!(first.erin["neg"].to_string(), "-18446744073709551617");
        assert_eq!(first.eromheen["big"].to_string(), "18446744073709551616");
    }

    // Ours, with the same numbers, verify in Python.
    let path = dir.path().join("ours-big.jsonl");
    let mut p = provider(&path, None);
    let erin: Value =
        serde_json::from_str(r#"{"two64": 18446744073709551616, "two70": 1180591620717411303424, "neg": -18446744073709551617}"#)
            .unwrap();
    p.create(NewToken::new("counter").erin(erin)).unwrap();
    assert!(verify_path(&path, None).unwrap().is_intact());
    let out = run_python(&py, PY_TAMPER_CHECK, &[path.to_str().unwrap()], b"");
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs["valid"], 1, "{theirs}");
    assert_eq!(theirs["invalid"], 0, "{theirs}");
}
