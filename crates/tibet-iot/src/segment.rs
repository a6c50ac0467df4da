//! UDP segmentation offload (Linux `UDP_SEGMENT`): several datagrams of one
//! length to one destination handed to the kernel as one buffer, which it
//! (or the network card) cuts into the same datagrams. The receiver sees
//! ordinary datagrams. Used by the driver (`batch.rs`) for runs of answers
//! (docs/PERFORMANCE-HISTORY.md, "Segmented sends and a compact replay
//! table").

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::sys::socket::SockaddrStorage;

/// Most datagrams in one segmented send (the kernel's limit is 64 on older
/// kernels, 128 on newer ones).
pub(crate) const MAX_SEGMENTS: usize = 64;
/// Largest datagram sent segmented: a segment must fit the path's MTU, and
/// 1,200 bytes of payload fit every IPv4 and IPv6 link of at least 1,280
/// bytes. Longer datagrams go out one by one.
pub(crate) const MAX_SEGMENT: usize = 1_200;
/// Most bytes in one segmented send (a UDP datagram's limit, with room for
/// headers).
pub(crate) const MAX_BYTES: usize = 65_000;

/// Whether the kernel knows `UDP_SEGMENT` on this socket (Linux 4.18 and
/// later). Ask before the first segmented send: an older kernel would
/// ignore the request and send one long datagram.
pub(crate) fn supported(sock: &impl AsFd) -> bool {
    #[cfg(target_os = "linux")]
    {
        nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::UdpGsoSegment).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = sock;
        false
    }
}

/// Errors that mean the socket or its device cannot segment: `EIO` (a
/// device without checksum offload), `ENOPROTOOPT` / `EOPNOTSUPP` (no
/// `UDP_SEGMENT`). Stop segmenting on this socket after one of these.
pub(crate) fn unsupported(e: &io::Error) -> bool {
    [Errno::EIO, Errno::ENOPROTOOPT, Errno::EOPNOTSUPP]
        .iter()
        .any(|&errno| e.raw_os_error() == Some(errno as i32))
}

/// Sends `datagrams` to `to` in one `sendmsg` with `UDP_SEGMENT`: all of
/// one length `segment` (at most [`MAX_SEGMENT`]) except that the last may
/// be shorter, at most [`MAX_SEGMENTS`] and [`MAX_BYTES`] in all (the
/// kernel refuses more). All leave or none.
pub(crate) fn send(
    sock: &impl AsRawFd,
    datagrams: &[IoSlice<'_>],
    segment: usize,
    to: &SockaddrStorage,
    flags: nix::sys::socket::MsgFlags,
) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let segment = u16::try_from(segment).map_err(|_| Errno::EMSGSIZE)?;
        nix::sys::socket::sendmsg(
            sock.as_raw_fd(),
            datagrams,
            &[nix::sys::socket::ControlMessage::UdpGsoSegments(&segment)],
            flags,
            Some(to),
        )?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (sock, datagrams, segment, to, flags);
        Err(Errno::ENOPROTOOPT.into())
    }
}
