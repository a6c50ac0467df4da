//! Where an inbound frame came from: a socket address, or the uplink.
//!
//! The engine's tables, events and audit records name a source by an
//! address ([`Source::addr`]); the uplink's is [`UPLINK_ADDR`]. Inside the
//! engine the two kinds are told apart by the type, never by comparing
//! addresses, and a [`Source::Udp`] is made only by [`Source::udp`], which
//! refuses the uplink's address: no datagram can pass for the uplink.

use core::net::SocketAddr;

use crate::uplink::UPLINK_ADDR;

/// Where an inbound frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A datagram from this address (never [`UPLINK_ADDR`]).
    Udp(SocketAddr),
    /// A frame from the uplink (docs/FLEETS.md).
    Uplink,
}

impl Source {
    /// The source of a datagram from `from`; `None` for [`UPLINK_ADDR`],
    /// which no socket can receive from and which names the uplink.
    pub(crate) fn udp(from: SocketAddr) -> Option<Source> {
        (from != UPLINK_ADDR).then_some(Source::Udp(from))
    }

    /// The address the engine's tables, events and audit records name this
    /// source by.
    pub(crate) fn addr(self) -> SocketAddr {
        match self {
            Source::Udp(addr) => addr,
            Source::Uplink => UPLINK_ADDR,
        }
    }

    /// Whether this is the uplink.
    pub(crate) fn is_uplink(self) -> bool {
        self == Source::Uplink
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_socket_address_makes_an_uplink_source() {
        assert_eq!(Source::udp(UPLINK_ADDR), None);
        let lan: SocketAddr = "192.0.2.7:7150".parse().unwrap();
        let source = Source::udp(lan).unwrap();
        assert!(!source.is_uplink());
        assert_eq!(source.addr(), lan);
        // The uplink's own address on another port is an ordinary source.
        let mut near = UPLINK_ADDR;
        near.set_port(1);
        assert!(!Source::udp(near).unwrap().is_uplink());
        assert!(Source::Uplink.is_uplink());
        assert_eq!(Source::Uplink.addr(), UPLINK_ADDR);
    }
}
