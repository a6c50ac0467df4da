//! [`SourceGuard`]: what input from an untrusted source address may make the
//! engine do (docs/SECURITY.md).
//!
//! - **Amplification credit.** Each datagram from a source earns it
//!   `amplification` times its bytes (2 by default) of credit; every datagram
//!   the engine sends because of it (an answer, a cached resend, relayed
//!   copies, a relayed response, a challenge heartbeat to a peer at that
//!   address) spends its bytes. Output without credit is refused and
//!   counted. Credit is kept per IP address (a spoofed source spends the
//!   victim's credit, which only the victim-addressed input earned), for at
//!   most `credit_ttl`, at most `max_credit` bytes, for at most
//!   `credit_sources` addresses (the oldest forgotten first). Forgetting
//!   credit only lowers what may be sent, so the bound holds: over any run,
//!   bytes out per source are at most `amplification` times bytes in.
//! - **Fairness.** Token buckets per IP address for the work untrusted input
//!   causes in the engine: reverse paths (relays), beacon reviews and audit
//!   records. Reverse paths also take a token from a bucket per claimed
//!   source DID: an address bucket alone bounds nothing when the source
//!   addresses are forged, since each new address brings a full bucket (and
//!   a bucket that has refilled is forgotten), while the DIDs that may be
//!   relayed at all (not ROOD) are the ones this node was told about.
//!
//! - **Verification budget.** Checking an Ed25519 signature is the most
//!   expensive thing a datagram can ask of the engine. A packet whose
//!   signature would be checked (a pinned DID, a carried beacon key, a vouch
//!   credential) and that does not come from the address its DID proved
//!   takes a token from its address's verification bucket and from one
//!   bucket shared by all such packets before it is checked; without both
//!   it is dropped unchecked. Pinned peers at their proven addresses are
//!   checked without a budget, so a flood of signatures from elsewhere (the
//!   same IP included) cannot starve them (docs/SECURITY.md).
//!
//! Trusted (GROEN) senders are exempt from the credit and the buckets above
//! but the verification budget; the engine decides who that is.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use tibet_ping::{RateLimitStats, RateLimiter, Timestamp};

use crate::time::MonoTime;

/// Settings of the [`SourceGuard`].
#[derive(Clone, Debug, PartialEq)]
pub struct GuardConfig {
    /// Bytes an untrusted source may make us send per byte it sent (2).
    pub amplification: u64,
    /// Most credit one source may hold, in bytes (256 KiB).
    pub max_credit: u64,
    /// How long credit is kept after the source's first datagram (60 s:
    /// longer than the heartbeat interval, so a challenge heartbeat can be
    /// paid from a beacon's credit).
    pub credit_ttl: Duration,
    /// Sources whose credit is tracked at once (8,192; the engine raises it
    /// to `Limits::peers` when that is larger, since every unproven peer's
    /// challenge is paid from its address's credit); the oldest is
    /// forgotten first.
    pub credit_sources: usize,
    /// Reverse paths (relayed packets) per untrusted address: burst (64).
    pub relay_burst: f64,
    /// ... and refill per second (16).
    pub relay_rate: f64,
    /// Beacon reviews per untrusted address: burst (8).
    pub beacon_burst: f64,
    /// ... and refill per second (0.5).
    pub beacon_rate: f64,
    /// Audit records per untrusted address: burst (32).
    pub audit_burst: f64,
    /// ... and refill per second (4).
    pub audit_rate: f64,
    /// Signature checks for packets not from their DID's proven address,
    /// per IP address: burst (64).
    pub verify_burst: f64,
    /// ... and refill per second (32).
    pub verify_rate: f64,
    /// Signature checks for all packets not from their DID's proven address
    /// together: burst (512).
    pub verify_total_burst: f64,
    /// ... and refill per second (1,000: about 3 % of a core).
    pub verify_total_rate: f64,
    /// Addresses with a bucket at once, per kind of work (4,096).
    pub bucket_keys: usize,
    /// Interval over which drops (ROOD, replays, malformed, refused by a
    /// budget) are aggregated into one audit record per source (10 s).
    pub drop_interval: Duration,
    /// Sources counted apart per drop interval (1,024).
    pub drop_sources: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            amplification: 2,
            max_credit: 256 * 1024,
            credit_ttl: Duration::from_secs(60),
            credit_sources: 8192,
            relay_burst: 64.0,
            relay_rate: 16.0,
            beacon_burst: 8.0,
            beacon_rate: 0.5,
            audit_burst: 32.0,
            audit_rate: 4.0,
            verify_burst: 64.0,
            verify_rate: 32.0,
            verify_total_burst: 512.0,
            verify_total_rate: 1000.0,
            bucket_keys: 4096,
            drop_interval: tibet_ping::DEFAULT_DROP_INTERVAL,
            drop_sources: tibet_ping::DEFAULT_DROP_SOURCES,
        }
    }
}

