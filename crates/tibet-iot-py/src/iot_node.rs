//! `_native.Node`: the Rust [`IoTNode`] driven from asyncio. Every
//! coroutine it returns runs on the package's one tokio runtime without the
//! GIL and resolves the asyncio future when done; cancelling that future
//! drops the Rust side (the request is forgotten at its deadline). The
//! Python `tibet_iot.IoTNode` is a thin shell around it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tibet_core::{FileStore, NetworkBridge, Provider};
use tibet_iot::{IoTNode, SendError, StartError};
use tibet_iot_ops::{MetricsServer, MqttConfig, MqttUplink};

use crate::bridge::{Bridge, Outcome, runtime};
use crate::config::{self, addr_arg, check_did};
use crate::convert::serialize_to_py;
use crate::events::EventStream;
use crate::mqtt::mqtt_config;
use crate::pytypes::{ErrorKind, error, record};
use crate::records::{pending_record, rule_arg};
use crate::requests::PyRequestSocket;
use crate::shared_methods::pymethods_with_shared;

/// A `(host, port)` tuple.
pub(crate) fn addr_tuple(a: SocketAddr) -> (String, u16) {
    (a.ip().to_string(), a.port())
}

/// The exception for a failed send, with the CLI's wording.
pub(crate) fn send_error(e: SendError) -> Outcome {
    match e {
        SendError::NotRunning => Outcome::Error(
            ErrorKind::NotRunning,
            "node is not running (await node.start() first)".to_owned(),
        ),
        other => Outcome::Error(ErrorKind::Send, other.to_string()),
    }
}

/// A send's outcome: the answer, `None`, or the exception. As in the
/// reference, a request that got no usable answer is `None`, whether nothing
/// listened (ICMP port unreachable) or the answer failed our pin.
pub(crate) fn answer(r: Result<Option<tibet_ping::PingResponse>, SendError>) -> Outcome {
    match r {
        Ok(a) => Outcome::Response(a.map(Box::new)),
        Err(SendError::Unreachable { .. } | SendError::AnswerRefused { .. }) => {
            Outcome::Response(None)
        }
        Err(e) => send_error(e),
    }
}

/// The exception for a failed start, with the CLI's wording.
fn start_error(e: StartError) -> Outcome {
    match e {
        StartError::Bind { addr, source } if source.kind() == std::io::ErrorKind::AddrInUse => {
            Outcome::Error(
                ErrorKind::Bind,
                format!(
                    "port {} is in use on {} (another listener?); pick another bind_port",
                    addr.port(),
                    addr.ip()
                ),
            )
        }
        StartError::Bind { addr, source }
            if source.kind() == std::io::ErrorKind::AddrNotAvailable =>
        {
            Outcome::Error(
                ErrorKind::Bind,
                format!("cannot bind {addr}: the address is not on this machine (check bind_host)"),
            )
        }
        other => Outcome::Error(ErrorKind::Bind, other.to_string()),
    }
}

/// The operations services of a node (`tibet-iot-ops`): what the config
/// asks for, and what runs while the node runs.
#[derive(Default)]
struct Ops {
    metrics_addr: Option<SocketAddr>,
    mqtt: Option<MqttConfig>,
    metrics: Option<MetricsServer>,
    uplink: Option<MqttUplink>,
}

/// Starts the metrics page and the MQTT uplink of a started `node`.
async fn start_ops(node: &Arc<IoTNode>, ops: &Mutex<Ops>) -> Result<(), Outcome> {
    let (addr, mqtt) = {
        let o = lock(ops);
        if o.metrics.is_some() || o.uplink.is_some() {
            return Ok(());
        }
        (o.metrics_addr, o.mqtt.clone())
    };
    let metrics = match addr {
        Some(addr) => Some(
            MetricsServer::serve(node.clone(), addr)
                .await
                .map_err(|e| Outcome::Error(ErrorKind::Bind, e.to_string()))?,
        ),
        None => None,
    };
    let uplink = match mqtt {
        Some(config) => Some(
            MqttUplink::start(node.clone(), config)
                .map_err(|e| Outcome::Error(ErrorKind::Config, e.to_string()))?,
        ),
        None => None,
    };
    if let (Some(m), Some(u)) = (&metrics, &uplink) {
        m.watch_uplink(u.stats_reader());
    }
    let mut o = lock(ops);
    o.metrics = metrics;
    o.uplink = uplink;
    Ok(())
}

fn lock(ops: &Mutex<Ops>) -> std::sync::MutexGuard<'_, Ops> {
    ops.lock().unwrap_or_else(|p| p.into_inner())
}

/// The engine node behind `tibet_iot.IoTNode`.
#[pyclass(module = "tibet_iot._native", name = "Node")]
pub(crate) struct Node {
    node: Arc<IoTNode>,
    ops: Arc<Mutex<Ops>>,
}

