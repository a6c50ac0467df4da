//! Errors of the node's operations, one enum per operation.

/// Why a ping or heartbeat could not be sent or awaited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The node is not running (never started, or stopped).
    #[error("node is not running")]
    NotRunning,
    /// Too many requests are outstanding; the request was refused.
    #[error("too many outstanding requests (capacity {capacity})")]
    TooManyPending {
        /// The configured capacity.
        capacity: usize,
    },
    /// The packet could not be encoded (e.g. payload over 64 KiB).
    #[error("cannot encode packet: {0}")]
    Encode(String),
    /// The destination is the uplink, but no uplink is attached.
    #[error("no uplink attached")]
    NoUplink,
    /// A mesh ping found neither a route nor a live peer to flood to.
    #[error("no route to {target} and no peer to flood to")]
    NoRoute {
        /// The destination DID.
        target: String,
    },
    /// The node stopped while the request was outstanding.
    #[error("node stopped before an answer arrived")]
    Stopped,
}
