//! ICMP errors on the transport socket: a ping sent to a port where nothing
//! listens comes back as an ICMP "port unreachable", which tells a waiting
//! caller "nothing listens there" instead of letting it wait out its timeout.
//!
//! An unconnected UDP socket hears of ICMP errors only with `IP_RECVERR`
//! (`IPV6_RECVERR`): the kernel then queues each error, with the address the
//! failed datagram went to, on the socket's error queue, and also reports it
//! once as the result of the next receive or send call. [`drain`] reads the
//! queue (bounded per call); the driver fails the requests sent directly to
//! those addresses and retries a send that only carried such an error.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;

/// Error-queue entries read per [`drain`] call; the rest wait for the next
/// wake-up (the socket's error readiness stays set while any are queued).
pub(crate) const MAX_PER_DRAIN: usize = 64;

/// Asks the kernel to queue ICMP errors on `sock` (Linux `IP_RECVERR`).
/// Elsewhere an error: requests to a closed port then time out.
pub(crate) fn enable(sock: &impl AsFd, ipv6: bool) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::sys::socket::{setsockopt, sockopt};
        if ipv6 {
            setsockopt(sock, sockopt::Ipv6RecvErr, &true)?;
        } else {
            setsockopt(sock, sockopt::Ipv4RecvErr, &true)?;
        }
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (sock, ipv6);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Whether `e` is an ICMP error the kernel handed to a send or receive call
/// (the datagram it belongs to was sent earlier, maybe to another address).
pub(crate) fn is_icmp_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::ECONNREFUSED | Errno::EHOSTUNREACH | Errno::ENETUNREACH)
    )
}

/// Reads up to [`MAX_PER_DRAIN`] entries of the error queue of `sock`;
/// calls `unreachable` with the destination of each datagram that came back
/// as "port unreachable". Returns how many entries were read.
pub(crate) fn drain(sock: &impl AsRawFd, unreachable: impl FnMut(SocketAddr)) -> usize {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        drain_linux(sock.as_raw_fd(), unreachable)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (sock, unreachable);
        0
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn drain_linux(fd: std::os::fd::RawFd, mut unreachable: impl FnMut(SocketAddr)) -> usize {
    use nix::libc;
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    use std::io::IoSliceMut;
    let mut read = 0;
    // Only the headers matter; the datagram's bytes are cut short.
    let mut data = [0u8; 64];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    while read < MAX_PER_DRAIN {
        let mut iov = [IoSliceMut::new(&mut data)];
        let msg = match recvmsg::<SockaddrStorage>(
            fd,
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        };
        read += 1;
        let to = msg.address.as_ref().and_then(crate::batch::to_std);
        let Ok(cmsgs) = msg.cmsgs() else { continue };
        for c in cmsgs {
            let port_unreachable = match c {
                ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _) => {
                    is_port_unreachable(&e)
                }
                _ => false,
            };
            if let (true, Some(to)) = (port_unreachable, to) {
                unreachable(to);
            }
        }
    }
    read
}

/// ICMP "port unreachable" (type 3 code 3), or ICMPv6 "port unreachable"
/// (type 1 code 4); a dual-stack socket gets either.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_port_unreachable(e: &nix::libc::sock_extended_err) -> bool {
    use nix::libc;
    (e.ee_origin == libc::SO_EE_ORIGIN_ICMP && e.ee_type == 3 && e.ee_code == 3)
        || (e.ee_origin == libc::SO_EE_ORIGIN_ICMP6 && e.ee_type == 1 && e.ee_code == 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_to_a_closed_port_comes_back_as_unreachable() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = closed.local_addr().unwrap();
        drop(closed);
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&sock, false).unwrap();
        sock.send_to(b"x", dest).unwrap();
        // The ICMP error arrives on loopback within the send call's softirq;
        // a blocking receive returns it as ECONNREFUSED.
        sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let err = sock.recv_from(&mut [0u8; 8]).unwrap_err();
        assert!(is_icmp_error(&err), "{err}");
        let mut seen = Vec::new();
        assert_eq!(drain(&sock, |a| seen.push(a)), 1);
        assert_eq!(seen, [dest]);
        assert_eq!(drain(&sock, |_| {}), 0, "the queue is empty now");
    }
}
