//! [`MqttTlsFiles`]: the PEM files of a bridge over TLS as an operator names
//! them (the CLI's `[mqtt]`, the Python `TransportConfig`), read into an
//! [`MqttConfig`] with [`MqttConfig::with_tls_files`]. One reading for
//! every front end, so each refuses the same things in the same words.

use std::path::{Path, PathBuf};

use crate::error::MqttConfigError;
use crate::mqtt_config::MqttConfig;

/// The TLS files of a bridge, all PEM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MqttTlsFiles {
    /// The CA certificate that signed the broker's certificate; naming one
    /// turns TLS on.
    pub ca: Option<PathBuf>,
    /// The client's certificate chain, for a broker that authenticates
    /// clients by certificate (with `key`).
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (with `cert`); refused if
    /// group or others may read it.
    pub key: Option<PathBuf>,
}

impl MqttConfig {
    /// Reads the files `files` names: the CA certificate (TLS on), and the
    /// client certificate with its key, which go together. Then the whole
    /// is checked ([`MqttConfig::check`]): TLS needs a CA certificate, a
    /// client certificate needs TLS.
    ///
    /// ```
    /// use tibet_iot_ops::{MqttConfig, MqttConfigError, MqttTlsFiles};
    ///
    /// let c = MqttConfig::new("mqtts://broker.lan", "jis:site-a:hub").unwrap();
    /// let half = MqttTlsFiles { cert: Some("hub.pem".into()), ..MqttTlsFiles::default() };
    /// assert!(matches!(c.with_tls_files(&half), Err(MqttConfigError::ClientAuthHalf)));
    /// ```
    pub fn with_tls_files(mut self, files: &MqttTlsFiles) -> Result<Self, MqttConfigError> {
        if let Some(path) = &files.ca {
            self = self.with_tls(true).with_ca_pem(read("CA", path)?);
        }
        match (&files.cert, &files.key) {
            (Some(cert), Some(key)) => {
                self = self.with_client_auth(read("client certificate", cert)?, read_key(key)?);
            }
            (None, None) => {}
            _ => return Err(MqttConfigError::ClientAuthHalf),
        }
        self.check()?;
        Ok(self)
    }
}

/// Reads `path`, the MQTT `what` file.
fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, MqttConfigError> {
    std::fs::read(path).map_err(|source| MqttConfigError::File {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Reads the private key at `path`, refused if group or others may read it
/// (as the node's own key file is).
fn read_key(path: &Path) -> Result<Vec<u8>, MqttConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let what = "client key";
    let meta = std::fs::metadata(path).map_err(|source| MqttConfigError::File {
        what,
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(MqttConfigError::KeyReadable {
            path: path.to_owned(),
            mode,
        });
    }
    read(what, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_read_and_what_cannot_work_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, mode| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("-----BEGIN {name}-----\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let (ca, cert, key) = (
            write("ca", 0o644),
            write("cert", 0o644),
            write("key", 0o600),
        );
        let open_key = write("open-key", 0o640);
        let base = |url| MqttConfig::new(url, "jis:site-a:hub").unwrap();
        let files =
            |ca: Option<&PathBuf>, cert: Option<&PathBuf>, key: Option<&PathBuf>| MqttTlsFiles {
                ca: ca.cloned(),
                cert: cert.cloned(),
                key: key.cloned(),
            };

        let c = base("mqtt://broker.lan")
            .with_tls_files(&files(Some(&ca), Some(&cert), Some(&key)))
            .unwrap();
        assert!(c.tls(), "a CA turns TLS on for mqtt:// too");
        assert!(c.client_auth());
        let c = base("mqtt://broker.lan").with_tls_files(&MqttTlsFiles::default());
        assert!(!c.unwrap().tls(), "no files: as the URL says");

        let err = |url, f: MqttTlsFiles| base(url).with_tls_files(&f).unwrap_err().to_string();
        let missing = dir.path().join("nope");
        assert_eq!(
            err("mqtts://h", files(Some(&missing), None, None)),
            format!(
                "cannot read MQTT CA file {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
        assert!(
            err("mqtts://h", files(Some(&ca), Some(&cert), Some(&open_key)))
                .contains("is readable by group or others (mode 640); run chmod 600 on it")
        );
        assert!(err("mqtts://h", files(Some(&ca), Some(&cert), None)).contains("go together"));
        assert!(err("mqtts://h", files(Some(&ca), None, Some(&key))).contains("go together"));
        assert!(
            err("mqtt://h", files(None, Some(&cert), Some(&key))).contains("needs TLS"),
            "a client certificate without TLS"
        );
        assert!(err("mqtts://h", files(None, None, None)).contains("needs the CA certificate"));
    }
}
