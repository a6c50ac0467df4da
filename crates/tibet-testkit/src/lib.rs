//! Test support for the tibet-iot workspace (dev-dependency only).
//!
//! - [`python`]: the Python reference peer (`tibet-ping` 0.3.5, `tibet-core`
//!   0.5.0, `msgpack`) installed by `scripts/pyref.sh` into `target/pyref`.
//!   `scripts/test.sh` exports `TIBET_PY` and `TIBET_REQUIRE_INTEROP=1`, so in
//!   CI a missing interpreter fails the test instead of skipping it.
//! - [`netns`]: network namespaces, veth links and a bridge for multi-host
//!   tests (root only), deleted again on drop.
//! - [`mqtt`]: a real Mosquitto broker on a loopback port, plain or TLS
//!   with a test CA.
//! - [`free_udp_port`]: a free loopback UDP port.

#![forbid(unsafe_code)]

pub mod mqtt;
pub mod netns;
mod netns_child;
mod ports;
mod python;

pub use netns_child::NsChild;
pub use ports::free_udp_port;
pub use python::{PyOutput, python, run_python};
