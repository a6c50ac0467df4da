//! A Python `TransportConfig` (the reference's fields, plus ours) read into
//! the engine's [`TransportConfig`], with the identity it names loaded and
//! checked: every problem is one clear exception before a socket opens.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tibet_iot::{IdentityConfig, TransportConfig};
use tibet_iot_ops::MqttTlsFiles;
use tibet_ping::identity::{DEFAULT_PIN_CAPACITY, IdentityMode, Keypair, PinStore, PublicKey};

use crate::pytypes::{ErrorKind, error};

/// The node-level settings besides the engine config.
pub(crate) struct NodeSettings {
    /// The engine's config.
    pub(crate) transport: TransportConfig,
    /// Where provenance tokens go, if anywhere.
    pub(crate) audit_file: Option<PathBuf>,
    /// The MQTT broker of the node's fleet (`mqtt_url`), if any.
    pub(crate) mqtt_url: Option<String>,
    /// Its TLS files: `mqtt_ca_file`, `mqtt_cert_file`, `mqtt_key_file`.
    pub(crate) mqtt_tls: MqttTlsFiles,
    /// Where to serve the metrics page (`metrics_addr`), if anywhere.
    pub(crate) metrics_addr: Option<SocketAddr>,
}

fn field<'py, T: FromPyObject<'py>>(
    cfg: &Bound<'py, PyAny>,
    name: &str,
    default: T,
) -> PyResult<T> {
    match cfg.getattr(name) {
        Ok(v) if v.is_none() => Ok(default),
        Ok(v) => v
            .extract()
            .map_err(|e| error(ErrorKind::Config, format!("TransportConfig.{name}: {e}"))),
        Err(_) => Ok(default),
    }
}

/// Seconds as a duration; refuses negative, NaN and absurd values.
pub(crate) fn seconds(name: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        error(
            ErrorKind::Config,
            format!("{name}: {s} is not a number of seconds >= 0"),
        )
    })
}

fn ip(name: &str, text: &str) -> PyResult<IpAddr> {
    text.parse().map_err(|_| {
        error(
            ErrorKind::Config,
            format!("TransportConfig.{name}: {text:?} is not an IP address"),
        )
    })
}

fn ipv4(name: &str, text: &str) -> PyResult<Ipv4Addr> {
    text.parse().map_err(|_| {
        error(
            ErrorKind::Config,
            format!("TransportConfig.{name}: {text:?} is not an IPv4 address"),
        )
    })
}

/// Reads `config` (any object with the fields of `tibet_iot.TransportConfig`;
/// `None`: the defaults) with the reference's `IoTNode` keyword arguments.
pub(crate) fn read(
    config: Option<&Bound<'_, PyAny>>,
    heartbeat_interval: f64,
    discovery_interval: f64,
    peer_timeout: f64,
) -> PyResult<NodeSettings> {
    let mut t = TransportConfig {
        heartbeat_interval: seconds("heartbeat_interval", heartbeat_interval)?,
        discovery_interval: seconds("discovery_interval", discovery_interval)?,
        peer_timeout: seconds("peer_timeout", peer_timeout)?,
        ..TransportConfig::default()
    };
    let Some(cfg) = config.filter(|c| !c.is_none()) else {
        return Ok(NodeSettings {
            transport: t,
            audit_file: None,
            mqtt_url: None,
            mqtt_tls: MqttTlsFiles::default(),
            metrics_addr: None,
        });
    };
    t.bind_host = ip("bind_host", &field(cfg, "bind_host", "0.0.0.0".to_owned())?)?;
    t.bind_port = field(cfg, "bind_port", t.bind_port)?;
    t.use_msgpack = field(cfg, "use_msgpack", t.use_msgpack)?;
    t.broadcast = field(cfg, "broadcast", t.broadcast)?;
    t.discovery_enabled = field(cfg, "discovery", t.discovery_enabled)?;
    t.discovery_port = field(cfg, "discovery_port", t.discovery_port)?;
    t.multicast_group = ipv4(
        "multicast_group",
        &field(cfg, "multicast_group", t.multicast_group.to_string())?,
    )?;
    t.multicast_interface = ipv4(
        "multicast_interface",
        &field(
            cfg,
            "multicast_interface",
            t.multicast_interface.to_string(),
        )?,
    )?;
    t.request_timeout = seconds(
        "TransportConfig.request_timeout",
        field(cfg, "request_timeout", t.request_timeout.as_secs_f64())?,
    )?;
    t.max_hops = field(cfg, "max_hops", t.max_hops)?;
    t.capabilities = field(cfg, "capabilities", t.capabilities.clone())?;
    t.device_type = field(cfg, "device_type", t.device_type.clone())?;
    t.routing = field(cfg, "routing", t.routing)?;
    t.identity = identity(cfg)?;
    let audit_file: Option<PathBuf> = field(cfg, "audit_file", None)?;
    let mqtt_url: Option<String> = field(cfg, "mqtt_url", None)?;
    let mqtt_tls = MqttTlsFiles {
        ca: field(cfg, "mqtt_ca_file", None)?,
        cert: field(cfg, "mqtt_cert_file", None)?,
        key: field(cfg, "mqtt_key_file", None)?,
    };
    let metrics_addr = field::<Option<String>>(cfg, "metrics_addr", None)?
        .map(|text| {
            text.parse::<SocketAddr>().map_err(|_| {
                error(
                    ErrorKind::Config,
                    format!("TransportConfig.metrics_addr: {text:?} is not an ADDR:PORT"),
                )
            })
        })
        .transpose()?;
    Ok(NodeSettings {
        transport: t,
        audit_file,
        mqtt_url,
        mqtt_tls,
        metrics_addr,
    })
}

