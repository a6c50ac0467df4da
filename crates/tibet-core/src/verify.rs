//! Integrity checks over a sequence of tokens: hashes, unparseable lines and
//! chain links, summarised in a [`VerifyReport`].

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use crate::store::{BadLine, MAX_BAD_LINES_KEPT};
use crate::token::{HmacKey, Token};

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
        let r = &mut self.report;
        if ok {
            r.valid += 1;
        } else {
            r.invalid += 1;
            if r.corrupt.len() < MAX_BAD_LINES_KEPT {
                r.corrupt.push(CorruptToken {
                    line,
                    token_id: token.token_id.clone(),
                });
            }
        }
        if let Some(parent) = &token.parent_id
            && !self.seen.contains(&self.hasher.hash_one(parent))
        {
            r.chain_break_count += 1;
            if r.chain_breaks.len() < MAX_BAD_LINES_KEPT {
                r.chain_breaks.push(ChainBreak {
                    line,
                    token_id: token.token_id.clone(),
                    parent_id: parent.clone(),
                });
            }
        }
        self.seen.insert(self.hasher.hash_one(&token.token_id));
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
