//! FileStore behaviour through the public API: concurrent appenders (threads
//! and processes), crash damage, streaming queries, rotation.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tibet_core::{
    Chain, Durability, FileStore, NewToken, Provider, Query, Store, TokenIdGen, Verifier,
    verify_into, verify_path,
};
use tibet_ping::Timestamp;

fn t0() -> Timestamp {
    Timestamp::parse("2026-11-26T11:00:00+00:00").unwrap()
}

fn provider(path: &Path, seed: u32) -> Provider {
    Provider::new(format!("jis:writer:{seed}"))
        .with_store(FileStore::open(path).unwrap())
        .with_id_gen(TokenIdGen::new(seed))
}

fn fill(p: &mut Provider, n: usize, big: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let erin = json!({"i": i, "blob": "x".repeat(big), "t": 21.5});
            p.create_at(
                NewToken::new("load").erin(erin),
                t0() + Duration::from_micros(i as u64),
            )
            .unwrap()
            .token_id
        })
        .collect()
}

/// The last token written to the file at `path`.
fn last_token(path: &Path) -> tibet_core::Token {
    let text = std::fs::read_to_string(path).unwrap();
    tibet_core::Token::from_json_line(text.lines().last().unwrap().as_bytes()).unwrap()
}

#[test]
fn threads_with_separate_handles_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.jsonl");
    let handles: Vec<_> = (0..4u32)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || fill(&mut provider(&path, w * 1000), 200, 20_000))
        })
        .collect();
    let ids: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let report = verify_path(&path, None).unwrap();
    assert_eq!(report.valid, 800, "{:?}", report.bad_lines.first());
    assert!(report.is_intact(), "{report:?}");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 800);
}

/// Child half of `two_processes_never_interleave`: appends when told to.
#[test]
fn child_appender() {
    let Ok(path) = std::env::var("TIBET_CHILD_APPEND_PATH") else {
        return;
    };
    let seed: u32 = std::env::var("TIBET_CHILD_SEED").unwrap().parse().unwrap();
    fill(&mut provider(Path::new(&path), seed), 300, 30_000);
}

