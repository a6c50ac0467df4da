//! `listen --audit FILE` says, in one line, that the file ended in a torn or
//! garbage line it recovered from (docs/SECURITY.md).

mod common;

use common::{assert_code, run, stderr};

#[test]
fn listen_reports_a_recovered_torn_tail_in_one_escaped_line() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("a.jsonl");
    // A torn last line holding a terminal escape: reported, not replayed.
    std::fs::write(&audit, "{\"token_id\": \"x\u{1b}[31m").unwrap();
    // The bind fails after the audit file is opened, so the run ends.
    let out = run(&[
        "listen",
        "--did",
        "jis:a:b",
        "--bind",
        "192.0.2.1",
        "--port",
        "0",
        "--no-discovery",
        "--audit",
        audit.to_str().unwrap(),
    ]);
    assert_code(&out, 1);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("recovered")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("line 1"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no raw escape reaches the terminal: {err}"
    );
}
