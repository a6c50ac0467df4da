//! [`HoldDowns`]: the routes a [`RoutingTable`](crate::routes::RoutingTable)
//! lost lately, each with the length it had, so that for a while no route
//! to the same destination much longer than that is taken (a neighbour's
//! stale route back through this node would close a loop that counts up a
//! round at a time). docs/ARCHITECTURE.md, "Routing".

use alloc::collections::BTreeMap;
use compact_str::CompactString;
use core::time::Duration;

use crate::time::MonoTime;

/// How much longer than a lost route a route to the same destination may
/// be and still be taken during its hold-down: a loop back through this
/// node is at least three links long (poisoned reverse rules out two), so
/// while hop counts agree a route through one is longer by three or more.
/// Routes a link or two longer, the usual detour round a node that left,
/// are still taken at once.
pub(crate) const HOLD_SLACK: u32 = 2;

/// Destinations held down: the shortest length each was lost at, and when
/// its hold-down ends. At most `capacity` of them.
#[derive(Debug)]
pub(crate) struct HoldDowns {
    held: BTreeMap<CompactString, (u32, MonoTime)>,
    capacity: usize,
    period: Duration,
}

impl HoldDowns {
    /// At most `capacity` destinations, each held for `period` after its
    /// last loss.
    pub(crate) fn new(capacity: usize, period: Duration) -> Self {
        HoldDowns {
            held: BTreeMap::new(),
            capacity,
            period,
        }
    }

    /// How long a loss holds its destination down.
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// Holds `destination` down from now, lost at `hops` links (the shorter
    /// length is kept when it is held already); false when there was no
    /// room. Lengths that say nothing (`unknown` or more) are not held.
    pub(crate) fn hold(
        &mut self,
        now: MonoTime,
        destination: &str,
        hops: u32,
        unknown: u32,
    ) -> bool {
        if hops >= unknown {
            return true;
        }
        let until = now + self.period;
        if let Some(h) = self.held.get_mut(destination) {
            *h = (h.0.min(hops), until);
            return true;
        }
        if self.held.len() >= self.capacity {
            self.expire(now);
        }
        if self.held.len() >= self.capacity {
            return false;
        }
        self.held
            .insert(CompactString::from(destination), (hops, until));
        true
    }

    /// Whether a route of `hops` to `destination` must be refused now:
    /// longer by more than [`HOLD_SLACK`] than a route to it lost within
    /// its hold-down.
    pub(crate) fn refuses(&mut self, now: MonoTime, destination: &str, hops: u32) -> bool {
        match self.held.get(destination) {
            Some(&(lost, until)) if now < until => hops > lost.saturating_add(HOLD_SLACK),
            Some(_) => {
                self.held.remove(destination);
                false
            }
            None => false,
        }
    }

    /// The length `destination` is held down at now, if it is.
    pub(crate) fn held_at(&self, now: MonoTime, destination: &str) -> Option<u32> {
        self.held
            .get(destination)
            .filter(|(_, until)| now < *until)
            .map(|(lost, _)| *lost)
    }

