//! Timers follow the monotonic clock; a wall-clock step neither fires nor
//! stalls them.

use std::net::SocketAddr;
use std::time::Duration;

use tibet_iot_proto::sim::Sim;
use tibet_iot_proto::{Engine, MonoTime, Now};
use tibet_ping::Timestamp;

fn engine_with_peer(start: Now) -> Engine {
    let mut e = Engine::new("jis:clock:a", Sim::config(), 1);
    e.start(start);
    let peer: SocketAddr = "10.0.0.2:7150".parse().unwrap();
    e.add_peer(start, "jis:clock:b", peer);
    e
}

fn heartbeats(e: &Engine, now: Now) -> u64 {
    e.stats(now).engine.heartbeats_sent
}

#[test]
fn a_wall_clock_jump_forward_fires_no_timer() {
    let wall = Timestamp::from_secs(1_800_000_000);
    let start = Now::new(MonoTime::from_secs(100), wall);
    let mut e = engine_with_peer(start);
    // NTP steps the wall clock a day ahead; one real second has passed.
    let later = Now::new(MonoTime::from_secs(101), wall + Duration::from_secs(86_400));
    assert!(e.poll_timeout().is_some_and(|t| t > later.mono));
    e.handle_timeout(later);
    assert_eq!(heartbeats(&e, later), 0);
    assert!(e.poll_transmit().is_none(), "nothing due, nothing sent");
}

#[test]
fn a_wall_clock_jump_back_stalls_no_timer() {
    let wall = Timestamp::from_secs(1_800_000_000);
    let start = Now::new(MonoTime::from_secs(100), wall);
    let mut e = engine_with_peer(start);
    // The wall clock is set back an hour; 30 real seconds pass.
    let later = Now::new(MonoTime::from_secs(130), wall - Duration::from_secs(3_600));
    assert_eq!(e.poll_timeout(), Some(MonoTime::from_secs(130)));
    e.handle_timeout(later);
    assert_eq!(heartbeats(&e, later), 1, "the 30 s heartbeat went out");
    assert!(e.poll_transmit().is_some());
}
