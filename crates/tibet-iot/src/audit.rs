//! [`AuditSink`]: where a node's [`AuditRecord`]s end up.
//!
//! The engine queues records; the driver drains them after each batch of
//! work and hands them, through a bounded queue, to a dedicated thread that
//! calls the sink. A slow sink (a file with fsync) therefore never runs on
//! the receive path or under the engine lock: when it falls behind, records
//! are dropped and counted (`DriverStats::audit_dropped`), and records it
//! fails to store are counted too (`DriverStats::audit_failures`). With the
//! `tibet-core` feature (default), `tibet_core::NetworkBridge` is a sink.

use tibet_iot_proto::AuditRecord;

/// Why a sink could not store a record.
#[derive(Debug, thiserror::Error)]
#[error("audit record not stored: {0}")]
pub struct AuditError(#[from] pub Box<dyn std::error::Error + Send + Sync>);

/// Receives the audit records of a node, in the order they happened.
pub trait AuditSink: Send {
    /// Stores one record. Sinks ignore kinds of record they do not know.
    fn record(&mut self, record: &AuditRecord) -> Result<(), AuditError>;

    /// Makes what was stored durable (called by
    /// [`IoTNode::flush_audit`](crate::IoTNode::flush_audit), at stop, and
    /// when the sink is removed). Defaults to nothing.
    fn flush(&mut self) -> Result<(), AuditError> {
        Ok(())
    }
}
