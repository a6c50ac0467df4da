//! `PingPacket` and `PingResponse`: the wire types with the reference's
//! attribute names, enum members where the reference has enums, and
//! `to_dict()` / `from_dict()`. Each wraps the Rust type, so handing one to
//! the engine or getting one from it copies no field through Python.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tibet_ping::{
    AirlockZone, JsonMap, PingDecision, PingType, Priority, RoutingMode, Timestamp, ids,
};

use crate::convert::{map_from_py, map_to_py};
use crate::fields::pymethods_with_fields;
use crate::pytypes::{ErrorKind, error};

/// An enum argument as its value: members give `.value`, plain values pass.
fn enum_value<'py>(obj: &Bound<'py, PyAny>) -> Bound<'py, PyAny> {
    obj.getattr(pyo3::intern!(obj.py(), "value"))
        .unwrap_or_else(|_| obj.clone())
}

fn parse_str_enum<T: std::str::FromStr>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let v = enum_value(obj);
    let text: String = v.extract().map_err(|_| {
        error(
            ErrorKind::Config,
            format!("{what}: expected a {what} or its string value, got {v}"),
        )
    })?;
    text.parse()
        .map_err(|_| error(ErrorKind::Config, format!("{what}: unknown value {text:?}")))
}

/// A `PingType` member or its string.
pub(crate) fn ping_type_arg(obj: &Bound<'_, PyAny>) -> PyResult<PingType> {
    parse_str_enum(obj, "PingType")
}

/// A `RoutingMode` member or its string.
pub(crate) fn routing_mode_arg(obj: &Bound<'_, PyAny>) -> PyResult<RoutingMode> {
    parse_str_enum(obj, "RoutingMode")
}

/// An `AirlockZone` member or its string.
pub(crate) fn zone_arg(obj: &Bound<'_, PyAny>) -> PyResult<AirlockZone> {
    parse_str_enum(obj, "AirlockZone")
}

/// A `PingDecision` member or its string.
pub(crate) fn decision_arg(obj: &Bound<'_, PyAny>) -> PyResult<PingDecision> {
    parse_str_enum(obj, "PingDecision")
}

/// A `Priority` member or its number.
pub(crate) fn priority_arg(obj: &Bound<'_, PyAny>) -> PyResult<Priority> {
    let v = enum_value(obj);
    v.extract::<u8>()
        .ok()
        .and_then(Priority::from_u8)
        .ok_or_else(|| {
            error(
                ErrorKind::Config,
                format!("Priority: expected 1, 2 or 3, got {v}"),
            )
        })
}

/// What a ping is, from its Python arguments: the type, priority and
/// routing mode (enum members or their values) and the payload (a dict or
/// `None`).
pub(crate) fn ping_args(
    ping_type: &Bound<'_, PyAny>,
    priority: &Bound<'_, PyAny>,
    routing_mode: &Bound<'_, PyAny>,
    payload: Option<&Bound<'_, PyAny>>,
) -> PyResult<(PingType, Priority, RoutingMode, JsonMap)> {
    Ok((
        ping_type_arg(ping_type)?,
        priority_arg(priority)?,
        routing_mode_arg(routing_mode)?,
        payload_arg(payload)?,
    ))
}

/// An optional payload dict as a JSON object (`None`: empty).
pub(crate) fn payload_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<JsonMap> {
    match obj {
        Some(o) if !o.is_none() => map_from_py(o),
        _ => Ok(JsonMap::new()),
    }
}

/// A ping: who sends it, to whom, what it wants and why.
#[pyclass(module = "tibet_iot", name = "PingPacket", eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyPingPacket {
    pub(crate) inner: tibet_ping::PingPacket,
}

