//! A beacon's key: `public_key` and `public_key_hash` in a discover packet's
//! payload, and a bounded cache of parsed keys (docs/PROTOCOL.md section 6).
//!
//! A node with a key puts `public_key` (base64 of the raw key) and
//! `public_key_hash` (hex SHA-256 of the raw key) into its beacon's payload
//! and signs the beacon with that key: the signature proves possession.

use alloc::borrow::ToOwned;
use alloc::string::String;

use alloc::collections::VecDeque;

use crate::collections::HashMap;

use serde_json::Value;

use super::keys::{PublicKey, PublicKeyError};
use super::signing::{SignatureError, verify_packet};
use crate::packet::{JsonMap, PingPacket};

/// Payload key of the base64 public key.
pub const PUBLIC_KEY_FIELD: &str = "public_key";
/// Payload key of the hex SHA-256 of the raw key.
pub const PUBLIC_KEY_HASH_FIELD: &str = "public_key_hash";
/// Default number of parsed keys a [`KeyCache`] holds.
pub const DEFAULT_KEY_CACHE_CAPACITY: usize = 1024;

/// Why a beacon's key fields do not prove a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BeaconKeyError {
    /// `public_key` is not a string.
    #[error("public_key is not a string")]
    NotText,
    /// `public_key` does not parse.
    #[error("public_key: {0}")]
    Key(#[from] PublicKeyError),
    /// `public_key_hash` is present and differs from the key's hash.
    #[error("public_key_hash does not match public_key")]
    HashMismatch,
    /// The beacon is not signed by the key it carries.
    #[error("beacon signature: {0}")]
    Signature(SignatureError),
}

/// Puts `public_key` and `public_key_hash` of `key` into a beacon's payload.
pub fn add_beacon_key(payload: &mut JsonMap, key: &PublicKey) {
    payload.insert(PUBLIC_KEY_FIELD.into(), Value::from(key.to_base64()));
    payload.insert(PUBLIC_KEY_HASH_FIELD.into(), Value::from(key.sha256_hex()));
}

/// The key a payload carries, if any (`public_key` absent: `Ok(None)`),
/// checked against `public_key_hash` when that is present.
pub fn beacon_key(payload: &JsonMap) -> Result<Option<PublicKey>, BeaconKeyError> {
    beacon_key_with(payload, PublicKey::parse)
}

pub(super) fn beacon_key_with(
    payload: &JsonMap,
    parse: impl FnOnce(&str) -> Result<PublicKey, PublicKeyError>,
) -> Result<Option<PublicKey>, BeaconKeyError> {
    let Some(text) = payload.get(PUBLIC_KEY_FIELD) else {
        return Ok(None);
    };
    let text = text.as_str().ok_or(BeaconKeyError::NotText)?;
    let key = parse(text)?;
    if let Some(hash) = payload.get(PUBLIC_KEY_HASH_FIELD)
        && hash.as_str() != Some(key.sha256_hex().as_str())
    {
        return Err(BeaconKeyError::HashMismatch);
    }
    Ok(Some(key))
}

/// The key a beacon proves it holds: its payload's key, with the packet's
/// signature verified by that key. `Ok(None)` for a beacon without a key.
pub fn beacon_proof(packet: &PingPacket) -> Result<Option<PublicKey>, BeaconKeyError> {
    prove(packet, beacon_key(&packet.payload)?)
}

fn prove(packet: &PingPacket, key: Option<PublicKey>) -> Result<Option<PublicKey>, BeaconKeyError> {
    match key {
        None => Ok(None),
        Some(key) => verify_packet(packet, &key)
            .map(|()| Some(key))
            .map_err(BeaconKeyError::Signature),
    }
}

/// Counters of a [`KeyCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Keys parsed.
    pub misses: u64,
    /// Entries evicted to make room (oldest first).
    pub evicted: u64,
}

/// A bounded cache of parsed public keys by their base64 text; the oldest
/// entry goes when full. Parsing a key decompresses a curve point, which
/// costs about as much as a tenth of a verification.
#[derive(Debug)]
pub struct KeyCache {
    map: HashMap<String, PublicKey>,
    order: VecDeque<String>,
    capacity: usize,
    stats: KeyCacheStats,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache::new(DEFAULT_KEY_CACHE_CAPACITY)
    }
}

