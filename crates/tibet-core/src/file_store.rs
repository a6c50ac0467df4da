//! [`FileStore`]: an append-only JSONL token file, safe to share between
//! processes and cheap to append to however large it grows.
//!
//! - **Format**: one token per line, exactly the line the reference's
//!   `Token.to_json()` writes, so Python's `tibet_core.FileStore(path)`
//!   loads the file and `verify_file()` accepts it.
//! - **Appends** take an exclusive advisory lock (`flock`) on the file for
//!   the duration of one `write`, so appenders in different processes never
//!   interleave lines. Each line reaches the OS at once (a crash of the
//!   process loses nothing); when it reaches the disk depends on the
//!   [`Durability`] policy (default: group commit, a background `fsync`
//!   every 100 ms while there is something to sync;
//!   [`Durability::EveryToken`] syncs each token before returning).
//! - **Memory** does not depend on the file size: opening reads only the
//!   tail to find the last token id (to continue the chain); queries, `get`,
//!   `verify_file` and `rotate` stream the file line by line. Queries
//!   (`find`, `get`, `trace`) skip unparseable lines; [`Store::scan`] and
//!   `verify_file` list them with line numbers.
//! - **Crash damage**: a torn last line (a write cut short) is reported by
//!   [`FileStore::recovered`] with its line number; the next append starts a
//!   fresh line after it, so no valid token before or after is lost. Every
//!   unparseable line, at the end or in the middle, is reported by
//!   [`FileStore::verify_file`] and [`Store::scan`] with its line number.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tibet_ping::Timestamp;

use crate::group_commit::GroupCommit;
use crate::store::{AppendError, ReadError, ScanReport, Store};
use crate::token::{HmacKey, Token};
use crate::verify::{VerifyReport, verify_path};

/// When appended lines are forced to disk (`fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` after every append (one token, or one batch of
    /// [`FileStore::append_batch`]) before it returns: nothing acknowledged
    /// is ever lost, at the cost of one disk flush per append.
    EveryToken,
    /// Group commit: each line is written to the OS at once (a process
    /// crash loses nothing), and a background thread `fsync`s the file once
    /// per `interval` when something was written; [`FileStore::flush`] and
    /// drop sync at once. A power loss may cost the tokens of the last
    /// interval. A failed background sync is returned by the next append
    /// or flush.
    GroupCommit {
        /// The longest time an appended token stays unsynced.
        interval: Duration,
    },
}

/// The default is group commit with a 100 ms interval.
impl Default for Durability {
    /// Group commit every 100 ms.
    fn default() -> Self {
        Durability::GroupCommit {
            interval: Duration::from_millis(100),
        }
    }
}

/// Why a token file could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Creating, opening or reading the file's tail failed.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Why rotating a token file failed. The active file is left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// Reading, writing, syncing or renaming failed.
    #[error("cannot rotate {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Damage found at the end of the file when it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// 1-based line number of the damaged last line.
    pub line: u64,
    /// Byte offset where it starts.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Why it is not a token.
    pub reason: String,
}

/// What [`FileStore::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateReport {
    /// Tokens moved to the archive.
    pub archived: u64,
    /// Lines kept in the active file (tokens and unparseable lines).
    pub kept: u64,
    /// The archive file appended to.
    pub archive_path: PathBuf,
}

/// How far back from the end [`FileStore::open`] looks for the last token.
const TAIL_SEARCH_LIMIT: u64 = 64 << 20;
pub(crate) const READ_BUF: usize = 256 << 10;

/// An append-only JSONL token file; see the module docs.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    file: File,
    durability: Durability,
    /// Written but not synced (EveryToken mode; the syncer tracks its own).
    dirty: bool,
    /// The background syncer (group commit only).
    group: Option<GroupCommit>,
    /// File length after our last write, to skip the newline check.
    known_len: Option<u64>,
    last_id: Option<String>,
    recovered: Option<Recovery>,
    line: Vec<u8>,
    read_only: bool,
    /// (device, inode) of `file`, to notice a rotation by another handle.
    identity: (u64, u64),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_owned(),
        source,
    }
}

