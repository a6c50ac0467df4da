//! The audit worker: a thread that owns the [`AuditSink`] and stores the
//! engine's records in batches, off the receive path and outside the engine
//! lock; and the driver's side of it, which decides when the node must read
//! less so that no answer goes without its record.
//!
//! The driver moves the engine's records to the thread after each batch of
//! work ([`AuditWorker::take_from`]). The thread takes everything that
//! queued up since its last call (up to [`MAX_BATCH`] records) and hands it
//! to the sink at once ([`AuditSink::record_batch`]: one `write` for a token
//! file); after a small batch it first waits [`LINGER`] for more, so that a
//! steady stream makes fewer, larger writes and fewer wake-ups. Records waiting for the thread are bounded by count and by age:
//! while [`BACKLOG_SOFT`] records wait, or the oldest has waited
//! [`BACKLOG_AGE`], a blocking node ([`AuditOverload::Block`], the default)
//! reads nothing more from its sockets (answers wait in the kernel's
//! buffer); beyond [`BACKLOG_HARD`] records the driver leaves records in the
//! engine's queue, whose bound makes the engine refuse answers it could not
//! record. The age bound is what the durability promise rests on: a record
//! reaches the sink (and a token file the OS) within about
//! [`BACKLOG_AGE`] plus one batch (and [`LINGER`]) of the answer leaving. A lossy node
//! ([`AuditOverload::Drop`]) keeps reading and drops what does not fit,
//! counted and logged once a minute.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tibet_iot_proto::{AuditOverload, AuditRecord, Engine};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::audit_sink::{AuditError, AuditSink};

/// Most records handed to the sink in one call.
pub(crate) const MAX_BATCH: usize = 1024;
/// A batch smaller than this makes the thread wait [`LINGER`] for more
/// before it stores them.
const FULL_ENOUGH: usize = 256;
/// How long the thread waits for more records after a small batch: fewer,
/// larger writes (one per batch) and fewer wake-ups of this thread and of
/// the driver, at the price of records reaching the sink up to this much
/// later (far below [`BACKLOG_AGE`]).
const LINGER: Duration = Duration::from_millis(2);
/// Records waiting for the sink at which a blocking node stops reading.
pub(crate) const BACKLOG_SOFT: u64 = 4096;
/// Age of the oldest waiting record at which a blocking node stops reading.
pub(crate) const BACKLOG_AGE: Duration = Duration::from_millis(20);
/// Records waiting for the sink beyond which the driver moves no more
/// (blocking) or drops them (lossy).
pub(crate) const BACKLOG_HARD: u64 = 16_384;
/// A failing sink, or a lossy node dropping records, is logged at most this
/// often; every record is counted.
const REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// What the thread has done, shared with the driver (and `stats`).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Records the thread has handed to the sink, stored or not.
    pub(crate) done: AtomicU64,
    /// Entries (tokens) the sink wrote.
    pub(crate) written: AtomicU64,
    /// Records the sink failed to store.
    pub(crate) failures: AtomicU64,
    /// Woken after a batch when the driver asked ([`Progress::wanted`]),
    /// so a driver waiting for room reads again.
    pub(crate) notify: Notify,
    /// Set by a driver that found the audit path congested: the next batch
    /// stored wakes it. Without it no wake-up is sent (a driver that is
    /// not waiting would only be woken for nothing, often on another
    /// worker thread).
    wanted: AtomicBool,
}

/// Logs something that keeps happening at most once per
/// [`REPORT_INTERVAL`], with the number of records since the last line, so
/// a broken disk under a flood writes one log line a minute, not one per
/// record.
#[derive(Debug, Default)]
struct Reporter {
    last: Option<Instant>,
    unreported: u64,
}

