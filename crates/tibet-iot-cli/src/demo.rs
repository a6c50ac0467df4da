//! `tibet-iot demo`: a self-contained tour on loopback.

use std::process::ExitCode;

use anyhow::Result;

/// Arguments of `demo` (none: it needs no configuration).
#[derive(clap::Args, Debug)]
pub(crate) struct Args {}

/// Runs the demo.
pub(crate) async fn run(_args: Args) -> Result<ExitCode> {
    anyhow::bail!("demo: not wired yet")
}
