//! The metrics endpoint through the public API over real loopback sockets:
//! pings between two nodes show up on the page, in both text formats, and
//! an address that cannot be bound is a typed error.

use std::sync::Arc;
use std::time::Duration;

use tibet_iot::{IoTNode, SendOptions, TransportConfig};
use tibet_iot_ops::{MetricsError, MetricsServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One GET of `/metrics` with `accept`; the whole response (head and body).
async fn scrape(addr: std::net::SocketAddr, accept: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("answered within 10 s")
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_between_two_nodes_show_on_the_page() {
    let hub = Arc::new(IoTNode::new("jis:home:hub", TransportConfig::loopback()));
    let hub_addr = hub.start().await.unwrap();
    hub.set_trust("jis:home:phone", 0.9);
    let phone = IoTNode::new("jis:home:phone", TransportConfig::loopback());
    phone.start().await.unwrap();
    let metrics = MetricsServer::serve(hub.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for _ in 0..3 {
        let r = phone
            .send_ping(
                "jis:home:hub",
                hub_addr,
                "light.on",
                "evening",
                SendOptions::default(),
            )
            .await
            .unwrap()
            .expect("the hub answers a trusted phone");
        assert_eq!(r.responder_did, "jis:home:hub");
    }

    let page = scrape(metrics.local_addr(), "*/*").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(
        page.contains("Content-Type: text/plain; version=0.0.4"),
        "{page}"
    );
    for line in [
        "tibet_pings_total{zone=\"GROEN\",decision=\"accept\"} 3",
        "tibet_ping_processing_seconds_count 3",
        "tibet_datagrams_received_total 3",
        "tibet_peers 1",
    ] {
        assert!(page.contains(line), "{line} in {page}");
    }
    assert!(!page.contains("# EOF"), "classic text has no EOF line");
    assert!(!page.contains("tibet_mqtt_"), "no fleet, no MQTT series");

    let page = scrape(
        metrics.local_addr(),
        "application/openmetrics-text;version=1.0.0",
    )
    .await;
    assert!(page.contains("application/openmetrics-text"), "{page}");
    assert!(page.ends_with("# EOF\n"), "{page}");

    // The port is let go when the server is dropped.
    let addr = metrics.local_addr();
    drop(metrics);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still serving");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_address_that_cannot_be_bound_is_a_typed_error() {
    let node = Arc::new(IoTNode::new("jis:home:hub", TransportConfig::loopback()));
    // 192.0.2.0/24 is documentation space: no interface here has it.
    let addr = "192.0.2.1:9".parse().unwrap();
    let err = MetricsServer::serve(node, addr).await.unwrap_err();
    assert!(
        matches!(err, MetricsError::Bind { addr: a, .. } if a == addr),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot serve metrics on 192.0.2.1:9"),
        "{err}"
    );
}
