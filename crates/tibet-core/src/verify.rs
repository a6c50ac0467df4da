//! Integrity checks over a sequence of tokens: hashes, unparseable lines and
//! chain links, summarised in a [`VerifyReport`].

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;

use crate::file_store::{READ_BUF, settled_len};
use crate::store::{BadLine, MAX_BAD_LINES_KEPT, ReadError};
use crate::token::{HmacKey, Token, TokenRef};

/// A token whose content hash does not match its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptToken {
    /// 1-based line (or position) of the token.
    pub line: u64,
    /// Its id.
    pub token_id: String,
}

/// A token whose `parent_id` names no token seen before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// 1-based line (or position) of the child.
    pub line: u64,
    /// The child's id.
    pub token_id: String,
    /// The parent id that was not found earlier.
    pub parent_id: String,
}

/// The outcome of verifying a store or file. Lists keep their first
/// [`MAX_BAD_LINES_KEPT`] entries; the counts are exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Tokens whose hash verified.
    pub valid: u64,
    /// Tokens whose hash did not verify.
    pub invalid: u64,
    /// The first corrupt tokens.
    pub corrupt: Vec<CorruptToken>,
    /// Unparseable lines (count and first entries).
    pub bad_line_count: u64,
    /// The first unparseable lines, with line numbers.
    pub bad_lines: Vec<BadLine>,
    /// Chain breaks in total.
    pub chain_break_count: u64,
    /// The first chain breaks.
    pub chain_breaks: Vec<ChainBreak>,
}

impl VerifyReport {
    /// Every token verified, every line parsed and every link resolved.
    pub fn is_intact(&self) -> bool {
        self.invalid == 0 && self.bad_line_count == 0 && self.chain_break_count == 0
    }

    /// Whether the hashes are all valid and every line parsed (what the
    /// reference's `verify_file()["integrity"]` means), ignoring links.
    pub fn hashes_ok(&self) -> bool {
        self.invalid == 0 && self.bad_line_count == 0
    }
}

/// Feeds tokens in order and builds a [`VerifyReport`]. Memory: 8 bytes per
/// token id seen (a hash of it, to resolve parent links).
#[derive(Debug)]
pub struct Verifier {
    key: Option<HmacKey>,
    report: VerifyReport,
    seen: HashSet<u64>,
    hasher: RandomState,
}

impl Verifier {
    /// A verifier checking hashes with `key` (plain SHA-256 when `None`).
    pub fn new(key: Option<HmacKey>) -> Self {
        Verifier {
            key,
            report: VerifyReport::default(),
            seen: HashSet::new(),
            hasher: RandomState::new(),
        }
    }

    /// Checks the next token, found at `line`.
    pub fn token(&mut self, line: u64, token: &Token) {
        let ok = token.verify(self.key.as_ref());
        self.record(line, token, ok);
    }

    /// Records a token whose hash was already checked (`ok`), e.g. on
    /// another thread; links are still resolved here, in order.
    pub fn record(&mut self, line: u64, token: &Token, ok: bool) {
        self.record_parts(line, &token.token_id, token.parent_id.as_deref(), ok);
    }

    fn record_parts(&mut self, line: u64, token_id: &str, parent_id: Option<&str>, ok: bool) {
        let id_hash = self.hasher.hash_one(token_id);
        let parent_hash = parent_id.map(|p| self.hasher.hash_one(p));
        self.record_hashed(line, id_hash, parent_hash, ok, || {
            (token_id.to_owned(), parent_id.map(str::to_owned))
        });
    }

    /// Records a token by the hashes of its id and parent id; `names`
    /// gives the strings, called only when something must be reported.
    fn record_hashed(
        &mut self,
        line: u64,
        id_hash: u64,
        parent_hash: Option<u64>,
        ok: bool,
        names: impl FnOnce() -> (String, Option<String>),
    ) {
        let r = &mut self.report;
        let broken = parent_hash.is_some_and(|p| !self.seen.contains(&p));
        let report_corrupt = !ok && r.corrupt.len() < MAX_BAD_LINES_KEPT;
        let report_break = broken && r.chain_breaks.len() < MAX_BAD_LINES_KEPT;
        if ok {
            r.valid += 1;
        } else {
            r.invalid += 1;
        }
        if broken {
            r.chain_break_count += 1;
        }
        if report_corrupt || report_break {
            let (token_id, parent_id) = names();
            if report_corrupt {
                r.corrupt.push(CorruptToken {
                    line,
                    token_id: token_id.clone(),
                });
            }
            if report_break {
                r.chain_breaks.push(ChainBreak {
                    line,
                    token_id,
                    parent_id: parent_id.unwrap_or_default(),
                });
            }
        }
        self.seen.insert(id_hash);
    }

    /// Records an unparseable line.
    pub fn bad_line(&mut self, line: u64, reason: String) {
        self.report.bad_line_count += 1;
        if self.report.bad_lines.len() < MAX_BAD_LINES_KEPT {
            self.report.bad_lines.push(BadLine { line, reason });
        }
    }

    /// The report so far.
    pub fn finish(self) -> VerifyReport {
        self.report
    }
}

/// Bytes of whole lines handed to a worker at a time.
const BATCH_BYTES: usize = 1 << 20;

struct Batch {
    seq: u64,
    first_line: u64,
    data: Vec<u8>,
}

enum Outcome {
    Token {
        line: u64,
        /// Where the line sits in the batch, to re-read names on failure.
        start: usize,
        end: usize,
        id_hash: u64,
        parent_hash: Option<u64>,
        ok: bool,
    },
    Bad {
        line: u64,
        reason: String,
    },
}

