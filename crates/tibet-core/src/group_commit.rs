//! Group commit for [`FileStore`](crate::FileStore): a background thread
//! that `fsync`s the token file once per interval when something was
//! appended, so appends never wait for the disk and an idle store does not
//! leave its last tokens unsynced.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    /// A handle on the current file (replaced after a rotation).
    file: Option<File>,
    stop: bool,
    /// Completed background syncs.
    syncs: u64,
    /// The first background sync error not yet reported to the owner.
    error: Option<std::io::Error>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the thread early (to stop) and waiters on a sync.
    changed: Condvar,
    dirty: AtomicBool,
    /// Set with `State::error`, so appends check it without the lock.
    failed: AtomicBool,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The background syncer of one store.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts syncing `file` every `interval` while it is dirty.
    pub(crate) fn start(file: File, interval: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        lock(&shared.state).file = Some(file);
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tibet-core-group-commit".into())
            .spawn(move || run(&worker, interval))?;
        Ok(GroupCommit {
            shared,
            thread: Some(thread),
        })
    }

    /// Notes that a token was written and needs syncing.
    pub(crate) fn mark_dirty(&self) {
        self.shared.dirty.store(true, Ordering::Release);
    }

    /// The file was synced by the owner: nothing pending.
    pub(crate) fn mark_clean(&self) {
        self.shared.dirty.store(false, Ordering::Release);
    }

    /// Whether appended data awaits a sync.
    pub(crate) fn is_dirty(&self) -> bool {
        self.shared.dirty.load(Ordering::Acquire)
    }

    /// Syncs `file` from now on (after a rotation replaced the old one).
    pub(crate) fn replace_file(&self, file: File) {
        lock(&self.shared.state).file = Some(file);
    }

    /// A background sync error not reported yet, if any.
    pub(crate) fn take_error(&self) -> Option<std::io::Error> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return None;
        }
        self.shared.failed.store(false, Ordering::Release);
        lock(&self.shared.state).error.take()
    }

    /// Waits until nothing is pending or `timeout` passes; true if clean.
    pub(crate) fn wait_clean(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared.state);
        while self.is_dirty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Background syncs completed so far.
    pub(crate) fn syncs(&self) -> u64 {
        lock(&self.shared.state).syncs
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, interval: Duration) {
    let mut state = lock(&shared.state);
    loop {
        // Sleep for one interval (or until told to stop).
        let deadline = Instant::now() + interval;
        while !state.stop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.stop {
            return; // the owner syncs on drop
        }
        if shared.dirty.swap(false, Ordering::AcqRel) {
            let result = state.file.as_ref().map_or(Ok(()), File::sync_data);
            match result {
                Ok(()) => state.syncs += 1,
                Err(e) => {
                    shared.dirty.store(true, Ordering::Release);
                    state.error.get_or_insert(e);
                    shared.failed.store(true, Ordering::Release);
                }
            }
            shared.changed.notify_all();
        }
    }
}
