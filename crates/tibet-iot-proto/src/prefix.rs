//! Source prefixes: the key a per-source limit counts an address under, so
//! that an IPv6 sender cannot evade it by moving through its own prefix
//! (docs/SECURITY.md, per-source limits).
//!
//! Whoever holds one IPv6 address usually holds the whole /64 around it
//! (18 billion billion addresses): a limit per address alone bounds nothing.
//! Every per-source limit of the engine therefore counts an IPv6 source
//! under its prefix (the first [`GuardConfig::v6_prefix`] bits, 64 by
//! default) as well as under its full address. An IPv4 source, or an
//! IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket
//! reports for an IPv4 sender), counts under its IPv4 address alone.
//!
//! [`GuardConfig::v6_prefix`]: crate::GuardConfig::v6_prefix

use core::net::{IpAddr, Ipv6Addr};

/// The prefix length an IPv6 source is counted under by default.
pub const DEFAULT_V6_PREFIX: u8 = 64;

/// `ip` as one family: an IPv4-mapped IPv6 address is its IPv4 address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The key `ip` is counted under: an IPv4 address itself, an IPv6 address
/// with all but its first `v6_prefix` bits cleared (`v6_prefix` above 128
/// counts as 128).
pub fn source_prefix(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u32::from(v6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_counts_under_its_prefix_ipv4_under_itself() {
        assert_eq!(
            source_prefix(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), 64),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            source_prefix(ip("2001:db8:1:2:aaaa::1"), 48),
            ip("2001:db8:1::")
        );
        assert_eq!(source_prefix(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(source_prefix(ip("2001:db8::1"), 200), ip("2001:db8::1"));
        assert_eq!(source_prefix(ip("2001:db8::1"), 0), ip("::"));
        assert_eq!(source_prefix(ip("192.0.2.7"), 64), ip("192.0.2.7"));
    }

    #[test]
    fn a_mapped_ipv4_address_is_the_ipv4_address() {
        assert_eq!(source_prefix(ip("::ffff:192.0.2.7"), 64), ip("192.0.2.7"));
        assert_eq!(canonical_ip(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(canonical_ip(ip("2001:db8::7")), ip("2001:db8::7"));
    }
}
