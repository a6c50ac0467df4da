//! Batched datagram I/O for the driver: up to [`BATCH`] datagrams per
//! `recvmmsg` and per `sendmmsg` (through `nix`, no `unsafe` here), on the
//! tokio socket's readiness (`try_io`), so a busy node makes two syscalls per
//! batch instead of two per ping.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use tibet_iot_proto::Transmit;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per `recvmmsg` / `sendmmsg`: the driver's work limit per
/// wake-up on the transport socket.
pub(crate) const BATCH: usize = 64;
/// Receive slot per datagram: the largest UDP payload fits (IPv4 65,507,
/// IPv6 65,527 bytes). One allocation for all slots; the OS maps its pages
/// only when a datagram first touches them.
const SLOT: usize = 65_536;

/// Reusable buffers for `recvmmsg`. (nix's `MultiHeaders` is not `Send`,
/// so the headers are allocated per batch: two small allocations per up to
/// [`BATCH`] datagrams, the price of keeping the driver task `Send` without
/// `unsafe`.)
pub(crate) struct RecvBatch {
    buf: Vec<u8>,
    /// (length, sender) of each datagram of the last batch.
    got: Vec<(usize, Option<SocketAddr>)>,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        RecvBatch {
            buf: vec![0u8; BATCH * SLOT],
            got: Vec::with_capacity(BATCH),
        }
    }

    /// Receives up to [`BATCH`] datagrams without waiting: the count, or
    /// `WouldBlock` when none is queued. Tokio's readiness is cleared when
    /// the queue was emptied (none, or fewer than a batch, received).
    pub(crate) fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        let fd = sock.as_raw_fd();
        let (buf, got) = (&mut self.buf, &mut self.got);
        let r = sock.try_io(Interest::READABLE, || {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                buf.chunks_mut(SLOT).map(|b| [IoSliceMut::new(b)]).collect();
            let results = recvmmsg(
                fd,
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )?;
            // A truncated datagram (impossible with these slots) is passed
            // on as received: its frame length no longer matches, so the
            // decoder drops and counts it.
            got.extend(results.map(|r| (r.bytes, r.address.as_ref().and_then(to_std))));
            if got.len() < BATCH {
                // A short batch emptied the queue: report WouldBlock so tokio
                // clears the readiness now, saving the recvmmsg that would
                // only find EAGAIN. A datagram arriving meanwhile raises a
                // new readiness event, which this clear does not erase.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(got.len())
        });
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.got.is_empty() => {
                Ok(self.got.len())
            }
            r => r,
        }
    }

    /// The datagrams of the last batch with their senders (datagrams whose
    /// sender address could not be read are skipped).
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.got
            .iter()
            .zip(self.buf.chunks(SLOT))
            .filter_map(|((n, from), slot)| Some(((*from)?, &slot[..(*n).min(SLOT)])))
    }
}

/// Reusable addresses for `sendmmsg` (headers per batch, as for receiving).
pub(crate) struct SendBatch {
    addrs: Vec<Option<SockaddrStorage>>,
}

impl SendBatch {
    pub(crate) fn new() -> Self {
        SendBatch {
            addrs: Vec::with_capacity(BATCH),
        }
    }

    /// Sends the first [`BATCH`] datagrams of `queue` in one `sendmmsg`
    /// without waiting: how many went out (at least one), `WouldBlock` when
    /// the socket is full, or the error of the first datagram (the caller
    /// counts and drops it).
    pub(crate) fn send(
        &mut self,
        sock: &UdpSocket,
        queue: &VecDeque<Transmit>,
    ) -> io::Result<usize> {
        let n = queue.len().min(BATCH);
        self.addrs.clear();
        self.addrs.extend(
            queue
                .iter()
                .take(n)
                .map(|t| Some(SockaddrStorage::from(t.destination))),
        );
        let slices: Vec<[IoSlice<'_>; 1]> = queue
            .iter()
            .take(n)
            .map(|t| [IoSlice::new(&t.payload)])
            .collect();
        let fd = sock.as_raw_fd();
        let addrs = &self.addrs;
        let no_cmsgs: [ControlMessage<'_>; 0] = [];
        sock.try_io(Interest::WRITABLE, || {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(n, None);
            let sent = sendmmsg(
                fd,
                &mut headers,
                slices.iter(),
                addrs,
                no_cmsgs,
                MsgFlags::MSG_DONTWAIT,
            )?
            .count();
            Ok(sent)
        })
    }
}

/// The std form of a socket address from the kernel.
fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    if let Some(v6) = a.as_sockaddr_in6() {
        return Some(SocketAddr::V6(SocketAddrV6::from(*v6)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_goes_out_and_comes_back_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let queue: VecDeque<Transmit> = (0..100u8)
            .map(|i| Transmit {
                destination: to,
                payload: vec![i; 1 + usize::from(i)].into(),
            })
            .collect();
        let mut out = SendBatch::new();
        let mut queue = queue;
        while !queue.is_empty() {
            a.writable().await.unwrap();
            match out.send(&a, &queue) {
                Ok(n) => {
                    assert!((1..=BATCH).contains(&n));
                    queue.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        let mut inb = RecvBatch::new();
        let mut seen = Vec::new();
        while seen.len() < 100 {
            b.readable().await.unwrap();
            match inb.recv(&b) {
                Ok(n) => assert!(n <= BATCH),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            }
            for (from, d) in inb.datagrams() {
                assert_eq!(from, a.local_addr().unwrap());
                seen.push(d.to_vec());
            }
        }
        for (i, d) in seen.iter().enumerate() {
            assert_eq!(d, &vec![i as u8; 1 + i], "datagram {i}");
        }
        assert_eq!(
            inb.recv(&b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing more queued"
        );
    }

    #[test]
    fn addresses_convert_both_ways() {
        for s in ["127.0.0.1:7150", "[::1]:7150", "[fe80::1%2]:9"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(to_std(&SockaddrStorage::from(a)), Some(a), "{s}");
        }
    }
}
