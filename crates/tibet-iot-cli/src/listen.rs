//! `tibet-iot listen`: run a node until Ctrl-C or SIGTERM, printing one line
//! per decided ping and per discovery.
//!
//! Every string a sender chose is passed through [`output::safe`] before it
//! is printed. Drop lines (reject, replay, misaddressed) are limited per
//! second with a summary of what was left out; identity refusals are summed
//! into at most one line per second; heartbeats from untrusted peers are
//! only counted; a discovery heard twice in a moment prints once. Unless
//! `--events all`, routine traffic of trusted peers (heartbeats answered
//! GROEN, a peer discovered again at the same address with the same
//! decision) is counted, not printed, and summed up at stop.

use std::collections::VecDeque;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::control;
use crate::logging::{self, LogFormat};
use crate::node_handle::{Event, Node};
use crate::output::safe;
use crate::settings::ListenFlags;

/// Which events `listen` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Events {
    /// Accepted and pending pings, discoveries and reviews.
    Accepted,
    /// Every decided ping (drops limited per second), identity refusals,
    /// discoveries and reviews; routine traffic of trusted peers
    /// (heartbeats, repeat discoveries) is only counted.
    Decisions,
    /// As `decisions`, plus every heartbeat and repeat discovery.
    All,
    /// Only reviews made through the control socket.
    None,
}

/// Arguments of `listen`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    flags: ListenFlags,
    /// Which events to print.
    #[arg(long, value_enum, default_value_t = Events::Decisions)]
    events: Events,
    /// Print no event lines (same as --events none).
    #[arg(short, long)]
    quiet: bool,
    /// At most this many drop lines (reject, replay, misaddressed) per second; the rest
    /// are counted in one summary line.
    #[arg(long, value_name = "N", default_value_t = 5)]
    max_drop_lines: u32,
    #[command(flatten)]
    ops: crate::ops_flags::OpsFlags,
}

/// How long a discovery of the same DID at the same address is not
/// printed again (a beacon and its answer arrive within moments).
const DISCOVERY_REPEAT: Duration = Duration::from_secs(2);
/// Bytes of event lines buffered before a write (flushed earlier when the
/// event queue is drained).
const OUT_BUFFER: usize = 64 * 1024;
/// Events printed per wake-up before the buffer is flushed.
const EVENT_BATCH: usize = 1024;
/// A drain that found at least this many events queued means a busy node:
/// the next drain waits [`EVENT_COALESCE`], so the node's event channel
/// collects a batch without waking this task once per event (the wake-ups
/// cost the receive path more than printing the lines).
const EVENT_BUSY: usize = 16;
/// How long printing lags behind a busy node, at most (the channel holds
/// 4,096 events, so up to ~800,000 events per second are printed in full).
const EVENT_COALESCE: Duration = Duration::from_millis(5);
/// Discoveries remembered for [`DISCOVERY_REPEAT`].
const DISCOVERY_MEMORY: usize = 64;
/// Peers (DID, address, decision) remembered as already shown, so their
/// repeat discoveries are only counted; beyond, new ones are shown again.
const ROUTINE_MEMORY: usize = 4096;

/// Identity refusals of one second, for its summary line.
#[derive(Debug, Default)]
struct IdentityRefusals {
    /// Count per reason (a fixed set of engine names).
    by_reason: std::collections::BTreeMap<&'static str, u64>,
    /// The last refused packet's claimed DID (escaped) and source.
    last: Option<(String, SocketAddr)>,
}

impl IdentityRefusals {
    fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }
}

/// Decides which events are printed and counts the ones that are not.
#[derive(Debug)]
struct Filter {
    events: Events,
    max_drop_lines: u32,
    drops_this_second: u32,
    suppressed_this_second: u64,
    suppressed_total: u64,
    untrusted_heartbeats: u64,
    /// Heartbeats of trusted peers answered GROEN, not shown.
    routine_heartbeats: u64,
    /// Repeat discoveries of peers already shown, not shown.
    routine_discoveries: u64,
    shown_peers: std::collections::HashSet<(String, SocketAddr, String)>,
    identity: IdentityRefusals,
    identity_total: u64,
    recent_discoveries: VecDeque<(Instant, String, SocketAddr)>,
}

