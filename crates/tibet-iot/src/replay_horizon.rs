//! The replay horizon of a node's state directory (docs/SECURITY.md, "No
//! replay across restarts"), and the directory's lock.
//!
//! The replay table lives in memory, so a node that restarts does not know
//! the nonces its last run accepted. What it can know is the latest
//! timestamp that run could have accepted, kept in the state store
//! (`state.db`, `state_store.rs`); the next run refuses every packet sent
//! at or before it, so a packet the last run could have accepted is never
//! accepted again.
//!
//! - While running, the driver writes every [`HORIZON_INTERVAL`] the crash
//!   horizon: the clock plus [`HORIZON_LEAD`] plus the future skew allowed
//!   to senders' clocks. Whatever the run accepts before its next write was
//!   sent before that, so a SIGKILL at any moment is covered; the cost is
//!   that the next run refuses pings for up to lead + skew (8 s) after the
//!   crash.
//! - At a clean stop it writes the latest timestamp the run actually
//!   accepted: the next run refuses nothing a sender makes after the stop.
//!
//! Nodes before the store kept the horizon in a file, `replay-horizon`; it
//! is read at start (the later of it and the store's wins) and removed
//! once the store holds a horizon. The directory also holds `lock`, held
//! (`flock`) while the node runs, so two nodes never share one state
//! directory; it is mode 0700.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tibet_ping::Timestamp;

/// How often a running node writes its horizon.
pub const HORIZON_INTERVAL: Duration = Duration::from_secs(1);

/// How far ahead of the clock the written crash horizon is: longer than
/// the interval, so a crash between two writes is still covered.
pub const HORIZON_LEAD: Duration = Duration::from_secs(3);

const HORIZON_FILE: &str = "replay-horizon";
const LOCK_FILE: &str = "lock";

/// Why a state directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The directory or one of its files could not be created, read or
    /// written.
    #[error("state directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The thread that keeps the horizon could not be started.
    #[error("cannot start the replay horizon's thread: {0}")]
    Thread(io::Error),
    /// Another node runs with this state directory.
    #[error(
        "state directory {0} is in use by another running node (give each node its own --state DIR)"
    )]
    InUse(PathBuf),
    /// The horizon file holds something that is not a timestamp: refused,
    /// never overwritten, so nothing is silently forgotten.
    #[error("{0}: not a timestamp; move the file away to start without a replay horizon")]
    Corrupt(PathBuf),
}

/// A state directory opened and locked by a running node.
#[derive(Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
    /// Held while the node runs; the lock goes with the file.
    _lock: File,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

impl StateDir {
    /// Creates (0700) and locks `dir`; returns it with the horizon a node
    /// before the state store left in its file, if any.
    pub(crate) fn open(dir: &Path) -> Result<(StateDir, Option<Timestamp>), StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StateError::InUse(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let path = dir.join(HORIZON_FILE);
        let horizon = match fs::read_to_string(&path) {
            Ok(text) => Some(Timestamp::parse(text.trim()).ok_or(StateError::Corrupt(path))?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&path)(e)),
        };
        let state = StateDir {
            dir: dir.to_owned(),
            _lock: lock,
        };
        Ok((state, horizon))
    }

    /// Removes the horizon file of nodes before the state store, once the
    /// store holds a horizon at least as late.
    pub(crate) fn forget_legacy_horizon(&self) -> Result<(), StateError> {
        let path = self.dir.join(HORIZON_FILE);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }
}

/// What a run that crashed before its next horizon write could have
/// accepted at most: a packet received by then, sent up to the future skew
/// ahead of the clock.
pub(crate) fn crash_horizon(skew: Duration) -> Timestamp {
    Timestamp::now() + HORIZON_LEAD + skew
}

/// A thread that hands a running node's crash horizon to `tick` every
/// [`HORIZON_INTERVAL`] (which writes it, with the state store's other
/// copies, in one transaction). Dropped (as in a crash, or a node dropped
/// without a stop) it ends without a last write.
#[derive(Debug)]
pub(crate) struct HorizonKeeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HorizonKeeper {
    /// Starts the thread; the caller wrote the first crash horizon before
    /// the node reads a packet. A slow disk never blocks the receive path.
    pub(crate) fn start(
        skew: Duration,
        mut tick: Box<dyn FnMut(Timestamp) + Send>,
    ) -> Result<Self, StateError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tibet-horizon".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(HORIZON_INTERVAL)
                {
                    tick(crash_horizon(skew));
                }
            })
            .map_err(StateError::Thread)?;
        Ok(HorizonKeeper {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Ends the thread (after a write in progress); the caller writes the
    /// last horizon. Blocks for at most one write.
    pub(crate) fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for HorizonKeeper {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_is_locked_and_a_legacy_horizon_read_then_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("node");
        let (state, horizon) = StateDir::open(&dir).unwrap();
        assert_eq!(horizon, None, "a new directory has no horizon");
        assert!(matches!(StateDir::open(&dir), Err(StateError::InUse(_))));
        drop(state);
        let t = "2026-12-06T23:00:00.250000+00:00";
        fs::write(dir.join(HORIZON_FILE), t).unwrap();
        let (state, horizon) = StateDir::open(&dir).unwrap();
        assert_eq!(horizon, Timestamp::parse(t));
        state.forget_legacy_horizon().unwrap();
        assert!(!dir.join(HORIZON_FILE).exists());
        state.forget_legacy_horizon().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_corrupt_horizon_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(HORIZON_FILE), "yesterday").unwrap();
        assert!(matches!(
            StateDir::open(tmp.path()),
            Err(StateError::Corrupt(_))
        ));
        let text = fs::read_to_string(tmp.path().join(HORIZON_FILE)).unwrap();
        assert_eq!(text, "yesterday");
    }
}
