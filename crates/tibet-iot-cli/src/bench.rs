//! `tibet-iot bench`: a load generator against any listener (ours or the
//! Python reference). It keeps C pings in flight from one thread and one
//! socket (`bench_load.rs`) and reports answered pings per second, lost
//! pings, RTT percentiles and its own CPU time per answered ping, so a run
//! shows whether it measured the listener or itself.
//!
//! The listener must trust `--my-did` (GROEN or GEEL), or every ping is
//! dropped silently. When nothing of the first window is answered, the run
//! stops early with a hint and exit status 3, or 4 when the pings came back
//! as ICMP port unreachable (nothing listens there). Ctrl-C stops the run
//! and prints what was measured so far (exit status 130).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use nix::sys::resource::{UsageWho, getrusage};
use serde::Serialize;
use tibet_ping::{BROADCAST, PacketCodec};
use tokio::signal::unix::{SignalKind, signal};

use crate::bench_load::{self, Plan, Tally};
use crate::bench_wire::PingTemplate;
use crate::parse;
use crate::rtt_stats::Summary;

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
    /// How to wait for answers: `spin` busy-polls (measures the listener's
    /// latency, costs a core), `block` sleeps in the kernel; `auto` spins
    /// with one ping in flight only.
    #[arg(long, value_enum, default_value_t = Poll::Auto)]
    poll: Poll,
    /// Encode the pings as msgpack.
    #[arg(long)]
    msgpack: bool,
    /// Sign every ping with this Ed25519 key file (for a listener that pins
    /// `--my-did`); the unsigned path is unchanged without it.
    #[arg(long, value_name = "FILE")]
    key: Option<std::path::PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// How the client waits for answers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Poll {
    /// `spin` at `-c 1`, else `block`.
    Auto,
    /// Busy-poll (up to 2 ms per wait, then block).
    Spin,
    /// Block in the kernel.
    Block,
}

/// The outcome of a run.
#[derive(Debug, Serialize)]
struct Report {
    target: String,
    sent: u64,
    answered: u64,
    lost: u64,
    errors: u64,
    /// Pings still unanswered when Ctrl-C stopped the run.
    in_flight: u64,
    /// Answers that came after their ping was counted lost.
    late: u64,
    /// Responses that were no valid answer to our pings.
    invalid: u64,
    /// Datagrams that were not responses (e.g. heartbeats).
    unsolicited: u64,
    elapsed_s: f64,
    answered_per_s: f64,
    concurrency: u32,
    /// `spin` or `block`.
    poll: &'static str,
    /// This process's CPU time (user + system) during the run, in seconds.
    client_cpu_s: f64,
    /// That CPU time divided by the answered pings, in microseconds.
    client_cpu_us_per_ping: Option<f64>,
    /// ICMP errors for our pings (port unreachable: nothing listens).
    unreachable: u64,
    /// Stopped early because nothing was answered.
    gave_up: bool,
    /// Stopped by Ctrl-C.
    interrupted: bool,
    rtt: Option<Summary>,
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Result<Duration> {
    let u = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(tv(u.user_time()) + tv(u.system_time()))
}

/// Runs `bench`.
pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    let my_did = parse::did(&args.my_did)?;
    let target = parse::target_did(&args.target)?;
    let addr = parse::host_port(&args.addr)?;
    if args.duration.is_none() && args.count == 0 {
        bail!("-n must be at least 1");
    }
    let codec = PacketCodec::new(args.msgpack);
    let key = match &args.key {
        Some(path) => Some(tibet_ping::identity::Keypair::load(path)?),
        None => None,
    };
    let spin = match args.poll {
        Poll::Auto => args.concurrency == 1,
        Poll::Spin => true,
        Poll::Block => false,
    };
    let plan = Plan {
        addr,
        port: args.port,
        concurrency: args.concurrency as usize,
        count: args.duration.is_none().then_some(args.count),
        duration: args.duration,
        timeout: args.timeout,
        spin,
        template: PingTemplate::new(codec, &my_did, &target, &args.intent, key)?,
        codec,
    };
    let (bar, style) = match args.duration {
        Some(d) => (
            ProgressBar::new(d.as_secs().max(1)),
            "{bar:40} {pos}/{len} s {msg}",
        ),
        None => (ProgressBar::new(args.count), "{bar:40} {pos}/{len} {msg}"),
    };
    bar.set_style(ProgressStyle::with_template(style).expect("valid template"));

