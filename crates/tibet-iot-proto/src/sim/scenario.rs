//! Whole-network scenarios on the [`Sim`]: a topology, a warm-up of
//! heartbeats and discovery, then mesh pings between random pairs, measured.
//! `tibet-iot sim` formats what [`run`] returns; the test suite runs the
//! same code at a smaller size.
//!
//! Every node commissions its graph neighbours (trust 0.9, so they may
//! teach it routes) and accepts pings from any simulated DID by an airlock
//! rule. Nodes start staggered over one heartbeat interval, as real devices
//! power up at different moments. Everything derives from the seed, so the
//! same [`ScenarioConfig`] gives the same [`Report`].

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tibet_ping::{AirlockRule, AirlockZone, RulePattern};

use super::churn::{Fleet, name};
use super::trace::Trace;
use super::{Link, Sim};
use crate::config::{Limits, TransportConfig};
use crate::engine::SendOptions;
use crate::event::Event;
use crate::requests::RequestId;
use crate::retransmit::RetransmitPolicy;
use crate::time::MonoTime;

/// How the nodes are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Topology {
    /// Radio-like: nodes at random points of the unit square, linked within
    /// the smallest radius (searched in 5 % steps from 1.4 times the
    /// connectivity threshold) that connects the graph.
    Geometric,
    /// A random spanning tree plus as many random extra links as nodes.
    Random,
    /// A chain.
    Line,
    /// A square grid, row by row.
    Grid,
    /// Node 0 linked to every other node (a hub).
    Star,
}

impl std::str::FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "geometric" => Topology::Geometric,
            "random" => Topology::Random,
            "line" => Topology::Line,
            "grid" => Topology::Grid,
            "star" => Topology::Star,
            _ => return Err(format!("unknown topology {s:?}")),
        })
    }
}

/// Mixed into the seed for the generator of the ping pairs.
const PAIRS_SEED: u64 = 0x7069_6e67_7061_6972;

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// How they are linked.
    pub topology: Topology,
    /// Loss on every link (0..1).
    pub loss: f64,
    /// Latency of every link; jitter is uniform up to the same amount.
    pub latency: Duration,
    /// The seed everything derives from.
    pub seed: u64,
    /// Mesh pings between random pairs after the warm-up.
    pub pings: usize,
    /// Learned routing on (else every relay floods to every peer).
    pub routing: bool,
    /// Virtual time of heartbeats and discovery before the first ping.
    pub warmup: Duration,
    /// Virtual time between two pings.
    pub ping_interval: Duration,
    /// Whether to run the same scenario with routing off for
    /// [`Report::flood_transmissions_per_delivery`].
    pub baseline: bool,
    /// Areas ([`TransportConfig::route_areas`]): the unit square cut into
    /// `k` x `k` cells, a node's DID naming its cell
    /// (`jis:sim:a<cell>:n<i>`); `Some(0)` or `Some(1)`: one flat mesh;
    /// `None`: [`auto_areas`]. Geometric topology only (others are flat).
    pub areas: Option<usize>,
    /// Regions: areas that hold areas. The square cut into `r` x `r`
    /// regions as well, each holding whole cells (the cells per side are
    /// rounded up to a multiple of `r`), a DID naming both
    /// (`jis:sim:r<region>:a<cell>:n<i>`): a node keeps routes to its own
    /// cell's nodes, to the other cells of its region and to the other
    /// regions. `Some(0)` or `Some(1)`: no regions; `None`: none, unless
    /// `areas` is `None` too ([`auto_regions`]).
    pub regions: Option<usize>,
    /// Share of the nodes that leave per virtual minute (0..1), from the
    /// first minute on; the nodes that left the minute before come back
    /// then, as fresh engines that know only their graph neighbours.
    pub churn: f64,
    /// Print a diagnostic on stderr: where each mesh ping's routes lead
    /// when it is sent (`sim/trace.rs`), which kinds were answered, and
    /// the engines' drop and route counters summed. Off by default; it
    /// changes nothing in the [`Report`].
    pub diagnostics: bool,
}

/// Cells per side when [`ScenarioConfig::areas`] is `None`: flat up to
/// 1,500 nodes, beyond that about sqrt(n) nodes per area in about sqrt(n)
/// areas (k = n^(1/4)), so a table holds about 2 sqrt(n) routes.
pub fn auto_areas(nodes: usize) -> usize {
    if nodes <= 1_500 {
        1
    } else {
        ((nodes as f64).powf(0.25).round() as usize).max(2)
    }
}