impl Filter {
    fn new(events: Events, max_drop_lines: u32) -> Self {
        Filter {
            events,
            max_drop_lines,
            drops_this_second: 0,
            suppressed_this_second: 0,
            suppressed_total: 0,
            untrusted_heartbeats: 0,
            routine_heartbeats: 0,
            routine_discoveries: 0,
            shown_peers: Default::default(),
            identity: IdentityRefusals::default(),
            identity_total: 0,
            recent_discoveries: VecDeque::new(),
        }
    }

    /// Whether a drop line may be printed this second (else counted).
    fn drop_line(&mut self) -> bool {
        if self.events == Events::Accepted {
            return false;
        }
        if self.drops_this_second < self.max_drop_lines {
            self.drops_this_second += 1;
            true
        } else {
            self.suppressed_this_second += 1;
            self.suppressed_total += 1;
            false
        }
    }

    /// Whether `event` is printed now.
    fn admit(&mut self, event: &Event, now: Instant) -> bool {
        if self.events == Events::None {
            return false;
        }
        match event {
            Event::Ping {
                intent, outcome, ..
            } => {
                let dropped = outcome == "reject" || outcome == "replay";
                if !dropped {
                    if intent == "heartbeat" && outcome == "accept" && self.events != Events::All {
                        self.routine_heartbeats += 1;
                        return false;
                    }
                    return true;
                }
                if intent == "heartbeat" && outcome == "reject" {
                    self.untrusted_heartbeats += 1;
                    return false;
                }
                self.drop_line()
            }
            Event::Misdirected { .. } => self.drop_line(),
            Event::IdentityRefused {
                did, from, reason, ..
            } => {
                *self.identity.by_reason.entry(reason).or_default() += 1;
                self.identity.last = Some((did.clone(), *from));
                self.identity_total += 1;
                false
            }
            Event::Discovered {
                did,
                addr,
                decision,
                ..
            } => {
                if self.events != Events::All {
                    let key = (did.clone(), *addr, decision.clone());
                    if self.shown_peers.contains(&key) {
                        self.routine_discoveries += 1;
                        return false;
                    }
                    if self.shown_peers.len() < ROUTINE_MEMORY {
                        self.shown_peers.insert(key);
                    }
                }
                while self
                    .recent_discoveries
                    .front()
                    .is_some_and(|(at, _, _)| now.duration_since(*at) > DISCOVERY_REPEAT)
                {
                    self.recent_discoveries.pop_front();
                }
                if self
                    .recent_discoveries
                    .iter()
                    .any(|(_, d, a)| d == did && a == addr)
                {
                    return false;
                }
                if self.recent_discoveries.len() >= DISCOVERY_MEMORY {
                    self.recent_discoveries.pop_front();
                }
                self.recent_discoveries.push_back((now, did.clone(), *addr));
                true
            }
            // Once per peer and address: it takes an answer to our request.
            Event::Proven { .. } => true,
        }
    }

    /// Starts a new second; returns how many drop lines the last one left out.
    fn next_second(&mut self) -> u64 {
        self.drops_this_second = 0;
        std::mem::take(&mut self.suppressed_this_second)
    }

    /// The identity refusals of the last second, if any (for one line).
    fn take_identity(&mut self) -> Option<IdentityRefusals> {
        if self.events == Events::None || self.identity.total() == 0 {
            self.identity = IdentityRefusals::default();
            return None;
        }
        Some(std::mem::take(&mut self.identity))
    }
}

