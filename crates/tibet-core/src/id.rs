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
        let mut id = String::with_capacity(35);
        id.push_str("tibet_");
        match Civil::of(now) {
            Some(c) => {
                push_digits(&mut id, c.year, 4);
                for (v, n) in [
                    (c.month, 2),
                    (c.day, 2),
                    (c.hour, 2),
                    (c.minute, 2),
                    (c.second, 2),
                    (c.micros, 6),
                ] {
                    push_digits(&mut id, v, n);
                }
            }
            None => id.push_str(&now.to_datetime().format("%Y%m%d%H%M%S%6f").to_string()),
        }
        id.push('_');
        push_hex8(&mut id, suffix);
        id
    }
}

/// `now` as the reference writes timestamps (`Timestamp::to_iso`), without
/// going through a format string (this is on every token's hot path).
pub(crate) fn iso_timestamp(now: Timestamp) -> String {
    let Some(c) = Civil::of(now) else {
        return now.to_iso();
    };
    let mut s = String::with_capacity(32);
    push_digits(&mut s, c.year, 4);
    for (sep, v) in [
        ('-', c.month),
        ('-', c.day),
        ('T', c.hour),
        (':', c.minute),
        (':', c.second),
    ] {
        s.push(sep);
        push_digits(&mut s, v, 2);
    }
    if c.micros != 0 {
        s.push('.');
        push_digits(&mut s, c.micros, 6);
    }
    s.push_str("+00:00");
    s
}

/// A UTC instant split into calendar fields (years 0 to 9999 only).
struct Civil {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
}

impl Civil {
    fn of(now: Timestamp) -> Option<Civil> {
        use chrono::{Datelike, Timelike};
        let dt = chrono::DateTime::from_timestamp_micros(now.as_micros())?;
        let year = u32::try_from(dt.year()).ok().filter(|y| *y <= 9999)?;
        Some(Civil {
            year,
            month: dt.month(),
            day: dt.day(),
            hour: dt.hour(),
            minute: dt.minute(),
            second: dt.second(),
            micros: dt.nanosecond() / 1000 % 1_000_000,
        })
    }
}

fn push_digits(s: &mut String, mut v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    s.extend(buf[..width].iter().map(|b| char::from(*b)));
}

fn push_hex8(s: &mut String, v: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..8).rev() {
        s.push(char::from(HEX[((v >> (shift * 4)) & 0xf) as usize]));
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
    fn fast_formatting_matches_chrono() {
        let mut g = TokenIdGen::new(3);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Instants from 1970 to ~2200, some on whole seconds.
            let micros = (x % 7_258_118_400_000_000) as i64;
            let t = Timestamp::from_micros(if i % 5 == 0 {
                micros / 1_000_000 * 1_000_000
            } else {
                micros
            });
            assert_eq!(iso_timestamp(t), t.to_iso());
            let id = g.next_id(t);
            assert_eq!(
                &id[6..26],
                t.to_datetime().format("%Y%m%d%H%M%S%6f").to_string()
            );
        }
        let far = Timestamp::from_secs(300_000_000_000);
        assert_eq!(iso_timestamp(far), far.to_iso());
        assert!(g.next_id(far).starts_with("tibet_"));
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
