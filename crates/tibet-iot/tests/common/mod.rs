//! Shared by the namespace tests (`netns.rs`, `netns_spoof.rs`,
//! `netns_ipv6.rs`): the commands every node child understands, driven line
//! by line over stdin, and the child's identity.

use tibet_iot::{IoTNode, SendOptions};
use tibet_ping::{PingOptions, RoutingMode};

/// Runs one of the common node commands and returns its answer line (the
/// caller adds its prefix), or `None` when `words` is not one of them:
///
/// - `trust DID SCORE` → `ok`
/// - `peer DID ADDR` → `ok`
/// - `ping DID ADDR direct|mesh` → `resp ZONE RESPONDER`, `resp none` or
///   `resp error ...` (the ping's purpose is `purpose`)
pub(crate) async fn node_command(node: &IoTNode, words: &[&str], purpose: &str) -> Option<String> {
    Some(match words {
        ["trust", d, t] => {
            node.set_trust(d, t.parse().unwrap());
            "ok".to_owned()
        }
        ["peer", d, a] => {
            node.add_peer(d, a.parse().unwrap());
            "ok".to_owned()
        }
        ["ping", d, a, mode] => {
            let routing_mode = if *mode == "mesh" {
                RoutingMode::Mesh
            } else {
                RoutingMode::Direct
            };
            let opts = SendOptions {
                ping: PingOptions {
                    routing_mode,
                    ..Default::default()
                },
                ..Default::default()
            };
            match node
                .send_ping(d, a.parse().unwrap(), "netns.test", purpose, opts)
                .await
            {
                Ok(Some(r)) => format!("resp {} {}", r.airlock_zone, r.responder_did),
                Ok(None) => "resp none".to_owned(),
                Err(e) => format!("resp error {e}"),
            }
        }
        _ => return None,
    })
}

/// The child's key and pins from the environment: `TIBET_CHILD_KEY=N`
/// (a key from the seed of 32 bytes N) and `TIBET_CHILD_PINS=DID=N,...`.
#[allow(dead_code, reason = "not every namespace test starts nodes with keys")]
pub(crate) fn child_identity() -> tibet_iot::IdentityConfig {
    use tibet_ping::identity::{Keypair, PinStore};
    let key = |n: &str| Keypair::from_seed(&[n.parse::<u8>().expect("seed byte"); 32]);
    let mut pins = PinStore::new(16);
    for entry in std::env::var("TIBET_CHILD_PINS")
        .unwrap_or_default()
        .split(',')
        .filter(|e| !e.is_empty())
    {
        let (did, n) = entry.split_once('=').expect("DID=N");
        pins.set(did, key(n).public()).expect("pin");
    }
    tibet_iot::IdentityConfig {
        key: std::env::var("TIBET_CHILD_KEY").ok().map(|n| key(&n)),
        pins,
        ..Default::default()
    }
}