#[test]
fn two_processes_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procs.jsonl");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = [1u32, 2]
        .iter()
        .map(|seed| {
            Command::new(&exe)
                .args(["--exact", "child_appender", "--test-threads", "1"])
                .env("TIBET_CHILD_APPEND_PATH", &path)
                .env("TIBET_CHILD_SEED", seed.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let report = verify_path(&path, None).unwrap();
    assert_eq!(report.valid, 600, "{:?}", report.bad_lines.first());
    assert!(report.is_intact(), "{report:?}");
}

/// A crash mid-write: the first 40 bytes of `line`, no newline.
fn tear(path: &Path, line: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(&line.as_bytes()[..40])
        .unwrap();
}

#[test]
fn torn_last_line_is_reported_and_nothing_valid_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn.jsonl");
    let ids = fill(&mut provider(&path, 1), 3, 10);
    // A crash mid-write: half a line, no newline.
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    tear(&path, &line);

    let store = FileStore::open(&path).unwrap();
    let rec = store.recovered().expect("torn tail reported").clone();
    assert_eq!(rec.line, 4);
    assert!(rec.reason.contains("torn"), "{}", rec.reason);
    assert_eq!(store.last_id().as_deref(), Some(ids[2].as_str()));

    let mut p = Provider::new("jis:after").with_store(store);
    let next = p.create(NewToken::new("after_crash")).unwrap();
    assert_eq!(next.parent_id.as_deref(), Some(ids[2].as_str()));

    let report = verify_path(&path, None).unwrap();
    assert_eq!(report.valid, 4);
    assert_eq!(report.bad_line_count, 1);
    assert_eq!(report.bad_lines[0].line, 4);
    assert_eq!(report.chain_break_count, 0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert!(text.lines().nth(4).unwrap().contains("after_crash"));

    // Torn again under an open provider; a batch (written as it is, in one
    // write) still starts on a fresh line.
    tear(&path, &line);
    p.begin_batch();
    p.add(NewToken::new("batched_1")).unwrap();
    p.add(NewToken::new("batched_2")).unwrap();
    assert_eq!(p.commit_batch().unwrap(), 2);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 8);
    assert!(text.lines().nth(6).unwrap().contains("batched_1"));
    assert!(text.lines().nth(7).unwrap().contains("batched_2"));
    let report = verify_path(&path, None).unwrap();
    assert_eq!(report.valid, 6);
    assert_eq!(report.bad_line_count, 2);
}

#[test]
fn corrupt_middle_line_is_reported_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mid.jsonl");
    let ids = fill(&mut provider(&path, 2), 4, 10);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = "{\"token_id\": \"garbage";
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let store = FileStore::open(&path).unwrap();
    assert!(store.recovered().is_none(), "the tail is fine");
    let report = store.verify_file(None).unwrap();
    assert_eq!((report.valid, report.bad_line_count), (3, 1));
    assert_eq!(report.bad_lines[0].line, 2);
    // The token after the gap now points at a parent that is gone.
    assert_eq!(report.chain_breaks[0].token_id, ids[2]);
    let mut seen = Vec::new();
    let scan = store
        .scan(&mut |t| {
            seen.push(t.token_id);
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, [ids[0].clone(), ids[2].clone(), ids[3].clone()]);
    assert_eq!(scan.bad_lines[0].line, 2);
}

#[test]
fn open_reads_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tail.jsonl");
    // Unparseable bulk at the start: a full load would report it; open
    // only looks at the end, finds the last token and reports no damage.
    std::fs::write(&path, "not json\n".repeat(100_000)).unwrap();
    let ids = fill(&mut provider(&path, 3), 2, 300_000);
    let store = FileStore::open(&path).unwrap();
    assert_eq!(store.last_id().as_deref(), Some(ids[1].as_str()));
    assert!(store.recovered().is_none());
    let empty = FileStore::open(dir.path().join("sub/dir/new.jsonl")).unwrap();
    assert_eq!(empty.last_id(), None);
}

#[test]
fn queries_stream_and_trace_follows_links() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.jsonl");
    let mut p = provider(&path, 4).with_hmac_key(tibet_core::HmacKey::new(b"k".to_vec()));
    let mut ids = Vec::new();
    for i in 0..50u64 {
        let action = if i % 2 == 0 { "even" } else { "odd" };
        let t = p
            .create_at(NewToken::new(action), t0() + Duration::from_secs(i))
            .unwrap();
        ids.push(t.token_id);
    }
    let q = Query {
        action: Some("odd".into()),
        limit: 3,
        ..Query::default()
    };
    let found: Vec<_> = p
        .find(&q)
        .unwrap()
        .into_iter()
        .map(|t| t.token_id)
        .collect();
    assert_eq!(found, [ids[45].clone(), ids[47].clone(), ids[49].clone()]);
    let q = Query {
        since: Some((t0() + Duration::from_secs(48)).to_iso()),
        ..Query::default()
    };
    assert_eq!(p.find(&q).unwrap().len(), 2);
    let store = p.store();
    let trail = Chain::new(store).trace(&ids[10], 100).unwrap();
    assert_eq!(trail.len(), 11);
    assert_eq!(trail[10].token_id, ids[0]);
    assert_eq!(Chain::new(store).trace(&ids[49], 5).unwrap().len(), 5);
    assert_eq!(store.get(&ids[20]).unwrap().unwrap().token_id, ids[20]);
    assert!(p.verify_all().unwrap().is_intact());
    assert!(!verify_path(&path, None).unwrap().hashes_ok());
}

