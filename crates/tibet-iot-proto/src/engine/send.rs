//! What the [`Engine`] sends at its caller's request: pings, mesh pings
//! and heartbeats, each tracked (`requests.rs`) until its answer, timeout or
//! failure becomes an event, with resends by its retransmission policy;
//! and our beacon sent by unicast.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::vec;

use core::net::SocketAddr;

use tibet_ping::{JsonMap, RoutingMode};

use super::router::NextHops;
use super::{Engine, SendOptions};
use crate::error::SendError;
use crate::requests::{MeshFallback, RequestId, RequestKind};
use crate::time::Now;

impl Engine {
    /// Sends a ping to `target` at `addr` (the target itself, or the first
    /// hop of a mesh route); its answer or timeout becomes an event carrying
    /// the returned id.
    pub fn send_ping(
        &mut self,
        now: Now,
        target: &str,
        addr: SocketAddr,
        intent: &str,
        purpose: &str,
        opts: SendOptions,
    ) -> Result<RequestId, SendError> {
        let shared = &mut self.shared;
        shared.check_capacity()?;
        let packet = shared
            .node
            .ping(now.wall, target, intent, purpose, opts.ping);
        let timeout = opts.timeout.unwrap_or(shared.config.request_timeout);
        let policy = opts.retransmit.unwrap_or(shared.config.retransmit);
        let mesh = (packet.routing_mode == RoutingMode::Mesh).then(|| packet.packet_id.clone());
        let id = shared.send_request(now, packet, addr, RequestKind::Caller, timeout, policy)?;
        if let Some(packet_id) = mesh {
            // Our own packet flooding back to us must not be relayed again.
            self.mesh.own_packet_sent(now, &packet_id);
        }
        Ok(id)
    }

    /// Sends a mesh ping to `target` without naming a first hop: along the
    /// learned route if there is one (the target itself when it is a live
    /// peer), else by bounded flood. A routed ping that gets no answer in
    /// half its timeout (resends included) drops the route and is sent once
    /// more, by flood, for the other half. Its answer or timeout becomes an
    /// event carrying the returned id.
    pub fn send_mesh_ping(
        &mut self,
        now: Now,
        target: &str,
        intent: &str,
        purpose: &str,
        opts: SendOptions,
    ) -> Result<RequestId, SendError> {
        let (shared, mesh) = (&mut self.shared, &mut self.mesh);
        shared.check_capacity()?;
        let mut ping = opts.ping;
        ping.routing_mode = RoutingMode::Mesh;
        let timeout = opts.timeout.unwrap_or(shared.config.request_timeout);
        let policy = opts.retransmit.unwrap_or(shared.config.retransmit);
        let packet = shared
            .node
            .ping(now.wall, target, intent, purpose, ping.clone());
        match mesh.router.next_hops(shared, now, target, None) {
            NextHops::Routed(addr) if shared.config.routing => {
                let half = timeout / 2;
                let fallback = MeshFallback {
                    intent: intent.to_owned(),
                    purpose: purpose.to_owned(),
                    ping,
                    retransmit: policy,
                    timeout: timeout - half,
                };
                mesh.router.counters().routed += 1;
                mesh.send_mesh_request(
                    shared,
                    now,
                    packet,
                    vec![addr],
                    half,
                    policy,
                    Some(Box::new(fallback)),
                    None,
                )
            }
            NextHops::Routed(addr) => {
                mesh.send_mesh_request(shared, now, packet, vec![addr], timeout, policy, None, None)
            }
            NextHops::Flood(hops) if hops.is_empty() => {
                mesh.router.counters().unroutable += 1;
                Err(SendError::NoRoute {
                    target: target.to_owned(),
                })
            }
            NextHops::Flood(hops) => {
                mesh.router.counters().flooded += 1;
                mesh.send_mesh_request(shared, now, packet, hops, timeout, policy, None, None)
            }
        }
    }

    /// Sends a heartbeat to `target` at `addr`; answered like a ping.
    pub fn send_heartbeat(
        &mut self,
        now: Now,
        target: &str,
        addr: SocketAddr,
        status: Option<JsonMap>,
    ) -> Result<RequestId, SendError> {
        let shared = &mut self.shared;
        shared.check_capacity()?;
        let packet = shared.node.heartbeat(now.wall, target, status);
        let (timeout, policy) = (shared.config.request_timeout, shared.config.retransmit);
        shared.send_request(now, packet, addr, RequestKind::Caller, timeout, policy)
    }

    /// Sends our discover packet by unicast to `addr` (a discovery port, or
    /// a host the multicast group cannot reach).
    pub fn announce_to(&mut self, now: Now, addr: SocketAddr) -> Result<(), SendError> {
        let bytes = self.discovery.discover_datagram(&mut self.shared, now)?;
        self.shared.out.transmit(addr, bytes);
        Ok(())
    }

    /// The packet id of an outstanding request.
    pub fn request_packet_id(&self, id: RequestId) -> Option<&str> {
        self.shared.requests.packet_id(id)
    }

    /// Forgets an outstanding request (its caller gave up); no event follows.
    pub fn cancel_request(&mut self, id: RequestId) {
        self.shared.requests.remove(id);
    }

    /// Forgets every outstanding request (the driver stopped).
    pub fn cancel_all_requests(&mut self) {
        self.shared.requests.clear();
    }
}
