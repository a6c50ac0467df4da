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
        let suffix = self.next_suffix();
        id_with_suffix(now, suffix)
    }

    /// The next id's 8-hex suffix, as a number.
    pub(crate) fn next_suffix(&mut self) -> u32 {
        let suffix = fmix32(self.counter.wrapping_add(self.key));
        self.counter = self.counter.wrapping_add(1);
        suffix
    }
}

/// `tibet_<time>_<suffix>`.
fn id_with_suffix(now: Timestamp, suffix: u32) -> String {
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

/// A token's id and time as text, made without allocating once warm: the
/// calendar part of the time is worked out once per second (a node makes
/// many tokens a second). The texts equal [`TokenIdGen::next_id`]'s and
/// [`iso_timestamp`]'s.
#[derive(Debug, Default)]
pub(crate) struct StampText {
    /// The second the calendar texts below are of (seconds since the
    /// epoch); `None` when they are of no second.
    second: Option<i64>,
    /// `YYYYMMDDHHMMSS` of `second`.
    compact: String,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`.
    iso: String,
    /// The token id.
    pub(crate) token_id: String,
    /// The timestamp.
    pub(crate) timestamp: String,
}

impl StampText {
    /// Sets the id (with `suffix`, from [`TokenIdGen::next_suffix`]) and
    /// the timestamp of a token made at `now`.
    pub(crate) fn set(&mut self, now: Timestamp, suffix: u32) {
        let micros = now.as_micros();
        let second = micros.div_euclid(1_000_000);
        if self.second != Some(second) && !self.set_second(now, second) {
            // Outside years 0 to 9999: the general path.
            self.token_id = id_with_suffix(now, suffix);
            self.timestamp = iso_timestamp(now);
            return;
        }
        let fraction = micros.rem_euclid(1_000_000) as u32; // below 1,000,000
        let id = &mut self.token_id;
        id.clear();
        id.push_str("tibet_");
        id.push_str(&self.compact);
        push_digits(id, fraction, 6);
        id.push('_');
        push_hex8(id, suffix);
        let ts = &mut self.timestamp;
        ts.clear();
        ts.push_str(&self.iso);
        if fraction != 0 {
            ts.push('.');
            push_digits(ts, fraction, 6);
        }
        ts.push_str("+00:00");
    }

    /// Works out the calendar texts of `second` (that of `now`); `false`
    /// outside years 0 to 9999.
    fn set_second(&mut self, now: Timestamp, second: i64) -> bool {
        self.second = None;
        let Some(c) = Civil::of(now) else {
            return false;
        };
        self.iso.clear();
        push_iso_seconds(&mut self.iso, &c);
        self.compact.clear();
        self.compact
            .extend(self.iso.chars().filter(char::is_ascii_digit));
        self.second = Some(second);
        true
    }
}

/// `now` as the reference writes timestamps (`Timestamp::to_iso`), without
/// going through a format string (this is on every token's hot path).
pub(crate) fn iso_timestamp(now: Timestamp) -> String {
    let Some(c) = Civil::of(now) else {
        return now.to_iso();
    };
    let mut s = String::with_capacity(32);
    push_iso_seconds(&mut s, &c);
    if c.micros != 0 {
        s.push('.');
        push_digits(&mut s, c.micros, 6);
    }
    s.push_str("+00:00");
    s
}

/// Appends `YYYY-MM-DDTHH:MM:SS` of `c`.
fn push_iso_seconds(s: &mut String, c: &Civil) {
    push_digits(s, c.year, 4);
    for (sep, v) in [
        ('-', c.month),
        ('-', c.day),
        ('T', c.hour),
        (':', c.minute),
        (':', c.second),
    ] {
        s.push(sep);
        push_digits(s, v, 2);
    }
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
    fn stamp_text_matches_the_general_path() {
        let (mut fast, mut slow) = (TokenIdGen::new(9), TokenIdGen::new(9));
        let mut stamp = StampText::default();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut t = -86_400_000_000i64; // 1969, before the epoch
        for i in 0..30_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly small steps (many tokens a second), some whole
            // seconds, some jumps (backwards too) and the year 9999's edge.
            t = match i % 97 {
                0 => (x % 7_258_118_400_000_000) as i64,
                1 => t - 1_500_000,
                2 => t / 1_000_000 * 1_000_000,
                3 => 253_402_300_799_999_999 - (x % 3) as i64,
                _ => t + (x % 300_000) as i64,
            };
            let now = Timestamp::from_micros(t);
            stamp.set(now, fast.next_suffix());
            assert_eq!(stamp.token_id, slow.next_id(now), "at {t}");
            assert_eq!(stamp.timestamp, iso_timestamp(now), "at {t}");
        }
        let far = Timestamp::from_secs(300_000_000_000);
        stamp.set(far, fast.next_suffix());
        assert_eq!(stamp.token_id, slow.next_id(far));
        assert_eq!(stamp.timestamp, far.to_iso());
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
