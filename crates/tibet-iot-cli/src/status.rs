//! `tibet-iot status --control SOCKET`: a readable snapshot of a running
//! `listen` through its control socket (the `stats`, `list` and `peers`
//! ops): identity, peers, pending reviews and counters with rates from two
//! samples. `--json` gives the same data; `--watch` refreshes like `top`.
//!
//! Everything shown that a sender chose (DIDs, intents) passes through
//! [`clean`], so a hostile packet cannot move the cursor or recolour the
//! operator's terminal.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::Value;
use tibet_iot::IoTNode;

pub(crate) use crate::control::PeerItem;
use crate::control::{self, PendingItem, Request};
use crate::output::safe;
use crate::parse;

/// Arguments of `status`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The listener's control socket (`listen --control SOCKET`).
    #[arg(long, value_name = "SOCKET")]
    control: PathBuf,
    /// Print the snapshot as JSON (one object per refresh).
    #[arg(long)]
    json: bool,
    /// Refresh until interrupted, like `top`.
    #[arg(long)]
    watch: bool,
    /// Seconds between the two samples that give the rates (and between
    /// refreshes with --watch).
    #[arg(long, value_name = "S", default_value = "1", value_parser = parse::seconds)]
    interval: Duration,
    /// With --watch: stop after this many refreshes.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// The node side of the `peers` op.
pub(crate) fn peer_items(node: &IoTNode) -> Vec<PeerItem> {
    let now = node.clock();
    let peers = node.peers();
    peers
        .iter()
        .map(|p| {
            let trust = node.trust_of(&p.did);
            let idle = p.idle(now.mono);
            PeerItem {
                did: p.did.to_string(),
                address: p.address.to_string(),
                last_seen: (now.wall - idle).to_iso(),
                idle_secs: idle.as_secs_f64(),
                packets: p.packet_count,
                trust,
                zone: node.threshold_zone(trust).to_string(),
                key_fingerprint: node.key_fingerprint(&p.did),
                route: node
                    .route_to(&p.did)
                    .map(|(hop, hops)| format!("{hop} ({hops} hops)")),
            }
        })
        .collect()
}

/// Counters shown with rates: (label, path in the `stats` JSON).
const COUNTERS: &[(&str, &str)] = &[
    ("datagrams in", "engine/datagrams_in"),
    ("datagrams out", "engine/datagrams_out"),
    ("pings received", "ping/received"),
    ("accepted (GROEN)", "ping/accepted"),
    ("pending (GEEL)", "ping/pending"),
    ("rejected (ROOD)", "ping/rejected"),
    ("replays", "ping/replays"),
    ("malformed", "engine/malformed"),
    ("relayed", "relay/relayed"),
    ("requests sent", "engine/requests_sent"),
    ("requests timed out", "engine/requests_timed_out"),
    ("send errors", "driver/send_errors"),
];

/// The identity gate (docs/PROTOCOL.md section 6): what it verified and
/// what it refused, by reason.
const IDENTITY: &[(&str, &str)] = &[
    ("verified (pinned key)", "identity/verified"),
    ("self-certified beacons", "identity/self_certified"),
    ("unpinned, let through", "identity/unpinned"),
    ("refused: unsigned", "identity/unsigned"),
    ("refused: bad signature", "identity/bad_signature"),
    ("refused: wrong key", "identity/wrong_key"),
    (
        "refused: unpinned (require)",
        "identity/unpinned_in_require",
    ),
    ("refused: bad beacon key", "identity/bad_beacon_key"),
    ("answers verified", "identity/responses_verified"),
    ("answers refused", "identity/responses_refused"),
    ("pins added (first use)", "identity/pins_added"),
    ("pin conflicts", "identity/pin_conflicts"),
];

/// One counter with its rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Counter {
    name: &'static str,
    total: u64,
    per_second: f64,
}

/// What `status` shows.
#[derive(Debug, Clone, Serialize)]
struct Snapshot {
    did: String,
    peers: Vec<PeerItem>,
    pending: Vec<PendingItem>,
    counters: Vec<Counter>,
    identity: Vec<Counter>,
    interval_secs: f64,
}

