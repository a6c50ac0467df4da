//! The bench's load loop: one thread, one UDP socket, up to `concurrency`
//! pings in flight. Pings leave in batches (`sendmmsg`), answers are read
//! in batches (`recvmmsg`) by the same loop, so the client costs a few
//! syscalls per batch rather than a task wake-up per ping. With one ping in
//! flight it busy-polls for the answer (by default) so that the round trip
//! measures the listener, not the client's own wake-up.
//!
//! Each in-flight ping owns a slot; its packet id spells (run tag, slot,
//! generation), so an answer is matched in O(1) and an answer that comes
//! after its ping was declared lost is recognised as late, not counted.

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
#[cfg(any(target_os = "linux", target_os = "android"))]
use nix::sys::socket::{recvmsg, setsockopt, sockopt};
use tibet_ping::{Frame, PacketCodec};

use crate::bench_wire::{PingTemplate, answered_id, is_response, iso_now_bytes};
use crate::rtt_stats::Rtts;

/// Datagrams per `sendmmsg`/`recvmmsg`.
const BATCH: usize = 64;
/// Receive buffer per datagram.
const RX_BUF: usize = 8192;
/// How long a blocking receive waits before the loop looks at timeouts,
/// the clock and Ctrl-C.
const TICK: Duration = Duration::from_millis(5);
/// How long a busy-polling receive spins before it blocks.
const SPIN: Duration = Duration::from_millis(2);
/// Every this many answers, one is decoded in full and checked.
const CHECK_EVERY: u64 = 1024;
/// With nothing answered, stop after this long at the latest.
const GIVE_UP: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The listener.
    pub(crate) addr: SocketAddr,
    /// Local port (0: any).
    pub(crate) port: u16,
    /// Pings in flight at once.
    pub(crate) concurrency: usize,
    /// Stop after this many pings (when no duration is given).
    pub(crate) count: Option<u64>,
    /// Stop sending after this long.
    pub(crate) duration: Option<Duration>,
    /// A ping without answer after this long is lost.
    pub(crate) timeout: Duration,
    /// Busy-poll for answers instead of blocking.
    pub(crate) spin: bool,
    /// The encoded ping.
    pub(crate) template: PingTemplate,
    /// The codec of the frames (for the sampled full decode).
    pub(crate) codec: PacketCodec,
}

/// What a run counted.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Pings sent.
    pub(crate) sent: u64,
    /// Pings answered in time.
    pub(crate) answered: u64,
    /// Pings without answer within the timeout.
    pub(crate) lost: u64,
    /// Pings the socket refused to send.
    pub(crate) errors: u64,
    /// Pings still in flight when the run was interrupted.
    pub(crate) in_flight: u64,
    /// Answers that came after their ping was counted lost.
    pub(crate) late: u64,
    /// Responses that answer none of our pings, or a sampled answer that
    /// did not decode as one.
    pub(crate) invalid: u64,
    /// Datagrams that are not responses (e.g. the listener's heartbeats to
    /// its known peers, which include this client after 30 s).
    pub(crate) unsolicited: u64,
    /// Round-trip times of the answered pings.
    pub(crate) rtts: Rtts,
    /// From the first send to the last answer (or to the end of sending,
    /// whichever is later); waiting out lost pings is not counted.
    pub(crate) elapsed: Duration,
    /// ICMP errors that came back for our pings (port unreachable: nothing
    /// listens at the address).
    pub(crate) unreachable: u64,
    /// Stopped because nothing was answered.
    pub(crate) gave_up: bool,
    /// Stopped by Ctrl-C.
    pub(crate) interrupted: bool,
}

#[derive(Clone, Copy)]
struct Slot {
    generation: u32,
    sent_at: Option<Instant>,
}

fn socket(plan: &Plan) -> Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let (domain, local) = match plan.addr {
        SocketAddr::V4(_) => (
            Domain::IPV4,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, plan.port)),
        ),
        SocketAddr::V6(_) => (
            Domain::IPV6,
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, plan.port)),
        ),
    };
    let s = Socket::new(domain, Type::DGRAM, None).context("cannot open a UDP socket")?;
    // Room for a whole window of answers (the kernel caps it at rmem_max).
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&local.into())
        .with_context(|| format!("cannot bind {local} (check --port)"))?;
    s.set_read_timeout(Some(TICK))?;
    // ICMP errors come back to an unconnected socket only with IP_RECVERR
    // (Linux); they tell "nothing listens there" from a silent drop.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = match plan.addr {
        SocketAddr::V4(_) => setsockopt(&s, sockopt::Ipv4RecvErr, &true),
        SocketAddr::V6(_) => setsockopt(&s, sockopt::Ipv6RecvErr, &true),
    };
    Ok(s.into())
}

