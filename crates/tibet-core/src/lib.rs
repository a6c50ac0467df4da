//! `tibet-core`: provenance tokens, chains and durable audit stores.

#![forbid(unsafe_code)]
