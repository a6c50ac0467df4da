//! `tibet-iot pending list|approve|reject`: review the GEEL pings of a
//! running `listen --control SOCKET` through its control socket.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

use crate::control::{self, PendingItem, Request};
use crate::output::safe;
use crate::parse;

/// Arguments of `pending`.
pub(crate) type Args = control::OperatorArgs<Action>;

#[derive(Subcommand, Debug)]
pub(crate) enum Action {
    /// List the pings waiting for review.
    List,
    /// Accept a pending ping (and optionally raise the sender's trust).
    Approve {
        /// The pending ping's id (`ping_...`).
        id: String,
        /// Its sender's DID: required when several senders used the id
        /// (`pending list` shows them all).
        #[arg(long, value_name = "DID")]
        from: Option<String>,
        /// New trust score for the sender, 0..1 (recorded as a trust change
        /// when the listener audits).
        #[arg(long, value_name = "SCORE", value_parser = |s: &str| parse::score_value(s).map_err(|e| e.to_string()))]
        trust: Option<f64>,
    },
    /// Drop a pending ping.
    Reject {
        /// The pending ping's id (`ping_...`).
        id: String,
        /// Its sender's DID: required when several senders used the id.
        #[arg(long, value_name = "DID")]
        from: Option<String>,
    },
}

/// Runs `pending`.
pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let request = match &args.action {
        Action::List => Request::List,
        Action::Approve { id, from, trust } => Request::Approve {
            id: id.clone(),
            from: from.clone(),
            trust: *trust,
        },
        Action::Reject { id, from } => Request::Reject {
            id: id.clone(),
            from: from.clone(),
        },
    };
    let response = match args.client.ask(&request)? {
        Ok(response) => response,
        Err(code) => return Ok(code),
    };
    match (&args.action, response.pending, response.item) {
        (Action::List, Some(items), _) => print_table(&items),
        (Action::Approve { trust, .. }, _, Some(item)) => {
            print!(
                "approved {} from {} ({})",
                safe(&item.id),
                safe(&item.source_did),
                safe(&item.intent)
            );
            match trust {
                Some(t) => println!("; trust of {} set to {t}", safe(&item.source_did)),
                None => println!(),
            }
        }
        (Action::Reject { .. }, _, Some(item)) => {
            println!(
                "rejected {} from {} ({})",
                safe(&item.id),
                safe(&item.source_did),
                safe(&item.intent)
            )
        }
        _ => bail!("the listener sent an answer without the expected content"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(items: &[PendingItem]) {
    if items.is_empty() {
        println!("no pending pings");
        return;
    }
    let rows: Vec<[String; 6]> = items
        .iter()
        .map(|i| {
            let [id, from, intent, trust, received] = cells(i);
            [id, from, intent, trust, received, safe(&i.purpose)]
        })
        .collect();
    crate::output::table(
        &["ID", "FROM", "INTENT", "TRUST", "RECEIVED", "PURPOSE"],
        &rows,
    );
}

/// A waiting review's columns ID, FROM, INTENT, TRUST and RECEIVED, printable
/// on a terminal (`pending list`, `status`).
pub(crate) fn cells(i: &PendingItem) -> [String; 5] {
    [
        safe(&i.id),
        safe(&i.source_did),
        safe(&i.intent),
        format!("{:.2}", i.trust),
        safe(&i.received_at),
    ]
}
