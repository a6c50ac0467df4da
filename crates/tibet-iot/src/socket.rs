//! Socket setup (socket2): the transport socket and the multicast discovery
//! socket. Only the driver calls these.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use tibet_iot_proto::TransportConfig;

const BUFFER_BYTES: usize = 4 << 20;

/// The transport socket: bound to the configured address, broadcast as
/// configured, and ready to send beacons to the multicast group (TTL, loop,
/// interface).
pub(crate) fn transport_socket(config: &TransportConfig) -> io::Result<std::net::UdpSocket> {
    let addr = config.bind_addr();
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Larger buffers absorb bursts; the kernel caps them at its limits.
    let _ = socket.set_recv_buffer_size(BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(BUFFER_BYTES);
    if config.broadcast {
        socket.set_broadcast(true)?;
    }
    if addr.is_ipv4() {
        socket.set_multicast_ttl_v4(config.multicast_ttl)?;
        socket.set_multicast_loop_v4(true)?;
        let iface = multicast_interface(config);
        if !iface.is_unspecified() {
            socket.set_multicast_if_v4(&iface)?;
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    // ICMP errors, so a ping to a closed port fails at once (errqueue.rs);
    // without them it only times out.
    if let Err(e) = crate::errqueue::enable(&socket, addr.is_ipv6()) {
        tracing::debug!(error = %e, "IP_RECVERR unavailable; unreachable ports will time out");
    }
    Ok(socket.into())
}

/// The interface for multicast: the configured one, else the bind address
/// when it is a specific IPv4 address.
fn multicast_interface(config: &TransportConfig) -> Ipv4Addr {
    match (config.multicast_interface, config.bind_host) {
        (i, _) if !i.is_unspecified() => i,
        (_, IpAddr::V4(v4)) if !v4.is_unspecified() => v4,
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

/// The discovery socket: `0.0.0.0:discovery_port` with `SO_REUSEADDR` and
/// `SO_REUSEPORT` (several nodes per host), member of the group, loop on.
pub(crate) fn discovery_socket(config: &TransportConfig) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    let _ = socket.set_recv_buffer_size(1 << 20);
    socket.set_nonblocking(true)?;
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), config.discovery_port);
    socket.bind(&addr.into())?;
    socket.join_multicast_v4(&config.multicast_group, &multicast_interface(config))?;
    socket.set_multicast_loop_v4(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_discovery_sockets_share_a_port() {
        let mut cfg = TransportConfig::loopback();
        let first = discovery_socket(&TransportConfig {
            discovery_port: 0,
            ..cfg.clone()
        })
        .expect("join the group on loopback");
        cfg.discovery_port = first.local_addr().unwrap().port();
        let second =
            discovery_socket(&cfg).expect("SO_REUSEPORT lets a second node bind the same port");
        assert_eq!(second.local_addr().unwrap().port(), cfg.discovery_port);
    }
}
