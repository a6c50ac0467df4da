//! `tibet-iot discover`: send a beacon to the multicast group, listen for
//! the nodes that answer, and print them as a table. Ctrl-C ends the wait
//! early and still prints the nodes heard (exit status 130).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::signal::unix::{SignalKind, signal};

use crate::node_handle::{Found, Node};
use crate::output;
use crate::parse;
use crate::settings::{DiscoveryFlags, NetFlags, Settings};

/// Arguments of `discover`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Seconds to listen for answers.
    #[arg(long, value_name = "S", default_value = "5", value_parser = parse::seconds, allow_negative_numbers = true)]
    timeout: Duration,
    /// Our DID in the beacon.
    #[arg(long, value_name = "DID", default_value = "jis:iot:cli")]
    did: String,
    /// Local UDP port for answers (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Print the nodes as one JSON array.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: NetFlags,
    #[command(flatten)]
    disc: DiscoveryFlags,
}

/// Runs `discover`.
pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    let did = parse::did(&args.did)?;
    let mut settings = Settings::discoverer(did, args.port, &args.net, &args.disc);
    settings.check_interfaces()?;
    // The first beacon goes out at start; no second one in the window.
    settings.discovery_interval = Some(Duration::from_secs(3600));
    // Installed before the node starts: Ctrl-C ends the window early and
    // the nodes heard so far are still printed (exit status 130).
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let node = Node::start(&settings).await?;
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    spinner.set_message(format!(
        "listening for answers ({:.0}s)",
        args.timeout.as_secs_f64()
    ));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let (node, found, interrupted) = node.discover(args.timeout, &mut interrupt).await;
    spinner.finish_and_clear();
    node.stop().await;
    if args.json {
        println!("{}", serde_json::to_string(&found)?);
    } else {
        if interrupted {
            println!("interrupted: the nodes heard so far");
        }
        print_found(&found);
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_found(found: &[Found]) {
    if found.is_empty() {
        println!("no nodes answered");
        return;
    }
    let rows: Vec<[String; 5]> = found
        .iter()
        .map(|f| {
            [
                output::safe(&f.did),
                f.addr.to_string(),
                f.device_type
                    .as_deref()
                    .map_or_else(|| "-".into(), output::safe),
                if f.capabilities.is_empty() {
                    "-".into()
                } else {
                    output::safe(&f.capabilities.join(","))
                },
                output::safe(&f.decision),
            ]
        })
        .collect();
    output::table(
        &["DID", "ADDRESS", "DEVICE TYPE", "CAPABILITIES", "DECISION"],
        &rows,
    );
    println!("{} node(s) found", found.len());
}
