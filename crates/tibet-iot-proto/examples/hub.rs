//! A hub engine holding N live peers that heartbeat every 30 s: the memory
//! held per peer (heap bytes the hub holds, counted by the allocator), the
//! cost of answering a round of
//! heartbeats, of the hub's own heartbeat round (the peers answer, so they
//! are proven and get heartbeats, not challenges), of a cleanup sweep, and
//! of one ping, at 10 and at 10,000 peers (docs/PERFORMANCE.md, "Hub with
//! 10,000 peers").
//!
//! Each figure is measured over several rounds and printed as the median
//! with the lowest and highest round, so the noise of a shared machine is
//! visible. Times are the thread's time on a core
//! (`CLOCK_THREAD_CPUTIME_ID`), not wall time: waiting for a core on a
//! loaded machine is not counted (what other processes do to the caches
//! still is). The ping rounds of the hubs alternate, so a change of load
//! hits every size alike.
//!
//! `cargo run --release -p tibet-iot-proto --example hub [PEERS...]`
//! (`HUB_ROUNDS`, default 7: rounds per figure; `HUB_ROUTING_PEERS`: the
//! peers say they route, so the hub sends them its route advertisements;
//! `HUB_DEBUG`: print the hub's counters).

use std::alloc::System;
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tibet_iot_proto::sim::{addr, did};
use tibet_iot_proto::{
    AdvertText, Engine, Limits, MonoTime, Now, PacketCodec, ROUTES_KEY, TransportConfig,
};
use tibet_ping::{
    AirlockRule, AirlockZone, Frame, PingNode, PingNodeConfig, PingOptions, RulePattern, Timestamp,
};

/// Pings per measured round.
const PINGS: usize = 20_000;
/// Sweeps run every 47 s here (45 s by default) so that no sweep falls on
/// a heartbeat round (every 30 s) and each is timed alone.
const CLEANUP: u64 = 47;

/// A stopwatch of the thread's CPU time.
struct Instant(Duration);

impl Instant {
    fn now() -> Self {
        let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
        Instant(Duration::from(t))
    }