/// The counters at `paths` with their rates from `before` to `now`.
fn with_rates(
    paths: &[(&'static str, &str)],
    now: &Value,
    before: &Value,
    dt: f64,
) -> Vec<Counter> {
    paths
        .iter()
        .map(|(name, path)| {
            let total = num(now, path);
            let delta = total.saturating_sub(num(before, path));
            Counter {
                name,
                total,
                per_second: if dt > 0.0 { delta as f64 / dt } else { 0.0 },
            }
        })
        .collect()
}

/// A number at a `/`-separated path of the `stats` answer (0 when absent).
/// The answer is JSON from another process (the control socket), so the
/// counters are read by path here; `every_path_names_a_stats_field` keeps
/// the paths in step with the stats structs.
fn num(stats: &Value, path: &str) -> u64 {
    let mut v = stats;
    for key in path.split('/') {
        match v.get(key) {
            Some(next) => v = next,
            None => return 0,
        }
    }
    v.as_u64().unwrap_or(0)
}

fn ask(socket: &std::path::Path, request: &Request) -> Result<control::Response> {
    let r = control::call(socket, request)?;
    if !r.ok {
        bail!("{}", r.error.unwrap_or_else(|| "request failed".into()));
    }
    Ok(r)
}

fn stats(socket: &std::path::Path) -> Result<(Value, Instant)> {
    let r = ask(socket, &Request::Stats)?;
    let at = Instant::now();
    match r.stats {
        Some(s) => Ok((s, at)),
        None => bail!("the listener sent stats without content"),
    }
}

/// A snapshot whose rates run from `before` to now.
fn snapshot(
    socket: &std::path::Path,
    before: &(Value, Instant),
) -> Result<(Snapshot, Value, Instant)> {
    let (now, at) = stats(socket)?;
    let peers = ask(socket, &Request::Peers)?.peers.unwrap_or_default();
    let pending = ask(socket, &Request::List)?.pending.unwrap_or_default();
    let dt = at.duration_since(before.1).as_secs_f64();
    let counters = with_rates(COUNTERS, &now, &before.0, dt);
    let identity = with_rates(IDENTITY, &now, &before.0, dt);
    let did = now
        .get("did")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok((
        Snapshot {
            did,
            peers,
            pending,
            counters,
            identity,
            interval_secs: dt,
        },
        now,
        at,
    ))
}

fn ago(secs: f64) -> String {
    match secs {
        s if s < 120.0 => format!("{s:.0}s ago"),
        s if s < 7200.0 => format!("{:.0}m ago", s / 60.0),
        s => format!("{:.1}h ago", s / 3600.0),
    }
}

fn render(s: &Snapshot) -> String {
    let mut out = format!("node {}\n\n", safe(&s.did));
    out += &format!("peers ({})\n", s.peers.len());
    if !s.peers.is_empty() {
        let rows: Vec<[String; 8]> = s
            .peers
            .iter()
            .map(|p| {
                [
                    safe(&p.did),
                    safe(&p.address),
                    ago(p.idle_secs),
                    format!("{:.2}", p.trust),
                    p.zone.clone(),
                    p.packets.to_string(),
                    p.key_fingerprint.clone().unwrap_or_else(|| "-".into()),
                    p.route.as_deref().map_or_else(|| "-".into(), safe),
                ]
            })
            .collect();
        out += &crate::output::render_table(
            &[
                "DID",
                "ADDRESS",
                "LAST SEEN",
                "TRUST",
                "ZONE",
                "PACKETS",
                "KEY",
                "ROUTE",
            ],
            &rows,
        );
    }
    out += &format!("\npending reviews ({})\n", s.pending.len());
    if !s.pending.is_empty() {
        let rows: Vec<[String; 5]> = s.pending.iter().map(crate::pending::cells).collect();
        out += &crate::output::render_table(&["ID", "FROM", "INTENT", "TRUST", "RECEIVED"], &rows);
    }
    out += &format!("\ncounters (rates over {:.1}s)\n", s.interval_secs);
    out += &counter_table(&s.counters);
    out += "\nidentity\n";
    out += &counter_table(&s.identity);
    out
}

fn counter_table(counters: &[Counter]) -> String {
    let rows: Vec<[String; 3]> = counters
        .iter()
        .map(|c| {
            [
                c.name.to_owned(),
                c.total.to_string(),
                format!("{:.1}/s", c.per_second),
            ]
        })
        .collect();
    crate::output::render_table(&["COUNTER", "TOTAL", "RATE"], &rows)
}

/// Runs `status`.
pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let mut before = stats(&args.control)?;
    let mut shown = 0u64;
    let mut stdout = std::io::stdout();
    loop {
        std::thread::sleep(args.interval);
        let (snap, now, at) = snapshot(&args.control, &before)?;
        if args.json {
            writeln!(stdout, "{}", serde_json::to_string(&snap)?)?;
        } else {
            if args.watch {
                // Clear the screen and home the cursor, like `top`.
                write!(stdout, "\x1b[2J\x1b[H")?;
            }
            write!(stdout, "{}", render(&snap))?;
        }
        stdout.flush()?;
        shown += 1;
        if !args.watch || args.count.is_some_and(|n| shown >= n) {
            return Ok(ExitCode::SUCCESS);
        }
        before = (now, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_strings_are_escaped_and_capped() {
        let evil = "x\x1b[2J\ry";
        let s = Snapshot {
            did: "jis:a:b".into(),
            peers: Vec::new(),
            pending: vec![PendingItem {
                id: format!("ping_{evil}"),
                source_did: format!("jis:e:{evil}"),
                intent: "i".repeat(300),
                purpose: String::new(),
                trust: 0.5,
                zone: "GEEL".into(),
                received_at: evil.into(),
            }],
            counters: Vec::new(),
            identity: Vec::new(),
            interval_secs: 1.0,
        };
        let text = render(&s);
        assert!(!text.contains(['\x1b', '\r']), "{text:?}");
        assert!(text.contains("ping_x\\u{1b}[2J\\u{d}y"), "{text}");
        assert!(!text.contains(&"i".repeat(121)), "capped: {text}");
    }

    /// A renamed or removed field of the node's stats fails here instead
    /// of reading as 0 in `status`.
    #[test]
    fn every_path_names_a_stats_field() {
        let node = IoTNode::new("jis:a:b", tibet_iot::TransportConfig::loopback());
        let stats = serde_json::to_value(node.stats()).unwrap();
        for (name, path) in COUNTERS.iter().chain(IDENTITY) {
            let v = stats.pointer(&format!("/{path}"));
            assert!(v.is_some_and(Value::is_u64), "{name}: no number at {path}");
        }
    }

    #[test]
    fn rates_come_from_two_samples() {
        let a = serde_json::json!({"ping": {"received": 10}});
        let b = serde_json::json!({"ping": {"received": 40}});
        assert_eq!(num(&b, "ping/received") - num(&a, "ping/received"), 30);
        assert_eq!(num(&a, "ping/nothing"), 0);
        assert_eq!(ago(5.0), "5s ago");
        assert_eq!(ago(600.0), "10m ago");
    }
}