pymethods_with_fields! {
    impl PyPingPacket {
        fields {
            /// The packet as the dict the reference's `to_dict()` gives (the wire
            /// object).
            to_dict,
            /// A packet from its dict form (required keys as on the wire).
            from_dict: "PingPacket",
            str: [
                packet_id / set_packet_id,
                source_did / set_source_did,
                target_did / set_target_did,
                intent / set_intent,
                purpose / set_purpose,
                nonce / set_nonce,
                timestamp / set_timestamp,
                signature / set_signature,
            ],
            opt_str: [
                pod_id / set_pod_id,
                station_id / set_station_id,
                tibet_token_id / set_tibet_token_id,
                vouched_by / set_vouched_by,
                vouch_signature / set_vouch_signature,
            ],
            copy: [hop_count / set_hop_count: u32, max_hops / set_max_hops: u32],
            dict: [
                /// A copy of the payload (assign a new dict to change it).
                payload / set_payload,
            ],
            member: [
                ping_type / set_ping_type: ping_type(as_str, ping_type_arg),
                priority / set_priority: priority(as_u8, priority_arg),
                routing_mode / set_routing_mode: routing_mode(as_str, routing_mode_arg),
            ],
        }

        #[new]
        #[pyo3(signature = (packet_id, source_did, target_did, ping_type, priority, routing_mode, intent,
            purpose, payload=None, pod_id=None, station_id=None, hop_count=0, max_hops=5, nonce=None,
            timestamp=None, tibet_token_id=None, vouched_by=None, vouch_signature=None, signature=String::new()))]
        #[allow(clippy::too_many_arguments)]
        fn new(
            packet_id: String,
            source_did: String,
            target_did: String,
            ping_type: &Bound<'_, PyAny>,
            priority: &Bound<'_, PyAny>,
            routing_mode: &Bound<'_, PyAny>,
            intent: String,
            purpose: String,
            payload: Option<&Bound<'_, PyAny>>,
            pod_id: Option<String>,
            station_id: Option<String>,
            hop_count: u32,
            max_hops: u32,
            nonce: Option<String>,
            timestamp: Option<String>,
            tibet_token_id: Option<String>,
            vouched_by: Option<String>,
            vouch_signature: Option<String>,
            signature: String,
        ) -> PyResult<Self> {
            let (ping_type, priority, routing_mode, payload) =
                ping_args(ping_type, priority, routing_mode, payload)?;
            Ok(PyPingPacket {
                inner: tibet_ping::PingPacket {
                    ping_type,
                    priority,
                    routing_mode,
                    payload,
                    pod_id,
                    station_id,
                    hop_count,
                    max_hops,
                    nonce: nonce.unwrap_or_else(|| ids::nonce(&mut rand::thread_rng())),
                    timestamp: timestamp.unwrap_or_else(|| Timestamp::now().to_iso()),
                    tibet_token_id,
                    vouched_by,
                    vouch_signature,
                    signature,
                    ..tibet_ping::PingPacket::new(packet_id, source_did, target_did, intent, purpose)
                },
            })
        }

        /// TIBET ERIN: what is in the packet.
        fn to_tibet_erin<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let p = &self.inner;
            let d = PyDict::new(py);
            d.set_item("packet_id", &p.packet_id)?;
            d.set_item("source_did", &p.source_did)?;
            d.set_item("target_did", &p.target_did)?;
            d.set_item("ping_type", p.ping_type.as_str())?;
            d.set_item("intent", &p.intent)?;
            d.set_item("payload", map_to_py(py, &p.payload)?)?;
            Ok(d)
        }

        /// TIBET EROMHEEN: the context around it.
        fn to_tibet_eromheen<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let p = &self.inner;
            let d = PyDict::new(py);
            d.set_item("pod_id", &p.pod_id)?;
            d.set_item("station_id", &p.station_id)?;
            d.set_item("hop_count", p.hop_count)?;
            d.set_item("routing_mode", p.routing_mode.as_str())?;
            d.set_item("priority", p.priority.as_u8())?;
            d.set_item("timestamp", &p.timestamp)?;
            Ok(d)
        }

        fn __repr__(&self) -> String {
            let p = &self.inner;
            format!(
                "PingPacket(packet_id={:?}, source_did={:?}, target_did={:?}, ping_type={}, intent={:?}, routing_mode={}, hop_count={})",
                p.packet_id,
                p.source_did,
                p.target_did,
                p.ping_type,
                p.intent,
                p.routing_mode,
                p.hop_count
            )
        }

        fn __copy__(&self) -> Self {
            self.clone()
        }
    }
}

