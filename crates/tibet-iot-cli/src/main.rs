//! The `tibet-iot` command line.

mod audit;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// IoT transport for TIBET: intent-based pings over UDP.
#[derive(Parser, Debug)]
#[command(name = "tibet-iot", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect and verify provenance audit files (JSONL token files).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Audit(cmd) => audit::run(cmd),
    };
    // Errors are one line (`{:#}` joins the context chain), never a backtrace.
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}
