//! Requests that fail for a reason the node can name, over real sockets on
//! 127.0.0.1: nothing listening (an ICMP port unreachable ends the request
//! at once) and an answer refused by the identity check (the request fails
//! at its deadline, naming the pinned key).

use std::time::{Duration, Instant};

use tibet_iot::{IdentityConfig, IoTNode, SendError, SendOptions, TransportConfig};
use tibet_ping::identity::Keypair;

fn options(timeout: Duration) -> SendOptions {
    SendOptions {
        timeout: Some(timeout),
        ..SendOptions::default()
    }
}

#[tokio::test]
async fn a_closed_port_fails_the_request_as_unreachable_before_its_timeout() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let node = IoTNode::new("jis:home:hub", TransportConfig::loopback());
    node.start().await.unwrap();
    let started = Instant::now();
    let result = node
        .send_ping(
            "jis:home:sensor",
            addr,
            "t.read",
            "p",
            options(Duration::from_secs(30)),
        )
        .await;
    assert_eq!(result, Err(SendError::Unreachable { addr }));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not the timeout"
    );
    assert_eq!(node.stats().engine.requests_unreachable, 1);
    // The node goes on: a second request to the closed port fails alike.
    let again = node
        .send_ping(
            "jis:home:sensor",
            addr,
            "t.read",
            "p",
            options(Duration::from_secs(30)),
        )
        .await;
    assert_eq!(again, Err(SendError::Unreachable { addr }));
    node.stop().await;
}

#[tokio::test]
async fn an_answer_signed_by_another_key_fails_the_request_naming_the_pin() {
    let real = Keypair::from_seed(&[1; 32]);
    let pinned = Keypair::from_seed(&[2; 32]);
    let sensor = IoTNode::new(
        "jis:home:sensor",
        TransportConfig {
            identity: IdentityConfig {
                key: Some(real),
                ..IdentityConfig::default()
            },
            ..TransportConfig::loopback()
        },
    );
    sensor.set_trust("jis:home:hub", 0.9);
    let sensor_addr = sensor.start().await.unwrap();
    // The hub signs its request (answers are signed for senders that sign).
    let mut identity = IdentityConfig {
        key: Some(Keypair::from_seed(&[3; 32])),
        ..IdentityConfig::default()
    };
    identity
        .pins
        .set("jis:home:sensor", pinned.public())
        .unwrap();
    let hub = IoTNode::new(
        "jis:home:hub",
        TransportConfig {
            identity,
            ..TransportConfig::loopback()
        },
    );
    hub.start().await.unwrap();
    let result = hub
        .send_ping(
            "jis:home:sensor",
            sensor_addr,
            "t.read",
            "p",
            options(Duration::from_millis(500)),
        )
        .await;
    assert_eq!(
        result,
        Err(SendError::AnswerRefused {
            responder_did: "jis:home:sensor".into(),
            from: sensor_addr,
            signed: true,
            pinned_key: Some(pinned.public().sha256_hex()[..16].to_owned()),
        })
    );
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("does not verify with the pinned key"),
    );
    hub.stop().await;
    sensor.stop().await;
}
