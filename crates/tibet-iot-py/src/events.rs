//! What a node reports, for `async for ev in node.events()`: an
//! [`EventStream`] over the node's event channel, yielding [`NodeEvent`]s.
//! The engine builds events only while a stream is open.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tibet_iot::Event;
use tokio::sync::{Mutex, broadcast};

use crate::bridge::{Bridge, Outcome};
use crate::iot_node::addr_tuple;
use crate::packet::PyPingResponse;
use crate::pytypes::{member, types};

/// An async iterator of a node's events.
#[pyclass(module = "tibet_iot._native", name = "EventStream")]
pub(crate) struct EventStream {
    rx: Arc<Mutex<broadcast::Receiver<Event>>>,
    missed: Arc<AtomicU64>,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<Event>) -> Self {
        EventStream {
            rx: Arc::new(Mutex::new(rx)),
            missed: Arc::new(AtomicU64::new(0)),
        }
    }
}

#[pymethods]
impl EventStream {
    /// The next event, or `None` when the node is gone.
    fn next(&self, bridge: &Bridge) -> PyResult<u64> {
        let rx = self.rx.clone();
        let missed = self.missed.clone();
        bridge.spawn(async move {
            let mut rx = rx.lock().await;
            loop {
                match rx.recv().await {
                    Ok(ev) => return Outcome::Event(Some(Box::new(ev))),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        missed.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return Outcome::Event(None),
                }
            }
        })
    }

    /// Events this stream missed because it fell behind (the channel keeps
    /// the latest 4096).
    #[getter]
    fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }
}

/// One event: `kind` says which, the other attributes are `None` where they
/// do not apply.
#[pyclass(module = "tibet_iot", name = "NodeEvent", frozen)]
pub(crate) struct NodeEvent {
    ev: Event,
}

impl From<Event> for NodeEvent {
    fn from(ev: Event) -> Self {
        NodeEvent { ev }
    }
}

#[pymethods]
impl NodeEvent {
    /// `ping` (a ping to this node was decided), `answered`, `timed_out`,
    /// `peer_discovered`, `peer_joined`, `peer_proven`, `peer_expired`,
    /// `relayed`, `response_relayed`, `malformed`.
    #[getter]
    fn kind(&self) -> &'static str {
        match &self.ev {
            Event::PingDecided { .. } => "ping",
            Event::RequestAnswered { .. } => "answered",
            Event::RequestTimedOut { .. } => "timed_out",
            Event::PeerDiscovered { .. } => "peer_discovered",
            Event::PeerJoined { .. } => "peer_joined",
            Event::PeerProven { .. } => "peer_proven",
            Event::PeerExpired { .. } => "peer_expired",
            Event::PacketRelayed { .. } => "relayed",
            Event::ResponseRelayed { .. } => "response_relayed",
            Event::MalformedDropped { .. } => "malformed",
            _ => "other",
        }
    }

    /// The remote address the event concerns.
    #[getter]
    fn addr(&self) -> Option<(String, u16)> {
        match &self.ev {
            Event::PingDecided { from, .. } | Event::MalformedDropped { from, .. } => {
                Some(addr_tuple(*from))
            }
            Event::PeerDiscovered { address, .. }
            | Event::PeerJoined { address, .. }
            | Event::PeerProven { address, .. }
            | Event::PeerExpired { address, .. } => Some(addr_tuple(*address)),
            Event::ResponseRelayed { to, .. } => Some(addr_tuple(*to)),
            _ => None,
        }
    }

    /// The packet id (pings, relays, answers).
    #[getter]
    fn packet_id(&self) -> Option<String> {
        match &self.ev {
            Event::PingDecided { packet_id, .. } | Event::PacketRelayed { packet_id, .. } => {
                Some(packet_id.clone())
            }
            Event::ResponseRelayed { in_response_to, .. } => Some(in_response_to.clone()),
            Event::RequestAnswered { response, .. } => Some(response.in_response_to.clone()),
            _ => None,
        }
    }

    /// The sender of a decided ping, or the peer's DID.
    #[getter]
    fn source_did(&self) -> Option<String> {
        match &self.ev {
            Event::PingDecided { source_did, .. } => Some(source_did.clone()),
            Event::PeerDiscovered { did, .. }
            | Event::PeerJoined { did, .. }
            | Event::PeerProven { did, .. }
            | Event::PeerExpired { did, .. } => Some(did.clone()),
            _ => None,
        }
    }

    /// The intent of a decided ping.
    #[getter]
    fn intent(&self) -> Option<String> {
        match &self.ev {
            Event::PingDecided { intent, .. } => Some(intent.clone()),
            _ => None,
        }
    }

    /// The `PingType` of a decided ping.
    #[getter]
    fn ping_type<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.ev {
            Event::PingDecided { ping_type, .. } => {
                Ok(Some(member(py, &types(py)?.ping_type, ping_type.as_str())?))
            }
            _ => Ok(None),
        }
    }

    /// The `PingDecision` of a decided ping (or of an answer we got).
    #[getter]
    fn decision<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let d = match &self.ev {
            Event::PingDecided { decision, .. } => *decision,
            Event::RequestAnswered { response, .. } => response.decision,
            _ => return Ok(None),
        };
        Ok(Some(member(py, &types(py)?.ping_decision, d.as_str())?))
    }

    /// The zone (`"GROEN"`, `"GEEL"`, `"ROOD"`) of a decided ping.
    #[getter]
    fn zone(&self) -> Option<&'static str> {
        match &self.ev {
            Event::PingDecided { zone, .. } => Some(zone.as_str()),
            Event::RequestAnswered { response, .. } => Some(response.airlock_zone.as_str()),
            _ => None,
        }
    }

    /// The sender's trust as the pipeline computed it.
    #[getter]
    fn trust(&self) -> Option<f64> {
        match &self.ev {
            Event::PingDecided { trust, .. } => Some(*trust),
            _ => None,
        }
    }

    /// Whether a decided ping was dropped by the replay check.
    #[getter]
    fn replay(&self) -> bool {
        matches!(&self.ev, Event::PingDecided { replay: true, .. })
    }

    /// The answer, for `answered`.
    #[getter]
    fn response(&self) -> Option<PyPingResponse> {
        match &self.ev {
            Event::RequestAnswered { response, .. } => {
                Some(PyPingResponse::from((**response).clone()))
            }
            _ => None,
        }
    }

    /// The target of a relayed packet.
    #[getter]
    fn target_did(&self) -> Option<String> {
        match &self.ev {
            Event::PacketRelayed { target_did, .. } => Some(target_did.clone()),
            _ => None,
        }
    }

    /// Why a datagram was refused, for `malformed`.
    #[getter]
    fn reason(&self) -> Option<String> {
        match &self.ev {
            Event::MalformedDropped { reason, .. } => Some(reason.clone()),
            _ => None,
        }
    }

    /// The attributes that apply, as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("kind", self.kind())?;
        let me = Bound::new(
            py,
            NodeEvent {
                ev: self.ev.clone(),
            },
        )?;
        for name in [
            "addr",
            "packet_id",
            "source_did",
            "intent",
            "ping_type",
            "decision",
            "zone",
            "trust",
            "target_did",
            "reason",
        ] {
            let v = me.getattr(name)?;
            if !v.is_none() {
                d.set_item(name, v)?;
            }
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("NodeEvent({:?})", self.ev)
    }
}
