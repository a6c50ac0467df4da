//! Fast paths for the reference's ISO 8601 form on the receive hot path:
//! parsing `YYYY-MM-DDTHH:MM:SS[.fraction](+00:00|Z)` without chrono, and
//! formatting response timestamps from a per-second cache. Both give exactly
//! what [`Timestamp::parse`] and [`Timestamp::to_iso`] give, and fall back to
//! them for anything else.

use alloc::borrow::ToOwned;
use alloc::string::String;

use crate::time::Timestamp;

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The canonical UTC form only; `None` means "not canonical, ask chrono".
fn parse_canonical(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, se) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1000..=9999).contains(&y) || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let [b'.', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        // Keep microseconds, truncating finer digits (as chrono's µs do).
        let frac = &tail[..n];
        let kept = &frac[..n.min(6)];
        micros = digits(kept)? * 10i64.pow(6 - kept.len() as u32);
        rest = &tail[n..];
    }
    if rest != b"Z" && rest != b"+00:00" {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    Some(Timestamp::from_micros(secs * 1_000_000 + micros))
}

/// Parses like [`Timestamp::parse`], fast for the canonical UTC form.
pub(crate) fn parse(s: &str) -> Option<Timestamp> {
    parse_canonical(s).or_else(|| Timestamp::parse(s))
}

/// Serializes a timestamp as its ISO 8601 text.
pub(crate) fn serialize<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_iso())
}

/// Formats like [`Timestamp::to_iso`], reusing the date and time of the
/// last second formatted, and the whole text of the last instant.
#[derive(Debug, Default)]
pub(crate) struct IsoFormatter {
    second: Option<i64>,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`.
    prefix: String,
    /// The instant `text` spells.
    last: Option<Timestamp>,
    text: String,
}

impl IsoFormatter {
    pub(crate) fn format(&mut self, t: Timestamp) -> String {
        self.text_of(t).to_owned()
    }

    /// The text of `t`, borrowed: a batch of answers stamped with one
    /// instant formats it once.
    pub(crate) fn text_of(&mut self, t: Timestamp) -> &str {
        if self.last != Some(t) {
            let mut text = core::mem::take(&mut self.text);
            text.clear();
            self.write(t, &mut text);
            self.text = text;
            self.last = Some(t);
        }
        &self.text
    }

    fn write(&mut self, t: Timestamp, s: &mut String) {
        let micros = t.as_micros();
        let (sec, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
        if self.second != Some(sec) {
            let whole = Timestamp::from_micros(sec * 1_000_000).to_iso();
            match whole.strip_suffix("+00:00") {
                Some(p) if p.len() == 19 && whole.as_bytes()[0].is_ascii_digit() => {
                    self.prefix.clear();
                    self.prefix.push_str(p);
                    self.second = Some(sec);
                }
                _ => return s.push_str(&t.to_iso()),
            }
        }
        s.push_str(&self.prefix);
        if frac != 0 {
            s.push('.');
            let mut buf = [b'0'; 6];
            let mut f = frac;
            for slot in buf.iter_mut().rev() {
                *slot = b'0' + (f % 10) as u8;
                f /= 10;
            }
            buf.iter().for_each(|&c| s.push(char::from(c)));
        }
        s.push_str("+00:00");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_forms() {
        for s in [
            "2026-11-26T11:00:33.762558+00:00",
            "2026-11-26T11:00:33+00:00",
            "2026-11-26T11:00:33Z",
            "2026-11-26T11:00:33.5Z",
            "2026-11-26T11:00:33.123456789+00:00",
            "2024-02-29T23:59:59.999999+00:00",
            "1969-12-31T23:59:59.5+00:00",
        ] {
            assert_eq!(parse_canonical(s), Timestamp::parse(s), "{s}");
            assert!(parse_canonical(s).is_some(), "{s}");
        }
        for s in [
            "2026-11-26T12:00:33+01:00",
            "2026-11-26T11:00:33",
            "2025-02-29T00:00:00Z",
            "2026-11-26T11:00:60Z",
            "2026-11-26T11:00:33.Z",
            "2026-11-26T11:00:33.1234567890Z",
            "2026-11-26t11:00:33Z",
            "",
        ] {
            assert_eq!(parse_canonical(s), None, "{s}");
            assert_eq!(parse(s), Timestamp::parse(s), "{s}");
        }
    }

    proptest! {
        #[test]
        fn parse_agrees_with_chrono(
            y in 1000i64..=9999, mo in 1i64..=12, d in 1i64..=31, h in 0i64..=24, mi in 0i64..=60,
            se in 0i64..=60, frac in proptest::option::of("[0-9]{0,10}"), z in proptest::bool::ANY,
        ) {
            let mut s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}");
            if let Some(f) = frac { s.push('.'); s.push_str(&f); }
            s.push_str(if z { "Z" } else { "+00:00" });
            let fast = parse_canonical(&s);
            if fast.is_some() {
                prop_assert_eq!(fast, Timestamp::parse(&s), "{}", s);
            }
            prop_assert_eq!(parse(&s), Timestamp::parse(&s), "{}", s);
        }

        #[test]
        fn formatter_agrees_with_to_iso(micros in proptest::collection::vec(-100_000_000_000_000_000i64..300_000_000_000_000_000, 1..20)) {
            let mut f = IsoFormatter::default();
            for m in micros {
                let t = Timestamp::from_micros(m);
                prop_assert_eq!(f.format(t), t.to_iso());
                let same_second = Timestamp::from_micros(m - m.rem_euclid(1_000_000) + 7);
                prop_assert_eq!(f.format(same_second), same_second.to_iso());
                prop_assert_eq!(f.text_of(same_second), same_second.to_iso());
                prop_assert_eq!(f.text_of(t), t.to_iso());
            }
        }
    }
}
