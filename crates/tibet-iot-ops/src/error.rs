//! The errors of this crate: [`MqttConfigError`] for a bridge configuration
//! that cannot work, [`MetricsError`] for an endpoint that cannot be served.

use std::net::SocketAddr;

/// Why an [`MqttConfig`](crate::MqttConfig) was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttConfigError {
    /// The broker URL is not `mqtt://` or `mqtts://` with a host, or holds
    /// a path or an option other than `client_id`. The URL is shown
    /// without its password.
    #[error(
        "bad MQTT URL '{url}': {reason} (expected mqtt://[USER:PASSWORD@]HOST[:PORT][?client_id=ID] or mqtts://...)"
    )]
    Url {
        /// The URL, password left out.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The node's DID cannot be one level of a topic.
    #[error("DID '{0}' cannot be used in MQTT topics (contains / + or #)")]
    Did(String),
    /// The topic prefix is empty or holds a wildcard.
    #[error("MQTT topic prefix '{0}' must be non-empty without + or #")]
    Prefix(String),
    /// TLS is asked for but no CA certificate was given.
    #[error("MQTT over TLS needs the CA certificate (PEM) that signed the broker's certificate")]
    TlsWithoutCa,
    /// A client certificate is given for a connection without TLS.
    #[error("an MQTT client certificate needs TLS (mqtts:// or a CA certificate)")]
    ClientAuthWithoutTls,
    /// A client certificate without its key, or a key without its
    /// certificate.
    #[error("an MQTT client certificate and its key go together: name both files or neither")]
    ClientAuthHalf,
    /// A TLS file could not be read.
    #[error("cannot read MQTT {what} file {}: {source}", path.display())]
    File {
        /// Which file: `CA`, `client certificate`, `client key`.
        what: &'static str,
        /// Its path.
        path: std::path::PathBuf,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },
    /// The client's private key may be read by group or others.
    #[error("MQTT client key file {} is readable by group or others (mode {mode:o}); run chmod 600 on it", path.display())]
    KeyReadable {
        /// Its path.
        path: std::path::PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Why a [`MetricsServer`](crate::MetricsServer) could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },
}
