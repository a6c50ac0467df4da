//! `tibet-core`: provenance tokens, chains and durable audit stores.
//!
//! Every event worth remembering becomes a [`Token`]: what happened (ERIN),
//! what it relates to (ERAAN), the context around it (EROMHEEN) and why
//! (ERACHTER), stamped with an id, a time and an actor, linked to its
//! parent token and sealed by a content hash (SHA-256, or HMAC-SHA256 with a
//! key) over the same canonical JSON the Python reference hashes, so Python's
//! `Token.verify()` and ours agree byte for byte. A [`Provider`] makes
//! tokens for one actor, chains them and hands them to a [`Store`]: a
//! [`MemoryStore`], or a [`FileStore`] (JSONL, loadable by the Python
//! reference, locked for concurrent appenders, streamed on read, with a
//! durability policy). [`Chain`] walks the links; [`NetworkBridge`] turns
//! network events into an audit trail.
//!
//! ```
//! use serde_json::json;
//! use tibet_core::{Chain, FileStore, NewToken, Provider, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = FileStore::open(dir.path().join("audit.jsonl"))?;
//! let mut tibet = Provider::new("jis:home:hub").with_store(store);
//!
//! let login = tibet.create(
//!     NewToken::new("user_login")
//!         .erin(json!({"user": "alice", "temp": 21.5}))
//!         .erachter("Dashboard access"),
//! )?;
//! let hb = tibet.record_heartbeat("jis:home:sensor", Some("ok"))?;
//! assert_eq!(hb.parent_id.as_deref(), Some(login.token_id.as_str()));
//! assert!(hb.verify(None));
//!
//! let report = tibet.verify_all()?;
//! assert!(report.is_intact() && report.valid == 2);
//! let trail = Chain::new(tibet.store()).trace(&hb.token_id, 100)?;
//! assert_eq!(trail.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Numbers: the workspace's `serde_json` keeps each JSON number as its text
//! (`arbitrary_precision`), so integers of any size (Python allows any)
//! read, hash and write back exactly, and floats hash as Python's `repr`.
//! Lone UTF-16 surrogates, which Python strings may hold, make a line
//! unparseable (reported as such, never silently accepted).

#![forbid(unsafe_code)]

mod bridge;
mod cap;
mod chain;
mod file_store;
mod group_commit;
mod id;
mod ping_token;
mod provider;
mod pyjson;
mod store;
mod token;
mod verify;

pub use bridge::{NetworkBridge, zone_for};
pub use cap::{MAX_TOKEN_PAYLOAD, MAX_TOKEN_PURPOSE};
pub use chain::{Chain, ChainSummary, DEFAULT_TRACE_DEPTH, TreeNode};
pub use file_store::{Durability, FileStore, OpenError, Recovery, RotateError, RotateReport};
pub use id::TokenIdGen;
pub use ping_token::PingAnswer;
pub use provider::{ExportFormat, NewToken, Provider, UpdateStateError, packet_token};
pub use store::{
    AppendError, BadLine, MAX_BAD_LINES_KEPT, MemoryStore, Query, ReadError, ScanReport, Store,
};
pub use tibet_ping::{
    DEFAULT_DROP_INTERVAL, DEFAULT_DROP_SOURCES, DropAggregator, DropRecord, DropSource,
};
pub use token::{HmacKey, ParseTokenError, Token, TokenState, UnknownState};
pub use verify::{ChainBreak, CorruptToken, Verifier, VerifyReport, verify_into, verify_path};
