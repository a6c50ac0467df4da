//! `PacketCodec`: TP frames (8-byte header, JSON or msgpack) to and from
//! `PingPacket` / `PingResponse`, for programs that bring their own socket
//! (e.g. a sync `PingNode` on a plain UDP socket).

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tibet_ping::Frame;

use crate::packet::{PyPingPacket, PyPingResponse};
use crate::pytypes::{ErrorKind, error};

/// Encodes and decodes frames; `use_msgpack` picks what is written, either
/// format is read.
#[pyclass(module = "tibet_iot", name = "PacketCodec", frozen)]
pub(crate) struct PacketCodec {
    inner: tibet_ping::PacketCodec,
}

#[pymethods]
impl PacketCodec {
    #[new]
    #[pyo3(signature = (use_msgpack=false))]
    fn new(use_msgpack: bool) -> Self {
        PacketCodec {
            inner: tibet_ping::PacketCodec::new(use_msgpack),
        }
    }

    /// Whether frames are written as msgpack.
    #[getter]
    fn use_msgpack(&self) -> bool {
        self.inner.format() == tibet_ping::WireFormat::Msgpack
    }

    /// One datagram carrying `packet`.
    fn encode_packet<'py>(
        &self,
        py: Python<'py>,
        packet: PyRef<'py, PyPingPacket>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self
            .inner
            .encode_packet(&packet.inner)
            .map_err(|e| error(ErrorKind::Codec, e.to_string()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// One datagram carrying `response`.
    fn encode_response<'py>(
        &self,
        py: Python<'py>,
        response: PyRef<'py, PyPingResponse>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self
            .inner
            .encode_response(&response.inner)
            .map_err(|e| error(ErrorKind::Codec, e.to_string()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The packet or response in a datagram; `CodecError` if it is not a
    /// valid frame.
    fn decode(&self, py: Python<'_>, data: &[u8]) -> PyResult<PyObject> {
        match self.inner.decode(data) {
            Ok(Frame::Packet(p)) => Ok(Py::new(py, PyPingPacket { inner: p })?.into_any()),
            Ok(Frame::Response(r)) => Ok(Py::new(py, PyPingResponse::from(r))?.into_any()),
            Err(e) => Err(error(ErrorKind::Codec, e.to_string())),
        }
    }
}
