//! Log setup: human-readable lines on stderr by default, JSON for machines.
//! `-v` turns on debug logs of the tibet crates, `-vv` trace; `RUST_LOG`
//! overrides both.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// The format of log lines (and of `listen`'s event lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber; logs go to stderr so stdout stays the
/// command's output.
pub(crate) fn init(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info,tibet_iot=debug,tibet_ping=debug,tibet_core=debug,tibet_iot_cli=debug",
        _ => "debug,tibet_iot=trace,tibet_ping=trace,tibet_core=trace,tibet_iot_cli=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Plain text for journald and files: colours only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(verbose > 0);
    // A second init (tests calling twice) is harmless; ignore the error.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
