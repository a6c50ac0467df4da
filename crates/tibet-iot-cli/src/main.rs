//! The `tibet-iot` command line: a thin shell over the `tibet-iot` library.
//! It parses arguments, builds a node configuration, calls the library and
//! prints results; the protocol lives in the libraries.
//!
//! Exit status: 0 success (for `send`: accepted), 1 error, 2 pending review,
//! 3 no response.

#![forbid(unsafe_code)]

mod audit;
mod audit_sink;
mod bench;
mod config;
mod control;
mod demo;
mod discover;
mod keys;
mod listen;
mod logging;
mod node;
mod output;
mod parse;
mod pending;
mod send;
mod settings;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// IoT transport for TIBET: intent-based pings over UDP, trust-gated by an
/// airlock, with LAN discovery and mesh relay.
#[derive(Parser, Debug)]
#[command(name = "tibet-iot", version, propagate_version = true)]
struct Cli {
    /// More logs on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log (and `listen` event) format.
    #[arg(long, value_enum, default_value_t, global = true)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node until Ctrl-C or SIGTERM, printing each decided ping.
    Listen(listen::Args),
    /// Send one ping and print the answer.
    Send(send::Args),
    /// Send a discovery beacon and list the nodes that answer.
    Discover(discover::Args),
    /// A self-contained tour on loopback: trust zones, replay, vouching,
    /// review, mesh relay and discovery.
    Demo(demo::Args),
    /// Load-generate pings against a listener and report rate and latency.
    Bench(bench::Args),
    /// Review pending (GEEL) pings of a running listener.
    Pending(pending::Args),
    /// Inspect and verify provenance audit files (JSONL token files).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write a new Ed25519 private key file and print its public key.
    Keygen(keys::KeygenArgs),
    /// Print the public key of a private key file.
    Pubkey(keys::PubkeyArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
                    // One line naming the problem, no usage dump.
                    let text = e.render().to_string();
                    eprintln!("{}", text.lines().next().unwrap_or("error: invalid value"));
                    ExitCode::FAILURE
                }
                _ => {
                    let _ = e.print();
                    // Usage errors exit 1: status 2 means "pending" for `send`.
                    ExitCode::FAILURE
                }
            };
        }
    };
    logging::init(cli.verbose, cli.log_format);
    let format = cli.log_format;
    let result = match cli.command {
        Command::Pending(args) => pending::run(args),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Listen(args) => block_on(listen::run(args, format)),
        Command::Send(args) => block_on(send::run(args)),
        Command::Discover(args) => block_on(discover::run(args)),
        Command::Demo(args) => block_on(demo::run(args)),
        Command::Bench(args) => block_on(bench::run(args)),
        Command::Keygen(args) => keys::keygen(args),
        Command::Pubkey(args) => keys::pubkey(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn block_on(
    task: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?
        .block_on(task)
}