impl Default for ScenarioConfig {
    /// 100 geometric nodes, no loss, 1 ms links, seed 1, 100 pings, routing
    /// on, 5 virtual minutes of warm-up, a ping every 100 ms, with baseline,
    /// areas by [`auto_areas`], no churn, no diagnostics.
    fn default() -> Self {
        ScenarioConfig {
            nodes: 100,
            topology: Topology::Geometric,
            loss: 0.0,
            latency: Duration::from_millis(1),
            seed: 1,
            pings: 100,
            routing: true,
            warmup: Duration::from_secs(300),
            ping_interval: Duration::from_millis(100),
            baseline: true,
            areas: None,
            regions: None,
            churn: 0.0,
            diagnostics: false,
        }
    }
}

/// What a scenario measured; the same config gives the same report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Nodes.
    pub nodes: usize,
    /// Links (each counted once).
    pub edges: usize,
    /// The topology.
    pub topology: Topology,
    /// The seed.
    pub seed: u64,
    /// Link loss.
    pub loss: f64,
    /// Link latency in ms.
    pub latency_ms: f64,
    /// Whether learned routing was on.
    pub routing: bool,
    /// Mesh pings sent.
    pub attempted: usize,
    /// Mesh pings whose answer came back to the origin in time.
    pub delivered: usize,
    /// delivered / attempted.
    pub delivery_ratio: f64,
    /// Datagrams sent for the mesh pings (copies, resends, answers) per
    /// delivered ping; heartbeats and beacons are not counted.
    pub transmissions_per_delivery: f64,
    /// The same with routing off (the flood), when the baseline ran.
    pub flood_transmissions_per_delivery: Option<f64>,
    /// Median number of links a mesh ping travelled to its target.
    pub p50_hops: u32,
    /// 99th percentile of the same.
    pub p99_hops: u32,
    /// Median virtual round-trip time of answered pings.
    pub p50_latency_ms: f64,
    /// 99th percentile of the virtual round-trip time of answered pings.
    pub p99_latency_ms: f64,
    /// Areas the nodes were named into (1: a flat mesh).
    pub areas: usize,
    /// Regions holding those areas, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<usize>,
    /// Nodes that left (and as many came back) per virtual minute.
    pub churned_per_minute: usize,
    /// Datagrams that were not the pings' own (heartbeats with their
    /// advertisements and answers, beacons, discovery answers) per node
    /// per virtual minute, warm-up included.
    pub control_datagrams_per_node_minute: f64,
    /// Their bytes per node per virtual minute.
    pub control_bytes_per_node_minute: f64,
    /// Most bytes one node sent in one virtual second (warm-up included:
    /// heartbeats, advertisements, beacons).
    pub bytes_per_node_peak: u64,
    /// Mean number of routes a node held at the end.
    pub routes_per_node: f64,
    /// Virtual time simulated (the routed run).
    pub virtual_seconds: f64,
}

/// Progress of a run, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Steps done.
    pub done: u64,
    /// Steps in all (warm-up tenths plus pings, for each run).
    pub total: u64,
}

/// The links of `topology` over `n` nodes, each `(a, b)` with `a < b`,
/// sorted; randomness from `rng`.
pub fn edges(topology: Topology, n: usize, rng: &mut impl Rng) -> Vec<(usize, usize)> {
    layout(topology, n, rng).0
}

/// Links `(a, b)` with `a < b`, and where each node stands in the unit
/// square (empty for the topologies that are not geometric).
pub type Layout = (Vec<(usize, usize)>, Vec<(f64, f64)>);

