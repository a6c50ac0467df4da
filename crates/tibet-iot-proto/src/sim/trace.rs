//! A diagnostic of a scenario's mesh pings (`ScenarioConfig::diagnostics`,
//! which `tibet-iot sim` sets when `SCENARIO_DEBUG` is in its environment):
//! when a ping is sent, where the learned routes from its source lead
//! (followed node by node through the tables as they stand), how long
//! that way is against the shortest path, and whether either end came back
//! at the last churn; at the end, how many pings of each kind were
//! answered and the engines' counters (drops, resends, routing, credit
//! refused) over the run and since the first ping, on standard error.
//! During the warm-up, every 10 virtual seconds, how far the routing has
//! converged ([`warmup_line`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Sim, addr, index};
use crate::requests::RequestId;
use crate::routes::{INFINITY, area_of};

/// One line on standard error: the virtual time, the datagrams sent so far,
/// and, summed over the engines, the routes held, their mean length, and
/// the routes learned (new or replaced) and expired. The mesh has
/// converged when the routes held stop growing and their length stops
/// falling.
pub(crate) fn warmup_line(sim: &Sim) {
    let now = sim.now();
    let (mut held, mut learned, mut expired, mut hops) = (0usize, 0u64, 0u64, 0u64);
    for (_, e) in sim.engines() {
        let r = e.stats(now).routes;
        held += r.entries;
        learned += r.learned;
        expired += r.expired;
        hops += e
            .routes()
            .iter()
            .map(|(_, r)| u64::from(r.hops))
            .sum::<u64>();
    }
    eprintln!(
        "warm-up {:>5} s: {} datagrams sent, routes held {held} (mean {:.3} links), learned {learned}, expired {expired}",
        now.mono
            .saturating_duration_since(crate::time::MonoTime::ZERO)
            .as_secs(),
        sim.sent(),
        hops as f64 / held.max(1) as f64,
    );
}

/// Where the routes from a ping's source lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Walk {
    /// To the target, along this many links.
    Arrives(u32),
    /// To a node with no route on (the packet floods from there), inside
    /// the target's area or not, after this many links, and whether that
    /// node holds the route down (lost lately: longer routes refused).
    NoRoute {
        in_area: bool,
        hops: u32,
        held: bool,
    },
    /// To a next hop that is not in the network (it left), inside the
    /// target's area or not.
    Departed { in_area: bool, hops: u32 },
    /// Round in a loop.
    Loop,
}

/// Follows the routes from `src` to `target` as the tables stand now,
/// without sending anything; a loop is printed node by node (each with its
/// route: how learned, its length, its age).
pub(crate) fn walk(sim: &Sim, src: usize, target: &str) -> Walk {
    let now = sim.now();
    let target_area = area_of(target);
    let (mut cur, mut from) = (src, None);
    let mut seen = std::collections::BTreeSet::new();
    let mut path = Vec::new();
    for hops in 0..INFINITY {
        let here = addr(cur);
        let Some(e) = sim.nodes.get(&here) else {
            let in_area = area_of(&sim.did_of(cur)) == target_area;
            return Walk::Departed { in_area, hops };
        };
        if e.did() == target {
            return Walk::Arrives(hops);
        }
        if !seen.insert(cur) {
            eprintln!("loop to {target}: {}", path.join(" > "));
            return Walk::Loop;
        }
        if let Some(r) = e.route_to(now.mono, target) {
            path.push(format!(
                "{} ({:?} {} hops, {:.0} s old)",
                e.did(),
                r.source,
                r.hops,
                now.mono.saturating_duration_since(r.learned).as_secs_f64()
            ));
        } else {
            path.push(format!("{} (peer)", e.did()));
        }
        let Some(next) = e.routed_next_hop(now, target, from).and_then(index) else {
            let in_area = area_of(e.did()) == target_area;
            let routes = e.routes();
            let held = routes
                .key_for(target)
                .and_then(|k| routes.held_down(now.mono, &k));
            return Walk::NoRoute {
                in_area,
                hops,
                held: held.is_some(),
            };
        };
        (from, cur) = (Some(here), next);
    }
    Walk::Loop
}

