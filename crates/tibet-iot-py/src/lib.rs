//! `tibet_iot._native`: the native half of the `tibet_iot` Python package
//! (distribution `tibet-iot-rs`).
//!
//! The package gives Python programs the API of the reference
//! (`tibet-ping` 0.3.5: `IoTNode`, `TransportConfig`, `PingNode`,
//! `PingPacket`, `PingResponse` and the enums, names and keyword arguments
//! kept) over this workspace's engine: the `tibet-iot` driver and the
//! `tibet-ping` protocol core. One tokio runtime per process runs every
//! node; its tasks resolve asyncio futures through a per-loop bridge
//! (`bridge.rs`), never taking the GIL, which is also released while
//! Rust code called from Python waits or works. No Python code runs per received packet unless the
//! program asks for events. The enums, exceptions and record types are
//! plain Python (`python/tibet_iot/`); this crate holds the classes that
//! wrap Rust state. Install, API and the differences from the reference:
//! `docs/PYTHON.md`.

#![forbid(unsafe_code)]

mod bridge;
mod codec;
mod config;
mod convert;
mod events;
mod fields;
mod iot_node;
mod key_files;
mod module;
mod mqtt;
mod packet;
mod ping_node;
mod pytypes;
mod records;
mod requests;
mod shared_methods;
