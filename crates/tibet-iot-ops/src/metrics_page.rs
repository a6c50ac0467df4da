//! The metrics page: a node's [`NodeStats`] (and its uplink bridge's
//! [`MqttStats`]) as OpenMetrics text, encoded by `prometheus-client`.
//!
//! Every series reads a field of the typed stats, so a renamed field is a
//! compile error here, not a series that silently reads 0. The page holds
//! no packet content, only counts and fixed label values, so an untrusted
//! sender cannot grow it or inject text into it.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tibet_iot::{NodeStats, PROCESSING_BUCKETS_NS, PingMetrics};
use tibet_ping::{AirlockZone, PingDecision};

use crate::mqtt::MqttStats;

/// Label set: `(name, value)` pairs with fixed names and bounded values.
type Labels = Vec<(&'static str, String)>;

/// A number read from a node's stats.
type Read = fn(&NodeStats) -> u64;

/// A number read from the uplink bridge's counters.
type ReadMqtt = fn(&MqttStats) -> u64;

/// A size (`usize`) as a sample value.
fn size(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Pings by zone and decision; the usual three pairs are always present.
fn ping_family(pings: &PingMetrics) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    for (z, d) in [
        (AirlockZone::Groen, PingDecision::Accept),
        (AirlockZone::Geel, PingDecision::Pending),
        (AirlockZone::Rood, PingDecision::Reject),
    ] {
        let _ = f.get_or_create(&ping_labels(z, d));
    }
    for (z, d, n) in pings.decided_counts() {
        f.get_or_create(&ping_labels(z, d)).inc_by(n);
    }
    f
}

fn ping_labels(zone: AirlockZone, decision: PingDecision) -> Labels {
    vec![
        ("zone", zone.as_str().to_owned()),
        ("decision", decision.as_str().to_owned()),
    ]
}

/// The processing-time histogram of a snapshot, encoded as an OpenMetrics
/// histogram in seconds.
#[derive(Debug)]
struct ProcessingHistogram {
    sum_s: f64,
    count: u64,
    /// (upper bound in seconds, count in that bucket); not cumulative.
    buckets: Vec<(f64, u64)>,
}

impl ProcessingHistogram {
    fn new(pings: &PingMetrics) -> Self {
        let counts = pings.processing_buckets();
        let buckets = PROCESSING_BUCKETS_NS
            .iter()
            .map(|ns| *ns as f64 / 1e9)
            .chain(std::iter::once(f64::MAX))
            .enumerate()
            .map(|(i, bound)| (bound, counts.get(i).copied().unwrap_or(0)))
            .collect();
        ProcessingHistogram {
            sum_s: pings.processing_sum_ns() as f64 / 1e9,
            count: pings.processing_count(),
            buckets,
        }
    }
}

impl EncodeMetric for ProcessingHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum_s, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn gauge(value: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

fn family<'a>(
    label: &'static str,
    items: impl IntoIterator<Item = (&'a str, u64)>,
) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    for (name, value) in items {
        f.get_or_create(&vec![(label, name.to_owned())])
            .inc_by(value);
    }
    f
}

/// Drop reasons and the counter of each.
const DROPS: &[(&str, Read)] = &[
    ("malformed", |s| s.engine.malformed),
    ("airlock_rood", |s| s.engine.rood_dropped),
    ("replay", |s| s.engine.replays_dropped),
    ("nonce_cache_full", |s| s.ping.nonce_refusals),
    ("review_queue_full", |s| s.ping.pending_refusals),
    ("request_queue_full", |s| s.engine.requests_refused),
    ("response_foreign", |s| s.engine.responses_foreign),
    ("response_orphan", |s| s.engine.responses_orphan),
    ("beacon_too_old", |s| s.engine.beacons_rejected),
    ("events_full", |s| s.engine.events_dropped),
    ("peer_table_full", |s| s.peers.refused),
    ("relay_not_mesh", |s| s.relay.dropped_not_mesh),
    ("relay_seen", |s| s.relay.dropped_seen),
    ("relay_hop_limit", |s| s.relay.dropped_hop_limit),
    ("relay_sender_rood", |s| s.engine.relay_refused_rood),
    ("relay_rate_limited", |s| s.engine.relay_rate_limited),
    ("beacon_rate_limited", |s| s.engine.beacons_rate_limited),
    ("amplification", |s| s.guard.refused_datagrams),
    ("relay_path_table_full", |s| s.relay.paths_refused),
    ("relay_response_foreign", |s| s.relay.responses_foreign),
    ("discovery_reply_rate_limited", |s| {
        s.discovery.replies_rate_limited
    }),
    ("discovery_reply_queue_full", |s| {
        s.discovery.replies_refused
    }),
    ("send_queue_full", |s| s.driver.send_queue_dropped),
    ("send_error", |s| s.driver.send_errors),
    ("uplink_queue_full", |s| s.uplink.queue_dropped),
    ("uplink_channel_full", |s| s.driver.uplink_dropped),
    ("uplink_refused", |s| s.uplink.frames_refused),
    ("uplink_response_unaddressed", |s| {
        s.uplink.responses_unaddressed
    }),
];

/// Identity refusals (docs/PROTOCOL.md section 6) and the counter of each.
const IDENTITY_REFUSED: &[(&str, Read)] = &[
    ("unsigned", |s| s.identity.unsigned),
    ("bad_signature", |s| s.identity.bad_signature),
    ("wrong_key", |s| s.identity.wrong_key),
    ("unpinned_in_require", |s| s.identity.unpinned_in_require),
    ("bad_beacon_key", |s| s.identity.bad_beacon_key),
    ("response_refused", |s| s.identity.responses_refused),
    ("over_verify_budget", |s| s.identity.over_verify_budget),
];

/// Packets and answers the identity gate let through, by how.
const IDENTITY_PASSED: &[(&str, Read)] = &[
    ("pinned", |s| s.identity.verified),
    ("self_certified", |s| s.identity.self_certified),
    ("unpinned", |s| s.identity.unpinned),
    ("response_pinned", |s| s.identity.responses_verified),
];

/// Queues and caches with their current depth.
const QUEUES: &[(&str, Read)] = &[
    ("pending_requests", |s| size(s.pending_requests)),
    ("response_cache", |s| size(s.response_cache_entries)),
    ("nonce_cache", |s| size(s.ping.nonce_tracked)),
    ("relay_seen_cache", |s| size(s.relay.seen_entries)),
    ("relay_paths", |s| size(s.relay.path_entries)),
    ("review_queue", |s| size(s.ping.pending_count)),
    ("uplink", |s| size(s.uplink.queued)),
];

/// The MQTT bridge's counters (docs/FLEETS.md), exported while the node is
/// in a fleet: (name without `_total`, help, counter).
const MQTT_COUNTERS: &[(&str, &str, ReadMqtt)] = &[
    (
        "tibet_mqtt_published",
        "Frames handed to the broker connection",
        |m| m.published,
    ),
    (
        "tibet_mqtt_publish_dropped",
        "Frames dropped: the outbound queue was full (broker down for long)",
        |m| m.publish_dropped,
    ),
    (
        "tibet_mqtt_acked",
        "Publishes the broker acknowledged (QoS 1)",
        |m| m.acked,
    ),
    (
        "tibet_mqtt_publish_invalid",
        "Frames refused: DID unusable in a topic, or frame too large",
        |m| m.publish_invalid,
    ),
    (
        "tibet_mqtt_received",
        "Frames received on this node's topics",
        |m| m.received,
    ),
    (
        "tibet_mqtt_duplicates",
        "QoS 1 redeliveries dropped by packet id",
        |m| m.duplicates,
    ),
    (
        "tibet_mqtt_inbound_dropped",
        "Frames dropped: the node was behind (inbound queue full)",
        |m| m.inbound_dropped,
    ),
    (
        "tibet_mqtt_foreign",
        "Messages on topics not asked for: ignored",
        |m| m.foreign,
    ),
    (
        "tibet_mqtt_oversized",
        "Messages larger than a frame: dropped, the connection kept",
        |m| m.oversized,
    ),
    (
        "tibet_mqtt_broker_down",
        "Broker connection failures",
        |m| m.broker_down,
    ),
    (
        "tibet_mqtt_reconnects",
        "Broker connections after the first",
        |m| m.reconnects,
    ),
    (
        "tibet_mqtt_subscribed",
        "Subscriptions the broker confirmed",
        |m| m.subscribed,
    ),
    (
        "tibet_mqtt_local_refused",
        "Local peers' DIDs not subscribed to (over the cap, or unusable)",
        |m| m.local_refused,
    ),
    (
        "tibet_mqtt_origins_subscribed",
        "Response topics held for senders of relayed pings that are not local peers",
        |m| m.origins_subscribed,
    ),
    (
        "tibet_mqtt_origins_refused",
        "Senders of relayed pings whose response topic was not held (over the cap, or queue full)",
        |m| m.origins_refused,
    ),
    (
        "tibet_mqtt_events_published",
        "Decided pings published to the events topic",
        |m| m.events_published,
    ),
    (
        "tibet_mqtt_events_limited",
        "Decided pings not published: over the per-second limit",
        |m| m.events_limited,
    ),
];

/// Plain counters: (name without `_total`, help, counter).
const COUNTERS: &[(&str, &str, Read)] = &[
    (
        "tibet_datagrams_received",
        "Datagrams handed to the engine",
        |s| s.engine.datagrams_in,
    ),
    ("tibet_datagrams_sent", "Datagrams the engine sent", |s| {
        s.engine.datagrams_out
    }),
    (
        "tibet_datagrams_sent_segmented",
        "Datagrams sent in segmented sends (UDP_SEGMENT)",
        |s| s.driver.sent_segmented,
    ),
    (
        "tibet_requests_sent",
        "Requests sent (pings, heartbeats)",
        |s| s.engine.requests_sent,
    ),
    (
        "tibet_requests_timed_out",
        "Requests that got no answer in time",
        |s| s.engine.requests_timed_out,
    ),
    ("tibet_retransmissions", "Resends of requests", |s| {
        s.engine.retransmissions
    }),
    (
        "tibet_responses_matched",
        "Responses matched to our requests",
        |s| s.engine.responses_matched,
    ),
    (
        "tibet_duplicates_answered",
        "Retransmitted duplicates answered from the response cache",
        |s| s.engine.duplicates_answered,
    ),
    ("tibet_peers_expired", "Peers pruned for idleness", |s| {
        s.peers.expired
    }),
    ("tibet_beacons_sent", "Discovery beacons sent", |s| {
        s.discovery.beacons_sent
    }),
    ("tibet_beacons_received", "Discovery beacons heard", |s| {
        s.discovery.beacons_received
    }),
];

/// The page for one snapshot: the node's stats, its uplink bridge's
/// counters when it is in a fleet, and the metrics connections refused.
pub(crate) fn render(stats: &NodeStats, mqtt: Option<&MqttStats>, refused_scrapes: u64) -> String {
    let table = |items: &'static [(&'static str, Read)]| {
        items.iter().map(|(name, read)| (*name, read(stats)))
    };
    let mut r = Registry::default();
    r.register(
        "tibet_pings",
        "Pings addressed to this node, by airlock zone and decision",
        ping_family(&stats.pings),
    );
    r.register_with_unit(
        "tibet_ping_processing",
        "Time from receipt to decision of a ping",
        Unit::Seconds,
        ProcessingHistogram::new(&stats.pings),
    );
    r.register(
        "tibet_drops",
        "Datagrams, pings and answers refused, by reason",
        family("reason", table(DROPS)),
    );
    let replays = &stats.ping.replay_reasons;
    r.register(
        "tibet_replays",
        "Pings refused by the replay check, by reason",
        family(
            "reason",
            [
                ("seen", replays.seen),
                ("too_old", replays.too_old),
                ("too_far_in_future", replays.too_far_in_future),
                ("unparseable", replays.unparseable),
                ("before_restart", replays.before_restart),
            ],
        ),
    );
    r.register(
        "tibet_relays",
        "Mesh packets forwarded (packet) and responses sent back (response)",
        family(
            "kind",
            [
                ("packet", stats.relay.relayed),
                ("response", stats.relay.responses_relayed),
            ],
        ),
    );
    r.register(
        "tibet_identity_refused",
        "Packets and answers refused by the identity check, by reason",
        family("reason", table(IDENTITY_REFUSED)),
    );
    r.register(
        "tibet_identity_passed",
        "Packets and answers the identity check let through, by how",
        family("kind", table(IDENTITY_PASSED)),
    );
    for (name, help, read) in COUNTERS {
        r.register(*name, *help, counter(read(stats)));
    }
    r.register(
        "tibet_audit_tokens_written",
        "Provenance tokens appended to the audit file",
        counter(stats.driver.audit_written),
    );
    r.register(
        "tibet_audit_tokens_failed",
        "Provenance tokens that could not be written",
        counter(stats.driver.audit_failures),
    );
    r.register(
        "tibet_metrics_scrapes_refused",
        "Metrics connections closed because too many were open",
        counter(refused_scrapes),
    );
    r.register(
        "tibet_peers",
        "Peers in the peer table",
        gauge(size(stats.peers.tracked)),
    );
    r.register(
        "tibet_peers_alive",
        "Peers heard from within the peer timeout",
        gauge(size(stats.peers.alive)),
    );
    r.register(
        "tibet_pending_reviews",
        "GEEL pings waiting for an operator",
        gauge(size(stats.ping.pending_count)),
    );
    if let Some(mqtt) = mqtt {
        for (name, help, read) in MQTT_COUNTERS {
            r.register(*name, *help, counter(read(mqtt)));
        }
        r.register(
            "tibet_mqtt_local_dids",
            "Local peers' DIDs whose topics this hub subscribes to",
            gauge(mqtt.local_dids),
        );
    }
    let depths = Family::<Labels, Gauge>::default();
    for (queue, depth) in table(QUEUES) {
        depths
            .get_or_create(&vec![("queue", queue.to_owned())])
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
    r.register(
        "tibet_queue_depth",
        "Entries in each bounded queue or cache",
        depths,
    );
    let mut out = String::new();
    if encode(&mut out, &r).is_err() {
        out = "# EOF\n".into();
    }
    stable_order(&out)
}

