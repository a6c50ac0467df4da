//! [`Chain`]: walks `parent_id` links through a store to reconstruct and
//! check audit trails.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;

use crate::store::{ReadError, Store};
use crate::token::{HmacKey, Token};

/// Default depth limit of [`Chain::trace`] (as in the reference).
pub const DEFAULT_TRACE_DEPTH: usize = 100;

/// What a chain looks like, from [`Chain::summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    /// Tokens in the chain.
    pub length: usize,
    /// Whether every token in it verifies (false for an empty chain).
    pub valid: bool,
    /// Distinct actors, sorted.
    pub actors: Vec<String>,
    /// Actions, newest first.
    pub actions: Vec<String>,
    /// Timestamp of the oldest token.
    pub start: Option<String>,
    /// Timestamp of the newest token.
    pub end: Option<String>,
    /// Id of the oldest token.
    pub root_id: Option<String>,
}

/// A node of [`Chain::tree`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TreeNode {
    /// A token and the tokens whose parent it is.
    Token {
        /// The token.
        token: Box<Token>,
        /// Whether its hash verifies.
        valid: bool,
        /// Its children, in store order.
        children: Vec<TreeNode>,
    },
    /// An id with no token in the store.
    Missing {
        /// The id.
        id: String,
    },
    /// Deeper than the depth limit.
    Truncated {
        /// The id.
        id: String,
    },
    /// Already shown higher up (a cycle in the links).
    Repeated {
        /// The id.
        id: String,
    },
}

/// Walks provenance chains in a store, verifying with an optional key.
pub struct Chain<'a> {
    store: &'a dyn Store,
    key: Option<HmacKey>,
}

