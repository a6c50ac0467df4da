//! The package's one tokio runtime and its bridge to asyncio.
//!
//! A coroutine of the API is a task on the runtime; when it ends, its
//! outcome (plain Rust data) joins the finished queue of the [`Bridge`] of
//! the caller's event loop, and one byte on a socket pair wakes that loop,
//! which drains the queue and resolves the asyncio futures on its own
//! thread. Runtime threads therefore never take the GIL: they neither slow
//! the interpreter nor touch it while it shuts down (a thread that asks for
//! the GIL during finalisation is torn down mid-call, which crashes the
//! process). A cancelled asyncio future aborts its task; a panic in a task
//! becomes `InternalError`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::PyList;
use tibet_iot::{Completion, Event};
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::events::NodeEvent;
use crate::iot_node::{addr_tuple, answer};
use crate::packet::PyPingResponse;
use crate::pytypes::{ErrorKind, error};

/// Worker threads of the runtime unless `TIBET_IOT_WORKER_THREADS` says
/// otherwise: node drivers are single tasks that spend their time in
/// system calls.
const WORKER_THREADS: usize = 2;

static RUNTIME: OnceLock<std::io::Result<Runtime>> = OnceLock::new();

/// The runtime, started on first use.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            let workers = std::env::var("TIBET_IOT_WORKER_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or(WORKER_THREADS);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("tibet-iot")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| {
            error(
                ErrorKind::Internal,
                format!("cannot start the runtime: {e}"),
            )
        })
}

/// What a task ends with: Rust data, made Python on the loop's thread.
pub(crate) enum Outcome {
    /// `None`.
    Unit,
    /// A `(host, port)` tuple.
    Addr(SocketAddr),
    /// A `PingResponse` or `None`.
    Response(Option<Box<tibet_ping::PingResponse>>),
    /// A `NodeEvent`, or `None` at the end of the stream.
    Event(Option<Box<Event>>),
    /// An exception.
    Error(ErrorKind, String),
}

impl Outcome {
    fn into_py(self, py: Python<'_>) -> (bool, PyObject) {
        let value = match self {
            Outcome::Unit => Ok(py.None()),
            Outcome::Addr(a) => addr_tuple(a).into_py_any(py),
            Outcome::Response(r) => r.map(|r| PyPingResponse::from(*r)).into_py_any(py),
            Outcome::Event(e) => e.map(|e| NodeEvent::from(*e)).into_py_any(py),
            Outcome::Error(kind, message) => {
                return (false, error(kind, message).into_value(py).into_any());
            }
        };
        match value {
            Ok(v) => (true, v),
            Err(e) => (false, e.into_value(py).into_any()),
        }
    }
}

struct Shared {
    finished: Mutex<VecDeque<(u64, Outcome)>>,
    /// Whether a wake-up byte is on its way (one per drain is enough).
    armed: AtomicBool,
    wake_tx: UnixStream,
}

