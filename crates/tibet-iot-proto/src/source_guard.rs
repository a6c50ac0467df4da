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
//! - **IPv6 prefixes.** Whoever holds one IPv6 address holds its /64, so
//!   an IPv6 source is counted under its prefix (`v6_prefix` bits, 64 by
//!   default) as well as its address: the credit is kept per prefix, and
//!   each kind of bucket above has a second bucket per prefix holding
//!   `prefix_share` times an address's budget (4 by default), so a flood
//!   from every address of a /64 gets what four addresses would. IPv4 (and
//!   IPv4-mapped IPv6) sources are counted per address, as before
//!   (`prefix.rs`).
//!
//! Trusted (GROEN) senders are exempt from the credit and the buckets above
//! but the verification budget; the engine decides who that is.

use alloc::string::String;

use crate::collections::HashMap;
use alloc::collections::VecDeque;
use core::net::IpAddr;
use core::time::Duration;

use serde::Serialize;
use tibet_ping::{RateLimitStats, RateLimiter, Timestamp};

use crate::prefix::{DEFAULT_V6_PREFIX, canonical_ip, source_prefix};
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
    /// Addresses with a bucket at once, per kind of work (4,096); as many
    /// IPv6 prefixes again.
    pub bucket_keys: usize,
    /// Interval over which drops (ROOD, replays, malformed, refused by a
    /// budget) are aggregated into one audit record per source (10 s).
    pub drop_interval: Duration,
    /// Sources counted apart per drop interval (1,024).
    pub drop_sources: usize,
    /// Leading bits of an IPv6 source that name its sender (64): credit,
    /// buckets and drop aggregation count an IPv6 source under this prefix.
    pub v6_prefix: u8,
    /// Budget of one IPv6 prefix's bucket, in addresses' budgets (4): each
    /// address of the prefix still gets at most one address's budget.
    pub prefix_share: f64,
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
            v6_prefix: DEFAULT_V6_PREFIX,
            prefix_share: 4.0,
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
    /// Reverse paths (relays) per IPv6 prefix.
    pub relay_prefixes: RateLimitStats,
    /// Beacon reviews per IPv6 prefix.
    pub beacon_prefixes: RateLimitStats,
    /// Audit records per IPv6 prefix.
    pub audit_prefixes: RateLimitStats,
    /// Signature checks per IPv6 prefix.
    pub verify_prefixes: RateLimitStats,
}

#[derive(Debug)]
struct Credit {
    bytes: u64,
    since: MonoTime,
}

/// One kind of work's buckets: per address, and per IPv6 prefix.
#[derive(Debug)]
struct Buckets {
    addr: RateLimiter<IpAddr>,
    prefix: RateLimiter<IpAddr>,
}

impl Buckets {
    fn new(burst: f64, rate: f64, share: f64, keys: usize) -> Self {
        let share = if share.is_finite() {
            share.max(1.0)
        } else {
            1.0
        };
        Buckets {
            addr: RateLimiter::new(burst, rate, keys),
            prefix: RateLimiter::new(burst * share, rate * share, keys),
        }
    }

    /// One token from `ip`'s bucket and, for IPv6, from its prefix's
    /// (`prefix`): both must have one. The prefix's is asked first, so a
    /// flood through fresh addresses empties it and nothing more.
    fn allow(&mut self, now: Timestamp, ip: IpAddr, prefix: IpAddr) -> bool {
        if prefix != ip && !self.prefix.allow(now, &prefix) {
            return false;
        }
        self.addr.allow(now, &ip)
    }

    fn tokens(&self, now: Timestamp, ip: IpAddr, prefix: IpAddr) -> f64 {
        let own = self.addr.tokens(now, &ip);
        if prefix == ip {
            own
        } else {
            own.min(self.prefix.tokens(now, &prefix))
        }
    }
}