/// `event` with every sender-chosen string escaped and capped.
fn escaped(event: Event) -> Event {
    match event {
        Event::Ping {
            time,
            source_did,
            from,
            intent,
            zone,
            trust,
            outcome,
            packet_id,
            authenticated,
        } => Event::Ping {
            time,
            source_did: safe(&source_did),
            from,
            intent: safe(&intent),
            zone,
            trust,
            outcome,
            packet_id: safe(&packet_id),
            authenticated,
        },
        Event::Discovered {
            time,
            did,
            addr,
            decision,
        } => Event::Discovered {
            time,
            did: safe(&did),
            addr,
            decision,
        },
        Event::Proven { time, did, addr } => Event::Proven {
            time,
            did: safe(&did),
            addr,
        },
        Event::Misdirected {
            time,
            source_did,
            from,
            target_did,
            packet_id,
        } => Event::Misdirected {
            time,
            source_did: safe(&source_did),
            from,
            target_did: safe(&target_did),
            packet_id: safe(&packet_id),
        },
        Event::IdentityRefused {
            time,
            did,
            from,
            reason,
        } => Event::IdentityRefused {
            time,
            did: safe(&did),
            from,
            reason,
        },
    }
}

/// Runs `listen`.
pub(crate) async fn run(args: Args, format: LogFormat) -> Result<ExitCode> {
    let settings = args.flags.resolve()?;
    settings.check_interfaces()?;
    settings.check_audit_file()?;
    let mut ops =
        crate::ops_flags::Ops::start(&args.ops, args.flags.config.as_deref(), &settings.did)?;
    let mut node = Node::start(&settings).await?;
    // Metrics, and the fleet (docs/FLEETS.md).
    ops.attach(node.inner()).await?;
    let lib = node.inner();
    if settings.trust.is_empty() && settings.vouches.is_empty() && settings.rules.is_empty() {
        logging::warn(
            format,
            "no trust given: every sender is unknown (trust 0.0, zone ROOD) and will be \
             dropped silently; add --trust DID=SCORE or a config file with [trust]",
        );
    }
    if settings.control.is_none() && settings.geel_reachable() {
        logging::warn(
            format,
            "GEEL pings can arrive (an airlock rule or a trust score in 0.3..0.7) but no \
             control socket is set, so nobody can review them; add --control PATH or \
             `control` in the config",
        );
    }
    let events = if args.quiet {
        Events::None
    } else {
        args.events
    };
    if events == Events::None && ops.uplink().is_none() {
        // Nobody reads events (no lines, no MQTT fleet that may publish
        // them): the node then builds none. The pins file is saved every
        // second instead of at each discovery.
        node.unsubscribe();
    }
    let prints = events != Events::None;
    let mut filter = Filter::new(events, args.max_drop_lines);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (_control_guard, mut calls) = match &settings.control {
        Some(path) => {
            let (guard, calls) = control::serve(path)?;
            (Some(guard), Some(calls))
        }
        None => (None, None),
    };
    // After the last start-up check that can fail, so that an error stays
    // the only line.
    let (mode, pins) = node.identity();
    let trusted = settings.trust.iter().map(|(d, _)| d.as_str()).chain(
        settings
            .vouches
            .iter()
            .flat_map(|v| v.dids.iter().map(String::as_str)),
    );
    for line in crate::identity_flags::unpinned_trust_warnings(mode, &pins, trusted) {
        logging::warn(format, &line);
    }
    if let Some(line) = loopback_warning(&settings) {
        logging::warn(format, &line);
    }
    let mut sigterm =
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut sigint =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    // One locked, buffered writer for the whole run: event lines are
    // formatted straight into it and flushed once the node's event queue is
    // drained (one write(2) per batch, not per line). Nothing else in this
    // process writes to stdout while listening.
    let mut stdout = BufWriter::with_capacity(OUT_BUFFER, std::io::stdout().lock());
    match format {
        LogFormat::Text => writeln!(
            stdout,
            "listening on {} as {}",
            node.local_addr(),
            node.did()
        )?,
        LogFormat::Json => writeln!(
            stdout,
            "{}",
            serde_json::json!({"event": "listening", "addr": node.local_addr().to_string(), "did": node.did()})
        )?,
    }
    if let Some(path) = &settings.control
        && format == LogFormat::Text
    {
        writeln!(stdout, "control socket at {}", path.display())?;
    }
    if let Some(addr) = ops.metrics_addr()
        && format == LogFormat::Text
    {
        writeln!(stdout, "metrics at http://{addr}/metrics")?;
    }
    stdout.flush()?;
    ops.ready(node.did(), node.local_addr());
    // An output error (e.g. a closed pipe) still stops the node gracefully.
    let mut outcome = Ok(());
    // Set after a busy drain: events wait in the channel until then.
    let mut coalesce: Option<tokio::time::Instant> = None;
    while outcome.is_ok() {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            call = async { match calls.as_mut() { Some(c) => c.recv().await, None => std::future::pending().await } } => {
                if let Some(call) = call {
                    let action = match &call.request {
                        control::Request::Approve { trust, .. } => Some(("approved", *trust)),
                        control::Request::Reject { .. } => Some(("rejected", None)),
                        _ => None,
                    };
                    let answer = with_mqtt(node.control(call.request), ops.uplink());
                    if let (Some((verb, trust)), Some(item)) = (action, answer.item.as_ref()) {
                        outcome = print_review(&mut stdout, verb, item, trust, format);
                    }
                    let _ = call.reply.send(answer);
                }
            }
            _ = ops.feed_watchdog() => {}
            _ = async { tokio::time::sleep_until(coalesce.expect("guarded")).await }, if coalesce.is_some() => {
                coalesce = None;
            }
            event = node.next_event(), if coalesce.is_none() => {
                let Some(event) = event else { break };
                // Take the whole batch that is queued now, then flush once.
                let now = Instant::now();
                let mut next = Some(event);
                let mut taken = 0;
                while let Some(event) = next {
                    if let (Some(f), Event::Ping { .. }) = (ops.uplink(), &event)
                        && let Ok(json) = serde_json::to_vec(&event)
                    {
                        f.publish_event(&json);
                    }
                    if prints && outcome.is_ok() {
                        let event = escaped(event);
                        if filter.admit(&event, now) {
                            outcome = print_event(&mut stdout, &event, format);
                        }
                    }
                    taken += 1;
                    // Bounded, so signals and the control socket are served
                    // between batches even under a flood.
                    next = if taken < EVENT_BATCH { node.try_next_event() } else { None };
                }
                if outcome.is_ok() {
                    outcome = stdout.flush().map_err(Into::into);
                }
                if taken >= EVENT_BUSY {
                    coalesce = Some(tokio::time::Instant::now() + EVENT_COALESCE);
                }
            }
            _ = second.tick() => {
                // Pins learnt by trust on first use (a no-op unless they changed).
                node.save_pins();
                let left_out = filter.next_second();
                if left_out > 0 {
                    outcome = print_suppressed(&mut stdout, left_out, format);
                }
                if let (Ok(()), Some(refused)) = (&outcome, filter.take_identity()) {
                    outcome = print_identity(&mut stdout, &refused, format);
                }
            }
        }
    }
    if outcome.is_ok() {
        let _ = print_stop(&mut stdout, &filter, format);
    }
    tracing::info!(target: "tibet_iot_cli", "listener stopping");
    ops.stopping();
    node.save_pins();
    node.stop().await;
    if settings.audit.is_some() && outcome.is_ok() {
        // After the stop: every record is stored and flushed by now.
        let _ = print_audit_summary(&mut stdout, &lib.stats(), format);
    }
    outcome.context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// A warning for a node bound to loopback that runs discovery as if on a