    let stop = Arc::new(AtomicBool::new(false));
    // Installed before the load starts, so an early Ctrl-C is never lost.
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    eprintln!(
        "bench: {addr}, {} in flight (Ctrl-C stops with a partial report)",
        args.concurrency
    );
    let cpu_before = cpu_time()?;
    let mut load = tokio::task::spawn_blocking({
        let (stop, bar) = (stop.clone(), bar.clone());
        move || bench_load::run(plan, stop, bar)
    });
    let tally = tokio::select! {
        done = &mut load => done,
        _ = interrupt.recv() => {
            stop.store(true, Ordering::Relaxed);
            load.await
        }
    }
    .context("the bench thread failed")??;
    let cpu = cpu_time()?.saturating_sub(cpu_before);
    bar.finish_and_clear();
    let report = report(&args, addr, spin, cpu, tally);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    let unreachable = report.answered == 0 && report.unreachable > 0;
    if unreachable {
        eprintln!(
            "nothing is listening at {addr} ({} ICMP port unreachable): is the listener \
             running, and on this port?",
            report.unreachable
        );
    } else if report.gave_up {
        eprintln!(
            "0 of the first {} pings answered and no ICMP error came back: a silent drop \
             (does the listener trust {my_did}, and is --target its DID or broadcast?), \
             or a host that is down or behind a firewall",
            report.sent
        );
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if report.answered > 0 {
        ExitCode::SUCCESS
    } else if unreachable {
        ExitCode::from(crate::send::EXIT_UNREACHABLE)
    } else {
        ExitCode::from(crate::send::EXIT_NO_RESPONSE)
    })
}

fn report(
    args: &Args,
    addr: std::net::SocketAddr,
    spin: bool,
    cpu: Duration,
    mut t: Tally,
) -> Report {
    let elapsed = t.elapsed.as_secs_f64();
    Report {
        target: addr.to_string(),
        sent: t.sent,
        answered: t.answered,
        lost: t.lost,
        errors: t.errors,
        in_flight: t.in_flight,
        late: t.late,
        invalid: t.invalid,
        unsolicited: t.unsolicited,
        elapsed_s: elapsed,
        answered_per_s: t.answered as f64 / elapsed.max(1e-9),
        concurrency: args.concurrency,
        poll: if spin { "spin" } else { "block" },
        client_cpu_s: cpu.as_secs_f64(),
        client_cpu_us_per_ping: (t.answered > 0)
            .then(|| cpu.as_secs_f64() * 1e6 / t.answered as f64),
        unreachable: t.unreachable,
        gave_up: t.gave_up,
        interrupted: t.interrupted,
        rtt: t.rtts.summary(),
    }
}

fn print_report(r: &Report) {
    if r.interrupted {
        println!("interrupted: partial results");
    }
    println!(
        "{} pings to {} in {:.2}s with {} in flight",
        r.sent, r.target, r.elapsed_s, r.concurrency
    );
    println!("answered: {} ({:.0}/s)", r.answered, r.answered_per_s);
    println!("lost:     {} (no answer within the timeout)", r.lost);
    if r.in_flight > 0 {
        println!("pending:  {} (in flight when stopped)", r.in_flight);
    }
    if r.errors > 0 {
        println!("errors:   {}", r.errors);
    }
    if r.late > 0 || r.invalid > 0 {
        println!("late:     {}, invalid: {}", r.late, r.invalid);
    }
    match &r.rtt {
        Some(s) => println!(
            "RTT ms:   p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        ),
        None if r.unreachable > 0 => println!("RTT:      no answers (port unreachable)"),
        None => println!("RTT:      no answers (a silent drop: does the listener trust this DID?)"),
    }
    if let Some(us) = r.client_cpu_us_per_ping {
        println!("client CPU: {us:.2} µs per answered ping ({} wait)", r.poll);
    }
}
