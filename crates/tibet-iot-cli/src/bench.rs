//! `tibet-iot bench`: a load generator against any listener (ours or the
//! Python reference). C workers each keep one ping in flight; the report
//! gives answered pings per second, lost pings and RTT percentiles.
//!
//! The listener must trust `--my-did` (GROEN or GEEL), or every ping is
//! dropped silently and counted as lost.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tibet_ping::{BROADCAST, RoutingMode};

use crate::node::{Node, Outgoing};
use crate::parse;
use crate::settings::{NetFlags, Settings};
use crate::stats::{Rtts, Summary};

/// Arguments of `bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The listener, HOST:PORT.
    #[arg(value_name = "HOST:PORT")]
    addr: String,
    /// Our DID (the listener must trust it).
    #[arg(long, value_name = "DID")]
    my_did: String,
    /// The listener's DID (default `broadcast`, which every node answers).
    #[arg(long, value_name = "DID", default_value = BROADCAST)]
    target: String,
    /// Number of pings (ignored with --duration).
    #[arg(short = 'n', long = "count", default_value_t = 10_000)]
    count: u64,
    /// Pings in flight at once.
    #[arg(short = 'c', long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Run for this many seconds instead of a fixed count.
    #[arg(long, value_name = "S", value_parser = parse::seconds)]
    duration: Option<Duration>,
    /// Seconds after which a ping counts as lost.
    #[arg(long, value_name = "S", default_value = "2", value_parser = parse::seconds)]
    timeout: Duration,
    /// Intent of the pings.
    #[arg(long, default_value = "bench.ping")]
    intent: String,
    /// Local UDP port (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: NetFlags,
}

/// The outcome of a run.
#[derive(Debug, Serialize)]
struct Report {
    target: String,
    sent: u64,
    answered: u64,
    lost: u64,
    errors: u64,
    elapsed_s: f64,
    answered_per_s: f64,
    concurrency: u32,
    rtt: Option<Summary>,
}

/// Runs `bench`.
pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    let my_did = parse::did(&args.my_did)?;
    let target = parse::target_did(&args.target)?;
    let addr = parse::host_port(&args.addr)?;
    if args.duration.is_none() && args.count == 0 {
        bail!("-n must be at least 1");
    }
    let node = Arc::new(Node::start(&Settings::client(my_did, args.port, &args.net)).await?);
    let bar = match args.duration {
        Some(d) => ProgressBar::new(d.as_secs().max(1)),
        None => ProgressBar::new(args.count),
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("valid template"),
    );
    let tickets = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + d);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (node, tickets, answered, lost, errors, bar) = (
            node.clone(),
            tickets.clone(),
            answered.clone(),
            lost.clone(),
            errors.clone(),
            bar.clone(),
        );
        let (target, intent, timeout, count) = (
            target.clone(),
            args.intent.clone(),
            args.timeout,
            args.count,
        );
        let by_count = deadline.is_none();
        workers.push(tokio::spawn(async move {
            let mut rtts = Rtts::default();
            loop {
                match deadline {
                    Some(end) if Instant::now() >= end => break,
                    _ => {}
                }
                let ticket = tickets.fetch_add(1, Ordering::Relaxed);
                if by_count && ticket >= count {
                    break;
                }
                let t0 = Instant::now();
                let out = Outgoing {
                    target: target.clone(),
                    addr,
                    intent: intent.clone(),
                    purpose: "tibet-iot bench".into(),
                    payload: Default::default(),
                    routing: RoutingMode::Direct,
                    timeout,
                };
                match node.send(out).await {
                    Ok(Some(_)) => {
                        rtts.push(t0.elapsed());
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(None) => {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::debug!("bench send failed: {e:#}");
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if by_count {
                    bar.inc(1);
                }
            }
            rtts
        }));
    }
    let ticker = deadline.map(|_| {
        let bar = bar.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                bar.inc(1);
            }
        })
    });
    let mut rtts = Rtts::default();
    for w in workers {
        rtts.merge(w.await?);
    }
    if let Some(t) = ticker {
        t.abort();
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    if let Ok(node) = Arc::try_unwrap(node) {
        node.stop().await;
    }
    let answered = answered.load(Ordering::Relaxed);
    let lost = lost.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    let report = Report {
        target: addr.to_string(),
        sent: answered + lost + errors,
        answered,
        lost,
        errors,
        elapsed_s: elapsed.as_secs_f64(),
        answered_per_s: answered as f64 / elapsed.as_secs_f64().max(1e-9),
        concurrency: args.concurrency,
        rtt: rtts.summary(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if answered > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn print_report(r: &Report) {
    println!(
        "{} pings to {} in {:.2}s with {} in flight",
        r.sent, r.target, r.elapsed_s, r.concurrency
    );
    println!("answered: {} ({:.0}/s)", r.answered, r.answered_per_s);
    println!("lost:     {} (no answer within the timeout)", r.lost);
    if r.errors > 0 {
        println!("errors:   {}", r.errors);
    }
    match &r.rtt {
        Some(s) => println!(
            "RTT ms:   p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        ),
        None => println!("RTT:      no answers (does the listener trust this DID?)"),
    }
}
