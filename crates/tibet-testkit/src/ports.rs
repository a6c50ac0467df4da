//! [`free_udp_port`]: a port for a test's private socket.

/// A UDP port on 127.0.0.1 that was free a moment ago (for a private
/// discovery port or a peer's port, so tests never meet each other or a
/// real 7150/7151).
///
/// # Panics
/// If no socket can be bound on loopback.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a UDP socket on 127.0.0.1")
        .port()
}