impl FileStore {
    /// Opens (creating it and its directory if needed) a token file with the
    /// default [`Durability`], reading only its tail: the last parseable
    /// token within the last 64 MiB continues the chain (none found: the
    /// next token starts a new chain).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, Durability::default())
    }

    /// Opens a token file with the given durability policy.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, OpenError> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(&path))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut store = FileStore {
            path,
            file,
            durability,
            dirty: false,
            group: None,
            known_len: None,
            last_id: None,
            recovered: None,
            line: Vec::with_capacity(1024),
            read_only: false,
            identity: (0, 0),
        };
        store.identity = file_identity(&store.file.metadata().map_err(io_err(&store.path))?);
        if let Durability::GroupCommit { interval } = durability {
            let handle = store.file.try_clone().map_err(io_err(&store.path))?;
            store.group = Some(GroupCommit::start(handle, interval).map_err(io_err(&store.path))?);
        }
        store.read_tail().map_err(io_err(&store.path.clone()))?;
        Ok(store)
    }

    /// Opens an existing token file for reading only (it is not created;
    /// appends and rotation fail with a permission error).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = path.as_ref().to_owned();
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut store = FileStore {
            path,
            file,
            durability: Durability::default(),
            dirty: false,
            group: None,
            known_len: None,
            last_id: None,
            recovered: None,
            line: Vec::new(),
            read_only: true,
            identity: (0, 0),
        };
        store.read_tail().map_err(io_err(&store.path.clone()))?;
        Ok(store)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durability policy.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The torn or corrupt last line found when opening, if any.
    pub fn recovered(&self) -> Option<&Recovery> {
        self.recovered.as_ref()
    }

    /// Finds the last parseable token by reading backwards from the end.
    fn read_tail(&mut self) -> std::io::Result<()> {
        let len = self.file.metadata()?.len();
        let mut pos = len; // buf holds file[pos..pos + buf.len())
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let newline = memchr::memrchr(b'\n', &buf);
            if newline.is_none() && pos > 0 {
                if len - pos >= TAIL_SEARCH_LIMIT {
                    break; // give up: no token id to continue from
                }
                let chunk = (READ_BUF as u64).min(pos);
                pos -= chunk;
                let mut more = vec![0; chunk as usize];
                (&self.file).seek(SeekFrom::Start(pos))?;
                (&self.file).read_exact(&mut more)?;
                more.extend_from_slice(&buf);
                buf = more;
                continue;
            }
            let start = newline.map_or(0, |i| i + 1);
            let line = &buf[start..];
            let offset = pos + start as u64;
            if !line.iter().all(u8::is_ascii_whitespace) {
                match Token::from_json_line(line) {
                    Ok(t) => {
                        self.last_id = Some(t.token_id);
                        break;
                    }
                    // Only the damage closest to the end is reported here;
                    // verify_file reports every bad line.
                    Err(e) if self.recovered.is_none() => {
                        let terminated = offset + (line.len() as u64) < len;
                        let reason = if terminated {
                            e.to_string()
                        } else {
                            format!("torn last line: {e}")
                        };
                        self.recovered = Some(Recovery {
                            line: 0,
                            offset,
                            len: line.len() as u64,
                            reason,
                        });
                    }
                    Err(_) => {}
                }
            }
            match newline {
                Some(i) => buf.truncate(i),
                None => break,
            }
        }
        if let Some(r) = &mut self.recovered {
            r.line = count_lines_before(&self.file, r.offset)? + 1;
        }
        Ok(())
    }

    /// Appends several tokens under one lock and one write.
    pub fn append_batch(&mut self, tokens: &[Token]) -> Result<(), AppendError> {
        self.line.clear();
        for t in tokens {
            t.write_json_line(&mut self.line);
            self.line.push(b'\n');
        }
        let result = self.write_locked(None);
        if let (Ok(()), Some(t)) = (&result, tokens.last()) {
            self.last_id = Some(t.token_id.clone());
        }
        result.map_err(|source| AppendError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Appends tokens already written as lines (see
    /// [`Store::append_lines`]) under one lock and one write.
    pub fn append_lines(&mut self, text: &[u8], last_id: &str) -> Result<(), AppendError> {
        let result = self.write_locked(Some(text));
        if result.is_ok() && !text.is_empty() {
            self.last_id = Some(last_id.to_owned());
        }
        result.map_err(|source| AppendError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes `text` (or, when `None`, `self.line`) at the end under the
    /// exclusive lock.
    fn write_locked(&mut self, text: Option<&[u8]>) -> std::io::Result<()> {
        self.check_writable()?;
        if let Some(e) = self.group.as_ref().and_then(GroupCommit::take_error) {
            return Err(e); // a background fsync failed: do not carry on silently
        }
        if text.unwrap_or(&self.line).is_empty() {
            return Ok(());
        }
        // Four system calls per append: lock, fstat, write, unlock. The
        // fstat gives the length (to notice others' writes and torn lines)
        // and the link count (zero once a rotation replaced our file).
        for _ in 0..3 {
            self.file.lock()?;
            let meta = match self.file.metadata() {
                Ok(m) => m,
                Err(e) => {
                    let _ = self.file.unlock();
                    return Err(e);
                }
            };
            if is_unlinked(&meta) {
                self.file.unlock()?;
                self.reopen_if_rotated()?;
                continue;
            }
            let result = self.write_unlocked(meta.len(), text);
            let unlocked = self.file.unlock();
            return result.and(unlocked);
        }
        Err(std::io::Error::other("token file keeps being replaced"))
    }

    fn write_unlocked(&mut self, len: u64, text: Option<&[u8]>) -> std::io::Result<()> {
        if let Some(text) = text {
            // Written as given, not copied, unless a newline must go first.
            self.line.clear();
            if !self.starts_line(len)? {
                self.line.push(b'\n');
                self.line.extend_from_slice(text);
            }
        } else if !self.starts_line(len)? {
            self.line.insert(0, b'\n');
        }
        let text = match text {
            Some(t) if self.line.is_empty() => t,
            _ => &self.line,
        };
        self.file.write_all(text)?;
        self.known_len = Some(len + text.len() as u64);
        match &self.group {
            Some(group) => group.mark_dirty(),
            None => {
                self.dirty = true;
                self.sync()?;
            }
        }
        Ok(())
    }

    /// Whether a line written at `len`, the file's length, starts a line:
    /// not when someone else wrote (or a crash left a torn line) and the
    /// file does not end in a newline.
    fn starts_line(&self, len: u64) -> std::io::Result<bool> {
        if len == 0 || self.known_len == Some(len) {
            return Ok(true);
        }
        let mut last = [0u8; 1];
        (&self.file).seek(SeekFrom::Start(len - 1))?;
        (&self.file).read_exact(&mut last)?;
        Ok(last[0] == b'\n')
    }

    fn check_writable(&self) -> std::io::Result<()> {
        if self.read_only {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "opened read-only",
            ));
        }
        Ok(())
    }

    /// If the path now names another file (rotated by another handle),
    /// switch to it before appending.
    fn reopen_if_rotated(&mut self) -> std::io::Result<()> {
        let current = match std::fs::metadata(&self.path) {
            Ok(m) => Some(file_identity(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if current != Some(self.identity) {
            self.sync()?;
            self.file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&self.path)?;
            self.identity = file_identity(&self.file.metadata()?);
            self.known_len = None;
            if let Some(g) = &self.group {
                g.replace_file(self.file.try_clone()?);
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        let pending = self.dirty || self.group.as_ref().is_some_and(GroupCommit::is_dirty);
        if pending {
            self.file.sync_data()?;
            self.dirty = false;
            if let Some(g) = &self.group {
                g.mark_clean();
            }
        }
        Ok(())
    }

    /// Waits until every appended token has been synced to disk (by the
    /// group-commit thread or a flush), at most `timeout`; true if so.
    pub fn wait_synced(&self, timeout: Duration) -> bool {
        match &self.group {
            Some(g) => g.wait_clean(timeout),
            None => !self.dirty,
        }
    }

    /// How many times the group-commit thread has synced the file.
    pub fn background_syncs(&self) -> u64 {
        self.group.as_ref().map_or(0, GroupCommit::syncs)
    }

    /// Forces every appended token to disk now (and reports a failed
    /// background sync).
    pub fn flush(&mut self) -> Result<(), AppendError> {
        let background = self.group.as_ref().and_then(GroupCommit::take_error);
        background
            .map_or_else(|| self.sync(), Err)
            .map_err(|source| AppendError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Streams every line of the file: `f` gets the 1-based line number and
    /// the token or why the line is not one. Blank lines are skipped. Only
    /// bytes written before the call are read (a shared lock is held just
    /// long enough to see a length with no append half-done).
    pub fn scan_lines(
        &self,
        mut f: impl FnMut(u64, Result<Token, String>) -> ControlFlow<()>,
    ) -> Result<(), ReadError> {
        scan_path(&self.path, &mut f)
    }

    /// Checks every token's hash (with `key`, or plain SHA-256), every
    /// line's syntax and every parent link, streaming the file.
    pub fn verify_file(&self, key: Option<&HmacKey>) -> Result<VerifyReport, ReadError> {
        verify_path(&self.path, key)
    }

    /// Moves tokens older than `max_age_days` before `now` to
    /// `<path>.archive.<YYYYmmdd>.jsonl` (appended), keeping the rest (and
    /// any unparseable line) in the active file. Streams; the new active
    /// file replaces the old atomically (rename), and other handles follow
    /// it on their next append.
    pub fn rotate(
        &mut self,
        max_age_days: u32,
        now: Timestamp,
    ) -> Result<RotateReport, RotateError> {
        let cutoff = now - Duration::from_secs(u64::from(max_age_days) * 86_400);
        let archive_path = PathBuf::from(format!(
            "{}.archive.{}.jsonl",
            self.path.display(),
            now.to_datetime().format("%Y%m%d")
        ));
        let tmp_path = PathBuf::from(format!("{}.rotate.tmp", self.path.display()));
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| RotateError::Io { path, source }
        };
        self.check_writable().map_err(err(&self.path))?;
        self.reopen_if_rotated().map_err(err(&self.path))?;
        self.file.lock().map_err(err(&self.path))?;
        let result = (|| {
            let archive = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&archive_path)
                .map_err(err(&archive_path))?;
            archive.lock().map_err(err(&archive_path))?;
            let mut keep =
                std::io::BufWriter::new(File::create(&tmp_path).map_err(err(&tmp_path))?);
            let mut arch = std::io::BufWriter::new(&archive);
            let mut report = RotateReport {
                archived: 0,
                kept: 0,
                archive_path: archive_path.clone(),
            };
            let mut reader = BufReader::with_capacity(
                READ_BUF,
                File::open(&self.path).map_err(err(&self.path))?,
            );
            let mut line = Vec::new();
            loop {
                line.clear();
                if reader
                    .read_until(b'\n', &mut line)
                    .map_err(err(&self.path))?
                    == 0
                {
                    break;
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                let parsed = Token::from_json_line(&line).ok();
                let old = parsed
                    .as_ref()
                    .and_then(Token::time)
                    .is_some_and(|t| t < cutoff);
                if old {
                    arch.write_all(&line).map_err(err(&archive_path))?;
                    report.archived += 1;
                } else {
                    keep.write_all(&line).map_err(err(&tmp_path))?;
                    report.kept += 1;
                }
            }
            arch.flush().map_err(err(&archive_path))?;
            drop(arch);
            archive.sync_all().map_err(err(&archive_path))?;
            let keep = keep
                .into_inner()
                .map_err(|e| err(&tmp_path)(e.into_error()))?;
            keep.sync_all().map_err(err(&tmp_path))?;
            if report.archived > 0 {
                std::fs::rename(&tmp_path, &self.path).map_err(err(&self.path))?;
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // Persist the rename itself.
                    File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(err(dir))?;
                }
            } else {
                std::fs::remove_file(&tmp_path).map_err(err(&tmp_path))?;
            }
            Ok(report)
        })();
        let _ = self.file.unlock();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp_path);
        }
        let report = result?;
        self.reopen_if_rotated().map_err(err(&self.path))?;
        Ok(report)
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

#[cfg(unix)]
fn file_identity(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// Whether the file was unlinked (replaced by a rotation, or deleted).
#[cfg(unix)]
fn is_unlinked(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    m.nlink() == 0
}

#[cfg(not(unix))]
fn is_unlinked(_: &std::fs::Metadata) -> bool {
    false
}

/// Without inodes, rotation by another handle is not detected.
#[cfg(not(unix))]
fn file_identity(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// The length of the file with every append finished: take the shared lock
/// for a moment, so no writer is mid-line.
pub(crate) fn settled_len(file: &File) -> std::io::Result<u64> {
    file.lock_shared()?;
    let len = file.metadata().map(|m| m.len());
    file.unlock()?;
    len
}

fn count_lines_before(file: &File, offset: u64) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(READ_BUF, file.try_clone()?);
    reader.seek(SeekFrom::Start(0))?;
    let mut reader = reader.take(offset);
    let mut buf = vec![0; READ_BUF];
    let mut lines = 0;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

/// Streams the token lines of `path` (see [`FileStore::scan_lines`]).
pub(crate) fn scan_path(
    path: &Path,
    f: &mut dyn FnMut(u64, Result<Token, String>) -> ControlFlow<()>,
) -> Result<(), ReadError> {
    let rerr = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(rerr)?;
    let len = settled_len(&file).map_err(rerr)?;
    let mut reader = BufReader::with_capacity(READ_BUF, file.take(len));
    let mut line = Vec::with_capacity(1024);
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(rerr)? == 0 {
            return Ok(());
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let item = Token::from_json_line(&line).map_err(|e| {
            if line.ends_with(b"\n") {
                e.to_string()
            } else {
                format!("torn last line: {e}")
            }
        });
        if f(number, item).is_break() {
            return Ok(());
        }
    }
}

impl Store for FileStore {
    fn append_batch(&mut self, tokens: &[Token]) -> Result<(), AppendError> {
        FileStore::append_batch(self, tokens)
    }

    fn append_lines(&mut self, text: &[u8], last_id: &str) -> Result<(), AppendError> {
        FileStore::append_lines(self, text, last_id)
    }

    fn append(&mut self, token: &Token) -> Result<(), AppendError> {
        self.line.clear();
        token.write_json_line(&mut self.line);
        self.line.push(b'\n');
        self.write_locked(None).map_err(|source| AppendError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.last_id = Some(token.token_id.clone());
        Ok(())
    }

    /// Streams the file; unparseable lines are skipped and listed in the
    /// report (never silently dropped).
    fn scan(&self, f: &mut dyn FnMut(Token) -> ControlFlow<()>) -> Result<ScanReport, ReadError> {
        let mut report = ScanReport::default();
        scan_path(&self.path, &mut |line, item| match item {
            Ok(t) => {
                report.tokens += 1;
                f(t)
            }
            Err(reason) => {
                report.bad(line, reason);
                ControlFlow::Continue(())
            }
        })?;
        Ok(report)
    }

    fn last_id(&self) -> Option<String> {
        self.last_id.clone()
    }

    fn flush(&mut self) -> Result<(), AppendError> {
        FileStore::flush(self)
    }

    /// Two streaming passes: parent links first (memory: one id pair per
    /// token), then the tokens of the chain.
    fn trace(&self, token_id: &str, max_depth: usize) -> Result<Vec<Token>, ReadError> {
        let mut parents = std::collections::HashMap::new();
        self.scan(&mut |t| {
            parents.entry(t.token_id).or_insert(t.parent_id);
            ControlFlow::Continue(())
        })?;
        let mut ids: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut current = Some(token_id.to_owned());
        while let Some(id) = current.take() {
            if ids.len() >= max_depth || !seen.insert(id.clone()) {
                break;
            }
            let Some(parent) = parents.get(&id) else {
                break;
            };
            current = parent.clone();
            ids.push(id);
        }
        drop(parents);
        let mut found: std::collections::HashMap<String, Token> = std::collections::HashMap::new();
        self.scan(&mut |t| {
            if seen.contains(&t.token_id) && !found.contains_key(&t.token_id) {
                found.insert(t.token_id.clone(), t);
            }
            ControlFlow::Continue(())
        })?;
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}
