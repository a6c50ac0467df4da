//! `listen --metrics ADDR:PORT`: the node's counters as a Prometheus /
//! OpenMetrics text page at `GET /metrics` (`prometheus-client` encodes it).
//!
//! Each scrape asks the node loop for a fresh `stats` snapshot (the same data
//! as the control socket's `stats` op: the engine counts pings by zone and
//! decision and their processing time itself) and builds the page from it,
//! plus the audit tokens [`CountingSink`] saw. The HTTP side is a small HTTP/1.1 responder over a tokio
//! `TcpListener` rather than a web framework: it only ever answers one GET,
//! so it reads at most [`MAX_REQUEST`] bytes within [`REQUEST_TIMEOUT`],
//! serves at most [`MAX_CONNECTIONS`] clients at once (others are closed,
//! counted, and logged at most once a second with their number) and closes every connection after its answer. The page holds
//! no packet content, only counts and fixed label values, so an untrusted
//! sender cannot grow it or inject text into it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use serde_json::Value;
use tibet_iot::PROCESSING_BUCKETS_NS;
use tibet_iot::{AuditError, AuditRecord, AuditSink, Stored};
use tibet_ping::{AirlockZone, PingDecision};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::control::{Call, Request};
use crate::logging::EverySecond;

/// Longest HTTP request head read.
pub(crate) const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its request head.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at the same time.
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// Time the node loop has to answer a snapshot request.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(2);

/// Label set: `(name, value)` pairs with fixed names and bounded values.
type Labels = Vec<(&'static str, String)>;

/// Audit tokens written and lost, process-wide (one node per `listen`).
/// Only counted when `--audit` installs a sink.
static TOKENS_WRITTEN: AtomicU64 = AtomicU64::new(0);
static TOKENS_FAILED: AtomicU64 = AtomicU64::new(0);

/// Counts one audit token written (`true`) or failed (`false`).
pub(crate) fn count_token(written: bool) {
    let c = if written {
        &TOKENS_WRITTEN
    } else {
        &TOKENS_FAILED
    };
    c.fetch_add(1, Ordering::Relaxed);
}

/// An [`AuditSink`] that counts the tokens its inner sink stored or failed
/// to store. Installed only with `--audit`: without it the engine builds no
/// audit records at all (the ping counters come from the engine's stats).
pub(crate) struct CountingSink {
    inner: Box<dyn AuditSink>,
}

impl CountingSink {
    /// Wraps `inner` (the `--audit` sink).
    pub(crate) fn wrap(inner: Box<dyn AuditSink>) -> Box<dyn AuditSink> {
        Box::new(CountingSink { inner })
    }
}

impl AuditSink for CountingSink {
    fn record(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        let r = self.inner.record(record);
        count_token(r.is_ok());
        r
    }

    fn record_batch(&mut self, records: &[AuditRecord]) -> Stored {
        let out = self.inner.record_batch(records);
        TOKENS_WRITTEN.fetch_add(out.written, Ordering::Relaxed);
        TOKENS_FAILED.fetch_add(out.failed, Ordering::Relaxed);
        out
    }

    fn flush(&mut self) -> Result<(), AuditError> {
        self.inner.flush()
    }
}

/// Pings by zone and decision from the snapshot's `pings/decided` map
/// (`"ZONE/decision" -> count`); the usual three pairs are always present.
fn ping_family(stats: &Value) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    for (z, d) in [
        (AirlockZone::Groen, PingDecision::Accept),
        (AirlockZone::Geel, PingDecision::Pending),
        (AirlockZone::Rood, PingDecision::Reject),
    ] {
        let _ = f.get_or_create(&ping_labels(z.as_str(), d.as_str()));
    }
    let decided = stats.pointer("/pings/decided").and_then(Value::as_object);
    for (key, n) in decided.into_iter().flatten() {
        // Only the engine's own spelling is turned into labels, so the
        // label values stay a fixed, small set.
        let Some((z, d)) = key.split_once('/') else {
            continue;
        };
        let (Ok(z), Ok(d)) = (z.parse::<AirlockZone>(), d.parse::<PingDecision>()) else {
            continue;
        };
        f.get_or_create(&ping_labels(z.as_str(), d.as_str()))
            .inc_by(n.as_u64().unwrap_or(0));
    }
    f
}

