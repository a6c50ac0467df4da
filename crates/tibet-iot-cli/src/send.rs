//! `tibet-iot send`: one ping, one answer (or the honest lack of one).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use tibet_iot::SendError;
use tibet_ping::{PingDecision, RoutingMode};

use crate::node_handle::{Node, Outgoing};
use crate::output;
use crate::parse;
use crate::settings::{NetFlags, Settings};

/// Exit status: the ping was accepted.
pub(crate) const EXIT_ACCEPTED: u8 = 0;
/// Exit status: the ping waits for human review.
pub(crate) const EXIT_PENDING: u8 = 2;
/// Exit status: no response (timeout or silent drop).
pub(crate) const EXIT_NO_RESPONSE: u8 = 3;
/// Exit status: nothing listens at the address (ICMP port unreachable).
pub(crate) const EXIT_UNREACHABLE: u8 = 4;
/// Exit status: an answer came, but our pin refused its signature.
pub(crate) const EXIT_ANSWER_REFUSED: u8 = 5;

/// Arguments of `send`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 accepted, 2 pending review, 3 no response (timeout or silent drop), \
                  4 nothing listening (ICMP port unreachable), 5 answer refused by our --pin, 1 error."
)]
pub(crate) struct Args {
    /// The target's DID (or `broadcast`).
    #[arg(value_name = "DID")]
    target: String,
    /// Where the target listens, HOST:PORT.
    #[arg(value_name = "HOST:PORT")]
    addr: String,
    /// What you want, e.g. temperature.read.
    intent: String,
    /// Our own DID.
    #[arg(long, value_name = "DID")]
    my_did: String,
    /// Why (the human purpose, ERACHTER).
    #[arg(long, default_value = "CLI ping")]
    purpose: String,
    /// JSON object sent as the ping's payload.
    #[arg(long, value_name = "JSON")]
    payload: Option<String>,
    /// Local UDP port to send from (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "S", default_value = "10", value_parser = parse::seconds, allow_negative_numbers = true)]
    timeout: Duration,
    /// Route through the mesh (relays forward it toward the target).
    #[arg(long)]
    mesh: bool,
    /// Print the whole response as one JSON object, plus `round_trip_ms`
    /// (measured here, send to answer); its `rtt_ms` is the responder's
    /// own processing time.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: NetFlags,
}

/// Runs `send`.
pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    let target = parse::target_did(&args.target)?;
    let my_did = parse::did(&args.my_did)?;
    let addr: SocketAddr = parse::host_port(&args.addr)?;
    let payload = args.payload.as_deref().map(parse::payload).transpose()?;
    let mut settings = Settings::client(my_did, args.port, &args.net);
    // `send` signs with its node key (created on first use): a listener that
    // pins it can tell it from anyone claiming its DID.
    settings.identity.state = crate::identity_flags::StateUse::Key;
    let node = Node::start(&settings).await?;
    let started = Instant::now();
    let answer = node
        .send(Outgoing {
            target: target.clone(),
            addr,
            intent: args.intent.clone(),
            purpose: args.purpose.clone(),
            payload: payload.unwrap_or_default(),
            routing: if args.mesh {
                RoutingMode::Mesh
            } else {
                RoutingMode::Direct
            },
            timeout: args.timeout,
        })
        .await;
    // Sender-measured round trip; the response's `rtt_ms` is the
    // responder's processing time, a different number.
    let round_trip = started.elapsed();
    // An answer is authenticated when its responder is pinned here (the
    // engine refused it otherwise); any other answer is a claim.
    let (mode, pins) = node.identity();
    node.stop().await;
    let response = match answer {
        Ok(Some(response)) => response,
        Ok(None) => {
            let line = format!(
                "no response from {target} at {addr} within {:.1}s: a timeout, or a silent \
                 drop (receivers answer nothing to senders they do not trust, nor to pings \
                 for a DID not their own: is {target} the listener's DID?)",
                args.timeout.as_secs_f64()
            );
            return failed(&args, &target, addr, "timeout", &line, EXIT_NO_RESPONSE);
        }
        Err(e @ SendError::Unreachable { .. }) => {
            let line = format!("{e}: is the listener running, and on this port?");
            return failed(&args, &target, addr, "unreachable", &line, EXIT_UNREACHABLE);
        }
        Err(e @ SendError::AnswerRefused { .. }) => {
            let line = format!(
                "{e}; check --pin {target}=KEY (`tibet-iot pubkey KEYFILE` on the listener \
                 prints its key)"
            );
            return failed(
                &args,
                &target,
                addr,
                "answer_refused",
                &line,
                EXIT_ANSWER_REFUSED,
            );
        }
        Err(e) => return Err(e.into()),
    };
    let authenticated = mode != tibet_ping::identity::IdentityMode::Off
        && pins.get(&response.responder_did).is_some();
    if !authenticated {
        let who = output::safe(&response.responder_did);
        eprintln!(
            "warning: the answer is not authenticated: {who} has no pin here, so anyone on the \
             network could have sent it (pin it with --pin {who}=PUBKEY)"
        );
    }
    if args.json {
        let mut v = serde_json::to_value(&response)?;
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "round_trip_ms".into(),
                serde_json::json!(round_ms(round_trip)),
            );
            m.insert("authenticated".into(), authenticated.into());
        }
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!("{}", output::answer_line(&response, round_trip));
        if response.decision == PingDecision::Pending {
            println!(
                "pending: {} holds the ping for human review",
                output::safe(&response.responder_did)
            );
        }
    }
    Ok(ExitCode::from(match response.decision {
        PingDecision::Accept => EXIT_ACCEPTED,
        PingDecision::Pending => EXIT_PENDING,
        // A receiver never answers a reject; if one does, it is not a success.
        PingDecision::Reject => 1,
    }))
}

/// Reports a request that got no usable answer: `line` on stdout (or one
/// JSON object with `reason`), and its exit status.
fn failed(
    args: &Args,
    target: &str,
    addr: SocketAddr,
    reason: &str,
    line: &str,
    code: u8,
) -> Result<ExitCode> {
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "no_response": true,
                "reason": reason,
                "message": line,
                "target": target,
                "addr": addr.to_string(),
                "timeout_s": args.timeout.as_secs_f64(),
            })
        );
    } else {
        println!("{line}");
    }
    Ok(ExitCode::from(code))
}

/// A duration in milliseconds, to the microsecond (`6.073`, not
/// `6.072636999999999`).
pub(crate) fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_printed_to_the_microsecond() {
        assert_eq!(round_ms(Duration::from_nanos(6_072_636)), 6.073);
        assert_eq!(round_ms(Duration::from_micros(383)), 0.383);
        assert_eq!(round_ms(Duration::ZERO), 0.0);
    }
}
