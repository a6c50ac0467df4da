//! The package's one tokio runtime (shared by every node in the process)
//! and the bridge of its futures to asyncio: a future runs on the runtime
//! without the GIL, its result resolves an asyncio future on the caller's
//! loop, and a panic in it becomes `InternalError` instead of a crash.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use pyo3::prelude::*;

use crate::pytypes::{ErrorKind, error};

/// Worker threads of the runtime: the node drivers are single tasks that
/// spend their time in system calls; one worker per core is plenty and
/// two leave the interpreter's thread a core of its own on small machines.
const WORKER_THREADS: usize = 2;

/// Sets up the runtime (before any future is created).
pub(crate) fn init() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(WORKER_THREADS)
        .thread_name("tibet-iot")
        .enable_all();
    pyo3_async_runtimes::tokio::init(builder);
}

/// An asyncio awaitable for `fut`.
pub(crate) fn future<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, CatchPanic(Box::pin(fut)))
}

/// Runs `fut` on the runtime, detached.
pub(crate) fn spawn_py(fut: impl Future<Output = ()> + Send + 'static) {
    pyo3_async_runtimes::tokio::get_runtime().spawn(fut);
}

/// A future whose panics become `InternalError`.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F, T> Future for CatchPanic<F>
where
    F: Future<Output = PyResult<T>>,
{
    type Output = PyResult<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(p) => p,
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Poll::Ready(Err(error(
                    ErrorKind::Internal,
                    format!("internal error in tibet-iot (please report): {what}"),
                )))
            }
        }
    }
}
