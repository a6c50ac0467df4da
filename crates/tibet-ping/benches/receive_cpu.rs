//! `PingNode::receive` on a trusted packet, timed by the CPU time of this
//! thread (`/proc/thread-self/schedstat`, nanoseconds) as well as by the wall
//! clock. On a shared machine other processes stretch wall-clock figures
//! (criterion's `receive` bench); CPU time counts only the time this thread
//! ran. Linux only.
//!
//! Set-up as in the `receive` bench at the design load: 10 µs of virtual
//! time per packet (100,000 packets/s), the tracker filled to its steady
//! state (~3,000,000 nonces) before measuring. Each packet gets a fresh
//! nonce written in place (and a new timestamp every 1,000 packets); that
//! preparation is measured separately and reported, not subtracted.
//!
//! Run: `cargo bench -p tibet-ping --bench receive_cpu` (env `PACKETS`,
//! default 4,000,000 timed receives).

use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::{Outcome, PingNode, PingNodeConfig, PingOptions, PingPacket, Timestamp};

const STEP_US: u64 = 10;

/// CPU time this thread has run, from the kernel's scheduler statistics.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("read /proc/thread-self/schedstat");
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .expect("schedstat run time");
    Duration::from_nanos(ns)
}

struct Feed {
    packet: PingPacket,
    t0: Timestamp,
    next: u64,
    hex: [u8; 32],
}

impl Feed {
    /// Advances to the next packet: fresh nonce, timestamp every 1,000.
    fn advance(&mut self) -> Timestamp {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let i = self.next;
        self.next += 1;
        for (k, slot) in self.hex.iter_mut().rev().take(16).enumerate() {
            *slot = DIGITS[((i >> (4 * k)) & 0xf) as usize];
        }
        self.packet.nonce.clear();
        self.packet
            .nonce
            .push_str(std::str::from_utf8(&self.hex).unwrap_or_default());
        let now = self.t0 + Duration::from_micros(i * STEP_US);
        if i.is_multiple_of(1000) {
            self.packet.timestamp = now.to_iso();
        }
        now
    }
}

fn measure(n: u64, mut body: impl FnMut()) -> (Duration, Duration) {
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    for _ in 0..n {
        body();
    }
    (thread_cpu() - cpu0, wall0.elapsed())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that does not match skips us.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !"receive_cpu".contains(a.as_str()))
    {
        return;
    }
    let n: u64 = std::env::var("PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000_000);
    let t0 = Timestamp::parse("2026-11-26T11:00:00Z").unwrap();
    let mut hub = PingNode::new(
        "jis:home:hub",
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(1)),
    );
    hub.set_trust("jis:home:sensor", 0.9);
    let mut sensor = PingNode::new(
        "jis:home:sensor",
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(2)),
    );
    let packet = sensor.ping(
        t0,
        "jis:home:hub",
        "temperature.report",
        "hourly log",
        PingOptions::default(),
    );
    let mut feed = Feed {
        packet,
        t0,
        next: 0,
        hex: [b'0'; 32],
    };

    // Steady state: one window (and a bit) of traffic.
    for _ in 0..31_000_000 / STEP_US {
        let now = feed.advance();
        hub.receive(now, &feed.packet);
    }
    let (prep_cpu, _) = measure(n, || {
        black_box(feed.advance());
    });
    let (cpu, wall) = measure(n, || {
        let now = feed.advance();
        black_box(hub.receive(now, &feed.packet).outcome);
    });
    let s = hub.stats();
    assert_eq!((s.accepted, s.nonce_refusals), (s.received, 0), "{s:?}");
    let last = hub.receive(
        t0 + Duration::from_micros(feed.next * STEP_US),
        &feed.packet,
    );
    assert_eq!(
        last.outcome,
        Outcome::Replay,
        "the tracker still remembers the last nonce"
    );

    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "receive_cpu: trusted_accept at 100k pps, {} nonces held, {n} packets",
        s.nonce_tracked
    );
    println!(
        "  CPU time : {:7.1} ns/packet = {:.2} M packets/s",
        per(cpu),
        1e3 / per(cpu)
    );
    println!(
        "  wall time: {:7.1} ns/packet = {:.2} M packets/s",
        per(wall),
        1e3 / per(wall)
    );
    println!(
        "  of which preparing the packet (nonce, timestamp): {:.1} ns CPU",
        per(prep_cpu)
    );
}
