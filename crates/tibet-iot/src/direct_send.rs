//! A request's datagram sent from the caller's thread.
//!
//! [`IoTNode::send_ping`](crate::IoTNode::send_ping) and its kin queue the
//! request's datagram in the engine. Handing it to the driver task costs a
//! wake-up of the driver's thread before the datagram is on the wire; on
//! loopback that hand-over is a good part of a round trip. So the caller,
//! holding the engine's lock, sends the engine's datagrams itself with one
//! non-blocking `sendto` each, and wakes the driver only when it must:
//!
//! - when a datagram could not go out at once (the socket's buffer is full,
//!   an error, a beacon for the multicast groups): it is handed to the
//!   driver, which sends it first, with its usual batching, retries and
//!   error accounting;
//! - when the driver already has datagrams waiting (the caller then sends
//!   nothing, and the driver keeps their order);
//! - when the request's deadline is earlier than the one the driver sleeps
//!   until (else its timeout would be noticed late).

use std::sync::Arc;

use socket2::{SockAddr, SockRef};
use tibet_iot_proto::{Engine, MonoTime, Transmit};
use tokio::net::UdpSocket;

use crate::batch;

/// The driver's socket as callers send on it, and what the driver told
/// them the last time it went to sleep.
#[derive(Debug)]
pub(crate) struct DirectSend {
    sock: Arc<UdpSocket>,
    /// The socket is IPv6 (dual-stack): IPv4 destinations go IPv4-mapped.
    v6: bool,
    /// Datagrams taken from the engine that a caller could not send; the
    /// driver sends them before the engine's next ones.
    handoff: Vec<Transmit>,
    /// The deadline the driver sleeps until.
    driver_deadline: Option<MonoTime>,
    /// Whether the driver has datagrams waiting to be sent.
    driver_backlog: bool,
}

impl DirectSend {
    pub(crate) fn new(sock: Arc<UdpSocket>) -> Self {
        let v6 = sock.local_addr().is_ok_and(|a| a.is_ipv6());
        DirectSend {
            sock,
            v6,
            handoff: Vec::new(),
            driver_deadline: None,
            driver_backlog: false,
        }
    }

    /// The driver is about to sleep until `deadline`, with `backlog`
    /// datagrams or none waiting.
    pub(crate) fn driver_sleeps(&mut self, deadline: Option<MonoTime>, backlog: bool) {
        self.driver_deadline = deadline;
        self.driver_backlog = backlog;
    }

    /// The datagrams callers handed over, for the driver to send first.
    pub(crate) fn take_handoff(&mut self) -> std::vec::Drain<'_, Transmit> {
        self.handoff.drain(..)
    }

    /// Sends what `engine` has to send; whether the driver must be woken
    /// (see the module docs), and how many datagrams left from here.
    pub(crate) fn send(&mut self, engine: &mut Engine) -> (bool, u64) {
        let sock = self.sock.clone();
        let v6 = self.v6;
        self.send_on(engine, SockRef::from(&*sock), v6)
    }

    /// [`DirectSend::send`] from another socket of the node's (`sock`,
    /// IPv6 if `v6`): a request socket's (request_socket.rs). What cannot
    /// leave from there is handed to the driver, as above.
    pub(crate) fn send_on(
        &mut self,
        engine: &mut Engine,
        sock: SockRef<'_>,
        v6: bool,
    ) -> (bool, u64) {
        let mut wake = self.driver_backlog;
        let mut sent_here = 0;
        if !wake {
            while let Some(t) = engine.poll_transmit() {
                let sent = self.handoff.is_empty()
                    && !t.destination.ip().is_multicast()
                    && send_to(&sock, v6, &t).is_ok();
                if sent {
                    sent_here += 1;
                } else {
                    self.handoff.push(t);
                    wake = true;
                }
            }
        }
        let wake = wake || earlier(engine.poll_timeout(), self.driver_deadline);
        (wake, sent_here)
    }
}

/// One non-blocking `sendto` on the socket itself: tokio's `try_send_to`
/// refuses until the reactor has seen the socket writable, which a fresh
/// or idle socket may not have been yet.
fn send_to(sock: &SockRef<'_>, v6: bool, t: &Transmit) -> std::io::Result<usize> {
    let to = SockAddr::from(batch::to_socket(t.destination, v6));
    sock.send_to(&t.payload, &to)
}

/// Whether deadline `new` comes before `asleep_until` (`None`: never).
fn earlier(new: Option<MonoTime>, asleep_until: Option<MonoTime>) -> bool {
    match (new, asleep_until) {
        (Some(n), Some(d)) => n < d,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_an_earlier_deadline_wakes_the_driver() {
        let t = |ms| Some(MonoTime::from_duration(Duration::from_millis(ms)));
        assert!(earlier(t(5), t(10)));
        assert!(!earlier(t(10), t(10)));
        assert!(!earlier(t(20), t(10)));
        assert!(earlier(t(20), None));
        assert!(!earlier(None, t(10)));
        assert!(!earlier(None, None));
    }
}
