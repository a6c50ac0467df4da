//! Log setup: human-readable lines on stderr by default, JSON for machines.
//! `-v` turns on debug logs of the tibet crates, `-vv` trace; `RUST_LOG`
//! overrides both. Colour only on a terminal, and never when `NO_COLOR` is
//! set (<https://no-color.org>).

use std::io::IsTerminal;

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
        1 => {
            "info,tibet_iot=debug,tibet_ping=debug,tibet_core=debug,tibet_iot_ops=debug,tibet_iot_cli=debug"
        }
        _ => {
            "debug,tibet_iot=trace,tibet_ping=trace,tibet_core=trace,tibet_iot_ops=trace,tibet_iot_cli=trace"
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_wanted())
        .with_target(verbose > 0);
    // A second init (tests calling twice) is harmless; ignore the error.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Whether log lines may carry ANSI colour codes: stderr is a terminal and
/// `NO_COLOR` is unset or empty.
fn colour_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A warning for the operator: `warning: ...` on stderr as text, or a JSON
/// log line (through the subscriber) with `--log-format json`.
pub(crate) fn warn(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("warning: {message}"),
        LogFormat::Json => tracing::warn!(target: "tibet_iot_cli", "{message}"),
    }
}
