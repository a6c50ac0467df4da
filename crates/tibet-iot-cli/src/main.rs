//! The `tibet-iot` command line.

use clap::Parser;

/// IoT transport for TIBET: intent-based pings over UDP.
#[derive(Parser, Debug)]
#[command(name = "tibet-iot", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
