//! [`free_udp_port`]: a port for a test's private socket.

use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// Ports handed out lie below Linux's ephemeral range (32768-60999), so no
/// socket of a test running beside this one, bound to port 0, can take a
/// port between the check here and the test's own bind.
const FIRST: u32 = 20_000;
const COUNT: u32 = 12_000;

/// The next candidate of this process: processes start at different
/// places (their pid), and each walks the range.
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A UDP port that was free on both IPv4 and IPv6 a moment ago (for a
/// private discovery port or a peer's port, so tests never meet each other
/// or a real 7150/7151).
///
/// # Panics
/// If no port of the range can be bound.
pub fn free_udp_port() -> u16 {
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % COUNT,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT) as u16;
        // `[::]` is dual-stack: it binds only where the port is free on
        // IPv4 and IPv6 alike. Without IPv6, IPv4 alone says.
        let free = match UdpSocket::bind((Ipv6Addr::UNSPECIFIED, port)) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => false,
            Err(_) => UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok(),
        };
        if free {
            return port;
        }
    }
    panic!("no free UDP port in {FIRST}..{}", FIRST + COUNT)
}
