//! `tibet-iot sim`: the deterministic simulation of a whole network of real
//! engines on a virtual clock, for planning a deployment before installing
//! it. Topology, warm-up and the measured pings are
//! `tibet_iot::sim::scenario`; this file parses flags and formats.
//!
//! The same flags give byte-identical output, except `wall_seconds`
//! (leave it out with `--no-wall-clock`).
//!
//! Before it starts, a run's memory is estimated
//! ([`scenario::memory_estimate`]) and compared with what the machine has
//! available (`MemAvailable`, and the cgroup's limit when one is set) or
//! with `--memory-limit`: a run that cannot fit is refused with both
//! figures and the number of nodes that would fit, instead of aborting
//! half-way. `--pings` is at most [`MAX_PINGS`].

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tibet_iot::sim::scenario::{self, Report, ScenarioConfig, Topology};

/// Most mesh pings one run measures (a ping every 100 ms of virtual time:
/// about 28 virtual hours).
pub(crate) const MAX_PINGS: u32 = 1_000_000;

/// `on` or `off`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// Network shapes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Radio-like: random points in the unit square, linked within the
    /// radius that connects them.
    Geometric,
    /// A random tree plus random extra links.
    Random,
    /// A chain.
    Line,
    /// A square grid.
    Grid,
    /// One hub linked to everyone.
    Star,
}

/// Arguments of `sim`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example: tibet-iot sim --nodes 1000 --loss 0.1 --seed 7 --json\n\
                  Same flags, same output (except wall_seconds)."
)]
pub(crate) struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=200_000))]
    nodes: u32,
    /// How the nodes are linked.
    #[arg(long, value_enum, default_value_t = Shape::Geometric)]
    topology: Shape,
    /// Probability that a datagram is lost on a link (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    loss: f64,
    /// Latency of every link in ms (jitter up to the same again).
    #[arg(long, default_value_t = 1.0, value_parser = latency)]
    latency_ms: f64,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Mesh pings between random pairs after the warm-up (at most
    /// 1,000,000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_PINGS)))]
    pings: u32,
    /// Learned routing; `off` floods every mesh ping to every peer.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    routing: OnOff,
    /// Virtual seconds of heartbeats and discovery before the pings.
    #[arg(long, default_value_t = 300)]
    warmup_s: u32,
    /// Areas per side of the square (geometric topology): a node's DID
    /// names its cell and routes go to areas outside its own; 1: one flat
    /// mesh. Default: flat up to 1,500 nodes, else n^(1/4) per side (see
    /// --regions beyond 20,000 nodes).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    areas: Option<u32>,
    /// Regions per side (geometric topology, with areas): each holds whole
    /// areas, a DID names both, and a node keeps routes to its own area's
    /// nodes, its region's other areas and the other regions. Default:
    /// none up to 20,000 nodes, else areas of about 100 nodes in regions
    /// of 4 x 4 areas (when --areas is not given either).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    regions: Option<u32>,
    /// Share of the nodes that leave per virtual minute and come back the
    /// minute after (0..0.5), e.g. 0.05.
    #[arg(long, default_value_t = 0.0, value_parser = churn)]
    churn: f64,
    /// Virtual ms between two measured pings.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=3_600_000))]
    ping_interval_ms: u32,
    /// Skip the second run with routing off (no
    /// flood_transmissions_per_delivery).
    #[arg(long)]
    no_baseline: bool,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Leave wall_seconds out (for comparing runs byte for byte).
    #[arg(long)]
    no_wall_clock: bool,
    /// Refuse a run estimated to need more than this many MiB (default:
    /// the memory available on this machine).
    #[arg(long, value_name = "MIB")]
    memory_limit: Option<u64>,
}

const MIB: u64 = 1024 * 1024;

/// `bytes` for people: MiB below 1 GiB, else GiB with one decimal.
fn size(bytes: u64) -> String {
    if bytes < 1024 * MIB {
        format!("{} MiB", bytes.div_ceil(MIB))
    } else {
        format!("{:.1} GiB", bytes as f64 / (1024 * MIB) as f64)
    }
}

/// The value in kB of `key` in a `/proc/meminfo` text, in bytes.
fn meminfo(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Memory this process may still use: the machine's available memory, or
/// what is left under the cgroup's limit when that is smaller; with where
/// the figure comes from. `None` where neither can be read.
fn available_memory() -> Option<(u64, &'static str)> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| meminfo(&t, "MemAvailable:"));
    let read = |p: &str| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok();
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .map(|max| max.saturating_sub(read("/sys/fs/cgroup/memory.current").unwrap_or(0)));
    match (machine, cgroup) {
        (Some(m), Some(c)) if c < m => Some((c, "left under this cgroup's memory.max")),
        (Some(m), _) => Some((m, "available on this machine")),
        (None, Some(c)) => Some((c, "left under this cgroup's memory.max")),
        (None, None) => None,
    }
}

/// Refuses `cfg` when its estimated memory exceeds `limit` (or what the
/// machine has available), saying both and how many nodes would fit.
fn check_memory(cfg: &ScenarioConfig, limit: Option<u64>) -> Result<()> {
    let need = scenario::memory_estimate(cfg);
    let (have, what) = match limit {
        Some(mib) => (mib.saturating_mul(MIB), "allowed by --memory-limit"),
        None => match available_memory() {
            Some(found) => found,
            None => {
                tracing::warn!("sim: cannot read the memory available; not checked");
                return Ok(());
            }
        },
    };
    if need <= have {
        return Ok(());
    }
    let fits = |nodes: usize| {
        scenario::memory_estimate(&ScenarioConfig {
            nodes,
            ..cfg.clone()
        }) <= have
    };
    let (mut lo, mut hi) = (1, cfg.nodes);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let advice = if lo >= 2 && fits(lo) {
        format!("at most {lo} nodes fit")
    } else {
        "not even 2 nodes fit".to_owned()
    };
    bail!(
        "sim: {} nodes and {} pings need about {} of memory; {} {}: {advice}",
        cfg.nodes,
        cfg.pings,
        size(need),
        size(have),
        what
    )
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a probability between 0 and 1")),
    }
}

