//! Provenance for `listen --audit FILE`: the node's audit events become
//! `tibet-core` tokens through its `NetworkBridge`, appended to a JSONL
//! file that `tibet-iot audit verify` checks.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use tibet_core::{FileStore, NetworkBridge, Provider};
use tibet_iot::AuditSink;
use tibet_ping::{PingPacket, PingResponse};

use crate::config::Durability;

/// Writes every event as a token; a failed append is logged and counted,
/// never fatal to the node.
struct BridgeSink {
    bridge: NetworkBridge,
    failures: u64,
}

impl BridgeSink {
    fn check<T, E: std::fmt::Display>(&mut self, r: Result<T, E>) {
        crate::metrics::count_token(r.is_ok());
        if let Err(e) = r {
            self.failures += 1;
            tracing::error!(failures = self.failures, "audit record not written: {e}");
        }
    }
}

impl AuditSink for BridgeSink {
    fn record_ping(&mut self, packet: &PingPacket, response: &PingResponse) {
        let r = self.bridge.record_ping(packet, Some(response));
        self.check(r);
    }

    fn record_heartbeat(&mut self, did: &str, addr: SocketAddr) {
        let r = self.bridge.record_heartbeat(did, Some(addr), None);
        self.check(r);
    }

    fn record_discovery(&mut self, did: &str, addr: SocketAddr, decision: &str) {
        let r = self.bridge.record_discovery(did, addr, decision);
        self.check(r);
    }

    fn record_relay(&mut self, packet: &PingPacket, next_hops: usize) {
        let _ = next_hops;
        let r = self.bridge.record_relay(packet, None);
        self.check(r);
    }

    fn record_trust_change(&mut self, did: &str, old: f64, new: f64, reason: &str) {
        let r = self.bridge.record_trust_change(did, old, new, reason);
        self.check(r);
    }
}

/// Opens (or creates) the token file at `path` for the node `actor`.
pub(crate) fn open(path: &Path, durability: Durability, actor: &str) -> Result<Box<dyn AuditSink>> {
    let durability = match durability {
        Durability::EveryToken => tibet_core::Durability::EveryToken,
        Durability::GroupCommit(interval) => tibet_core::Durability::GroupCommit { interval },
    };
    let store = FileStore::open_with(path, durability)
        .with_context(|| format!("cannot open audit file {}", path.display()))?;
    let provider = Provider::new(actor).with_store(store);
    Ok(Box::new(BridgeSink {
        bridge: NetworkBridge::new(provider),
        failures: 0,
    }))
}
