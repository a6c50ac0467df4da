//! The operations side of `listen`: the flags and config sections of the
//! metrics endpoint (`--metrics`, `[metrics]`) and of the MQTT fleet bridge
//! (`--mqtt`, `[mqtt]`), handed to the `tibet-iot-ops` library, and the
//! systemd notifications. `listen` calls [`Ops::start`] before it starts
//! the node (so that a bad setting is an error before anything binds),
//! [`Ops::attach`] once the node runs, [`Ops::ready`] once it is bound,
//! polls [`Ops::feed_watchdog`] in its loop and calls [`Ops::stopping`] on
//! shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tibet_iot::IoTNode;
use tibet_iot_ops::{MetricsServer, MqttConfig, MqttTlsFiles, MqttUplink};

use crate::config_file::{ConfigFile, MqttSection};
use crate::systemd;

/// The operations flags of `listen`.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct OpsFlags {
    /// Serve Prometheus/OpenMetrics text at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Join a fleet through this MQTT broker:
    /// mqtt://[USER:PASSWORD@]HOST[:PORT][?client_id=ID] or mqtts://.
    #[arg(long, value_name = "URL")]
    pub(crate) mqtt: Option<String>,
    /// File whose first line is USERNAME:PASSWORD for the MQTT broker.
    #[arg(long, value_name = "FILE")]
    pub(crate) mqtt_credentials: Option<PathBuf>,
    /// Also publish each decided ping to PREFIX/events/<node DID> (for fleet
    /// dashboards; needs --mqtt).
    #[arg(long)]
    pub(crate) mqtt_events: bool,
}

/// Operations services of one `listen`.
pub(crate) struct Ops {
    /// Where to serve metrics, until [`Ops::attach`] binds it.
    metrics_addr: Option<SocketAddr>,
    metrics: Option<MetricsServer>,
    /// Checked MQTT settings, until [`Ops::attach`] starts the bridge.
    mqtt: Option<MqttConfig>,
    uplink: Option<MqttUplink>,
    /// Fed from the node loop itself, so a stuck loop starves it.
    watchdog: Option<tokio::time::Interval>,
}

