//! A socket of the caller's own for its requests, read by the caller.
//!
//! [`IoTNode::send_ping`] waits for an answer that the driver task reads
//! from the transport socket: the answer wakes the driver's thread, then
//! the driver wakes the caller's. An event loop of another runtime (Python's
//! asyncio, through the `tibet_iot` package) pays a third hand-over to reach
//! its own thread. A [`RequestSocket`] removes both: its requests leave from
//! a socket of its own (bound like the transport socket, on a free port),
//! whose descriptor the caller's event loop watches; when it is readable,
//! the loop calls [`RequestSocket::poll`], which reads the waiting datagrams
//! without blocking and hands them to the engine as the driver does
//! (identity checks, pins, matching to the request, peers, stats, audit,
//! events), and the request's [`Completion`] runs on that thread. One
//! wake-up per answer, of the thread that waits for it.
//!
//! Peers see the requests come from this socket's port, and may send to it
//! later (a heartbeat to the address they learnt, a ping): whatever arrives
//! here is handled like what arrives at the transport socket, and what the
//! engine sends in reply leaves from here, so the answer comes from the
//! address the peer sent to. Timeouts stay with the driver: a request that
//! gets no answer completes on the driver's thread at its deadline.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use socket2::SockRef;
use tibet_iot_proto::{Engine, Event, Now, RequestId, SendError, SendOptions};
use tibet_ping::JsonMap;
use tokio::sync::broadcast;

use crate::batch;
use crate::errqueue;
use crate::iot_node::{Completion, Shared, State, Waiter};

/// Datagrams read per [`RequestSocket::poll`], so one call stays short
/// under a flood (the rest wait for the next call).
const POLL_BATCH: usize = 64;

/// Room for the largest frame (64 KiB payload and its header) and more.
const BUF_BYTES: usize = 70_000;

/// A node's socket for requests whose answers the caller reads itself (see
/// the module docs); made by [`IoTNode::request_socket`](crate::IoTNode::request_socket).
/// Closed when dropped.
pub struct RequestSocket {
    shared: Arc<Shared>,
    events: broadcast::Sender<Event>,
    sock: std::net::UdpSocket,
    /// The socket is IPv6 (dual-stack): IPv4 destinations go IPv4-mapped.
    v6: bool,
    buf: Box<[u8]>,
    unreachable: Vec<SocketAddr>,
}

