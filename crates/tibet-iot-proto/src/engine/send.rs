//! Requests of our own: pings and heartbeats sent by the [`Engine`], each
//! tracked (`requests.rs`) until its answer, timeout or failure becomes an
//! event, with resends by its retransmission policy.

use alloc::string::ToString;
use alloc::vec::Vec;

use core::net::SocketAddr;
use core::time::Duration;

use tibet_ping::{JsonMap, PingPacket, RoutingMode};

use super::{Engine, SendOptions};
use crate::error::SendError;
use crate::requests::{Request, RequestId, RequestKind};
use crate::retransmit::{RetransmitPolicy, RetransmitState};
use crate::time::Now;
use crate::uplink::UPLINK_ADDR;

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
        self.check_capacity()?;
        let packet = self.node.ping(now.wall, target, intent, purpose, opts.ping);
        let timeout = opts.timeout.unwrap_or(self.config.request_timeout);
        let policy = opts.retransmit.unwrap_or(self.config.retransmit);
        self.send_request(now, packet, addr, RequestKind::Caller, timeout, policy)
    }

    /// Sends a heartbeat to `target` at `addr`; answered like a ping.
    pub fn send_heartbeat(
        &mut self,
        now: Now,
        target: &str,
        addr: SocketAddr,
        status: Option<JsonMap>,
    ) -> Result<RequestId, SendError> {
        self.check_capacity()?;
        let packet = self.node.heartbeat(now.wall, target, status);
        let (timeout, policy) = (self.config.request_timeout, self.config.retransmit);
        self.send_request(now, packet, addr, RequestKind::Caller, timeout, policy)
    }

    /// The packet id of an outstanding request.
    pub fn request_packet_id(&self, id: RequestId) -> Option<&str> {
        self.requests.packet_id(id)
    }

    /// Forgets an outstanding request (its caller gave up); no event follows.
    pub fn cancel_request(&mut self, id: RequestId) {
        self.requests.remove(id);
    }

    /// Forgets every outstanding request (the driver stopped).
    pub fn cancel_all_requests(&mut self) {
        self.requests.clear();
    }

    pub(super) fn check_capacity(&mut self) -> Result<(), SendError> {
        if self.requests.len() >= self.config.limits.pending_requests {
            self.stats.requests_refused += 1;
            return Err(SendError::TooManyPending {
                capacity: self.config.limits.pending_requests,
            });
        }
        Ok(())
    }

    pub(super) fn send_request(
        &mut self,
        now: Now,
        packet: PingPacket,
        addr: SocketAddr,
        kind: RequestKind,
        timeout: Duration,
        policy: RetransmitPolicy,
    ) -> Result<RequestId, SendError> {
        let bytes = self
            .codec
            .encode_packet(&packet)
            .map_err(|e| SendError::Encode(e.to_string()))?;
        if packet.routing_mode == RoutingMode::Mesh {
            // Our own packet flooding back to us must not be relayed again.
            self.relay.mark_seen(now.mono, &packet.packet_id);
            self.routes.stats.mesh_datagrams += 1;
        }
        let uplink = addr == UPLINK_ADDR;
        if uplink && !self.uplink.enabled() {
            return Err(SendError::NoUplink);
        }
        // The uplink delivers at least once (MQTT QoS 1): no resends over it.
        let retransmit = RetransmitState::new(&policy, &mut self.rng).filter(|_| !uplink);
        let deadline = now.mono + timeout;
        let next_due = retransmit
            .as_ref()
            .map_or(deadline, |st| (now.mono + st.wait()).min(deadline));
        let id = self.requests.next_id();
        let target_did = packet.target_did;
        let direct = packet.routing_mode != RoutingMode::Mesh;
        self.requests.insert(Request {
            id,
            kind,
            packet_id: packet.packet_id,
            target_did: target_did.clone(),
            addr,
            direct,
            deadline,
            next_due,
            datagram: retransmit.as_ref().map(|_| bytes.clone()),
            retransmit,
            also: Vec::new(),
            fallback: None,
            refused: None,
        });
        self.stats.requests_sent += 1;
        if uplink {
            self.uplink.ping(&target_did, self.node.did(), bytes);
        } else {
            self.out.transmit(addr, bytes);
        }
        Ok(id)
    }

    /// Sends a heartbeat of our own (no caller waits for it, no resend);
    /// whether it went out.
    pub(super) fn send_background_heartbeat(
        &mut self,
        now: Now,
        packet: PingPacket,
        addr: SocketAddr,
    ) -> bool {
        let timeout = self.config.request_timeout;
        let sent = self
            .send_request(
                now,
                packet,
                addr,
                RequestKind::Background,
                timeout,
                RetransmitPolicy::OFF,
            )
            .is_ok();
        if sent {
            self.stats.heartbeats_sent += 1;
        }
        sent
    }
}
