//! The tokio node over real sockets on 127.0.0.1 (port 0).

use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot::{AuditRecord, Event, IoTNode, SendError, SendOptions, TransportConfig};
use tibet_ping::{
    AirlockZone, Frame, PacketCodec, PingDecision, PingNode, PingNodeConfig, PingResponse,
    Timestamp,
};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio::time::timeout;

fn quick() -> TransportConfig {
    TransportConfig {
        request_timeout: Duration::from_secs(3),
        ..TransportConfig::loopback()
    }
}

async fn pair(a: &str, b: &str) -> (IoTNode, IoTNode, SocketAddr, SocketAddr) {
    let na = IoTNode::new(a, quick());
    let nb = IoTNode::new(b, quick());
    let aa = na.start().await.unwrap();
    let ab = nb.start().await.unwrap();
    (na, nb, aa, ab)
}

/// Waits (bounded) for the first event matching `f`.
async fn wait_for<T>(
    rx: &mut broadcast::Receiver<Event>,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> T {
    timeout(Duration::from_secs(5), async {
        loop {
            let ev = rx.recv().await.expect("event stream open");
            if let Some(t) = f(&ev) {
                return t;
            }
        }
    })
    .await
    .expect("event within 5 s")
}

fn crafter(did: &str) -> PingNode {
    PingNode::new(
        did,
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(42)),
    )
}

/// Options for a ping that is expected to go unanswered.
fn silence() -> SendOptions {
    SendOptions {
        timeout: Some(Duration::from_millis(300)),
        ..SendOptions::default()
    }
}

const ANSWER: Duration = Duration::from_secs(3);

