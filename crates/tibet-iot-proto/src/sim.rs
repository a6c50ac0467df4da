//! [`Sim`]: a deterministic network of [`Engine`]s on a virtual clock.
//!
//! Nodes are keyed by address ([`addr`]`(i)`, DID [`did`]`(i)`). Directed
//! [`Link`]s decide who hears whom, each with latency, jitter and loss; a
//! link can be cut and healed (partitions). Multicast reaches every node the
//! sender has a link to. Everything random (engine seeds, loss, jitter) comes
//! from the one seed, and every table the simulation iterates is ordered, so
//! a scenario run twice with the same seed transmits the same bytes at the
//! same virtual instants ([`Sim::record_wire`]).
//!
//! ```
//! use std::time::Duration;
//! use tibet_iot_proto::SendOptions;
//! use tibet_iot_proto::sim::{Sim, addr, did};
//!
//! let mut sim = Sim::new(1);
//! sim.add(0, Sim::config());
//! sim.add(1, Sim::config());
//! sim.link(0, 1);
//! sim.trust_all(2);
//! let now = sim.now();
//! let id = sim
//!     .node(0)
//!     .send_ping(now, &did(1), addr(1), "x", "y", SendOptions::default())
//!     .unwrap();
//! sim.run_for(Duration::from_secs(1));
//! assert!(sim.outcome(0, id).unwrap().is_some());
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tibet_ping::{PingResponse, Timestamp};

mod churn;
pub mod scenario;
mod trace;

use crate::config::TransportConfig;
use crate::engine::Engine;
use crate::event::Event;
use crate::requests::RequestId;
use crate::time::{MonoTime, Now};

/// The address of node `i` (`10.w.x.y:7150`: 250 nodes per `/24`, `w` 0
/// below 64,000 nodes).
pub fn addr(i: usize) -> SocketAddr {
    let net = i / 250;
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(
            10,
            (net / 256) as u8,
            (net % 256) as u8,
            (i % 250 + 1) as u8,
        )),
        7150,
    )
}

/// The node index of [`addr`]`(i)`: its inverse, `None` for an address
/// [`addr`] does not give.
pub(crate) fn index(a: SocketAddr) -> Option<usize> {
    let IpAddr::V4(v4) = a.ip() else {
        return None;
    };
    let [10, w, x, y @ 1..=250] = v4.octets() else {
        return None;
    };
    (a.port() == 7150).then(|| (usize::from(w) * 256 + usize::from(x)) * 250 + usize::from(y) - 1)
}

/// The key of the link from node `a` to node `b` in [`Sim`]'s links.
fn link_key(a: usize, b: usize) -> (u32, u32) {
    let id = |i: usize| u32::try_from(i).expect("node index beyond u32");
    (id(a), id(b))
}

/// The DID of node `i` (`jis:sim:n<i>`).
pub fn did(i: usize) -> String {
    format!("jis:sim:n{i}")
}

/// One direction of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// Fixed delay.
    pub latency: Duration,
    /// Uniform extra delay, 0 up to this (exclusive).
    pub jitter: Duration,
    /// Probability that a datagram is lost (0..1).
    pub loss: f64,
}

impl Default for Link {
    /// 1 ms latency, up to 1 ms jitter, no loss.
    fn default() -> Self {
        Link {
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
            loss: 0.0,
        }
    }
}

/// A datagram put on the wire (recorded with [`Sim::record_wire`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// When it was sent.
    pub at: MonoTime,
    /// Sender.
    pub from: SocketAddr,
    /// Destination as the sender addressed it (may be a multicast group).
    pub to: SocketAddr,
    /// The bytes.
    pub bytes: Vec<u8>,
}

