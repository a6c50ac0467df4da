//! Errors of the node's operations, one enum per operation.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;

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
    /// Nothing listens at the address: the ping came back as an ICMP
    /// "port unreachable" (reported by drivers that read ICMP errors).
    #[error("nothing is listening at {addr} (ICMP port unreachable)")]
    Unreachable {
        /// Where the ping was sent.
        addr: core::net::SocketAddr,
    },
    /// An answer came, but the identity check refused it (the responder's
    /// pin did not verify its signature, or `require` mode and no pin),
    /// and no answer it accepted followed before the deadline.
    #[error(
        "the answer from {responder_did} at {from} was refused: {}",
        refusal_text(*signed, pinned_key.as_deref())
    )]
    AnswerRefused {
        /// The DID the answer claimed.
        responder_did: String,
        /// Where it came from.
        from: core::net::SocketAddr,
        /// Whether it carried a signature at all.
        signed: bool,
        /// The fingerprint of the key the DID is pinned to (first 16 hex
        /// digits of the SHA-256 of the raw key), if it is pinned.
        pinned_key: Option<String>,
    },
}

fn refusal_text(signed: bool, pinned_key: Option<&str>) -> String {
    match (signed, pinned_key) {
        (true, Some(k)) => {
            format!("its signature does not verify with the pinned key (fingerprint {k})")
        }
        (false, Some(k)) => format!("it is unsigned, but the DID is pinned to key {k}"),
        (_, None) => "the DID is not pinned and identity mode is require".to_owned(),
    }
}
