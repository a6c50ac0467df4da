//! The README's Quick Start: a hub that trusts a sensor and pings it over UDP.
//!
//! ```text
//! # once: put `tibet-iot` on the PATH
//! cargo install --locked --path crates/tibet-iot-cli
//! # terminal 1: the sensor, trusting the hub
//! tibet-iot listen --did jis:home:sensor --bind 127.0.0.1 --port 7152 --no-discovery --trust jis:home:hub=0.9
//! # terminal 2
//! cargo run -p tibet-iot-cli --example quick_start -- 127.0.0.1:7152
//! ```
//!
//! Exit status 0 when the sensor answered, 3 (and "no answer") when nothing
//! answered in time, 4 when nothing listens at the address.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tibet_iot::{IoTNode, SendError, SendOptions, TransportConfig};

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    // Where the sensor listens, e.g. 192.168.1.42:7150 on a LAN.
    let sensor: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7152".into())
        .parse()?;

    let config = TransportConfig {
        // Any free port: 7150 is where `tibet-iot listen` runs by default.
        bind_port: 0,
        // Loopback only; drop these two lines to run on a LAN.
        bind_host: std::net::Ipv4Addr::LOCALHOST.into(),
        multicast_interface: std::net::Ipv4Addr::LOCALHOST,
        ..TransportConfig::default()
    };
    let node = IoTNode::new("jis:home:hub", config);
    node.set_trust("jis:home:sensor", 0.9);
    node.start().await?;

    // Send a real ping over UDP; `None` means no answer in time (a silent drop looks the same).
    let options = SendOptions {
        timeout: Some(Duration::from_secs(3)),
        ..SendOptions::default()
    };
    let response = node
        .send_ping(
            "jis:home:sensor",
            sensor,
            "temperature.read",
            "Check room temperature",
            options,
        )
        .await;
    node.stop().await;

    match response {
        Ok(Some(response)) => {
            println!("{} — zone: {}", response.decision, response.airlock_zone);
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            println!("no answer from {sensor} (does the sensor trust jis:home:hub?)");
            Ok(ExitCode::from(3))
        }
        Err(e @ SendError::Unreachable { .. }) => {
            println!("{e}");
            Ok(ExitCode::from(4))
        }
        Err(e) => Err(e.into()),
    }
}