/// The links of `topology` over `n` nodes (as [`edges`]) and, for the
/// geometric one, where each node is in the unit square (else empty).
pub fn layout(topology: Topology, n: usize, rng: &mut impl Rng) -> Layout {
    let mut points = Vec::new();
    let mut e: Vec<(usize, usize)> = match topology {
        Topology::Line => (1..n).map(|i| (i - 1, i)).collect(),
        Topology::Star => (1..n).map(|i| (0, i)).collect(),
        Topology::Grid => {
            let side = (n as f64).sqrt().ceil().max(1.0) as usize;
            let mut v = Vec::new();
            for i in 0..n {
                if (i + 1) % side != 0 && i + 1 < n {
                    v.push((i, i + 1));
                }
                if i + side < n {
                    v.push((i, i + side));
                }
            }
            v
        }
        Topology::Random => {
            let mut set = std::collections::BTreeSet::new();
            for i in 1..n {
                set.insert((rng.gen_range(0..i), i));
            }
            let mut tries = 0;
            while n > 2 && set.len() < 2 * (n - 1) && tries < 20 * n {
                tries += 1;
                let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
                if a != b {
                    set.insert((a.min(b), a.max(b)));
                }
            }
            set.into_iter().collect()
        }
        Topology::Geometric => {
            let (e, p) = geometric(n, rng);
            points = p;
            e
        }
    };
    e.sort_unstable();
    e.dedup();
    (e, points)
}

fn geometric(n: usize, rng: &mut impl Rng) -> Layout {
    if n < 2 {
        return (Vec::new(), Vec::new());
    }
    let pts: Vec<(f64, f64)> = (0..n).map(|_| (rng.r#gen(), rng.r#gen())).collect();
    let nf = n as f64;
    let mut r = 1.4 * (nf.ln().max(1.0) / (std::f64::consts::PI * nf)).sqrt();
    loop {
        // Bucket the square into cells of side r: only neighbouring cells
        // can hold points within r.
        let cells = ((1.0 / r).floor() as usize).max(1);
        let cell = |x: f64| ((x * cells as f64) as usize).min(cells - 1);
        let mut grid: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            grid.entry((cell(x), cell(y))).or_default().push(i);
        }
        let mut e = Vec::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            let (cx, cy) = (cell(x), cell(y));
            for gx in cx.saturating_sub(1)..=(cx + 1).min(cells - 1) {
                for gy in cy.saturating_sub(1)..=(cy + 1).min(cells - 1) {
                    for &j in grid.get(&(gx, gy)).map_or(&[][..], Vec::as_slice) {
                        let (dx, dy) = (pts[j].0 - x, pts[j].1 - y);
                        if j > i && dx * dx + dy * dy <= r * r {
                            e.push((i, j));
                        }
                    }
                }
            }
        }
        if connected(n, &e) {
            return (e, pts);
        }
        r *= 1.05;
    }
}

fn connected(n: usize, e: &[(usize, usize)]) -> bool {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in e {
        adj[a].push(b);
        adj[b].push(a);
    }
    let mut seen = vec![false; n];
    let mut q = VecDeque::from([0]);
    seen[0] = true;
    let mut count = 1;
    while let Some(x) = q.pop_front() {
        for &y in &adj[x] {
            if !seen[y] {
                seen[y] = true;
                count += 1;
                q.push_back(y);
            }
        }
    }
    count == n
}

/// Hop limit of the scenario's nodes and pings (a large geometric mesh is
/// many links across).
pub const MAX_HOPS: u32 = crate::routes::INFINITY;

/// The options of every scenario ping: 10 s in all, up to four resends
/// starting after 250 ms.
fn ping_options() -> SendOptions {
    SendOptions {
        ping: tibet_ping::PingOptions {
            max_hops: Some(MAX_HOPS),
            ..tibet_ping::PingOptions::default()
        },
        timeout: Some(Duration::from_secs(10)),
        retransmit: Some(RetransmitPolicy {
            max_retransmits: 4,
            initial_timeout: Duration::from_millis(250),
            random_factor: 1.5,
        }),
    }
}

/// Bytes of memory every node of a scenario holds besides its routes: its
/// engine and tables, its links and the datagrams in flight (measured 45 to
/// 56 KB; see [`memory_estimate`]).
pub const MEMORY_PER_NODE: u64 = 64 * 1024;
/// Bytes per learned route (measured 75 to 105).
pub const MEMORY_PER_ROUTE: u64 = 128;
/// Bytes per measured ping (its round-trip time, and the request while in
/// flight).
pub const MEMORY_PER_PING: u64 = 32;
/// Bytes a scenario holds whatever its size (the program, the topology).
pub const MEMORY_BASE: u64 = 16 * 1024 * 1024;

