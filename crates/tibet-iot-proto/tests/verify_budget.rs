//! Verification under flood (docs/SECURITY.md, verification budget): packets
//! that would cost a signature check and do not come from their DID's proven
//! address are checked within a per-address and a shared budget, so a flood
//! of signatures cannot make the node verify at the expense of pinned peers.
//! The attacker here shares the pinned peer's IP address (another port), as
//! two processes behind one NAT would. The measured version on real sockets
//! is `cargo run --release -p tibet-iot --example verify_flood`.

use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot_proto::sim::{Sim, did};
use tibet_iot_proto::{Engine, GuardConfig, IdentityConfig, Now, TransportConfig};
use tibet_ping::identity::{IdentityMode, Keypair, PinStore};
use tibet_ping::{PacketCodec, PingNode, PingNodeConfig, PingOptions};

const PINNED_IDLE: &str = "jis:home:lock";
const PEER: &str = "jis:home:phone";

fn key(i: u8) -> Keypair {
    Keypair::from_seed(&[i; 32])
}

fn speaker(did: &str, signer: Keypair, seed: u64) -> PingNode {
    let config = PingNodeConfig {
        nonce_capacity: 4096,
        ..PingNodeConfig::default()
    };
    let mut node = PingNode::new(did, config, Box::new(StdRng::seed_from_u64(seed)));
    node.set_signer(Box::new(signer));
    node
}

fn ping(node: &mut PingNode, now: Now) -> Vec<u8> {
    let p = node.ping(
        now.wall,
        &did(0),
        "door.unlock",
        "x",
        PingOptions::default(),
    );
    PacketCodec::json().encode_packet(&p).unwrap()
}

fn hub() -> Sim {
    let mut sim = Sim::new(41);
    let mut pins = PinStore::new(64);
    pins.set(PINNED_IDLE, key(1).public()).unwrap();
    pins.set(PEER, key(2).public()).unwrap();
    let config = TransportConfig {
        identity: IdentityConfig {
            mode: IdentityMode::Prefer,
            key: Some(key(100)),
            pins,
            ..IdentityConfig::default()
        },
        ..Sim::config()
    };
    sim.add(0, config);
    let now = sim.now();
    let hub = sim.node(0);
    hub.set_trust(now, PINNED_IDLE, 0.9);
    hub.set_trust(now, PEER, 0.9);
    sim
}

fn answers(engine: &mut Engine) -> usize {
    std::iter::from_fn(|| engine.poll_transmit()).count()
}

/// Signature checks the engine made (each refusal after a check counts).
fn checked(engine: &mut Engine, now: Now) -> u64 {
    let id = engine.stats(now).identity;
    id.verified + id.bad_signature + id.wrong_key
}

#[test]
fn row3_a_signature_flood_from_the_peers_own_ip_never_starves_the_pinned_peer() {
    for batched in [false, true] {
        let mut sim = hub();
        let peer_addr: SocketAddr = "10.9.0.1:7000".parse().unwrap();
        let flood_addr: SocketAddr = "10.9.0.1:7001".parse().unwrap();
        let random_addr: SocketAddr = "10.9.0.1:7002".parse().unwrap();
        let mut peer = speaker(PEER, key(2), 1);
        // The pinned peer talks before the flood: its address is proven by
        // its first verified ping.
        let now = sim.now();
        let hub = sim.node(0);
        hub.handle_datagram(now, peer_addr, &ping(&mut peer, now));
        assert_eq!(answers(hub), 1);
        assert_eq!(
            hub.peers().proven_address(now.mono, PEER),
            Some(peer_addr),
            "batched {batched}"
        );

        // One packet claiming the idle pinned DID, validly signed by another
        // key, re-sent over and over: each copy would cost a full check.
        let mut forger = speaker(PINNED_IDLE, key(66), 2);
        let forged = ping(&mut forger, now);
        // And one with a random signature claiming the peer's own DID.
        let mut garbage =
            tibet_ping::PingPacket::new("ping_00000000000000aa", PEER, did(0), "door.unlock", "x");
        garbage.nonce = "00112233445566778899aabbccddeeff".into();
        garbage.timestamp = now.wall.to_iso();
        garbage.signature = "QUJD".repeat(22);
        let garbage = PacketCodec::json().encode_packet(&garbage).unwrap();

        let (mut sent, mut answered) = (0, 0);
        let now = sim.now();
        let before = checked(sim.node(0), now);
        // 5 virtual seconds: 2,000 flood datagrams and 10 peer pings each.
        for _ in 0..5 {
            for _ in 0..10 {
                let now = sim.now();
                let hub = sim.node(0);
                let mut batch: Vec<(SocketAddr, &[u8])> = Vec::new();
                for i in 0..200 {
                    let (from, bytes) = if i % 4 == 0 {
                        (random_addr, &garbage[..])
                    } else {
                        (flood_addr, &forged[..])
                    };
                    batch.push((from, bytes));
                }
                let mine = ping(&mut peer, now);
                batch.insert(100, (peer_addr, &mine));
                if batched {
                    hub.handle_datagrams(now, &batch);
                } else {
                    for (from, bytes) in &batch {
                        hub.handle_datagram(now, *from, bytes);
                    }
                }
                sent += 1;
                answered += answers(hub);
                sim.run_for(Duration::from_millis(100));
            }
        }
        assert_eq!(
            answered, sent,
            "batched {batched}: every peer ping answered"
        );
        let now = sim.now();
        let hub = sim.node(0);
        let flood_checks = checked(hub, now) - before - sent as u64;
        let cfg = GuardConfig::default();
        let bound = cfg.verify_burst + cfg.verify_rate * 5.0;
        assert!(
            flood_checks as f64 <= bound,
            "batched {batched}: {flood_checks} checks for 10,000 flood datagrams (bound {bound})"
        );
        let stats = hub.stats(now);
        assert!(
            stats.identity.over_verify_budget >= 10_000 - bound as u64,
            "batched {batched}: {:?}",
            stats.identity
        );
        assert_eq!(
            hub.peers().proven_address(now.mono, PEER),
            Some(peer_addr),
            "batched {batched}: the flood moved nothing"
        );
    }
}
