//! `tibet-iot pins list|remove`: the pins of a running `listen --control
//! SOCKET`, those an operator gave and those trust on first use added, and
//! their removal (audited; the pins file follows).

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::control::{self, Request};
use crate::output::safe;
use crate::parse;

/// Arguments of `pins`.
pub(crate) type Args = control::OperatorArgs<Action>;

#[derive(Subcommand, Debug)]
pub(crate) enum Action {
    /// List the pinned DIDs with their keys' fingerprints.
    List,
    /// Remove a DID's pin: its packets are then a claim again, and a key it
    /// offers waits for review.
    Remove {
        /// The pinned DID.
        did: String,
    },
}

/// Runs `pins`.
pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let request = match &args.action {
        Action::List => Request::Pins,
        Action::Remove { did } => Request::Unpin {
            did: parse::did(did)?,
        },
    };
    let response = match args.client.ask(&request)? {
        Ok(response) => response,
        Err(code) => return Ok(code),
    };
    let pins = response.pins.unwrap_or_default();
    match args.action {
        Action::Remove { .. } => {
            for p in &pins {
                println!(
                    "removed the pin of {} (key {})",
                    safe(&p.did),
                    p.fingerprint
                );
            }
        }
        Action::List if pins.is_empty() => println!("no pins"),
        Action::List => {
            for p in &pins {
                println!("{}  {}  {}", safe(&p.did), p.fingerprint, p.public_key);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
