//! Provenance under load, over real sockets: a flooded audited listener
//! writes one token per answered ping and a clean trail; a SIGKILL loses
//! no token of a ping answered more than one group-commit interval before.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Listener, assert_code, json, run};
use tibet_iot::{IoTNode, SendOptions, TransportConfig};

/// The packet ids of the ping tokens in `path`, and the number of lines;
/// a torn last line (a kill mid-write) is skipped.
fn ping_tokens(path: &std::path::Path) -> (Vec<String>, usize) {
    let text = std::fs::read_to_string(path).expect("audit file");
    let mut ids = Vec::new();
    let mut lines = 0;
    for line in text.lines() {
        let Ok(t) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        lines += 1;
        if t["action"] == "ping.intent" {
            ids.push(
                t["eromheen"]["packet_id"]
                    .as_str()
                    .expect("packet_id")
                    .to_owned(),
            );
        }
    }
    (ids, lines)
}

#[test]
fn a_flooded_audited_listener_writes_one_token_per_answered_ping() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let hub = Listener::loopback_hub(
        "jis:flood:hub",
        &["jis:flood:client=0.9"],
        &["--quiet", "--audit", file.to_str().unwrap()],
    );
    let out = run(&[
        "bench",
        &hub.loopback(),
        "--my-did",
        "jis:flood:client",
        "--target",
        "jis:flood:hub",
        "--duration",
        "2",
        "-c",
        "256",
        "--json",
    ]);
    assert_code(&out, 0);
    let client_answered = json(&out)["answered"].as_u64().unwrap();
    let lines = hub.terminate_and_collect();
    let summary = lines
        .iter()
        .find(|l| l.starts_with("audit: "))
        .unwrap_or_else(|| panic!("no audit summary in {lines:?}"));
    // "audit: N token(s) written, D dropped, F failed to store; A ping(s)
    // answered, R not answered ..."
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [written, dropped, failed, answered, _refused] = numbers[..] else {
        panic!("summary {summary:?}");
    };
    let (ids, total) = ping_tokens(&file);
    eprintln!("{summary}; the client saw {client_answered} answers");
    assert_eq!((dropped, failed), (0, 0), "{summary}");
    assert_eq!(written as usize, total, "{summary}");
    assert_eq!(ids.len() as u64, answered, "one token per answered ping");
    assert!(
        answered >= client_answered && client_answered > 1000,
        "listener answered {answered}, client saw {client_answered}"
    );
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    let verify = run(&["audit", "verify", file.to_str().unwrap()]);
    assert_code(&verify, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_loses_no_token_older_than_one_commit_interval() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let hub = Listener::loopback_hub(
        "jis:kill:hub",
        &["jis:kill:client=0.9"],
        &["--quiet", "--audit", file.to_str().unwrap()],
    );
    let addr: SocketAddr = hub.loopback().parse().unwrap();
    let client = Arc::new(IoTNode::new("jis:kill:client", TransportConfig::loopback()));
    client.start().await.unwrap();
    // 64 pings in flight until the listener dies; each answer is noted
    // with the time it arrived (after the listener sent it).
    let answers = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, answers, stop) = (client.clone(), answers.clone(), stop.clone());
            tokio::spawn(async move {
                let opts = SendOptions {
                    timeout: Some(Duration::from_millis(300)),
                    ..SendOptions::default()
                };
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .send_ping("jis:kill:hub", addr, "door.open", "load", opts.clone())
                        .await;
                    if let Ok(Some(r)) = r {
                        answers
                            .lock()
                            .unwrap()
                            .push((r.in_response_to, Instant::now()));
                    }
                }
            })
        })
        .collect();
    // Load for a while (a duration of the test, not a synchronisation),
    // then the kill, in the middle of it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Instant::now();
    let status = hub.signal("-KILL");
    assert!(!status.success());
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    client.stop().await;
    let (ids, _) = ping_tokens(&file);
    let on_disk: HashSet<String> = ids.into_iter().collect();
    let answers = answers.lock().unwrap();
    let old: Vec<&String> = answers
        .iter()
        .filter(|(_, at)| *at + Duration::from_millis(100) < killed)
        .map(|(id, _)| id)
        .collect();
    eprintln!(
        "{} answers, {} more than 100 ms before the kill, {} ping tokens on disk",
        answers.len(),
        old.len(),
        on_disk.len()
    );
    assert!(old.len() > 1000, "only {} pings answered", old.len());
    let missing: Vec<&&String> = old.iter().filter(|id| !on_disk.contains(**id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered pings have no token, e.g. {:?}",
        missing.len(),
        old.len(),
        missing.first()
    );
}
