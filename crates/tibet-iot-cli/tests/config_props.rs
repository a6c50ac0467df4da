//! Property tests of the TOML config parser (`ConfigFile::from_toml`), the
//! part of `fuzz/fuzz_targets/config_toml.rs` that runs on every `cargo
//! test` (docs/FUZZING.md): arbitrary and mutated text never panics, every
//! refusal is a typed `ConfigError`, and whatever is accepted has passed the
//! value checks.

mod config_checks;

use config_checks::parse;
use proptest::prelude::*;
use tibet_iot_cli::config_file::ConfigError;

/// The documented example, the seed for mutations.
const HUB: &str = include_str!("../../../examples/hub.toml");

/// One edit of the text, on characters (never inside a UTF-8 sequence).
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (
            any::<usize>(),
            prop_oneof![
                "[\\[\\]\"'=.,#\\n{}a-z0-9 _-]{1,12}",
                any::<String>(),
                Just("\u{1b}[2K".to_owned()),
                Just("1e999".to_owned()),
                Just("-1".to_owned()),
                Just("[[vouch]]\ndids = []\n".to_owned()),
                Just("[trust]\n".to_owned()),
            ]
        )
            .prop_map(|(at, s)| Edit::Insert(at, s)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match edit {
        Edit::Delete(at, n) => {
            let at = at % (chars.len() + 1);
            let end = (at + n).min(chars.len());
            chars.drain(at..end);
            chars.into_iter().collect()
        }
        Edit::Insert(at, s) => {
            let at = at % (chars.len() + 1);
            chars.splice(at..at, s.chars());
            chars.into_iter().collect()
        }
        Edit::DuplicateLine(i) if !lines.is_empty() => {
            let i = i % lines.len();
            lines.insert(i, lines[i].clone());
            lines.join("\n")
        }
        Edit::SwapLines(a, b) if !lines.is_empty() => {
            let n = lines.len();
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
        _ => text.to_owned(),
    }
}

#[test]
fn the_example_parses() {
    let cfg = parse(HUB).expect("examples/hub.toml is valid");
    assert_eq!(cfg.did.as_deref(), Some("jis:home:hub"));
    let lossy = parse("[audit]\nfile = \"a\"\non_overload = \"drop\"").unwrap();
    assert_eq!(
        lossy.audit.and_then(|a| a.on_overload),
        Some(tibet_iot_cli::config_file::OverloadKind::Drop)
    );
}

#[test]
fn known_bad_values_give_value_errors_naming_the_key() {
    for (text, key) in [
        ("did = \"jis:a\\u001b[2K\"", "did"),
        ("[discovery]\nttl = 0", "discovery.ttl"),
        ("[discovery]\ngroup = \"10.0.0.1\"", "discovery.group"),
        ("[intervals]\nheartbeat = -1.0", "intervals.heartbeat"),
        ("[intervals]\nheartbeat = nan", "intervals.heartbeat"),
        ("[[vouch]]\ndids = []", "vouch[0].dids"),
        (
            "[[airlock_rule]]\nname = \"x\"\nzone = \"BLAUW\"",
            "airlock_rule[0].zone",
        ),
        (
            "[[auto_vouch]]\nname = \"x\"\nsource_pattern = \"(\"",
            "auto_vouch[0].source_pattern",
        ),
        (
            "[audit]\nfile = \"a\"\ngroup_commit_ms = 0",
            "audit.group_commit_ms",
        ),
        ("[limits]\npeers = 0", "limits.peers"),
        (
            "[limits]\nnonce_capacity = 1000000000",
            "limits.nonce_capacity",
        ),
    ] {
        match parse(text) {
            Err(ConfigError::Value { key: k, .. }) => assert_eq!(k, key, "{text}"),
            other => panic!("{text}: expected a value error for {key}, got {other:?}"),
        }
    }
    for text in [
        "port = 70000",
        "heartbeet = 1",
        "[limits]\npeers = -1",
        "[limits]\nsockets = 4",
        "[trust]\nx = \"y\"",
        "did = ",
        "[audit]\nfile = \"a\"\non_overload = \"maybe\"",
    ] {
        assert!(matches!(parse(text), Err(ConfigError::Syntax(_))), "{text}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_is_parsed_or_refused_with_a_typed_error(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn arbitrary_bytes_as_text(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutations_of_the_example_are_parsed_or_refused(edits in proptest::collection::vec(edit(), 1..6)) {
        let text = edits.iter().fold(HUB.to_owned(), |t, e| apply(&t, e));
        let _ = parse(&text);
    }

    #[test]
    fn trust_scores_are_accepted_exactly_within_0_to_1(
        seg in "[a-z]{1,8}",
        score in prop_oneof![any::<f64>(), -1.0..2.0f64, Just(f64::NAN), Just(1.0), Just(0.0)],
    ) {
        let did = format!("jis:home:{seg}");
        let text = format!("[trust]\n\"{did}\" = {}\n", toml_float(score));
        let in_range = score.is_finite() && (0.0..=1.0).contains(&score);
        match parse(&text) {
            Ok(cfg) => {
                prop_assert!(in_range, "accepted {score}");
                prop_assert_eq!(cfg.trust.get(&did).copied(), Some(score));
            }
            Err(ConfigError::Value { key, .. }) => {
                prop_assert!(!in_range, "refused {score}");
                prop_assert_eq!(key, format!("trust.\"{did}\""));
            }
            Err(e) => prop_assert!(false, "unexpected error {e:?} for {text}"),
        }
    }
}

/// `v` as a TOML float literal.
fn toml_float(v: f64) -> String {
    if v.is_nan() {
        "nan".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        // Debug prints a round-tripping form with a `.` or an exponent.
        let s = format!("{v:?}");
        if s.contains(['.', 'e', 'E']) {
            s
        } else {
            format!("{s}.0")
        }
    }
}
