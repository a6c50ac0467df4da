//! Shared by the state store tests (`state_store.rs`, `state_reviews.rs`):
//! the hub whose state directory they restart, and the runtime it runs on.

use std::path::Path;

use tibet_iot::{IoTNode, TransportConfig};

/// The hub's DID.
pub(crate) const HUB: &str = "jis:home:hub";

/// The hub on loopback, keeping its state in `dir`.
pub(crate) fn hub(dir: &Path) -> IoTNode {
    let node = IoTNode::new(HUB, TransportConfig::loopback());
    node.set_state_dir(Some(dir.to_owned()));
    node
}

/// A single-threaded runtime with I/O and time.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The hub of [`hub`], started on a runtime of its own.
pub(crate) fn started_hub(dir: &Path) -> (tokio::runtime::Runtime, IoTNode) {
    let rt = runtime();
    let node = hub(dir);
    rt.block_on(node.start()).unwrap();
    (rt, node)
}
