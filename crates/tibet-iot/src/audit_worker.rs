//! The audit worker: a thread that owns the [`AuditSink`] and is fed by a
//! bounded queue, so that storing records (file I/O, fsync) happens off the
//! receive path and outside the engine lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tibet_iot_proto::AuditRecord;
use tokio::sync::{mpsc, oneshot};

use crate::audit::AuditSink;

/// Records waiting for the sink; beyond, dropped and counted.
const AUDIT_QUEUE: usize = 16_384;

pub(crate) enum Msg {
    Record(AuditRecord),
    Flush(oneshot::Sender<()>),
}

/// The handle on the worker thread; dropping it lets the thread store what
/// is queued, flush the sink and end, and waits for that.
pub(crate) struct AuditWorker {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AuditWorker {
    /// Starts the thread; a record the sink fails to store is logged and
    /// counted in `failures`.
    pub(crate) fn spawn(
        mut sink: Box<dyn AuditSink>,
        failures: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Msg>(AUDIT_QUEUE);
        let failed = move |e: crate::audit::AuditError| {
            let n = failures.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(failures = n, "{e}");
        };
        let thread = std::thread::Builder::new()
            .name("tibet-audit".to_owned())
            .spawn(move || {
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        Msg::Record(r) => {
                            if let Err(e) = sink.record(&r) {
                                failed(e);
                            }
                        }
                        Msg::Flush(done) => {
                            if let Err(e) = sink.flush() {
                                failed(e);
                            }
                            let _ = done.send(());
                        }
                    }
                }
                if let Err(e) = sink.flush() {
                    failed(e);
                }
            })?;
        Ok(AuditWorker {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a record; `false` when the queue is full (the caller counts).
    pub(crate) fn submit(&self, record: AuditRecord) -> bool {
        self.tx
            .as_ref()
            .is_some_and(|tx| tx.try_send(Msg::Record(record)).is_ok())
    }

    /// A sender for a flush request (to await without holding a lock).
    pub(crate) fn sender(&self) -> Option<mpsc::Sender<Msg>> {
        self.tx.clone()
    }
}

/// Waits until everything queued before this call is stored and flushed.
pub(crate) async fn flush(tx: mpsc::Sender<Msg>) {
    let (done, wait) = oneshot::channel();
    if tx.send(Msg::Flush(done)).await.is_ok() {
        let _ = wait.await;
    }
}

impl Drop for AuditWorker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
