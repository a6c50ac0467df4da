//! A request's datagram leaves from the caller's thread (the driver is not
//! woken first), and what could not leave so still does: over real
//! sockets on 127.0.0.1.

use std::time::Duration;

use tibet_iot::{IoTNode, SendOptions, TransportConfig};
use tibet_ping::PingDecision;

async fn pair() -> (IoTNode, IoTNode) {
    let hub = IoTNode::new("jis:home:hub", TransportConfig::loopback());
    let sensor = IoTNode::new("jis:home:sensor", TransportConfig::loopback());
    sensor.set_trust("jis:home:hub", 0.9);
    hub.start().await.unwrap();
    sensor.start().await.unwrap();
    (hub, sensor)
}

#[tokio::test]
async fn sequential_requests_leave_from_the_callers_thread_and_are_answered() {
    let (hub, sensor) = pair().await;
    let to = sensor.local_addr().unwrap();
    for _ in 0..50 {
        let answer = hub
            .send_ping(
                "jis:home:sensor",
                to,
                "temperature.read",
                "now",
                SendOptions::default(),
            )
            .await
            .unwrap()
            .expect("answered");
        assert_eq!(answer.decision, PingDecision::Accept);
    }
    let driver = hub.stats().driver;
    assert_eq!(
        driver.sent_direct, 50,
        "every request's datagram left directly"
    );
    assert_eq!(driver.send_errors, 0);
    hub.stop().await;
    sensor.stop().await;
}

#[tokio::test]
async fn a_request_to_a_closed_port_still_fails_fast_and_a_timeout_still_fires() {
    let (hub, sensor) = pair().await;
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let err = hub
        .send_ping("jis:home:x", closed, "a", "b", SendOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, tibet_iot::SendError::Unreachable { .. }),
        "{err}"
    );
    // A timeout earlier than anything the driver sleeps until wakes it.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let options = SendOptions {
        timeout: Some(Duration::from_millis(200)),
        ..SendOptions::default()
    };
    let started = std::time::Instant::now();
    let answer = hub
        .send_ping(
            "jis:home:x",
            silent.local_addr().unwrap(),
            "a",
            "b",
            options,
        )
        .await
        .unwrap();
    assert!(answer.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    hub.stop().await;
    sensor.stop().await;
}
