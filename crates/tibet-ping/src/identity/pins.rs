//! Pinned identities: DID -> public key, bounded, written as text
//! (docs/PROTOCOL.md section 6).
//!
//! Trust on first use is [`PinStore::pin_first_use`]: the first key seen for
//! a DID pins it, the same key again is fine, another key is refused and
//! counted. There is no silent re-pin; only [`PinStore::set`] (an operator's
//! explicit `--pin` or approval) replaces a key.
//!
//! The text is one pin per line: `DID PUBLIC_KEY`, blank lines and lines
//! starting with `#` ignored ([`PinStore::parse`], [`PinStore::to_text`]);
//! [`super::store`] keeps it in a file.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::string::String;

use super::keys::{PublicKey, PublicKeyError};

/// Default number of pins a store holds.
pub const DEFAULT_PIN_CAPACITY: usize = 4096;
/// Longest DID accepted in a pin.
pub const MAX_PIN_DID_LEN: usize = 256;
/// What [`PinStore::pin_first_use`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinDecision {
    /// The DID was unknown and is now pinned to the key.
    Pinned,
    /// The DID is already pinned to this key.
    Same,
    /// The DID is pinned to another key: refused (counted), never re-pinned.
    Conflict,
    /// The store is full: refused (counted).
    Full,
    /// The DID is not acceptable (empty, too long, whitespace or control characters).
    BadDid,
}

/// Counters of a [`PinStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PinStats {
    /// First-use pins made.
    pub pinned: u64,
    /// Keys refused because the DID is pinned to another key.
    pub refused_conflict: u64,
    /// Pins refused because the store was full.
    pub refused_full: u64,
}

/// A pin file line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinLineError {
    /// Not `DID PUBLIC_KEY`.
    #[error("expected `DID PUBLIC_KEY`")]
    Shape,
    /// The DID is empty, too long or has control characters.
    #[error("invalid DID")]
    Did,
    /// The key text is bad.
    #[error("DID {did}: {source}")]
    Key {
        /// The DID of the line.
        did: String,
        /// Why the key is bad.
        #[source]
        source: PublicKeyError,
    },
    /// The same DID appears twice with different keys.
    #[error("DID {did} is pinned twice with different keys")]
    Duplicate {
        /// The DID.
        did: String,
    },
    /// More pins than the store holds.
    #[error("more than {capacity} pins")]
    Full {
        /// The store's capacity.
        capacity: usize,
    },
}

/// DID -> public key, bounded; see the module docs.
#[derive(Debug, Clone)]
pub struct PinStore {
    pins: BTreeMap<String, PublicKey>,
    capacity: usize,
    stats: PinStats,
}

impl Default for PinStore {
    fn default() -> Self {
        PinStore::new(DEFAULT_PIN_CAPACITY)
    }
}

/// Whether `did` may be pinned and written to a pin file line.
pub fn valid_pin_did(did: &str) -> bool {
    !did.is_empty()
        && did.len() <= MAX_PIN_DID_LEN
        && !did.chars().any(|c| c.is_whitespace() || c.is_control())
        && !did.starts_with('#')
}

impl PinStore {
    /// An empty store holding at most `capacity` pins.
    pub fn new(capacity: usize) -> Self {
        PinStore {
            pins: BTreeMap::new(),
            capacity,
            stats: PinStats::default(),
        }
    }

    /// The key `did` is pinned to.
    pub fn get(&self, did: &str) -> Option<&PublicKey> {
        self.pins.get(did)
    }

    /// Number of pins.
    pub fn len(&self) -> usize {
        self.pins.len()
    }

    /// Whether there are no pins.
    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The counters.
    pub fn stats(&self) -> PinStats {
        self.stats
    }