/// `key_file`, `identity_mode` and `pins`: the same checks and messages as
/// the CLI's `--key`, `--identity` and `--pin`.
fn identity(cfg: &Bound<'_, PyAny>) -> PyResult<IdentityConfig> {
    let mode_text: String = field(cfg, "identity_mode", "prefer".to_owned())?;
    let mode: IdentityMode = mode_text.parse().map_err(|e| {
        error(
            ErrorKind::Config,
            format!("TransportConfig.identity_mode: {e}"),
        )
    })?;
    let key_file: Option<PathBuf> = field(cfg, "key_file", None)?;
    let key = match &key_file {
        Some(path) => Some(load_key(path)?),
        None => None,
    };
    if mode == IdentityMode::Require && key.is_none() {
        return Err(error(
            ErrorKind::Config,
            "identity_mode 'require' needs key_file: a node that demands signatures must sign its own packets",
        ));
    }
    let mut pins = PinStore::new(DEFAULT_PIN_CAPACITY);
    if let Ok(table) = cfg.getattr("pins")
        && !table.is_none()
    {
        let table = table.downcast::<PyDict>().map_err(|_| {
            error(
                ErrorKind::Config,
                "TransportConfig.pins: expected a dict of DID -> public key",
            )
        })?;
        for (did, text) in table.iter() {
            let did: String = did.extract()?;
            let text: String = text.extract()?;
            pin_into(&mut pins, &did, &text)?;
        }
    }
    Ok(IdentityConfig {
        mode,
        key,
        pins,
        ..IdentityConfig::default()
    })
}

/// Pins `did` to the base64 key `text` in `pins`.
pub(crate) fn pin_into(pins: &mut PinStore, did: &str, text: &str) -> PyResult<()> {
    check_did(did)?;
    let key = PublicKey::parse(text.trim()).map_err(|e| {
        error(
            ErrorKind::Config,
            format!(
                "pin for {did}: {e} (give the 44-character base64 that `tibet-iot pubkey` prints)"
            ),
        )
    })?;
    pins.set(did, key).map_err(|e| {
        error(
            ErrorKind::Config,
            format!("pin for {did:?}: refused ({e:?})"),
        )
    })?;
    Ok(())
}

/// Loads a key file (PKCS#8 PEM, not readable by others).
pub(crate) fn load_key(path: &std::path::Path) -> PyResult<Keypair> {
    Keypair::load(path).map_err(|e| error(ErrorKind::KeyFile, e.to_string()))
}

/// Checks a DID as the CLI does.
pub(crate) fn check_did(did: &str) -> PyResult<()> {
    tibet_ping::ids::check_did(did).map_err(|e| error(ErrorKind::InvalidDid, e))
}

/// A `(host, port)` tuple (or `"host:port"`) as a socket address; host
/// names are resolved (first address).
pub(crate) fn addr_arg(addr: &Bound<'_, PyAny>) -> PyResult<SocketAddr> {
    if let Ok((host, port)) = addr.extract::<(String, u16)>() {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        return resolve(&host, port);
    }
    if let Ok(text) = addr.extract::<String>() {
        if let Ok(a) = text.parse() {
            return Ok(a);
        }
        if let Some((host, port)) = text.rsplit_once(':')
            && let Ok(port) = port.parse()
        {
            return resolve(host, port);
        }
    }
    Err(error(
        ErrorKind::Config,
        format!("address {addr}: expected a (host, port) tuple"),
    ))
}

fn resolve(host: &str, port: u16) -> PyResult<SocketAddr> {
    let found = addr_py_allow(|| (host, port).to_socket_addrs().map(|mut a| a.next()));
    match found {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(error(
            ErrorKind::Config,
            format!("address {host}:{port}: no such host"),
        )),
        Err(e) => Err(error(
            ErrorKind::Config,
            format!("address {host}:{port}: {e}"),
        )),
    }
}

/// Runs a blocking look-up with the GIL released.
fn addr_py_allow<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    Python::with_gil(|py| py.allow_threads(f))
}
