//! Errors of the driver's own operations.

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The node is already running.
    #[error("node is already running")]
    AlreadyRunning,
    /// The transport socket could not be set up.
    #[error("cannot bind transport socket {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The state directory could not be opened, locked or read.
    #[error(transparent)]
    State(#[from] crate::replay_horizon::StateError),
    /// The state store was refused (newer schema, corrupt) or could not be
    /// read or written.
    #[error(transparent)]
    Store(#[from] crate::state_store::StoreError),
    /// `start` was called outside a tokio runtime.
    #[error("start must be called within a tokio runtime")]
    NoRuntime,
}