#[test]
fn rotate_archives_old_tokens_and_other_handles_follow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rot.jsonl");
    let now = t0();
    let mut p = provider(&path, 5);
    for age_days in [40u64, 35, 31, 10, 1] {
        p.create_at(
            NewToken::new("tick"),
            now - Duration::from_secs(age_days * 86_400),
        )
        .unwrap();
    }
    let mut other = FileStore::open_with(&path, Durability::EveryToken).unwrap();
    let mut rotator = FileStore::open(&path).unwrap();
    let report = rotator.rotate(30, now).unwrap();
    assert_eq!((report.archived, report.kept), (3, 2));
    assert!(
        report
            .archive_path
            .to_string_lossy()
            .ends_with("rot.jsonl.archive.20261126.jsonl")
    );

    // A handle opened before the rotation appends to the new active file.
    let mut late = last_token(&path);
    late.parent_id = Some(late.token_id.clone());
    late.token_id.push_str("_late");
    late.seal(None);
    other.append(&late).unwrap();

    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    assert_eq!(
        std::fs::read_to_string(&report.archive_path)
            .unwrap()
            .lines()
            .count(),
        3
    );
    let mut v = Verifier::new(None);
    verify_into(&report.archive_path, &mut v).unwrap();
    verify_into(&path, &mut v).unwrap();
    let r = v.finish();
    assert!(r.is_intact() && r.valid == 6, "{r:?}");
    // Nothing to rotate: no change, no temp file left behind.
    assert_eq!(rotator.rotate(30, now).unwrap().archived, 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn parallel_verify_keeps_file_order_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.jsonl");
    let ids = fill(&mut provider(&path, 6), 6000, 500); // ~4 MiB: several batches
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3999] = lines[3999].replacen("\"i\": 3999", "\"i\": 3998", 1);
    lines[4499] = "}{".into();
    lines.insert(5000, String::new()); // blank lines are skipped but counted
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let r = verify_path(&path, None).unwrap();
    assert_eq!(
        (r.valid, r.invalid, r.bad_line_count, r.chain_break_count),
        (5998, 1, 1, 1)
    );
    assert_eq!(
        (r.corrupt[0].line, r.corrupt[0].token_id.as_str()),
        (4000, ids[3999].as_str())
    );
    assert_eq!(r.bad_lines[0].line, 4500);
    assert_eq!(
        (r.chain_breaks[0].line, r.chain_breaks[0].token_id.as_str()),
        (4501, ids[4500].as_str())
    );
    let mut n = 0;
    FileStore::open(&path)
        .unwrap()
        .scan_lines(|line, item| {
            if let Ok(t) = item {
                n += 1;
                if t.token_id == ids[5999] {
                    assert_eq!(line, 6001);
                }
            }
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(n, 5999);
}

#[test]
fn group_commit_syncs_in_the_background_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gc.jsonl");
    let store = FileStore::open_with(
        &path,
        Durability::GroupCommit {
            interval: Duration::from_millis(20),
        },
    )
    .unwrap();
    assert_eq!(
        store.durability(),
        Durability::GroupCommit {
            interval: Duration::from_millis(20)
        }
    );
    let mut p = Provider::new("jis:hub").with_store(store);
    p.create(NewToken::new("one")).unwrap();
    p.create(NewToken::new("two")).unwrap();
    p.flush().unwrap();
    drop(p);

    let mut store = FileStore::open_with(
        &path,
        Durability::GroupCommit {
            interval: Duration::from_millis(20),
        },
    )
    .unwrap();
    let mut fresh = last_token(&path);
    fresh.token_id.push_str("_x");
    fresh.seal(None);
    store.append(&fresh).unwrap();
    // No further appends: the background thread must sync on its own.
    assert!(
        store.wait_synced(Duration::from_secs(10)),
        "background sync did not happen"
    );
    assert!(store.background_syncs() >= 1);
    // Nothing pending: a flush has nothing left to do and reports no error.
    store.flush().unwrap();
    let every = FileStore::open_with(&path, Durability::EveryToken).unwrap();
    assert!(every.wait_synced(Duration::ZERO));
    assert_eq!(every.background_syncs(), 0);
    assert_eq!(verify_path(&path, None).unwrap().valid, 3);
}