/// The memory a scenario needs at its peak, in bytes: an estimate made
/// before it starts, so a run that cannot fit is refused instead of aborted
/// (`tibet-iot sim`). Without areas every node learns a route to every
/// other one, up to its routing table's capacity. Measured peaks (resident
/// set, release build, geometric topology, 10 % loss, 300 s of warm-up,
/// docs/PERFORMANCE.md): 1,000 nodes flat 200 MB with 997 routes per
/// node; 2,000 nodes in 49 areas 129 MB with 88 routes per node; 10,000
/// nodes in 100 areas 762 MB with 198 routes per node: 45 to 56 KB per
/// node besides its routes at ~128 bytes each. The constants round these
/// up (the estimates for those runs: 210 MB, 181 MB and 1.06 GB; 10,000
/// nodes with 5 % churn per minute peaked at 948 MB before the per-node
/// tables were trimmed). The baseline run comes after the routed one has
/// been dropped, so it adds nothing.
///
/// With areas a node holds routes to its own area's nodes and to the other
/// areas: counted as twice the mean area plus the areas (cells are uneven);
/// with regions, to the other areas of its region and the other regions.
pub fn memory_estimate(cfg: &ScenarioConfig) -> u64 {
    let nodes = cfg.nodes.max(2) as u64;
    let (k, r) = cells(cfg, cfg.nodes.max(2), cfg.topology == Topology::Geometric);
    let (k, r) = (k as u64, r as u64);
    let own_area = 2 * nodes.div_ceil(k * k);
    let routes = match (k, r) {
        (1, _) => nodes - 1,
        (_, 1) => own_area + k * k,
        _ => own_area + (k / r) * (k / r) + r * r,
    };
    let routes = routes.min(TransportConfig::default().limits.routes as u64);
    MEMORY_BASE
        + nodes * (MEMORY_PER_NODE + routes * MEMORY_PER_ROUTE)
        + cfg.pings as u64 * MEMORY_PER_PING
}

/// Table bounds of a simulated node, sized to it rather than to a hub (the
/// defaults stay those of a real node). The response cache answers a resent
/// ping from the answer it sent; a simulated node's resends come within
/// seconds, and the answers it sends besides are its neighbours'
/// heartbeats' (several hundred bytes each), so 4 KiB holds what a resend
/// needs where the default 16 MiB let the cache's log grow to hold every
/// heartbeat answer of the last 30 s: 12 KB of a 2,000-node mesh's 80 KB
/// per node. Same reports at 2,000 and 10,000 nodes (docs/PERFORMANCE.md).
fn node_limits() -> Limits {
    Limits {
        response_cache_bytes: 4 * 1024,
        ..Limits::default()
    }
}

/// Runs the scenario (and, when asked, its flood baseline), reporting
/// progress to `progress`.
pub fn run(cfg: &ScenarioConfig, progress: &mut dyn FnMut(Progress)) -> Report {
    let runs = if cfg.baseline && cfg.routing { 2 } else { 1 };
    let per_run = cfg.warmup.as_secs() / 10 + cfg.pings as u64;
    let total = runs * per_run;
    let mut report = run_once(cfg, cfg.routing, &mut |d| {
        progress(Progress { done: d, total })
    });
    if runs == 2 {
        let flood = run_once(cfg, false, &mut |d| {
            progress(Progress {
                done: per_run + d,
                total,
            })
        });
        report.flood_transmissions_per_delivery = Some(flood.transmissions_per_delivery);
    } else if !cfg.routing {
        report.flood_transmissions_per_delivery = Some(report.transmissions_per_delivery);
    }
    report
}

/// The (source, target) pairs of a scenario's mesh pings over `n` nodes
/// (n >= 2), in order: two different nodes each. They come from their own
/// generator, seeded by `seed` alone, so the same seed pings the same
/// pairs whatever the warm-up, the routing, or the flood baseline drew from
/// the simulation's: those compare on the same pings. (With churn a node
/// that is away is replaced by one present, drawn from the simulation's.)
pub fn ping_pairs(seed: u64, n: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut rng = StdRng::seed_from_u64(seed ^ PAIRS_SEED);
    let n = n.max(2);
    core::iter::repeat_with(move || {
        let src = rng.gen_range(0..n);
        let dst = rng.gen_range(0..n - 1);
        (src, if dst >= src { dst + 1 } else { dst })
    })
}