/// LAN: its beacons stay on this machine and no device elsewhere can reach
/// it. Not when discovery is off, or its interface is loopback on purpose.
fn loopback_warning(s: &crate::settings::Settings) -> Option<String> {
    let local_on_purpose = s.multicast_if.as_ref().is_some_and(|i| i.is_loopback());
    (s.discovery && s.bind.is_loopback() && !local_on_purpose).then(|| {
        format!(
            "bound to {} with discovery on: only this machine can find or reach this node; \
             for a LAN bind :: (the default), 0.0.0.0 or the LAN address (--bind, `bind` in \
             the config), for one machine add --multicast-if 127.0.0.1 or --no-discovery",
            s.bind
        )
    })
}

/// Adds the MQTT bridge's counters (`mqtt`) to a `stats` answer.
fn with_mqtt(
    mut answer: control::Response,
    uplink: Option<&tibet_iot_ops::MqttUplink>,
) -> control::Response {
    if let (Some(f), Some(serde_json::Value::Object(m))) = (uplink, answer.stats.as_mut())
        && let Ok(v) = serde_json::to_value(f.stats())
    {
        m.insert("mqtt".into(), v);
    }
    answer
}

/// Writes one event line into `out` (buffered; the caller flushes).
fn print_event(out: &mut impl Write, event: &Event, format: LogFormat) -> Result<()> {
    match format {
        LogFormat::Json => {
            serde_json::to_writer(&mut *out, event)?;
            out.write_all(b"\n")?;
        }
        LogFormat::Text => writeln!(out, "{event}")?,
    }
    Ok(())
}