fn ping_labels(zone: &str, decision: &str) -> Labels {
    vec![("zone", zone.to_owned()), ("decision", decision.to_owned())]
}

/// The processing-time histogram of a snapshot (`pings/processing_*`),
/// encoded as an OpenMetrics histogram in seconds.
#[derive(Debug)]
struct ProcessingHistogram {
    sum_s: f64,
    count: u64,
    /// (upper bound in seconds, count in that bucket); not cumulative.
    buckets: Vec<(f64, u64)>,
}

impl ProcessingHistogram {
    fn from_stats(stats: &Value) -> Self {
        let counts: Vec<u64> = stats
            .pointer("/pings/processing_buckets")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(0)).collect())
            .unwrap_or_default();
        let buckets = PROCESSING_BUCKETS_NS
            .iter()
            .map(|ns| *ns as f64 / 1e9)
            .chain(std::iter::once(f64::MAX))
            .enumerate()
            .map(|(i, bound)| (bound, counts.get(i).copied().unwrap_or(0)))
            .collect();
        ProcessingHistogram {
            sum_s: num(stats, "pings/processing_sum_ns") as f64 / 1e9,
            count: num(stats, "pings/processing_count"),
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

/// The bound metrics endpoint; serving stops when it is dropped.
pub(crate) struct MetricsServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr`; snapshot requests go to `calls` (answered by the node
    /// loop).
    pub(crate) async fn bind(addr: SocketAddr, calls: mpsc::Sender<Call>) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, calls));
        Ok(MetricsServer { addr, task })
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, calls: mpsc::Sender<Call>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let refused = Arc::new(AtomicU64::new(0));
    let mut refusals = EverySecond::default();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let n = refused.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(since) = refusals.note(std::time::Instant::now()) {
                tracing::warn!(
                    refused = n,
                    "metrics: too many clients, {since} connection(s) closed since the last line"
                );
            }
            continue;
        };
        let calls = calls.clone();
        let refused = refused.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &calls, refused.load(Ordering::Relaxed)).await {
                tracing::debug!("metrics: {e}");
            }
            drop(permit);
        });
    }
}

/// Reads one request head and writes one response.
async fn answer(mut stream: TcpStream, calls: &mpsc::Sender<Call>, refused: u64) -> Result<()> {
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream))
        .await
        .context("request timed out")??;
    let (status, kind, body) = match route(&head) {
        Route::Metrics => match snapshot(calls).await {
            Some(stats) if wants_openmetrics(&head) => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                render(&stats, refused),
            ),
            Some(stats) => (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                to_prometheus_text(&render(&stats, refused)),
            ),
            None => (
                "503 Service Unavailable",
                "text/plain",
                "node not answering\n".into(),
            ),
        },
        Route::NotFound => ("404 Not Found", "text/plain", "try /metrics\n".into()),
        Route::BadMethod => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
        Route::Bad => ("400 Bad Request", "text/plain", "bad request\n".into()),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            anyhow::bail!("connection closed before the request ended");
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST {
            anyhow::bail!("request head longer than {MAX_REQUEST} bytes");
        }
    }
}

#[derive(Debug, PartialEq)]
enum Route {
    Metrics,
    NotFound,
    BadMethod,
    Bad,
}

fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Bad;
    }
    if method != "GET" {
        return Route::BadMethod;
    }
    let path = target.split('?').next().unwrap_or_default();
    if path == "/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

/// Whether the client's `Accept` header asks for OpenMetrics (Prometheus
/// does); others get the classic text format.
fn wants_openmetrics(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("accept") && v.contains("application/openmetrics-text")
        })
    })
}

/// The OpenMetrics page in the classic Prometheus text format (0.0.4): a
/// counter family is named with its `_total` suffix, and the `# UNIT` and
/// `# EOF` lines go.
fn to_prometheus_text(page: &str) -> String {
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

/// Asks the node loop for its `stats`.
async fn snapshot(calls: &mpsc::Sender<Call>) -> Option<Value> {
    let (reply, answer) = oneshot::channel();
    calls
        .try_send(Call {
            request: Request::Stats,
            reply,
        })
        .ok()?;
    let response = tokio::time::timeout(SNAPSHOT_TIMEOUT, answer)
        .await
        .ok()?
        .ok()?;
    response.stats
}

/// A number at a `/`-separated path of the stats JSON (0 when absent).
fn num(stats: &Value, path: &str) -> u64 {
    let mut v = stats;
    for key in path.split('/') {
        match v.get(key) {
            Some(next) => v = next,
            None => return 0,
        }
    }
    v.as_u64().unwrap_or(0)
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

/// Drop reasons and the stats path counting each.
const DROPS: &[(&str, &str)] = &[
    ("malformed", "engine/malformed"),
    ("airlock_rood", "engine/rood_dropped"),
    ("replay", "engine/replays_dropped"),
    ("nonce_cache_full", "ping/nonce_refusals"),
    ("review_queue_full", "ping/pending_refusals"),
    ("request_queue_full", "engine/requests_refused"),
    ("response_foreign", "engine/responses_foreign"),
    ("response_orphan", "engine/responses_orphan"),
    ("beacon_too_old", "engine/beacons_rejected"),
    ("events_full", "engine/events_dropped"),
    ("peer_table_full", "peers/refused"),
    ("relay_not_mesh", "relay/dropped_not_mesh"),
    ("relay_seen", "relay/dropped_seen"),
    ("relay_hop_limit", "relay/dropped_hop_limit"),
    ("relay_sender_rood", "engine/relay_refused_rood"),
    ("relay_rate_limited", "engine/relay_rate_limited"),
    ("beacon_rate_limited", "engine/beacons_rate_limited"),
    ("amplification", "guard/refused_datagrams"),
    ("relay_path_table_full", "relay/paths_refused"),
    ("relay_response_foreign", "relay/responses_foreign"),
    (
        "discovery_reply_rate_limited",
        "discovery/replies_rate_limited",
    ),
    ("discovery_reply_queue_full", "discovery/replies_refused"),
    ("send_queue_full", "driver/send_queue_dropped"),
    ("send_error", "driver/send_errors"),
    ("uplink_queue_full", "uplink/queue_dropped"),
    ("uplink_channel_full", "driver/uplink_dropped"),
    ("uplink_refused", "uplink/frames_refused"),
    (
        "uplink_response_unaddressed",
        "uplink/responses_unaddressed",
    ),
];

/// Identity refusals (docs/PROTOCOL.md section 6) and the stats path
/// counting each.
const IDENTITY_REFUSED: &[(&str, &str)] = &[
    ("unsigned", "identity/unsigned"),
    ("bad_signature", "identity/bad_signature"),
    ("wrong_key", "identity/wrong_key"),
    ("unpinned_in_require", "identity/unpinned_in_require"),
    ("bad_beacon_key", "identity/bad_beacon_key"),
    ("response_refused", "identity/responses_refused"),
    ("over_verify_budget", "identity/over_verify_budget"),
];

/// Packets and answers the identity gate let through, by how.
const IDENTITY_PASSED: &[(&str, &str)] = &[
    ("pinned", "identity/verified"),
    ("self_certified", "identity/self_certified"),
    ("unpinned", "identity/unpinned"),
    ("response_pinned", "identity/responses_verified"),
];

/// Queues and caches with their current depth.
const QUEUES: &[(&str, &str)] = &[
    ("pending_requests", "pending_requests"),
    ("response_cache", "response_cache_entries"),
    ("nonce_cache", "ping/nonce_tracked"),
    ("relay_seen_cache", "relay/seen_entries"),
    ("relay_paths", "relay/path_entries"),
    ("review_queue", "ping/pending_count"),
    ("uplink", "uplink/queued"),
];

/// The MQTT bridge's counters (docs/FLEETS.md), exported while the node is
/// in a fleet: (name without `_total`, help, stats path).
const MQTT_COUNTERS: &[(&str, &str, &str)] = &[
    (
        "tibet_mqtt_published",
        "Frames handed to the broker connection",
        "mqtt/published",
    ),
    (
        "tibet_mqtt_publish_dropped",
        "Frames dropped: the outbound queue was full (broker down for long)",
        "mqtt/publish_dropped",
    ),
    (
        "tibet_mqtt_publish_invalid",
        "Frames refused: DID unusable in a topic, or frame too large",
        "mqtt/publish_invalid",
    ),
    (
        "tibet_mqtt_received",
        "Frames received on this node's topics",
        "mqtt/received",
    ),
    (
        "tibet_mqtt_duplicates",
        "QoS 1 redeliveries dropped by packet id",
        "mqtt/duplicates",
    ),
    (
        "tibet_mqtt_inbound_dropped",
        "Frames dropped: the node was behind (inbound queue full)",
        "mqtt/inbound_dropped",
    ),
    (
        "tibet_mqtt_foreign",
        "Messages on topics not asked for: ignored",
        "mqtt/foreign",
    ),
    (
        "tibet_mqtt_oversized",
        "Messages larger than a frame: dropped, the connection kept",
        "mqtt/oversized",
    ),
    (
        "tibet_mqtt_broker_down",
        "Broker connection failures",
        "mqtt/broker_down",
    ),
    (
        "tibet_mqtt_reconnects",
        "Broker connections after the first",
        "mqtt/reconnects",
    ),
    (
        "tibet_mqtt_subscribed",
        "Subscriptions the broker confirmed",
        "mqtt/subscribed",
    ),
    (
        "tibet_mqtt_local_refused",
        "Local peers' DIDs not subscribed to (over the cap, or unusable)",
        "mqtt/local_refused",
    ),
    (
        "tibet_mqtt_origins_subscribed",
        "Response topics held for senders of relayed pings that are not local peers",
        "mqtt/origins_subscribed",
    ),
    (
        "tibet_mqtt_origins_refused",
        "Senders of relayed pings whose response topic was not held (over the cap, or queue full)",
        "mqtt/origins_refused",
    ),
    (
        "tibet_mqtt_events_published",
        "Decided pings published to the events topic",
        "mqtt/events_published",
    ),
    (
        "tibet_mqtt_events_limited",
        "Decided pings not published: over the per-second limit",
        "mqtt/events_limited",
    ),
];

/// Plain counters: (name without `_total`, help, stats path).
const COUNTERS: &[(&str, &str, &str)] = &[
    (
        "tibet_datagrams_received",
        "Datagrams handed to the engine",
        "engine/datagrams_in",
    ),
    (
        "tibet_datagrams_sent",
        "Datagrams the engine sent",
        "engine/datagrams_out",
    ),
    (
        "tibet_datagrams_sent_segmented",
        "Datagrams sent in segmented sends (UDP_SEGMENT)",
        "driver/sent_segmented",
    ),
    (
        "tibet_requests_sent",
        "Requests sent (pings, heartbeats)",
        "engine/requests_sent",
    ),
    (
        "tibet_requests_timed_out",
        "Requests that got no answer in time",
        "engine/requests_timed_out",
    ),
    (
        "tibet_retransmissions",
        "Resends of requests",
        "engine/retransmissions",
    ),
    (
        "tibet_responses_matched",
        "Responses matched to our requests",
        "engine/responses_matched",
    ),
    (
        "tibet_duplicates_answered",
        "Retransmitted duplicates answered from the response cache",
        "engine/duplicates_answered",
    ),
    (
        "tibet_peers_expired",
        "Peers pruned for idleness",
        "peers/expired",
    ),
    (
        "tibet_beacons_sent",
        "Discovery beacons sent",
        "discovery/beacons_sent",
    ),
    (
        "tibet_beacons_received",
        "Discovery beacons heard",
        "discovery/beacons_received",
    ),
];

/// The page for one `stats` snapshot.
fn render(stats: &Value, refused_scrapes: u64) -> String {
    let mut r = Registry::default();
    r.register(
        "tibet_pings",
        "Pings addressed to this node, by airlock zone and decision",
        ping_family(stats),
    );
    r.register_with_unit(
        "tibet_ping_processing",
        "Time from receipt to decision of a ping",
        Unit::Seconds,
        ProcessingHistogram::from_stats(stats),
    );
    r.register(
        "tibet_drops",
        "Datagrams, pings and answers refused, by reason",
        family("reason", DROPS.iter().map(|(n, p)| (*n, num(stats, p)))),
    );
    let replays = stats
        .pointer("/ping/replay_reasons")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_u64().unwrap_or(0)))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    r.register(
        "tibet_replays",
        "Pings refused by the replay check, by reason",
        family("reason", replays),
    );
    r.register(
        "tibet_relays",
        "Mesh packets forwarded (packet) and responses sent back (response)",
        family(
            "kind",
            [
                ("packet", num(stats, "relay/relayed")),
                ("response", num(stats, "relay/responses_relayed")),
            ],
        ),
    );
    r.register(
        "tibet_identity_refused",
        "Packets and answers refused by the identity check, by reason",
        family(
            "reason",
            IDENTITY_REFUSED.iter().map(|(n, p)| (*n, num(stats, p))),
        ),
    );
    r.register(
        "tibet_identity_passed",
        "Packets and answers the identity check let through, by how",
        family(
            "kind",
            IDENTITY_PASSED.iter().map(|(n, p)| (*n, num(stats, p))),
        ),
    );
    for (name, help, path) in COUNTERS {
        r.register(*name, *help, counter(num(stats, path)));
    }
    r.register(
        "tibet_audit_tokens_written",
        "Provenance tokens appended to the audit file",
        counter(TOKENS_WRITTEN.load(Ordering::Relaxed)),
    );
    r.register(
        "tibet_audit_tokens_failed",
        "Provenance tokens that could not be written",
        counter(TOKENS_FAILED.load(Ordering::Relaxed)),
    );
    r.register(
        "tibet_metrics_scrapes_refused",
        "Metrics connections closed because too many were open",
        counter(refused_scrapes),
    );
    r.register(
        "tibet_peers",
        "Peers in the peer table",
        gauge(num(stats, "peers/tracked")),
    );
    r.register(
        "tibet_peers_alive",
        "Peers heard from within the peer timeout",
        gauge(num(stats, "peers/alive")),
    );
    r.register(
        "tibet_pending_reviews",
        "GEEL pings waiting for an operator",
        gauge(num(stats, "ping/pending_count")),
    );
    if stats.get("mqtt").is_some() {
        for (name, help, path) in MQTT_COUNTERS {
            r.register(*name, *help, counter(num(stats, path)));
        }
        r.register(
            "tibet_mqtt_local_dids",
            "Local peers' DIDs whose topics this hub subscribes to",
            gauge(num(stats, "mqtt/local_dids")),
        );
    }
    let depths = Family::<Labels, Gauge>::default();
    for (queue, path) in QUEUES {
        depths
            .get_or_create(&vec![("queue", (*queue).to_owned())])
            .set(i64::try_from(num(stats, path)).unwrap_or(i64::MAX));
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
    use super::*;

    #[test]
    fn routes_only_get_metrics() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(b"\x00\xff garbage"), Route::Bad);
        assert_eq!(route(b"GET /metrics SPDY/3\r\n\r\n"), Route::Bad);
    }

    #[test]
    fn the_page_carries_the_snapshot() {
        let stats = serde_json::json!({
            "engine": {"malformed": 7, "datagrams_in": 9},
            "relay": {"relayed": 3},
            "peers": {"tracked": 2, "alive": 1},
            "ping": {"pending_count": 4, "replay_reasons": {"nonce_reused": 5}},
        });
        let page = render(&stats, 0);
        assert!(
            page.contains("tibet_drops_total{reason=\"malformed\"} 7"),
            "{page}"
        );
        assert!(page.contains("tibet_datagrams_received_total 9"), "{page}");
        assert!(
            page.contains("tibet_relays_total{kind=\"packet\"} 3"),
            "{page}"
        );
        assert!(page.contains("tibet_peers 2"), "{page}");
        assert!(page.contains("tibet_pending_reviews 4"), "{page}");
        assert!(
            page.contains("tibet_queue_depth{queue=\"review_queue\"} 4"),
            "{page}"
        );
        assert!(
            page.contains("tibet_replays_total{reason=\"nonce_reused\"} 5"),
            "{page}"
        );
        assert!(
            page.contains("tibet_ping_processing_seconds_bucket"),
            "{page}"
        );
        assert!(page.ends_with("# EOF\n"));
    }

    #[test]
    fn ping_counts_and_processing_time_come_from_the_snapshot() {
        let stats = serde_json::json!({
            "pings": {
                "decided": {"GROEN/accept": 5, "ROOD/reject": 2, "BOGUS/x": 9, "GEEL": 1},
                "processing_buckets": [3, 1, 0, 0, 0, 0, 0, 0, 0, 1],
                "processing_sum_ns": 2_000_000_000u64,
                "processing_count": 5,
            },
        });
        let page = render(&stats, 0);
        assert!(
            page.contains("tibet_pings_total{zone=\"GROEN\",decision=\"accept\"} 5"),
            "{page}"
        );
        assert!(
            page.contains("tibet_pings_total{zone=\"ROOD\",decision=\"reject\"} 2"),
            "{page}"
        );
        assert!(
            page.contains("tibet_pings_total{zone=\"GEEL\",decision=\"pending\"} 0"),
            "{page}"
        );
        assert!(
            !page.contains("BOGUS"),
            "unknown labels are not echoed: {page}"
        );
        assert!(
            page.contains("tibet_ping_processing_seconds_count 5"),
            "{page}"
        );
        assert!(
            page.contains("tibet_ping_processing_seconds_sum 2.0"),
            "{page}"
        );
        // Cumulative: 3 at 10 µs, 4 at 40 µs, 5 at +Inf.
        assert!(
            page.contains("tibet_ping_processing_seconds_bucket{le=\"4e-5\"} 4")
                || page.contains("tibet_ping_processing_seconds_bucket{le=\"0.00004\"} 4"),
            "{page}"
        );
        assert!(
            page.contains("tibet_ping_processing_seconds_bucket{le=\"+Inf\"} 5"),
            "{page}"
        );
    }

    #[test]
    fn mqtt_counters_appear_only_in_a_fleet() {
        let plain = render(&serde_json::json!({"engine": {}}), 0);
        assert!(!plain.contains("tibet_mqtt_"), "{plain}");
        let stats = serde_json::json!({
            "mqtt": {"published": 3, "broker_down": 2, "local_dids": 5},
            "uplink": {"queue_dropped": 4, "queued": 1},
        });
        let page = render(&stats, 0);
        assert!(page.contains("tibet_mqtt_published_total 3"), "{page}");
        assert!(page.contains("tibet_mqtt_broker_down_total 2"), "{page}");
        assert!(page.contains("tibet_mqtt_duplicates_total 0"), "{page}");
        assert!(page.contains("tibet_mqtt_local_dids 5"), "{page}");
        assert!(
            page.contains("tibet_drops_total{reason=\"uplink_queue_full\"} 4"),
            "{page}"
        );
        assert!(
            page.contains("tibet_queue_depth{queue=\"uplink\"} 1"),
            "{page}"
        );
    }

    #[test]
    fn classic_text_names_counters_with_total() {
        let om = "# HELP a_b Some.\n# TYPE a_b counter\na_b_total 1\n# HELP t Time.\n# TYPE t_seconds histogram\n# UNIT t_seconds seconds\nt_seconds_count 0\n# EOF\n";
        let text = to_prometheus_text(om);
        assert_eq!(
            text,
            "# HELP a_b_total Some.\n# TYPE a_b_total counter\na_b_total 1\n# HELP t Time.\n# TYPE t_seconds histogram\nt_seconds_count 0\n"
        );
        assert!(wants_openmetrics(
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n"
        ));
        assert!(!wants_openmetrics(
            b"GET /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n"
        ));
    }

    #[test]
    fn identity_series_carry_the_identity_stats() {
        let stats = serde_json::json!({
            "identity": {"unsigned": 3, "wrong_key": 2, "verified": 7, "responses_refused": 1},
        });
        let page = render(&stats, 0);
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
        let stats = serde_json::json!({"engine": {"malformed": 1}});
        let first = render(&stats, 0);
        for _ in 0..20 {
            assert_eq!(render(&stats, 0), first);
        }
        let drops: Vec<&str> = first
            .lines()
            .filter(|l| l.starts_with("tibet_drops_total"))
            .collect();
        let mut sorted = drops.clone();
        sorted.sort_unstable();
        assert_eq!(drops, sorted);
        assert!(first.ends_with("# EOF\n"), "{first}");
    }

    #[test]
    fn missing_paths_read_as_zero() {
        assert_eq!(num(&serde_json::json!({"a": {"b": 1}}), "a/c"), 0);
        assert_eq!(num(&serde_json::json!({"a": {"b": 1}}), "a/b"), 1);
    }
}