impl std::fmt::Debug for RequestSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSocket")
            .field("local_addr", &self.sock.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl RequestSocket {
    pub(crate) fn new(
        shared: Arc<Shared>,
        events: broadcast::Sender<Event>,
        sock: std::net::UdpSocket,
    ) -> io::Result<Self> {
        let v6 = sock.local_addr()?.is_ipv6();
        Ok(RequestSocket {
            shared,
            events,
            sock,
            v6,
            buf: vec![0u8; BUF_BYTES].into_boxed_slice(),
            unreachable: Vec::new(),
        })
    }

    /// The bound address (the port peers see this node's requests come from).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Waits up to `budget` for a datagram (or an ICMP error) to wait on the
    /// socket, by asking again and again without sleeping: for a caller
    /// that would rather spend that much CPU than be woken from idle by the
    /// answer (a sequential client on a fast link; the native client's
    /// `bench --poll spin` does the same). True when something is there to
    /// [`poll`](Self::poll); false at the end of the budget. Takes no lock.
    pub fn spin_until_readable(&self, budget: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        let mut probe = [0u8; 1];
        loop {
            match self.sock.peek_from(&mut probe) {
                Ok(_) => return true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error waits on the error queue: poll reads it.
                Err(_) => return true,
            }
            if start.elapsed() >= budget {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Pings `target` at `addr` from this socket; `done` gets the answer
    /// (see [`IoTNode::send_ping`](crate::IoTNode::send_ping) for what it
    /// can be), when a [`RequestSocket::poll`] reads it or, at the
    /// deadline, from the driver. An error here means `done` is never
    /// called.
    pub fn send_ping(
        &self,
        target: &str,
        addr: SocketAddr,
        intent: &str,
        purpose: &str,
        options: SendOptions,
        done: Completion,
    ) -> Result<RequestId, SendError> {
        self.request(
            |e, now| e.send_ping(now, target, addr, intent, purpose, options),
            done,
        )
    }

    /// Sends a heartbeat to `target` at `addr` from this socket; as
    /// [`RequestSocket::send_ping`].
    pub fn send_heartbeat(
        &self,
        target: &str,
        addr: SocketAddr,
        status: Option<JsonMap>,
        done: Completion,
    ) -> Result<RequestId, SendError> {
        self.request(|e, now| e.send_heartbeat(now, target, addr, status), done)
    }

    /// Forgets request `id` (its caller gave up): its completion is dropped
    /// uncalled.
    pub fn cancel(&self, id: RequestId) {
        let mut st = self.shared.lock();
        st.waiters.remove(&id);
        st.engine.cancel_request(id);
    }

    fn request(
        &self,
        make: impl FnOnce(&mut Engine, Now) -> Result<RequestId, SendError>,
        done: Completion,
    ) -> Result<RequestId, SendError> {
        let (id, wake) = {
            let mut guard = self.shared.lock();
            let st = &mut *guard;
            if !st.running {
                return Err(SendError::NotRunning);
            }
            // What the engine had queued before leaves as it would have.
            let (wake, sent) = st
                .direct
                .as_mut()
                .map_or((true, 0), |d| d.send(&mut st.engine));
            let id = make(&mut st.engine, self.shared.now())?;
            st.drain_audit(&self.shared.audit_dropped);
            st.waiters.insert(id, Waiter::Call(done));
            let (wake_too, sent_too) = self.send_here(st);
            self.shared
                .sent_direct
                .fetch_add(sent + sent_too, Ordering::Relaxed);
            (id, wake || wake_too)
        };
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(id)
    }

    /// Sends what the engine has to send from this socket; what cannot go
    /// goes to the driver. Whether the driver must be woken, and how many
    /// datagrams left from here.
    fn send_here(&self, st: &mut State) -> (bool, u64) {
        match st.direct.as_mut() {
            Some(d) => d.send_on(&mut st.engine, SockRef::from(&self.sock), self.v6),
            None => (true, 0),
        }
    }

    /// Handles what waits on the socket, without blocking: up to a batch of
    /// datagrams (answers complete their requests here, on this thread) and
    /// the ICMP errors (a request to a closed port completes with
    /// [`SendError::Unreachable`]). Returns the datagrams read. Call it
    /// whenever the descriptor is readable; a stopped node's datagrams are
    /// read and dropped.
    pub fn poll(&mut self) -> usize {
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        // What the engine had queued before (an operator's command the
        // driver has not flushed yet) leaves from the transport socket.
        let (mut wake, mut sent) = match (st.running, st.direct.as_mut()) {
            (true, Some(d)) => d.send(&mut st.engine),
            _ => (false, 0),
        };
        st.engine
            .set_events_enabled(self.events.receiver_count() > 0);
        let now = self.shared.now();
        let mut read = 0;
        for _ in 0..POLL_BATCH {
            match self.sock.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    read += 1;
                    if st.running {
                        let from = batch::canonical(from);
                        st.engine.handle_datagrams(now, &[(from, &self.buf[..n])]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error reported here is read from the queue below.
                Err(e) if errqueue::is_icmp_error(&e) => {}
                Err(_) => break,
            }
        }
        // ICMP errors: read them, then clear the pending one, so the
        // descriptor stops reporting it.
        errqueue::drain(&self.sock, |a| self.unreachable.push(a));
        let _ = self.sock.take_error();
        self.unreachable.sort_unstable();
        self.unreachable.dedup();
        for addr in self.unreachable.drain(..) {
            if st.running {
                st.engine.handle_unreachable(addr);
            }
        }
        if st.running {
            // Replies to what arrived here leave from here.
            let (wake_too, sent_too) = self.send_here(st);
            wake |= wake_too;
            sent += sent_too;
            st.drain_audit(&self.shared.audit_dropped);
            st.drain_uplink(&self.shared.uplink_dropped);
            st.dispatch_events(&self.events);
        }
        drop(guard);
        self.shared.sent_direct.fetch_add(sent, Ordering::Relaxed);
        if wake {
            self.shared.wake.notify_one();
        }
        read
    }
}

impl AsRawFd for RequestSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for RequestSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
