//! `tibet-iot state list|export|reset`: the state store (`state.db`) of a
//! node's state directory, read directly (a running node may hold it: the
//! store is read in WAL mode; `reset` waits for no one and is refused while
//! the node runs). See docs/OPERATIONS.md.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use tibet_iot::{RuleEntry, StateStore, StoredState};

use crate::output::safe;

/// Arguments of `state`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
    /// The node's state directory (as given to `listen --state`).
    #[arg(long, global = true, value_name = "DIR", conflicts_with = "did")]
    state: Option<PathBuf>,
    /// The node whose default state directory to read
    /// ($STATE_DIRECTORY, else $XDG_STATE_HOME/tibet-iot/DID, else
    /// ~/.local/state/tibet-iot/DID).
    #[arg(long, global = true, value_name = "DID")]
    did: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// List what is kept: trust, vouches, revocations, rules, pins, the
    /// replay horizon and the reviews still waiting.
    List,
    /// Print the whole store as one JSON object.
    #[command(alias = "dump")]
    Export,
    /// Forget every decision and waiting review kept (asks first; refused
    /// while the node runs; the replay horizon stays).
    Reset {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `state`.
pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let dir = match (&args.state, &args.did) {
        (Some(dir), _) => dir.clone(),
        (None, Some(did)) => crate::identity_flags::default_state_dir(did)
            .ok_or_else(|| anyhow!("no home for state known: give --state DIR"))?,
        (None, None) => bail!("give the node's state directory (--state DIR) or its --did DID"),
    };
    if let Action::Reset { yes } = args.action {
        if !yes && !confirm(&dir)? {
            eprintln!("not reset");
            return Ok(ExitCode::FAILURE);
        }
        let done = tibet_iot::reset_state_store(&dir)?;
        if done {
            println!("state store in {} reset", dir.display());
        } else {
            println!("no state store in {}", dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let state = match StateStore::open_read_only(&dir)? {
        Some(store) => store.load()?,
        None => {
            if matches!(args.action, Action::Export) {
                println!("{}", export(&StoredState::default()));
            } else {
                println!("no state store in {}", dir.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    match args.action {
        Action::Export => println!("{}", export(&state)),
        _ => list(&state),
    }
    Ok(ExitCode::SUCCESS)
}

fn confirm(dir: &std::path::Path) -> Result<bool> {
    eprint!(
        "forget every decision kept in {}? [y/N] ",
        dir.join(tibet_iot::STORE_FILE).display()
    );
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the confirmation")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn list(state: &StoredState) {
    if state.trust.is_empty()
        && state.vouches.is_empty()
        && state.revocations.is_empty()
        && state.pins.is_empty()
        && state.rules.is_empty()
        && state.reviews.is_empty()
    {
        println!("no decisions kept");
        return;
    }
    for t in &state.trust {
        let configured = t
            .declared
            .map_or_else(|| "none".to_owned(), |d| format!("{d:.2}"));
        println!(
            "trust    {}  {:.2}  ({}, {}; configured: {configured})",
            safe(&t.did),
            t.score,
            safe(&t.reason),
            t.set_at.to_iso()
        );
    }
    for v in &state.vouches {
        let dids: Vec<String> = v.dids.iter().map(|d| safe(d)).collect();
        let expires = v
            .expires_at
            .map_or_else(|| "never".to_owned(), |t| t.to_iso());
        println!(
            "vouch    {}  {:.2} x {:.2}  (made {}, expires {expires})",
            dids.join(","),
            v.voucher_trust,
            v.vouch_factor,
            v.created_at.to_iso()
        );
    }
    for r in &state.revocations {
        println!(
            "revoked  credentials of {} by {}  ({})",
            safe(&r.device_did),
            safe(&r.voucher_did),
            r.revoked_at.to_iso()
        );
    }
    for r in &state.rules {
        let (kind, json) = rule_json(r);
        println!("rule     {kind}  {json}");
    }
    for p in &state.pins {
        println!(
            "{}  {}  {}  ({}, {})",
            if p.removed { "unpinned" } else { "pinned  " },
            safe(&p.did),
            p.public_key,
            safe(&p.reason),
            p.changed_at.to_iso()
        );
    }
    if let Some(t) = state.horizon {
        println!(
            "horizon  {}  (packets sent at or before it are refused as replays)",
            t.to_iso()
        );
    }
    // A review: what waits, from whom, about what (network text, made safe).
    let waiting = |kind: &str, id: &str, from: &str, what: &str, detail: String| {
        println!(
            "waiting  {kind} {} from {}  {}  ({detail})",
            safe(id),
            safe(from),
            safe(what)
        );
    };
    for p in &state.reviews.pings {
        let q = &p.packet;
        let detail = format!("{}, queued {}", safe(&p.reason), p.queued_at.to_iso());
        waiting("ping", &q.packet_id, &q.source_did, &q.intent, detail);
    }
    for b in &state.reviews.beacons {
        let q = &b.beacon;
        let detail = format!("queued {}", b.queued_at.to_iso());
        waiting(
            "beacon",
            &q.beacon_id,
            &q.source_did,
            &q.device_type,
            detail,
        );
    }
}

/// The kind of a rule and the rule as JSON (as the store keeps it).
fn rule_json(r: &RuleEntry) -> (&'static str, serde_json::Value) {
    let json = match r {
        RuleEntry::Airlock(r) => serde_json::to_value(r),
        RuleEntry::AutoVouch(r) => serde_json::to_value(r),
    };
    let kind = match r {
        RuleEntry::Airlock(_) => "airlock",
        _ => "auto_vouch",
    };
    (kind, json.unwrap_or_default())
}

fn export(state: &StoredState) -> serde_json::Value {
    serde_json::json!({
        "schema_version": tibet_iot::SCHEMA_VERSION,
        "trust": state.trust.iter().map(|t| serde_json::json!({
            "did": t.did,
            "score": t.score,
            "declared": t.declared,
            "reason": t.reason,
            "set_at": t.set_at.to_iso(),
        })).collect::<Vec<_>>(),
        "vouches": state.vouches.iter().map(|v| serde_json::json!({
            "dids": v.dids,
            "vouch_factor": v.vouch_factor,
            "voucher_trust": v.voucher_trust,
            "pod_id": v.pod_id,
            "reason": v.reason,
            "created_at": v.created_at.to_iso(),
            "expires_at": v.expires_at.map(|t| t.to_iso()),
        })).collect::<Vec<_>>(),
        "revocations": state.revocations.iter().map(|r| serde_json::json!({
            "voucher_did": r.voucher_did,
            "device_did": r.device_did,
            "revoked_at": r.revoked_at.to_iso(),
        })).collect::<Vec<_>>(),
        "rules": state.rules.iter().map(|r| {
            let (kind, rule) = rule_json(r);
            serde_json::json!({"kind": kind, "rule": rule})
        }).collect::<Vec<_>>(),
        "pins": state.pins.iter().map(|p| serde_json::json!({
            "did": p.did,
            "public_key": p.public_key,
            "removed": p.removed,
            "reason": p.reason,
            "changed_at": p.changed_at.to_iso(),
        })).collect::<Vec<_>>(),
        "horizon": state.horizon.map(|t| t.to_iso()),
        "reviews": {
            "pings": state.reviews.pings.iter().map(|p| serde_json::json!({
                "packet": p.packet,
                "sender_trust": p.sender_trust,
                "reason": p.reason,
                "rule": p.rule,
                "queued_at": p.queued_at.to_iso(),
            })).collect::<Vec<_>>(),
            "beacons": state.reviews.beacons.iter().map(|b| serde_json::json!({
                "beacon": b.beacon,
                "public_key": b.key.map(|k| k.to_base64()),
                "queued_at": b.queued_at.to_iso(),
            })).collect::<Vec<_>>(),
        },
    })
}
