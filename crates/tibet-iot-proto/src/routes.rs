//! [`RoutingTable`]: learned next hops towards mesh destinations; bounded in
//! entries and bytes, and counting what it refused (docs/ARCHITECTURE.md,
//! "Routing").
//!
//! A route says: to reach `destination`, hand the packet to `next_hop`, which
//! is `hops` links away from it. Routes are learned only from traffic the
//! engine has verified (see `Engine::may_teach_routes`):
//!
//! - a neighbour that answered or sent a heartbeat directly (distance 1);
//! - a response that came back through a neighbour (the way the ping went
//!   works; its length is unknown, so such routes are never advertised);
//! - the `routes` advertisement a trusted neighbour carries in its heartbeat
//!   payload (`"<hops> <did> ..."`, at most [`MAX_ADVERTISED`] entries;
//!   [`Advert`]).
//!
//! Only neighbours that advertise routes themselves get advertisements: a
//! routing node's heartbeats always carry the `routes` key (empty when it
//! has nothing to say), and a trusted neighbour whose heartbeat carried it
//! within the ttl is sent ours. Devices that do not route (sensors on a hub,
//! peers with routing off, the Python reference) get plain heartbeats, so a
//! hub does not pay an advertisement per device per round.
//!
//! Between heartbeat rounds, withdrawals, and routes new to a young table
//! (its first quarter ttl), go out in triggered updates
//! ([`RoutingTable::trigger_due`]), at most one per [`TRIGGER_GAP`], and a
//! neighbour that begins to advertise is sent the whole table
//! ([`RoutingTable::take_full`]): a mesh that starts together converges in
//! seconds instead of a round per link, and a break is known behind it at
//! once.
//!
//! Advertisements use poisoned reverse: a route learned from a neighbour is
//! advertised back to it as unreachable ([`INFINITY`]), so two nodes never
//! keep a dead route alive through each other. Routes age out after the
//! table's ttl unless refreshed, and a route whose next hop is no longer a
//! live peer is not used. A next hop that does not answer a probe (the
//! engine probes one that an unanswered packet went through) is lost at
//! once: its routes are withdrawn and it is left out of floods until it is
//! heard again ([`RoutingTable::lose_neighbour`]). A route that was lost,
//! or that its next hop advertises longer than before, is held down for a
//! while ([`RoutingTable::hold_down`]): meanwhile a route to the same
//! destination more than two links longer is refused, so a neighbour's
//! stale route back through this node cannot close a loop that counts up
//! to [`INFINITY`] a round at a time.
//!
//! **Areas** (optional, [`RoutingTable::set_area`]): a node's area is its
//! DID up to the last `:` ([`area_of`]: `jis:campus:b12:n7` is in
//! `jis:campus:b12`). With areas on, the table holds a route per DID only
//! for DIDs of its own area, and one route per other area, keyed
//! [`area_key`] (`jis:campus:b9:*`): a DID of another area is reached
//! through the route to its area, and the nodes of that area carry it the
//! rest of the way. A route to an area is the shortest route to any node
//! of it. The table grows with the area's size plus the number of areas,
//! not with the mesh. Per-DID routes are taught only by neighbours of the
//! same area, so nothing outside an area steers traffic inside it.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use alloc::collections::BTreeMap;
use compact_str::CompactString;
use core::net::SocketAddr;
use core::time::Duration;

use serde::Serialize;

use crate::advert::{Advert, AdvertText, MAX_ADVERTISED};

use crate::hold_down::HoldDowns;
use crate::time::MonoTime;

/// Hop count meaning "unreachable" (RIP uses 16; a radio mesh of 10,000
/// nodes can be 60 links across, one of 100,000 nearly 200).
pub const INFINITY: u32 = 255;
/// Hop count recorded for a route learned from a response (length unknown):
/// usable, but any route of known length is preferred.
pub const UNKNOWN_HOPS: u32 = INFINITY - 1;
/// How many routes a round refreshes besides the changed ones: at least
/// this, or an eighth of the table, so every route is re-advertised within
/// eight rounds (with the 30 s heartbeat, 240 s: half the route ttl).
pub const REFRESH_PER_ROUND: usize = 32;
/// Least time between two probes of one neighbour.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a change waits before a triggered update carries it, so that
/// the changes one advertisement brings go out together.
pub const TRIGGER_DELAY: Duration = Duration::from_millis(50);
/// Least time between a node's last advertisement (a heartbeat round or a
/// triggered update) and its next triggered update: what bounds the
/// control traffic of a mesh that keeps changing to one update per
/// neighbour per 3 s.
pub const TRIGGER_GAP: Duration = Duration::from_secs(3);
/// Suffix of a route key naming a whole area ([`area_key`]).
pub const AREA_SUFFIX: &str = ":*";
/// Bytes charged per entry on top of the destination DID (map node, next
/// hop, hop count, age).
const ENTRY_OVERHEAD: usize = 96;

/// The area of `did`: everything before its last `:` (the whole DID when
/// it has none). An area key (`<area>:*`) names its own area.
pub fn area_of(did: &str) -> &str {
    match did.strip_suffix(AREA_SUFFIX) {
        Some(area) => area,
        None => did.rfind(':').map_or(did, |i| &did[..i]),
    }
}

/// The length in bytes of the longest run of whole `:`-separated segments
/// that `a` and `b` begin with (`jis:c:b9` and `jis:c:b12` share `jis:c`,
/// 5 bytes).
///
/// Read as bytes: the common prefix, cut back to the last segment boundary
/// inside it unless it ends at one in both. A routing node reads it twice
/// for every entry of every advertisement, and splitting both strings at
/// each `:` was a tenth of a converging simulation's CPU.
fn shared_prefix(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let boundary = |s: &[u8]| s.get(n).is_none_or(|&c| c == b':');
    if boundary(a) && boundary(b) {
        return n;
    }
    a[..n].iter().rposition(|&c| c == b':').unwrap_or(0)
}

/// Whether `outer` is `inner` or an area that contains it (a prefix of it
/// ending at a segment boundary).
fn contains_area(outer: &str, inner: &str) -> bool {
    inner.len() >= outer.len()
        && inner.starts_with(outer)
        && (inner.len() == outer.len() || inner.as_bytes()[outer.len()] == b':')
}

/// Where a destination sits from a node of the area `own`
/// ([`place`]).
struct Place<'a> {
    /// The key its route is kept under ([`RoutingTable::key_for`]).
    key: Cow<'a, str>,
    /// Whether it is a DID of the own area.
    inside: bool,
    /// Bytes of `own` it shares as whole segments ([`shared_prefix`]).
    shared: usize,
}

