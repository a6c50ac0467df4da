//! Operations for a [`tibet_iot::IoTNode`]: what a node needs to run in a
//! fleet and be watched, as a library (the `tibet-iot listen` command uses
//! it for `--metrics` and `--mqtt`; so can any Rust program).
//!
//! - [`MetricsServer`]: the node's counters as a Prometheus / OpenMetrics
//!   page at `http://ADDR/metrics` (docs/OPERATIONS.md lists the series).
//!   Every series reads a field of the typed [`tibet_iot::NodeStats`].
//! - [`MqttUplink`]: the node's uplink joined to an MQTT broker, so that
//!   nodes that share no LAN ping each other through it (docs/FLEETS.md).
//!   [`MqttConfig`] says which broker, as whom, under which topic prefix.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tibet_iot::{IoTNode, TransportConfig};
//! use tibet_iot_ops::{MetricsServer, MqttConfig, MqttUplink};
//!
//! let node = Arc::new(IoTNode::new("jis:site-a:hub", TransportConfig::default()));
//! node.start().await?;
//! let metrics = MetricsServer::serve(node.clone(), "127.0.0.1:9150".parse()?).await?;
//! let uplink = MqttUplink::start(
//!     node.clone(),
//!     MqttConfig::new("mqtt://broker.lan", node.did())?,
//! )?;
//! metrics.watch_uplink(uplink.stats_reader());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod error;
mod metrics;
mod metrics_page;
mod mqtt;
mod mqtt_config;
mod mqtt_tls;
mod origins;
mod uplink;

pub use error::{MetricsError, MqttConfigError};
pub use metrics::{MAX_CONNECTIONS, MAX_REQUEST, MetricsServer, REQUEST_TIMEOUT};
pub use mqtt::{MqttStats, MqttStatsReader};
pub use mqtt_config::{DEFAULT_PREFIX, MqttConfig};
pub use mqtt_tls::MqttTlsFiles;
pub use uplink::{EVENTS_PER_SECOND, MqttUplink, UPLINK_CHANNEL};
