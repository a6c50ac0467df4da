//! An auto-vouch rule's `source_pattern`: a regex matched at the start of
//! the DID only, as Python's `re.match`.
//!
//! With `std` the `regex` crate compiles it; without, `regex-automata`'s
//! meta engine, the engine under `regex`, with the same syntax, the same
//! Unicode classes and the same size limit. Both refuse a pattern rather
//! than build an oversized automaton from it.

use core::fmt;

/// Size limit for a compiled pattern's automaton.
const SIZE_LIMIT: usize = 1 << 20;

/// Why a `source_pattern` did not compile.
#[cfg(feature = "std")]
pub type PatternError = regex::Error;

/// Why a `source_pattern` did not compile: the compiler's message.
#[cfg(not(feature = "std"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(alloc::string::String);

#[cfg(not(feature = "std"))]
impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(not(feature = "std"))]
impl core::error::Error for PatternError {}

/// A compiled `source_pattern`, anchored at the start.
#[derive(Clone)]
pub(crate) struct SourcePattern {
    #[cfg(feature = "std")]
    regex: regex::Regex,
    #[cfg(not(feature = "std"))]
    regex: regex_automata::meta::Regex,
}

impl fmt::Debug for SourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SourcePattern").finish_non_exhaustive()
    }
}

impl SourcePattern {
    /// Compiles `pattern`: first alone (so an error names the pattern as
    /// given, not the anchored form), then anchored at the start.
    pub(crate) fn new(pattern: &str) -> Result<Self, PatternError> {
        compile(pattern)?;
        Ok(SourcePattern {
            regex: compile(&alloc::format!(r"\A(?:{pattern})"))?,
        })
    }

    /// Whether `did` matches from its first character.
    pub(crate) fn is_match(&self, did: &str) -> bool {
        self.regex.is_match(did)
    }
}

#[cfg(feature = "std")]
fn compile(pattern: &str) -> Result<regex::Regex, PatternError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .build()
}

#[cfg(not(feature = "std"))]
fn compile(pattern: &str) -> Result<regex_automata::meta::Regex, PatternError> {
    use alloc::string::ToString;
    use regex_automata::meta::{Config, Regex};
    Regex::builder()
        .configure(Config::new().nfa_size_limit(Some(SIZE_LIMIT)))
        .build(pattern)
        .map_err(|e| PatternError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_at_the_start_only() {
        let p = SourcePattern::new("jis:home:").unwrap();
        assert!(p.is_match("jis:home:sensor"));
        assert!(!p.is_match("evil:jis:home:sensor"));
        let alt = SourcePattern::new("a|jis").unwrap();
        assert!(alt.is_match("jis:x") && alt.is_match("abc"));
        assert!(!alt.is_match("xjis"));
    }

    #[test]
    fn bad_and_oversized_patterns_are_errors() {
        assert!(SourcePattern::new("(").is_err());
        assert!(SourcePattern::new(r"\w{1000}{1000}").is_err());
    }
}
