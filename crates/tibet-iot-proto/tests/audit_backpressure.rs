//! No answer without its audit record: when the audit queue is full (its
//! consumer stalls), the engine withholds answers instead of answering
//! unrecorded; senders that are not trusted get at most their budget and a
//! quarter of the queue, so they never crowd out a trusted peer; the lossy
//! mode answers and counts; heartbeats make one heartbeat record per peer
//! per interval.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot_proto::{
    AuditConfig, AuditOverload, AuditRecord, Engine, MonoTime, Now, TransportConfig,
};
use tibet_ping::{Frame, PacketCodec, PingNode, PingNodeConfig, PingOptions, PingType, Timestamp};

const HUB: &str = "jis:test:hub";

fn engine(capacity: usize, on_overload: AuditOverload) -> Engine {
    let config = TransportConfig {
        audit: AuditConfig {
            capacity,
            on_overload,
            ..AuditConfig::default()
        },
        ..TransportConfig::loopback()
    };
    let mut e = Engine::new(HUB, config, 5);
    e.set_audit_enabled(true);
    e
}

fn at(ms: u64) -> Now {
    Now::new(
        MonoTime::from_duration(Duration::from_millis(ms)),
        Timestamp::from_micros(1_764_442_800_000_000 + ms as i64 * 1000),
    )
}

struct Sender {
    node: PingNode,
    from: SocketAddr,
}

impl Sender {
    fn new(did: &str, from: &str, seed: u64) -> Self {
        Sender {
            node: PingNode::new(
                did,
                PingNodeConfig::default(),
                Box::new(StdRng::seed_from_u64(seed)),
            ),
            from: from.parse().unwrap(),
        }
    }

    /// Sends one ping to `e`; the packet id.
    fn ping(&mut self, e: &mut Engine, now: Now, kind: PingType) -> String {
        let p = match kind {
            PingType::Heartbeat => self.node.heartbeat(now.wall, HUB, None),
            _ => self
                .node
                .ping(now.wall, HUB, "door.open", "why", PingOptions::default()),
        };
        let datagram = PacketCodec::json().encode_packet(&p).unwrap();
        e.handle_datagram(now, self.from, &datagram);
        p.packet_id
    }
}

/// The packet ids answered since the last call.
fn answered(e: &mut Engine) -> Vec<String> {
    std::iter::from_fn(|| e.poll_transmit())
        .filter_map(|t| match PacketCodec::json().decode(&t.payload) {
            Ok(Frame::Response(r)) => Some(r.in_response_to),
            _ => None,
        })
        .collect()
}

/// The packet ids of the queued ping records (drains the queue).
fn recorded(e: &mut Engine) -> Vec<String> {
    std::iter::from_fn(|| e.poll_audit())
        .filter_map(|r| match r {
            AuditRecord::Ping { packet, .. } => Some(packet.packet_id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_stalled_consumer_withholds_answers_and_every_answer_has_its_record() {
    let mut e = engine(64, AuditOverload::Block);
    e.set_trust(at(0), "jis:test:door", 0.9);
    let mut door = Sender::new("jis:test:door", "127.0.0.1:40001", 1);
    let _ = e.poll_audit(); // the trust change
    // Nobody takes records (the sink stalls): 100 pings, room for 64.
    let sent: Vec<String> = (0..100)
        .map(|i| door.ping(&mut e, at(i), PingType::Intent))
        .collect();
    let got = answered(&mut e);
    assert_eq!(got, sent[..64], "answered while their records fitted");
    assert_eq!(e.audit_room(), 0);
    let s = e.stats(at(100)).engine;
    assert_eq!((s.audit_refused, s.audit_dropped), (36, 0));
    assert_eq!(s.pings_answered, 64);
    assert_eq!(recorded(&mut e), got, "one record per answer, in order");
    // The consumer caught up: answered again.
    let again = door.ping(&mut e, at(200), PingType::Intent);
    assert_eq!(answered(&mut e), std::slice::from_ref(&again));
    assert_eq!(recorded(&mut e), [again]);
}

#[test]
fn the_lossy_mode_answers_and_counts_what_it_could_not_record() {
    let mut e = engine(16, AuditOverload::Drop);
    e.set_trust(at(0), "jis:test:door", 0.9);
    let mut door = Sender::new("jis:test:door", "127.0.0.1:40001", 1);
    let _ = e.poll_audit();
    for i in 0..40 {
        door.ping(&mut e, at(i), PingType::Intent);
    }
    assert_eq!(answered(&mut e).len(), 40);
    let s = e.stats(at(40)).engine;
    assert_eq!((s.audit_refused, s.audit_dropped), (0, 24));
    assert_eq!(recorded(&mut e).len(), 16);
}

#[test]
fn untrusted_senders_never_crowd_out_a_trusted_peer() {
    let mut e = engine(400, AuditOverload::Block);
    e.set_trust(at(0), "jis:test:door", 0.9);
    let mut door = Sender::new("jis:test:door", "127.0.0.1:40001", 1);
    let _ = e.poll_audit();
    // 200 GEEL senders, each from its own address, 4 pings each, while
    // the queue is not drained: their records take at most a quarter.
    for i in 0..200u64 {
        e.set_trust(at(1), &format!("jis:test:geel{i}"), 0.5);
    }
    while e.poll_audit().is_some() {}
    let mut geel_answered = HashSet::new();
    for i in 0..200u64 {
        let did = format!("jis:test:geel{i}");
        let addr = format!("127.0.{}.{}:41000", 1 + i / 200, 2 + i % 200);
        let mut s = Sender::new(&did, &addr, 100 + i);
        for k in 0..4 {
            s.ping(&mut e, at(2 + k), PingType::Intent);
        }
        geel_answered.extend(answered(&mut e));
    }
    assert!(
        (90..=100).contains(&geel_answered.len()),
        "untrusted took {} of 400",
        geel_answered.len()
    );
    let s = e.stats(at(10)).engine;
    assert_eq!(s.audit_refused, 800 - geel_answered.len() as u64);
    // The trusted peer still has the rest of the queue.
    let sent: Vec<String> = (0..300)
        .map(|i| door.ping(&mut e, at(10 + i), PingType::Intent))
        .collect();
    assert_eq!(answered(&mut e), sent);
    let records = recorded(&mut e);
    assert_eq!(records.len(), geel_answered.len() + 300);
    assert!(geel_answered.iter().all(|id| records.contains(id)));
}

#[test]
fn heartbeats_are_each_recorded_as_pings_and_once_per_interval_as_heartbeats() {
    let mut e = engine(1024, AuditOverload::Block);
    e.set_trust(at(0), "jis:test:door", 0.9);
    let mut door = Sender::new("jis:test:door", "127.0.0.1:40001", 1);
    let _ = e.poll_audit();
    // A heartbeat every second for two and a half minutes.
    let sent: Vec<String> = (0..150)
        .map(|s| door.ping(&mut e, at(s * 1000), PingType::Heartbeat))
        .collect();
    assert_eq!(answered(&mut e), sent);
    let mut pings = 0;
    let mut heartbeats = Vec::new();
    while let Some(r) = e.poll_audit() {
        match r {
            AuditRecord::Ping { .. } => pings += 1,
            AuditRecord::Heartbeat { did, count, .. } => {
                assert_eq!(did, "jis:test:door");
                heartbeats.push(count);
            }
            other => panic!("unexpected record {other:?}"),
        }
    }
    assert_eq!(pings, 150);
    // At 0 s, 60 s and 120 s: the first, then the 60 each stands for.
    assert_eq!(heartbeats, [1, 60, 60]);
}
