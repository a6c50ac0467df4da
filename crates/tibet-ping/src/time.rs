//! Wall-clock instants as plain data, passed into the protocol core.
//!
//! The core never reads a clock: every call that needs the time takes a
//! [`Timestamp`]. The tokio layer reads the system clock once per event and
//! hands it in ([`Timestamp::now`], with the `std` feature); tests and
//! simulations pass virtual time, firmware its own clock's.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

use alloc::string::{String, ToString};
use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds since the Unix epoch (UTC); cheap to copy and compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// From whole seconds since the Unix epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The current system time. Only drivers call this; the core never does.
    #[cfg(feature = "std")]
    pub fn now() -> Self {
        use std::time::{SystemTime, UNIX_EPOCH};
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp::EPOCH + after,
            Err(before) => Timestamp::EPOCH - before.duration(),
        }
    }

    /// From a `chrono` UTC date-time.
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_micros())
    }

    /// As a `chrono` UTC date-time (saturating at chrono's range).
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or(if self.0 < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }

    /// Parses an ISO 8601 timestamp leniently: a trailing `Z`, a missing
    /// fractional part, any UTC offset, or no offset at all (taken as UTC,
    /// as the Python reference does).
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::from_datetime(dt.with_timezone(&Utc)));
        }
        // Python's `datetime.fromisoformat` also accepts a naive time.
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|n| Self::from_datetime(n.and_utc()))
    }

    /// The reference's form: `2026-11-26T11:00:33.762558+00:00`, with the
    /// fraction left out when it is zero (as Python's `isoformat` does).
    pub fn to_iso(self) -> String {
        let dt = self.to_datetime();
        if self.0.rem_euclid(1_000_000) == 0 {
            dt.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
        } else {
            dt.to_rfc3339_opts(SecondsFormat::Micros, false)
        }
    }

    /// The signed distance `self - earlier` in microseconds.
    pub const fn micros_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.micros_since(earlier).max(0) as u64)
    }
}

fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_micros(rhs)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_micros(rhs)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_python_isoformat() {
        let t = Timestamp::parse("2026-11-26T11:00:33.762558+00:00").unwrap();
        assert_eq!(t.to_iso(), "2026-11-26T11:00:33.762558+00:00");
        let whole = Timestamp::parse("2026-11-26T11:00:33+00:00").unwrap();
        assert_eq!(whole.to_iso(), "2026-11-26T11:00:33+00:00");
        assert_eq!(t.micros_since(whole), 762_558);
    }

    #[test]
    fn now_reads_the_system_clock() {
        let micros = || {
            let since = std::time::UNIX_EPOCH.elapsed().unwrap();
            i64::try_from(since.as_micros()).unwrap()
        };
        let before = micros();
        let now = Timestamp::now().as_micros();
        let after = micros();
        assert!(
            (before..=after).contains(&now),
            "{before} <= {now} <= {after}"
        );
    }

    #[test]
    fn parses_leniently() {
        let base = Timestamp::parse("2026-11-26T11:00:33+00:00").unwrap();
        assert_eq!(Timestamp::parse("2026-11-26T11:00:33Z"), Some(base));
        assert_eq!(Timestamp::parse("2026-11-26T12:00:33+01:00"), Some(base));
        assert_eq!(Timestamp::parse("2026-11-26T11:00:33"), Some(base));
        assert_eq!(
            Timestamp::parse("2026-11-26T11:00:33.5Z"),
            Some(base + Duration::from_millis(500))
        );
        assert_eq!(Timestamp::parse("yesterday"), None);
        assert_eq!(Timestamp::parse(""), None);
    }
}
