//! `PingNode`: the reference's synchronous protocol node over our protocol
//! core ([`tibet_ping::PingNode`]): build pings, run received ones through
//! replay check, trust and airlock, vouch, handle beacons. No sockets; the
//! clock is read here, at the binding, as the core wants.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_ping::{Announcement, Beacon, PingNodeConfig, PingOptions, Timestamp};

use crate::config::{check_did, load_key, seconds};
use crate::convert::{from_py, map_from_py, serialize_to_py};
use crate::packet::{
    PyPingPacket, PyPingResponse, payload_arg, ping_type_arg, priority_arg, routing_mode_arg,
};
use crate::pytypes::{ErrorKind, error, record};
use crate::records::{pending_record, rule_arg};
use crate::shared_methods::pymethods_with_shared;

/// The reference's `PingNode`, on the Rust protocol core.
#[pyclass(module = "tibet_iot", name = "PingNode")]
pub(crate) struct PingNode {
    did: String,
    /// Behind a mutex only to be shareable; methods take `&mut self`, so
    /// it is never contended.
    core: Mutex<tibet_ping::PingNode>,
}

impl PingNode {
    fn core(&mut self) -> &mut tibet_ping::PingNode {
        self.core.get_mut().unwrap_or_else(|p| p.into_inner())
    }
}

fn beacon_record<'py>(py: Python<'py>, b: &Beacon) -> PyResult<Bound<'py, PyAny>> {
    let d = serialize_to_py(py, b)?.downcast_into::<PyDict>()?;
    record(py, "Beacon", &d)
}