struct InFlight {
    at: MonoTime,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    discovery: bool,
    /// Shared by every copy of one transmit (a beacon reaches each
    /// neighbour; a routed datagram may go out twice).
    bytes: Bytes,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A simulated network of engines.
pub struct Sim {
    now: MonoTime,
    wall_origin: Timestamp,
    rng: StdRng,
    /// Boxed: an engine is ~12 KB inline, and a B-tree's partly filled
    /// nodes would hold slack for several.
    nodes: BTreeMap<SocketAddr, Box<Engine>>,
    /// Directed links by (from, to) node index ([`index`]; in the order of
    /// their addresses, since [`addr`] grows with the index). `None` is the
    /// default link: it always equals `default_link`, which changes only by
    /// [`Sim::set_loss`], and that changes every link. 16 bytes an entry
    /// where address pairs and a `Link` took 104 (per node 2.5 KB of a
    /// 2,000-node mesh, docs/PERFORMANCE.md). Looked up per datagram, so
    /// hashed (the maps the simulation walks are ordered; this one it only
    /// looks up).
    links: HashMap<(u32, u32), Option<Box<Link>>>,
    /// Each node's outgoing links' ends by node index, in address order:
    /// where its multicast goes, in the order its losses are drawn.
    adjacent: HashMap<u32, Vec<u32>>,
    cut: BTreeSet<(SocketAddr, SocketAddr)>,
    default_link: Link,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    sent: u64,
    sent_bytes: u64,
    events: VecDeque<(MonoTime, SocketAddr, Event)>,
    wire: Option<Vec<Datagram>>,
    /// Nodes touched since the last flush (their outputs may be pending).
    dirty: BTreeSet<SocketAddr>,
    /// Each node's next deadline as last scheduled in `timers`.
    scheduled: HashMap<SocketAddr, MonoTime>,
    /// Deadlines; an entry is stale unless `scheduled` still names it.
    timers: BinaryHeap<Reverse<(MonoTime, SocketAddr)>>,
    /// Per node: (virtual second, bytes sent in it).
    rate: HashMap<SocketAddr, (u64, u64)>,
    /// Most bytes one node sent in one virtual second.
    peak_rate: u64,
    /// DIDs given by [`Sim::add_named`] (else [`did`]`(i)`).
    names: BTreeMap<usize, String>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// An empty network; everything random derives from `seed`. Virtual
    /// wall-clock time starts at 2026-11-26T11:00:00Z.
    pub fn new(seed: u64) -> Sim {
        Sim {
            now: MonoTime::ZERO,
            wall_origin: Timestamp::from_secs(1_795_690_800),
            rng: StdRng::seed_from_u64(seed),
            nodes: BTreeMap::new(),
            links: HashMap::new(),
            adjacent: HashMap::new(),
            cut: BTreeSet::new(),
            default_link: Link::default(),
            queue: BinaryHeap::new(),
            seq: 0,
            sent: 0,
            sent_bytes: 0,
            events: VecDeque::new(),
            wire: None,
            dirty: BTreeSet::new(),
            scheduled: HashMap::new(),
            timers: BinaryHeap::new(),
            rate: HashMap::new(),
            peak_rate: 0,
            names: BTreeMap::new(),
        }
    }

    /// The DID of node `i`: the one given to [`Sim::add_named`], else
    /// [`did`]`(i)`.
    pub fn did_of(&self, i: usize) -> String {
        self.names.get(&i).cloned().unwrap_or_else(|| did(i))
    }

    /// The defaults with discovery off (scenarios turn it on when needed).
    pub fn config() -> TransportConfig {
        TransportConfig {
            discovery_enabled: false,
            ..TransportConfig::default()
        }
    }

    /// Both virtual clocks.
    pub fn now(&self) -> Now {
        Now::new(
            self.now,
            self.wall_origin + self.now.saturating_duration_since(MonoTime::ZERO),
        )
    }

    /// The simulation's RNG (for scenarios that draw topologies).
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Datagrams sent so far (before loss).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Bytes of the datagrams sent so far (before loss; payloads only).
    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes
    }

    /// Adds node `i` at [`addr`]`(i)` as [`did`]`(i)`, started now.
    pub fn add(&mut self, i: usize, config: TransportConfig) -> SocketAddr {
        let name = self.did_of(i);
        self.add_named(i, name, config)
    }