fn churn(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(c) if (0.0..=0.5).contains(&c) => Ok(c),
        _ => Err(format!("{s:?} is not a share of nodes between 0 and 0.5")),
    }
}

fn latency(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(ms) if (0.0..=60_000.0).contains(&ms) => Ok(ms),
        _ => Err(format!("{s:?} is not a latency in ms (0 to 60000)")),
    }
}

#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    report: &'a Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    wall_seconds: Option<f64>,
}

/// How often a run without a terminal prints a progress line.
const PLAIN_PROGRESS: Duration = Duration::from_secs(5);

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let cfg = ScenarioConfig {
        nodes: args.nodes as usize,
        topology: match args.topology {
            Shape::Geometric => Topology::Geometric,
            Shape::Random => Topology::Random,
            Shape::Line => Topology::Line,
            Shape::Grid => Topology::Grid,
            Shape::Star => Topology::Star,
        },
        loss: args.loss,
        latency: Duration::from_secs_f64(args.latency_ms / 1000.0),
        seed: args.seed,
        pings: args.pings as usize,
        routing: args.routing == OnOff::On,
        warmup: Duration::from_secs(args.warmup_s.into()),
        baseline: !args.no_baseline,
        areas: args.areas.map(|a| a as usize),
        regions: args.regions.map(|r| r as usize),
        churn: args.churn,
        ping_interval: Duration::from_millis(args.ping_interval_ms.into()),
        // A developer's switch, not a flag: docs/PERFORMANCE.md.
        diagnostics: std::env::var_os("SCENARIO_DEBUG").is_some(),
    };
    check_memory(&cfg, args.memory_limit)?;
    // Without a terminal on stderr there is no bar: a plain line now and
    // then says the run is alive (a large network takes a while).
    let plain = !std::io::stderr().is_terminal();
    if plain {
        eprintln!(
            "sim: {} nodes, {} pings; progress every {} s on stderr",
            cfg.nodes,
            cfg.pings,
            PLAIN_PROGRESS.as_secs()
        );
    }
    let mut last_line = Instant::now();
    let bar = if args.json || plain {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} simulating [{bar:40}] {percent}% {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    };
    let started = Instant::now();
    let report = scenario::run(&cfg, &mut |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
        if plain && last_line.elapsed() >= PLAIN_PROGRESS {
            last_line = Instant::now();
            eprintln!(
                "sim: {:.0} % after {:.0} s",
                p.done as f64 * 100.0 / p.total.max(1) as f64,
                started.elapsed().as_secs_f64()
            );
        }
    });
    bar.finish_and_clear();
    let wall = (!args.no_wall_clock).then(|| started.elapsed().as_secs_f64());
    if args.json {
        let out = Output {
            report: &report,
            wall_seconds: wall,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print_summary(&report, wall);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(r: &Report, wall: Option<f64>) {
    println!(
        "{} nodes, {} links ({}), loss {:.0} %, latency {} ms, seed {}, routing {}",
        r.nodes,
        r.edges,
        // The flag's spelling (`geometric`), as the JSON report has it.
        serde_json::to_value(r.topology)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        r.loss * 100.0,
        r.latency_ms,
        r.seed,
        if r.routing { "on" } else { "off" }
    );
    println!(
        "answered      {}/{} mesh pings ({:.1} %)",
        r.delivered,
        r.attempted,
        r.delivery_ratio * 100.0
    );
    match r.flood_transmissions_per_delivery {
        Some(f) => println!(
            "datagrams     {:.1} per answered ping (flooding: {:.1}, {:.1}x more)",
            r.transmissions_per_delivery,
            f,
            f / r.transmissions_per_delivery.max(f64::MIN_POSITIVE)
        ),
        None => println!(
            "datagrams     {:.1} per answered ping",
            r.transmissions_per_delivery
        ),
    }
    let regions = r
        .regions
        .map(|g| format!(" in {g} regions"))
        .unwrap_or_default();
    println!(
        "path          median {} links, p99 {} ({} areas{regions})",
        r.p50_hops, r.p99_hops, r.areas
    );
    println!(
        "round trip    median {:.1} ms, p99 {:.1} ms (virtual)",
        r.p50_latency_ms, r.p99_latency_ms
    );
    println!(
        "control       {:.1} datagrams, {:.0} bytes per node per minute",
        r.control_datagrams_per_node_minute, r.control_bytes_per_node_minute
    );
    if r.churned_per_minute > 0 {
        println!(
            "churn         {} nodes left and came back per minute",
            r.churned_per_minute
        );
    }
    println!(
        "busiest node  {} bytes in one second; {:.0} routes per node",
        r.bytes_per_node_peak, r.routes_per_node
    );
    match wall {
        Some(w) => println!(
            "time          {:.0} s virtual in {:.1} s",
            r.virtual_seconds, w
        ),
        None => println!("time          {:.0} s virtual", r.virtual_seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_sizes_read_and_print() {
        let text = "MemTotal:       24683772 kB\nMemAvailable:   22822224 kB\n";
        assert_eq!(meminfo(text, "MemAvailable:"), Some(22_822_224 * 1024));
        assert_eq!(meminfo(text, "Nope:"), None);
        assert_eq!(size(5 * MIB + 1), "6 MiB");
        assert_eq!(size(3 * 1024 * MIB / 2), "1.5 GiB");
    }
}
