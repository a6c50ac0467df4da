//! [`AuditSink`]: where a node reports network events for provenance.
//!
//! The node calls the sink synchronously from its engine, once per event, in
//! the order the events happened. With the `tibet-core` feature (default),
//! `tibet_core::NetworkBridge` is a sink: tokens `ping.<type>`, `heartbeat`,
//! `discovery`, `relay`, `trust_change`. Without a sink nothing is recorded
//! and nothing is paid.

use std::net::SocketAddr;

use tibet_ping::{PingPacket, PingResponse};

/// Receives the auditable events of a node. Every method defaults to doing
/// nothing, so a sink implements only what it records.
pub trait AuditSink: Send {
    /// A ping addressed to this node was decided; `response` is what the
    /// pipeline produced (sent for accept and pending, withheld for reject).
    fn record_ping(&mut self, packet: &PingPacket, response: &PingResponse) {
        let _ = (packet, response);
    }

    /// A heartbeat from `did` at `addr` was accepted.
    fn record_heartbeat(&mut self, did: &str, addr: SocketAddr) {
        let _ = (did, addr);
    }

    /// A beacon of `did` from `addr` was handled with `decision`
    /// (`auto_vouched`, `hitl_pending`, ...).
    fn record_discovery(&mut self, did: &str, addr: SocketAddr, decision: &str) {
        let _ = (did, addr, decision);
    }

    /// `packet` (hop count already raised) was forwarded to `next_hops` peers.
    fn record_relay(&mut self, packet: &PingPacket, next_hops: usize) {
        let _ = (packet, next_hops);
    }

    /// `packet` (hop count already raised) was forwarded to these addresses;
    /// by default reported through [`AuditSink::record_relay`] as a count.
    fn record_relay_to(&mut self, packet: &PingPacket, next_hops: &[SocketAddr]) {
        self.record_relay(packet, next_hops.len());
    }

    /// The trust of `did` changed from `old` to `new` because of `reason`.
    fn record_trust_change(&mut self, did: &str, old: f64, new: f64, reason: &str) {
        let _ = (did, old, new, reason);
    }
}

#[cfg(feature = "tibet-core")]
mod bridge {
    use std::net::SocketAddr;

    use tibet_core::NetworkBridge;
    use tibet_ping::{PingPacket, PingResponse};

    use super::AuditSink;

    fn logged<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) {
        if let Err(e) = r {
            // The node keeps serving; the store's trouble is the operator's.
            tracing::warn!(error = %e, "audit: cannot record {what}");
        }
    }

    /// Records through the bridge; a store error is logged, never fatal.
    impl AuditSink for NetworkBridge {
        fn record_ping(&mut self, packet: &PingPacket, response: &PingResponse) {
            logged(
                "ping",
                NetworkBridge::record_ping(self, packet, Some(response)),
            );
        }

        fn record_heartbeat(&mut self, did: &str, addr: SocketAddr) {
            logged(
                "heartbeat",
                NetworkBridge::record_heartbeat(self, did, Some(addr), None),
            );
        }

        fn record_discovery(&mut self, did: &str, addr: SocketAddr, decision: &str) {
            logged(
                "discovery",
                NetworkBridge::record_discovery(self, did, addr, decision),
            );
        }

        fn record_relay(&mut self, packet: &PingPacket, _next_hops: usize) {
            logged("relay", NetworkBridge::record_relay(self, packet, None));
        }

        fn record_relay_to(&mut self, packet: &PingPacket, next_hops: &[SocketAddr]) {
            let single = match next_hops {
                [one] => Some(*one),
                _ => None,
            };
            logged("relay", NetworkBridge::record_relay(self, packet, single));
        }

        fn record_trust_change(&mut self, did: &str, old: f64, new: f64, reason: &str) {
            logged(
                "trust change",
                NetworkBridge::record_trust_change(self, did, old, new, reason),
            );
        }
    }
}
