//! Socket setup (socket2): the transport socket and the multicast discovery
//! socket. Only the driver calls these.
//!
//! Bound to `::`, both are dual-stack (`IPV6_V6ONLY` off): one socket hears
//! IPv4 senders (as IPv4-mapped addresses, which the driver turns back into
//! IPv4 ones) and IPv6 senders, and each answer leaves on the family it was
//! asked on. On a host without IPv6, `::` falls back to `0.0.0.0`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use tibet_iot_proto::TransportConfig;

const BUFFER_BYTES: usize = 4 << 20;

/// The families a discovery socket listens on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Families {
    /// Member of the IPv4 group.
    pub(crate) v4: bool,
    /// Member of the IPv6 group.
    pub(crate) v6: bool,
}

/// The address to bind: `addr`, or `0.0.0.0` for `::` when the host has no
/// IPv6 at all.
fn usable(addr: SocketAddr) -> SocketAddr {
    if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        && Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).is_err()
    {
        tracing::info!("no IPv6 on this host; listening on IPv4 only");
        return SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
    }
    addr
}

/// A UDP socket for `addr`: dual-stack when `addr` is `::`.
fn udp_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(!addr.ip().is_unspecified())?;
    }
    Ok(socket)
}

/// The transport socket: bound to the configured address, broadcast as
/// configured, and ready to send beacons to the multicast groups (TTL or
/// hop limit, loop, interface).
pub(crate) fn transport_socket(config: &TransportConfig) -> io::Result<std::net::UdpSocket> {
    let addr = usable(config.bind_addr());
    let socket = udp_socket(addr)?;
    // Larger buffers absorb bursts; the kernel caps them at its limits.
    let _ = socket.set_recv_buffer_size(BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(BUFFER_BYTES);
    if config.broadcast {
        socket.set_broadcast(true)?;
    }
    let v4 = multicast_interface(config);
    if addr.is_ipv4() {
        socket.set_multicast_ttl_v4(config.multicast_ttl)?;
        socket.set_multicast_loop_v4(true)?;
        if !v4.is_unspecified() {
            socket.set_multicast_if_v4(&v4)?;
        }
    } else {
        socket.set_multicast_hops_v6(config.multicast_ttl)?;
        socket.set_multicast_loop_v6(true)?;
        if config.multicast_ifindex != 0 {
            socket.set_multicast_if_v6(config.multicast_ifindex)?;
        }
        if addr.ip().is_unspecified() {
            // IPv4 beacons from the dual-stack socket: Linux applies the
            // IPv4 options to its IPv4 half; elsewhere the defaults stand.
            let _ = socket.set_multicast_ttl_v4(config.multicast_ttl);
            let _ = socket.set_multicast_loop_v4(true);
            if !v4.is_unspecified() {
                let _ = socket.set_multicast_if_v4(&v4);
            }
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    // ICMP errors, so a ping to a closed port fails at once (errqueue.rs);
    // without them it only times out.
    if let Err(e) = crate::errqueue::enable(&socket, addr.is_ipv6()) {
        tracing::debug!(error = %e, "IP_RECVERR unavailable; unreachable ports will time out");
    }
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // The IPv4 half reports its ICMP errors as IPv4 ones.
        let _ = crate::errqueue::enable(&socket, false);
    }
    Ok(socket.into())
}

/// The interface for IPv4 multicast: the configured one, else the bind
/// address when it is a specific IPv4 address.
fn multicast_interface(config: &TransportConfig) -> Ipv4Addr {
    match (config.multicast_interface, config.bind_host) {
        (i, _) if !i.is_unspecified() => i,
        (_, IpAddr::V4(v4)) if !v4.is_unspecified() => v4,
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

/// The discovery socket on `discovery_port` with `SO_REUSEADDR` and
/// `SO_REUSEPORT` (several nodes per host), loop on, member of the groups of
/// the transport's families: the IPv4 group for an IPv4 transport, the IPv6
/// group for an IPv6 one, both for `::` (each where the host can join it;
/// an error only when it can join neither). With `127.0.0.1` as the
/// multicast interface, the IPv4 group only.
pub(crate) fn discovery_socket(
    config: &TransportConfig,
) -> io::Result<(std::net::UdpSocket, Families)> {
    let transport = usable(config.bind_addr());
    let wildcard: IpAddr = match transport {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let addr = SocketAddr::new(wildcard, config.discovery_port);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(!transport.ip().is_unspecified())?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    let _ = socket.set_recv_buffer_size(1 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let want_v4 = transport.is_ipv4() || transport.ip().is_unspecified();
    // An IPv4 loopback interface keeps discovery on this machine: the IPv6
    // group (link-local, on a real link) is left alone then.
    let want_v6 = transport.is_ipv6() && !multicast_interface(config).is_loopback();
    let mut joined = Families::default();
    let mut error = None;
    if want_v4 {
        let v4 = multicast_interface(config);
        let iface = if v4.is_unspecified() && config.multicast_ifindex != 0 {
            InterfaceIndexOrAddress::Index(config.multicast_ifindex)
        } else {
            InterfaceIndexOrAddress::Address(v4)
        };
        match socket.join_multicast_v4_n(&config.multicast_group, &iface) {
            Ok(()) => {
                joined.v4 = true;
                let _ = socket.set_multicast_loop_v4(true);
            }
            Err(e) => error = Some(e),
        }
    }
    if want_v6 {
        match socket.join_multicast_v6(&config.multicast_group_v6, config.multicast_ifindex) {
            Ok(()) => {
                joined.v6 = true;
                socket.set_multicast_loop_v6(true)?;
            }
            Err(e) => error = Some(e),
        }
    }
    match error {
        Some(e) if !joined.v4 && !joined.v6 => Err(e),
        Some(e) => {
            tracing::info!(error = %e, v4 = joined.v4, v6 = joined.v6,
                "discovery joined one family's group only");
            Ok((socket.into(), joined))
        }
        None => Ok((socket.into(), joined)),
    }
}

/// The index of the network interface `name` (`eth0`), for
/// `TransportConfig::multicast_ifindex` and scope ids.
pub fn interface_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_discovery_sockets_share_a_port() {
        let mut cfg = TransportConfig::loopback();
        let (first, _) = discovery_socket(&TransportConfig {
            discovery_port: 0,
            ..cfg.clone()
        })
        .expect("join the group on loopback");
        cfg.discovery_port = first.local_addr().unwrap().port();
        let (second, joined) =
            discovery_socket(&cfg).expect("SO_REUSEPORT lets a second node bind the same port");
        assert_eq!(second.local_addr().unwrap().port(), cfg.discovery_port);
        assert_eq!(
            joined,
            Families {
                v4: true,
                v6: false
            }
        );
    }

    #[test]
    fn the_unspecified_ipv6_address_listens_on_both_families() {
        let cfg = TransportConfig {
            bind_host: Ipv6Addr::UNSPECIFIED.into(),
            ..TransportConfig::loopback()
        };
        let sock = transport_socket(&cfg).expect("bind [::]:0");
        let port = sock.local_addr().unwrap().port();
        for (client, to) in [
            ("127.0.0.1:0", format!("127.0.0.1:{port}")),
            ("[::1]:0", format!("[::1]:{port}")),
        ] {
            let c = std::net::UdpSocket::bind(client).unwrap();
            c.send_to(b"hello", &to).unwrap();
            sock.set_nonblocking(false).unwrap();
            sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = sock.recv_from(&mut buf).expect("datagram on either family");
            assert_eq!(&buf[..n], b"hello");
            assert_eq!(from.ip().to_canonical(), c.local_addr().unwrap().ip());
        }
    }

    #[test]
    fn interface_names_resolve_to_indexes() {
        assert_eq!(interface_index("lo").expect("lo exists"), 1);
        assert!(interface_index("no-such-if0").is_err());
    }
}
