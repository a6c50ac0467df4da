//! [`AuditSink`]: where a node's [`AuditRecord`]s end up.
//!
//! The engine queues records; the driver drains them after each batch of
//! work and hands them to a dedicated thread that calls the sink with
//! everything queued up since its last call ([`AuditSink::record_batch`]).
//! A slow sink (a file with fsync) therefore never runs on the receive path
//! or under the engine lock. When it falls behind, a blocking node (the
//! default) reads less, so no answer goes without its record; a lossy one
//! (`AuditOverload::Drop`) drops records and counts them
//! (`DriverStats::audit_dropped`). Records the sink fails to store are
//! counted too (`DriverStats::audit_failures`), tokens written as well
//! (`DriverStats::audit_written`). With the `tibet-core` feature (default),
//! `tibet_core::NetworkBridge` is a sink.

use tibet_iot_proto::AuditRecord;

/// Why a sink could not store a record.
#[derive(Debug, thiserror::Error)]
#[error("audit record not stored: {0}")]
pub struct AuditError(#[from] pub Box<dyn std::error::Error + Send + Sync>);

/// What [`AuditSink::record_batch`] did with a batch.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Stored {
    /// Entries written (tokens, for a token sink; kinds of record a sink
    /// ignores write none).
    pub written: u64,
    /// Records that could not be stored.
    pub failed: u64,
    /// The first failure's error.
    pub first_error: Option<AuditError>,
}

/// Receives the audit records of a node, in the order they happened.
pub trait AuditSink: Send {
    /// Stores one record. Sinks ignore kinds of record they do not know.
    fn record(&mut self, record: &AuditRecord) -> Result<(), AuditError>;

    /// Stores several records, in order (the audit thread hands over what
    /// queued up since its last call). By default one
    /// [`AuditSink::record`] each; a sink that can store a batch at once
    /// (the `NetworkBridge`: one `write`) overrides it.
    fn record_batch(&mut self, records: &[AuditRecord]) -> Stored {
        let mut out = Stored::default();
        for r in records {
            match self.record(r) {
                Ok(()) => out.written += 1,
                Err(e) => {
                    out.failed += 1;
                    out.first_error.get_or_insert(e);
                }
            }
        }
        out
    }

    /// Makes what was stored durable (called by
    /// [`IoTNode::flush_audit`](crate::IoTNode::flush_audit), at stop, and
    /// when the sink is removed). Defaults to nothing.
    fn flush(&mut self) -> Result<(), AuditError> {
        Ok(())
    }
}