impl std::fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("hmac", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> Chain<'a> {
    /// A chain walker over `store`, verifying plain SHA-256 hashes.
    pub fn new(store: &'a dyn Store) -> Self {
        Chain { store, key: None }
    }

    /// Verifies with this HMAC key instead.
    pub fn with_key(mut self, key: HmacKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The chain from `token_id` back to its root, newest first, at most
    /// `max_depth` tokens; stops at a missing parent or a cycle.
    pub fn trace(&self, token_id: &str, max_depth: usize) -> Result<Vec<Token>, ReadError> {
        self.store.trace(token_id, max_depth)
    }

    /// Whether every token of the chain (default depth) verifies. An
    /// unknown id gives `true` for an empty chain, as in the reference.
    pub fn verify(&self, token_id: &str) -> Result<bool, ReadError> {
        Ok(self
            .trace(token_id, DEFAULT_TRACE_DEPTH)?
            .iter()
            .all(|t| t.verify(self.key.as_ref())))
    }

    /// Length, validity, actors, actions and time span of the chain.
    pub fn summary(&self, token_id: &str) -> Result<ChainSummary, ReadError> {
        let chain = self.trace(token_id, DEFAULT_TRACE_DEPTH)?;
        let actors: BTreeSet<String> = chain.iter().map(|t| t.actor.clone()).collect();
        Ok(ChainSummary {
            length: chain.len(),
            valid: !chain.is_empty() && chain.iter().all(|t| t.verify(self.key.as_ref())),
            actors: actors.into_iter().collect(),
            actions: chain.iter().map(|t| t.action.clone()).collect(),
            start: chain.last().map(|t| t.timestamp.clone()),
            end: chain.first().map(|t| t.timestamp.clone()),
            root_id: chain.last().map(|t| t.token_id.clone()),
        })
    }

    /// The oldest token reachable from `token_id`.
    pub fn find_root(&self, token_id: &str) -> Result<Option<Token>, ReadError> {
        Ok(self.trace(token_id, DEFAULT_TRACE_DEPTH)?.pop())
    }

    /// Every token whose parent is `token_id`, in store order.
    pub fn find_children(&self, token_id: &str) -> Result<Vec<Token>, ReadError> {
        let mut out = Vec::new();
        self.store.scan(&mut |t| {
            if t.parent_id.as_deref() == Some(token_id) {
                out.push(t);
            }
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// The tree below `root_id`, `max_depth` levels deep. One pass over the
    /// store; holds the tokens that have a parent in memory.
    pub fn tree(&self, root_id: &str, max_depth: usize) -> Result<TreeNode, ReadError> {
        let mut tokens: HashMap<String, Token> = HashMap::new();
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        self.store.scan(&mut |t| {
            if let Some(p) = &t.parent_id {
                children
                    .entry(p.clone())
                    .or_default()
                    .push(t.token_id.clone());
            }
            tokens.entry(t.token_id.clone()).or_insert(t);
            ControlFlow::Continue(())
        })?;
        let mut shown = HashSet::new();
        Ok(self.node(root_id, 0, max_depth, &tokens, &children, &mut shown))
    }

    fn node(
        &self,
        id: &str,
        depth: usize,
        max_depth: usize,
        tokens: &HashMap<String, Token>,
        children: &HashMap<String, Vec<String>>,
        shown: &mut HashSet<String>,
    ) -> TreeNode {
        if depth > max_depth {
            return TreeNode::Truncated { id: id.to_owned() };
        }
        let Some(token) = tokens.get(id) else {
            return TreeNode::Missing { id: id.to_owned() };
        };
        if !shown.insert(id.to_owned()) {
            return TreeNode::Repeated { id: id.to_owned() };
        }
        let kids = children
            .get(id)
            .map(|ids| {
                ids.iter()
                    .map(|c| self.node(c, depth + 1, max_depth, tokens, children, shown))
                    .collect()
            })
            .unwrap_or_default();
        TreeNode::Token {
            valid: token.verify(self.key.as_ref()),
            token: Box::new(token.clone()),
            children: kids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::store::tests::token;

    fn store() -> MemoryStore {
        let mut s = MemoryStore::new();
        for t in [
            token("root", "boot", "a", "2026-11-26T10:00:00+00:00", None),
            token("k1", "x", "b", "2026-11-26T10:00:01+00:00", Some("root")),
            token("k2", "y", "a", "2026-11-26T10:00:02+00:00", Some("root")),
            token("g1", "z", "c", "2026-11-26T10:00:03+00:00", Some("k1")),
        ] {
            s.append(&t).unwrap();
        }
        s
    }

    #[test]
    fn trace_summary_root_children() {
        let s = store();
        let c = Chain::new(&s);
        let ids: Vec<_> = c
            .trace("g1", 100)
            .unwrap()
            .into_iter()
            .map(|t| t.token_id)
            .collect();
        assert_eq!(ids, ["g1", "k1", "root"]);
        let sum = c.summary("g1").unwrap();
        assert_eq!(sum.length, 3);
        assert!(sum.valid);
        assert_eq!(sum.actors, ["a", "b", "c"]);
        assert_eq!(sum.actions, ["z", "x", "boot"]);
        assert_eq!(sum.root_id.as_deref(), Some("root"));
        assert_eq!(sum.start.as_deref(), Some("2026-11-26T10:00:00+00:00"));
        assert!(!c.summary("unknown").unwrap().valid);
        assert_eq!(c.find_root("g1").unwrap().unwrap().token_id, "root");
        let kids: Vec<_> = c
            .find_children("root")
            .unwrap()
            .into_iter()
            .map(|t| t.token_id)
            .collect();
        assert_eq!(kids, ["k1", "k2"]);
        assert!(c.verify("g1").unwrap());
    }

    #[test]
    fn verify_fails_on_a_tampered_link() {
        let mut s = MemoryStore::new();
        s.append(&token("a", "x", "x", "t", None)).unwrap();
        let mut b = token("b", "x", "x", "t", Some("a"));
        b.erin = serde_json::json!("changed");
        s.append(&b).unwrap();
        assert!(!Chain::new(&s).verify("b").unwrap());
        assert!(Chain::new(&s).verify("a").unwrap());
    }

    #[test]
    fn tree_with_depth_limit_and_cycles() {
        let s = store();
        let c = Chain::new(&s);
        let TreeNode::Token {
            children, valid, ..
        } = c.tree("root", 10).unwrap()
        else {
            panic!("root missing")
        };
        assert!(valid);
        assert_eq!(children.len(), 2);
        let TreeNode::Token {
            children: grand, ..
        } = &children[0]
        else {
            panic!()
        };
        assert!(matches!(&grand[0], TreeNode::Token { token, .. } if token.token_id == "g1"));
        let TreeNode::Token { children, .. } = c.tree("root", 0).unwrap() else {
            panic!()
        };
        assert!(matches!(&children[0], TreeNode::Truncated { id } if id == "k1"));
        assert!(matches!(
            c.tree("nope", 3).unwrap(),
            TreeNode::Missing { .. }
        ));

        let mut cyc = MemoryStore::new();
        cyc.append(&token("a", "x", "x", "t", Some("b"))).unwrap();
        cyc.append(&token("b", "x", "x", "t", Some("a"))).unwrap();
        let TreeNode::Token { children, .. } = Chain::new(&cyc).tree("a", 50).unwrap() else {
            panic!()
        };
        let TreeNode::Token { children, .. } = &children[0] else {
            panic!()
        };
        assert!(matches!(&children[0], TreeNode::Repeated { id } if id == "a"));
        assert_eq!(Chain::new(&cyc).trace("a", 50).unwrap().len(), 2);
    }
}
