//! Batched datagram I/O for the driver: up to [`BATCH`] datagrams per
//! `recvmmsg` and per `sendmmsg` (through `nix`, no `unsafe` here), on the
//! tokio socket's readiness (`try_io`), so a busy node makes two syscalls per
//! batch instead of two per ping.
//!
//! Where the kernel offers UDP segmentation offload (Linux `UDP_SEGMENT`),
//! a run of datagrams to one destination with one length (the last may be
//! shorter) leaves in one `sendmsg` as one buffer, which the kernel (or the
//! network card) cuts into the same datagrams: the route, the IP layer and,
//! on loopback, the receiving socket's queue are passed once per run instead
//! of once per datagram. The receiver sees ordinary datagrams. A hub's
//! answers to one busy client are such runs (docs/PERFORMANCE-HISTORY.md,
//! "Segmented sends and a compact replay table").

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use tibet_iot_proto::Transmit;

use crate::segment;
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

/// Fewest datagrams worth a segmented send.
const GSO_MIN_RUN: usize = 2;

/// Reusable addresses for `sendmmsg` (headers per batch, as for receiving),
/// and whether segmented sends work on this socket.
pub(crate) struct SendBatch {
    addrs: Vec<Option<SockaddrStorage>>,
    gso: bool,
    segmented: u64,
    /// An IPv6 socket: IPv4 destinations leave as IPv4-mapped addresses.
    v6: bool,
}

impl SendBatch {
    /// A sender for `sock` that segments where the kernel says it can (it
    /// knows the `UDP_SEGMENT` option: Linux 4.18 and later; an older kernel
    /// would ignore the request and send one long datagram, so it is asked
    /// first) and stops at the first sign the device cannot.
    pub(crate) fn new(sock: &UdpSocket) -> Self {
        SendBatch {
            addrs: Vec::with_capacity(BATCH),
            gso: segment::supported(sock),
            segmented: 0,
            v6: sock.local_addr().is_ok_and(|a| a.is_ipv6()),
        }
    }

    /// A sender that never segments (the plain `sendmmsg` path).
    #[cfg(test)]
    fn without_gso() -> Self {
        SendBatch {
            addrs: Vec::with_capacity(BATCH),
            gso: false,
            segmented: 0,
            v6: false,
        }
    }

    /// Whether segmented sends are tried on this socket.
    pub(crate) fn segments(&self) -> bool {
        self.gso
    }

    /// Datagrams that left in segmented sends.
    pub(crate) fn segmented(&self) -> u64 {
        self.segmented
    }

