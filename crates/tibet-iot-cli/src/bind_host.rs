//! [`BindHost`]: the address `listen` binds (`--bind`, `bind` in the
//! config): IPv4 or IPv6, and for an IPv6 link-local address the link it
//! is on (`fe80::10%eth0`, or `%2` by index), without which it cannot be
//! bound.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// An address to bind, with its IPv6 scope (interface index; 0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindHost {
    /// The address.
    pub ip: IpAddr,
    /// The interface index of a scoped IPv6 address (0: none).
    pub scope_id: u32,
}

impl BindHost {
    /// `::`: every address of both families.
    pub const ANY: BindHost = BindHost {
        ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        scope_id: 0,
    };

    /// Whether this binds loopback only.
    pub fn is_loopback(&self) -> bool {
        self.ip.is_loopback()
    }
}

impl From<IpAddr> for BindHost {
    fn from(ip: IpAddr) -> Self {
        BindHost { ip, scope_id: 0 }
    }
}

impl FromStr for BindHost {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some((ip, scope)) = s.split_once('%') else {
            return s.parse::<IpAddr>().map(BindHost::from).map_err(|_| {
                format!("'{s}' is not an IPv4 or IPv6 address (e.g. 0.0.0.0, ::, fe80::10%eth0)")
            });
        };
        let ip: Ipv6Addr = ip.parse().map_err(|_| {
            format!("'{s}': '{ip}' is not an IPv6 address (a scope follows only those)")
        })?;
        let scope_id = match scope.parse::<u32>() {
            Ok(index) if index > 0 => index,
            Ok(_) => return Err(format!("'{s}': the interface index must be 1 or more")),
            Err(_) => tibet_iot::interface_index(scope)
                .map_err(|e| format!("'{s}': no interface '{scope}' on this machine ({e})"))?,
        };
        Ok(BindHost {
            ip: IpAddr::V6(ip),
            scope_id,
        })
    }
}

impl fmt::Display for BindHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope_id {
            0 => self.ip.fmt(f),
            scope => write!(f, "{}%{scope}", self.ip),
        }
    }
}

impl<'de> Deserialize<'de> for BindHost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_both_families_and_a_scope() {
        assert_eq!(
            "0.0.0.0".parse::<BindHost>().unwrap().to_string(),
            "0.0.0.0"
        );
        assert_eq!("::".parse::<BindHost>().unwrap(), BindHost::ANY);
        let scoped: BindHost = "fe80::10%1".parse().unwrap();
        assert_eq!(
            (scoped.ip.to_string(), scoped.scope_id),
            ("fe80::10".into(), 1)
        );
        assert_eq!(scoped.to_string(), "fe80::10%1");
        let lo: BindHost = "fe80::10%lo".parse().unwrap();
        assert_eq!(lo.scope_id, 1, "lo is interface 1");
        for bad in [
            "10.0.0.1%eth0",
            "fe80::10%0",
            "fe80::10%no-such-if0",
            "host",
            "",
        ] {
            assert!(bad.parse::<BindHost>().is_err(), "{bad}");
        }
    }
}