/// The pings of a scenario by kind, and which were answered.
pub(crate) struct Trace {
    kinds: BTreeMap<(SocketAddr, RequestId), (String, String)>,
    /// Kind: (sent, answered).
    tally: BTreeMap<String, (u32, u32)>,
    /// Graph neighbours of each node.
    adjacency: Vec<Vec<u32>>,
    /// Pings whose routes arrived when sent: how many, the links their
    /// routes took, and the links of the shortest paths among the nodes
    /// present.
    stretch: (u64, u64, u64),
    /// The engines' counters when the first ping was sent (engines that
    /// left since take their counts with them).
    at_first: Option<BTreeMap<&'static str, u64>>,
}

/// Links of the shortest path from `src` to `dst` over `adjacency`
/// among the nodes present in `sim` (`None`: not connected).
fn shortest(sim: &Sim, adjacency: &[Vec<u32>], src: usize, dst: usize) -> Option<u64> {
    let mut dist = vec![u64::MAX; adjacency.len()];
    let mut queue = std::collections::VecDeque::from([src]);
    dist[src] = 0;
    while let Some(x) = queue.pop_front() {
        if x == dst {
            return Some(dist[x]);
        }
        for &y in &adjacency[x] {
            let y = y as usize;
            if dist[y] == u64::MAX && sim.is_alive(y) {
                dist[y] = dist[x] + 1;
                queue.push_back(y);
            }
        }
    }
    None
}

/// The engines' drop, route and resend counters, summed.
fn counters(sim: &Sim) -> BTreeMap<&'static str, u64> {
    let now = sim.now();
    let mut agg: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, e) in sim.engines() {
        let st = e.stats(now);
        for (k, v) in [
            ("foreign", st.engine.responses_foreign),
            ("orphan", st.engine.responses_orphan),
            ("rood", st.engine.rood_dropped),
            ("replay", st.engine.replays_dropped),
            ("mesh_dup", st.engine.mesh_duplicates),
            ("timed_out", st.engine.requests_timed_out),
            ("retransmissions", st.engine.retransmissions),
            ("duplicates_answered", st.engine.duplicates_answered),
            ("resends_forwarded", st.relay.resends_forwarded),
            ("responses_resent", st.relay.responses_resent),
            ("responses_relayed", st.relay.responses_relayed),
            ("relayed", st.relay.relayed),
            ("credit_refused", st.guard.refused_datagrams),
            ("relay_rate_limited", st.engine.relay_rate_limited),
            ("seen", st.relay.dropped_seen),
            ("hoplimit", st.relay.dropped_hop_limit),
            ("paths_refused", st.relay.paths_refused),
            ("relay_foreign", st.relay.responses_foreign),
            ("routed", st.routes.routed),
            ("flooded", st.routes.flooded),
            ("unroutable", st.routes.unroutable),
            ("failed", st.routes.failed),
            ("untrusted", st.routes.untrusted_ignored),
            ("refused", st.routes.refused),
            ("probes", st.routes.probes),
            ("neighbours_lost", st.routes.neighbours_lost),
            ("repaired", st.routes.repaired),
            ("held_refused", st.routes.held_refused),
            ("holds_refused", st.routes.holds_refused),
            ("mesh_datagrams", st.routes.mesh_datagrams),
        ] {
            *agg.entry(k).or_default() += v;
        }
    }
    agg
}

impl Trace {
    /// A trace of a scenario over the graph `edges` of `n` nodes.
    pub(crate) fn new(n: usize, edges: &[(usize, usize)]) -> Trace {
        let mut adjacency = vec![Vec::new(); n];
        for &(a, b) in edges {
            adjacency[a].push(b as u32);
            adjacency[b].push(a as u32);
        }
        Trace {
            kinds: BTreeMap::new(),
            tally: BTreeMap::new(),
            adjacency,
            stretch: (0, 0, 0),
            at_first: None,
        }
    }

