//! The `tibet-iot` command line: a thin shell over the `tibet-iot` library.
//! It parses arguments, builds a node configuration, calls the library and
//! prints results; the protocol lives in the libraries.
//!
//! Exit status: 0 success (for `send`: accepted), 1 error, 2 pending review,
//! 3 no response (timeout or silent drop), 4 nothing listening (ICMP port
//! unreachable), 5 answer refused by our pin, 130 interrupted.

#![forbid(unsafe_code)]

/// The process allocator: mimalloc instead of glibc's malloc. A listener
/// allocates and frees a few dozen small blocks per ping (decoded fields,
/// the response, its encoding), and glibc's `free`/`malloc_consolidate`
/// showed up as about 8 % of its CPU; with mimalloc a listener spends 6-14 %
/// less CPU per ping (A/B in docs/PERFORMANCE-HISTORY.md, "Allocator"). The
/// libraries leave the choice to the application.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod audit;
mod audit_file;
mod bench;
mod bench_load;
mod bench_wire;
mod control;
mod control_answers;
mod demo;
mod discover;
mod identity_flags;
mod keys;
mod listen;
mod logging;
mod node_handle;
mod ops_flags;
mod output;
mod parse;
mod pending;
mod pins;
mod rtt_stats;
mod send;
mod settings;
mod sim;
mod state;
mod status;
mod systemd;

use std::process::ExitCode;

// The config file lives in the library (src/lib.rs), for tests and fuzzing.
use tibet_iot_cli::config_file;

use clap::{CommandFactory, Parser, Subcommand};

/// IoT transport for TIBET: intent-based pings over UDP, trust-gated by an
/// airlock, with LAN discovery and mesh relay.
#[derive(Parser, Debug)]
#[command(
    name = "tibet-iot",
    version,
    propagate_version = true,
    after_help = EXIT_STATUS
)]
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
    /// Simulate a whole network on a virtual clock: routing, loss, scale.
    Sim(sim::Args),
    /// Review pending (GEEL) pings of a running listener.
    Pending(pending::Args),
    /// List or remove the pins of a running listener (DID -> public key).
    Pins(pins::Args),
    /// Show a running listener: identity, peers, pending reviews, counters.
    Status(status::Args),
    /// List, export or reset a node's state store (decisions kept across
    /// restarts).
    State(state::Args),
    /// Inspect and verify provenance audit files (JSONL token files).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write a new Ed25519 private key file and print its public key.
    Keygen(keys::KeygenArgs),
    /// Print the public key of a private key file.
    Pubkey(keys::PubkeyArgs),
    /// Print a shell completion script (bash, zsh, fish, ...) to stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout, or with --dir write one page
    /// per command and subcommand into a directory.
    Man(ManArgs),
}

/// The exit statuses, for `--help` and the man page.
const EXIT_STATUS: &str = "Exit status: 0 success (send: accepted), 1 error, 2 pending review, \
3 no response (timeout, or a silent drop by a receiver that does not trust us), \
4 nothing listening at the address (ICMP port unreachable), \
5 an answer came but our --pin refused its signature, 130 interrupted (Ctrl-C).";

/// Arguments of `man`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example: tibet-iot man --dir ~/.local/share/man/man1 (then `man tibet-iot-listen`)"
)]
struct ManArgs {
    /// Write `tibet-iot.1`, `tibet-iot-listen.1`, ... (every subcommand)
    /// into DIR, created if missing, instead of the top page to stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<std::path::PathBuf>,
}

/// Arguments of `completions`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example: tibet-iot completions bash > ~/.local/share/bash-completion/completions/tibet-iot"
)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
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
                _ => {
                    // One line naming the problem and where to look, no
                    // usage dump. Usage errors exit 1: status 2 means
                    // "pending" for `send`.
                    eprintln!("{}", short_error(&e));
                    ExitCode::FAILURE
                }
            };
        }
    };
    logging::init(cli.verbose, cli.log_format);
    let format = cli.log_format;
    let result = match cli.command {
        Command::Completions(args) => {
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "tibet-iot", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man(args) => man(args),
        Command::Pending(args) => pending::run(args),
        Command::Pins(args) => pins::run(args),
        Command::State(args) => state::run(args),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Status(args) => status::run(args),
        Command::Listen(args) => block_on(listen::run(args, format)),
        Command::Send(args) => block_on(send::run(args)),
        Command::Discover(args) => block_on(discover::run(args)),
        Command::Demo(args) => block_on(demo::run(args)),
        Command::Bench(args) => block_on(bench::run(args)),
        Command::Sim(args) => sim::run(args),
        Command::Keygen(args) => keys::keygen(args),
        Command::Pubkey(args) => keys::pubkey(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// clap's error line on one line, with what clap adds below it kept (the
/// list of missing arguments, the possible values, a "similar argument
/// exists" tip), plus a pointer to the help of the (sub)command that failed.
fn short_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    format!("{} (see `{} --help`)", one_line(&text), command_path())
}

/// clap's rendered error without the usage and the help pointer, on one
/// line: a trailing list joined by commas, further notes by semicolons.
fn one_line(text: &str) -> String {
    let mut lines = text.lines();
    let mut line = lines
        .next()
        .unwrap_or("error: invalid arguments")
        .trim_end()
        .to_owned();
    let list = line.ends_with(':');
    let mut items = Vec::new();
    for l in lines {
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        let item = l.trim();
        // "to pass '--x' as a value, use '-- --x'": no command takes a
        // free value that starts with `--`, so this tip only misleads.
        if item.is_empty() || item.starts_with("tip: to pass") {
            continue;
        }
        items.push(item);
    }
    if list {
        let (listed, notes) = items
            .iter()
            .partition::<Vec<&str>, _>(|i| !i.starts_with("tip:"));
        line = format!("{line} {}", listed.join(", "));
        items = notes;
    }
    for item in items {
        line.push_str("; ");
        line.push_str(item);
    }
    line
}

/// The (sub)command named on the command line, e.g. `tibet-iot audit verify`.
fn command_path() -> String {
    let mut cmd = Cli::command();
    let mut path = vec!["tibet-iot".to_owned()];
    for arg in std::env::args().skip(1) {
        let Some(sub) = cmd.find_subcommand(&arg).cloned() else {
            continue;
        };
        path.push(arg);
        cmd = sub;
    }
    path.join(" ")
}

/// An error and its causes on one line, each cause shown once (a library
/// error may already include its source's text in its own message).
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Writes the man page of the whole command to stdout, or every page
/// (`tibet-iot.1`, `tibet-iot-listen.1`, `tibet-iot-audit-verify.1`, ...)
/// into `--dir`.
fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let mut cmd = Cli::command().disable_help_subcommand(true);
        cmd.build();
        let written = man_pages(&cmd, &dir).map_err(|e| {
            anyhow::anyhow!("cannot write the man pages into {}: {e}", dir.display())
        })?;
        println!("{written} man pages written to {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    match clap_mangen::Man::new(Cli::command()).render(&mut out) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write the man page: {e}"))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Writes the page of `cmd` and of each of its subcommands (a built
/// command: their names are `tibet-iot-listen`, ...) into `dir`; returns how
/// many.
fn man_pages(cmd: &clap::Command, dir: &std::path::Path) -> std::io::Result<usize> {
    let mut written = 0;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written += man_pages(sub, dir)?;
    }
    clap_mangen::Man::new(cmd.clone()).generate_to(dir)?;
    Ok(written + 1)
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
