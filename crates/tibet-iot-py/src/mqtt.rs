//! The MQTT bridge's settings from a `TransportConfig` (`mqtt_url` and its
//! TLS files), checked before the node starts: an unreadable file or a
//! setting that cannot work is one clear `ConfigError`, worded as the CLI
//! words it.

use pyo3::prelude::*;
use tibet_iot_ops::{MqttConfig, MqttTlsFiles};

use crate::pytypes::{ErrorKind, error};

/// The bridge settings for the node `did` joining through `url`, with the
/// TLS files `tls` names (read and checked by
/// [`MqttConfig::with_tls_files`], as the CLI's `[mqtt]` files are).
pub(crate) fn mqtt_config(url: &str, did: &str, tls: &MqttTlsFiles) -> PyResult<MqttConfig> {
    MqttConfig::new(url, did)
        .and_then(|c| c.with_tls_files(tls))
        .map_err(|e| error(ErrorKind::Config, e.to_string()))
}