/// Counters of the [`SourceGuard`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GuardStats {
    /// Bytes received from untrusted sources (credit earned, before caps).
    pub untrusted_bytes_in: u64,
    /// Bytes sent because of untrusted sources (credit spent).
    pub charged_bytes: u64,
    /// Datagrams not sent for want of credit.
    pub refused_datagrams: u64,
    /// Bytes not sent for want of credit.
    pub refused_bytes: u64,
    /// Sources whose credit is tracked now.
    pub credit_sources: usize,
    /// Sources forgotten to make room for others.
    pub credit_evicted: u64,
    /// Reverse paths (relays) per address.
    pub relay: RateLimitStats,
    /// Reverse paths (relays) per claimed source DID.
    pub relay_dids: RateLimitStats,
    /// Beacon reviews per address.
    pub beacons: RateLimitStats,
    /// Audit records per address.
    pub audit: RateLimitStats,
    /// Signature checks per address (packets not from a proven address).
    pub verify: RateLimitStats,
    /// Signature checks of all such packets together.
    pub verify_total: RateLimitStats,
}

#[derive(Debug)]
struct Credit {
    bytes: u64,
    since: MonoTime,
}

/// Per-address amplification credit and fairness buckets; see the module
/// docs.
#[derive(Debug)]
pub struct SourceGuard {
    config: GuardConfig,
    /// Looked up for every datagram: a fast hasher with a random seed.
    credit: HashMap<IpAddr, Credit, foldhash::fast::RandomState>,
    order: VecDeque<(IpAddr, MonoTime)>,
    relay: RateLimiter<IpAddr>,
    relay_dids: RateLimiter<String>,
    beacons: RateLimiter<IpAddr>,
    audit: RateLimiter<IpAddr>,
    verify: RateLimiter<IpAddr>,
    verify_total: RateLimiter<()>,
    stats: GuardStats,
}

/// The limiters count in wall-clock `Timestamp`s; the guard feeds them the
/// monotonic clock instead, so a clock step changes no budget.
fn tick(now: MonoTime) -> Timestamp {
    Timestamp::from_micros(i64::try_from(now.since_origin().as_micros()).unwrap_or(i64::MAX))
}

