//! Provenance for `listen --audit FILE`: the node's audit events become
//! `tibet-core` tokens through its `NetworkBridge`, appended to a JSONL
//! file that `tibet-iot audit verify` checks. The adapter itself is the
//! library's (`impl AuditSink for NetworkBridge` in `tibet-iot`).

use std::path::Path;

use anyhow::{Context, Result};
use tibet_core::{FileStore, NetworkBridge, Provider};
use tibet_iot::AuditSink;

use crate::config_file::Durability;

/// Opens (or creates) the token file at `path` for the node `actor`.
pub(crate) fn open(path: &Path, durability: Durability, actor: &str) -> Result<Box<dyn AuditSink>> {
    let store = FileStore::open_with(path, durability)
        .with_context(|| format!("cannot open audit file {}", path.display()))?;
    if let Some(r) = store.recovered() {
        // One line: the file's own text could hold anything, so the reason
        // is escaped and capped.
        let reason: String = r.reason.escape_debug().take(200).collect();
        eprintln!(
            "warning: audit file {}: recovered a torn or garbage last line (line {}, {} bytes at offset {}: {reason}); new tokens start on a fresh line",
            path.display(),
            r.line,
            r.len,
            r.offset
        );
    }
    let provider = Provider::new(actor).with_store(store);
    // The library's adapter; the node stores records off its receive path
    // and counts failures (`stats`: driver.audit_failures).
    Ok(Box::new(NetworkBridge::new(provider)))
}
