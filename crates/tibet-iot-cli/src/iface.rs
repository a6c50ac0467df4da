//! [`MulticastIf`]: the interface discovery runs on (`--multicast-if`,
//! `[discovery] interface`), named by an IPv4 address of it, its name
//! (`eth0`) or its index (`2`). The IPv6 group is link-local, so on a host
//! with several links the name or index says which one.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// The interface for multicast discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MulticastIf {
    /// An IPv4 address of the interface (IPv4 discovery only: an address
    /// names no IPv6 link).
    Addr(Ipv4Addr),
    /// The interface's index.
    Index(u32),
    /// The interface's name.
    Name(String),
}

/// Longest interface name Linux accepts (`IFNAMSIZ` less the NUL).
const MAX_NAME: usize = 15;

impl FromStr for MulticastIf {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<Ipv4Addr>() {
            return Ok(MulticastIf::Addr(ip));
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<u32>() {
                Ok(i) if i > 0 => Ok(MulticastIf::Index(i)),
                _ => Err(format!("'{s}' is not an interface index (1 or more)")),
            };
        }
        let name_ok = !s.is_empty()
            && s.len() <= MAX_NAME
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b':' | b'%'));
        if name_ok {
            Ok(MulticastIf::Name(s.to_owned()))
        } else {
            Err(format!(
                "'{s}' is not an interface: expected an IPv4 address of it (192.168.1.10), \
                 its name (eth0) or its index (2)"
            ))
        }
    }
}

impl fmt::Display for MulticastIf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MulticastIf::Addr(ip) => ip.fmt(f),
            MulticastIf::Index(i) => i.fmt(f),
            MulticastIf::Name(n) => n.fmt(f),
        }
    }
}

impl<'de> Deserialize<'de> for MulticastIf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl MulticastIf {
    /// Whether this keeps discovery on the loopback interface.
    pub fn is_loopback(&self) -> bool {
        match self {
            MulticastIf::Addr(ip) => ip.is_loopback(),
            MulticastIf::Name(n) => n == "lo",
            MulticastIf::Index(_) => false,
        }
    }

    /// The IPv4 address (unspecified when not given) and the index (0 when
    /// not given) to configure; a name is looked up on this machine.
    pub fn resolve(&self) -> std::io::Result<(Ipv4Addr, u32)> {
        Ok(match self {
            MulticastIf::Addr(ip) => (*ip, 0),
            MulticastIf::Index(i) => (Ipv4Addr::UNSPECIFIED, *i),
            MulticastIf::Name(n) => (Ipv4Addr::UNSPECIFIED, tibet_iot::interface_index(n)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_an_index_or_a_name() {
        assert_eq!(
            "127.0.0.1".parse(),
            Ok(MulticastIf::Addr(Ipv4Addr::LOCALHOST))
        );
        assert_eq!("2".parse(), Ok(MulticastIf::Index(2)));
        assert_eq!("eth0".parse(), Ok(MulticastIf::Name("eth0".into())));
        assert_eq!(
            "wlp2s0.100".parse(),
            Ok(MulticastIf::Name("wlp2s0.100".into()))
        );
        for bad in [
            "",
            "0",
            "99999999999",
            "fe80::1",
            "a/b",
            "sixteen-chars-xx",
            "e th0",
        ] {
            assert!(bad.parse::<MulticastIf>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_resolve_on_this_machine() {
        let lo: MulticastIf = "lo".parse().unwrap();
        assert!(lo.is_loopback());
        assert_eq!(lo.resolve().unwrap(), (Ipv4Addr::UNSPECIFIED, 1));
        assert!(MulticastIf::Name("no-such-if0".into()).resolve().is_err());
        assert_eq!(
            MulticastIf::Index(3).resolve().unwrap(),
            (Ipv4Addr::UNSPECIFIED, 3)
        );
    }
}
