//! `tibet-iot audit ...` run as the built binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::json;
use tibet_core::{FileStore, HmacKey, NewToken, Provider, Token, TokenIdGen};
use tibet_ping::Timestamp;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tibet-iot"))
}

/// Writes `n` chained tokens (actions alternate heartbeat / ping.intent,
/// actors alternate a / b, one second apart) and returns their ids.
fn write_log(path: &Path, n: u64, key: Option<&[u8]>) -> Vec<String> {
    let mut p = Provider::new("jis:home:hub")
        .with_store(FileStore::open(path).unwrap())
        .with_id_gen(TokenIdGen::new(5));
    if let Some(k) = key {
        p = p.with_hmac_key(HmacKey::new(k.to_vec()));
    }
    let t0 = Timestamp::parse("2026-11-26T11:00:00+00:00").unwrap();
    (0..n)
        .map(|i| {
            let action = if i % 2 == 0 {
                "heartbeat"
            } else {
                "ping.intent"
            };
            let new = NewToken::new(action)
                .erin(json!({"i": i, "temp": 21.5, "note": "Wärme ☀"}))
                .actor(if i % 2 == 0 { "jis:a" } else { "jis:b" })
                .erachter(format!("event {i}"));
            p.create_at(new, t0 + Duration::from_secs(i))
                .unwrap()
                .token_id
        })
        .collect()
}

fn setup(n: u64) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let ids = write_log(&path, n, None);
    (dir, path, ids)
}

/// `tibet-iot audit SUB FILE`, ready for more arguments.
fn audit_cmd(sub: &str, file: &Path) -> Command {
    let mut c = bin();
    c.args(["audit", sub]).arg(file);
    c
}

/// Runs `tibet-iot audit SUB FILE EXTRA...` and returns its output.
fn audit(sub: &str, file: &Path, extra: &[&str]) -> std::process::Output {
    audit_cmd(sub, file).args(extra).output().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn one_clean_error_line(out: &std::process::Output) -> String {
    assert!(!out.status.success());
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    err
}

#[test]
fn verify_intact_file_succeeds() {
    let (_d, path, _) = setup(5);
    let out = audit("verify", &path, &[]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("5 tokens, 5 valid, 0 invalid, 0 unparseable lines, 0 chain breaks"),
        "{text}"
    );
    assert!(text.contains("OK: integrity intact"));
}

#[test]
fn verify_reports_corrupt_torn_and_broken_links() {
    let (_d, path, ids) = setup(5);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[1] = lines[1].replacen("event 1", "event X", 1); // tampered
    lines.remove(3); // the 5th token's parent is gone
    let mut damaged = lines.join("\n") + "\n";
    damaged.push_str(r#"{"token_id": "tibet_torn"#); // crash mid-write
    std::fs::write(&path, damaged).unwrap();

    let out = audit("verify", &path, &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("4 tokens, 3 valid, 1 invalid, 1 unparseable lines, 1 chain breaks"),
        "{text}"
    );
    assert!(
        text.contains(&format!("corrupt token {} (line 2)", ids[1])),
        "{text}"
    );
    assert!(
        text.contains("unparseable line 5: torn last line"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "chain break at line 4: {} names parent {}",
            ids[4], ids[3]
        )),
        "{text}"
    );
    assert!(text.trim_end().ends_with("FAILED"));
}

#[test]
fn verify_with_hmac_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyed.jsonl");
    write_log(&path, 3, Some(b"hub-secret"));
    let key = dir.path().join("key");
    std::fs::write(&key, "hub-secret\n").unwrap();
    audit_cmd("verify", &path)
        .arg("--hmac-key-file")
        .arg(&key)
        .assert()
        .success();
    // Without the key (plain SHA-256) every token fails.
    let out = audit("verify", &path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("3 tokens, 0 valid, 3 invalid"));
    std::fs::write(&key, "wrong").unwrap();
    audit_cmd("verify", &path)
        .arg("--hmac-key-file")
        .arg(&key)
        .assert()
        .failure();
}

#[test]
fn verify_archive_and_active_as_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    write_log(&path, 6, None);
    let text = std::fs::read_to_string(&path).unwrap();
    let (old, new): (Vec<&str>, Vec<&str>) = (
        text.lines().take(2).collect(),
        text.lines().skip(2).collect(),
    );
    let archive = dir.path().join("log.archive.jsonl");
    std::fs::write(&archive, old.join("\n") + "\n").unwrap();
    std::fs::write(&path, new.join("\n") + "\n").unwrap();
    // Alone, the active file's first token has its parent in the archive.
    audit_cmd("verify", &path).assert().failure();
    audit_cmd("verify", &archive).arg(&path).assert().success();
}

