//! A diagnostic of a scenario's mesh pings (`ScenarioConfig::diagnostics`,
//! which `tibet-iot sim` sets when `SCENARIO_DEBUG` is in its environment):
//! when a ping is sent, where the learned routes from its source lead
//! (followed node by node through the tables as they stand), and whether
//! either end came back at the last churn; at the end, how many pings of
//! each kind were answered, on standard error.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Sim, addr, index};
use crate::requests::RequestId;
use crate::routes::{INFINITY, area_of};

/// Where the routes from a ping's source lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Walk {
    /// To the target, along this many links.
    Arrives(u32),
    /// To a node with no route on (the packet floods from there), inside
    /// the target's area or not, after this many links.
    NoRoute { in_area: bool, hops: u32 },
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
            return Walk::NoRoute { in_area, hops };
        };
        (from, cur) = (Some(here), next);
    }
    Walk::Loop
}

/// The pings of a scenario by kind, and which were answered.
#[derive(Default)]
pub(crate) struct Trace {
    kinds: BTreeMap<(SocketAddr, RequestId), (String, String)>,
    /// Kind: (sent, answered).
    tally: BTreeMap<String, (u32, u32)>,
}

impl Trace {
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
        let target = sim.did_of(dst);
        let w = walk(sim, src, &target);
        let kind = format!(
            "{:?} dst_back={} src_back={}",
            match w {
                Walk::Arrives(_) => Walk::Arrives(0),
                Walk::NoRoute { in_area, .. } => Walk::NoRoute { in_area, hops: 0 },
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

    /// Prints the tally, then the engines' drop and route counters summed.
    pub(crate) fn print(&self, sim: &Sim) {
        for (kind, (sent, answered)) in &self.tally {
            eprintln!("{answered}/{sent} answered: {kind}");
        }
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
            ] {
                *agg.entry(k).or_default() += v;
            }
        }
        eprintln!("{agg:?}");
    }
}
