//! The MQTT bridge's settings from a `TransportConfig` (`mqtt_url` and its
//! TLS files), checked before the node starts: an unreadable file or a
//! setting that cannot work is one clear `ConfigError`, worded as the CLI
//! words it.

use std::path::Path;

use pyo3::prelude::*;
use tibet_iot_ops::MqttConfig;

use crate::config::MqttTlsFiles;
use crate::pytypes::{ErrorKind, error};

fn config_error(message: String) -> PyErr {
    error(ErrorKind::Config, message)
}

/// Reads `path`, the MQTT `what` file.
fn read(what: &str, path: &Path) -> PyResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        config_error(format!(
            "cannot read MQTT {what} file {}: {e}",
            path.display()
        ))
    })
}

/// Reads the private key at `path`, refused if group or others may read it
/// (as the node's own key file is).
fn read_key(path: &Path) -> PyResult<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        config_error(format!(
            "cannot read MQTT client key file {}: {e}",
            path.display()
        ))
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(config_error(format!(
            "MQTT client key file {} is readable by group or others (mode {mode:o}); run chmod 600 on it",
            path.display()
        )));
    }
    read("client key", path)
}

/// The bridge settings for the node `did` joining through `url`, with the
/// TLS files `tls` names.
pub(crate) fn mqtt_config(url: &str, did: &str, tls: &MqttTlsFiles) -> PyResult<MqttConfig> {
    let mut config = MqttConfig::new(url, did).map_err(|e| config_error(e.to_string()))?;
    if let Some(path) = &tls.ca {
        config = config.with_tls(true).with_ca_pem(read("CA", path)?);
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            config = config.with_client_auth(read("client certificate", cert)?, read_key(key)?);
        }
        (None, None) => {}
        _ => {
            return Err(config_error(
                "TransportConfig: mqtt_cert_file and mqtt_key_file go together".to_owned(),
            ));
        }
    }
    config.check().map_err(|e| config_error(e.to_string()))?;
    Ok(config)
}