#[test]
fn errors_are_one_clean_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let err = one_clean_error_line(&audit("verify", &missing, &[]));
    assert!(err.contains("nope.jsonl"), "{err}");
    one_clean_error_line(&audit("list", &missing, &[]));
    assert!(!missing.exists(), "reading must not create the file");
    let (_d, path, _) = setup(2);
    let err = one_clean_error_line(&audit("list", &path, &["--since", "yesterday"]));
    assert!(err.contains("--since"), "{err}");
    let err = one_clean_error_line(&audit("trace", &path, &["tibet_unknown"]));
    assert!(err.contains("tibet_unknown"), "{err}");
    one_clean_error_line(&audit(
        "verify",
        &path,
        &["--hmac-key-file", "/nonexistent/key"],
    ));
}

#[test]
fn list_filters_and_limits() {
    let (_d, path, ids) = setup(10);
    let out = audit("list", &path, &["--action", "heartbeat", "--limit", "2"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].contains(&ids[6]) && rows[1].contains(&ids[8]),
        "{text}"
    );
    assert!(
        rows[1].starts_with("2026-11-26T11:00:08+00:00  heartbeat  jis:a"),
        "{text}"
    );

    let out = audit(
        "list",
        &path,
        &[
            "--actor",
            "jis:b",
            "--since",
            "2026-11-26T11:00:05Z",
            "--json",
        ],
    );
    let tokens: Vec<Token> = stdout(&out)
        .lines()
        .map(|l| Token::from_json_line(l.as_bytes()).unwrap())
        .collect();
    let got: Vec<&str> = tokens.iter().map(|t| t.token_id.as_str()).collect();
    assert_eq!(got, [&ids[5], &ids[7], &ids[9]]);
    assert!(tokens.iter().all(|t| t.verify(None)));
}

#[test]
fn list_warns_about_bad_lines_but_lists_the_rest() {
    let (_d, path, _) = setup(3);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.insert_str(0, "garbage\n");
    std::fs::write(&path, text).unwrap();
    let out = audit("list", &path, &[]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 3);
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
}

#[test]
fn trace_walks_back_to_the_root() {
    let (_d, path, ids) = setup(6);
    let out = audit("trace", &path, &[ids[3].as_str()]);
    assert!(out.status.success());
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 5, "{text}");
    for (row, id) in rows.iter().zip([&ids[3], &ids[2], &ids[1], &ids[0]]) {
        assert!(
            row.starts_with(id.as_str()) && row.contains("  valid  "),
            "{row}"
        );
    }
    assert_eq!(rows[4], "root reached (4 tokens)");
    let out = audit("trace", &path, &[ids[5].as_str(), "--depth", "2"]);
    assert_eq!(stdout(&out).lines().count(), 3);
    assert!(stdout(&out).contains("depth limit 2 reached"));
}

/// A log written by the Python reference (`tibet_core` 0.5.0) with integers
/// beyond 64 bits in ERIN and EROMHEEN verifies, as it does in Python.
#[test]
fn verify_python_file_with_big_integers() {
    let Some(py) = tibet_testkit::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("py-big.jsonl");
    tibet_testkit::run_python(
        &py,
        r#"
import sys
from tibet_core import Provider, FileStore
p = Provider(actor="jis:py:hub", store=FileStore(sys.argv[1]))
p.create("counter", erin={"two64": 2**64, "two70": 2**70, "neg": -2**64-1}, eromheen={"big": [2**64, -2**64-1]}, erachter="big")
p.create("counter", erin=2**100)
"#,
        &[path.to_str().unwrap()],
        b"",
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("18446744073709551616") && text.contains("-18446744073709551617"));
    let out = audit("verify", &path, &[]);
    let report = stdout(&out);
    assert!(out.status.success(), "{report}{}", stderr(&out));
    assert!(
        report.contains("2 tokens, 2 valid, 0 invalid, 0 unparseable lines, 0 chain breaks"),
        "{report}"
    );
    assert!(report.contains("OK: integrity intact"), "{report}");

    // Changing one digit of 2**70 is caught.
    std::fs::write(
        &path,
        text.replace("1180591620717411303424", "1180591620717411303425"),
    )
    .unwrap();
    let out = audit("verify", &path, &[]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("1 invalid"), "{}", stdout(&out));
}
