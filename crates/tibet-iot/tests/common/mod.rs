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
/// - `identity` → `identity VERIFIED REFUSED RESPONSES_VERIFIED
///   RESPONSES_REFUSED`
/// - `relayed` → `relayed PACKETS RESPONSES`
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
        ["identity"] => {
            let s = node.stats().identity;
            format!(
                "identity {} {} {} {}",
                s.verified,
                s.refused(),
                s.responses_verified,
                s.responses_refused
            )
        }
        ["relayed"] => {
            let s = node.stats().relay;
            format!("relayed {} {}", s.relayed, s.responses_relayed)
        }
        _ => return None,
    })
}

/// Three hosts in a line, A - B - C, where B does not forward IP: A cannot
/// reach C directly; once B knows both as peers and trusts A (GEEL, so the
/// relay and the answer back are paid from A's and C's amplification
/// credit, docs/SECURITY.md), A's mesh ping to C through B is answered
/// GROEN and B counts one packet relayed and one response back.
/// `addrs`: C's address as A would reach it directly, A's and C's
/// addresses as B reaches them, and B's address as A reaches it.
#[allow(dead_code, reason = "not every namespace test has three hosts")]
pub(crate) fn relay_through_the_middle(
    [a, b, c]: [&mut tibet_testkit::NsChild; 3],
    [did_a, did_c]: [&str; 2],
    [c_direct, a_from_b, c_from_b, b_from_a]: [&str; 4],
) {
    c.cmd(&format!("trust {did_a} 0.9"), "ok");
    assert_eq!(
        a.cmd(&format!("ping {did_c} {c_direct} direct"), "resp"),
        ["resp", "none"],
        "A cannot reach C: no route, B does not forward IP"
    );
    b.cmd(&format!("peer {did_a} {a_from_b}"), "ok");
    b.cmd(&format!("peer {did_c} {c_from_b}"), "ok");
    b.cmd(&format!("trust {did_a} 0.5"), "ok");
    assert_eq!(
        a.cmd(&format!("ping {did_c} {b_from_a} mesh"), "resp"),
        ["resp", "GROEN", did_c]
    );
    assert_eq!(
        b.cmd("relayed", "relayed"),
        ["relayed", "1", "1"],
        "one packet relayed, one response back"
    );
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