impl SourceGuard {
    /// A guard with `config`.
    pub fn new(config: GuardConfig) -> Self {
        SourceGuard {
            relay: RateLimiter::new(config.relay_burst, config.relay_rate, config.bucket_keys),
            relay_dids: RateLimiter::new(config.relay_burst, config.relay_rate, config.bucket_keys),
            beacons: RateLimiter::new(config.beacon_burst, config.beacon_rate, config.bucket_keys),
            audit: RateLimiter::new(config.audit_burst, config.audit_rate, config.bucket_keys),
            verify: RateLimiter::new(config.verify_burst, config.verify_rate, config.bucket_keys),
            verify_total: RateLimiter::new(config.verify_total_burst, config.verify_total_rate, 1),
            credit: HashMap::default(),
            order: VecDeque::new(),
            stats: GuardStats::default(),
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    fn expire(&mut self, now: MonoTime) {
        while let Some(&(ip, since)) = self.order.front() {
            if now.saturating_duration_since(since) < self.config.credit_ttl {
                break;
            }
            self.order.pop_front();
            if self.credit.get(&ip).is_some_and(|c| c.since == since) {
                self.credit.remove(&ip);
            }
        }
    }

    /// A datagram of `len` bytes arrived from `ip`: it earns credit.
    pub fn earn(&mut self, now: MonoTime, ip: IpAddr, len: usize) {
        self.expire(now);
        let earned = (len as u64).saturating_mul(self.config.amplification);
        self.stats.untrusted_bytes_in = self.stats.untrusted_bytes_in.saturating_add(len as u64);
        if let Some(c) = self.credit.get_mut(&ip) {
            c.bytes = c.bytes.saturating_add(earned).min(self.config.max_credit);
            return;
        }
        while self.credit.len() >= self.config.credit_sources.max(1) {
            let Some((old, since)) = self.order.pop_front() else {
                break;
            };
            if self.credit.get(&old).is_some_and(|c| c.since == since) {
                self.credit.remove(&old);
                self.stats.credit_evicted += 1;
            }
        }
        self.credit.insert(
            ip,
            Credit {
                bytes: earned.min(self.config.max_credit),
                since: now,
            },
        );
        self.order.push_back((ip, now));
    }

    /// Spends `len` bytes of `ip`'s credit; `false` (counted) when it has
    /// too little, and nothing is spent.
    pub fn spend(&mut self, now: MonoTime, ip: IpAddr, len: usize) -> bool {
        self.expire(now);
        let len = len as u64;
        match self.credit.get_mut(&ip) {
            Some(c) if c.bytes >= len => {
                c.bytes -= len;
                self.stats.charged_bytes = self.stats.charged_bytes.saturating_add(len);
                true
            }
            _ => {
                self.stats.refused_datagrams += 1;
                self.stats.refused_bytes = self.stats.refused_bytes.saturating_add(len);
                false
            }
        }
    }

    /// Credit `ip` holds now, in bytes.
    pub fn credit(&self, ip: IpAddr) -> u64 {
        self.credit.get(&ip).map_or(0, |c| c.bytes)
    }

    /// One reverse path (relayed packet) for an untrusted sender at `ip`
    /// claiming `did`: both the address's and the DID's bucket must have a
    /// token.
    pub fn allow_relay(&mut self, now: MonoTime, ip: IpAddr, did: &str) -> bool {
        self.relay.allow(tick(now), &ip) && self.relay_dids.allow(tick(now), did)
    }

    /// One beacon review for untrusted `ip`.
    pub fn allow_beacon(&mut self, now: MonoTime, ip: IpAddr) -> bool {
        self.beacons.allow(tick(now), &ip)
    }

    /// One audit record caused by untrusted `ip`.
    pub fn allow_audit(&mut self, now: MonoTime, ip: IpAddr) -> bool {
        self.audit.allow(tick(now), &ip)
    }

    /// One signature check for a packet from `ip` that is not at its DID's
    /// proven address: the address's bucket and the shared one must both
    /// have a token.
    pub fn allow_verify(&mut self, now: MonoTime, ip: IpAddr) -> bool {
        self.verify.allow(tick(now), &ip) && self.verify_total.allow(tick(now), &())
    }

    /// The signature checks [`SourceGuard::allow_verify`] would grant `ip`
    /// now, as (its address's tokens, the shared tokens); spends nothing.
    pub fn verify_tokens(&self, now: MonoTime, ip: IpAddr) -> (f64, f64) {
        (
            self.verify.tokens(tick(now), &ip),
            self.verify_total.tokens(tick(now), &()),
        )
    }

    /// Counters.
    pub fn stats(&self) -> GuardStats {
        GuardStats {
            credit_sources: self.credit.len(),
            relay: self.relay.stats(),
            relay_dids: self.relay_dids.stats(),
            beacons: self.beacons.stats(),
            audit: self.audit.stats(),
            verify: self.verify.stats(),
            verify_total: self.verify_total.stats(),
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn output_is_at_most_twice_the_input_per_source() {
        let mut g = SourceGuard::new(GuardConfig::default());
        let t0 = MonoTime::from_secs(100);
        g.earn(t0, ip(1), 100);
        assert!(g.spend(t0, ip(1), 150));
        assert!(!g.spend(t0, ip(1), 51), "only 50 bytes left");
        assert!(g.spend(t0, ip(1), 50));
        assert!(!g.spend(t0, ip(2), 1), "no input, no output");
        let s = g.stats();
        assert_eq!(
            (s.charged_bytes, s.refused_bytes, s.refused_datagrams),
            (200, 52, 2)
        );
    }

    #[test]
    fn credit_is_capped_expires_and_is_bounded_in_sources() {
        let cfg = GuardConfig {
            max_credit: 1000,
            credit_sources: 2,
            ..GuardConfig::default()
        };
        let mut g = SourceGuard::new(cfg);
        let t0 = MonoTime::from_secs(100);
        for _ in 0..100 {
            g.earn(t0, ip(1), 1000);
        }
        assert_eq!(g.credit(ip(1)), 1000, "banked credit is capped");
        g.earn(t0, ip(2), 10);
        g.earn(t0, ip(3), 10);
        assert_eq!(g.credit(ip(1)), 0, "oldest source forgotten");
        assert_eq!(g.stats().credit_sources, 2);
        assert_eq!(g.stats().credit_evicted, 1);
        assert!(!g.spend(t0 + Duration::from_secs(61), ip(3), 1), "expired");
    }

    #[test]
    fn signature_checks_are_budgeted_per_address_and_in_total() {
        let cfg = GuardConfig {
            verify_burst: 4.0,
            verify_rate: 1.0,
            verify_total_burst: 6.0,
            verify_total_rate: 2.0,
            ..GuardConfig::default()
        };
        let mut g = SourceGuard::new(cfg);
        let t0 = MonoTime::from_secs(100);
        let granted =
            |g: &mut SourceGuard, t, n: u8| (0..10).filter(|_| g.allow_verify(t, ip(n))).count();
        assert_eq!(granted(&mut g, t0, 1), 4, "the address's burst");
        assert_eq!(granted(&mut g, t0, 2), 2, "what is left of the total");
        assert_eq!(granted(&mut g, t0, 3), 0, "the total is spent");
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(granted(&mut g, t1, 1), 1, "one a second per address");
        assert_eq!(g.stats().verify_total.allowed, 7);
    }
}