    fn elapsed(&self) -> Duration {
        Instant::now().0.saturating_sub(self.0)
    }
}

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes live now (requested sizes, without the allocator's own
/// overhead).
fn live() -> i64 {
    let s = GLOBAL.stats();
    // Growth by realloc is already counted in these two.
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Heap bytes held by encoded datagrams.
#[allow(clippy::ptr_arg)] // the capacity counts
fn held_by(v: &Vec<(SocketAddr, Vec<u8>)>) -> i64 {
    (v.iter().map(|(_, d)| d.capacity()).sum::<usize>()
        + v.capacity() * std::mem::size_of::<(SocketAddr, Vec<u8>)>()) as i64
}

fn at(s: f64) -> Now {
    let d = Duration::from_secs_f64(s);
    Now::new(
        MonoTime::from_secs(0) + d,
        Timestamp::from_secs(1_795_690_800) + d,
    )
}

/// The peer behind `addr(i)`.
fn index(a: SocketAddr) -> usize {
    match a.ip() {
        IpAddr::V4(v4) => {
            let [_, _, c, d] = v4.octets();
            usize::from(c) * 250 + usize::from(d) - 1
        }
        IpAddr::V6(_) => unreachable!("the sim's addresses are IPv4"),
    }
}

/// Median, lowest and highest of per-round figures.
struct Spread(Vec<f64>);

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        match v.as_slice() {
            [] => write!(f, "-"),
            [one] => write!(f, "{one:.2}"),
            _ => write!(
                f,
                "{:.2} [{:.2}-{:.2}]",
                v[v.len() / 2],
                v[0],
                v[v.len() - 1]
            ),
        }
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("peer count"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 10_000]
    } else {
        sizes
    };
    let rounds: usize = std::env::var("HUB_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7)
        .max(1);
    let mut hubs: Vec<Hub> = sizes.iter().map(|&n| Hub::new(n, rounds)).collect();
    // Ping rounds alternate between the hubs, so that a change of machine
    // load hits every size alike.
    for r in 0..rounds {
        for h in &mut hubs {
            h.ping_round(r);
        }
    }
    println!(
        "figures per round: median [lowest-highest] of {rounds} rounds\n\
         peers\talive\thb sent\tbytes/peer\thb in (us/hb)\thb out (us/peer)\t\
         hb answers in (us/peer)\tcleanup (ms)\tping (us)"
    );
    let held: Vec<(usize, i64)> = hubs.iter().map(|h| (h.n, h.held)).collect();
    for h in hubs {
        h.report();
    }
    // What one more peer costs, without the fixed costs (caches of fixed
    // capacity, tables' initial sizes).
    for w in held.windows(2) {
        let ((a, ha), (b, hb)) = (w[0], w[1]);
        if b > a {
            println!(
                "bytes per added peer, {a} -> {b} peers: {}",
                (hb - ha) / (b - a) as i64
            );
        }
    }
}

const HUB_DID: &str = "jis:sim:hub";

/// One hub, its peers and its figures.
struct Hub {
    n: usize,
    rounds: usize,
    codec: PacketCodec,
    hub: Engine,
    peers: Vec<PingNode>,
    alive: usize,
    sent: usize,
    held: i64,
    /// Mean size of a datagram of the hub's last round.
    round_bytes: usize,
    /// Heap growth of the peers' own nodes (not the hub's).
    peer_growth: i64,
    hb_in: Vec<f64>,
    hb_out: Vec<f64>,
    hb_answers: Vec<f64>,
    cleanup: Vec<f64>,
    ping: Vec<f64>,
}

fn per(d: Duration, k: usize) -> f64 {
    d.as_secs_f64() * 1e6 / k.max(1) as f64
}

impl Hub {
    /// Sets the hub up and runs (and times) its heartbeat rounds and sweeps.
    fn new(n: usize, rounds: usize) -> Self {
        // The peers: their packets are made outside the timed sections.
        let peers: Vec<PingNode> = (0..n)
            .map(|i| {
                let mut p = PingNode::new(
                    did(i),
                    PingNodeConfig::default(),
                    Box::new(StdRng::seed_from_u64(i as u64)),
                );
                p.set_trust(HUB_DID, 0.9);
                p
            })
            .collect();
        let before = live();
        let cfg = TransportConfig {
            discovery_enabled: false,
            cleanup_interval: Duration::from_secs(CLEANUP),
            limits: Limits {
                peers: n.max(16_384),
                ..Limits::default()
            },
            ..TransportConfig::default()
        };
        let mut hub = Engine::new(HUB_DID, cfg, 1);
        hub.set_events_enabled(false);
        hub.add_rule(AirlockRule {
            rule_id: "fleet".into(),
            name: "fleet".into(),
            pattern: RulePattern {
                source_did: Some("jis:sim:*".into()),
                ..RulePattern::default()
            },
            zone: AirlockZone::Groen,
            priority: 50,
        });
        // Commissioned devices: each peer is trusted (its trust entry counts
        // towards the bytes held per peer).
        for i in 0..n {
            hub.set_trust(at(0.0), &did(i), 0.9);
        }
        hub.start(at(0.0));
        let mut h = Hub {
            n,
            rounds,
            codec: PacketCodec::json(),
            hub,
            peers,
            alive: 0,
            sent: 0,
            held: 0,
            round_bytes: 0,
            peer_growth: 0,
            hb_in: Vec::new(),
            hb_out: Vec::new(),
            hb_answers: Vec::new(),
            cleanup: Vec::new(),
            ping: Vec::new(),
        };
        // Warm-up: the peers say hello, the hub's first round challenges
        // them (unproven peers), their answers prove them.
        let hb = h.heartbeats(0.0);
        h.feed(0.0, &hb);
        h.hub_round(30.0);
        // Heartbeat rounds at 60, 90, ... s; sweeps at 47, 94, ... s.
        let mut next_sweep = CLEANUP as f64;
        for r in 0..rounds {
            let t = 60.0 + 30.0 * r as f64;
            while next_sweep < t {
                let start = Instant::now();
                h.hub.handle_timeout(at(next_sweep));
                h.cleanup.push(start.elapsed().as_secs_f64() * 1e3);
                next_sweep += CLEANUP as f64;
            }
            let hb = h.heartbeats(t - 1.0);
            let took = h.feed(t - 1.0, &hb);
            drop(hb);
            h.hb_in.push(per(took, n));
            let (out, k, answers) = h.hub_round(t);
            h.sent = k;
            h.hb_out.push(per(out, n));
            h.hb_answers.push(per(answers, k));
            if r == 0 {
                // Everything made here is dropped by now; what the peers'
                // nodes grew by is not the hub's.
                h.held = live() - before - h.peer_growth;
            }
        }
        h.alive = h.hub.peers().stats(at(60.0).mono).alive;
        h
    }

    /// Every peer's heartbeat to the hub at `t`.
    fn heartbeats(&mut self, t: f64) -> Vec<(SocketAddr, Vec<u8>)> {
        let l0 = live();
        let codec = &self.codec;
        let routing = std::env::var_os("HUB_ROUTING_PEERS").is_some();
        let v: Vec<(SocketAddr, Vec<u8>)> = self
            .peers
            .iter_mut()
            .enumerate()
            .map(|(i, p)| {
                // A routing node with nothing to advertise sends an empty
                // `routes` map.
                let mut extra = tibet_ping::JsonMap::new();
                if routing {
                    extra.insert(ROUTES_KEY.to_owned(), AdvertText::new().into());
                }
                let hb = p.heartbeat_with(at(t).wall, HUB_DID, None, extra);
                (addr(i), codec.encode_packet(&hb).unwrap())
            })
            .collect();
        self.peer_growth += live() - l0 - held_by(&v);
        v
    }

    /// Feeds datagrams to the hub at `t`, timed.
    fn feed(&mut self, t: f64, dgrams: &[(SocketAddr, Vec<u8>)]) -> Duration {
        let now = at(t);
        let start = Instant::now();
        for (from, d) in dgrams {
            self.hub.handle_datagram(now, *from, d);
            while let Some(tx) = self.hub.poll_transmit() {
                black_box(tx);
            }
        }
        start.elapsed()
    }

    /// The hub's heartbeat round at `t` (timed), then the peers' answers
    /// (made untimed, fed timed): (round, datagrams sent, answers).
    fn hub_round(&mut self, t: f64) -> (Duration, usize, Duration) {
        let start = Instant::now();
        self.hub.handle_timeout(at(t));
        let mut out = Vec::new();
        while let Some(tx) = self.hub.poll_transmit() {
            out.push(tx);
        }
        let took = start.elapsed();
        self.round_bytes = out.iter().map(|tx| tx.payload.len()).sum::<usize>() / out.len().max(1);
        let l0 = live();
        let codec = &self.codec;
        let peers = &mut self.peers;
        let answers: Vec<(SocketAddr, Vec<u8>)> = out
            .iter()
            .filter_map(|tx| {
                let Ok(Frame::Packet(p)) = codec.decode(&tx.payload) else {
                    return None;
                };
                let r = peers[index(tx.destination)].receive(at(t).wall, &p);
                r.should_reply()
                    .then(|| (tx.destination, codec.encode_response(&r.response).unwrap()))
            })
            .collect();
        self.peer_growth += live() - l0 - held_by(&answers);
        let start = Instant::now();
        for (from, d) in &answers {
            self.hub.handle_datagram(at(t), *from, d);
            while let Some(tx) = self.hub.poll_transmit() {
                black_box(tx);
            }
        }
        (took, out.len(), start.elapsed())
    }

    /// Ping round `r`: PINGS direct pings from known peers (in turn), made
    /// before timing; rounds are a second apart, after the last heartbeat
    /// round.
    fn ping_round(&mut self, r: usize) {
        let t = 60.0 + 30.0 * self.rounds as f64 - 25.0 + r as f64;
        let n = self.n;
        let codec = &self.codec;
        let pings: Vec<(usize, Vec<u8>)> = (0..PINGS)
            .map(|k| {
                let i = k % n;
                let p = self.peers[i].ping(
                    at(t).wall,
                    HUB_DID,
                    "temperature.report",
                    "bench",
                    PingOptions::default(),
                );
                (i, codec.encode_packet(&p).unwrap())
            })
            .collect();
        let now = at(t);
        let start = Instant::now();
        for (i, d) in &pings {
            self.hub.handle_datagram(now, addr(*i), d);
            while let Some(tx) = self.hub.poll_transmit() {
                black_box(tx);
            }
        }
        self.ping.push(per(start.elapsed(), PINGS));
    }

    fn report(self) {
        let st = self.hub.stats(at(
            60.0 + 30.0 * self.rounds as f64 - 25.0 + self.rounds as f64
        ));
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.n,
            self.alive,
            self.sent,
            self.held / self.n as i64,
            Spread(self.hb_in),
            Spread(self.hb_out),
            Spread(self.hb_answers),
            Spread(self.cleanup),
            Spread(self.ping),
        );
        if std::env::var_os("HUB_DEBUG").is_some() {
            eprintln!(
                "{:?}\n{:?}\n{:?}\nmean heartbeat datagram of the hub's last round: {} bytes",
                st.engine, st.peers, st.routes, self.round_bytes
            );
        }
        assert_eq!(st.engine.rood_dropped, 0, "every ping answered");
        assert_eq!(self.alive, self.n, "every peer stays alive");
    }
}