/// An answer to a ping: the responder's decision, zone and trust.
#[pyclass(module = "tibet_iot", name = "PingResponse", eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyPingResponse {
    pub(crate) inner: tibet_ping::PingResponse,
}

impl From<tibet_ping::PingResponse> for PyPingResponse {
    fn from(inner: tibet_ping::PingResponse) -> Self {
        PyPingResponse { inner }
    }
}

pymethods_with_fields! {
    impl PyPingResponse {
        fields {
            /// The response as the dict the reference's `to_dict()` gives.
            to_dict,
            /// A response from its dict form.
            from_dict: "PingResponse",
            str: [
                response_id,
                in_response_to,
                responder_did,
                timestamp,
                /// The responder's Ed25519 signature (empty when unsigned).
                signature,
            ],
            opt_str: [tibet_token_id, applied_rule],
            copy: [
                trust_score: f64,
                /// The responder's processing time in milliseconds.
                rtt_ms: Option<f64>,
            ],
            dict: [
                /// A copy of the payload.
                payload,
                /// A copy of how the trust was computed.
                fira_breakdown,
            ],
            member: [decision / set_decision: ping_decision(as_str, decision_arg)],
        }

        #[new]
        #[pyo3(signature = (response_id, in_response_to, responder_did, decision, payload=None,
            capabilities=Vec::new(), trust_score=0.0, fira_breakdown=None, tibet_token_id=None,
            timestamp=None, rtt_ms=None, airlock_zone=None, applied_rule=None))]
        #[allow(clippy::too_many_arguments)]
        fn new(
            response_id: String,
            in_response_to: String,
            responder_did: String,
            decision: &Bound<'_, PyAny>,
            payload: Option<&Bound<'_, PyAny>>,
            capabilities: Vec<String>,
            trust_score: f64,
            fira_breakdown: Option<&Bound<'_, PyAny>>,
            tibet_token_id: Option<String>,
            timestamp: Option<String>,
            rtt_ms: Option<f64>,
            airlock_zone: Option<&Bound<'_, PyAny>>,
            applied_rule: Option<String>,
        ) -> PyResult<Self> {
            Ok(PyPingResponse {
                inner: tibet_ping::PingResponse {
                    response_id,
                    in_response_to,
                    responder_did,
                    decision: decision_arg(decision)?,
                    payload: payload_arg(payload)?,
                    capabilities,
                    trust_score,
                    fira_breakdown: payload_arg(fira_breakdown)?,
                    tibet_token_id,
                    timestamp: timestamp.unwrap_or_else(|| Timestamp::now().to_iso()),
                    rtt_ms,
                    airlock_zone: match airlock_zone {
                        Some(z) => zone_arg(z)?,
                        None => AirlockZone::Rood,
                    },
                    applied_rule,
                    signature: String::new(),
                },
            })
        }

        #[getter]
        fn capabilities(&self) -> Vec<String> {
            self.inner.capabilities.clone()
        }
        /// The zone as a string (`"GROEN"`, `"GEEL"`, `"ROOD"`), as the
        /// reference keeps it.
        #[getter]
        fn airlock_zone(&self) -> &'static str {
            self.inner.airlock_zone.as_str()
        }

        fn __repr__(&self) -> String {
            let r = &self.inner;
            format!(
                "PingResponse(responder_did={:?}, decision={}, airlock_zone={:?}, trust_score={}, in_response_to={:?})",
                r.responder_did,
                r.decision,
                r.airlock_zone.as_str(),
                r.trust_score,
                r.in_response_to
            )
        }
    }
}