impl Shared {
    fn finish(&self, id: u64, outcome: Outcome) {
        lock(&self.finished).push_back((id, outcome));
        if !self.armed.swap(true, Ordering::SeqCst) {
            // Non-blocking: a full socket already holds a wake-up.
            let _ = (&self.wake_tx).write(&[1]);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The bridge of one asyncio event loop (`tibet_iot._bridge` makes one per
/// loop and watches `fileno()` with `loop.add_reader`).
#[pyclass(module = "tibet_iot._native", name = "Bridge", frozen)]
pub(crate) struct Bridge {
    shared: Arc<Shared>,
    wake_rx: UnixStream,
    tasks: Mutex<HashMap<u64, AbortHandle>>,
    next_id: AtomicU64,
}

impl Bridge {
    /// Runs `fut`; returns the id its outcome will carry. The first poll
    /// happens here, on the caller's thread (sending a ping is a short
    /// engine call: no thread hop before the datagram leaves); what is
    /// left runs on the runtime.
    pub(crate) fn spawn(
        &self,
        fut: impl Future<Output = Outcome> + Send + 'static,
    ) -> PyResult<u64> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rt = runtime()?;
        let mut fut = CatchPanic(Box::pin(fut));
        let first = {
            // The engine's calls expect a runtime context (its timers).
            let _guard = rt.enter();
            Pin::new(&mut fut).poll(&mut Context::from_waker(Waker::noop()))
        };
        if let Poll::Ready(outcome) = first {
            self.shared.finish(id, outcome);
            return Ok(id);
        }
        let shared = self.shared.clone();
        let task = rt.spawn(async move {
            let outcome = fut.await;
            shared.finish(id, outcome);
        });
        lock(&self.tasks).insert(id, task.abort_handle());
        Ok(id)
    }

    /// Runs `f` (a poll on the loop's own thread, drained right after)
    /// with the wake-up byte held back: what it finishes joins the queue
    /// without a write to the socket pair. A byte already on its way is
    /// read by the drain that follows, as is any outcome a runtime thread
    /// finishes meanwhile (it finds the flag set).
    pub(crate) fn quietly<R>(&self, f: impl FnOnce() -> R) -> R {
        self.shared.armed.store(true, Ordering::SeqCst);
        f()
    }

    /// What [`Bridge::drain`] returns.
    pub(crate) fn take_finished<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        // Order matters. The wake-up bytes are read first, then the flag is
        // cleared, then the queue is taken. Clearing the flag first would
        // let a `finish` between the two arm it and write its byte, which
        // this read would swallow: the flag would stay set with no byte
        // on the socket, and no later outcome would ever wake the loop.
        // In this order, a `finish` that sees the flag still set pushed
        // its outcome before the flag was cleared, so the queue taken
        // below holds it.
        let mut buf = [0u8; 64];
        loop {
            match (&self.wake_rx).read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == IoErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.shared.armed.store(false, Ordering::SeqCst);
        let finished: Vec<(u64, Outcome)> = lock(&self.shared.finished).drain(..).collect();
        let list = PyList::empty(py);
        let mut tasks = lock(&self.tasks);
        for (id, outcome) in finished {
            tasks.remove(&id);
            let (ok, value) = outcome.into_py(py);
            list.append((id, ok, value))?;
        }
        Ok(list)
    }

    /// A fresh id for an outcome.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The [`Completion`] that ends `id` with a request's answer, after
    /// running `also`: from whichever thread learns the answer (the loop's
    /// own, polling a request socket, or the driver's at a deadline), the
    /// outcome joins the finished queue like a task's.
    pub(crate) fn completion(&self, id: u64, also: impl FnOnce() + Send + 'static) -> Completion {
        let shared = self.shared.clone();
        Box::new(move |a| {
            also();
            shared.finish(id, answer(a));
        })
    }
}

#[pymethods]
impl Bridge {
    #[new]
    fn new() -> PyResult<Self> {
        let io = |e: std::io::Error| {
            error(
                ErrorKind::Internal,
                format!("cannot set up the event-loop bridge: {e}"),
            )
        };
        let (wake_tx, wake_rx) = UnixStream::pair().map_err(io)?;
        wake_tx.set_nonblocking(true).map_err(io)?;
        wake_rx.set_nonblocking(true).map_err(io)?;
        Ok(Bridge {
            shared: Arc::new(Shared {
                finished: Mutex::new(VecDeque::new()),
                armed: AtomicBool::new(false),
                wake_tx,
            }),
            wake_rx,
            tasks: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// The descriptor that becomes readable when outcomes are waiting.
    fn fileno(&self) -> i32 {
        self.wake_rx.as_raw_fd()
    }

    /// The finished tasks as `(id, ok, value)`: a result, or the exception
    /// to raise.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.take_finished(py)
    }

    /// Aborts the task `id` (its asyncio future was cancelled).
    fn cancel(&self, id: u64) {
        if let Some(task) = lock(&self.tasks).remove(&id) {
            task.abort();
        }
    }

    /// Tasks still running.
    fn __len__(&self) -> usize {
        lock(&self.tasks).len()
    }
}

/// A future whose panics become `InternalError`.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future<Output = Outcome>> Future for CatchPanic<F> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(p) => p,
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Poll::Ready(Outcome::Error(
                    ErrorKind::Internal,
                    format!("internal error in tibet-iot (please report): {what}"),
                ))
            }
        }
    }
}