    /// A ping from `src` to `target` is sent now as `id` (`None`: refused
    /// at the source); `back` holds the nodes that came back at the last
    /// churn.
    pub(crate) fn sent(
        &mut self,
        sim: &Sim,
        src: usize,
        dst: usize,
        id: Option<RequestId>,
        back: &[usize],
    ) {
        if self.at_first.is_none() {
            self.at_first = Some(counters(sim));
        }
        let target = sim.did_of(dst);
        let w = walk(sim, src, &target);
        if let Walk::Arrives(h) = w
            && let Some(d) = shortest(sim, &self.adjacency, src, dst)
        {
            self.stretch.0 += 1;
            self.stretch.1 += u64::from(h);
            self.stretch.2 += d;
        }
        let kind = format!(
            "{:?} dst_back={} src_back={}",
            match w {
                Walk::Arrives(_) => Walk::Arrives(0),
                Walk::NoRoute { in_area, held, .. } => Walk::NoRoute {
                    in_area,
                    hops: 0,
                    held,
                },
                Walk::Departed { in_area, .. } => Walk::Departed { in_area, hops: 0 },
                Walk::Loop => Walk::Loop,
            },
            back.contains(&dst),
            back.contains(&src),
        );
        let detail = format!("{src} -> {dst} ({target}) at {:?}: {w:?}", sim.now);
        self.tally.entry(kind.clone()).or_default().0 += 1;
        match id {
            Some(id) => {
                self.kinds.insert((addr(src), id), (kind, detail));
            }
            None => eprintln!("refused: {detail}"),
        }
    }

    /// The ping `id` of the node at `a` was answered (or not).
    pub(crate) fn outcome(&mut self, a: SocketAddr, id: RequestId, answered: bool) {
        if let Some((kind, detail)) = self.kinds.remove(&(a, id)) {
            if answered {
                self.tally.entry(kind).or_default().1 += 1;
            } else {
                eprintln!("failed: {detail}; {kind}");
            }
        }
    }

    /// Prints the tally, how long the routes that arrived were against
    /// the shortest paths, then the engines' counters summed: over the
    /// whole run, and since the first ping.
    pub(crate) fn print(&self, sim: &Sim) {
        for (kind, (sent, answered)) in &self.tally {
            eprintln!("{answered}/{sent} answered: {kind}");
        }
        let (n, links, shortest) = self.stretch;
        eprintln!("routes of {n} pings: {links} links, shortest paths {shortest}");
        let agg = counters(sim);
        eprintln!("whole run: {agg:?}");
        if let Some(first) = &self.at_first {
            let since: BTreeMap<&str, u64> = agg
                .iter()
                .map(|(k, v)| (*k, v.saturating_sub(first.get(k).copied().unwrap_or(0))))
                .collect();
            eprintln!("since the first ping: {since:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_paths_count_links_among_the_nodes_present() {
        // A ring of five: 0-1-2-3-4-0.
        let mut sim = Sim::new(1);
        for i in 0..5 {
            sim.add(i, Sim::config());
        }
        let edges: Vec<(usize, usize)> = (0..5).map(|i| (i, (i + 1) % 5)).collect();
        let trace = Trace::new(5, &edges);
        assert_eq!(shortest(&sim, &trace.adjacency, 0, 0), Some(0));
        assert_eq!(shortest(&sim, &trace.adjacency, 0, 2), Some(2));
        assert_eq!(shortest(&sim, &trace.adjacency, 0, 3), Some(2));
        // Node 1 left: the way round the other side.
        sim.kill(1);
        assert_eq!(shortest(&sim, &trace.adjacency, 0, 2), Some(3));
        // And node 3 too: cut off.
        sim.kill(3);
        assert_eq!(shortest(&sim, &trace.adjacency, 0, 2), None);
    }
}