impl Ops {
    /// Checks what the flags and the config file (`config`) ask for, for
    /// the node `did`.
    pub(crate) fn start(flags: &OpsFlags, config: Option<&Path>, did: &str) -> Result<Ops> {
        let file = match config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let section = file.mqtt.clone().unwrap_or_default();
        let mut mqtt = None;
        if let Some(url) = flags.mqtt.as_ref().or(section.url.as_ref()) {
            // Relative paths in the file are relative to the file.
            let base = config.and_then(Path::parent).unwrap_or(Path::new("."));
            let mut section = section.clone();
            let paths = [
                &mut section.credentials_file,
                &mut section.ca_file,
                &mut section.cert_file,
                &mut section.key_file,
            ];
            for p in paths.into_iter().flatten() {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
            let events = flags.mqtt_events || section.publish_events.unwrap_or(false);
            mqtt = Some(
                mqtt_config(&section, url, flags.mqtt_credentials.as_deref(), did)?
                    .with_events(events),
            );
        } else if flags.mqtt_events {
            bail!("--mqtt-events needs --mqtt URL (or url in [mqtt])");
        }
        Ok(Ops {
            metrics_addr: flags
                .metrics
                .or(file.metrics.as_ref().and_then(|m| m.listen)),
            metrics: None,
            mqtt,
            uplink: None,
            watchdog: None,
        })
    }

    /// The node runs: serve its metrics and join it to its fleet, as asked.
    pub(crate) async fn attach(&mut self, node: Arc<IoTNode>) -> Result<()> {
        if let Some(addr) = self.metrics_addr {
            self.metrics = Some(MetricsServer::serve(node.clone(), addr).await?);
        }
        // A broker that is down is a warning and a retry in the
        // background, never an exit (docs/FLEETS.md).
        if let Some(mqtt) = self.mqtt.take() {
            tracing::info!(
                "mqtt: joining the fleet through {}:{}{} (topics under {}/)",
                mqtt.host(),
                mqtt.port(),
                match (mqtt.tls(), mqtt.client_auth()) {
                    (true, true) => " over TLS with a client certificate",
                    (true, false) => " over TLS",
                    _ => "",
                },
                mqtt.prefix()
            );
            let uplink = MqttUplink::start(node, mqtt)?;
            if let Some(m) = &self.metrics {
                m.watch_uplink(uplink.stats_reader());
            }
            self.uplink = Some(uplink);
        }
        Ok(())
    }

    /// Where metrics are served, if they are.
    pub(crate) fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// The MQTT uplink, when the node is in a fleet.
    pub(crate) fn uplink(&self) -> Option<&MqttUplink> {
        self.uplink.as_ref()
    }

    /// The node is bound: notify systemd and start feeding its watchdog.
    pub(crate) fn ready(&mut self, did: &str, addr: SocketAddr) {
        if let Some(m) = self.metrics_addr() {
            tracing::info!("metrics at http://{m}/metrics");
        }
        systemd::ready(&format!("listening on {addr} as {did}"));
        if let Some(interval) = systemd::watchdog_interval() {
            let period = (interval / 2).max(Duration::from_millis(10));
            self.watchdog = Some(tokio::time::interval(period));
        }
    }

    /// Feeds the systemd watchdog when it is due; never resolves (poll it
    /// in the node loop, so a stuck loop starves the watchdog).
    pub(crate) async fn feed_watchdog(&mut self) {
        loop {
            match self.watchdog.as_mut() {
                Some(w) => {
                    w.tick().await;
                    systemd::watchdog();
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// Shutdown began: notify systemd, stop the watchdog, the endpoint and
    /// the bridge.
    pub(crate) fn stopping(&mut self) {
        self.watchdog = None;
        self.metrics = None;
        self.uplink = None;
        systemd::stopping();
    }
}

/// The bridge settings of `[mqtt]` (`section`) for the node `own_did`:
/// `url` and `credentials_file` from flags win over the section's.
fn mqtt_config(
    section: &MqttSection,
    url: &str,
    credentials_file: Option<&Path>,
    own_did: &str,
) -> Result<MqttConfig> {
    let mut config = MqttConfig::new(url, own_did)?;
    if let Some(prefix) = &section.topic_prefix {
        config = config.with_topic_prefix(prefix)?;
    }
    // A CA file means TLS, as in Python: a CA given and then not used would
    // send the credentials and every frame in the clear.
    if section.tls == Some(false) && section.ca_file.is_some() {
        bail!("ca_file in [mqtt] turns TLS on, but tls = false: remove one of them");
    }
    config = config.with_tls(section.tls.unwrap_or(false) || section.ca_file.is_some());
    if config.tls() && section.ca_file.is_none() {
        bail!("MQTT over TLS needs ca_file (the broker's CA, PEM) in [mqtt]");
    }
    if section.cert_file.is_some() && !config.tls() {
        bail!("cert_file in [mqtt] needs TLS: give ca_file, the broker's CA (PEM)");
    }
    let tls = config.tls();
    config = config.with_tls_files(&MqttTlsFiles {
        ca: section.ca_file.clone().filter(|_| tls),
        cert: section.cert_file.clone(),
        key: section.key_file.clone(),
    })?;
    if let Some(path) = credentials_file.or(section.credentials_file.as_deref()) {
        let (user, password) = read_credentials(path)?;
        config = config.with_credentials(user, password);
    }
    if let Some(id) = &section.client_id {
        config = config.with_client_id(id.clone());
    }
    Ok(config)
}

/// Reads `USERNAME:PASSWORD` from the first line of `path`.
fn read_credentials(path: &Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read MQTT credentials file {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    match line.split_once(':') {
        Some((user, pass)) if !user.is_empty() => Ok((user.to_owned(), pass.to_owned())),
        _ => bail!(
            "MQTT credentials file {} must start with a USERNAME:PASSWORD line",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_resolve_and_hide_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::write(&creds, "site-a:s3cret\n").unwrap();
        let section = MqttSection::default();
        let s = mqtt_config(
            &section,
            "mqtt://127.0.0.1:1999",
            Some(&creds),
            "jis:site-a:hub",
        )
        .unwrap();
        assert_eq!(s.prefix(), "tibet/v1");
        assert_eq!(s.client_id(), "tibet-jis-site-a-hub");
        assert_eq!(s.user(), Some("site-a"));
        assert!(!format!("{s:?}").contains("s3cret"));
        let missing = dir.path().join("nope");
        let e = mqtt_config(&section, "mqtt://h", Some(&missing), "jis:a:b").unwrap_err();
        assert!(format!("{e:#}").contains("cannot read MQTT credentials file"));
        let e = mqtt_config(&section, "mqtts://h", None, "jis:a:b").unwrap_err();
        assert!(format!("{e:#}").contains("needs ca_file"), "{e:#}");
        let section = MqttSection {
            client_id: Some("hub-1".into()),
            topic_prefix: Some("acme/".into()),
            ..MqttSection::default()
        };
        let s = mqtt_config(&section, "mqtt://h?client_id=x", None, "jis:a:b").unwrap();
        assert_eq!((s.client_id(), s.prefix()), ("hub-1", "acme"));
    }

    #[test]
    fn a_client_certificate_is_read_with_its_key_over_tls_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, mode| {
            let p = dir.path().join(name);
            std::fs::write(&p, "-----BEGIN PEM-----\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            Some(p)
        };
        let section = MqttSection {
            ca_file: file("ca.pem", 0o644),
            cert_file: file("hub.pem", 0o644),
            key_file: file("hub.key", 0o600),
            ..MqttSection::default()
        };
        let s = mqtt_config(&section, "mqtts://broker.lan", None, "jis:a:b").unwrap();
        assert!(s.tls() && s.client_auth());
        // The CA file turns TLS on for an mqtt:// URL too.
        let s = mqtt_config(&section, "mqtt://broker.lan", None, "jis:a:b").unwrap();
        assert!(s.tls() && s.client_auth());
        let off = MqttSection {
            tls: Some(false),
            ..section.clone()
        };
        let e = mqtt_config(&off, "mqtt://broker.lan", None, "jis:a:b").unwrap_err();
        assert!(format!("{e:#}").contains("but tls = false"), "{e:#}");
        let no_ca = MqttSection {
            ca_file: None,
            ..section.clone()
        };
        let e = mqtt_config(&no_ca, "mqtt://broker.lan", None, "jis:a:b").unwrap_err();
        assert!(
            format!("{e:#}").contains("cert_file in [mqtt] needs TLS"),
            "{e:#}"
        );
        let half = MqttSection {
            key_file: None,
            ..section.clone()
        };
        let e = mqtt_config(&half, "mqtts://broker.lan", None, "jis:a:b").unwrap_err();
        assert!(format!("{e:#}").contains("go together"), "{e:#}");
        let open = MqttSection {
            key_file: file("open.key", 0o644),
            ..section.clone()
        };
        let e = mqtt_config(&open, "mqtts://broker.lan", None, "jis:a:b").unwrap_err();
        assert!(format!("{e:#}").contains("run chmod 600"), "{e:#}");
    }
}
