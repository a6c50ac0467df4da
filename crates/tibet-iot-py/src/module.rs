//! The `tibet_iot._native` module: the classes and functions it exports.

use pyo3::prelude::*;

use crate::{bridge, codec, events, iot_node, key_files, packet, ping_node, requests};

/// The native module.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<bridge::Bridge>()?;
    m.add_class::<iot_node::Node>()?;
    m.add_class::<requests::PyRequestSocket>()?;
    m.add_class::<events::EventStream>()?;
    m.add_class::<events::NodeEvent>()?;
    m.add_class::<packet::PyPingPacket>()?;
    m.add_class::<packet::PyPingResponse>()?;
    m.add_class::<ping_node::PingNode>()?;
    m.add_class::<codec::PacketCodec>()?;
    m.add_function(wrap_pyfunction!(key_files::generate_key, m)?)?;
    m.add_function(wrap_pyfunction!(key_files::public_key, m)?)?;
    m.add_function(wrap_pyfunction!(key_files::validate_did, m)?)?;
    Ok(())
}
