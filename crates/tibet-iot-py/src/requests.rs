//! `_native.RequestSocket`: a node's requests whose answers the asyncio
//! loop reads itself.
//!
//! `tibet_iot._bridge` makes one per node and event loop, watches its
//! descriptor with `loop.add_reader`, and on each wake-up calls
//! [`PyRequestSocket::poll`] (short, with the GIL held: the engine handles
//! the waiting datagrams exactly as its driver does, and the bridge is
//! drained, with no wake-up byte for what finished here). An answer thus wakes only the loop's thread, where it used to
//! wake a runtime thread that woke the loop (`tibet_iot::RequestSocket`).
//! A request that gets no answer ends at its deadline on the runtime, as
//! before.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyList;
use tibet_iot::{RequestId, RequestSocket, SendError};

use crate::bridge::{Bridge, Outcome};
use crate::iot_node::send_error;

/// The longest a lone request may spin for its answer (`spin`).
const MAX_SPIN_US: u64 = 1_000;
use crate::pytypes::{ErrorKind, error};
use crate::shared_methods::pymethods_with_shared;

/// Outstanding requests by outcome id: `None` until the engine gave the
/// request its id; removed when the request completes.
type Outstanding = Arc<Mutex<HashMap<u64, Option<RequestId>>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The request socket of one node for one event loop.
#[pyclass(module = "tibet_iot._native", name = "RequestSocket")]
pub(crate) struct PyRequestSocket {
    /// `None` once closed.
    sock: Option<RequestSocket>,
    outstanding: Outstanding,
}

impl PyRequestSocket {
    pub(crate) fn new(sock: RequestSocket) -> Self {
        PyRequestSocket {
            sock: Some(sock),
            outstanding: Arc::default(),
        }
    }

    fn sock(&self) -> PyResult<&RequestSocket> {
        self.sock
            .as_ref()
            .ok_or_else(|| error(ErrorKind::NotRunning, "the request socket is closed"))
    }

    /// Sends a request made by `send` with a completion on `bridge`;
    /// returns the outcome id its answer will carry.
    fn request(
        &self,
        bridge: &Bridge,
        send: impl FnOnce(&RequestSocket, tibet_iot::Completion) -> Result<RequestId, SendError>,
    ) -> PyResult<u64> {
        let sock = self.sock()?;
        let id = bridge.next_id();
        lock(&self.outstanding).insert(id, None);
        let outstanding = self.outstanding.clone();
        let done = bridge.completion(id, move || {
            lock(&outstanding).remove(&id);
        });
        match send(sock, done) {
            Ok(request) => {
                // Absent if it already completed.
                if let Some(slot) = lock(&self.outstanding).get_mut(&id) {
                    *slot = Some(request);
                }
                Ok(id)
            }
            Err(e) => {
                lock(&self.outstanding).remove(&id);
                match send_error(e) {
                    Outcome::Error(kind, message) => Err(error(kind, message)),
                    _ => Err(error(ErrorKind::Internal, "unexpected send outcome")),
                }
            }
        }
    }
}

pymethods_with_shared! {
    impl PyRequestSocket {
        /// The descriptor to watch for reading (-1 once closed).
        fn fileno(&self) -> i32 {
            self.sock.as_ref().map_or(-1, |s| s.as_raw_fd())
        }

        /// The bound `(host, port)` (peers see requests come from it).
        #[getter]
        fn local_addr(&self) -> PyResult<(String, u16)> {
            let a = self
                .sock()?
                .local_addr()
                .map_err(|e| error(ErrorKind::Internal, e.to_string()))?;
            Ok(crate::iot_node::addr_tuple(a))
        }

        /// Handles what waits on the socket (the loop calls it when the
        /// descriptor is readable), then drains `bridge`: its finished outcomes
        /// as `Bridge.drain` gives them, the answers read here among them.
        fn poll<'py>(&mut self, py: Python<'py>, bridge: &Bridge) -> PyResult<Bound<'py, PyList>> {
            if let Some(sock) = self.sock.as_mut() {
                bridge.quietly(|| sock.poll());
            }
            bridge.take_finished(py)
        }

        /// Waits up to `budget_us` microseconds, without sleeping and without
        /// the GIL, for the answer to come, then handles what came as
        /// [`poll`](Self::poll) does (an empty list when nothing came). The
        /// loop uses it for a lone request, so that a fast answer does not wait
        /// for the loop's thread to be woken from idle.
        fn spin<'py>(
            &mut self,
            py: Python<'py>,
            bridge: &Bridge,
            budget_us: u64,
        ) -> PyResult<Bound<'py, PyList>> {
            let budget = std::time::Duration::from_micros(budget_us.min(MAX_SPIN_US));
            let ready = match self.sock.as_ref() {
                Some(sock) => py.allow_threads(|| sock.spin_until_readable(budget)),
                None => false,
            };
            if ready {
                self.poll(py, bridge)
            } else {
                Ok(PyList::empty(py))
            }
        }

        /// Forgets the request of outcome `id` (its future was cancelled).
        fn cancel(&self, id: u64) {
            let request = lock(&self.outstanding).remove(&id).flatten();
            if let (Some(sock), Some(request)) = (self.sock.as_ref(), request) {
                sock.cancel(request);
            }
        }

        /// Closes the socket; requests still waiting end at their deadlines.
        fn close(&mut self) {
            self.sock = None;
        }
    }

    /// As `Node.send_ping`, from this socket.
    send_ping(&self, bridge, target, addr, intent, purpose, options) {
        self.request(bridge, |s, done| {
            s.send_ping(target, addr, intent, purpose, options, done)
        })
    }

    /// As `Node.send_heartbeat`, from this socket.
    send_heartbeat(&self, bridge, target, addr, status) {
        self.request(bridge, |s, done| {
            s.send_heartbeat(target, addr, status, done)
        })
    }
}
