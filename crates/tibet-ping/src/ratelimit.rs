//! [`RateLimiter`]: a token bucket per key (a claimed DID, a source
//! address), with a bounded number of keys and counters for what it
//! refused. Time is passed in.
//!
//! Each key may spend `burst` tokens at once and earns `rate` tokens per
//! second back, up to `burst`. A key whose bucket is full again holds no
//! information and may be forgotten; when the table is full, such keys are
//! swept (at most once per refill period), and if none can go the new key
//! is refused: the limiter fails closed, never grows.

use alloc::borrow::ToOwned;

use crate::collections::HashMap;
use core::borrow::Borrow;
use core::hash::Hash;

use serde::Serialize;

use crate::time::Timestamp;

/// Counters of a [`RateLimiter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RateLimitStats {
    /// Keys with a bucket now.
    pub keys: usize,
    /// Requests allowed.
    pub allowed: u64,
    /// Requests refused because the key's bucket was empty.
    pub refused: u64,
    /// Requests refused because the key table was full.
    pub refused_keys: u64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Timestamp,
}

impl Bucket {
    fn refill(&mut self, now: Timestamp, burst: f64, rate: f64) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = self.updated.max(now);
    }
}

/// Per-key token buckets; see the module docs.
#[derive(Debug)]
pub struct RateLimiter<K> {
    burst: f64,
    rate: f64,
    max_keys: usize,
    buckets: HashMap<K, Bucket>,
    last_sweep: Option<Timestamp>,
    stats: RateLimitStats,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// Buckets of `burst` tokens refilled at `rate` tokens per second, for
    /// at most `max_keys` keys at once. Negative or NaN values count as 0.
    pub fn new(burst: f64, rate: f64, max_keys: usize) -> Self {
        let sane = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
        RateLimiter {
            burst: sane(burst),
            rate: sane(rate),
            max_keys,
            buckets: HashMap::new(),
            last_sweep: None,
            stats: RateLimitStats::default(),
        }
    }

    /// Spends one token of `key` at `now`; `false` (counted) when its
    /// bucket is empty or a new key finds the table full.
    pub fn allow<Q>(&mut self, now: Timestamp, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.allow_n(now, key, 1.0)
    }

    /// Spends `cost` tokens of `key` at `now` (e.g. bytes); see
    /// [`RateLimiter::allow`].
    pub fn allow_n<Q>(&mut self, now: Timestamp, key: &Q, cost: f64) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(b) = self.buckets.get_mut(key) {
            b.refill(now, self.burst, self.rate);
            let ok = b.tokens >= cost;
            if ok {
                b.tokens -= cost;
            }
            return self.count(ok, false);
        }
        if self.buckets.len() >= self.max_keys {
            self.sweep(now);
            if self.buckets.len() >= self.max_keys {
                return self.count(false, true);
            }
        }
        let ok = self.burst >= cost;
        let tokens = if ok { self.burst - cost } else { self.burst };
        self.buckets.insert(
            key.to_owned(),
            Bucket {
                tokens,
                updated: now,
            },
        );
        self.count(ok, false)
    }

    fn count(&mut self, ok: bool, table_full: bool) -> bool {
        match (ok, table_full) {
            (true, _) => self.stats.allowed += 1,
            (false, true) => self.stats.refused_keys += 1,
            (false, false) => self.stats.refused += 1,
        }
        ok
    }

    /// Forgets the keys whose buckets are full again, at most once per
    /// refill period (so a flood of new keys costs one scan per period).
    fn sweep(&mut self, now: Timestamp) {
        let period = if self.rate > 0.0 {
            self.burst / self.rate
        } else {
            f64::INFINITY
        };
        if let Some(last) = self.last_sweep
            && now.saturating_duration_since(last).as_secs_f64() < period
        {
            return;
        }
        self.last_sweep = Some(now);
        let (burst, rate) = (self.burst, self.rate);
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }

    /// Tokens `key` has at `now` (a full bucket for an unknown key).
    pub fn tokens<Q>(&self, now: Timestamp, key: &Q) -> f64
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.buckets.get(key).map_or(self.burst, |b| {
            let mut b = *b;
            b.refill(now, self.burst, self.rate);
            b.tokens
        })
    }

    /// Counters and the number of keys held.
    pub fn stats(&self) -> RateLimitStats {
        RateLimitStats {
            keys: self.buckets.len(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use core::net::SocketAddr;
    use core::time::Duration;

    use super::*;

    const NOW: Timestamp = Timestamp::from_secs(1_790_000_000);

    #[test]
    fn a_burst_then_the_refill_rate() {
        let mut r: RateLimiter<String> = RateLimiter::new(3.0, 2.0, 16);
        let allowed = (0..10).filter(|_| r.allow(NOW, "jis:a")).count();
        assert_eq!(allowed, 3);
        // Half a second earns one token.
        let later = NOW + Duration::from_millis(500);
        assert!(r.allow(later, "jis:a"));
        assert!(!r.allow(later, "jis:a"));
        // Other keys have their own bucket.
        assert!(r.allow(later, "jis:b"));
        let s = r.stats();
        assert_eq!((s.allowed, s.refused, s.refused_keys, s.keys), (5, 8, 0, 2));
        // Never more than the burst, however long the pause.
        let much_later = NOW + Duration::from_secs(3600);
        assert_eq!(r.tokens(much_later, "jis:a"), 3.0);
    }

    #[test]
    fn the_key_table_is_bounded_and_fails_closed() {
        let mut r: RateLimiter<SocketAddr> = RateLimiter::new(2.0, 1.0, 4);
        let addr = |i: u16| SocketAddr::from(([10, 0, 0, 1], i));
        for i in 0..4 {
            assert!(r.allow(NOW, &addr(i)));
        }
        // Full, and nobody has refilled yet: the fifth key is refused.
        assert!(!r.allow(NOW, &addr(99)));
        assert_eq!(r.stats().refused_keys, 1);
        assert_eq!(r.stats().keys, 4);
        // Known keys still work.
        assert!(r.allow(NOW, &addr(0)));
        // Once buckets are full again they are forgotten and room returns.
        let later = NOW + Duration::from_secs(2);
        assert!(r.allow(later, &addr(99)));
        assert!(r.stats().keys <= 4);
        // A flood of new keys never grows the table.
        for i in 100..10_000 {
            r.allow(later, &addr(i));
        }
        assert!(r.stats().keys <= 4);
    }

    #[test]
    fn costs_and_degenerate_settings() {
        let mut r: RateLimiter<String> = RateLimiter::new(100.0, 10.0, 4);
        assert!(r.allow_n(NOW, "k", 60.0));
        assert!(!r.allow_n(NOW, "k", 60.0));
        assert!(r.allow_n(NOW, "k", 40.0));
        let mut none: RateLimiter<String> = RateLimiter::new(f64::NAN, -1.0, 4);
        assert!(!none.allow(NOW, "k"));
    }
}