    /// Forgets the holds that ended.
    pub(crate) fn expire(&mut self, now: MonoTime) {
        self.held.retain(|_, (_, until)| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::tests::{addr, t};
    use crate::routes::{INFINITY, RouteSource, RoutingTable, UNKNOWN_HOPS};

    fn table() -> RoutingTable {
        RoutingTable::new(3, 10_000, Duration::from_secs(100))
    }

    #[test]
    fn a_hold_keeps_the_shortest_loss_until_its_period_after_the_last() {
        let mut h = HoldDowns::new(2, Duration::from_secs(10));
        assert!(h.hold(t(0), "jis:d", 5, UNKNOWN_HOPS));
        assert!(h.hold(t(5), "jis:d", 7, UNKNOWN_HOPS));
        assert!(h.refuses(t(14), "jis:d", 5 + HOLD_SLACK + 1));
        assert!(!h.refuses(t(14), "jis:d", 5 + HOLD_SLACK));
        assert!(!h.refuses(t(15), "jis:d", 60), "ended");
        assert!(h.hold(t(15), "jis:e", UNKNOWN_HOPS, UNKNOWN_HOPS));
        assert!(
            !h.refuses(t(15), "jis:e", 60),
            "an unknown length holds nothing"
        );
    }

    #[test]
    fn holds_are_bounded_and_room_comes_back_as_they_end() {
        let mut h = HoldDowns::new(2, Duration::from_secs(10));
        assert!(h.hold(t(0), "jis:a", 1, UNKNOWN_HOPS));
        assert!(h.hold(t(1), "jis:b", 1, UNKNOWN_HOPS));
        assert!(!h.hold(t(2), "jis:c", 1, UNKNOWN_HOPS), "full");
        assert!(
            h.hold(t(2), "jis:a", 1, UNKNOWN_HOPS),
            "held already: renewed"
        );
        assert!(h.hold(t(11), "jis:c", 1, UNKNOWN_HOPS), "jis:b ended");
        assert!(!h.refuses(t(11), "jis:b", 60));
        assert!(h.refuses(t(11), "jis:a", 60));
    }

    #[test]
    fn a_table_holds_a_lost_route_down_against_longer_ones_until_the_hold_ends() {
        let mut rt = RoutingTable::new(10, 10_000, Duration::from_secs(80));
        assert_eq!(rt.hold_down(), Duration::from_secs(10));
        rt.set_neighbour(addr(1), "jis:a");
        rt.learn(t(0), "jis:d", addr(1), 3, RouteSource::Advertised);
        assert_eq!(rt.lose_neighbour(t(1), addr(1)), 1);
        assert!(
            !rt.learn(
                t(2),
                "jis:d",
                addr(2),
                3 + HOLD_SLACK + 1,
                RouteSource::Advertised
            ),
            "longer than the lost route by more than the slack: a loop, maybe"
        );
        assert_eq!(rt.stats().held_refused, 1);
        assert!(rt.learn(
            t(2),
            "jis:d",
            addr(3),
            3 + HOLD_SLACK,
            RouteSource::Advertised
        ));
        rt.fail(t(3), "jis:d");
        assert!(
            !rt.learn(t(12), "jis:d", addr(2), 9, RouteSource::Advertised),
            "held from the shorter of the two losses until 10 s after the last"
        );
        assert!(rt.learn(t(13), "jis:d", addr(2), 9, RouteSource::Advertised));
        rt.learn(t(13), "jis:e", addr(4), 2, RouteSource::Advertised);
        assert!(!rt.learn(t(13), "jis:e", addr(4), INFINITY, RouteSource::Advertised));
        assert!(
            rt.learn(t(14), "jis:e", addr(5), UNKNOWN_HOPS, RouteSource::Response),
            "an answer that came back is no advertisement: not held back"
        );
        assert!(rt.learn(t(14), "jis:f", addr(5), 20, RouteSource::Advertised));
    }

    #[test]
    fn a_table_counts_the_holds_it_had_no_room_for() {
        let mut rt = table();
        for (i, d) in ["jis:a", "jis:b", "jis:c"].iter().enumerate() {
            rt.learn(t(0), d, addr(1), 2 + i as u32, RouteSource::Advertised);
        }
        assert_eq!(rt.remove_via(t(1), addr(1)), 3);
        rt.learn(t(1), "jis:e", addr(2), 2, RouteSource::Advertised);
        rt.fail(t(1), "jis:e");
        assert_eq!(rt.stats().holds_refused, 1, "a fourth hold: no room");
        assert!(!rt.learn(t(2), "jis:a", addr(3), 9, RouteSource::Advertised));
        assert!(
            rt.learn(t(2), "jis:e", addr(3), 9, RouteSource::Advertised),
            "not held"
        );
    }

    #[test]
    fn a_route_that_grows_round_by_round_is_dropped_beyond_the_slack() {
        let mut rt = table();
        rt.learn(t(0), "jis:d", addr(1), 3, RouteSource::Advertised);
        rt.advertisement_round(t(0));
        for hops in 4..=3 + HOLD_SLACK {
            assert!(rt.learn(
                t(i64::from(hops)),
                "jis:d",
                addr(1),
                hops,
                RouteSource::Advertised
            ));
        }
        assert!(
            !rt.learn(
                t(9),
                "jis:d",
                addr(1),
                4 + HOLD_SLACK,
                RouteSource::Advertised
            ),
            "counting up: dropped"
        );
        assert!(rt.get(t(9), "jis:d").is_none());
        let round = rt.advertisement_round(t(10));
        let to_n = RoutingTable::advertisement_for(&round, "jis:n", addr(9));
        assert_eq!(
            to_n.get("jis:d"),
            Some(INFINITY),
            "withdrawn in the next round"
        );
        assert!(!rt.learn(
            t(11),
            "jis:d",
            addr(2),
            4 + HOLD_SLACK,
            RouteSource::Advertised
        ));
    }
}