/// The OpenMetrics page in the classic Prometheus text format (0.0.4): a
/// counter family is named with its `_total` suffix, and the `# UNIT` and
/// `# EOF` lines go.
pub(crate) fn to_prometheus_text(page: &str) -> String {
    let counters: std::collections::HashSet<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(page.len() + 64);
    for line in page.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The page with the samples of each counter and gauge family sorted, so
/// that series keep their order from one scrape to the next (a family
/// keeps its label sets in a hash map). Histogram buckets keep theirs.
fn stable_order(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut samples: Vec<&str> = Vec::new();
    let mut sort = true;
    let flush = |samples: &mut Vec<&str>, sort: bool, out: &mut String| {
        if sort {
            samples.sort_unstable();
        }
        for l in samples.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for line in page.lines() {
        if line.starts_with('#') {
            flush(&mut samples, sort, &mut out);
            if let Some(t) = line.strip_prefix("# TYPE ") {
                sort = !t.ends_with(" histogram");
            }
            out.push_str(line);
            out.push('\n');
        } else {
            samples.push(line);
        }
    }
    flush(&mut samples, sort, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use tibet_iot::{IoTNode, TransportConfig};

    use super::*;

    /// The stats of a node that has done nothing yet.
    fn idle() -> NodeStats {
        IoTNode::new("jis:test:node", TransportConfig::loopback()).stats()
    }

    #[test]
    fn the_page_carries_the_snapshot() {
        let mut stats = idle();
        stats.engine.malformed = 7;
        stats.engine.datagrams_in = 9;
        stats.relay.relayed = 3;
        stats.peers.tracked = 2;
        stats.peers.alive = 1;
        stats.ping.pending_count = 4;
        stats.ping.replay_reasons.seen = 5;
        stats.driver.audit_written = 6;
        let page = render(&stats, None, 2);
        for line in [
            "tibet_drops_total{reason=\"malformed\"} 7",
            "tibet_datagrams_received_total 9",
            "tibet_relays_total{kind=\"packet\"} 3",
            "tibet_peers 2",
            "tibet_peers_alive 1",
            "tibet_pending_reviews 4",
            "tibet_queue_depth{queue=\"review_queue\"} 4",
            "tibet_replays_total{reason=\"seen\"} 5",
            "tibet_replays_total{reason=\"before_restart\"} 0",
            "tibet_audit_tokens_written_total 6",
            "tibet_metrics_scrapes_refused_total 2",
            "tibet_ping_processing_seconds_bucket",
        ] {
            assert!(page.contains(line), "{line} in {page}");
        }
        assert!(page.ends_with("# EOF\n"));
    }

    #[test]
    fn ping_counts_and_processing_time_come_from_the_snapshot() {
        let mut stats = idle();
        let mut pings = PingMetrics::default();
        for ms in [0.001, 0.002, 0.005, 0.03] {
            pings.observe(AirlockZone::Groen, PingDecision::Accept, Some(ms));
        }
        pings.observe(AirlockZone::Groen, PingDecision::Accept, Some(1_000.0));
        pings.observe(AirlockZone::Rood, PingDecision::Reject, None);
        pings.observe(AirlockZone::Rood, PingDecision::Reject, None);
        stats.pings = pings;
        let page = render(&stats, None, 0);
        for line in [
            "tibet_pings_total{zone=\"GROEN\",decision=\"accept\"} 5",
            "tibet_pings_total{zone=\"ROOD\",decision=\"reject\"} 2",
            "tibet_pings_total{zone=\"GEEL\",decision=\"pending\"} 0",
            "tibet_ping_processing_seconds_count 5",
            "tibet_ping_processing_seconds_bucket{le=\"+Inf\"} 5",
        ] {
            assert!(page.contains(line), "{line} in {page}");
        }
        // Cumulative: 3 at 10 µs, 4 at 40 µs, 5 at +Inf.
        assert!(
            page.contains("tibet_ping_processing_seconds_bucket{le=\"4e-5\"} 4")
                || page.contains("tibet_ping_processing_seconds_bucket{le=\"0.00004\"} 4"),
            "{page}"
        );
        let sum = page
            .lines()
            .find_map(|l| l.strip_prefix("tibet_ping_processing_seconds_sum "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("a sum");
        assert!((sum - 1.000_038).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn mqtt_counters_appear_only_in_a_fleet() {
        let mut stats = idle();
        let plain = render(&stats, None, 0);
        assert!(!plain.contains("tibet_mqtt_"), "{plain}");
        stats.uplink.queue_dropped = 4;
        stats.uplink.queued = 1;
        let mqtt = MqttStats {
            published: 3,
            broker_down: 2,
            local_dids: 5,
            ..MqttStats::default()
        };
        let page = render(&stats, Some(&mqtt), 0);
        for line in [
            "tibet_mqtt_published_total 3",
            "tibet_mqtt_broker_down_total 2",
            "tibet_mqtt_duplicates_total 0",
            "tibet_mqtt_local_dids 5",
            "tibet_drops_total{reason=\"uplink_queue_full\"} 4",
            "tibet_queue_depth{queue=\"uplink\"} 1",
        ] {
            assert!(page.contains(line), "{line} in {page}");
        }
    }

    #[test]
    fn classic_text_names_counters_with_total() {
        let om = "# HELP a_b Some.\n# TYPE a_b counter\na_b_total 1\n# HELP t Time.\n# TYPE t_seconds histogram\n# UNIT t_seconds seconds\nt_seconds_count 0\n# EOF\n";
        let text = to_prometheus_text(om);
        assert_eq!(
            text,
            "# HELP a_b_total Some.\n# TYPE a_b_total counter\na_b_total 1\n# HELP t Time.\n# TYPE t_seconds histogram\nt_seconds_count 0\n"
        );
    }

    #[test]
    fn identity_series_carry_the_identity_stats() {
        let mut stats = idle();
        stats.identity.unsigned = 3;
        stats.identity.wrong_key = 2;
        stats.identity.verified = 7;
        stats.identity.responses_refused = 1;
        let page = render(&stats, None, 0);
        for line in [
            "tibet_identity_refused_total{reason=\"unsigned\"} 3",
            "tibet_identity_refused_total{reason=\"wrong_key\"} 2",
            "tibet_identity_refused_total{reason=\"response_refused\"} 1",
            "tibet_identity_refused_total{reason=\"bad_signature\"} 0",
            "tibet_identity_passed_total{kind=\"pinned\"} 7",
        ] {
            assert!(page.contains(line), "{line} in {page}");
        }
    }

    #[test]
    fn series_keep_their_order_between_scrapes() {
        let mut stats = idle();
        stats.engine.malformed = 1;
        let first = render(&stats, None, 0);
        for _ in 0..20 {
            assert_eq!(render(&stats, None, 0), first);
        }
        let drops: Vec<&str> = first
            .lines()
            .filter(|l| l.starts_with("tibet_drops_total"))
            .collect();
        let mut sorted = drops.clone();
        sorted.sort_unstable();
        assert_eq!(drops, sorted);
        assert_eq!(drops.len(), DROPS.len());
        assert!(first.ends_with("# EOF\n"), "{first}");
    }
}
