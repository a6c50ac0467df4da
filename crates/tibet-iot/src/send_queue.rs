//! The driver's queue of datagrams waiting for the socket: bounded in count
//! and in bytes, with the byte count kept next to the queue so that every way
//! out (a `sendmmsg` batch, a failed datagram, the shutdown flush) gives its
//! bytes back.

use std::collections::VecDeque;

use tibet_iot_proto::Transmit;

/// Why [`SendQueue::push`] refused a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds its most datagrams.
    Full,
    /// The datagram would take the queue over its byte budget.
    OverBudget,
}

/// Datagrams in sending order, with their total payload bytes.
pub(crate) struct SendQueue {
    queue: VecDeque<Transmit>,
    bytes: usize,
    max_len: usize,
    max_bytes: usize,
}

impl SendQueue {
    /// An empty queue holding at most `max_len` datagrams and `max_bytes`
    /// payload bytes. Frames sent to several next hops share one buffer but
    /// count once per datagram here: the budget is what the socket must take.
    pub(crate) fn new(max_len: usize, max_bytes: usize) -> Self {
        SendQueue {
            queue: VecDeque::new(),
            bytes: 0,
            max_len,
            max_bytes,
        }
    }

    /// Queues `t` at the back, or refuses it (the caller counts the refusal).
    pub(crate) fn push(&mut self, t: Transmit) -> Result<(), (Refused, Transmit)> {
        if self.queue.len() >= self.max_len {
            return Err((Refused::Full, t));
        }
        if self.bytes + t.payload.len() > self.max_bytes {
            return Err((Refused::OverBudget, t));
        }
        self.bytes += t.payload.len();
        self.queue.push_back(t);
        Ok(())
    }

    /// Orders the first `window` datagrams by destination, and for each
    /// destination longest first, keeping the order of datagrams alike (a
    /// stable sort): datagrams that can leave in one segmented send become
    /// neighbours. UDP promises no order, and datagrams to one destination
    /// that are alike stay in order.
    pub(crate) fn group_front(&mut self, window: usize) {
        let window = window.min(self.queue.len());
        if window < 2 {
            return;
        }
        let key = |t: &Transmit| (t.destination, std::cmp::Reverse(t.payload.len()));
        let (head, _) = self.queue.as_mut_slices();
        if let Some(front) = head.get_mut(..window) {
            front.sort_by_key(key);
            return;
        }
        // The window wraps around the ring's end (rare): sort a copy.
        let mut front: Vec<Transmit> = self.queue.drain(..window).collect();
        front.sort_by_key(key);
        for t in front.into_iter().rev() {
            self.queue.push_front(t);
        }
    }

    /// The datagrams in sending order, for a `sendmmsg` batch.
    pub(crate) fn as_deque(&self) -> &VecDeque<Transmit> {
        &self.queue
    }

    /// Removes the first datagram (sent or given up on).
    pub(crate) fn pop_front(&mut self) -> Option<Transmit> {
        let t = self.queue.pop_front()?;
        self.bytes -= t.payload.len();
        Some(t)
    }

    /// Removes the first `n` datagrams (a batch the socket took; `n` is
    /// clamped to what is queued).
    pub(crate) fn sent(&mut self, n: usize) {
        for _ in 0..n {
            if self.pop_front().is_none() {
                break;
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Payload bytes queued.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(len: usize) -> Transmit {
        Transmit {
            destination: "127.0.0.1:9".parse().expect("address"),
            payload: vec![0u8; len].into(),
        }
    }

    #[test]
    fn every_way_out_gives_the_bytes_back() {
        let mut q = SendQueue::new(16, 1000);
        for _ in 0..10 {
            q.push(datagram(100)).expect("room");
        }
        assert_eq!(q.bytes(), 1000);
        assert_eq!(q.push(datagram(1)).unwrap_err().0, Refused::OverBudget);
        q.sent(4);
        assert_eq!(q.bytes(), 600);
        q.pop_front();
        assert_eq!(q.bytes(), 500);
        q.sent(100);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
        // The budget is whole again, round after round.
        for _ in 0..100 {
            for _ in 0..10 {
                q.push(datagram(100)).expect("room after sending");
            }
            q.sent(10);
        }
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn grouping_makes_alike_datagrams_neighbours_in_their_order() {
        let to = |port: u16| -> std::net::SocketAddr { ([127, 0, 0, 1], port).into() };
        // (destination port, length, tag)
        let items = [
            (2, 5, 0),
            (1, 5, 1),
            (2, 7, 2),
            (2, 5, 3),
            (1, 5, 4),
            (3, 1, 5),
        ];
        // Once in a fresh queue, once where the window wraps around the
        // ring's end.
        for rotate in [0, 6] {
            let mut q = SendQueue::new(16, 1 << 20);
            for _ in 0..rotate {
                q.push(datagram(1)).expect("room");
            }
            q.sent(rotate);
            for (port, len, tag) in items {
                q.push(Transmit {
                    destination: to(port),
                    payload: vec![tag; len].into(),
                })
                .expect("room");
            }
            if rotate > 0 {
                assert!(!q.queue.as_slices().1.is_empty(), "wraps");
            }
            q.group_front(5);
            let order: Vec<(u16, usize, u8)> = q
                .as_deque()
                .iter()
                .map(|t| (t.destination.port(), t.payload.len(), t.payload[0]))
                .collect();
            assert_eq!(
                order,
                [
                    (1, 5, 1),
                    (1, 5, 4),
                    (2, 7, 2),
                    (2, 5, 0),
                    (2, 5, 3),
                    (3, 1, 5)
                ],
                "the sixth is outside the window"
            );
            assert_eq!(q.bytes(), 28, "no bytes lost or gained");
        }
    }

    #[test]
    fn the_count_cap_refuses_before_the_byte_budget() {
        let mut q = SendQueue::new(2, 1 << 20);
        q.push(datagram(1)).expect("room");
        q.push(datagram(1)).expect("room");
        assert_eq!(q.push(datagram(1)).unwrap_err().0, Refused::Full);
    }
}