fn print_suppressed(out: &mut impl Write, count: u64, format: LogFormat) -> Result<()> {
    match format {
        LogFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"event": "suppressed", "drop_lines": count})
        )?,
        LogFormat::Text => writeln!(
            out,
            "{}  ... {count} more drop line(s) in the last second not shown",
            tibet_ping::Timestamp::now().to_iso()
        )?,
    }
    out.flush()?;
    Ok(())
}

/// One line for the identity refusals of the last second: how many, by
/// reason, and the last source.
fn print_identity(out: &mut impl Write, r: &IdentityRefusals, format: LogFormat) -> Result<()> {
    let (did, from) = r
        .last
        .clone()
        .map_or((String::new(), None), |(d, a)| (d, Some(a)));
    match format {
        LogFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"event": "identity_refused", "time": tibet_ping::Timestamp::now().to_iso(),
                "count": r.total(), "reasons": r.by_reason, "last_did": did,
                "last_from": from.map(|a| a.to_string())})
        )?,
        LogFormat::Text => {
            let reasons: Vec<String> = r
                .by_reason
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let last = from.map_or(String::new(), |a| format!("; last: {did} from {a}"));
            writeln!(
                out,
                "{}  identity refused {} packet(s) in the last second ({}){last}",
                tibet_ping::Timestamp::now().to_iso(),
                r.total(),
                reasons.join(", ")
            )?
        }
    }
    out.flush()?;
    Ok(())
}