/// Cells and regions per side: `(1, 1)` without points (a topology
/// other than the geometric one); with regions, the cells per side a
/// multiple of them, so each region holds whole cells.
fn cells(cfg: &ScenarioConfig, n: usize, geometric: bool) -> (usize, usize) {
    if !geometric {
        return (1, 1);
    }
    let (areas, regions) = match (cfg.areas, cfg.regions) {
        (None, None) => auto_regions(n),
        (areas, regions) => (
            areas.unwrap_or_else(|| auto_areas(n)).max(1),
            regions.unwrap_or(1),
        ),
    };
    let regions = regions.clamp(1, areas);
    (areas.div_ceil(regions) * regions, regions)
}

/// Cells and regions per side when neither is chosen: [`auto_areas`] (no
/// regions) up to 20,000 nodes; beyond, cells of about 100 nodes in
/// regions of 4 x 4 cells (100,000 nodes: 32 x 32 cells in 8 x 8 regions),
/// so a table holds about 100 + 16 + n/1,600 routes.
pub fn auto_regions(nodes: usize) -> (usize, usize) {
    if nodes <= 20_000 {
        return (auto_areas(nodes), 1);
    }
    let areas = ((nodes as f64 / 100.0).sqrt().round() as usize).max(4);
    (areas, areas.div_ceil(4))
}