impl Reporter {
    /// Notes `n` more; `Some(unreported)` when a line is due now.
    fn note(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.unreported += n;
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < REPORT_INTERVAL)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

fn report_failure(reporter: &mut Reporter, total: u64, n: u64, e: &AuditError) -> bool {
    let Some(since) = reporter.note(n, Instant::now()) else {
        return false;
    };
    tracing::error!(
        failures = total,
        since_last_report = since,
        "audit sink failing ({since} record(s) not stored since the last report; next report in at most 60 s): {e}",
    );
    true
}

pub(crate) enum Msg {
    Records(Vec<AuditRecord>),
    Flush(oneshot::Sender<()>),
}

/// The driver's handle on the worker thread; dropping it lets the thread
/// store what is queued, flush the sink and end, and waits for that.
pub(crate) struct AuditWorker {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    thread: Option<std::thread::JoinHandle<()>>,
    progress: Arc<Progress>,
    /// Records handed to the thread so far.
    submitted: u64,
    /// (`submitted` after a hand-over, when) for hand-overs not yet done.
    handovers: VecDeque<(u64, Instant)>,
    overload: AuditOverload,
    drops: Reporter,
}

impl AuditWorker {
    /// Starts the thread; what it does is counted in `progress`.
    pub(crate) fn spawn(
        mut sink: Box<dyn AuditSink>,
        progress: Arc<Progress>,
        overload: AuditOverload,
    ) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let p = progress.clone();
        let thread = std::thread::Builder::new()
            .name("tibet-audit".to_owned())
            .spawn(move || {
                let mut reporter = Reporter::default();
                let flushed = |sink: &mut Box<dyn AuditSink>, reporter: &mut Reporter| {
                    if let Err(e) = sink.flush() {
                        let total = p.failures.fetch_add(1, Ordering::Relaxed) + 1;
                        report_failure(reporter, total, 1, &e);
                    }
                };
                let mut waiting = Vec::new();
                while let Some(msg) = rx.blocking_recv() {
                    let mut records = match msg {
                        Msg::Records(r) => r,
                        Msg::Flush(done) => {
                            flushed(&mut sink, &mut reporter);
                            let _ = done.send(());
                            continue;
                        }
                    };
                    if records.len() < FULL_ENOUGH {
                        std::thread::sleep(LINGER);
                    }
                    // Everything that queued up meanwhile, in one call; a
                    // flush request waits for the records before it.
                    while records.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Msg::Records(more)) => records.extend(more),
                            Ok(Msg::Flush(done)) => {
                                waiting.push(done);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let out = sink.record_batch(&records);
                    p.written.fetch_add(out.written, Ordering::Relaxed);
                    if out.failed > 0 {
                        let total = p.failures.fetch_add(out.failed, Ordering::Relaxed);
                        let e = out
                            .first_error
                            .unwrap_or_else(|| AuditError("unknown failure".into()));
                        report_failure(&mut reporter, total + out.failed, out.failed, &e);
                    }
                    // SeqCst with `wanted`: a driver either sees this
                    // batch done or is woken (see `congested`).
                    p.done.fetch_add(records.len() as u64, Ordering::SeqCst);
                    if p.wanted.swap(false, Ordering::SeqCst) {
                        p.notify.notify_one();
                    }
                    for done in waiting.drain(..) {
                        flushed(&mut sink, &mut reporter);
                        let _ = done.send(());
                    }
                }
                flushed(&mut sink, &mut reporter);
            })?;
        Ok(AuditWorker {
            tx: Some(tx),
            thread: Some(thread),
            progress,
            submitted: 0,
            handovers: VecDeque::new(),
            overload,
            drops: Reporter::default(),
        })
    }

    /// Records handed over and not yet done by the thread.
    fn backlog(&self) -> u64 {
        self.submitted
            .saturating_sub(self.progress.done.load(Ordering::Acquire))
    }

    /// Whether a blocking node must read nothing now: too many records
    /// wait for the sink, or the oldest has waited too long.
    pub(crate) fn congested(&mut self, now: Instant) -> bool {
        if self.overload == AuditOverload::Drop {
            return false;
        }
        // Asked before looking, so a batch stored after the look below
        // wakes the driver (its permit waits in `notify` if the driver is
        // not waiting yet).
        self.progress.wanted.store(true, Ordering::SeqCst);
        let done = self.progress.done.load(Ordering::SeqCst);
        while self.handovers.front().is_some_and(|&(end, _)| end <= done) {
            self.handovers.pop_front();
        }
        let congested = self.backlog() >= BACKLOG_SOFT
            || self
                .handovers
                .front()
                .is_some_and(|&(_, at)| now.duration_since(at) >= BACKLOG_AGE);
        if !congested {
            self.progress.wanted.store(false, Ordering::Relaxed);
        }
        congested
    }

    /// Moves the engine's records to the thread. Blocking: at most up to
    /// [`BACKLOG_HARD`] waiting (the rest stay in the engine's queue).
    /// Lossy: what does not fit is dropped, counted in `dropped` and logged
    /// at most once a minute.
    pub(crate) fn take_from(&mut self, engine: &mut Engine, dropped: &AtomicU64) {
        let lossy = self.overload == AuditOverload::Drop;
        let mut room = BACKLOG_HARD.saturating_sub(self.backlog());
        let mut batch = Vec::with_capacity(engine.audit_queued().min(room as usize));
        let mut lost = 0u64;
        while lossy || room > 0 {
            let Some(r) = engine.poll_audit() else { break };
            if room == 0 {
                lost += 1;
                continue;
            }
            room -= 1;
            batch.push(r);
        }
        if lost > 0 {
            let total = dropped.fetch_add(lost, Ordering::Relaxed) + lost;
            if let Some(since) = self.drops.note(lost, Instant::now()) {
                tracing::warn!(
                    dropped = total,
                    since_last_report = since,
                    "audit: {since} record(s) dropped since the last report because the audit file fell behind \
                     (on_overload = drop: answers went without their token); next report in at most 60 s"
                );
            }
        }
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Records(batch)).is_ok());
        if sent {
            self.submitted += n;
            self.handovers.push_back((self.submitted, Instant::now()));
        } else {
            dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// A sender for a flush request (to await without holding a lock).
    pub(crate) fn sender(&self) -> Option<mpsc::UnboundedSender<Msg>> {
        self.tx.clone()
    }
}

/// Waits until everything queued before this call is stored and flushed.
pub(crate) async fn flush(tx: mpsc::UnboundedSender<Msg>) {
    let (done, wait) = oneshot::channel();
    if tx.send(Msg::Flush(done)).is_ok() {
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
    fn what_keeps_happening_is_reported_once_a_minute_and_always_counted() {
        let mut r = Reporter::default();
        let t0 = Instant::now();
        let mut counted = 0;
        let lines = (0..10_000u64)
            .filter_map(|i| r.note(1, t0 + Duration::from_millis(i * 10)))
            .inspect(|n| counted += n)
            .count();
        // 100 s of failures, one every 10 ms: a line at 0 s and at 60 s.
        assert_eq!(lines, 2);
        assert_eq!(counted + r.unreported, 10_000);
    }
}