fn print_stop(out: &mut impl Write, filter: &Filter, format: LogFormat) -> Result<()> {
    match format {
        LogFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"event": "stopping",
                "untrusted_heartbeats": filter.untrusted_heartbeats,
                "trusted_heartbeats": filter.routine_heartbeats,
                "repeat_discoveries": filter.routine_discoveries,
                "identity_refused": filter.identity_total,
                "drop_lines_suppressed": filter.suppressed_total})
        )?,
        LogFormat::Text => {
            if filter.untrusted_heartbeats > 0 {
                writeln!(
                    out,
                    "{} heartbeat(s) from untrusted peers were dropped (not shown)",
                    filter.untrusted_heartbeats
                )?;
            }
            if filter.routine_heartbeats + filter.routine_discoveries > 0 {
                writeln!(
                    out,
                    "{} heartbeat(s) of trusted peers and {} repeat discovery(ies) were \
                     counted, not shown (--events all shows them)",
                    filter.routine_heartbeats, filter.routine_discoveries
                )?;
            }
            if filter.identity_total > 0 {
                writeln!(
                    out,
                    "{} packet(s) refused by the identity check in all",
                    filter.identity_total
                )?;
            }
            writeln!(out, "stopping")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// What the audit trail got during the run: tokens written; records
/// dropped (lossy mode, or a full queue); records the file refused; pings
/// not answered because their token could not be queued.
fn print_audit_summary(
    out: &mut impl Write,
    stats: &tibet_iot::NodeStats,
    format: LogFormat,
) -> Result<()> {
    let (d, e) = (&stats.driver, &stats.engine);
    let dropped = d.audit_dropped + e.audit_dropped;
    match format {
        LogFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"event": "audit", "tokens_written": d.audit_written,
                "tokens_dropped": dropped, "tokens_failed": d.audit_failures,
                "pings_answered": e.pings_answered, "pings_refused": e.audit_refused})
        )?,
        LogFormat::Text => writeln!(
            out,
            "audit: {} token(s) written, {dropped} dropped, {} failed to store; {} ping(s) answered, {} not answered for want of room for their token",
            d.audit_written, d.audit_failures, e.pings_answered, e.audit_refused
        )?,
    }
    out.flush()?;
    Ok(())
}

