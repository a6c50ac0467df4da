//! The audit worker: a thread that owns the [`AuditSink`] and is fed by a
//! bounded queue, so that storing records (file I/O, fsync) happens off the
//! receive path and outside the engine lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tibet_iot_proto::AuditRecord;
use tokio::sync::{mpsc, oneshot};

use crate::audit::AuditSink;

/// Records waiting for the sink; beyond, dropped and counted.
const AUDIT_QUEUE: usize = 16_384;
/// A failing sink (a full or broken disk) is logged at most this often;
/// every failure is counted.
const FAILURE_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// Logs sink failures at most once per [`FAILURE_REPORT_INTERVAL`], with the
/// number of failures since the last line, so a broken disk under a flood
/// writes one log line a minute, not one per record.
struct FailureReporter {
    failures: Arc<AtomicU64>,
    last: Option<Instant>,
    unreported: u64,
}

impl FailureReporter {
    fn failed(&mut self, e: &crate::audit::AuditError, now: Instant) -> bool {
        let total = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        self.unreported += 1;
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < FAILURE_REPORT_INTERVAL)
        {
            return false;
        }
        tracing::error!(
            failures = total,
            since_last_report = self.unreported,
            "audit sink failing ({} record(s) not stored since the last report; next report in at most 60 s): {e}",
            self.unreported
        );
        self.last = Some(now);
        self.unreported = 0;
        true
    }
}

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
    /// Starts the thread; a record the sink fails to store is counted in
    /// `failures` and logged at most once a minute.
    pub(crate) fn spawn(
        mut sink: Box<dyn AuditSink>,
        failures: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Msg>(AUDIT_QUEUE);
        let mut reporter = FailureReporter {
            failures,
            last: None,
            unreported: 0,
        };
        let mut failed = move |e: crate::audit::AuditError| {
            reporter.failed(&e, Instant::now());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_sink_is_reported_once_a_minute_and_always_counted() {
        let failures = Arc::new(AtomicU64::new(0));
        let mut r = FailureReporter {
            failures: failures.clone(),
            last: None,
            unreported: 0,
        };
        let e = || crate::audit::AuditError(Box::new(std::io::Error::other("disk full")));
        let t0 = Instant::now();
        let lines = (0..10_000u64)
            .filter(|i| r.failed(&e(), t0 + Duration::from_millis(i * 10)))
            .count();
        // 100 s of failures, one every 10 ms: a line at 0 s and at 60 s.
        assert_eq!(lines, 2);
        assert_eq!(failures.load(Ordering::Relaxed), 10_000);
    }
}