impl KeyCache {
    /// An empty cache of at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        KeyCache {
            // Grows with use: a node that never sees a key pays nothing (a
            // table sized up front cost ~440 KB per engine, most of a
            // simulated node's memory).
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            stats: KeyCacheStats::default(),
        }
    }

    /// The parsed key for `text`; errors are not cached.
    pub fn parse(&mut self, text: &str) -> Result<PublicKey, PublicKeyError> {
        if let Some(k) = self.map.get(text) {
            self.stats.hits += 1;
            return Ok(*k);
        }
        self.stats.misses += 1;
        let key = PublicKey::parse(text)?;
        if self.map.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.map.remove(&old);
            self.stats.evicted += 1;
        }
        self.map.insert(text.to_owned(), key);
        self.order.push_back(text.to_owned());
        Ok(key)
    }

    /// [`beacon_key`] with key parsing through this cache.
    pub fn beacon_key(&mut self, payload: &JsonMap) -> Result<Option<PublicKey>, BeaconKeyError> {
        beacon_key_with(payload, |t| self.parse(t))
    }

    /// [`beacon_proof`] with key parsing through this cache.
    pub fn beacon_proof(
        &mut self,
        packet: &PingPacket,
    ) -> Result<Option<PublicKey>, BeaconKeyError> {
        let key = beacon_key_with(&packet.payload, |t| self.parse(t))?;
        prove(packet, key)
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> KeyCacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Keypair, sign_packet};

    fn beacon(key: &Keypair) -> PingPacket {
        let mut p = PingPacket::new(
            "ping_00",
            "jis:home:lamp",
            "broadcast",
            "discover",
            "announce",
        );
        add_beacon_key(&mut p.payload, &key.public());
        sign_packet(&mut p, key);
        p
    }

    #[test]
    fn signed_beacon_proves_its_key() {
        let key = Keypair::from_seed(&[8; 32]);
        let p = beacon(&key);
        assert_eq!(p.payload[PUBLIC_KEY_HASH_FIELD].as_str().unwrap().len(), 64);
        assert_eq!(beacon_proof(&p), Ok(Some(key.public())));
        let mut cache = KeyCache::new(4);
        assert_eq!(cache.beacon_proof(&p), Ok(Some(key.public())));
        assert_eq!(cache.beacon_proof(&p), Ok(Some(key.public())));
        assert_eq!(
            cache.stats(),
            KeyCacheStats {
                hits: 1,
                misses: 1,
                evicted: 0
            }
        );
    }

    #[test]
    fn beacon_without_key_unsigned_or_mismatched_is_told_apart() {
        let key = Keypair::from_seed(&[8; 32]);
        let plain = PingPacket::new(
            "ping_00",
            "jis:home:lamp",
            "broadcast",
            "discover",
            "announce",
        );
        assert_eq!(beacon_proof(&plain), Ok(None));

        let mut unsigned = beacon(&key);
        unsigned.signature.clear();
        assert_eq!(
            beacon_proof(&unsigned),
            Err(BeaconKeyError::Signature(SignatureError::Missing))
        );

        // Someone else's key in the payload, signed by the attacker: the
        // signature is over the payload with the victim's key, so it fails.
        let attacker = Keypair::from_seed(&[9; 32]);
        let mut stolen = PingPacket::new(
            "ping_00",
            "jis:home:lamp",
            "broadcast",
            "discover",
            "announce",
        );
        add_beacon_key(&mut stolen.payload, &key.public());
        sign_packet(&mut stolen, &attacker);
        assert_eq!(
            beacon_proof(&stolen),
            Err(BeaconKeyError::Signature(SignatureError::Invalid))
        );

        let mut wrong_hash = beacon(&key);
        wrong_hash
            .payload
            .insert(PUBLIC_KEY_HASH_FIELD.into(), Value::from("00"));
        assert_eq!(beacon_proof(&wrong_hash), Err(BeaconKeyError::HashMismatch));
        let mut not_text = beacon(&key);
        not_text
            .payload
            .insert(PUBLIC_KEY_FIELD.into(), Value::from(5));
        assert_eq!(beacon_proof(&not_text), Err(BeaconKeyError::NotText));
    }

    #[test]
    fn key_cache_is_bounded() {
        let mut cache = KeyCache::new(2);
        for i in 1..=5u8 {
            cache
                .parse(&Keypair::from_seed(&[i; 32]).public().to_base64())
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.stats().evicted, 3);
        assert!(cache.parse("junk").is_err());
        assert_eq!(cache.len(), 2);
    }
}