/// The route key of `destination` (a DID or an area key) for a node of
/// the area `own`, with what the advertisement rules ask of it; `None` for
/// the key of the own area or of an area holding it. Read once per
/// advertised entry.
fn place<'a>(own: &str, destination: &'a str) -> Option<Place<'a>> {
    let is_area = destination.ends_with(AREA_SUFFIX);
    if area_of(destination) == own {
        return (!is_area).then_some(Place {
            key: destination.into(),
            inside: true,
            shared: own.len(),
        });
    }
    let base = destination.strip_suffix(AREA_SUFFIX).unwrap_or(destination);
    if is_area && contains_area(base, own) {
        return None;
    }
    // The segment of `base` right after what it shares with our area.
    let shared = shared_prefix(own, base);
    let start = if shared == 0 { 0 } else { shared + 1 };
    let end = base[start.min(base.len())..]
        .find(':')
        .map_or(base.len(), |i| start + i);
    let key = if end >= base.len() {
        // An area key at that level, or a DID of an area that holds ours
        // (kept by its DID).
        destination.into()
    } else {
        let mut key = String::with_capacity(end + AREA_SUFFIX.len());
        key.push_str(&base[..end]);
        key.push_str(AREA_SUFFIX);
        key.into()
    };
    Some(Place {
        key,
        inside: false,
        shared,
    })
}

/// The route key naming the whole area `area` (`<area>:*`).
pub fn area_key(area: &str) -> CompactString {
    let mut k = CompactString::from(area);
    k.push_str(AREA_SUFFIX);
    k
}

/// How a route was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum RouteSource {
    /// The destination is a neighbour that talked to us directly.
    Neighbour,
    /// A neighbour advertised it in a heartbeat.
    Advertised,
    /// A response came back through this next hop.
    Response,
}

/// One learned route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Where to send packets for the destination.
    pub next_hop: SocketAddr,
    /// Links from here to the destination ([`UNKNOWN_HOPS`] when unknown).
    pub hops: u32,
    /// When the route was last learned or confirmed.
    pub learned: MonoTime,
    /// How it was learned.
    pub source: RouteSource,
    changed: bool,
}

impl Route {
    /// A route learned (or changed) now, to be advertised as changed.
    fn learned(next_hop: SocketAddr, hops: u32, now: MonoTime, source: RouteSource) -> Self {
        Route {
            next_hop,
            hops,
            learned: now,
            source,
            changed: true,
        }
    }
}

/// Routing counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RouteStats {
    /// Entries in the table.
    pub entries: usize,
    /// Bytes charged for the entries.
    pub bytes: usize,
    /// New routes refused because the table was full (entries or bytes).
    pub refused: u64,
    /// Routes learned or replaced by a better one.
    pub learned: u64,
    /// Routes dropped because they failed (no answer after retries).
    pub failed: u64,
    /// Routes dropped because they aged out or were poisoned.
    pub expired: u64,
    /// Advertisements or responses ignored because the source may not
    /// teach routes.
    pub untrusted_ignored: u64,
    /// Advertisement entries ignored as malformed or beyond the bound.
    pub entries_ignored: u64,
    /// Mesh packets sent along a learned route.
    pub routed: u64,
    /// Mesh packets sent by bounded flood (no usable route).
    pub flooded: u64,
    /// Mesh packets with no route and no neighbour to flood to.
    pub unroutable: u64,
    /// Probes sent to a next hop that an unanswered packet went through
    /// (at most one per neighbour per 5 s).
    pub probes: u64,
    /// Neighbours that did not answer a probe: the routes through them were
    /// withdrawn and they draw no traffic until heard again.
    pub neighbours_lost: u64,
    /// Resends of a relayed packet sent a new way (another route or the
    /// bounded flood) because the way it went before was lost.
    pub repaired: u64,
    /// Advertised routes refused because they were longer than a route to
    /// the same destination lost within the hold-down (they may lead back
    /// through this node: a loop).
    pub held_refused: u64,
    /// Lost routes not held down because that set was full (as many as the
    /// table's entries).
    pub holds_refused: u64,
    /// Lost neighbours not remembered as lost because that set was full
    /// (as many as the table's entries): they may still be flooded to.
    pub lost_refused: u64,
    /// Datagrams this node sent for mesh packets, routed or flooded: its
    /// own pings and their resends, relayed copies, answers to mesh pings
    /// and answers passed back (what `tibet-iot sim` divides by deliveries).
    pub mesh_datagrams: u64,
    /// Mesh pings answered here, by the number of relays they passed
    /// (index i: i relays; the vector grows to the largest count seen, at
    /// most [`INFINITY`] + 1 entries).
    pub mesh_relays_seen: Vec<u64>,
}

/// One route as advertised: its key, its next hop (poisoned for that
/// neighbour) and its hop count ([`INFINITY`]: withdrawn).
pub type AdvertEntry = (CompactString, SocketAddr, u32);

/// Whether `r` is advertised at `now`: learned within `ttl`, and not from
/// a response (its length is unknown).
fn live(r: &Route, now: MonoTime, ttl: Duration) -> bool {
    r.source != RouteSource::Response && now.saturating_duration_since(r.learned) <= ttl
}

/// A trusted neighbour: its DID, and when its heartbeat last carried route
/// advertisements (it routes, and wants ours).
#[derive(Debug)]
struct Neighbour {
    did: CompactString,
    advertised: Option<MonoTime>,
    /// When it was last probed.
    probed: Option<MonoTime>,
    /// It began to advertise lately and has not been sent our whole table.
    full_due: bool,
}

/// The routing table of one node.
#[derive(Debug)]
pub struct RoutingTable {
    routes: BTreeMap<CompactString, Route>,
    capacity: usize,
    byte_capacity: usize,
    bytes: usize,
    ttl: Duration,
    cursor: Option<CompactString>,
    neighbours: BTreeMap<SocketAddr, Neighbour>,
    /// Routes lost since the last advertisement: advertised once as
    /// unreachable so that neighbours drop them too (bounded like routes).
    withdrawn: alloc::collections::BTreeSet<CompactString>,
    /// When the oldest change that triggers an update and was not yet
    /// advertised happened (a withdrawal, a route new to a young table, a
    /// neighbour due the whole table), if there is one.
    pending: Option<MonoTime>,
    /// When routes were last advertised (a round or a triggered update).
    advertised: Option<MonoTime>,
    /// Some neighbour is due the whole table.
    full_due: bool,
    /// When the first route was learned: new routes are sent in triggered
    /// updates for a quarter of the ttl after it
    /// ([`RoutingTable::trigger_due`]).
    first_learned: Option<MonoTime>,
    /// The node's own area, when routing by areas.
    area: Option<CompactString>,
    /// Neighbours that did not answer a probe, until heard again (bounded
    /// like the neighbours).
    lost: alloc::collections::BTreeSet<SocketAddr>,
    /// Routes lost lately ([`RoutingTable::hold_down`]; bounded like the
    /// routes).
    held: HoldDowns,
    pub(crate) stats: RouteStats,
}

impl RoutingTable {
    /// A table of at most `capacity` routes and `byte_capacity` bytes; a
    /// route not confirmed for `ttl` is dropped.
    pub fn new(capacity: usize, byte_capacity: usize, ttl: Duration) -> Self {
        RoutingTable {
            routes: BTreeMap::new(),
            capacity: capacity.max(1),
            byte_capacity,
            bytes: 0,
            ttl,
            cursor: None,
            neighbours: BTreeMap::new(),
            withdrawn: alloc::collections::BTreeSet::new(),
            pending: None,
            advertised: None,
            full_due: false,
            first_learned: None,
            area: None,
            lost: alloc::collections::BTreeSet::new(),
            held: HoldDowns::new(capacity.max(1), ttl / 8),
            stats: RouteStats::default(),
        }
    }