    /// Sends from the front of `queue` without waiting: a run of datagrams
    /// that can go segmented (see the module docs) in one `sendmsg`, else up
    /// to [`BATCH`] datagrams in one `sendmmsg`, stopping before the next
    /// such run. Returns how many went out (at least one), `WouldBlock` when
    /// the socket is full, or the error of the first datagram (the caller
    /// counts and drops it).
    pub(crate) fn send(
        &mut self,
        sock: &UdpSocket,
        queue: &VecDeque<Transmit>,
    ) -> io::Result<usize> {
        if self.gso {
            let run = segment_run(queue, 0);
            if run >= GSO_MIN_RUN {
                match send_segmented(sock, queue, run, self.v6) {
                    Ok(()) => {
                        self.segmented += run as u64;
                        return Ok(run);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                    // No offload here (no UDP_SEGMENT, or a device without
                    // checksum offload): never again on this socket. Any
                    // other error is the destination's; the plain path
                    // below meets it again and reports it as usual.
                    Err(e) => {
                        if segment::unsupported(&e) {
                            self.gso = false;
                        }
                    }
                }
            }
        }
        let mut n = queue.len().min(BATCH);
        if self.gso {
            n = (1..n)
                .find(|&i| segment_run(queue, i) >= GSO_MIN_RUN)
                .unwrap_or(n);
        }
        self.send_plain(sock, queue, n)
    }

    /// The first `n` datagrams of `queue` in one `sendmmsg`.
    fn send_plain(
        &mut self,
        sock: &UdpSocket,
        queue: &VecDeque<Transmit>,
        n: usize,
    ) -> io::Result<usize> {
        self.addrs.clear();
        let v6 = self.v6;
        self.addrs.extend(
            queue
                .iter()
                .take(n)
                .map(|t| Some(SockaddrStorage::from(to_socket(t.destination, v6)))),
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

/// How many datagrams from `queue[from]` on can leave in one segmented
/// send: same unicast destination, same length (at most
/// [`segment::MAX_SEGMENT`]), except that the last may be shorter; at most
/// [`segment::MAX_SEGMENTS`] and 65,000 bytes in all.
fn segment_run(queue: &VecDeque<Transmit>, from: usize) -> usize {
    let Some(first) = queue.get(from) else {
        return 0;
    };
    let size = first.payload.len();
    let to = first.destination;
    if size == 0 || size > segment::MAX_SEGMENT || to.ip().is_multicast() || is_broadcast(to) {
        return 1;
    }
    let mut run = 1;
    let mut bytes = size;
    for t in queue.iter().skip(from + 1).take(segment::MAX_SEGMENTS - 1) {
        let len = t.payload.len();
        if t.destination != to || len > size || len == 0 || bytes + len > segment::MAX_BYTES {
            break;
        }
        run += 1;
        bytes += len;
        if len < size {
            break;
        }
    }
    run
}

fn is_broadcast(to: SocketAddr) -> bool {
    matches!(to, SocketAddr::V4(v4) if v4.ip().is_broadcast())
}

/// The first `run` datagrams of `queue` (see [`segment_run`]) in one
/// segmented send.
fn send_segmented(
    sock: &UdpSocket,
    queue: &VecDeque<Transmit>,
    run: usize,
    v6: bool,
) -> io::Result<()> {
    let first = &queue[0];
    let to = SockaddrStorage::from(to_socket(first.destination, v6));
    let slices: Vec<IoSlice<'_>> = queue
        .iter()
        .take(run)
        .map(|t| IoSlice::new(&t.payload))
        .collect();
    sock.try_io(Interest::WRITABLE, || {
        segment::send(
            sock,
            &slices,
            first.payload.len(),
            &to,
            MsgFlags::MSG_DONTWAIT,
        )
    })
}

/// The std form of a socket address from the kernel; an IPv4-mapped IPv6
/// address (an IPv4 peer of a dual-stack socket) is the IPv4 address, so a
/// peer is one address whichever socket heard it.
pub(crate) fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    if let Some(v6) = a.as_sockaddr_in6() {
        return Some(canonical(SocketAddr::V6(SocketAddrV6::from(*v6))));
    }
    None
}

/// `addr` in one family: an IPv4-mapped IPv6 address as IPv4.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// `addr` as a socket of the family `v6` takes it: an IPv4 address as
/// IPv4-mapped IPv6 on an IPv6 (dual-stack) socket.
pub(crate) fn to_socket(addr: SocketAddr, v6: bool) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v6 => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        _ => addr,
    }
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
        let mut out = SendBatch::new(&a);
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

    /// Sends all of `queue` from `a` the way the driver does (grouping the
    /// front first when segmenting) and returns what `b` received.
    async fn send_all(
        out: &mut SendBatch,
        a: &UdpSocket,
        b: &UdpSocket,
        queue: Vec<Transmit>,
    ) -> Vec<Vec<u8>> {
        let total = queue.len();
        let mut q = crate::send_queue::SendQueue::new(1024, 1 << 24);
        for t in queue {
            assert!(q.push(t).is_ok());
        }
        while !q.is_empty() {
            a.writable().await.unwrap();
            if out.segments() {
                q.group_front(BATCH);
            }
            match out.send(a, q.as_deque()) {
                Ok(n) => q.sent(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        let mut inb = RecvBatch::new();
        let mut seen = Vec::new();
        while seen.len() < total {
            tokio::time::timeout(std::time::Duration::from_secs(10), b.readable())
                .await
                .unwrap_or_else(|_| panic!("{} of {total} datagrams arrived", seen.len()))
                .unwrap();
            match inb.recv(b) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            }
            seen.extend(inb.datagrams().map(|(_, d)| d.to_vec()));
        }
        seen
    }

    /// Answers as a hub sends them: to two clients, interleaved, in two
    /// lengths per client, each datagram tagged by its first two bytes.
    fn answers(a: SocketAddr, b: SocketAddr) -> Vec<Transmit> {
        (0..120u16)
            .map(|i| Transmit {
                destination: if i % 3 == 0 { a } else { b },
                payload: {
                    let mut d = vec![b'x'; if i % 2 == 0 { 362 } else { 364 }];
                    d[..2].copy_from_slice(&i.to_be_bytes());
                    d
                }
                .into(),
            })
            .collect()
    }

    #[tokio::test]
    async fn segmented_sends_deliver_the_same_datagrams() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (to_b, to_c) = (b.local_addr().unwrap(), c.local_addr().unwrap());
        let sent = answers(to_b, to_c);
        let want = |to: SocketAddr| -> Vec<Vec<u8>> {
            let mut w: Vec<Vec<u8>> = sent
                .iter()
                .filter(|t| t.destination == to)
                .map(|t| t.payload.to_vec())
                .collect();
            w.sort();
            w
        };
        let (want_b, want_c) = (want(to_b), want(to_c));
        let mut out = SendBatch::new(&a);
        assert!(
            out.segments() || !cfg!(target_os = "linux"),
            "Linux 4.18+ segments UDP"
        );
        let (to_b_only, to_c_only): (Vec<_>, Vec<_>) =
            sent.into_iter().partition(|t| t.destination == to_b);
        for (queue, rx, want) in [(to_b_only, &b, want_b), (to_c_only, &c, want_c)] {
            let mut got = send_all(&mut out, &a, rx, queue).await;
            // Same datagrams, one by one, none merged or cut differently.
            assert!(got.iter().all(|d| d.len() == 362 || d.len() == 364));
            got.sort();
            assert_eq!(got, want);
        }
        if cfg!(target_os = "linux") {
            assert!(
                out.segmented() >= 100,
                "most went segmented: {}",
                out.segmented()
            );
        }
    }

    #[tokio::test]
    async fn without_segmentation_the_same_datagrams_go_one_by_one() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let sent = answers(to, to);
        let want: Vec<Vec<u8>> = sent.iter().map(|t| t.payload.to_vec()).collect();
        let mut out = SendBatch::without_gso();
        let got = send_all(&mut out, &a, &b, sent).await;
        assert_eq!(got, want, "in order");
        assert_eq!(out.segmented(), 0);
    }

    #[test]
    fn a_run_is_one_destination_one_length_and_a_shorter_last() {
        let to = |port: u16| -> SocketAddr { ([127, 0, 0, 1], port).into() };
        let q = |items: &[(u16, usize)]| -> VecDeque<Transmit> {
            items
                .iter()
                .map(|&(port, len)| Transmit {
                    destination: to(port),
                    payload: vec![0; len].into(),
                })
                .collect()
        };
        assert_eq!(segment_run(&q(&[(1, 9), (1, 9), (1, 9), (2, 9)]), 0), 3);
        assert_eq!(segment_run(&q(&[(1, 9), (1, 9), (1, 8), (1, 8)]), 0), 3);
        assert_eq!(segment_run(&q(&[(1, 9), (1, 10)]), 0), 1);
        assert_eq!(segment_run(&q(&[(1, 9), (1, 9)]), 1), 1);
        assert_eq!(segment_run(&q(&[(1, 9); 100]), 0), segment::MAX_SEGMENTS);
        assert_eq!(segment_run(&q(&[(1, segment::MAX_SEGMENT + 1); 3]), 0), 1);
        assert_eq!(
            segment_run(&q(&[(1, 1_200); 64]), 0),
            54,
            "65,000 bytes at most"
        );
        let multicast = Transmit {
            destination: "239.1.2.3:7150".parse().unwrap(),
            payload: vec![0; 9].into(),
        };
        let mc: VecDeque<Transmit> = vec![multicast.clone(), multicast].into();
        assert_eq!(segment_run(&mc, 0), 1, "beacons go one by one");
    }

    #[test]
    fn addresses_convert_both_ways() {
        for s in ["127.0.0.1:7150", "[::1]:7150", "[fe80::1%2]:9"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(to_std(&SockaddrStorage::from(a)), Some(a), "{s}");
        }
    }
}