    /// Adds node `i` at [`addr`]`(i)` as `name`, started now ([`Sim::link`]
    /// and [`Sim::trust_all`] use that name from now on). A shared config
    /// (`Arc<TransportConfig>`) is not copied per node.
    pub fn add_named(
        &mut self,
        i: usize,
        name: String,
        config: impl Into<Arc<TransportConfig>>,
    ) -> SocketAddr {
        let seed = self.rng.r#gen();
        if name != did(i) {
            self.names.insert(i, name.clone());
        }
        let mut e = Engine::new_shared(name, config.into(), seed);
        e.set_local(7150, SocketAddr::from(([224, 0, 71, 50], 7151)));
        e.start(self.now());
        self.nodes.insert(addr(i), Box::new(e));
        self.dirty.insert(addr(i));
        addr(i)
    }

    /// Whether node `i` is in the network (added and not killed).
    pub fn is_alive(&self, i: usize) -> bool {
        self.nodes.contains_key(&addr(i))
    }

    /// Removes node `i` (it dies): datagrams to it are lost from now on.
    pub fn kill(&mut self, i: usize) {
        self.nodes.remove(&addr(i));
        self.scheduled.remove(&addr(i));
        self.dirty.remove(&addr(i));
    }

    /// The most bytes one node put on the wire within one virtual second
    /// (each second counted from the virtual start).
    pub fn peak_bytes_per_node_second(&self) -> u64 {
        self.peak_rate
    }