    /// Every pin, by DID.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PublicKey)> {
        self.pins.iter().map(|(d, k)| (d.as_str(), k))
    }

    /// Trust on first use: pins an unknown DID, accepts the same key, refuses
    /// (and counts) another key or a full store.
    pub fn pin_first_use(&mut self, did: &str, key: PublicKey) -> PinDecision {
        if !valid_pin_did(did) {
            return PinDecision::BadDid;
        }
        match self.pins.get(did) {
            Some(k) if *k == key => PinDecision::Same,
            Some(_) => {
                self.stats.refused_conflict += 1;
                PinDecision::Conflict
            }
            None if self.pins.len() >= self.capacity => {
                self.stats.refused_full += 1;
                PinDecision::Full
            }
            None => {
                self.pins.insert(did.to_owned(), key);
                self.stats.pinned += 1;
                PinDecision::Pinned
            }
        }
    }

    /// An operator's explicit pin: sets or replaces the key. Returns the
    /// previous key, or `Err` with [`PinDecision::Full`] or
    /// [`PinDecision::BadDid`].
    pub fn set(&mut self, did: &str, key: PublicKey) -> Result<Option<PublicKey>, PinDecision> {
        if !valid_pin_did(did) {
            return Err(PinDecision::BadDid);
        }
        if !self.pins.contains_key(did) && self.pins.len() >= self.capacity {
            self.stats.refused_full += 1;
            return Err(PinDecision::Full);
        }
        Ok(self.pins.insert(did.to_owned(), key))
    }

    /// Removes a pin; returns its key.
    pub fn remove(&mut self, did: &str) -> Option<PublicKey> {
        self.pins.remove(did)
    }

    /// Parses pin file text; the error carries the 1-based line number.
    pub fn parse(text: &str, capacity: usize) -> Result<Self, (usize, PinLineError)> {
        let mut store = PinStore::new(capacity);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |e| (i + 1, e);
            let mut parts = line.split_whitespace();
            let (Some(did), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(fail(PinLineError::Shape));
            };
            if !valid_pin_did(did) {
                return Err(fail(PinLineError::Did));
            }
            let key = PublicKey::parse(key).map_err(|source| {
                fail(PinLineError::Key {
                    did: did.to_owned(),
                    source,
                })
            })?;
            match store.pins.get(did) {
                Some(k) if *k != key => {
                    return Err(fail(PinLineError::Duplicate {
                        did: did.to_owned(),
                    }));
                }
                Some(_) => {}
                None if store.pins.len() >= capacity => {
                    return Err(fail(PinLineError::Full { capacity }));
                }
                None => {
                    store.pins.insert(did.to_owned(), key);
                }
            }
        }
        Ok(store)
    }

    /// The pin file text.
    pub fn to_text(&self) -> String {
        let mut out =
            String::from("# tibet-iot pins: DID PUBLIC_KEY (base64 of the raw Ed25519 key)\n");
        for (did, key) in &self.pins {
            out.push_str(did);
            out.push(' ');
            out.push_str(&key.to_base64());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    fn key(i: u8) -> PublicKey {
        Keypair::from_seed(&[i; 32]).public()
    }

    #[test]
    fn first_use_pins_same_is_fine_other_is_refused() {
        let mut pins = PinStore::new(2);
        assert_eq!(pins.pin_first_use("jis:a", key(1)), PinDecision::Pinned);
        assert_eq!(pins.pin_first_use("jis:a", key(1)), PinDecision::Same);
        assert_eq!(pins.pin_first_use("jis:a", key(2)), PinDecision::Conflict);
        assert_eq!(pins.get("jis:a"), Some(&key(1)), "never a silent re-pin");
        assert_eq!(pins.pin_first_use("jis:b", key(2)), PinDecision::Pinned);
        assert_eq!(pins.pin_first_use("jis:c", key(3)), PinDecision::Full);
        assert_eq!(pins.pin_first_use("jis: x", key(3)), PinDecision::BadDid);
        assert_eq!(
            pins.stats(),
            PinStats {
                pinned: 2,
                refused_conflict: 1,
                refused_full: 1
            }
        );
        assert_eq!(pins.set("jis:a", key(4)), Ok(Some(key(1))));
        assert_eq!(pins.set("jis:z", key(4)), Err(PinDecision::Full));
    }
}
