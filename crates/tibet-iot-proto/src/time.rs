//! The engine's two clocks.
//!
//! [`MonoTime`] is a monotonic instant (a duration since an arbitrary
//! origin): it drives every timer (heartbeat, discovery, cleanup,
//! retransmission, request and cache expiry), so a wall-clock step (NTP)
//! neither fires nor stalls them. [`Timestamp`] is wall-clock time, used only
//! for what is wall-clock on the wire: packet timestamps and replay windows.
//! The driver reads both clocks and hands them in as a [`Now`]; a simulator
//! makes both up.

use core::ops::{Add, Sub};
use core::time::Duration;

use tibet_ping::Timestamp;

/// A monotonic instant: time since an arbitrary origin chosen by the driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonoTime(Duration);

impl MonoTime {
    /// The origin.
    pub const ZERO: MonoTime = MonoTime(Duration::ZERO);

    /// The instant `since_origin` after the origin.
    pub const fn from_duration(since_origin: Duration) -> MonoTime {
        MonoTime(since_origin)
    }

    /// The instant `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> MonoTime {
        MonoTime(Duration::from_secs(secs))
    }

    /// The instant `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> MonoTime {
        MonoTime(Duration::from_millis(ms))
    }

    /// Time since the origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: MonoTime) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for MonoTime {
    type Output = MonoTime;
    /// Saturating: a "forever" timeout stays far in the future.
    fn add(self, rhs: Duration) -> MonoTime {
        MonoTime(self.0.checked_add(rhs).unwrap_or(Duration::MAX))
    }
}

impl Sub<Duration> for MonoTime {
    type Output = MonoTime;
    /// Saturating at the origin.
    fn sub(self, rhs: Duration) -> MonoTime {
        MonoTime(self.0.saturating_sub(rhs))
    }
}

/// Both clocks at one moment, as handed to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: drives timers.
    pub mono: MonoTime,
    /// Wall-clock time: packet timestamps and replay windows.
    pub wall: Timestamp,
}

impl Now {
    /// Both clocks.
    pub const fn new(mono: MonoTime, wall: Timestamp) -> Now {
        Now { mono, wall }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_forever_saturates_instead_of_panicking() {
        let t = MonoTime::from_secs(5) + Duration::MAX;
        assert!(t > MonoTime::from_secs(1_000_000_000));
        assert_eq!(
            MonoTime::from_secs(3).saturating_duration_since(MonoTime::from_secs(5)),
            Duration::ZERO
        );
    }
}