fn print_review(
    out: &mut impl Write,
    verb: &str,
    item: &control::PendingItem,
    trust: Option<f64>,
    format: LogFormat,
) -> Result<()> {
    let time = tibet_ping::Timestamp::now().to_iso();
    match format {
        LogFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"event": verb, "time": time, "packet_id": safe(&item.id),
                "source_did": safe(&item.source_did), "intent": safe(&item.intent),
                "new_trust": trust})
        )?,
        LogFormat::Text => {
            let raised = trust
                .map(|t| format!("  trust -> {t:.2}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{time}  {verb} {} from {}  {}{raised}",
                safe(&item.id),
                safe(&item.source_did),
                safe(&item.intent)
            )?
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(intent: &str, outcome: &str) -> Event {
        Event::Ping {
            time: "t".into(),
            source_did: "jis:a:b".into(),
            from: "127.0.0.1:9".parse().unwrap(),
            intent: intent.into(),
            zone: "ROOD".into(),
            trust: 0.0,
            outcome: outcome.into(),
            packet_id: "p".into(),
            authenticated: false,
        }
    }

    fn discovered(did: &str) -> Event {
        Event::Discovered {
            time: "t".into(),
            did: did.into(),
            addr: "127.0.0.1:9".parse().unwrap(),
            decision: "hitl_pending".into(),
        }
    }

    #[test]
    fn drop_lines_are_limited_per_second_and_counted() {
        let now = Instant::now();
        let mut f = Filter::new(Events::All, 2);
        let shown = (0..10)
            .filter(|_| f.admit(&ping("x", "reject"), now))
            .count();
        assert_eq!(shown, 2);
        assert!(f.admit(&ping("x", "accept"), now), "accepts always show");
        assert_eq!(f.next_second(), 8);
        assert!(f.admit(&ping("x", "replay"), now), "a new second");
        assert_eq!(f.suppressed_total, 8);
    }

    #[test]
    fn untrusted_heartbeats_are_counted_not_shown() {
        let now = Instant::now();
        let mut f = Filter::new(Events::All, 5);
        assert!(!f.admit(&ping("heartbeat", "reject"), now));
        assert!(!f.admit(&ping("heartbeat", "reject"), now));
        assert_eq!(f.untrusted_heartbeats, 2);
        assert!(f.admit(&ping("heartbeat", "accept"), now));
    }

    #[test]
    fn one_discovery_prints_once() {
        let now = Instant::now();
        let mut f = Filter::new(Events::All, 5);
        assert!(f.admit(&discovered("jis:a:b"), now));
        assert!(!f.admit(&discovered("jis:a:b"), now + Duration::from_millis(400)));
        assert!(f.admit(&discovered("jis:c:d"), now));
        assert!(f.admit(&discovered("jis:a:b"), now + Duration::from_secs(3)));
        for i in 0..1000 {
            f.admit(&discovered(&format!("jis:n:{i}")), now);
        }
        assert!(f.recent_discoveries.len() <= DISCOVERY_MEMORY);
    }

    #[test]
    fn routine_traffic_of_trusted_peers_is_counted_unless_all() {
        let now = Instant::now();
        let mut f = Filter::new(Events::Decisions, 5);
        assert!(!f.admit(&ping("heartbeat", "accept"), now));
        assert!(f.admit(&ping("x", "accept"), now), "other pings show");
        assert!(f.admit(&discovered("jis:a:b"), now));
        let later = now + Duration::from_secs(60);
        assert!(!f.admit(&discovered("jis:a:b"), later), "a repeat");
        assert!(f.admit(&discovered("jis:c:d"), later), "a new peer");
        assert_eq!((f.routine_heartbeats, f.routine_discoveries), (1, 1));
        let mut all = Filter::new(Events::All, 5);
        assert!(all.admit(&ping("heartbeat", "accept"), now));
        assert!(all.admit(&discovered("jis:a:b"), now));
        assert!(all.admit(&discovered("jis:a:b"), later));
    }

    #[test]
    fn identity_refusals_are_summed_per_second() {
        let now = Instant::now();
        let refused = |reason| Event::IdentityRefused {
            time: "t".into(),
            did: "jis:a:b".into(),
            from: "127.0.0.1:9".parse().unwrap(),
            reason,
        };
        let mut f = Filter::new(Events::Decisions, 5);
        assert!(f.take_identity().is_none(), "nothing refused");
        for reason in ["unsigned", "unsigned", "wrong_key"] {
            assert!(!f.admit(&refused(reason), now), "never one line each");
        }
        let second = f.take_identity().expect("a summary");
        assert_eq!(second.total(), 3);
        assert_eq!(second.by_reason["unsigned"], 2);
        assert!(f.take_identity().is_none(), "the next second starts at 0");
        assert_eq!(f.identity_total, 3);
        let mut none = Filter::new(Events::None, 5);
        none.admit(&refused("unsigned"), now);
        assert!(none.take_identity().is_none());
    }

    #[test]
    fn misaddressed_pings_share_the_drop_line_budget() {
        let now = Instant::now();
        let misdirected = Event::Misdirected {
            time: "t".into(),
            source_did: "jis:a:b".into(),
            from: "127.0.0.1:9".parse().unwrap(),
            target_did: "jis:home:hbu".into(),
            packet_id: "p".into(),
        };
        let mut f = Filter::new(Events::Decisions, 1);
        assert!(f.admit(&misdirected, now));
        assert!(!f.admit(&misdirected, now));
        assert_eq!(f.next_second(), 1);
    }

    #[test]
    fn filters() {
        let now = Instant::now();
        let mut accepted = Filter::new(Events::Accepted, 5);
        assert!(!accepted.admit(&ping("x", "reject"), now));
        assert!(accepted.admit(&ping("x", "pending"), now));
        let mut none = Filter::new(Events::None, 5);
        assert!(!none.admit(&ping("x", "accept"), now));
        assert!(!none.admit(&discovered("jis:a:b"), now));
    }

    #[test]
    fn events_are_escaped() {
        let e = escaped(Event::Ping {
            time: "t".into(),
            source_did: "jis:a\u{1b}[2K".into(),
            from: "127.0.0.1:9".parse().unwrap(),
            intent: "i\r".into(),
            zone: "ROOD".into(),
            trust: 0.0,
            outcome: "reject".into(),
            packet_id: "p\n".into(),
            authenticated: false,
        });
        let line = e.line();
        assert!(!line.contains(['\u{1b}', '\r', '\n']), "{line:?}");
        assert!(line.contains("jis:a\\u{1b}[2K"), "{line}");
    }
}
