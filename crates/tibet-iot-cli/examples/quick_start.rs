//! The README's Quick Start: a hub that trusts a sensor and pings it over UDP.
//!
//! ```text
//! # terminal 1: the sensor, trusting the hub
//! tibet-iot listen --did jis:home:sensor --bind 127.0.0.1 --port 7152 --trust jis:home:hub=0.9
//! # terminal 2
//! cargo run -p tibet-iot-cli --example quick_start -- 127.0.0.1:7152
//! ```

use std::net::SocketAddr;

use tibet_iot::{IoTNode, SendOptions, TransportConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Where the sensor listens, e.g. 192.168.1.42:7150 on a LAN.
    let sensor: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7152".into())
        .parse()?;

    let config = TransportConfig {
        bind_port: 7150,
        // Loopback only; drop these two lines to run on a LAN.
        bind_host: std::net::Ipv4Addr::LOCALHOST.into(),
        multicast_interface: std::net::Ipv4Addr::LOCALHOST,
        ..TransportConfig::default()
    };
    let node = IoTNode::new("jis:home:hub", config);
    node.set_trust("jis:home:sensor", 0.9);
    node.start().await?;

    // Send a real ping over UDP; `None` means no answer in time (a silent drop looks the same).
    let response = node
        .send_ping(
            "jis:home:sensor",
            sensor,
            "temperature.read",
            "Check room temperature",
            SendOptions::default(),
        )
        .await?;

    if let Some(response) = response {
        println!("{} — zone: {}", response.decision, response.airlock_zone);
    }

    node.stop().await;
    Ok(())
}