pymethods_with_shared! {
    impl Node {
        #[new]
        #[pyo3(signature = (device_did, config=None, heartbeat_interval=30.0, discovery_interval=60.0,
            peer_timeout=120.0, seed=None))]
        fn new(
            device_did: String,
            config: Option<&Bound<'_, PyAny>>,
            heartbeat_interval: f64,
            discovery_interval: f64,
            peer_timeout: f64,
            seed: Option<u64>,
        ) -> PyResult<Self> {
            check_did(&device_did)?;
            let settings = config::read(config, heartbeat_interval, discovery_interval, peer_timeout)?;
            let mqtt = settings
                .mqtt_url
                .as_deref()
                .map(|url| mqtt_config(url, &device_did, &settings.mqtt_tls))
                .transpose()?;
            let ops = Ops {
                metrics_addr: settings.metrics_addr,
                mqtt,
                ..Ops::default()
            };
            let node = match seed {
                Some(s) => IoTNode::with_seed(device_did.clone(), settings.transport, s),
                None => IoTNode::new(device_did.clone(), settings.transport),
            };
            if let Some(path) = settings.audit_file {
                let store = FileStore::open(&path).map_err(|e| {
                    error(
                        ErrorKind::Config,
                        format!("cannot open audit file {}: {e}", path.display()),
                    )
                })?;
                let provider = Provider::new(device_did).with_store(store);
                node.set_audit(Some(Box::new(NetworkBridge::new(provider))));
            }
            Ok(Node {
                node: Arc::new(node),
                ops: Arc::new(Mutex::new(ops)),
            })
        }

        /// The node's DID.
        #[getter]
        fn device_did(&self) -> &str {
            self.node.did()
        }

        /// Whether the node runs.
        #[getter]
        fn running(&self) -> bool {
            self.node.is_running()
        }

        /// The bound transport address, while running.
        #[getter]
        fn local_addr(&self) -> Option<(String, u16)> {
            self.node.local_addr().map(addr_tuple)
        }

        /// The bound address of the metrics page (`metrics_addr`), while
        /// running.
        #[getter]
        fn metrics_addr(&self) -> Option<(String, u16)> {
            lock(&self.ops)
                .metrics
                .as_ref()
                .map(|m| addr_tuple(m.local_addr()))
        }

        /// Binds and starts, with the metrics page and the MQTT uplink when the
        /// config asks for them; resolves to the bound `(host, port)`. Starting
        /// a running node does nothing (as in the reference).
        fn start(&self, bridge: &Bridge) -> PyResult<u64> {
            let node = self.node.clone();
            let ops = self.ops.clone();
            bridge.spawn(async move {
                if let Some(a) = node.local_addr() {
                    return Outcome::Addr(a);
                }
                match node.start().await {
                    Ok(a) => match start_ops(&node, &ops).await {
                        Ok(()) => Outcome::Addr(a),
                        Err(e) => {
                            node.stop().await;
                            e
                        }
                    },
                    Err(StartError::AlreadyRunning) => match node.local_addr() {
                        Some(a) => Outcome::Addr(a),
                        None => Outcome::Unit,
                    },
                    Err(e) => start_error(e),
                }
            })
        }

        /// Stops: sockets close, the driver task ends, outstanding requests
        /// resolve to `None`, audit tokens are flushed. Idempotent.
        fn stop(&self, bridge: &Bridge) -> PyResult<u64> {
            let node = self.node.clone();
            let ops = self.ops.clone();
            bridge.spawn(async move {
                {
                    let mut o = lock(&ops);
                    o.metrics = None;
                    o.uplink = None;
                }
                node.stop().await;
                Outcome::Unit
            })
        }

        /// Sets the trust of `did` (0..1); audited.
        fn set_trust(&self, py: Python<'_>, did: &str, trust: f64) -> PyResult<()> {
            check_did(did)?;
            if !(0.0..=1.0).contains(&trust) {
                return Err(error(
                    ErrorKind::Config,
                    format!("trust {trust} is outside 0..1"),
                ));
            }
            py.allow_threads(|| self.node.set_trust(did, trust));
            Ok(())
        }

        /// The trust of `did` as the pipeline would compute it now.
        fn trust_of(&self, py: Python<'_>, did: &str) -> f64 {
            py.allow_threads(|| self.node.trust_of(did))
        }

        /// Adds an airlock rule (any object with the reference `AirlockRule`'s
        /// attributes).
        fn add_rule(&self, py: Python<'_>, rule: &Bound<'_, PyAny>) -> PyResult<()> {
            let rule = rule_arg(rule)?;
            py.allow_threads(|| self.node.add_rule(rule));
            Ok(())
        }

        /// Pings waiting for review (GEEL), oldest first.
        fn pending<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
            let pending = py.allow_threads(|| self.node.pending());
            let list = PyList::empty(py);
            for p in pending {
                list.append(pending_record(py, p)?)?;
            }
            Ok(list)
        }

        /// Approves a pending ping (optionally raising its sender's trust);
        /// returns it, or `None` if no such ping waits.
        #[pyo3(signature = (packet_id, raise_trust_to=None))]
        fn approve<'py>(
            &self,
            py: Python<'py>,
            packet_id: &str,
            raise_trust_to: Option<f64>,
        ) -> PyResult<Option<Bound<'py, PyAny>>> {
            let p = py.allow_threads(|| self.node.approve_pending(packet_id, raise_trust_to));
            p.map(|p| pending_record(py, p)).transpose()
        }

        /// Rejects a pending ping; returns it, or `None`.
        fn reject<'py>(&self, py: Python<'py>, packet_id: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
            let p = py.allow_threads(|| self.node.reject_pending(packet_id));
            p.map(|p| pending_record(py, p)).transpose()
        }

        /// Records a peer by hand.
        fn add_peer(&self, py: Python<'_>, did: &str, addr: &Bound<'_, PyAny>) -> PyResult<()> {
            check_did(did)?;
            let addr = addr_arg(addr)?;
            py.allow_threads(|| self.node.add_peer(did, addr));
            Ok(())
        }

        /// Live peers as `PeerRecord`s.
        fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
            let peers = py.allow_threads(|| self.node.peers());
            let list = PyList::empty(py);
            for p in peers {
                let kw = PyDict::new(py);
                kw.set_item("did", p.did.as_str())?;
                kw.set_item("addr", addr_tuple(p.address))?;
                kw.set_item("packet_count", p.packet_count)?;
                kw.set_item("proven", p.proven)?;
                list.append(record(py, "PeerRecord", &kw)?)?;
            }
            Ok(list)
        }

        /// Counters of the engine, its tables and the driver, as a dict.
        fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
            let stats = py.allow_threads(|| self.node.stats());
            serialize_to_py(py, &stats)
        }

        /// The public key this node signs with (base64), if it has a key.
        #[getter]
        fn public_key(&self, py: Python<'_>) -> Option<String> {
            py.allow_threads(|| {
                self.node.with_engine(|e| {
                    e.config()
                        .identity
                        .key
                        .as_ref()
                        .map(|k| k.public().to_string())
                })
            })
        }

        /// The DIDs pinned to keys, as `{did: base64 key}`.
        fn pins<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let (pins, _) = py.allow_threads(|| self.node.pins());
            let d = PyDict::new(py);
            for (did, key) in pins.iter() {
                d.set_item(did, key.to_string())?;
            }
            Ok(d)
        }

        /// A socket of its own for this node's requests, whose answers the
        /// calling event loop reads (`tibet_iot._bridge` watches it).
        fn request_socket(&self, py: Python<'_>) -> PyResult<PyRequestSocket> {
            let sock = py
                .allow_threads(|| self.node.request_socket())
                .map_err(|e| {
                    error(
                        ErrorKind::Bind,
                        format!("cannot open a request socket: {e}"),
                    )
                })?;
            Ok(PyRequestSocket::new(sock))
        }

        /// A stream of the node's events from now on (see `IoTNode.events`).
        fn subscribe(&self) -> EventStream {
            EventStream::new(self.node.subscribe())
        }

        /// Waits until every audit token so far is stored.
        fn flush_audit(&self, bridge: &Bridge) -> PyResult<u64> {
            let node = self.node.clone();
            bridge.spawn(async move {
                node.flush_audit().await;
                Outcome::Unit
            })
        }
    }

    /// Pings `target` at `addr`; resolves to the `PingResponse`, or `None`
    /// when none came within `timeout` seconds.
    send_ping(&self, bridge, target, addr, intent, purpose, options) {
        let node = self.node.clone();
        let (target, intent, purpose) = (target.to_owned(), intent.to_owned(), purpose.to_owned());
        bridge.spawn(async move {
            answer(node.send_ping(&target, addr, &intent, &purpose, options).await)
        })
    }

    /// Sends a heartbeat to `target` at `addr`; resolves to its answer or
    /// `None`.
    send_heartbeat(&self, bridge, target, addr, status) {
        let node = self.node.clone();
        let target = target.to_owned();
        bridge.spawn(async move { answer(node.send_heartbeat(&target, addr, status).await) })
    }

    /// Vouches for `vouched_dids`; returns the `Vouch`.
    vouch(&self, py, vouched_dids, options) {
        py.allow_threads(|| self.node.vouch(vouched_dids, options))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A node dropped while running: stop it on the runtime so its
        // sockets close and no task is left behind.
        if self.node.is_running()
            && let Ok(rt) = runtime()
        {
            let node = self.node.clone();
            rt.spawn(async move { node.stop().await });
        }
    }
}
