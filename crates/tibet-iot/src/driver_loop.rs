//! The driver task of an [`IoTNode`](crate::IoTNode): one task owns the
//! sockets and drives the engine (see `iot_node.rs` for the whole picture).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, oneshot};

use tibet_iot_proto::{Event, MonoTime, Transmit};

use crate::batch::{self, RecvBatch, SendBatch};
use crate::errqueue;
use crate::send_queue::SendQueue;
use crate::socket;

use crate::iot_node::{RECV_BATCH, Shared};

/// Sends retried per flush after a send call reported an earlier
/// datagram's ICMP error instead of sending.
const ICMP_SEND_RETRIES: u32 = 8;

/// Reads the ICMP errors queued on the transport socket (errqueue.rs) into
/// `unreachable`, and clears the socket's error readiness once the queue is
/// empty.
fn drain_icmp_errors(sock: &UdpSocket, unreachable: &mut Vec<SocketAddr>) {
    let _ = sock.try_io(Interest::ERROR, || {
        // The pending error was already reported (or is about to be read
        // from the queue): clear it so no later call reports it again.
        let _ = sock.take_error();
        if errqueue::drain(sock, |a| unreachable.push(a)) < errqueue::MAX_PER_DRAIN {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
}

fn to_instant(deadline: MonoTime, now: MonoTime) -> tokio::time::Instant {
    // Capped: a configured "forever" must not overflow the Instant; waking
    // once a day to find nothing due is harmless.
    let wait = deadline
        .saturating_duration_since(now)
        .min(std::time::Duration::from_secs(86_400));
    tokio::time::Instant::now() + wait
}

/// Where the engine's beacons go: the engine addresses them to the IPv4
/// group (`v4`); they leave to the group of each family the discovery socket
/// joined (with discovery off, to the IPv4 group as addressed).
pub(crate) struct Groups {
    pub(crate) v4: SocketAddr,
    pub(crate) v6: SocketAddr,
    pub(crate) families: Option<socket::Families>,
}

impl Groups {
    /// The groups on the discovery port in use.
    pub(crate) fn on_port(mut self, port: u16) -> Self {
        self.v4.set_port(port);
        self.v6.set_port(port);
        self
    }

    /// Queues `t` (a beacon: once per joined family); `refused` sees each
    /// datagram the queue refused.
    fn push(&self, outq: &mut SendQueue, t: Transmit, mut refused: impl FnMut(&Transmit)) {
        let mut push = |t: Transmit| {
            if let Err((_, t)) = outq.push(t) {
                refused(&t);
            }
        };
        let Some(families) = self.families.filter(|_| t.destination == self.v4) else {
            push(t);
            return;
        };
        if families.v6 {
            push(Transmit {
                destination: self.v6,
                payload: t.payload.clone(),
            });
        }
        if families.v4 {
            push(t);
        }
    }
}

pub(crate) async fn drive(
    shared: Arc<Shared>,
    sock: Arc<UdpSocket>,
    disc: Option<UdpSocket>,
    groups: Groups,
    events: broadcast::Sender<Event>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; 70_000];
    // Destinations that answered "port unreachable", for the engine.
    let mut unreachable: Vec<SocketAddr> = Vec::new();
    let mut inbatch = RecvBatch::new();
    let mut outbatch = SendBatch::new(&sock);
    let mut outq = {
        let st = shared.lock();
        let limits = &st.engine.config().limits;
        SendQueue::new(limits.send_queue, limits.send_queue_bytes)
    };
    loop {
        let (deadline, congested) = {
            let now = shared.now().mono;
            let mut st = shared.lock();
            let timeout = st.engine.poll_timeout();
            if let Some(direct) = st.direct.as_mut() {
                direct.driver_sleeps(timeout, !outq.is_empty());
            }
            let deadline = timeout.map(|d| to_instant(d, now));
            (deadline, st.audit_congested(Instant::now()))
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = shared.wake.notified() => {}
            // The audit thread stored a batch: room again, maybe.
            _ = shared.audit_progress.notify.notified() => {}
            r = sock.readable(), if !congested => { if r.is_err() { break } }
            r = async { disc.as_ref().expect("guarded").readable().await }, if disc.is_some() && !congested => {
                if r.is_err() { break }
            }
            _ = sock.writable(), if !outq.is_empty() => {}
            // ICMP errors (errqueue.rs): epoll reports them on any interest.
            r = sock.ready(Interest::ERROR) => { if r.is_err() { break } }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {}
        }
        let mut st = shared.lock();
        st.engine.set_events_enabled(events.receiver_count() > 0);
        let now = shared.now();
        // Backpressure (audit_worker.rs): while the audit path is behind,
        // nothing is read, so nothing is answered without its record;
        // datagrams wait in the socket's buffer.
        let congested = st.audit_congested(Instant::now());
        if congested {
            shared.audit_backpressure.fetch_add(1, Ordering::Relaxed);
        }
        // One batch, then timers and commands get their turn.
        let received = if congested {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            inbatch.recv(&sock)
        };
        match received {
            Ok(_) => {
                // One call per receive batch: signatures of pinned DIDs are
                // verified together (same decisions as one by one).
                let batch: Vec<_> = inbatch.datagrams().collect();
                st.engine.handle_datagrams(now, &batch);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // An ICMP error reported here is read from the error queue below.
            Err(e) if errqueue::is_icmp_error(&e) => {}
            Err(e) => tracing::debug!(error = %e, "recv error"),
        }
        drain_icmp_errors(&sock, &mut unreachable);
        // Each address once: the engine scans its requests per address.
        unreachable.sort_unstable();
        unreachable.dedup();
        for addr in unreachable.drain(..) {
            st.engine.handle_unreachable(addr);
        }
        if let Some(d) = disc.as_ref().filter(|_| !congested) {
            for _ in 0..RECV_BATCH / 4 {
                match d.try_recv_from(&mut buf) {
                    Ok((n, from)) => {
                        st.engine
                            .handle_discovery_datagram(now, batch::canonical(from), &buf[..n])
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => tracing::debug!(error = %e, "discovery recv error"),
                }
            }
        }
        if st.engine.poll_timeout().is_some_and(|t| t <= now.mono) {
            st.engine.handle_timeout(now);
        }
        // What callers handed over first (direct_send.rs), then the engine's.
        let handoff: Vec<Transmit> = st
            .direct
            .as_mut()
            .map(|d| d.take_handoff().collect())
            .unwrap_or_default();
        let mut transmits = handoff.into_iter();
        while let Some(t) = transmits.next().or_else(|| st.engine.poll_transmit()) {
            groups.push(&mut outq, t, |t| {
                shared.send_queue_dropped.fetch_add(1, Ordering::Relaxed);
                shared
                    .send_queue_bytes_dropped
                    .fetch_add(t.payload.len() as u64, Ordering::Relaxed);
            });
        }
        st.drain_audit(&shared.audit_dropped);
        st.drain_uplink(&shared.uplink_dropped);
        st.dispatch_events(&events);
        drop(st);
        // A segmented run per sendmsg, else up to a batch per sendmmsg
        // (batch.rs); an error belongs to the first datagram, which is
        // counted and dropped, except an ICMP error of an earlier datagram
        // that the kernel reports on this call (the send is tried again).
        let mut icmp_retries = 0;
        while !outq.is_empty() {
            if outbatch.segments() {
                outq.group_front(batch::BATCH);
            }
            match outbatch.send(&sock, outq.as_deque()) {
                Ok(n) => outq.sent(n.max(1)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if errqueue::is_icmp_error(&e) && icmp_retries < ICMP_SEND_RETRIES => {
                    icmp_retries += 1;
                    drain_icmp_errors(&sock, &mut unreachable);
                }
                Err(e) => {
                    shared.send_errors.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = outq.pop_front() else { break };
                    if t.destination.ip().is_multicast() {
                        // Beacons are rare (one a minute): say it loudly.
                        tracing::warn!(error = %e, to = %t.destination, "discovery beacon not sent (no multicast route?)");
                    } else {
                        tracing::debug!(error = %e, to = %t.destination, "send failed");
                    }
                }
            }
        }
        shared
            .sent_segmented
            .store(outbatch.segmented(), Ordering::Relaxed);
        if !unreachable.is_empty() {
            // Read while sending: the engine hears of them on the next turn.
            shared.wake.notify_one();
        }
    }
    // The socket closes with the driver.
    shared.lock().direct = None;
    // Graceful: flush what can go out without waiting.
    let v6 = sock.local_addr().is_ok_and(|a| a.is_ipv6());
    while let Some(t) = outq.pop_front() {
        let _ = sock.try_send_to(&t.payload, batch::to_socket(t.destination, v6));
    }
}
