//! `tibet-iot listen`: run a node until Ctrl-C or SIGTERM, printing one line
//! per decided ping and per discovery.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::control;
use crate::logging::LogFormat;
use crate::node::{Event, Node};
use crate::settings::ListenFlags;

/// Arguments of `listen`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    flags: ListenFlags,
    #[command(flatten)]
    ops: crate::ops::OpsFlags,
}

/// Runs `listen`.
pub(crate) async fn run(args: Args, format: LogFormat) -> Result<ExitCode> {
    let settings = args.flags.resolve()?;
    if settings.trust.is_empty() && settings.vouches.is_empty() && settings.rules.is_empty() {
        eprintln!(
            "warning: no trust given: every sender is unknown (trust 0.0, zone ROOD) and will be \
             dropped silently; add --trust DID=SCORE or a config file with [trust]"
        );
    }
    let mut ops =
        crate::ops::Ops::start(&args.ops, args.flags.config.as_deref(), &settings.did).await?;
    let mut node = Node::start(&settings).await?;
    let (_control_guard, mut calls) = match &settings.control {
        Some(path) => {
            let (guard, calls) = control::serve(path)?;
            (Some(guard), Some(calls))
        }
        None => (None, None),
    };
    let mut sigterm =
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut sigint =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut stdout = std::io::stdout();
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
    stdout.flush()?;
    ops.ready(node.did(), node.local_addr());
    // An output error (e.g. a closed pipe) still stops the node gracefully.
    let mut outcome = Ok(());
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
                    let answer = node.control(call.request);
                    if let (Some((verb, trust)), Some(item)) = (action, answer.item.as_ref()) {
                        outcome = print_review(&mut stdout, verb, item, trust, format);
                    }
                    let _ = call.reply.send(answer);
                }
            }
            Some(call) = ops.next_call() => { let _ = call.reply.send(node.control(call.request)); }
            event = node.next_event() => {
                let Some(event) = event else { break };
                outcome = print_event(&mut stdout, &event, format);
            }
        }
    }
    if outcome.is_ok() && format == LogFormat::Text {
        let _ = writeln!(stdout, "stopping");
    }
    ops.stopping();
    node.stop().await;
    outcome.context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

fn print_event(out: &mut impl Write, event: &Event, format: LogFormat) -> Result<()> {
    match format {
        LogFormat::Json => writeln!(out, "{}", serde_json::to_string(event)?)?,
        LogFormat::Text => writeln!(out, "{}", event.line())?,
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
            serde_json::json!({"event": verb, "time": time, "packet_id": item.id,
                "source_did": item.source_did, "intent": item.intent, "new_trust": trust})
        )?,
        LogFormat::Text => {
            let raised = trust
                .map(|t| format!("  trust -> {t:.2}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{time}  {verb} {} from {}  {}{raised}",
                item.id, item.source_did, item.intent
            )?
        }
    }
    out.flush()?;
    Ok(())
}
