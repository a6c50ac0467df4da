//! The [`Store`] trait, token queries, and the in-memory [`MemoryStore`].

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::path::PathBuf;

use crate::token::Token;

/// Why appending a token failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The file could not be locked, written or synced.
    #[error("cannot append to {path}: {source}")]
    Io {
        /// The store's file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Lines handed to [`Store::append_lines`] that are not tokens.
    #[error("not a token line: {0}")]
    NotATokenLine(#[from] crate::token::ParseTokenError),
}

/// Why reading tokens from a store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The store's file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// A line of a token file that is not a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: u64,
    /// Why it does not parse (including a torn, unterminated last line).
    pub reason: String,
}

/// At most this many [`BadLine`]s are kept in a report; the rest are counted.
pub const MAX_BAD_LINES_KEPT: usize = 1000;

/// What a full pass over a store saw besides its tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Tokens delivered.
    pub tokens: u64,
    /// The first [`MAX_BAD_LINES_KEPT`] unparseable lines.
    pub bad_lines: Vec<BadLine>,
    /// Unparseable lines in total (kept or not).
    pub bad_line_count: u64,
}

impl ScanReport {
    pub(crate) fn bad(&mut self, line: u64, reason: String) {
        self.bad_line_count += 1;
        if self.bad_lines.len() < MAX_BAD_LINES_KEPT {
            self.bad_lines.push(BadLine { line, reason });
        }
    }
}

/// Token filters, as in the reference's `find(action, actor, since, limit)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Only this action.
    pub action: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only tokens at or after this time (compared as instants when both
    /// parse, as strings otherwise, like the reference).
    pub since: Option<String>,
    /// Return the last `limit` matches (default 100).
    pub limit: usize,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            action: None,
            actor: None,
            since: None,
            limit: 100,
        }
    }
}

impl Query {
    /// Whether `t` passes every filter.
    pub fn matches(&self, t: &Token) -> bool {
        if self.action.as_deref().is_some_and(|a| a != t.action) {
            return false;
        }
        if self.actor.as_deref().is_some_and(|a| a != t.actor) {
            return false;
        }
        if let Some(since) = &self.since {
            let later = match (t.time(), tibet_ping::Timestamp::parse(since)) {
                (Some(a), Some(b)) => a >= b,
                _ => t.timestamp.as_str() >= since.as_str(),
            };
            if !later {
                return false;
            }
        }
        true
    }
}

/// Where tokens live. Appends go to the end; reads see tokens in append
/// order. Implementations may stream (see [`FileStore`](crate::FileStore)).
pub trait Store: Send {
    /// Appends one token.
    fn append(&mut self, token: &Token) -> Result<(), AppendError>;

    /// Appends several tokens in order, all or none where the store can
    /// (a [`FileStore`](crate::FileStore) writes them with one `write`);
    /// by default one [`Store::append`] each, stopping at the first error.
    fn append_batch(&mut self, tokens: &[Token]) -> Result<(), AppendError> {
        tokens.iter().try_for_each(|t| self.append(t))
    }

    /// Appends tokens already written as file lines: `text` holds each
    /// one's [`Token::write_json_line`] and a newline, `last_id` is the
    /// last one's id. All or none where the store can: a
    /// [`FileStore`](crate::FileStore) writes `text` as it is with one
    /// `write`; by default the lines are parsed (none is stored if one
    /// does not parse) and stored with [`Store::append_batch`].
    fn append_lines(&mut self, text: &[u8], last_id: &str) -> Result<(), AppendError> {
        let _ = last_id;
        let tokens = text
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(Token::from_json_line)
            .collect::<Result<Vec<_>, _>>()?;
        self.append_batch(&tokens)
    }

    /// Calls `f` with every token in order until it returns `Break`.
    fn scan(&self, f: &mut dyn FnMut(Token) -> ControlFlow<()>) -> Result<ScanReport, ReadError>;

    /// The id of the last token, used to continue a chain.
    fn last_id(&self) -> Option<String>;

    /// Makes every appended token durable now (a no-op for memory).
    fn flush(&mut self) -> Result<(), AppendError> {
        Ok(())
    }

