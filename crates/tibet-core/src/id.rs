//! Token ids in the reference's shape, `tibet_20261126110033762558_1a2b3c4d`,
//! that never collide within one generator.
//!
//! The reference hashes the time and an object address into 8 hex digits,
//! which can repeat for tokens made in the same microsecond. Here the
//! 8-hex suffix is `fmix32(counter + key)`: `key` is a random 32-bit value
//! drawn once per generator, `counter` counts the ids it made, and `fmix32`
//! (MurmurHash3's finaliser) is a bijection on `u32`. So one generator
//! (one [`Provider`](crate::Provider)) yields 2^32 distinct suffixes in a
//! row, whatever the clock does: same-microsecond bursts cannot collide, and
//! neither can a clock that steps backwards. Two generators (two processes)
//! start at independent random points, so a collision needs the same
//! microsecond *and* a 1-in-2^32 suffix match.

use tibet_ping::Timestamp;

/// Makes token ids; see the module docs for why they cannot collide.
#[derive(Debug, Clone)]
pub struct TokenIdGen {
    key: u32,
    counter: u32,
}

impl TokenIdGen {
    /// A generator whose suffix sequence starts from `key` (inject a fixed
    /// key for deterministic tests, a random one otherwise).
    pub const fn new(key: u32) -> Self {
        TokenIdGen { key, counter: 0 }
    }

    /// A generator with a random key from the thread RNG.
    pub fn random() -> Self {
        TokenIdGen::new(rand::random())
    }

    /// The next id, stamped with `now` (UTC).
    pub fn next_id(&mut self, now: Timestamp) -> String {
        let suffix = fmix32(self.counter.wrapping_add(self.key));
        self.counter = self.counter.wrapping_add(1);
        let dt = now.to_datetime();
        format!("tibet_{}_{suffix:08x}", dt.format("%Y%m%d%H%M%S%6f"))
    }
}

/// MurmurHash3's 32-bit finaliser: a bijection that scrambles its input.
const fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn shape_matches_the_reference() {
        let mut g = TokenIdGen::new(7);
        let now = Timestamp::parse("2026-11-26T11:00:33.762558+00:00").unwrap();
        let id = g.next_id(now);
        assert_eq!(id.len(), "tibet_20261126110033762558_1a2b3c4d".len());
        assert!(id.starts_with("tibet_20261126110033762558_"), "{id}");
        assert!(
            id[27..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn same_microsecond_never_collides() {
        let mut g = TokenIdGen::new(0xdead_beef);
        let now = Timestamp::from_secs(1_800_000_000);
        let ids: HashSet<String> = (0..200_000).map(|_| g.next_id(now)).collect();
        assert_eq!(ids.len(), 200_000);
    }

    #[test]
    fn deterministic_for_a_given_key() {
        let now = Timestamp::from_secs(1_800_000_000);
        let a: Vec<String> = (0..3)
            .map({
                let mut g = TokenIdGen::new(1);
                move |_| g.next_id(now)
            })
            .collect();
        let mut g = TokenIdGen::new(1);
        assert_eq!(a, (0..3).map(|_| g.next_id(now)).collect::<Vec<_>>());
        assert_ne!(a[0], a[1]);
    }
}
