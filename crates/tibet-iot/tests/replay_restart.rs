//! No replay across restarts (docs/SECURITY.md): a signed packet captured
//! before a restart is refused after it, however soon the restart comes,
//! after a clean stop and after a crash (the runtime dropped without a
//! stop, as SIGKILL leaves it). Over real sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot::{IdentityConfig, IoTNode, StartError, StateError, TransportConfig};
use tibet_ping::identity::{IdentityMode, Keypair, PinStore};
use tibet_ping::{Frame, PacketCodec, PingNode, PingNodeConfig, PingOptions, Timestamp};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const HUB: &str = "jis:home:hub";
const DOOR: &str = "jis:home:door";

fn door_key() -> Keypair {
    Keypair::from_seed(&[9; 32])
}

fn hub(state: &Path, port: u16) -> IoTNode {
    let mut pins = PinStore::new(8);
    pins.set(DOOR, door_key().public()).unwrap();
    let config = TransportConfig {
        bind_port: port,
        identity: IdentityConfig {
            mode: IdentityMode::Prefer,
            pins,
            ..IdentityConfig::default()
        },
        ..TransportConfig::loopback()
    };
    let node = IoTNode::new(HUB, config);
    node.set_trust(DOOR, 0.9);
    node.set_state_dir(Some(state.to_owned()));
    node
}

fn door(seed: u64) -> PingNode {
    let mut node = PingNode::new(
        DOOR,
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(seed)),
    );
    node.set_signer(Box::new(door_key()));
    node
}

fn unlock(node: &mut PingNode) -> (String, Vec<u8>) {
    let p = node.ping(
        Timestamp::now(),
        HUB,
        "door.unlock",
        "let me in",
        PingOptions::default(),
    );
    (
        p.packet_id.clone(),
        PacketCodec::json().encode_packet(&p).unwrap(),
    )
}

/// Sends `replayed`, then a fresh ping, and returns the packet ids answered
/// until the fresh one's answer: the node handles datagrams in order, so the
/// replay was decided before the fresh answer left.
async fn replay_then_fresh(
    sock: &UdpSocket,
    to: SocketAddr,
    replayed: &[u8],
    node: &mut PingNode,
) -> Vec<String> {
    let (fresh_id, fresh) = unlock(node);
    sock.send_to(replayed, to).await.unwrap();
    sock.send_to(&fresh, to).await.unwrap();
    let mut answered = Vec::new();
    let mut buf = [0u8; 8192];
    timeout(Duration::from_secs(5), async {
        loop {
            let (n, _) = sock.recv_from(&mut buf).await.unwrap();
            if let Ok(Frame::Response(r)) = PacketCodec::json().decode(&buf[..n]) {
                answered.push(r.in_response_to.clone());
                if r.in_response_to == fresh_id {
                    break;
                }
            }
        }
    })
    .await
    .expect("the fresh ping is answered within 5 s");
    answered
}

async fn capture(sock: &UdpSocket, to: SocketAddr, node: &mut PingNode) -> Vec<u8> {
    let (id, bytes) = unlock(node);
    sock.send_to(&bytes, to).await.unwrap();
    let mut buf = [0u8; 8192];
    let (n, _) = timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("answer")
        .unwrap();
    match PacketCodec::json().decode(&buf[..n]) {
        Ok(Frame::Response(r)) => assert_eq!(r.in_response_to, id),
        other => panic!("expected the answer, got {other:?}"),
    }
    bytes
}

#[tokio::test]
async fn a_captured_signed_packet_is_refused_after_a_clean_restart() {
    let state = tempfile::tempdir().unwrap();
    let node = hub(state.path(), 0);
    let addr = node.start().await.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut client = door(1);
    let captured = capture(&sock, addr, &mut client).await;
    node.stop().await;

    let node = hub(state.path(), addr.port());
    let addr = node.start().await.unwrap();
    let answered = replay_then_fresh(&sock, addr, &captured, &mut client).await;
    assert_eq!(
        answered.len(),
        1,
        "only the fresh ping is answered: {answered:?}"
    );
    let stats = node.stats();
    assert_eq!(stats.ping.replay_reasons.before_restart, 1);
    node.stop().await;
}

#[test]
fn a_captured_signed_packet_is_refused_after_a_crash() {
    let state = tempfile::tempdir().unwrap();
    let mut client = door(2);
    // The first run dies without a stop: its runtime is dropped with the
    // driver and the horizon keeper in flight.
    let (addr, captured) = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let node = hub(state.path(), 0);
        let out = rt.block_on(async {
            let addr = node.start().await.unwrap();
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            (addr, capture(&sock, addr, &mut client).await)
        });
        drop(rt);
        drop(node); // no stop, no final horizon: as a SIGKILL
        out
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let node = hub(state.path(), addr.port());
        let addr = node.start().await.unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // After a crash the node cannot know what the last run accepted in
        // its last moments: it refuses everything sent up to the horizon
        // that run wrote (at most lead + skew after the crash). Fresh pings
        // are answered once past it; the captured one never is.
        let mut refused_fresh = 0;
        loop {
            let (fresh_id, fresh) = unlock(&mut client);
            sock.send_to(&captured, addr).await.unwrap();
            sock.send_to(&fresh, addr).await.unwrap();
            let mut buf = [0u8; 8192];
            match timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await {
                Ok(Ok((n, _))) => {
                    match PacketCodec::json().decode(&buf[..n]) {
                        Ok(Frame::Response(r)) => assert_eq!(r.in_response_to, fresh_id),
                        other => panic!("{other:?}"),
                    }
                    break;
                }
                _ => refused_fresh += 1,
            }
            let waited = Duration::from_millis(500) * refused_fresh;
            let most = tibet_iot::HORIZON_LEAD + Duration::from_secs(6);
            assert!(waited <= most, "fresh pings refused for {waited:?}");
        }
        let replays = node.stats().ping.replay_reasons.before_restart;
        assert_eq!(
            replays,
            2 * refused_fresh as u64 + 1,
            "every copy of the capture refused"
        );
        node.stop().await;
    });
}

#[tokio::test]
async fn two_nodes_never_share_a_state_directory() {
    let state = tempfile::tempdir().unwrap();
    let a = hub(state.path(), 0);
    a.start().await.unwrap();
    let b = hub(state.path(), 0);
    match b.start().await {
        Err(StartError::State(StateError::InUse(dir))) => assert_eq!(dir, state.path()),
        other => panic!("expected the directory in use, got {other:?}"),
    }
    a.stop().await;
    b.start().await.expect("free once the first node stopped");
    b.stop().await;
}
