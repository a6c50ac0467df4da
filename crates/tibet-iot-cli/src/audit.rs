//! `tibet-iot audit`: verify, list and trace provenance token files.

use std::collections::VecDeque;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tibet_core::{
    FileStore, HmacKey, Query, ScanReport, Store, Token, Verifier, VerifyReport, verify_into,
};
use tibet_ping::Timestamp;

use crate::output::safe;

/// The `audit` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum AuditCommand {
    /// Verify hashes, line syntax and chain links; exit 1 on any failure.
    Verify(VerifyArgs),
    /// List tokens (the last N matches, oldest first).
    List(ListArgs),
    /// Show the chain from a token back to its root, newest first.
    Trace(TraceArgs),
}

/// Arguments of `audit verify`.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Token files, checked in order as one log (e.g. archive, then active).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// File holding the HMAC key (its bytes; one trailing newline dropped).
    #[arg(long, value_name = "F")]
    hmac_key_file: Option<PathBuf>,
}

/// Arguments of `audit list`.
#[derive(Args, Debug)]
pub(crate) struct ListArgs {
    /// Token file.
    file: PathBuf,
    /// Only this action, e.g. `heartbeat` or `ping.intent`.
    #[arg(long, value_name = "A")]
    action: Option<String>,
    /// Only this actor DID.
    #[arg(long, value_name = "D")]
    actor: Option<String>,
    /// Only tokens at or after this ISO 8601 time.
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Only the token of this packet (the packet id `listen` and `pending
    /// list` show).
    #[arg(long, value_name = "ID")]
    packet: Option<String>,
    /// How many of the last matches to show.
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,
    /// Print the token lines (JSONL) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `audit trace`.
#[derive(Args, Debug)]
pub(crate) struct TraceArgs {
    /// Token file.
    file: PathBuf,
    /// The token to start from.
    token_id: String,
    /// At most this many tokens.
    #[arg(long, value_name = "N", default_value_t = tibet_core::DEFAULT_TRACE_DEPTH)]
    depth: usize,
    /// HMAC key file, to check each token's hash.
    #[arg(long, value_name = "F")]
    hmac_key_file: Option<PathBuf>,
}

/// Runs one `audit` subcommand.
pub(crate) fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify(a) => verify(a),
        AuditCommand::List(a) => list(a),
        AuditCommand::Trace(a) => trace(a),
    }
}

fn read_key(path: Option<&Path>) -> anyhow::Result<Option<HmacKey>> {
    let Some(path) = path else { return Ok(None) };
    let mut bytes =
        std::fs::read(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        bail!("key file {} is empty", path.display());
    }
    Ok(Some(HmacKey::new(bytes)))
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = read_key(args.hmac_key_file.as_deref())?;
    let mut verifier = Verifier::new(key);
    for file in &args.files {
        verify_into(file, &mut verifier)?;
    }
    let report = verifier.finish();
    print_report(&args.files, &report)?;
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(files: &[PathBuf], r: &VerifyReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    writeln!(
        out,
        "{}: {} tokens, {} valid, {} invalid, {} unparseable lines, {} chain breaks",
        names.join(" + "),
        r.valid + r.invalid,
        r.valid,
        r.invalid,
        r.bad_line_count,
        r.chain_break_count
    )?;
    for c in &r.corrupt {
        writeln!(out, "corrupt token {} (line {})", c.token_id, c.line)?;
    }
    for b in &r.bad_lines {
        writeln!(out, "unparseable line {}: {}", b.line, b.reason)?;
    }
    for b in &r.chain_breaks {
        writeln!(
            out,
            "chain break at line {}: {} names parent {}, not found before it",
            b.line, b.token_id, b.parent_id
        )?;
    }
    let shown = r.corrupt.len() + r.bad_lines.len() + r.chain_breaks.len();
    let total = r.invalid + r.bad_line_count + r.chain_break_count;
    if (shown as u64) < total {
        writeln!(
            out,
            "... and {} more problems not listed",
            total - shown as u64
        )?;
    }
    writeln!(
        out,
        "{}",
        if r.is_intact() {
            "OK: integrity intact"
        } else {
            "FAILED"
        }
    )
}

fn warn_bad_lines(file: &Path, report: &ScanReport) {
    for b in &report.bad_lines {
        eprintln!("warning: {} line {}: {}", file.display(), b.line, b.reason);
    }
    let more = report.bad_line_count - report.bad_lines.len() as u64;
    if more > 0 {
        eprintln!(
            "warning: {} more unparseable lines in {}",
            more,
            file.display()
        );
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    if let Some(since) = &args.since
        && Timestamp::parse(since).is_none()
    {
        bail!("invalid --since {since:?}: expected ISO 8601, e.g. 2026-11-26T11:00:00Z");
    }
    let store = FileStore::open_read_only(&args.file)?;
    let query = Query {
        action: args.action,
        actor: args.actor,
        since: args.since,
        limit: args.limit,
    };
    let mut window: VecDeque<Token> = VecDeque::new();
    let report = store.scan(&mut |t| {
        let packet_matches = args
            .packet
            .as_deref()
            .is_none_or(|id| t.eromheen.get("packet_id").and_then(|v| v.as_str()) == Some(id));
        if query.limit > 0 && packet_matches && query.matches(&t) {
            if window.len() == query.limit {
                window.pop_front();
            }
            window.push_back(t);
        }
        ControlFlow::Continue(())
    })?;
    let mut out = std::io::stdout().lock();
    for t in &window {
        if args.json {
            writeln!(out, "{}", t.to_json_line())?;
        } else {
            writeln!(
                out,
                "{}  {}  {}  {}  {}",
                safe(&t.timestamp),
                safe(&t.action),
                safe(&t.actor),
                safe(&t.token_id),
                safe(&t.erachter)
            )?;
        }
    }
    if window.is_empty() {
        // On stderr, so stdout stays empty (and valid JSONL with --json).
        eprintln!("no tokens match in {}", args.file.display());
    }
    drop(out);
    warn_bad_lines(&args.file, &report);
    Ok(ExitCode::SUCCESS)
}

fn trace(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let key = read_key(args.hmac_key_file.as_deref())?;
    let store = FileStore::open_read_only(&args.file)?;
    let chain = store.trace(&args.token_id, args.depth)?;
    if chain.is_empty() {
        bail!(
            "token {} not found in {}",
            args.token_id,
            args.file.display()
        );
    }
    let mut out = std::io::stdout().lock();
    let mut all_valid = true;
    for t in &chain {
        let valid = t.verify(key.as_ref());
        all_valid &= valid;
        writeln!(
            out,
            "{}  {}  {}  {}  {}  {}",
            safe(&t.token_id),
            safe(&t.timestamp),
            safe(&t.action),
            safe(&t.actor),
            if valid { "valid" } else { "CORRUPT" },
            safe(&t.erachter)
        )?;
    }
    let end = chain.last().and_then(|t| t.parent_id.as_deref());
    match end {
        Some(p) if chain.len() < args.depth => {
            writeln!(out, "chain ends: parent {p} is missing (or closes a cycle)")?
        }
        Some(_) => writeln!(out, "depth limit {} reached", args.depth)?,
        None => writeln!(out, "root reached ({} tokens)", chain.len())?,
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
