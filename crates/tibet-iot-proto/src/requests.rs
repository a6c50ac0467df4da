//! Outstanding requests: correlation by packet id, deadlines and resends.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::collections::HashMap;
use alloc::collections::BTreeSet;
use core::net::SocketAddr;

use crate::time::MonoTime;

use crate::retransmit::RetransmitState;

/// Identifies a request made through the engine; small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The raw number (unique per engine).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// Who waits for the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A caller: the answer or timeout becomes an event.
    Caller,
    /// The engine's own heartbeat: an answer only refreshes the peer.
    Background,
    /// A relay's check that a neighbour it routes through is still there:
    /// an answer refreshes the peer, no answer withdraws the routes through
    /// it (engine/router.rs).
    Probe,
}

#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) id: RequestId,
    pub(crate) kind: RequestKind,
    pub(crate) packet_id: String,
    pub(crate) target_did: String,
    pub(crate) addr: SocketAddr,
    /// Whether the target is addressed directly (its answer proves its address).
    pub(crate) direct: bool,
    pub(crate) deadline: MonoTime,
    pub(crate) next_due: MonoTime,
    pub(crate) retransmit: Option<RetransmitState>,
    /// The datagram, kept only when it may be resent.
    pub(crate) datagram: Option<Vec<u8>>,
    /// Further addresses the request went to (a bounded flood): their
    /// answers count too, and resends go to them as well.
    pub(crate) also: Vec<SocketAddr>,
    /// A mesh request sent along a learned route: on timeout the route is
    /// dropped and the ping is sent once more by flood.
    pub(crate) fallback: Option<Box<MeshFallback>>,
    /// The last answer the identity check refused
    /// ([`crate::SendError::AnswerRefused`]): the request stays open for an
    /// answer it accepts, and fails with this at its deadline.
    pub(crate) refused: Option<Box<crate::SendError>>,
}

/// What a routed mesh ping needs to be sent again by flood.
#[derive(Debug)]
pub(crate) struct MeshFallback {
    pub(crate) intent: String,
    pub(crate) purpose: String,
    pub(crate) ping: tibet_ping::PingOptions,
    pub(crate) retransmit: crate::retransmit::RetransmitPolicy,
    pub(crate) timeout: core::time::Duration,
}

/// What a due timer asks for.
#[derive(Debug)]
pub(crate) enum Due {
    /// Address, further addresses, the datagram, whether it is a mesh packet.
    Resend(SocketAddr, Vec<SocketAddr>, Vec<u8>, bool),
    TimedOut(Request),
}

#[derive(Debug, Default)]
pub(crate) struct Requests {
    /// Boxed: a hub's heartbeat round puts thousands of requests here at
    /// once, and a map keeps the capacity it grew to; boxed, that capacity
    /// costs 16 bytes a slot instead of a whole request.
    by_id: HashMap<RequestId, Box<Request>>,
    by_packet: HashMap<String, RequestId>,
    timers: BTreeSet<(MonoTime, RequestId)>,
    next_id: u64,
}

impl Requests {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn next_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    pub(crate) fn insert(&mut self, req: Request) {
        self.timers.insert((req.next_due, req.id));
        self.by_packet.insert(req.packet_id.clone(), req.id);
        self.by_id.insert(req.id, Box::new(req));
    }

    pub(crate) fn get_by_packet(&self, packet_id: &str) -> Option<&Request> {
        self.by_packet
            .get(packet_id)
            .and_then(|id| self.by_id.get(id))
            .map(|r| &**r)
    }

    pub(crate) fn get_mut_by_packet(&mut self, packet_id: &str) -> Option<&mut Request> {
        let id = self.by_packet.get(packet_id)?;
        self.by_id.get_mut(id).map(|r| &mut **r)
    }

    /// Removes the requests sent directly (and only) to `addr`.
    pub(crate) fn take_direct_to(&mut self, addr: SocketAddr) -> Vec<Request> {
        let ids: Vec<RequestId> = self
            .by_id
            .values()
            .filter(|r| r.direct && r.addr == addr && r.also.is_empty())
            .map(|r| r.id)
            .collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    pub(crate) fn packet_id(&self, id: RequestId) -> Option<&str> {
        self.by_id.get(&id).map(|r| r.packet_id.as_str())
    }

    pub(crate) fn remove(&mut self, id: RequestId) -> Option<Request> {
        let req = self.by_id.remove(&id)?;
        self.by_packet.remove(&req.packet_id);
        self.timers.remove(&(req.next_due, id));
        self.give_back_room();
        Some(*req)
    }

    /// Maps keep the capacity they grew to: once a burst (a hub's heartbeat
    /// round, one request per peer) has settled to a quarter of it, the
    /// room goes back. Amortised: a map shrinks at most once per halving.
    fn give_back_room(&mut self) {
        const KEPT: usize = 256;
        let len = self.by_id.len();
        if self.by_id.capacity() > KEPT && len < self.by_id.capacity() / 4 {
            self.by_id.shrink_to((len * 2).max(KEPT));
            self.by_packet.shrink_to((len * 2).max(KEPT));
        }
    }

    pub(crate) fn clear(&mut self) {
        self.by_id.clear();
        self.by_packet.clear();
        self.timers.clear();
    }

    pub(crate) fn poll_timeout(&self) -> Option<MonoTime> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// The next timer due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: MonoTime) -> Option<Due> {
        loop {
            let &(at, id) = self.timers.first()?;
            if at > now {
                return None;
            }
            self.timers.pop_first();
            let Some(req) = self.by_id.get_mut(&id) else {
                continue;
            };
            if req.next_due != at {
                continue;
            }
            if now >= req.deadline {
                let req = self.by_id.remove(&id).expect("present");
                self.by_packet.remove(&req.packet_id);
                self.give_back_room();
                return Some(Due::TimedOut(*req));
            }
            let (Some(st), Some(bytes)) = (req.retransmit.as_mut(), req.datagram.as_ref()) else {
                req.next_due = req.deadline;
                self.timers.insert((req.deadline, id));
                continue;
            };
            let bytes = bytes.clone();
            let next = match st.on_resend() {
                Some(wait) => (now + wait).min(req.deadline),
                None => req.deadline,
            };
            if next == req.deadline {
                req.retransmit = None;
            }
            req.next_due = next;
            self.timers.insert((next, id));
            return Some(Due::Resend(req.addr, req.also.clone(), bytes, !req.direct));
        }
    }
}