    /// The token with this id (the first one, should ids repeat).
    fn get(&self, token_id: &str) -> Result<Option<Token>, ReadError> {
        let mut found = None;
        self.scan(&mut |t| {
            if t.token_id == token_id {
                found = Some(t);
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(found)
    }

    /// The last `query.limit` tokens that match, oldest first.
    fn find(&self, query: &Query) -> Result<Vec<Token>, ReadError> {
        let mut window = VecDeque::with_capacity(query.limit.min(4096));
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        self.scan(&mut |t| {
            if query.matches(&t) {
                if window.len() == query.limit {
                    window.pop_front();
                }
                window.push_back(t);
            }
            ControlFlow::Continue(())
        })?;
        Ok(window.into())
    }

    /// The tokens from `token_id` back along `parent_id`, newest first, at
    /// most `max_depth`, stopping at a missing parent or a cycle.
    fn trace(&self, token_id: &str, max_depth: usize) -> Result<Vec<Token>, ReadError> {
        let mut chain: Vec<Token> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut current = Some(token_id.to_owned());
        while let Some(id) = current.take() {
            if chain.len() >= max_depth || !seen.insert(id.clone()) {
                break;
            }
            let Some(t) = self.get(&id)? else { break };
            current = t.parent_id.clone();
            chain.push(t);
        }
        Ok(chain)
    }

    /// Every token, in order.
    fn all(&self) -> Result<Vec<Token>, ReadError> {
        let mut out = Vec::new();
        self.scan(&mut |t| {
            out.push(t);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }
}

/// Tokens in memory, indexed by id. Lost on exit; for tests and short runs.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    tokens: Vec<Token>,
    index: HashMap<String, usize>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether it holds no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }
}

impl Store for MemoryStore {
    fn append(&mut self, token: &Token) -> Result<(), AppendError> {
        self.index
            .entry(token.token_id.clone())
            .or_insert(self.tokens.len());
        self.tokens.push(token.clone());
        Ok(())
    }

    fn scan(&self, f: &mut dyn FnMut(Token) -> ControlFlow<()>) -> Result<ScanReport, ReadError> {
        let mut report = ScanReport::default();
        for t in &self.tokens {
            report.tokens += 1;
            if f(t.clone()).is_break() {
                break;
            }
        }
        Ok(report)
    }

    fn last_id(&self) -> Option<String> {
        self.tokens.last().map(|t| t.token_id.clone())
    }

    fn get(&self, token_id: &str) -> Result<Option<Token>, ReadError> {
        Ok(self.index.get(token_id).map(|&i| self.tokens[i].clone()))
    }

    fn find(&self, query: &Query) -> Result<Vec<Token>, ReadError> {
        let mut out: Vec<Token> = self
            .tokens
            .iter()
            .rev()
            .filter(|t| query.matches(t))
            .take(query.limit)
            .cloned()
            .collect();
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::TokenState;

    pub(crate) fn token(
        id: &str,
        action: &str,
        actor: &str,
        ts: &str,
        parent: Option<&str>,
    ) -> Token {
        let mut t = Token {
            token_id: id.into(),
            action: action.into(),
            timestamp: ts.into(),
            actor: actor.into(),
            erin: serde_json::Value::Null,
            eraan: vec![],
            eromheen: Default::default(),
            erachter: String::new(),
            parent_id: parent.map(Into::into),
            state: TokenState::Created,
            content_hash: String::new(),
            signature: String::new(),
        };
        t.seal(None);
        t
    }

    fn filled() -> MemoryStore {
        let mut s = MemoryStore::new();
        s.append(&token(
            "a",
            "heartbeat",
            "x",
            "2026-11-26T10:00:00+00:00",
            None,
        ))
        .unwrap();
        s.append(&token(
            "b",
            "discovery",
            "y",
            "2026-11-26T11:00:00+00:00",
            Some("a"),
        ))
        .unwrap();
        s.append(&token(
            "c",
            "heartbeat",
            "x",
            "2026-11-26T12:00:00+00:00",
            Some("b"),
        ))
        .unwrap();
        s.append(&token(
            "d",
            "heartbeat",
            "y",
            "2026-11-26T12:30:00+01:00",
            Some("c"),
        ))
        .unwrap();
        s
    }

    #[test]
    fn find_returns_last_matches_in_order() {
        let s = filled();
        let ids = |v: Vec<Token>| v.into_iter().map(|t| t.token_id).collect::<Vec<_>>();
        let q = Query {
            action: Some("heartbeat".into()),
            limit: 2,
            ..Query::default()
        };
        assert_eq!(ids(s.find(&q).unwrap()), ["c", "d"]);
        let q = Query {
            actor: Some("x".into()),
            ..Query::default()
        };
        assert_eq!(ids(s.find(&q).unwrap()), ["a", "c"]);
        // d is 11:30 UTC: before 12:00 as an instant, though later as text.
        let q = Query {
            since: Some("2026-11-26T12:00:00Z".into()),
            ..Query::default()
        };
        assert_eq!(ids(s.find(&q).unwrap()), ["c"]);
        // The trait's streaming default agrees with the indexed override.
        struct Streaming(MemoryStore);
        impl Store for Streaming {
            fn append(&mut self, t: &Token) -> Result<(), AppendError> {
                self.0.append(t)
            }
            fn scan(
                &self,
                f: &mut dyn FnMut(Token) -> ControlFlow<()>,
            ) -> Result<ScanReport, ReadError> {
                self.0.scan(f)
            }
            fn last_id(&self) -> Option<String> {
                self.0.last_id()
            }
        }
        let st = Streaming(filled());
        let q = Query {
            action: Some("heartbeat".into()),
            limit: 2,
            ..Query::default()
        };
        assert_eq!(ids(st.find(&q).unwrap()), ["c", "d"]);
        assert_eq!(st.get("b").unwrap().unwrap().action, "discovery");
        assert_eq!(ids(st.trace("d", 100).unwrap()), ["d", "c", "b", "a"]);
        assert_eq!(ids(st.trace("d", 2).unwrap()), ["d", "c"]);
    }

    #[test]
    fn trace_stops_at_cycles_and_missing_parents() {
        let mut s = MemoryStore::new();
        s.append(&token("a", "x", "x", "t", Some("b"))).unwrap();
        s.append(&token("b", "x", "x", "t", Some("a"))).unwrap();
        s.append(&token("c", "x", "x", "t", Some("gone"))).unwrap();
        assert_eq!(s.trace("b", 100).unwrap().len(), 2);
        assert_eq!(s.trace("c", 100).unwrap().len(), 1);
        assert!(s.trace("nope", 100).unwrap().is_empty());
        assert_eq!(s.last_id().as_deref(), Some("c"));
    }
}