async fn raw_exchange(
    sock: &UdpSocket,
    to: SocketAddr,
    bytes: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    sock.send_to(bytes, to).await.unwrap();
    let mut buf = vec![0u8; 70_000];
    match timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// Sends a plain "x"/"y" ping with default options and expects an answer.
async fn ask(from: &IoTNode, target: &str, addr: SocketAddr) -> PingResponse {
    from.send_ping(target, addr, "x", "y", SendOptions::default())
        .await
        .unwrap()
        .expect("answered")
}

/// Waits for `did` to be discovered and returns the address it announced.
async fn discovered(rx: &mut broadcast::Receiver<Event>, did: &str) -> SocketAddr {
    wait_for(rx, |e| match e {
        Event::PeerDiscovered {
            did: found,
            address,
            ..
        } if found == did => Some(*address),
        _ => None,
    })
    .await
}

/// Sends `response` as JSON from `sock` to `to`.
async fn send_response(sock: &UdpSocket, response: &PingResponse, to: SocketAddr) {
    sock.send_to(&PacketCodec::json().encode_response(response).unwrap(), to)
        .await
        .unwrap();
}

async fn stop_both(a: &IoTNode, b: &IoTNode) {
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn trusted_ping_is_groen_and_reported_on_both_sides() {
    let (hub, sensor, _, sensor_addr) = pair("jis:home:hub", "jis:home:sensor").await;
    sensor.set_trust("jis:home:hub", 0.9);
    let mut events = sensor.subscribe();
    let resp = hub
        .send_ping(
            "jis:home:sensor",
            sensor_addr,
            "temperature.read",
            "check",
            SendOptions::default(),
        )
        .await
        .unwrap()
        .expect("answered");
    assert_eq!(resp.airlock_zone, AirlockZone::Groen);
    assert_eq!(resp.decision, PingDecision::Accept);
    let (zone, trust) = wait_for(&mut events, |e| match e {
        Event::PingDecided {
            source_did,
            zone,
            trust,
            ..
        } if source_did == "jis:home:hub" => Some((*zone, *trust)),
        _ => None,
    })
    .await;
    assert_eq!(zone, AirlockZone::Groen);
    assert_eq!(trust, 0.9, "the event carries the trust the pipeline used");
    assert_eq!(
        sensor
            .peers()
            .iter()
            .filter(|p| p.did == "jis:home:hub")
            .count(),
        1,
        "an accepted ping records its sender"
    );
    stop_both(&hub, &sensor).await;
}

#[tokio::test]
async fn unknown_sender_gets_silence() {
    let (hub, sensor, _, sensor_addr) = pair("jis:x:stranger", "jis:home:sensor").await;
    let mut events = sensor.subscribe();
    let resp = hub
        .send_ping(
            "jis:home:sensor",
            sensor_addr,
            "door.open",
            "let me in",
            silence(),
        )
        .await;
    assert_eq!(
        resp,
        Ok(None),
        "ROOD is a silent drop: the caller sees a timeout"
    );
    let zone = wait_for(&mut events, |e| match e {
        Event::PingDecided { zone, .. } => Some(*zone),
        _ => None,
    })
    .await;
    assert_eq!(zone, AirlockZone::Rood);
    let stats = sensor.stats();
    assert_eq!(stats.engine.rood_dropped, 1);
    assert_eq!(stats.engine.pings_answered, 0);
    assert!(
        sensor.peers().is_empty(),
        "a ROOD packet does not create a peer"
    );
    stop_both(&hub, &sensor).await;
}

#[tokio::test]
async fn msgpack_and_json_nodes_understand_each_other() {
    let mp = IoTNode::new(
        "jis:mp",
        TransportConfig {
            use_msgpack: true,
            ..quick()
        },
    );
    let js = IoTNode::new("jis:js", quick());
    mp.set_trust("jis:js", 0.9);
    js.set_trust("jis:mp", 0.9);
    let mp_addr = mp.start().await.unwrap();
    let js_addr = js.start().await.unwrap();
    let r1 = ask(&mp, "jis:js", js_addr).await;
    let r2 = ask(&js, "jis:mp", mp_addr).await;
    assert_eq!(
        (r1.airlock_zone, r2.airlock_zone),
        (AirlockZone::Groen, AirlockZone::Groen)
    );
    // The msgpack node answers in msgpack (flag bit 1) even to JSON.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    mp.set_trust("jis:raw", 0.9);
    let p = crafter("jis:raw").ping(Timestamp::now(), "jis:mp", "x", "y", Default::default());
    let answer = raw_exchange(
        &sock,
        mp_addr,
        &PacketCodec::json().encode_packet(&p).unwrap(),
        ANSWER,
    )
    .await
    .unwrap();
    assert_eq!(answer[3] & 0b11, 0b11, "response + msgpack flags");
    assert!(matches!(
        PacketCodec::json().decode(&answer),
        Ok(Frame::Response(_))
    ));
    stop_both(&mp, &js).await;
}

#[tokio::test]
async fn answers_from_anyone_but_the_target_are_ignored() {
    let node = IoTNode::new("jis:asker", quick());
    let node_addr = node.start().await.unwrap();
    let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let asking = tokio::spawn(async move {
        node.send_ping(
            "jis:target",
            target_addr,
            "x",
            "y",
            SendOptions {
                timeout: Some(Duration::from_secs(3)),
                ..Default::default()
            },
        )
        .await
        .map(|r| (r, node))
    });
    let mut buf = vec![0u8; 70_000];
    let (n, _) = timeout(Duration::from_secs(2), target.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let Frame::Packet(p) = PacketCodec::json().decode(&buf[..n]).unwrap() else {
        panic!("packet expected")
    };
    let mut answer = crafter("jis:target").receive(Timestamp::now(), &p).response;
    answer.responder_did = "jis:impostor".into();
    send_response(&target, &answer, node_addr).await;
    answer.responder_did = "jis:target".into();
    send_response(&other, &answer, node_addr).await;
    answer.payload.insert("genuine".into(), true.into());
    send_response(&target, &answer, node_addr).await;
    let (resp, node) = asking.await.unwrap().unwrap();
    let resp = resp.expect("the genuine answer");
    assert_eq!(resp.payload.get("genuine"), Some(&true.into()));
    assert_eq!(node.stats().engine.responses_foreign, 2);
    node.stop().await;
}

#[tokio::test]
async fn stop_is_graceful_and_idempotent() {
    let node = IoTNode::new("jis:a", quick());
    let err = node
        .send_ping(
            "jis:b",
            "127.0.0.1:9".parse().unwrap(),
            "x",
            "y",
            SendOptions::default(),
        )
        .await;
    assert_eq!(err, Err(SendError::NotRunning));
    let addr = node.start().await.unwrap();
    assert_ne!(addr.port(), 0);
    assert!(node.start().await.is_err(), "already running");
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let node = std::sync::Arc::new(node);
    let waiting = {
        let node = node.clone();
        let to = sink.local_addr().unwrap();
        tokio::spawn(async move {
            node.send_ping(
                "jis:b",
                to,
                "x",
                "y",
                SendOptions {
                    timeout: Some(Duration::from_secs(30)),
                    ..Default::default()
                },
            )
            .await
        })
    };
    let mut buf = [0u8; 2048];
    timeout(Duration::from_secs(2), sink.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    node.stop().await;
    assert_eq!(waiting.await.unwrap(), Err(SendError::Stopped));
    node.stop().await;
    assert!(!node.is_running());
    // The port is free again: the driver task and its socket are gone.
    let rebound = UdpSocket::bind(addr)
        .await
        .expect("rebind the released port");
    drop(rebound);
    // A stopped node can start again and serve.
    node.set_trust("jis:b", 0.9);
    let again = node.start().await.unwrap();
    let b = IoTNode::new("jis:b", quick());
    b.start().await.unwrap();
    let r = b
        .send_ping("jis:a", again, "x", "after restart", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(r.map(|r| r.airlock_zone), Some(AirlockZone::Groen));
    stop_both(&node, &b).await;
}

#[tokio::test]
async fn multicast_discovery_on_loopback_finds_both_ways() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = TransportConfig {
        discovery_enabled: true,
        discovery_port: port,
        discovery_reply_delay: Duration::from_millis(50),
        ..quick()
    };
    let a = IoTNode::new("jis:lan:a", cfg.clone());
    let b = IoTNode::new("jis:lan:b", cfg);
    let mut ea = a.subscribe();
    let mut eb = b.subscribe();
    a.start().await.unwrap();
    assert!(
        a.discovery_addr().is_some(),
        "multicast listener on loopback"
    );
    // b's start-up beacon reaches a by multicast; a answers b by unicast.
    let b_addr = b.start().await.unwrap();
    let heard_b = discovered(&mut ea, "jis:lan:b").await;
    assert_eq!(heard_b, b_addr, "the beacon names b's transport address");
    let a_addr = a.local_addr().unwrap();
    let heard_a = discovered(&mut eb, "jis:lan:a").await;
    assert_eq!(heard_a, a_addr, "a's unicast announcement reached b");
    assert!(b.peers().iter().any(|p| p.did == "jis:lan:a"));
    assert!(a.peers().iter().any(|p| p.did == "jis:lan:b"));
    stop_both(&a, &b).await;
}

#[derive(Default)]
struct Recorded {
    lines: std::sync::Mutex<Vec<String>>,
}

struct Recorder(std::sync::Arc<Recorded>);

impl tibet_iot::AuditSink for Recorder {
    fn record(&mut self, record: &AuditRecord) -> Result<(), tibet_iot::AuditError> {
        let line = match record {
            AuditRecord::Ping { packet, answer, .. } => {
                format!("ping.{} {}", packet.ping_type, answer.zone)
            }
            AuditRecord::Heartbeat { did, .. } => format!("heartbeat {did}"),
            AuditRecord::TrustChange { did, old, new, .. } => {
                format!("trust_change {did} {old} {new}")
            }
            _ => return Ok(()),
        };
        self.0.lines.lock().unwrap().push(line);
        Ok(())
    }
}

#[tokio::test]
async fn heartbeats_are_answered_and_audited() {
    let (a, b, _, b_addr) = pair("jis:hb:a", "jis:hb:b").await;
    let rec = std::sync::Arc::new(Recorded::default());
    b.set_audit(Some(Box::new(Recorder(rec.clone()))));
    b.set_trust("jis:hb:a", 0.8);
    let resp = a
        .send_heartbeat("jis:hb:b", b_addr, None)
        .await
        .unwrap()
        .expect("answered");
    assert_eq!(resp.airlock_zone, AirlockZone::Groen);
    let _ = a
        .send_ping("jis:hb:b", b_addr, "x", "y", SendOptions::default())
        .await
        .unwrap();
    b.flush_audit().await;
    let lines = rec.lines.lock().unwrap().clone();
    assert_eq!(
        lines,
        [
            "trust_change jis:hb:a 0 0.8",
            "ping.heartbeat GROEN",
            "heartbeat jis:hb:a",
            "ping.intent GROEN"
        ]
    );
    assert!(
        b.peers().iter().any(|p| p.did == "jis:hb:a"),
        "a heartbeat refreshes the peer"
    );
    stop_both(&a, &b).await;
}

#[test]
fn start_outside_a_runtime_is_an_error_not_a_panic() {
    use std::future::Future;
    let node = IoTNode::new("jis:a", quick());
    let mut fut = std::pin::pin!(node.start());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let polled = fut.as_mut().poll(&mut cx);
    assert!(
        matches!(
            polled,
            std::task::Poll::Ready(Err(tibet_iot::StartError::NoRuntime))
        ),
        "{polled:?}"
    );
    assert!(!node.is_running());
}

#[tokio::test]
async fn network_bridge_records_provenance_tokens() {
    let (a, b, _, b_addr) = pair("jis:prov:a", "jis:prov:b").await;
    let tokens = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = tokens.clone();
    let provider = tibet_core::Provider::new("jis:prov:b").on_token(move |t| {
        sink.lock()
            .unwrap()
            .push((t.action.clone(), t.erachter.clone()))
    });
    b.set_audit(Some(Box::new(tibet_core::NetworkBridge::new(provider))));
    b.set_trust("jis:prov:a", 0.9);
    let r = a
        .send_ping(
            "jis:prov:b",
            b_addr,
            "temperature.read",
            "audit me",
            SendOptions::default(),
        )
        .await
        .unwrap();
    assert!(r.is_some());
    b.flush_audit().await;
    let got = tokens.lock().unwrap().clone();
    let actions: Vec<&str> = got.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["trust_change", "ping.intent"]);
    assert_eq!(got[1].1, "audit me", "ERACHTER is the ping's purpose");
    stop_both(&a, &b).await;
}

#[tokio::test]
async fn huge_timeouts_and_intervals_do_not_overflow() {
    let cfg = TransportConfig {
        heartbeat_interval: Duration::MAX,
        cleanup_interval: Duration::MAX,
        ..quick()
    };
    let (a, b) = (
        IoTNode::new("jis:big:a", cfg.clone()),
        IoTNode::new("jis:big:b", cfg),
    );
    a.start().await.unwrap();
    let b_addr = b.start().await.unwrap();
    b.set_trust("jis:big:a", 0.9);
    let opts = SendOptions {
        timeout: Some(Duration::MAX),
        ..SendOptions::default()
    };
    let r = a
        .send_ping("jis:big:b", b_addr, "x", "y", opts)
        .await
        .unwrap();
    assert!(r.is_some());
    stop_both(&a, &b).await;
}

#[tokio::test]
async fn rejecting_a_pending_ping_leaves_a_review_token_with_its_packet_id() {
    let (a, b, _, b_addr) = pair("jis:rev:a", "jis:rev:b").await;
    let tokens = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = tokens.clone();
    let provider = tibet_core::Provider::new("jis:rev:b").on_token(move |t| {
        sink.lock()
            .unwrap()
            .push((t.action.clone(), t.erin.clone()))
    });
    b.set_audit(Some(Box::new(tibet_core::NetworkBridge::new(provider))));
    b.set_trust("jis:rev:a", 0.5);
    let first = ask(&a, "jis:rev:b", b_addr).await;
    assert_eq!(first.airlock_zone, AirlockZone::Geel);
    assert!(b.reject_pending(&first.in_response_to).is_some());
    b.flush_audit().await;
    let got = tokens.lock().unwrap().clone();
    let actions: Vec<&str> = got.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["trust_change", "ping.intent", "review.rejected"]);
    assert_eq!(got[2].1["packet_id"], first.in_response_to.as_str());
    assert_eq!(b.stats().driver.audit_dropped, 0);
    stop_both(&a, &b).await;
}

/// A sink that stores nothing until the test opens its gate.
struct Gated {
    gate: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Gated {
    fn new() -> (
        Self,
        std::sync::mpsc::Sender<()>,
        std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        let (open, gate) = std::sync::mpsc::channel();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Gated {
            gate: std::sync::Mutex::new(Some(gate)),
            seen: seen.clone(),
        };
        (sink, open, seen)
    }
}

impl tibet_iot::AuditSink for Gated {
    fn record(&mut self, record: &AuditRecord) -> Result<(), tibet_iot::AuditError> {
        if let Some(gate) = self.gate.lock().unwrap().take() {
            let _ = gate.recv();
        }
        let kind = match record {
            AuditRecord::TrustChange { .. } => "trust_change",
            AuditRecord::Ping { .. } => "ping",
            _ => "other",
        };
        self.seen.lock().unwrap().push(kind.to_owned());
        Ok(())
    }
}

/// Polls `f` (bounded) until it holds.
async fn until(mut f: impl FnMut() -> bool) {
    timeout(Duration::from_secs(5), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("condition within 5 s");
}

#[tokio::test]
async fn a_stalled_audit_sink_makes_the_node_answer_later_never_without_a_token() {
    let (a, b, _, b_addr) = pair("jis:slow:a", "jis:slow:b").await;
    let (sink, open, seen) = Gated::new();
    b.set_audit(Some(Box::new(sink)));
    // The sink is stuck on this first record until the gate opens.
    b.set_trust("jis:slow:a", 0.9);
    // Past the age bound of what waits for the sink, the node reads no
    // more (a duration of the feature, not a synchronisation).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let a = std::sync::Arc::new(a);
    let asker = {
        let a = a.clone();
        tokio::spawn(async move { ask(&a, "jis:slow:b", b_addr).await })
    };
    // The ping arrived and was left in the socket: nothing read, nothing
    // answered.
    until(|| b.stats().driver.audit_backpressure > 0).await;
    let s = b.stats();
    assert_eq!((s.engine.datagrams_in, s.engine.pings_answered), (0, 0));
    assert!(!asker.is_finished());
    open.send(()).unwrap();
    let answer = asker.await.unwrap();
    assert_eq!(answer.airlock_zone, AirlockZone::Groen);
    b.flush_audit().await;
    assert_eq!(*seen.lock().unwrap(), ["trust_change", "ping"]);
    let s = b.stats();
    assert_eq!((s.driver.audit_dropped, s.driver.audit_failures), (0, 0));
    assert_eq!((s.driver.audit_written, s.engine.audit_refused), (2, 0));
    stop_both(&a, &b).await;
}

#[tokio::test]
async fn a_lossy_node_does_not_wait_for_a_stalled_audit_sink() {
    let mut cfg = quick();
    cfg.audit.on_overload = tibet_iot::AuditOverload::Drop;
    let a = IoTNode::new("jis:lossy:a", quick());
    let b = IoTNode::new("jis:lossy:b", cfg);
    a.start().await.unwrap();
    let b_addr = b.start().await.unwrap();
    let (sink, open, seen) = Gated::new();
    b.set_audit(Some(Box::new(sink)));
    b.set_trust("jis:lossy:a", 0.9);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let answer = ask(&a, "jis:lossy:b", b_addr).await;
    assert_eq!(answer.airlock_zone, AirlockZone::Groen);
    assert!(
        seen.lock().unwrap().is_empty(),
        "answered while the sink had stored nothing"
    );
    open.send(()).unwrap();
    b.flush_audit().await;
    assert_eq!(*seen.lock().unwrap(), ["trust_change", "ping"]);
    let s = b.stats();
    assert_eq!(
        (s.driver.audit_dropped, s.driver.audit_backpressure),
        (0, 0)
    );
    stop_both(&a, &b).await;
}

#[tokio::test]
async fn a_lossy_node_drops_and_counts_what_its_stalled_sink_cannot_take() {
    let mut cfg = quick();
    cfg.audit.on_overload = tibet_iot::AuditOverload::Drop;
    let b = IoTNode::new("jis:lossy:hub", cfg);
    b.start().await.unwrap();
    let (sink, open, seen) = Gated::new();
    b.set_audit(Some(Box::new(sink)));
    // 20,000 trust changes while the sink stores nothing: the audit thread
    // holds at most 16,384 waiting records; the rest are dropped, counted.
    for i in 0..20_000u32 {
        b.set_trust("jis:lossy:peer", f64::from(i % 2));
    }
    assert_eq!(b.stats().driver.audit_dropped, 20_000 - 16_384);
    open.send(()).unwrap();
    b.flush_audit().await;
    assert_eq!(seen.lock().unwrap().len(), 16_384);
    assert_eq!(b.stats().driver.audit_written, 16_384);
    b.stop().await;
}

struct Broken;

impl tibet_iot::AuditSink for Broken {
    fn record(&mut self, _: &AuditRecord) -> Result<(), tibet_iot::AuditError> {
        Err(tibet_iot::AuditError(
            std::io::Error::other("disk full").into(),
        ))
    }
}

#[tokio::test]
async fn records_a_sink_cannot_store_are_counted_and_the_node_keeps_serving() {
    let (a, b, _, b_addr) = pair("jis:broken:a", "jis:broken:b").await;
    b.set_audit(Some(Box::new(Broken)));
    b.set_trust("jis:broken:a", 0.9);
    assert_eq!(
        ask(&a, "jis:broken:b", b_addr).await.airlock_zone,
        AirlockZone::Groen
    );
    b.flush_audit().await;
    assert_eq!(b.stats().driver.audit_failures, 2, "trust change and ping");
    stop_both(&a, &b).await;
}

/// The send queue's byte budget is a bound on what waits for the socket at
/// once, not on what a node sends in its lifetime: with a budget of a few
/// answers, hundreds of answers in a row all go out. (A driver that counted
/// sent batches into the budget but never out of it went silent for good
/// after its first 16 MiB.)
#[tokio::test]
async fn the_send_queue_budget_is_given_back_after_each_batch() {
    let mut cfg = quick();
    cfg.limits.send_queue_bytes = 4096;
    let target = IoTNode::new("jis:home:target", cfg);
    target.set_trust("jis:home:asker", 0.9);
    let addr = target.start().await.unwrap();
    let asker = std::sync::Arc::new(IoTNode::new("jis:home:asker", quick()));
    asker.start().await.unwrap();

    let mut answered = 0;
    let mut sent_bytes = 0;
    // Rounds of 8 pings in flight: answers leave in sendmmsg batches.
    for _ in 0..40 {
        let mut round = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let asker = asker.clone();
            round.spawn(async move { ask(&asker, "jis:home:target", addr).await });
        }
        for response in round.join_all().await {
            assert_eq!(response.decision, PingDecision::Accept);
            sent_bytes += PacketCodec::json()
                .encode_response(&response)
                .unwrap()
                .len();
            answered += 1;
        }
    }
    assert_eq!(answered, 320);
    assert!(
        sent_bytes > 10 * 4096,
        "the answers ({sent_bytes} bytes) must exceed the budget many times over"
    );
    assert_eq!(target.stats().driver.send_queue_dropped, 0);
    stop_both(&target, &asker).await;
}