    /// Node `i`'s engine.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn node(&mut self, i: usize) -> &mut Engine {
        self.dirty.insert(addr(i));
        self.nodes.get_mut(&addr(i)).expect("no such node")
    }

    /// Every engine, by address.
    pub fn engines(&self) -> impl Iterator<Item = (&SocketAddr, &Engine)> {
        self.nodes.iter().map(|(a, e)| (a, &**e))
    }

    /// Mesh datagrams the nodes sent so far (pings' copies, resends and
    /// answers; no heartbeats or beacons).
    pub fn mesh_datagrams(&self) -> u64 {
        let now = self.now();
        self.engines()
            .map(|(_, e)| e.stats(now).routes.mesh_datagrams)
            .sum()
    }

    /// A link both ways with the default properties; each side learns the
    /// other as a peer.
    pub fn link(&mut self, a: usize, b: usize) {
        self.connect(a, b);
        self.connect(b, a);
        let now = self.now();
        let (da, db) = (self.did_of(a), self.did_of(b));
        self.node(a).add_peer(now, &db, addr(b));
        self.node(b).add_peer(now, &da, addr(a));
    }

    /// A link from `a` to `b` only, with the default properties; no peers.
    pub fn connect(&mut self, a: usize, b: usize) {
        self.insert_link(a, b, None);
    }

    /// Puts a datagram on the wire from any address (a spoofed source, a
    /// host that is not a node) to node `to`, arriving now; `discovery`
    /// delivers it to the discovery socket. For adversarial scenarios.
    pub fn inject(&mut self, from: SocketAddr, to: usize, bytes: Vec<u8>, discovery: bool) {
        self.seq += 1;
        self.queue.push(Reverse(InFlight {
            at: self.now,
            seq: self.seq,
            from,
            to: addr(to),
            discovery,
            bytes: bytes.into(),
        }));
    }

    /// Sets the properties of the link from `a` to `b` (creating it).
    pub fn set_link(&mut self, a: usize, b: usize, link: Link) {
        self.insert_link(a, b, Some(Box::new(link)));
    }

    /// Adds or replaces the link from `a` to `b` (`None`: the default).
    fn insert_link(&mut self, a: usize, b: usize, link: Option<Box<Link>>) {
        let (a, b) = link_key(a, b);
        if self.links.insert((a, b), link).is_none() {
            let ends = self.adjacent.entry(a).or_default();
            let at = ends.partition_point(|e| *e < b);
            ends.insert(at, b);
        }
    }

    /// Sets the loss of every link, present and future.
    pub fn set_loss(&mut self, loss: f64) {
        self.default_link.loss = loss;
        for l in self.links.values_mut().flatten() {
            l.loss = loss;
        }
    }

    /// Partitions `a` from `b` (both ways) until [`Sim::heal`]; datagrams
    /// already in flight still arrive.
    pub fn cut(&mut self, a: usize, b: usize) {
        self.cut.insert((addr(a), addr(b)));
        self.cut.insert((addr(b), addr(a)));
    }

    /// Ends a partition made by [`Sim::cut`].
    pub fn heal(&mut self, a: usize, b: usize) {
        self.cut.remove(&(addr(a), addr(b)));
        self.cut.remove(&(addr(b), addr(a)));
    }

    /// Every node trusts every other among the first `n` at 0.9.
    pub fn trust_all(&mut self, n: usize) {
        let now = self.now();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let dj = self.did_of(j);
                    self.node(i).set_trust(now, &dj, 0.9);
                }
            }
        }
    }

    /// Starts (or stops) recording every datagram put on the wire.
    pub fn record_wire(&mut self, on: bool) {
        self.wire = on.then(Vec::new);
    }

    /// The datagrams recorded since [`Sim::record_wire`].
    pub fn wire(&self) -> &[Datagram] {
        self.wire.as_deref().unwrap_or_default()
    }

    /// Events of all nodes so far: (when, which node, what).
    pub fn events(&self) -> &VecDeque<(MonoTime, SocketAddr, Event)> {
        &self.events
    }

    fn usable(&self, from: SocketAddr, to: SocketAddr) -> Option<Link> {
        if self.cut.contains(&(from, to)) {
            return None;
        }
        let (a, b) = (index(from)?, index(to)?);
        let link = self.links.get(&link_key(a, b))?;
        Some(link.as_deref().copied().unwrap_or(self.default_link))
    }

    /// Moves every queued transmit onto the wire, collects events and
    /// reschedules the timers of the nodes touched since the last flush.
    fn flush(&mut self) {
        let addrs = std::mem::take(&mut self.dirty);
        for from in addrs {
            if !self.nodes.contains_key(&from) {
                continue;
            }
            while let Some(t) = self.nodes.get_mut(&from).expect("node").poll_transmit() {
                self.sent += 1;
                self.sent_bytes += t.payload.len() as u64;
                let second = self.now.saturating_duration_since(MonoTime::ZERO).as_secs();
                let r = self.rate.entry(from).or_insert((second, 0));
                if r.0 != second {
                    *r = (second, 0);
                }
                r.1 += t.payload.len() as u64;
                self.peak_rate = self.peak_rate.max(r.1);
                if let Some(w) = self.wire.as_mut() {
                    w.push(Datagram {
                        at: self.now,
                        from,
                        to: t.destination,
                        bytes: t.payload.to_vec(),
                    });
                }
                let multicast = t.destination.ip().is_multicast();
                let targets: Vec<(SocketAddr, Link)> = if multicast {
                    let ends = index(from)
                        .and_then(|f| u32::try_from(f).ok())
                        .and_then(|f| self.adjacent.get(&f));
                    ends.into_iter()
                        .flatten()
                        .map(|&b| addr(b as usize))
                        .filter_map(|b| self.usable(from, b).map(|l| (b, l)))
                        .collect()
                } else {
                    self.usable(from, t.destination)
                        .map(|l| (t.destination, l))
                        .into_iter()
                        .collect()
                };
                for (to, link) in targets {
                    if self.rng.gen_bool(link.loss.clamp(0.0, 1.0)) {
                        continue;
                    }
                    let jitter_us = u64::try_from(link.jitter.as_micros()).unwrap_or(u64::MAX);
                    let jitter = Duration::from_micros(if jitter_us == 0 {
                        0
                    } else {
                        self.rng.gen_range(0..jitter_us)
                    });
                    self.seq += 1;
                    self.queue.push(Reverse(InFlight {
                        at: self.now + link.latency + jitter,
                        seq: self.seq,
                        from,
                        to,
                        discovery: multicast,
                        bytes: t.payload.clone(),
                    }));
                }
            }
            let e = self.nodes.get_mut(&from).expect("node");
            while let Some(ev) = e.poll_event() {
                self.events.push_back((self.now, from, ev));
            }
            match e.poll_timeout() {
                Some(t) => {
                    if self.scheduled.insert(from, t) != Some(t) {
                        self.timers.push(Reverse((t, from)));
                    }
                }
                None => {
                    self.scheduled.remove(&from);
                }
            }
        }
    }

    /// The earliest live deadline, dropping stale heap entries.
    fn next_timer(&mut self) -> Option<MonoTime> {
        while let Some(Reverse((t, a))) = self.timers.peek().copied() {
            if self.scheduled.get(&a) == Some(&t) {
                return Some(t);
            }
            self.timers.pop();
        }
        None
    }

    /// Runs until virtual time `end`: delivers datagrams and fires timers in
    /// time order.
    pub fn run_until(&mut self, end: MonoTime) {
        loop {
            self.flush();
            let next_packet = self.queue.peek().map(|r| r.0.at);
            let next_timer = self.next_timer();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now();
            while self.queue.peek().is_some_and(|r| r.0.at <= self.now) {
                let p = self.queue.pop().expect("peeked").0;
                if let Some(e) = self.nodes.get_mut(&p.to) {
                    self.dirty.insert(p.to);
                    if p.discovery {
                        e.handle_discovery_datagram(now, p.from, &p.bytes);
                    } else {
                        e.handle_datagram(now, p.from, &p.bytes);
                    }
                }
            }
            let mut due = BTreeSet::new();
            while let Some(t) = self.next_timer() {
                if t > now.mono {
                    break;
                }
                let Reverse((_, a)) = self.timers.pop().expect("peeked");
                self.scheduled.remove(&a);
                due.insert(a);
            }
            for a in due {
                if let Some(e) = self.nodes.get_mut(&a) {
                    self.dirty.insert(a);
                    if e.poll_timeout().is_some_and(|t| t <= now.mono) {
                        e.handle_timeout(now);
                    }
                }
            }
        }
        self.now = self.now.max(end);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// The answer (`Some(Some(_))`) or timeout or failure (`Some(None)`) of request `id`
    /// made at node `at`, taken out of the events; `None` while undecided.
    pub fn outcome(&mut self, at: usize, id: RequestId) -> Option<Option<PingResponse>> {
        let pos = self.events.iter().position(|(_, a, e)| {
            *a == addr(at)
                && matches!(e, Event::RequestAnswered { id: i, .. }
                    | Event::RequestTimedOut { id: i }
                    | Event::RequestFailed { id: i, .. } if *i == id)
        })?;
        match self.events.remove(pos).expect("found").2 {
            Event::RequestAnswered { response, .. } => Some(Some(*response)),
            _ => Some(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_inverts_addr_and_nothing_else() {
        for i in [0, 1, 249, 250, 251, 63_999, 64_000, 100_000] {
            assert_eq!(index(addr(i)), Some(i), "{}", addr(i));
        }
        for other in [
            "10.0.0.0:7150",
            "10.0.0.251:7150",
            "11.0.0.1:7150",
            "10.0.0.1:7151",
        ] {
            assert_eq!(index(other.parse().unwrap()), None, "{other}");
        }
        assert_eq!(index("[::1]:7150".parse().unwrap()), None);
    }

    #[test]
    fn a_link_is_the_default_one_unless_set_and_set_loss_reaches_both() {
        let mut sim = Sim::new(1);
        sim.connect(0, 1);
        let slow = Link {
            latency: Duration::from_millis(20),
            jitter: Duration::ZERO,
            loss: 0.5,
        };
        sim.set_link(1, 0, slow);
        assert_eq!(sim.usable(addr(0), addr(1)), Some(Link::default()));
        assert_eq!(sim.usable(addr(1), addr(0)), Some(slow));
        assert_eq!(sim.usable(addr(0), addr(2)), None, "not linked");
        let stranger = "192.0.2.1:7150".parse().unwrap();
        assert_eq!(sim.usable(stranger, addr(1)), None, "not a node");
        sim.set_loss(0.25);
        sim.connect(2, 0);
        for (a, b, latency) in [(0, 1, 1), (1, 0, 20), (2, 0, 1)] {
            let link = sim.usable(addr(a), addr(b)).expect("linked");
            assert_eq!(link.loss, 0.25, "{a} -> {b}");
            assert_eq!(link.latency, Duration::from_millis(latency), "{a} -> {b}");
        }
        sim.cut(0, 1);
        assert_eq!(sim.usable(addr(0), addr(1)), None, "cut");
    }
}
