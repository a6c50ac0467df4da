//! The CLI's handle on a running `tibet_iot::IoTNode`: starts it from
//! [`Settings`], sends pings, turns library events into printable ones and
//! answers control-socket requests. Only glue; the behaviour is the library's.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;
use tibet_ping::{JsonMap, PingResponse, RoutingMode};

use crate::control::{Request, Response};
use crate::settings::Settings;

/// One ping to send.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// Target DID.
    pub(crate) target: String,
    /// Where to send it (the target, or the first hop of a mesh route).
    pub(crate) addr: SocketAddr,
    /// Intent.
    pub(crate) intent: String,
    /// Purpose.
    pub(crate) purpose: String,
    /// Payload object.
    pub(crate) payload: JsonMap,
    /// Direct or mesh.
    pub(crate) routing: RoutingMode,
    /// How long to wait for the answer.
    pub(crate) timeout: Duration,
}

/// A node that answered a discovery beacon.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Found {
    /// Its DID.
    pub(crate) did: String,
    /// Its transport address.
    pub(crate) addr: SocketAddr,
    /// Announced device type.
    pub(crate) device_type: Option<String>,
    /// Announced capabilities.
    pub(crate) capabilities: Vec<String>,
    /// What our beacon handling decided (`auto_vouched`, `hitl_pending`, ...).
    pub(crate) decision: String,
}

/// Something `listen` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A ping addressed to us was decided.
    Ping {
        /// When (ISO 8601).
        time: String,
        /// Sender.
        source_did: String,
        /// From where.
        from: SocketAddr,
        /// Intent.
        intent: String,
        /// GROEN / GEEL / ROOD.
        zone: String,
        /// The sender's trust.
        trust: f64,
        /// accept / pending / reject / replay.
        outcome: String,
        /// The packet id (the handle for `pending approve`).
        packet_id: String,
    },
    /// A node was discovered.
    Discovered {
        /// When (ISO 8601).
        time: String,
        /// Its DID.
        did: String,
        /// Its address.
        addr: SocketAddr,
        /// Beacon decision.
        decision: String,
    },
}

impl Event {
    /// The human-readable line.
    pub(crate) fn line(&self) -> String {
        match self {
            Event::Ping {
                time,
                source_did,
                intent,
                zone,
                trust,
                outcome,
                ..
            } => {
                format!("{time}  {source_did}  {intent}  {zone}  trust {trust:.2}  {outcome}")
            }
            Event::Discovered {
                time,
                did,
                addr,
                decision,
            } => {
                format!("{time}  discovered {did} at {addr}  {decision}")
            }
        }
    }
}

/// A running node.
#[derive(Debug)]
pub(crate) struct Node {
    did: String,
    addr: SocketAddr,
}

impl Node {
    /// Binds the sockets and starts the background loops.
    pub(crate) async fn start(settings: &Settings) -> Result<Node> {
        let _ = settings;
        bail!("the node library is not wired into this build yet")
    }

    /// This node's DID.
    pub(crate) fn did(&self) -> &str {
        &self.did
    }

    /// The bound transport address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends a ping; `None` when no answer came in time.
    pub(crate) async fn send(&self, out: Outgoing) -> Result<Option<PingResponse>> {
        let _ = out;
        bail!("not wired")
    }

    /// The next printable event; `None` when the node stopped.
    pub(crate) async fn next_event(&mut self) -> Option<Event> {
        None
    }

    /// Sends a beacon and collects answers for `window`.
    pub(crate) async fn discover(&self, window: Duration) -> Result<Vec<Found>> {
        let _ = window;
        bail!("not wired")
    }

    /// Answers a control-socket request.
    pub(crate) async fn control(&self, request: Request) -> Response {
        let _ = request;
        Response::error("not wired")
    }

    /// Stops gracefully.
    pub(crate) async fn stop(self) {}
}