fn run_once(cfg: &ScenarioConfig, routing: bool, progress: &mut dyn FnMut(u64)) -> Report {
    let n = cfg.nodes.max(2);
    let mut sim = Sim::new(cfg.seed);
    sim.default_link = Link {
        latency: cfg.latency,
        jitter: cfg.latency,
        loss: cfg.loss.clamp(0.0, 1.0),
    };
    let (topology_edges, points) = layout(cfg.topology, n, sim.rng());
    let (areas, regions) = cells(cfg, n, !points.is_empty());
    let node_cfg = TransportConfig {
        routing,
        route_areas: routing && areas > 1,
        max_hops: MAX_HOPS,
        // Lossy links: send routed datagrams twice (the flood has its own
        // redundancy; the reference sends once).
        mesh_copies: if routing && cfg.loss > 0.0 { 2 } else { 1 },
        discovery_enabled: true,
        limits: node_limits(),
        ..TransportConfig::default()
    };
    let accept_sim = AirlockRule {
        rule_id: "sim".into(),
        name: "simulated fleet".into(),
        pattern: RulePattern {
            source_did: Some("jis:sim:*".into()),
            ..RulePattern::default()
        },
        zone: AirlockZone::Groen,
        priority: 50,
    };
    let stagger = node_cfg.heartbeat_interval / n as u32;
    let mut fleet = Fleet::new(
        node_cfg,
        accept_sim,
        n,
        &topology_edges,
        cfg.churn,
        sim.now().mono,
    );
    for i in 0..n {
        fleet.add(&mut sim, i, name(i, areas, regions, &points));
        sim.run_for(stagger);
    }
    drop(points);
    for &(a, b) in &topology_edges {
        Fleet::commission(&mut sim, a, b);
    }
    let (control_start, control_sent, control_bytes) = (sim.now, sim.sent(), sim.sent_bytes());
    let tenths = cfg.warmup.as_secs() / 10;
    for step in 0..tenths {
        fleet.run_for(&mut sim, Duration::from_secs(10));
        progress(step + 1);
        if cfg.diagnostics {
            super::trace::warmup_line(&sim);
        }
    }
    fleet.run_for(&mut sim, cfg.warmup - Duration::from_secs(10 * tenths));
    let control_minutes = sim
        .now
        .saturating_duration_since(control_start)
        .as_secs_f64()
        / 60.0;
    let per_node_minute = |v: u64| v as f64 / n as f64 / control_minutes.max(1.0 / 60.0);
    let control_datagrams_per_node_minute = per_node_minute(sim.sent() - control_sent);
    let control_bytes_per_node_minute = per_node_minute(sim.sent_bytes() - control_bytes);

    let count = |sim: &Sim, fleet: &Fleet| -> (u64, Vec<u64>) {
        let now = sim.now();
        let mut hist = vec![0u64; crate::routes::INFINITY as usize + 1];
        let mut sent = fleet.departed_mesh_datagrams;
        for (_, e) in sim.engines() {
            let r = e.stats(now).routes;
            sent += r.mesh_datagrams;
            for (h, c) in hist.iter_mut().zip(r.mesh_relays_seen) {
                *h += c;
            }
        }
        (sent, hist)
    };
    let (sent_before, hist_before) = count(&sim, &fleet);
    // Pings in flight, and the round-trip times of those answered: outcomes
    // are taken as they come, so memory per ping is one latency, not a
    // request and its answer.
    let mut started: BTreeMap<(std::net::SocketAddr, RequestId), MonoTime> = BTreeMap::new();
    let mut latencies: Vec<Duration> = Vec::new();
    // Diagnostics: where each ping's routes lead, and which kinds fail.
    let mut trace = cfg.diagnostics.then(|| Trace::new(n, &topology_edges));
    let mut outcomes =
        |sim: &mut Sim, started: &mut BTreeMap<_, MonoTime>, trace: &mut Option<Trace>| {
            for (at, a, ev) in std::mem::take(&mut sim.events) {
                let (id, answered) = match ev {
                    Event::RequestAnswered { id, .. } => (id, true),
                    Event::RequestTimedOut { id } => (id, false),
                    _ => continue,
                };
                if let Some(t0) = started.remove(&(a, id))
                    && answered
                {
                    latencies.push(at.saturating_duration_since(t0));
                }
                if let Some(t) = trace.as_mut() {
                    t.outcome(a, id, answered);
                }
            }
        };
    let mut attempted = 0;
    let mut pairs = ping_pairs(cfg.seed, n);
    for k in 0..cfg.pings {
        let (mut src, mut dst) = pairs.next().expect("endless");
        // With churn, a node that is away is replaced by one present.
        if !sim.is_alive(src) {
            src = Fleet::pick(&mut sim, n, Some(dst));
        }
        if !sim.is_alive(dst) {
            dst = Fleet::pick(&mut sim, n, Some(src));
        }
        let now = sim.now();
        let target = sim.did_of(dst);
        attempted += 1;
        let sent = sim
            .node(src)
            .send_mesh_ping(now, &target, "sim.ping", "scenario", ping_options())
            .ok();
        if let Some(id) = sent {
            started.insert((super::addr(src), id), now.mono);
        }
        if let Some(t) = trace.as_mut() {
            t.sent(&sim, src, dst, sent, fleet.back());
        }
        fleet.run_for(&mut sim, cfg.ping_interval);
        outcomes(&mut sim, &mut started, &mut trace);
        progress(tenths + k as u64 + 1);
    }
    fleet.run_for(&mut sim, Duration::from_secs(11));
    outcomes(&mut sim, &mut started, &mut trace);
    if let Some(t) = &trace {
        t.print(&sim);
    }
    let (sent_after, hist_after) = count(&sim, &fleet);
    latencies.sort_unstable();
    let delivered = latencies.len();
    let hist: Vec<u64> = hist_after
        .iter()
        .zip(&hist_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let (p50_hops, p99_hops) = (percentile_hops(&hist, 50), percentile_hops(&hist, 99));
    let at = |q: usize| {
        if latencies.is_empty() {
            Duration::ZERO
        } else {
            latencies[((latencies.len() * q).div_ceil(100)).saturating_sub(1)]
        }
    };
    let (p50, p99) = (at(50), at(99));
    let routes: usize = sim.engines().map(|(_, e)| e.routes().len()).sum();
    Report {
        nodes: n,
        edges: topology_edges.len(),
        topology: cfg.topology,
        seed: cfg.seed,
        loss: cfg.loss,
        latency_ms: cfg.latency.as_secs_f64() * 1000.0,
        routing,
        attempted,
        delivered,
        delivery_ratio: if attempted == 0 {
            0.0
        } else {
            delivered as f64 / attempted as f64
        },
        transmissions_per_delivery: (sent_after - sent_before) as f64 / delivered.max(1) as f64,
        flood_transmissions_per_delivery: None,
        p50_hops,
        p99_hops,
        p50_latency_ms: p50.as_secs_f64() * 1000.0,
        p99_latency_ms: p99.as_secs_f64() * 1000.0,
        areas: areas * areas,
        regions: (regions > 1).then_some(regions * regions),
        churned_per_minute: fleet.per_minute(),
        control_datagrams_per_node_minute,
        control_bytes_per_node_minute,
        bytes_per_node_peak: sim.peak_bytes_per_node_second(),
        routes_per_node: routes as f64 / n as f64,
        virtual_seconds: sim
            .now
            .saturating_duration_since(MonoTime::ZERO)
            .as_secs_f64(),
    }
}

/// The links travelled by the `q`th percentile of the pings answered at
/// their targets, from a histogram by relays passed (index i: i relays).
fn percentile_hops(hist: &[u64], q: u64) -> u32 {
    let total: u64 = hist.iter().sum();
    let mut acc = 0;
    for (relays, c) in hist.iter().enumerate() {
        acc += c;
        if total > 0 && 100 * acc >= q * total {
            return relays as u32 + 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_estimate_covers_the_measured_runs_and_grows_with_the_size() {
        let at = |nodes, pings| {
            memory_estimate(&ScenarioConfig {
                nodes,
                pings,
                areas: Some(1),
                ..ScenarioConfig::default()
            })
        };
        // Measured peaks ([`memory_estimate`]): 200 MB flat at 1,000
        // nodes, 129 MB at 2,000 and 762 MB at 10,000 in areas (948 MB
        // with churn).
        assert!(at(1_000, 100) >= 200_400_000 && at(1_000, 100) < 260_000_000);
        let areas = |nodes| {
            memory_estimate(&ScenarioConfig {
                nodes,
                pings: 20,
                ..ScenarioConfig::default()
            })
        };
        assert!(areas(2_000) >= 129_500_000 && areas(2_000) < 260_000_000);
        assert!(areas(10_000) >= 948_000_000 && areas(10_000) < 1_500_000_000);
        assert!(
            areas(100_000) / 100_000 < 2 * (areas(10_000) / 10_000),
            "per node, areas grow with the square root of the mesh"
        );
        let regions = |nodes, areas, regions| {
            memory_estimate(&ScenarioConfig {
                nodes,
                pings: 20,
                areas: Some(areas),
                regions: Some(regions),
                ..ScenarioConfig::default()
            })
        };
        // 10,000 nodes in 25 regions of 4 areas: 759 MB measured.
        assert!(regions(10_000, 10, 5) >= 759_000_000);
        assert!(regions(10_000, 10, 5) < areas(10_000));
        assert!(
            regions(100_000, 32, 8) < regions(100_000, 18, 1) * 3 / 5,
            "regions hold the routes per node down"
        );
        assert_eq!(areas(100_000), regions(100_000, 32, 8), "the default there");
        // A flat mesh: routes stop at the table's capacity.
        let big = at(60_000, 100);
        assert_eq!(
            big,
            MEMORY_BASE
                + 60_000 * (MEMORY_PER_NODE + 2048 * MEMORY_PER_ROUTE)
                + 100 * MEMORY_PER_PING
        );
        assert!(at(60_000, 1_000_000) > big);
    }

    #[test]
    fn ping_pairs_are_two_nodes_each_and_follow_from_the_seed_alone() {
        let take = |seed, n| ping_pairs(seed, n).take(500).collect::<Vec<_>>();
        let pairs = take(1, 7);
        assert!(pairs.iter().all(|&(s, d)| s != d && s < 7 && d < 7));
        for end in 0..7 {
            assert!(
                pairs.iter().any(|&(s, d)| s == end || d == end),
                "{end} drawn"
            );
        }
        assert_eq!(pairs, take(1, 7));
        assert_ne!(pairs, take(2, 7));
        assert!(take(1, 2).iter().all(|&p| p == (0, 1) || p == (1, 0)));
    }

    #[test]
    fn beyond_twenty_thousand_nodes_areas_of_about_a_hundred_sit_in_regions_of_sixteen() {
        assert_eq!(auto_regions(10_000), (10, 1));
        assert_eq!(auto_regions(20_000), (12, 1));
        assert_eq!(auto_regions(20_001), (14, 4));
        assert_eq!(auto_regions(100_000), (32, 8));
        let cfg = ScenarioConfig::default();
        assert_eq!(cells(&cfg, 20_001, true), (16, 4), "whole cells per region");
        assert_eq!(cells(&cfg, 100_000, false), (1, 1), "not geometric: flat");
        let chosen = ScenarioConfig {
            areas: Some(18),
            ..ScenarioConfig::default()
        };
        assert_eq!(
            cells(&chosen, 100_000, true),
            (18, 1),
            "areas chosen: no regions"
        );
    }
}