/// Whether `e` reports an ICMP error of an earlier ping.
fn is_icmp_error(e: Errno) -> bool {
    matches!(
        e,
        Errno::ECONNREFUSED | Errno::EHOSTUNREACH | Errno::ENETUNREACH
    )
}

/// Reads the ICMP errors queued on the socket (bounded per call) and
/// returns how many; the bench sends to one address only, so each is about
/// it. Unread, they would take the room of answers in the receive buffer.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn drain_icmp_errors(fd: std::os::fd::RawFd) -> u64 {
    let mut n = 0;
    let mut buf = [0u8; 64];
    while n < 1024 {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(
            fd,
            &mut iov,
            None,
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(_) => n += 1,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    n
}

/// Without `IP_RECVERR` no ICMP error is queued.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn drain_icmp_errors(_fd: std::os::fd::RawFd) -> u64 {
    0
}

/// Runs the load until the count or duration is done, nothing is answered
/// (see [`Tally::gave_up`]), or `stop` is set; `bar` shows progress.
pub(crate) fn run(plan: Plan, stop: Arc<AtomicBool>, bar: ProgressBar) -> Result<Tally> {
    let sock = socket(&plan)?;
    let fd = sock.as_raw_fd();
    let dest = Some(SockaddrStorage::from(plan.addr));
    let c = plan.concurrency;
    let tag = u64::from(rand::random::<u16>()) << 48;
    let nonce_key: u64 = rand::random();
    let mut nonce_seq: u64 = 0;
    let mut slots = vec![
        Slot {
            generation: 0,
            sent_at: None
        };
        c
    ];
    let mut free: Vec<usize> = (0..c).rev().collect();
    let mut tx_bufs = vec![plan.template.frame().to_vec(); BATCH.min(c)];
    let mut tx_slots: Vec<usize> = Vec::with_capacity(BATCH);
    // No more answers can be pending than pings in flight (bar stray datagrams).
    let rx_batch = BATCH.min(c);
    let mut rx_bufs = vec![[0u8; RX_BUF]; rx_batch];
    let mut rx_lens: Vec<usize> = Vec::with_capacity(rx_batch);
    let mut tx_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut rx_headers = MultiHeaders::<SockaddrStorage>::preallocate(rx_batch, None);
    let addrs = vec![dest; BATCH];
    let no_cmsgs: [ControlMessage<'_>; 0] = [];

    let mut t = Tally::default();
    let started = Instant::now();
    let send_until = plan.duration.map(|d| started + d);
    let first_window = plan.count.map_or(c as u64, |n| n.min(c as u64));
    let mut ts = iso_now_bytes();
    let mut last_tick = started;
    let mut last_answer = started;
    let mut sending_ended: Option<Instant> = None;
    let mut in_flight = 0usize;
    let mut now = started;
    loop {
        // Send: fill every free slot, in batches.
        let may_send = sending_ended.is_none();
        while may_send && !free.is_empty() {
            tx_slots.clear();
            while tx_slots.len() < tx_bufs.len() {
                if plan
                    .count
                    .is_some_and(|n| t.sent + t.errors + tx_slots.len() as u64 >= n)
                {
                    break;
                }
                let Some(slot) = free.pop() else { break };
                let s = &mut slots[slot];
                s.generation = s.generation.wrapping_add(1);
                let id = tag | (slot as u64) << 32 | u64::from(s.generation);
                nonce_seq += 1;
                plan.template.patch(
                    &mut tx_bufs[tx_slots.len()],
                    id,
                    [nonce_key, nonce_seq],
                    &ts,
                );
                tx_slots.push(slot);
            }
            if tx_slots.is_empty() {
                break;
            }
            let sent_at = Instant::now();
            let slices: Vec<[IoSlice<'_>; 1]> = tx_bufs[..tx_slots.len()]
                .iter()
                .map(|b| [IoSlice::new(b)])
                .collect();
            let sent = match sendmmsg(
                fd,
                &mut tx_headers,
                slices.iter(),
                &addrs[..tx_slots.len()],
                no_cmsgs,
                MsgFlags::empty(),
            ) {
                Ok(results) => results.count(),
                Err(e) if is_icmp_error(e) => {
                    // An earlier ping's ICMP error, reported instead of
                    // sending; the batch is tried again on the next turn.
                    t.unreachable += drain_icmp_errors(fd);
                    0
                }
                Err(e) => {
                    tracing::debug!("bench sendmmsg failed: {e}");
                    0
                }
            };
            for (i, &slot) in tx_slots.iter().enumerate() {
                if i < sent {
                    slots[slot].sent_at = Some(sent_at);
                    in_flight += 1;
                } else {
                    free.push(slot);
                }
            }
            t.sent += sent as u64;
            if sent < tx_slots.len() {
                // A short batch: most often an earlier ping's ICMP error
                // stopped it (the kernel reports it on the next datagram);
                // those pings are sent again, other failures are counted.
                let icmp = drain_icmp_errors(fd);
                t.unreachable += icmp;
                if icmp == 0 {
                    t.errors += (tx_slots.len() - sent) as u64;
                }
                break;
            }
        }
        if plan.count.is_some_and(|n| t.sent + t.errors >= n) && sending_ended.is_none() {
            sending_ended = Some(now);
        }

        // Receive: one batch, blocking (or spinning) for the first datagram.
        rx_lens.clear();
        if in_flight > 0 {
            let spin_until = plan.spin.then(|| Instant::now() + SPIN);
            loop {
                let spinning = spin_until.is_some_and(|end| Instant::now() < end);
                let flags = if spinning {
                    MsgFlags::MSG_DONTWAIT
                } else {
                    MsgFlags::MSG_WAITFORONE
                };
                let mut iovs: Vec<[IoSliceMut<'_>; 1]> = rx_bufs
                    .iter_mut()
                    .map(|b| [IoSliceMut::new(&mut b[..])])
                    .collect();
                match recvmmsg(fd, &mut rx_headers, iovs.iter_mut(), flags, None) {
                    Ok(results) => {
                        rx_lens.extend(results.map(|r| r.bytes));
                        break;
                    }
                    Err(Errno::EAGAIN | Errno::EINTR) if spinning => std::hint::spin_loop(),
                    Err(Errno::EAGAIN | Errno::EINTR) => break,
                    Err(e) if is_icmp_error(e) => {
                        // A port unreachable (IP_RECVERR): the ping is lost,
                        // which the timeout will count.
                        t.unreachable += drain_icmp_errors(fd);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!("bench recvmmsg failed: {e}");
                        break;
                    }
                }
            }
        } else if sending_ended.is_none() {
            // Nothing in flight yet nothing could be sent: the socket refused.
            std::thread::sleep(TICK);
        }
        now = Instant::now();
        for (i, &len) in rx_lens.iter().enumerate() {
            let frame = &rx_bufs[i][..len];
            if !is_response(frame) {
                t.unsolicited += 1;
                continue;
            }
            let Some(id) = answered_id(frame).filter(|id| id & (0xffff << 48) == tag) else {
                t.invalid += 1;
                continue;
            };
            let slot = ((id >> 32) & 0xffff) as usize;
            let generation = id as u32;
            let Some(s) = slots.get_mut(slot) else {
                t.invalid += 1;
                continue;
            };
            match s.sent_at {
                Some(sent_at) if s.generation == generation => {
                    if t.answered % CHECK_EVERY == 0 && !answers(&plan.codec, frame, id) {
                        t.invalid += 1;
                    }
                    t.rtts.push(now.saturating_duration_since(sent_at));
                    t.answered += 1;
                    s.sent_at = None;
                    in_flight -= 1;
                    free.push(slot);
                    last_answer = now;
                }
                _ => t.late += 1,
            }
        }

        // Housekeeping, at most once per tick.
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            ts = iso_now_bytes();
            for (slot, s) in slots.iter_mut().enumerate() {
                if let Some(sent_at) = s.sent_at
                    && now.duration_since(sent_at) >= plan.timeout
                {
                    s.sent_at = None;
                    t.lost += 1;
                    in_flight -= 1;
                    free.push(slot);
                }
            }
            if send_until.is_some_and(|end| now >= end) && sending_ended.is_none() {
                sending_ended = Some(now);
            }
            let elapsed = now.duration_since(started);
            match plan.duration {
                Some(_) => bar.set_position(elapsed.as_secs()),
                None => bar.set_position(t.answered),
            }
            bar.set_message(format!("answered {}, lost {}", t.answered, t.lost));
            // Nothing answered and the address said "port unreachable":
            // nothing listens there, no need to wait out the timeout.
            let refused = t.unreachable > 0;
            if t.answered == 0 && (refused || t.lost >= first_window || elapsed >= GIVE_UP) {
                t.gave_up = true;
                break;
            }
            if stop.load(Ordering::Relaxed) {
                t.interrupted = true;
                break;
            }
        }
        if sending_ended.is_some() && in_flight == 0 {
            break;
        }
    }
    t.in_flight = in_flight as u64;
    let end = sending_ended.unwrap_or(now).max(last_answer);
    t.elapsed = end.duration_since(started);
    Ok(t)
}

/// Whether `frame` decodes in full as a response to the packet id `id`.
fn answers(codec: &PacketCodec, frame: &[u8], id: u64) -> bool {
    match codec.decode(frame) {
        Ok(Frame::Response(r)) => r.in_response_to == format!("ping_{id:016x}"),
        _ => false,
    }
}