/// Verifies the token file at `path` (see [`FileStore::verify_file`](crate::FileStore::verify_file)).
pub fn verify_path(path: &Path, key: Option<&HmacKey>) -> Result<VerifyReport, ReadError> {
    let mut verifier = Verifier::new(key.cloned());
    verify_into(path, &mut verifier)?;
    Ok(verifier.finish())
}

/// Feeds the token file at `path` into `verifier` (call it once per file
/// to verify several files as one log, e.g. an archive then the active
/// file). Streams: one thread reads batches of whole lines, one worker per
/// core parses and hashes them, and the results are taken in file order,
/// so memory stays bounded (a few MiB of batches in flight, plus 8 bytes
/// per token id for the link check). Only bytes written before the call are
/// read (see [`FileStore::scan_lines`](crate::FileStore::scan_lines)).
pub fn verify_into(path: &Path, verifier: &mut Verifier) -> Result<(), ReadError> {
    let rerr = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(rerr)?;
    let len = settled_len(&file).map_err(rerr)?;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let key = verifier.key.clone();
    let key = key.as_ref();
    let hasher = &verifier.hasher.clone();
    let (batch_tx, batch_rx) = sync_channel::<Batch>(workers * 2);
    let batch_rx = Mutex::new(batch_rx);
    std::thread::scope(|s| {
        let (result_tx, result_rx) = sync_channel::<(Batch, Vec<Outcome>)>(workers * 2);
        let reader = s.spawn(move || -> std::io::Result<()> {
            let mut r = BufReader::with_capacity(READ_BUF, file.take(len));
            let (mut seq, mut line_no) = (0u64, 0u64);
            loop {
                let mut data = Vec::with_capacity(BATCH_BYTES + 4096);
                let first_line = line_no + 1;
                while data.len() < BATCH_BYTES && r.read_until(b'\n', &mut data)? > 0 {
                    line_no += 1;
                }
                if data.is_empty()
                    || batch_tx
                        .send(Batch {
                            seq,
                            first_line,
                            data,
                        })
                        .is_err()
                {
                    return Ok(());
                }
                seq += 1;
            }
        });
        for _ in 0..workers {
            let result_tx = result_tx.clone();
            let batch_rx = &batch_rx;
            s.spawn(move || {
                loop {
                    let next = batch_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok(batch)) = next else { return };
                    let outcomes = check_batch(&batch, key, hasher);
                    if result_tx.send((batch, outcomes)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(result_tx);
        // Reorder batches so links and line numbers are seen in file order.
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for (batch, outcomes) in result_rx {
            pending.insert(batch.seq, (batch, outcomes));
            while let Some((batch, outcomes)) = pending.remove(&next) {
                for o in outcomes {
                    match o {
                        Outcome::Token {
                            line,
                            start,
                            end,
                            id_hash,
                            parent_hash,
                            ok,
                        } => verifier.record_hashed(line, id_hash, parent_hash, ok, || {
                            match Token::from_json_line(&batch.data[start..end]) {
                                Ok(t) => (t.token_id, t.parent_id),
                                Err(_) => (String::new(), None),
                            }
                        }),
                        Outcome::Bad { line, reason } => verifier.bad_line(line, reason),
                    }
                }
                next += 1;
            }
        }
        reader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
            .map_err(rerr)
    })
}

fn check_batch(batch: &Batch, key: Option<&HmacKey>, hasher: &RandomState) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(batch.data.len() / 300);
    let mut end = 0;
    let lines = batch.data.split_inclusive(|b| *b == b'\n');
    for (line, raw) in (batch.first_line..).zip(lines) {
        let start = end;
        end += raw.len();
        if !raw.iter().all(u8::is_ascii_whitespace) {
            out.push(match TokenRef::parse(raw) {
                Ok(t) => Outcome::Token {
                    line,
                    start,
                    end,
                    id_hash: hasher.hash_one(t.token_id.as_ref()),
                    parent_hash: t.parent_id.as_deref().map(|p| hasher.hash_one(p)),
                    ok: t.verify(key),
                },
                Err(e) => Outcome::Bad {
                    line,
                    reason: if raw.ends_with(b"\n") {
                        e.to_string()
                    } else {
                        format!("torn last line: {e}")
                    },
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::token;

    #[test]
    fn reports_corrupt_tokens_breaks_and_bad_lines() {
        let mut v = Verifier::new(None);
        let a = token("a", "x", "x", "t", None);
        let mut b = token("b", "x", "x", "t", Some("a"));
        b.erachter = "tampered".into();
        let c = token("c", "x", "x", "t", Some("missing"));
        v.token(1, &a);
        v.token(2, &b);
        v.bad_line(3, "torn".into());
        v.token(4, &c);
        let r = v.finish();
        assert_eq!(
            (r.valid, r.invalid, r.bad_line_count, r.chain_break_count),
            (2, 1, 1, 1)
        );
        assert_eq!(
            r.corrupt,
            vec![CorruptToken {
                line: 2,
                token_id: "b".into()
            }]
        );
        assert_eq!(r.chain_breaks[0].parent_id, "missing");
        assert_eq!(r.bad_lines[0].line, 3);
        assert!(!r.is_intact());
    }

    #[test]
    fn intact_sequence() {
        let mut v = Verifier::new(None);
        v.token(1, &token("a", "x", "x", "t", None));
        v.token(2, &token("b", "x", "x", "t", Some("a")));
        assert!(v.finish().is_intact());
    }
}
