//! What a fresh engine costs in heap: the simulator runs 10,000 of them, so
//! tables must grow with use, not be sized up front. Measured with a
//! counting global allocator; the tests in this binary take turns (a lock),
//! so no other test thread allocates meanwhile.

use std::alloc::System;
use std::sync::Mutex;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tibet_iot_proto::sim::{addr, did};
use tibet_iot_proto::{Engine, Limits, MonoTime, Now, TransportConfig};
use tibet_ping::Timestamp;

/// One measurement at a time.
static TURN: Mutex<()> = Mutex::new(());

fn at(s: u64) -> Now {
    Now::new(
        MonoTime::from_secs(s),
        Timestamp::from_secs(1_795_690_800 + s as i64),
    )
}

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn a_fresh_engine_holds_little_heap() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let region = Region::new(GLOBAL);
    let engine = Engine::new("jis:test:fresh", TransportConfig::default(), 1);
    let s = region.change();
    let held = s.bytes_allocated as i64 - s.bytes_deallocated as i64;
    eprintln!("a fresh engine holds {held} heap bytes");
    // Its key cache alone used to reserve ~440 KB.
    assert!(held < 64 * 1024, "a fresh engine holds {held} bytes");
    drop(engine);
}

/// A hub's heartbeat round queues one datagram and one request per peer at
/// once. Once the datagrams are sent and the requests are settled (here:
/// timed out), the room they took is given back, apart from a small slot
/// per request in the table's index.
#[test]
fn a_heartbeat_round_gives_its_room_back_once_settled() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    const PEERS: usize = 2_000;
    let cfg = TransportConfig {
        discovery_enabled: false,
        limits: Limits {
            peers: PEERS,
            ..Limits::default()
        },
        ..TransportConfig::default()
    };
    let mut hub = Engine::new("jis:test:hub", cfg, 1);
    hub.set_events_enabled(false);
    hub.start(at(0));
    for i in 0..PEERS {
        hub.add_peer(at(0), &did(i), addr(i));
    }
    let region = Region::new(GLOBAL);
    // The heartbeat round (30 s), sent.
    hub.handle_timeout(at(30));
    let mut sent = 0;
    while hub.poll_transmit().is_some() {
        sent += 1;
    }
    assert_eq!(sent, PEERS, "one heartbeat per proven peer");
    let s = region.change();
    let during = s.bytes_allocated as i64 - s.bytes_deallocated as i64;
    // Nobody answers: the requests time out (10 s).
    hub.handle_timeout(at(41));
    assert_eq!(hub.stats(at(41)).engine.requests_timed_out, PEERS as u64);
    while hub.poll_transmit().is_some() {}
    let s = region.change();
    let held = s.bytes_allocated as i64 - s.bytes_deallocated as i64;
    eprintln!("a round to {PEERS} peers: {during} bytes while pending, {held} after");
    // Unboxed requests in maps and a queue that kept their size held 578
    // bytes per peer here (1,155,384 bytes); now about 46.
    assert!(
        held < (PEERS * 64) as i64,
        "{held} bytes held after a settled round to {PEERS} peers"
    );
}
