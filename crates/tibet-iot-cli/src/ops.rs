//! The operations side of `listen`: the metrics endpoint (`--metrics`,
//! `[metrics]`), the systemd notifications, and the MQTT settings
//! (`--mqtt`, `[mqtt]`) that `listen` joins the node to a fleet with. `listen` calls
//! [`Ops::start`] before it starts the node, [`Ops::ready`] once it is bound,
//! answers [`Ops::next_call`] in its loop and calls [`Ops::stopping`] on
//! shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc;

use crate::config::ConfigFile;
use crate::control::Call;
use crate::metrics::MetricsServer;
use crate::systemd;

/// Snapshot requests waiting for the node loop.
const CALL_QUEUE: usize = 8;

/// The operations flags of `listen`.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct OpsFlags {
    /// Serve Prometheus/OpenMetrics text at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Join a fleet through this MQTT broker: mqtt://HOST[:PORT] or mqtts://.
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

/// Running operations services of one `listen`.
pub(crate) struct Ops {
    metrics: Option<MetricsServer>,
    calls: mpsc::Receiver<Call>,
    /// Checked MQTT settings, when the node joins a fleet.
    pub(crate) mqtt: Option<crate::mqtt::MqttSettings>,
    /// Fed from the node loop itself, so a stuck loop starves it.
    watchdog: Option<tokio::time::Interval>,
}

impl Ops {
    /// Binds what the flags and the config file (`config`) ask for, for
    /// the node `did`.
    pub(crate) async fn start(flags: &OpsFlags, config: Option<&Path>, did: &str) -> Result<Ops> {
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
            for p in [&mut section.credentials_file, &mut section.ca_file]
                .into_iter()
                .flatten()
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
            let mut settings = crate::mqtt::MqttSettings::resolve(
                &section,
                url,
                flags.mqtt_credentials.as_deref(),
                did,
            )?;
            settings.events = flags.mqtt_events || section.publish_events.unwrap_or(false);
            mqtt = Some(settings);
        } else if flags.mqtt_events {
            anyhow::bail!("--mqtt-events needs --mqtt URL (or url in [mqtt])");
        }
        let (tx, calls) = mpsc::channel(CALL_QUEUE);
        let metrics = match flags
            .metrics
            .or(file.metrics.as_ref().and_then(|m| m.listen))
        {
            Some(addr) => Some(MetricsServer::bind(addr, tx).await?),
            None => None,
        };
        Ok(Ops {
            metrics,
            calls,
            mqtt,
            watchdog: None,
        })
    }

    /// Where metrics are served, if they are.
    pub(crate) fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
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

    /// The next request for the node loop (a metrics snapshot); feeds the
    /// watchdog while waiting, and never resolves when nothing asks.
    pub(crate) async fn next_call(&mut self) -> Option<Call> {
        loop {
            let metrics = self.metrics.is_some();
            tokio::select! {
                _ = async { match self.watchdog.as_mut() { Some(w) => w.tick().await, None => std::future::pending().await } } => {
                    systemd::watchdog();
                }
                call = self.calls.recv(), if metrics => return call,
            }
        }
    }

    /// Shutdown began: notify systemd, stop the watchdog and the endpoint.
    pub(crate) fn stopping(&mut self) {
        self.watchdog = None;
        self.metrics = None;
        systemd::stopping();
    }
}