pymethods_with_shared! {
    impl PingNode {
        #[new]
        #[pyo3(signature = (device_did, nonce_window=30.0, trust_groen=0.7, trust_rood=0.3, *, key_file=None))]
        fn new(
            device_did: String,
            nonce_window: f64,
            trust_groen: f64,
            trust_rood: f64,
            key_file: Option<PathBuf>,
        ) -> PyResult<Self> {
            check_did(&device_did)?;
            let config = PingNodeConfig {
                nonce_window: seconds("nonce_window", nonce_window)?,
                trust_groen,
                trust_rood,
                ..PingNodeConfig::default()
            };
            let mut inner =
                tibet_ping::PingNode::new(device_did.clone(), config, Box::new(StdRng::from_entropy()));
            if let Some(path) = key_file {
                inner.set_signer(Box::new(load_key(&path)?));
            }
            Ok(PingNode {
                did: device_did,
                core: Mutex::new(inner),
            })
        }

        /// This node's DID.
        #[getter]
        fn device_did(&self) -> &str {
            &self.did
        }

        /// A ping packet from this node (nothing is sent). `purpose` may be
        /// left out (empty), as the tibet-iot README's mesh example does.
        #[pyo3(signature = (target, intent, purpose=String::new(), ping_type=None, priority=None,
            routing_mode=None, payload=None, pod_id=None, station_id=None))]
        #[allow(clippy::too_many_arguments)]
        fn ping(
            &mut self,
            target: &str,
            intent: &str,
            purpose: String,
            ping_type: Option<&Bound<'_, PyAny>>,
            priority: Option<&Bound<'_, PyAny>>,
            routing_mode: Option<&Bound<'_, PyAny>>,
            payload: Option<&Bound<'_, PyAny>>,
            pod_id: Option<String>,
            station_id: Option<String>,
        ) -> PyResult<PyPingPacket> {
            let mut opts = PingOptions {
                payload: payload_arg(payload)?,
                pod_id,
                station_id,
                ..PingOptions::default()
            };
            if let Some(t) = ping_type {
                opts.ping_type = ping_type_arg(t)?;
            }
            if let Some(p) = priority {
                opts.priority = priority_arg(p)?;
            }
            if let Some(r) = routing_mode {
                opts.routing_mode = routing_mode_arg(r)?;
            }
            let packet = self
                .core()
                .ping(Timestamp::now(), target, intent, &purpose, opts);
            Ok(PyPingPacket { inner: packet })
        }

        /// A heartbeat packet (`{"status": status}`, default `{"alive": true}`).
        #[pyo3(signature = (target="broadcast".to_owned(), status=None, pod_id=None))]
        fn heartbeat(
            &mut self,
            target: String,
            status: Option<&Bound<'_, PyAny>>,
            pod_id: Option<String>,
        ) -> PyResult<PyPingPacket> {
            let status = status
                .filter(|s| !s.is_none())
                .map(map_from_py)
                .transpose()?;
            let mut packet = self.core().heartbeat(Timestamp::now(), &target, status);
            if pod_id.is_some() {
                // The pod is part of what is signed: build it through `ping`.
                let opts = PingOptions {
                    ping_type: packet.ping_type,
                    priority: packet.priority,
                    routing_mode: packet.routing_mode,
                    payload: std::mem::take(&mut packet.payload),
                    pod_id,
                    ..PingOptions::default()
                };
                packet = self.core().ping(
                    Timestamp::now(),
                    &target,
                    "heartbeat",
                    &packet.purpose,
                    opts,
                );
            }
            Ok(PyPingPacket { inner: packet })
        }

        /// A broadcast discover packet asking for `capabilities`.
        #[pyo3(signature = (capabilities=None, pod_id=None))]
        fn discover(
            &mut self,
            capabilities: Option<Vec<String>>,
            pod_id: Option<String>,
        ) -> PyPingPacket {
            let announce = Announcement {
                requested_capabilities: capabilities.unwrap_or_default(),
                requested_pod: pod_id.clone(),
                ..Announcement::default()
            };
            let mut packet = self.core().discover(Timestamp::now(), &announce);
            if packet.signature.is_empty() {
                packet.pod_id = pod_id;
            }
            PyPingPacket { inner: packet }
        }

        /// Runs a received packet through the pipeline (replay check, trust,
        /// airlock); the response says what to answer (nothing for `reject`).
        fn receive(&mut self, py: Python<'_>, packet: PyRef<'_, PyPingPacket>) -> PyPingResponse {
            let packet = packet.inner.clone();
            let inner = self.core();
            let response = py.allow_threads(|| {
                let now = Timestamp::now();
                let started = std::time::Instant::now();
                let mut answer = inner.answer(now, &packet, None);
                answer.set_processing_time(std::time::Duration::ZERO, started.elapsed());
                inner.response_for(now, &answer, &packet)
            });
            PyPingResponse::from(response)
        }

        /// Sets the trust of `did` (clamped to 0..1).
        fn set_trust(&mut self, did: &str, trust: f64) -> PyResult<()> {
            check_did(did)?;
            self.core().set_trust(did, trust);
            Ok(())
        }

        /// The trust of `did` now.
        fn trust_of(&mut self, did: &str) -> f64 {
            self.core().trust_of(Timestamp::now(), did).score
        }

        /// Adds an airlock rule.
        fn add_rule(&mut self, rule: &Bound<'_, PyAny>) -> PyResult<()> {
            self.core().add_rule(rule_arg(rule)?);
            Ok(())
        }

        /// Pings waiting for review.
        fn pending<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
            let list = PyList::empty(py);
            for p in self.core().pending() {
                list.append(pending_record(py, p.clone())?)?;
            }
            Ok(list)
        }

        /// Approves a pending ping; returns it or `None`.
        #[pyo3(signature = (packet_id, raise_trust_to=None))]
        fn approve<'py>(
            &mut self,
            py: Python<'py>,
            packet_id: &str,
            raise_trust_to: Option<f64>,
        ) -> PyResult<Option<Bound<'py, PyAny>>> {
            self.core()
                .approve_pending(packet_id, raise_trust_to)
                .map(|p| pending_record(py, p))
                .transpose()
        }

        /// Rejects a pending ping; returns it or `None`.
        fn reject<'py>(
            &mut self,
            py: Python<'py>,
            packet_id: &str,
        ) -> PyResult<Option<Bound<'py, PyAny>>> {
            self.core()
                .reject_pending(packet_id)
                .map(|p| pending_record(py, p))
                .transpose()
        }

        /// A bootstrap beacon for this device.
        #[pyo3(signature = (capabilities=None, requested_pod=None, device_type="generic".to_owned()))]
        fn broadcast_beacon<'py>(
            &mut self,
            py: Python<'py>,
            capabilities: Option<Vec<String>>,
            requested_pod: Option<String>,
            device_type: String,
        ) -> PyResult<Bound<'py, PyAny>> {
            let announce = Announcement {
                capabilities: capabilities.unwrap_or_default(),
                device_type: Some(device_type),
                requested_pod,
                ..Announcement::default()
            };
            let beacon = self.core().beacon(Timestamp::now(), &announce);
            beacon_record(py, &beacon)
        }

        /// Handles a beacon as hub: auto-vouch by rule, else human review.
        fn handle_beacon<'py>(
            &mut self,
            py: Python<'py>,
            beacon: &Bound<'py, PyAny>,
        ) -> PyResult<Bound<'py, PyAny>> {
            let dict = match beacon.call_method0("to_dict") {
                Ok(d) => d,
                Err(_) => beacon.clone(),
            };
            let beacon: Beacon = serde_json::from_value(from_py(&dict)?)
                .map_err(|e| error(ErrorKind::Codec, format!("not a Beacon: {e}")))?;
            let response = self.core().handle_beacon(Timestamp::now(), &beacon);
            let d = serialize_to_py(py, &response)?.downcast_into::<PyDict>()?;
            record(py, "BeaconResponse", &d)
        }

        /// Counters of the protocol core, as a dict.
        fn stats<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
            serialize_to_py(py, &self.core().stats())
        }
    }

    /// Vouches for `vouched_dids`: they get `my_trust * vouch_factor`.
    vouch(&mut self, py, vouched_dids, options) {
        self.core().vouch(Timestamp::now(), vouched_dids, options)
    }
}