    /// Routes by areas from now on, `own_did` naming the node's own area
    /// (see the module docs); `None` turns areas off. Call before learning.
    pub fn set_area(&mut self, own_did: Option<&str>) {
        self.area = own_did.map(|d| CompactString::from(area_of(d)));
    }

    /// The node's own area, when routing by areas.
    pub fn area(&self) -> Option<&str> {
        self.area.as_deref()
    }

    /// The key under which the route to `destination` (a DID or an area
    /// key) is kept: the DID itself without areas or inside the own area,
    /// else the key of the largest area that holds it and not us: areas
    /// nest (`jis:city:d5:b2:lamp7` is in `jis:city:d5:b2`, which is in
    /// `jis:city:d5`), so from `jis:city:d3:b9` it is kept under
    /// `jis:city:d5:*`, and from `jis:city:d5:b9` under `jis:city:d5:b2:*`.
    /// `None` for the key of the own area or of an area holding it (a node
    /// is there already).
    pub fn key_for<'a>(&self, destination: &'a str) -> Option<Cow<'a, str>> {
        match self.area.as_deref() {
            None => Some(destination.into()),
            Some(own) => place(own, destination).map(|p| p.key),
        }
    }

    fn entry_bytes(destination: &str) -> usize {
        destination.len() + ENTRY_OVERHEAD
    }

    /// Whether the table is young at `now`: it has learned no route yet, or
    /// its first a quarter of the ttl ago or less (120 s at the defaults;
    /// the start of a mesh, when every node learns every destination).
    /// Routes new to a young table go out in triggered updates.
    fn young(&self, now: MonoTime) -> bool {
        self.first_learned
            .is_none_or(|first| now.saturating_duration_since(first) <= self.ttl / 4)
    }

    /// Learns (or confirms) a route; returns whether the table now holds it.
    /// A shorter route replaces a longer one; the same next hop updates its
    /// length (a poisoned one, `hops >= INFINITY`, removes it).
    pub fn learn(
        &mut self,
        now: MonoTime,
        destination: &str,
        next_hop: SocketAddr,
        hops: u32,
        source: RouteSource,
    ) -> bool {
        if let Some(r) = self.routes.get_mut(destination) {
            let stale = now.saturating_duration_since(r.learned) > self.ttl;
            if r.next_hop == next_hop {
                // Longer than before: the next hop may have taken a way
                // back through us (a loop counting up a round at a time),
                // so the length before is held down, and a route grown
                // beyond the slack is dropped like a poisoned one.
                let longer = source == RouteSource::Advertised && hops > r.hops;
                if longer {
                    let before = r.hops;
                    self.hold(now, destination, before);
                }
                if hops >= INFINITY || (longer && self.held_back(now, destination, hops)) {
                    let lost = self.remove(destination).map_or(hops, |r| r.hops);
                    self.withdraw(now, destination);
                    self.hold(now, destination, lost);
                    self.stats.expired += 1;
                    return false;
                }
                let r = self.routes.get_mut(destination).expect("checked");
                // A response confirms the path but says nothing of its length.
                let hops = if source == RouteSource::Response {
                    r.hops
                } else {
                    hops
                };
                r.changed |= r.hops != hops;
                r.hops = hops;
                r.learned = now;
                if source != RouteSource::Response {
                    r.source = source;
                }
                return true;
            }
            if hops >= INFINITY || (hops >= r.hops && !stale) {
                return false;
            }
            if source == RouteSource::Advertised && self.held_back(now, destination, hops) {
                return false;
            }
            let r = self.routes.get_mut(destination).expect("checked");
            *r = Route::learned(next_hop, hops, now, source);
            self.stats.learned += 1;
            return true;
        }
        if hops >= INFINITY
            || (source == RouteSource::Advertised && self.held_back(now, destination, hops))
        {
            return false;
        }
        let cost = Self::entry_bytes(destination);
        if self.routes.len() >= self.capacity || self.bytes + cost > self.byte_capacity {
            self.expire(now);
        }
        if self.routes.len() >= self.capacity || self.bytes + cost > self.byte_capacity {
            self.stats.refused += 1;
            return false;
        }
        self.bytes += cost;
        self.routes.insert(
            CompactString::from(destination),
            Route::learned(next_hop, hops, now, source),
        );
        self.stats.learned += 1;
        // A route to a destination new to us, while the table is young (a
        // quarter of the ttl after its first route): a triggered update
        // carries it. Later changes, and routes that come back after a
        // loss, wait for the heartbeat round (docs/ARCHITECTURE.md,
        // "Routing").
        self.first_learned.get_or_insert(now);
        if self.young(now)
            && source != RouteSource::Response
            && self.held.held_at(now, destination).is_none()
        {
            self.note_change(now);
        }
        true
    }

    /// The route to `destination`, if learned within the ttl.
    pub fn get(&self, now: MonoTime, destination: &str) -> Option<&Route> {
        self.routes
            .get(destination)
            .filter(|r| now.saturating_duration_since(r.learned) <= self.ttl)
    }

    /// Forgets the route to `destination`.
    pub fn remove(&mut self, destination: &str) -> Option<Route> {
        let r = self.routes.remove(destination)?;
        self.bytes -= Self::entry_bytes(destination);
        Some(r)
    }

    /// Drops a route that failed (no answer after retries).
    pub fn fail(&mut self, now: MonoTime, destination: &str) {
        if let Some(r) = self.remove(destination) {
            self.stats.failed += 1;
            self.withdraw(now, destination);
            self.hold(now, destination, r.hops);
        }
    }

    /// How long a lost route is held down: an eighth of the ttl (60 s, two
    /// heartbeat rounds, at the defaults). A route is lost when its next
    /// hop is lost or expires, when it fails, when its next hop poisons it,
    /// and when its next hop advertises it longer than before (the length
    /// before is held). Meanwhile an advertised route to the same
    /// destination is taken only if it is at most two links
    /// longer than the one lost: a longer one may be a neighbour's stale
    /// route through this node, which the withdrawal has not reached yet (a
    /// loop that would count up to [`INFINITY`] one round at a time); and a
    /// route whose next hop keeps advertising it longer is dropped and
    /// withdrawn once it has grown by more than that.
    pub fn hold_down(&self) -> Duration {
        self.held.period()
    }

    /// The length the route to `destination` (a route key) is held down at
    /// now, if it is ([`RoutingTable::hold_down`]).
    pub fn held_down(&self, now: MonoTime, destination: &str) -> Option<u32> {
        self.held.held_at(now, destination)
    }

    /// Holds `destination` down: lost now at `hops` links.
    fn hold(&mut self, now: MonoTime, destination: &str, hops: u32) {
        if !self.held.hold(now, destination, hops, UNKNOWN_HOPS) {
            self.stats.holds_refused += 1;
        }
    }

    /// Whether a route of `hops` to `destination` is refused now: longer
    /// by more than the slack than one lost within the hold-down (counted).
    fn held_back(&mut self, now: MonoTime, destination: &str, hops: u32) -> bool {
        let refused = self.held.refuses(now, destination, hops);
        self.stats.held_refused += u64::from(refused);
        refused
    }

    /// Withdraws `destination` (lost at `now`): advertised as unreachable
    /// in the next update, which a withdrawal triggers at any age of the
    /// table (bad news travels at once; docs/ARCHITECTURE.md, "Routing").
    fn withdraw(&mut self, now: MonoTime, destination: &str) {
        if self.withdrawn.len() < self.capacity {
            self.withdrawn.insert(CompactString::from(destination));
            self.note_change(now);
        }
    }

    /// A change to advertise happened at `now`.
    fn note_change(&mut self, now: MonoTime) {
        self.pending.get_or_insert(now);
    }

    /// When a triggered update is due: [`TRIGGER_DELAY`] after the oldest
    /// change not yet advertised, and [`TRIGGER_GAP`] after the last
    /// advertisement; `None` when nothing that triggers one (a withdrawal,
    /// a route new to a young table, a neighbour due the whole table)
    /// happened since.
    pub fn trigger_due(&self) -> Option<MonoTime> {
        let pending = self.pending? + TRIGGER_DELAY;
        Some(match self.advertised {
            Some(t) => pending.max(t + TRIGGER_GAP),
            None => pending,
        })
    }

    /// Routes were advertised at `now`; `complete`: every change went
    /// (none was left out over [`MAX_ADVERTISED`]).
    fn advertised_at(&mut self, now: MonoTime, complete: bool) {
        self.advertised = Some(now);
        self.pending = if complete { None } else { Some(now) };
    }

    /// A triggered update's destinations (routes advertised between
    /// heartbeat rounds): the withdrawn and changed routes only, at most
    /// [`MAX_ADVERTISED`] (the rest wait for the next update).
    pub fn advertisement_delta(&mut self, now: MonoTime) -> Vec<AdvertEntry> {
        let out = self.changes(now);
        let complete = out.len() < MAX_ADVERTISED;
        self.advertised_at(now, complete);
        out
    }

    /// The withdrawn, then the changed routes, at most [`MAX_ADVERTISED`],
    /// marked as advertised.
    fn changes(&mut self, now: MonoTime) -> Vec<AdvertEntry> {
        let ttl = self.ttl;
        let mut out: Vec<AdvertEntry> = Vec::new();
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        while out.len() < MAX_ADVERTISED {
            let Some(d) = self.withdrawn.pop_first() else {
                break;
            };
            if !self.routes.contains_key(&d) {
                out.push((d, unspecified, INFINITY));
            }
        }
        for (d, r) in self.routes.iter_mut() {
            if out.len() >= MAX_ADVERTISED {
                break;
            }
            if r.changed && live(r, now, ttl) {
                r.changed = false;
                out.push((d.clone(), r.next_hop, r.hops));
            }
        }
        out
    }

    /// Drops every route through `next_hop` (the neighbour is gone).
    pub fn remove_via(&mut self, now: MonoTime, next_hop: SocketAddr) -> usize {
        let gone: Vec<(CompactString, u32)> = self
            .routes
            .iter()
            .filter(|(_, r)| r.next_hop == next_hop)
            .map(|(d, r)| (d.clone(), r.hops))
            .collect();
        for (d, hops) in &gone {
            self.remove(d);
            self.withdraw(now, d);
            self.hold(now, d, *hops);
        }
        self.stats.expired += gone.len() as u64;
        gone.len()
    }

    /// Drops routes older than the ttl.
    pub fn expire(&mut self, now: MonoTime) {
        let ttl = self.ttl;
        let gone: Vec<CompactString> = self
            .routes
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.learned) > ttl)
            .map(|(d, _)| d.clone())
            .collect();
        for d in &gone {
            self.remove(d);
        }
        self.stats.expired += gone.len() as u64;
        self.held.expire(now);
    }

    /// The destinations of this round's advertisement, at most
    /// [`MAX_ADVERTISED`]: withdrawn and changed routes first (the delta),
    /// then a refresh of the rest in turn, [`REFRESH_PER_ROUND`] or an
    /// eighth of the table, whichever is more (a cursor walks the table
    /// across rounds). Routes learned from responses (length unknown) are
    /// never advertised.
    pub fn advertisement_round(&mut self, now: MonoTime) -> Vec<AdvertEntry> {
        let ttl = self.ttl;
        let mut out = self.changes(now);
        let complete = out.len() < MAX_ADVERTISED;
        self.advertised_at(now, complete);
        let refresh_end =
            MAX_ADVERTISED.min(out.len() + REFRESH_PER_ROUND.max(self.routes.len().div_ceil(8)));
        if out.len() < refresh_end {
            let start = self.cursor.take();
            let after = match &start {
                Some(c) => self
                    .routes
                    .range::<str, _>((
                        core::ops::Bound::Excluded(c.as_str()),
                        core::ops::Bound::Unbounded,
                    ))
                    .chain(self.routes.range::<str, _>((
                        core::ops::Bound::Unbounded,
                        core::ops::Bound::Included(c.as_str()),
                    )))
                    .collect::<Vec<_>>(),
                None => self.routes.iter().collect(),
            };
            for (d, r) in after {
                if out.len() >= refresh_end {
                    break;
                }
                if live(r, now, ttl) && !out.iter().any(|(o, _, _)| o == d) {
                    out.push((d.clone(), r.next_hop, r.hops));
                    self.cursor = Some(d.clone());
                }
            }
        }
        out
    }

    /// This round's advertisement as sent to the neighbour `to_did` at `to`:
    /// routes through it are poisoned (advertised as [`INFINITY`]), the
    /// route to itself is left out.
    pub fn advertisement_for(round: &[AdvertEntry], to_did: &str, to: SocketAddr) -> AdvertText {
        // An entry is its key, a hop count of at most three digits
        // (INFINITY is 255) and two spaces.
        let mut advert = AdvertText::with_capacity(round.iter().map(|(d, _, _)| d.len() + 5).sum());
        for (d, hop, hops) in round {
            if d != to_did {
                advert.push(d, if *hop == to { INFINITY } else { *hops });
            }
        }
        advert
    }

    /// Reads an advertisement from the neighbour `from_did` at `from`:
    /// `(route key, hops from here)` for each valid entry, at most
    /// [`MAX_ADVERTISED`]; entries naming `own_did` or the neighbour itself,
    /// and malformed ones, are counted and skipped. With areas, entries are
    /// keyed by [`RoutingTable::key_for`] (the shortest entry of an area
    /// stands for it, and a neighbour of another area is one hop from its
    /// own), and per-DID entries for the own area are taken only from a
    /// neighbour of the own area (others are counted and skipped).
    pub fn parse_advertisement(
        &mut self,
        advert: Advert<'_>,
        own_did: &str,
        from_did: &str,
    ) -> Vec<(CompactString, u32)> {
        // Gathered in a vector, then sorted by key with the shortest entry
        // of each key kept: a map's order and merge without building one.
        let mut out = Vec::with_capacity(advert.len_hint().min(MAX_ADVERTISED) + 1);
        let from_area = area_of(from_did);
        // A neighbour of another area is one hop from the largest area
        // holding it and not us.
        if let Some(own) = self.area.as_deref()
            && from_area != own
            && let Some(k) = self.key_for(from_did)
            && k != from_did
        {
            out.push((CompactString::from(k), 1));
        }
        // Of the areas holding us, the neighbour shares this much (bytes of
        // our area's name).
        let from_shares = self
            .area
            .as_deref()
            .map(|own| shared_prefix(own, from_area));
        for (i, entry) in advert.entries().enumerate() {
            let valid = |(d, _): &(&str, u32)| {
                i < MAX_ADVERTISED && *d != own_did && *d != from_did && !d.is_empty()
            };
            let Some((d, h)) = entry.filter(valid) else {
                self.stats.entries_ignored += 1;
                continue;
            };
            let hops = h.saturating_add(1).min(INFINITY);
            match &self.area {
                None => out.push((CompactString::from(d), hops)),
                Some(own) => {
                    // What a neighbour may teach: the DIDs of our own area
                    // only if it is in our area; the areas inside one that
                    // holds us only if it is in that one too.
                    // (The key of an area holding us is no route: skipped.)
                    let Some(p) = place(own, d) else {
                        continue;
                    };
                    let outsider = from_shares.is_some_and(|f| f < p.shared);
                    if (p.inside && from_area != own.as_str()) || (!p.inside && outsider) {
                        self.stats.entries_ignored += 1;
                        continue;
                    }
                    out.push((CompactString::from(p.key), hops));
                }
            }
        }
        // Stable: equal keys keep their order, and the shortest wins.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = kept.1.min(later.1);
            }
            same
        });
        out
    }

    /// Every route, by destination.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Route)> {
        self.routes.iter().map(|(d, r)| (d.as_str(), r))
    }

    /// Records that the trusted neighbour `did` talks to us from `addr`
    /// (the only next hops a route may use); false when the neighbour list
    /// is full (bounded like the routes).
    pub fn set_neighbour(&mut self, addr: SocketAddr, did: &str) -> bool {
        self.lost.remove(&addr);
        if let Some(n) = self.neighbours.get_mut(&addr) {
            if n.did != did {
                n.did = CompactString::from(did);
                // Another node at that address: it has advertised nothing.
                n.advertised = None;
            }
            return true;
        }
        if self.neighbours.len() >= self.capacity {
            self.stats.refused += 1;
            return false;
        }
        self.neighbours.insert(
            addr,
            Neighbour {
                did: CompactString::from(did),
                advertised: None,
                probed: None,
                full_due: false,
            },
        );
        true
    }

    /// The DID of the neighbour at `addr`.
    pub fn neighbour(&self, addr: SocketAddr) -> Option<&str> {
        self.neighbours.get(&addr).map(|n| n.did.as_str())
    }

    /// The trusted neighbour at `addr` sent a heartbeat carrying route
    /// advertisements (possibly empty): it routes, and is sent ours.
    /// A neighbour that begins to advertise (new, or back after the ttl)
    /// is sent the whole table in the next update
    /// ([`RoutingTable::take_full`]), so that a node that joins learns
    /// the mesh's routes at once instead of a refresh share a round.
    pub fn note_advertiser(&mut self, now: MonoTime, addr: SocketAddr) {
        let ttl = self.ttl;
        let Some(n) = self.neighbours.get_mut(&addr) else {
            return;
        };
        let begins = n
            .advertised
            .is_none_or(|t| now.saturating_duration_since(t) > ttl);
        n.advertised = Some(now);
        if begins && !self.routes.is_empty() {
            n.full_due = true;
            self.full_due = true;
            self.note_change(now);
        }
    }

    /// Whether some neighbour is due the whole table.
    pub fn full_due(&self) -> bool {
        self.full_due
    }

    /// Whether the neighbour at `addr` is due the whole table; if so, it
    /// is taken as sent.
    pub fn take_full(&mut self, addr: SocketAddr) -> bool {
        self.neighbours
            .get_mut(&addr)
            .is_some_and(|n| core::mem::take(&mut n.full_due))
    }

    /// The whole table as advertised (routes learned from responses left
    /// out), at most [`MAX_ADVERTISED`] routes; clears
    /// [`RoutingTable::full_due`] (the neighbours due it are sent it in
    /// this update).
    pub fn full_advertisement(&mut self, now: MonoTime) -> Vec<AdvertEntry> {
        self.full_due = false;
        let ttl = self.ttl;
        self.routes
            .iter()
            .filter(|(_, r)| live(r, now, ttl))
            .take(MAX_ADVERTISED)
            .map(|(d, r)| (d.clone(), r.next_hop, r.hops))
            .collect()
    }

    /// Whether the neighbour at `addr` advertised routes within the ttl
    /// (only such neighbours are sent advertisements).
    pub fn wants_advertisements(&self, now: MonoTime, addr: SocketAddr) -> bool {
        self.neighbours
            .get(&addr)
            .and_then(|n| n.advertised)
            .is_some_and(|t| now.saturating_duration_since(t) <= self.ttl)
    }

    /// Forgets the neighbour at `addr`.
    pub fn remove_neighbour(&mut self, addr: SocketAddr) {
        self.neighbours.remove(&addr);
        self.lost.remove(&addr);
    }

    /// Whether the neighbour at `addr` is due a probe (not probed within
    /// the last 5 s); if so, records the probe as sent now. Only
    /// trusted neighbours (next hops of routes) are probed.
    pub fn take_probe(&mut self, now: MonoTime, addr: SocketAddr) -> bool {
        let Some(n) = self.neighbours.get_mut(&addr) else {
            return false;
        };
        if n.probed
            .is_some_and(|t| now.saturating_duration_since(t) < PROBE_INTERVAL)
        {
            return false;
        }
        n.probed = Some(now);
        self.stats.probes += 1;
        true
    }

    /// The neighbour at `addr` did not answer a probe: every route through
    /// it is withdrawn (advertised as unreachable in the next round), and
    /// it is [`RoutingTable::is_lost`] until [`RoutingTable::set_neighbour`]
    /// hears it again. Returns the routes dropped.
    pub fn lose_neighbour(&mut self, now: MonoTime, addr: SocketAddr) -> usize {
        if self.neighbours.remove(&addr).is_none() {
            return 0;
        }
        self.stats.neighbours_lost += 1;
        if self.lost.len() < self.capacity {
            self.lost.insert(addr);
        } else {
            self.stats.lost_refused += 1;
        }
        self.remove_via(now, addr)
    }

    /// Whether the neighbour at `addr` failed a probe and was not heard
    /// since (it is left out of floods).
    pub fn is_lost(&self, addr: SocketAddr) -> bool {
        self.lost.contains(&addr)
    }

    /// Number of routes held.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no route is held.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> RouteStats {
        RouteStats {
            entries: self.routes.len(),
            bytes: self.bytes,
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::tests::{addr, t};
    use tibet_ping::JsonMap;

    fn table() -> RoutingTable {
        RoutingTable::new(3, 10_000, Duration::from_secs(100))
    }

    #[test]
    fn shorter_routes_win_and_the_same_next_hop_updates() {
        let mut rt = table();
        assert!(rt.learn(t(0), "jis:d", addr(1), 3, RouteSource::Advertised));
        assert!(!rt.learn(t(1), "jis:d", addr(2), 4, RouteSource::Advertised));
        assert_eq!(rt.get(t(1), "jis:d").unwrap().next_hop, addr(1));
        assert!(rt.learn(t(2), "jis:d", addr(2), 2, RouteSource::Advertised));
        assert_eq!(rt.get(t(2), "jis:d").unwrap().next_hop, addr(2));
        assert!(rt.learn(t(3), "jis:d", addr(2), 4, RouteSource::Advertised));
        assert_eq!(rt.get(t(3), "jis:d").unwrap().hops, 4, "same hop: updated");
        assert!(!rt.learn(t(4), "jis:d", addr(2), INFINITY, RouteSource::Advertised));
        assert!(rt.get(t(4), "jis:d").is_none(), "poisoned: removed");
    }

    /// New routes go out in a triggered update while the table is young,
    /// withdrawals at any age: [`TRIGGER_DELAY`] after the change, at least
    /// [`TRIGGER_GAP`] after the last advertisement. Changed lengths, routes
    /// learned from responses, routes back after a loss and new routes
    /// once the table is older wait for the heartbeat round.
    #[test]
    fn new_routes_and_withdrawals_trigger_an_update() {
        // Young for a quarter of the ttl: 25 s.
        let mut rt = table();
        assert_eq!(rt.trigger_due(), None);
        assert!(rt.learn(t(0), "jis:a", addr(1), 1, RouteSource::Neighbour));
        assert_eq!(rt.trigger_due(), Some(t(0) + TRIGGER_DELAY));
        let delta = rt.advertisement_delta(t(0) + TRIGGER_DELAY);
        assert_eq!(delta, [(CompactString::from("jis:a"), addr(1), 1)]);
        assert_eq!(rt.trigger_due(), None, "sent");
        assert!(rt.advertisement_delta(t(1)).is_empty(), "nothing changed");

        // Within the gap after the last advertisement: held to the gap.
        assert!(rt.learn(t(1), "jis:b", addr(2), 3, RouteSource::Advertised));
        assert_eq!(rt.trigger_due(), Some(t(1) + TRIGGER_GAP));
        let sent = t(1) + TRIGGER_GAP;
        rt.advertisement_delta(sent);

        // Not new: a length changed, a route from a response.
        assert!(rt.learn(sent, "jis:b", addr(2), 2, RouteSource::Advertised));
        assert!(rt.learn(sent, "jis:c", addr(1), UNKNOWN_HOPS, RouteSource::Response));
        assert_eq!(rt.trigger_due(), None);
        // A withdrawal triggers.
        let lost = sent + Duration::from_secs(1);
        rt.fail(lost, "jis:a");
        assert_eq!(rt.trigger_due(), Some(sent + TRIGGER_GAP));
        let delta = rt.advertisement_delta(sent + TRIGGER_GAP);
        assert!(
            delta.iter().any(|(d, _, h)| d == "jis:a" && *h == INFINITY),
            "{delta:?}"
        );
        // The route back within the hold-down waits for the round.
        let back = sent + TRIGGER_GAP + Duration::from_secs(1);
        assert!(rt.learn(back, "jis:a", addr(2), 2, RouteSource::Advertised));
        assert_eq!(rt.trigger_due(), None, "back after a loss: the round");
        let round = rt.advertisement_round(back);
        assert!(
            round.iter().any(|(d, _, h)| d == "jis:a" && *h == 2),
            "{round:?}"
        );
        assert!(
            round.iter().any(|(d, _, h)| d == "jis:b" && *h == 2),
            "{round:?}"
        );

        // Old: new routes wait for the round too.
        rt.remove("jis:c");
        assert!(rt.learn(t(26), "jis:d", addr(1), 2, RouteSource::Advertised));
        assert_eq!(rt.trigger_due(), None);
    }

    /// A neighbour that begins to advertise is sent the whole table once
    /// (routes from responses left out), in an update due at once.
    #[test]
    fn a_neighbour_that_begins_to_advertise_is_sent_the_whole_table_once() {
        let mut rt = table();
        assert!(rt.set_neighbour(addr(1), "jis:n1"));
        rt.note_advertiser(t(0), addr(1));
        assert!(!rt.full_due(), "nothing to send yet");
        assert!(rt.learn(t(0), "jis:n1", addr(1), 1, RouteSource::Neighbour));
        assert!(rt.learn(t(0), "jis:x", addr(1), UNKNOWN_HOPS, RouteSource::Response));
        rt.advertisement_round(t(0));
        rt.learn(t(0), "jis:y", addr(1), 4, RouteSource::Advertised);
        rt.advertisement_round(t(40));

        assert!(rt.set_neighbour(addr(2), "jis:n2"));
        rt.note_advertiser(t(50), addr(2));
        assert!(rt.full_due());
        assert_eq!(rt.trigger_due(), Some(t(50) + TRIGGER_DELAY));
        let full = rt.full_advertisement(t(50));
        let keys: Vec<&str> = full.iter().map(|(d, _, _)| d.as_str()).collect();
        assert_eq!(keys, ["jis:n1", "jis:y"]);
        assert!(!rt.full_due());
        assert!(!rt.take_full(addr(1)), "it advertised before");
        assert!(rt.take_full(addr(2)));
        assert!(!rt.take_full(addr(2)), "once");
        rt.note_advertiser(t(60), addr(2));
        assert!(!rt.full_due(), "still advertising: nothing more");
    }

    #[test]
    fn response_routes_keep_known_lengths_and_lose_to_known_ones() {
        let mut rt = table();
        assert!(rt.learn(t(0), "jis:d", addr(1), UNKNOWN_HOPS, RouteSource::Response));
        assert!(rt.learn(t(0), "jis:d", addr(2), 6, RouteSource::Advertised));
        assert!(rt.learn(t(1), "jis:d", addr(2), 0, RouteSource::Response));
        assert_eq!(rt.get(t(1), "jis:d").unwrap().hops, 6);
        assert!(
            rt.advertisement_round(t(1))
                .iter()
                .any(|(d, _, _)| d == "jis:d"),
            "a route of known length is advertised"
        );
    }

    #[test]
    fn bounded_in_entries_and_bytes_and_counts_refusals() {
        let mut rt = table();
        for (i, d) in ["jis:a", "jis:b", "jis:c"].iter().enumerate() {
            assert!(rt.learn(t(0), d, addr(i as u16), 1, RouteSource::Neighbour));
        }
        assert!(!rt.learn(t(1), "jis:e", addr(9), 1, RouteSource::Neighbour));
        assert_eq!(rt.stats().refused, 1);
        assert!(
            rt.learn(t(200), "jis:e", addr(9), 1, RouteSource::Neighbour),
            "room once the old ones aged out"
        );
        let mut small = RoutingTable::new(100, 2 * (ENTRY_OVERHEAD + 5), Duration::from_secs(9));
        assert!(small.learn(t(0), "jis:a", addr(1), 1, RouteSource::Neighbour));
        assert!(small.learn(t(0), "jis:b", addr(1), 1, RouteSource::Neighbour));
        assert!(!small.learn(t(0), "jis:c", addr(1), 1, RouteSource::Neighbour));
        assert_eq!(small.stats().bytes, 2 * (ENTRY_OVERHEAD + 5));
        assert_eq!(small.stats().refused, 1);
    }

    #[test]
    fn advertisements_are_bounded_rotate_and_poison_the_reverse() {
        let mut rt = RoutingTable::new(1000, 1 << 20, Duration::from_secs(100));
        for i in 0..300u16 {
            rt.learn(
                t(0),
                &format!("jis:d{i:03}"),
                addr(i % 2),
                2,
                RouteSource::Advertised,
            );
        }
        let first = rt.advertisement_round(t(1));
        assert_eq!(first.len(), MAX_ADVERTISED);
        let second = rt.advertisement_round(t(2));
        assert_eq!(
            second.len(),
            300 - MAX_ADVERTISED + REFRESH_PER_ROUND.max(300usize.div_ceil(8)),
            "the rest of the changes, then a refresh of an eighth"
        );
        let covered: alloc::collections::BTreeSet<_> = first
            .iter()
            .chain(&second)
            .map(|(d, _, _)| d.clone())
            .collect();
        assert_eq!(
            covered.len(),
            300,
            "every route advertised within two rounds"
        );
        let to_a = RoutingTable::advertisement_for(&first, "jis:d000", addr(0));
        assert_eq!(to_a.get("jis:d000"), None, "not its own route");
        assert_eq!(
            to_a.get("jis:d002"),
            Some(INFINITY),
            "learned from it: poisoned"
        );
        assert_eq!(to_a.get("jis:d001"), Some(2));
    }

    #[test]
    fn lost_routes_are_advertised_once_as_unreachable() {
        let mut rt = table();
        rt.learn(t(0), "jis:d", addr(1), 2, RouteSource::Advertised);
        rt.learn(t(0), "jis:e", addr(2), 2, RouteSource::Advertised);
        rt.advertisement_round(t(1));
        assert_eq!(rt.remove_via(t(2), addr(1)), 1);
        let round = rt.advertisement_round(t(2));
        let to_n = RoutingTable::advertisement_for(&round, "jis:n", addr(9));
        assert_eq!(to_n.get("jis:d"), Some(INFINITY), "withdrawn");
        assert_eq!(to_n.get("jis:e"), Some(2));
        let again = rt.advertisement_round(t(3));
        assert!(again.iter().all(|(d, _, _)| d != "jis:d"), "only once");
    }

    #[test]
    fn only_neighbours_that_advertise_want_advertisements() {
        let mut rt = table();
        assert!(rt.set_neighbour(addr(1), "jis:a"));
        assert!(!rt.wants_advertisements(t(0), addr(1)), "silent so far");
        rt.note_advertiser(t(0), addr(1));
        assert!(rt.wants_advertisements(t(100), addr(1)));
        assert!(!rt.wants_advertisements(t(101), addr(1)), "past the ttl");
        rt.note_advertiser(t(101), addr(1));
        assert!(rt.set_neighbour(addr(1), "jis:b"));
        assert!(
            !rt.wants_advertisements(t(101), addr(1)),
            "another node at the address"
        );
        rt.note_advertiser(t(0), addr(7));
        assert!(!rt.wants_advertisements(t(0), addr(7)), "not a neighbour");
    }

    #[test]
    fn a_lost_neighbour_is_probed_at_most_every_interval_and_its_routes_withdrawn() {
        let mut rt = table();
        assert!(!rt.take_probe(t(0), addr(1)), "not a neighbour: no probe");
        rt.set_neighbour(addr(1), "jis:a");
        rt.learn(t(0), "jis:a", addr(1), 1, RouteSource::Neighbour);
        rt.learn(t(0), "jis:d", addr(1), 3, RouteSource::Advertised);
        rt.learn(t(0), "jis:e", addr(2), 2, RouteSource::Advertised);
        rt.advertisement_round(t(0));
        assert!(rt.take_probe(t(0), addr(1)));
        assert!(!rt.take_probe(t(4), addr(1)), "within the interval");
        assert!(rt.take_probe(t(5), addr(1)));
        assert_eq!(rt.stats().probes, 2);
        assert_eq!(rt.lose_neighbour(t(5), addr(1)), 2);
        assert_eq!(rt.lose_neighbour(t(5), addr(1)), 0, "only once");
        assert!(rt.is_lost(addr(1)) && rt.neighbour(addr(1)).is_none());
        assert_eq!(rt.stats().neighbours_lost, 1);
        let round = rt.advertisement_round(t(6));
        let to_n = RoutingTable::advertisement_for(&round, "jis:n", addr(9));
        assert_eq!(
            to_n.get("jis:d"),
            Some(INFINITY),
            "withdrawn in the next round"
        );
        assert!(rt.set_neighbour(addr(1), "jis:a"));
        assert!(!rt.is_lost(addr(1)), "heard again");
    }

    #[test]
    fn lost_neighbours_are_remembered_up_to_the_table_capacity_and_counted_beyond() {
        let mut rt = table();
        for i in 1..=4 {
            assert!(rt.set_neighbour(addr(i), "jis:n"));
            rt.lose_neighbour(t(0), addr(i));
        }
        assert!((1..=3).all(|i| rt.is_lost(addr(i))));
        assert!(!rt.is_lost(addr(4)), "beyond the capacity of 3");
        assert_eq!(rt.stats().neighbours_lost, 4);
        assert_eq!(rt.stats().lost_refused, 1);
    }

    #[test]
    fn parsing_skips_malformed_self_and_sender_entries() {
        let mut rt = table();
        let advert: JsonMap = serde_json::from_str(
            r#"{"jis:me":1,"jis:n":1,"jis:x":"far","jis:y":-1,"jis:z":3,"jis:w":999}"#,
        )
        .unwrap();
        let got = rt.parse_advertisement(Advert::Map(&advert), "jis:me", "jis:n");
        assert_eq!(got, vec![("jis:w".into(), INFINITY), ("jis:z".into(), 4)]);
        assert_eq!(rt.stats().entries_ignored, 4);
        // The same in the text form, with a dangling count at the end.
        let text = "1 jis:me 1 jis:n far jis:x -1 jis:y 3 jis:z 999 jis:w 5";
        let got = rt.parse_advertisement(Advert::Text(text), "jis:me", "jis:n");
        assert_eq!(got, vec![("jis:w".into(), INFINITY), ("jis:z".into(), 4)]);
        assert_eq!(rt.stats().entries_ignored, 4 + 5);
    }

    #[test]
    fn entries_beyond_the_bound_are_counted_and_skipped() {
        let mut rt = RoutingTable::new(1000, 1 << 20, Duration::from_secs(100));
        let mut advert = AdvertText::new();
        for i in 0..MAX_ADVERTISED + 10 {
            advert.push(&format!("jis:d{i}"), 1);
        }
        let got = rt.parse_advertisement(Advert::Text(advert.as_str()), "jis:me", "jis:n");
        assert_eq!(got.len(), MAX_ADVERTISED);
        assert_eq!(rt.stats().entries_ignored, 10);
    }

    #[test]
    fn areas_name_keys_and_a_quiet_table_refreshes_an_eighth_per_round() {
        assert_eq!(area_of("jis:c:b9:lamp7"), "jis:c:b9");
        assert_eq!(area_of("jis:c:b9:*"), "jis:c:b9");
        assert_eq!(area_of("plain"), "plain");
        let mut rt = RoutingTable::new(1000, 1 << 20, Duration::from_secs(100));
        for i in 0..400u16 {
            rt.learn(
                t(0),
                &format!("jis:d{i:03}"),
                addr(1),
                2,
                RouteSource::Advertised,
            );
        }
        rt.advertisement_round(t(1));
        rt.advertisement_round(t(2));
        let quiet = rt.advertisement_round(t(3));
        assert_eq!(quiet.len(), 50, "no changes: an eighth of 400");
        rt.set_area(Some("jis:c:b9:me"));
        assert_eq!(rt.area(), Some("jis:c:b9"));
        assert_eq!(
            rt.key_for("jis:c:b9:lamp").as_deref(),
            Some("jis:c:b9:lamp")
        );
        assert_eq!(rt.key_for("jis:c:b12:lamp").as_deref(), Some("jis:c:b12:*"));
        assert_eq!(rt.key_for("jis:c:b12:*").as_deref(), Some("jis:c:b12:*"));
        assert_eq!(rt.key_for("jis:c:b9:*"), None, "its own area");
    }

    #[test]
    fn with_areas_adverts_fold_into_areas_and_only_the_own_area_teaches_its_dids() {
        let mut rt = table();
        rt.set_area(Some("jis:c:b9:me"));
        let advert: JsonMap = serde_json::from_str(
            r#"{"jis:c:b12:x":3,"jis:c:b12:y":1,"jis:c:b7:*":4,"jis:c:b9:z":1,"jis:c:b9:*":0}"#,
        )
        .unwrap();
        // From a neighbour in b12: one hop from its own area, per-DID
        // claims about b9 (ours) refused, our own area's key skipped.
        let got = rt.parse_advertisement(Advert::Map(&advert), "jis:c:b9:me", "jis:c:b12:n");
        assert_eq!(
            got,
            vec![("jis:c:b12:*".into(), 1), ("jis:c:b7:*".into(), 5)]
        );
        assert_eq!(rt.stats().entries_ignored, 1, "the claim about jis:c:b9:z");
        // From a neighbour in b9: our area's DIDs are taken.
        let got = rt.parse_advertisement(Advert::Map(&advert), "jis:c:b9:me", "jis:c:b9:n");
        assert_eq!(
            got,
            vec![
                ("jis:c:b12:*".into(), 2),
                ("jis:c:b7:*".into(), 5),
                ("jis:c:b9:z".into(), 2)
            ]
        );
    }

    proptest::proptest! {
        /// The byte-wise reading agrees with splitting both at every `:`
        /// and counting the equal segments.
        #[test]
        fn the_shared_prefix_is_that_of_whole_segments(a in "[ab:]{0,8}", b in "[ab:]{0,8}") {
            let (mut shared, mut end) = (0, 0);
            for (x, y) in a.split(':').zip(b.split(':')) {
                if x != y {
                    break;
                }
                shared = end + x.len();
                end = shared + 1;
            }
            proptest::prop_assert_eq!(shared_prefix(&a, &b), shared);
        }
    }

    #[test]
    fn nested_areas_keep_one_route_per_largest_area_holding_the_destination_and_not_us() {
        assert_eq!(
            shared_prefix("jis:c:d3:b9", "jis:c:d3:b12"),
            "jis:c:d3".len()
        );
        assert_eq!(shared_prefix("jis:c:d3", "jis:c:d30"), "jis:c".len());
        assert_eq!(shared_prefix("jis:c", "other"), 0);
        let mut rt = table();
        rt.set_area(Some("jis:c:d3:b9:me"));
        let key = |d| rt.key_for(d).map(|k| k.into_owned());
        assert_eq!(key("jis:c:d3:b9:lamp").as_deref(), Some("jis:c:d3:b9:lamp"));
        assert_eq!(key("jis:c:d3:b12:lamp").as_deref(), Some("jis:c:d3:b12:*"));
        assert_eq!(key("jis:c:d5:b2:lamp").as_deref(), Some("jis:c:d5:*"));
        assert_eq!(key("jis:c:d5:b2:*").as_deref(), Some("jis:c:d5:*"));
        assert_eq!(key("jis:c:d30:*").as_deref(), Some("jis:c:d30:*"));
        assert_eq!(key("jis:x:d1:b1:n").as_deref(), Some("jis:x:*"));
        assert_eq!(
            key("jis:c:d3:hub").as_deref(),
            Some("jis:c:d3:hub"),
            "a DID of an area holding ours"
        );
        for holding_us in ["jis:c:d3:b9:*", "jis:c:d3:*", "jis:c:*", "jis:*"] {
            assert_eq!(key(holding_us), None, "{holding_us}");
        }
    }

    #[test]
    fn a_neighbour_teaches_only_the_areas_inside_those_that_hold_it_too() {
        let mut rt = RoutingTable::new(100, 1 << 20, Duration::from_secs(100));
        rt.set_area(Some("jis:c:d3:b9:me"));
        let advert = "1 jis:c:d3:b12:x 2 jis:c:d3:b7:* 3 jis:c:d5:*";
        // From another district: only the districts, and it stands one hop
        // from its own; what it says of our district's blocks is refused.
        let got = rt.parse_advertisement(Advert::Text(advert), "jis:c:d3:b9:me", "jis:c:d4:b1:n");
        assert_eq!(
            got,
            vec![("jis:c:d4:*".into(), 1), ("jis:c:d5:*".into(), 4)]
        );
        assert_eq!(rt.stats().entries_ignored, 2);
        // From another block of our district: all of it.
        let got = rt.parse_advertisement(Advert::Text(advert), "jis:c:d3:b9:me", "jis:c:d3:b12:n");
        assert_eq!(
            got,
            vec![
                ("jis:c:d3:b12:*".into(), 1),
                ("jis:c:d3:b7:*".into(), 3),
                ("jis:c:d5:*".into(), 4)
            ]
        );
        assert_eq!(rt.stats().entries_ignored, 2);
    }
}
