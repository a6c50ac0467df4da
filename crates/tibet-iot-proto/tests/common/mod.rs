//! Helpers shared by the engine's identity and receive-path tests: keys,
//! pinned configurations, packet factories and what an engine made
//! observable.

#![allow(dead_code)]

use std::net::SocketAddr;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot_proto::sim::{Sim, did};
use tibet_iot_proto::{Engine, IdentityConfig, Now, TransportConfig};
use tibet_ping::identity::{IdentityMode, Keypair, PinStore};
use tibet_ping::{PacketCodec, PingNode, PingNodeConfig, PingPacket};

/// Node `i`'s key (a fixed seed per node).
pub(crate) fn key(i: usize) -> Keypair {
    Keypair::from_seed(&[u8::try_from(i).unwrap() + 1; 32])
}

/// Node `i` with its own key, pinning the keys of `pinned`.
pub(crate) fn keyed(i: usize, pinned: &[usize], mode: IdentityMode) -> TransportConfig {
    let mut pins = PinStore::new(64);
    for &j in pinned {
        pins.set(&did(j), key(j).public()).unwrap();
    }
    TransportConfig {
        identity: IdentityConfig {
            mode,
            key: Some(key(i)),
            pins,
            ..IdentityConfig::default()
        },
        ..Sim::config()
    }
}

/// A protocol core speaking as `did`, signing with `signer` (if any): the
/// attacker's (or a honest device's) packet factory.
pub(crate) fn speaker(did: &str, signer: Option<Keypair>, seed: u64) -> PingNode {
    let config = PingNodeConfig {
        nonce_capacity: 64,
        ..PingNodeConfig::default()
    };
    let mut node = PingNode::new(did, config, Box::new(StdRng::seed_from_u64(seed)));
    if let Some(k) = signer {
        node.set_signer(Box::new(k));
    }
    node
}

/// `p` as a JSON frame.
pub(crate) fn encode(p: &PingPacket) -> Vec<u8> {
    PacketCodec::json().encode_packet(p).unwrap()
}

/// A source address outside the simulation's own.
pub(crate) fn src(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 9, 0, i], 7150))
}

/// Everything `engine` made observable (transmits, audit records, events, in
/// that order) and its stats, as text to compare two runs by.
pub(crate) fn observe(engine: &mut Engine, now: Now) -> (Vec<String>, String) {
    let mut seen = Vec::new();
    while let Some(t) = engine.poll_transmit() {
        seen.push(format!("transmit {t:?}"));
    }
    while let Some(r) = engine.poll_audit() {
        seen.push(format!("audit {r:?}"));
    }
    while let Some(e) = engine.poll_event() {
        seen.push(format!("event {e:?}"));
    }
    (seen, format!("{:?}", engine.stats(now)))
}