/// Per-source amplification credit and fairness buckets; see the module
/// docs.
#[derive(Debug)]
pub struct SourceGuard {
    config: GuardConfig,
    /// Looked up for every datagram: a fast hasher with a random seed.
    /// Keyed by source prefix ([`SourceGuard::source_key`]).
    credit: HashMap<IpAddr, Credit, foldhash::fast::RandomState>,
    order: VecDeque<(IpAddr, MonoTime)>,
    relay: Buckets,
    relay_dids: RateLimiter<String>,
    beacons: Buckets,
    audit: Buckets,
    verify: Buckets,
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
        let c = &config;
        SourceGuard {
            relay: Buckets::new(c.relay_burst, c.relay_rate, c.prefix_share, c.bucket_keys),
            relay_dids: RateLimiter::new(config.relay_burst, config.relay_rate, config.bucket_keys),
            beacons: Buckets::new(c.beacon_burst, c.beacon_rate, c.prefix_share, c.bucket_keys),
            audit: Buckets::new(c.audit_burst, c.audit_rate, c.prefix_share, c.bucket_keys),
            verify: Buckets::new(c.verify_burst, c.verify_rate, c.prefix_share, c.bucket_keys),
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

    /// The key `ip` is counted under: its IPv6 prefix, or its IPv4 address.
    pub fn source_key(&self, ip: IpAddr) -> IpAddr {
        source_prefix(ip, self.config.v6_prefix)
    }

    /// `ip` in one family and its key.
    fn keys(&self, ip: IpAddr) -> (IpAddr, IpAddr) {
        (canonical_ip(ip), self.source_key(ip))
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
        let ip = self.source_key(ip);
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
        let ip = self.source_key(ip);
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

    /// Credit `ip` holds now (for IPv6: its prefix), in bytes.
    pub fn credit(&self, ip: IpAddr) -> u64 {
        self.credit.get(&self.source_key(ip)).map_or(0, |c| c.bytes)
    }

    /// One reverse path (relayed packet) for an untrusted sender at `ip`
    /// claiming `did`: both the address's and the DID's bucket must have a
    /// token.
    pub fn allow_relay(&mut self, now: MonoTime, ip: IpAddr, did: &str) -> bool {
        let (ip, prefix) = self.keys(ip);
        self.relay.allow(tick(now), ip, prefix) && self.relay_dids.allow(tick(now), did)
    }

    /// One beacon review for untrusted `ip`.
    pub fn allow_beacon(&mut self, now: MonoTime, ip: IpAddr) -> bool {
        let (ip, prefix) = self.keys(ip);
        self.beacons.allow(tick(now), ip, prefix)
    }

    /// One audit record caused by untrusted `ip`.
    pub fn allow_audit(&mut self, now: MonoTime, ip: IpAddr) -> bool {
        let (ip, prefix) = self.keys(ip);
        self.audit.allow(tick(now), ip, prefix)
    }

    /// One signature check for a packet from `ip` that is not at its DID's
    /// proven address: the address's bucket and the shared one must both
    /// have a token.
    pub fn allow_verify(&mut self, now: MonoTime, ip: IpAddr) -> bool {
        let (ip, prefix) = self.keys(ip);
        self.verify.allow(tick(now), ip, prefix) && self.verify_total.allow(tick(now), &())
    }

    /// The signature checks [`SourceGuard::allow_verify`] would grant `ip`
    /// now, as (its address's tokens, the shared tokens); spends nothing.
    pub fn verify_tokens(&self, now: MonoTime, ip: IpAddr) -> (f64, f64) {
        let (ip, prefix) = self.keys(ip);
        (
            self.verify.tokens(tick(now), ip, prefix),
            self.verify_total.tokens(tick(now), &()),
        )
    }

    /// Counters.
    pub fn stats(&self) -> GuardStats {
        GuardStats {
            credit_sources: self.credit.len(),
            relay: self.relay.addr.stats(),
            relay_dids: self.relay_dids.stats(),
            beacons: self.beacons.addr.stats(),
            audit: self.audit.addr.stats(),
            verify: self.verify.addr.stats(),
            verify_total: self.verify_total.stats(),
            relay_prefixes: self.relay.prefix.stats(),
            beacon_prefixes: self.beacons.prefix.stats(),
            audit_prefixes: self.audit.prefix.stats(),
            verify_prefixes: self.verify.prefix.stats(),
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

    fn v6(prefix: u16, host: u64) -> IpAddr {
        let net = (0x2001_0db8_u128 << 96) | (u128::from(prefix) << 64);
        IpAddr::from(core::net::Ipv6Addr::from(net | u128::from(host)))
    }

    #[test]
    fn a_flood_from_one_ipv6_prefix_gets_what_prefix_share_addresses_get() {
        let cfg = GuardConfig {
            beacon_burst: 8.0,
            beacon_rate: 0.5,
            prefix_share: 4.0,
            ..GuardConfig::default()
        };
        let mut g = SourceGuard::new(cfg);
        let t0 = MonoTime::from_secs(100);
        let granted = (0..10_000u64)
            .filter(|&h| g.allow_beacon(t0, v6(1, h + 1)))
            .count();
        assert_eq!(granted, 32, "four addresses' burst for the whole /64");
        assert!(
            g.allow_beacon(t0, v6(2, 1)),
            "another /64 keeps its own budget"
        );
        let one = (0..100).filter(|_| g.allow_beacon(t0, v6(3, 1))).count();
        assert_eq!(one, 8, "one address of a fresh /64: one address's burst");
        assert!(g.stats().beacon_prefixes.refused > 0);
    }

    #[test]
    fn credit_is_per_ipv6_prefix_and_mapped_ipv4_is_ipv4() {
        let mut g = SourceGuard::new(GuardConfig::default());
        let t0 = MonoTime::from_secs(100);
        g.earn(t0, v6(1, 1), 100);
        assert!(
            g.spend(t0, v6(1, 2), 150),
            "earned by one address of the /64, spent towards another"
        );
        assert!(!g.spend(t0, v6(1, 3), 51), "the /64 holds 50 bytes more");
        assert_eq!(g.credit(v6(2, 1)), 0, "another /64 earned nothing");
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        g.earn(t0, mapped, 10);
        assert_eq!(g.credit(ip(9)), 20, "one IPv4 source, either spelling");
        assert_eq!(g.source_key(v6(7, 99)), v6(7, 0));
    }
}
