//! [`Fleet`]: how a scenario's nodes join the [`Sim`] (named, commissioned
//! with their graph neighbours), and churn: a share of them leaving each
//! virtual minute and coming back the minute after as fresh engines.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use tibet_ping::AirlockRule;

use super::{Sim, did};
use crate::config::TransportConfig;
use crate::time::MonoTime;

/// The nodes of a scenario: their names, links and config, and who is away.
pub(crate) struct Fleet {
    /// One copy for every node.
    config: Arc<TransportConfig>,
    rule: AirlockRule,
    /// Graph neighbours of each node (kept only with churn: a node that
    /// comes back is linked again).
    adjacency: Vec<Vec<u32>>,
    /// Nodes that leave per virtual minute.
    per_minute: usize,
    /// When the next nodes leave.
    next: MonoTime,
    /// The nodes that left at the last churn, back at the next one.
    away: Vec<usize>,
    /// The nodes that came back at the last churn.
    back: Vec<usize>,
    /// Mesh datagrams counted by engines that left (their counters go with
    /// them).
    pub(crate) departed_mesh_datagrams: u64,
}

/// The DID of node `i`: [`did`]`(i)` in a flat mesh; with `k` > 1 areas per
/// side, `jis:sim:a<cell>:n<i>` where the cell is where it stands; with
/// `regions` > 1 per side as well, `jis:sim:r<region>:a<cell>:n<i>`.
pub(crate) fn name(i: usize, k: usize, regions: usize, points: &[(f64, f64)]) -> String {
    let cell = |v: f64, k: usize| ((v * k as f64) as usize).min(k - 1);
    match points.get(i) {
        Some(&(x, y)) if k > 1 && regions > 1 => {
            // A region holds `per` x `per` whole cells.
            let (cx, cy, per) = (cell(x, k), cell(y, k), k.div_ceil(regions));
            format!(
                "jis:sim:r{}:a{}:n{i}",
                cx / per * regions + cy / per,
                cx * k + cy
            )
        }
        Some(&(x, y)) if k > 1 => format!("jis:sim:a{}:n{i}", cell(x, k) * k + cell(y, k)),
        _ => did(i),
    }
}

impl Fleet {
    /// A fleet of `n` nodes over `edges` with `config`, accepting the
    /// fleet's pings by `rule`; `churn` of them leave per virtual minute.
    pub(crate) fn new(
        config: TransportConfig,
        rule: AirlockRule,
        n: usize,
        edges: &[(usize, usize)],
        churn: f64,
        now: MonoTime,
    ) -> Fleet {
        let per_minute = (n as f64 * churn.clamp(0.0, 0.5)).round() as usize;
        let mut adjacency = Vec::new();
        if per_minute > 0 {
            adjacency = vec![Vec::new(); n];
            for &(a, b) in edges {
                adjacency[a].push(b as u32);
                adjacency[b].push(a as u32);
            }
        }
        Fleet {
            config: Arc::new(config),
            rule,
            adjacency,
            per_minute,
            next: now + Duration::from_secs(60),
            away: Vec::new(),
            back: Vec::new(),
            departed_mesh_datagrams: 0,
        }
    }

    /// The nodes that came back at the last churn (sorted).
    pub(crate) fn back(&self) -> &[usize] {
        &self.back
    }

    /// Nodes that leave (and come back) per virtual minute.
    pub(crate) fn per_minute(&self) -> usize {
        self.per_minute
    }

    /// Adds node `i` as `name`, started now, events off, accepting the
    /// fleet's pings.
    pub(crate) fn add(&self, sim: &mut Sim, i: usize, name: String) {
        sim.add_named(i, name, Arc::clone(&self.config));
        let e = sim.node(i);
        e.set_events_enabled(false);
        e.add_rule(self.rule.clone());
    }

    /// Links `a` and `b` both ways, each trusting the other (so each may
    /// teach the other routes).
    pub(crate) fn commission(sim: &mut Sim, a: usize, b: usize) {
        let now = sim.now();
        sim.link(a, b);
        let (da, db) = (sim.did_of(a), sim.did_of(b));
        sim.node(a).set_trust(now, &db, 0.9);
        sim.node(b).set_trust(now, &da, 0.9);
    }

    /// Runs the simulation for `d`, letting nodes leave and come back at
    /// each virtual minute on the way.
    pub(crate) fn run_for(&mut self, sim: &mut Sim, d: Duration) {
        let end = sim.now().mono + d;
        while self.per_minute > 0 && self.next <= end {
            sim.run_until(self.next);
            self.churn(sim);
            self.next = self.next + Duration::from_secs(60);
        }
        sim.run_until(end);
    }

    /// The nodes away come back; as many others, drawn at random among the
    /// present ones, leave.
    fn churn(&mut self, sim: &mut Sim) {
        let n = self.adjacency.len();
        self.back = std::mem::take(&mut self.away);
        for &i in &self.back {
            let name = sim.did_of(i);
            self.add(sim, i, name);
            for j in self.adjacency[i].clone() {
                let j = j as usize;
                if sim.is_alive(j) {
                    Fleet::commission(sim, i, j);
                }
            }
        }
        let mut present: Vec<usize> = (0..n).filter(|&i| sim.is_alive(i)).collect();
        let take = self.per_minute.min(present.len().saturating_sub(2));
        let (chosen, _) = present.partial_shuffle(sim.rng(), take);
        let mut leaving = chosen.to_vec();
        leaving.sort_unstable();
        let now = sim.now();
        for &i in &leaving {
            self.departed_mesh_datagrams += sim.node(i).stats(now).routes.mesh_datagrams;
            sim.kill(i);
        }
        self.away = leaving;
    }

    /// A node present now, drawn at random, other than `not`.
    pub(crate) fn pick(sim: &mut Sim, n: usize, not: Option<usize>) -> usize {
        loop {
            let i = sim.rng().gen_range(0..n);
            if Some(i) != not && sim.is_alive(i) {
                return i;
            }
        }
    }
}
