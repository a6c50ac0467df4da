//! [`MetricsServer`]: a node's counters as a Prometheus / OpenMetrics text
//! page at `GET /metrics` (`metrics_page.rs` builds the page).
//!
//! Each scrape takes a fresh [`IoTNode::stats`] snapshot (the engine counts
//! pings by zone and decision and their processing time itself, the driver
//! counts the audit tokens stored), plus the uplink bridge's counters when
//! the node is in a fleet ([`MetricsServer::watch_uplink`]). The HTTP side
//! is a small HTTP/1.1 responder over a tokio `TcpListener` rather than a
//! web framework: it only ever answers one GET, so it reads at most
//! [`MAX_REQUEST`] bytes within [`REQUEST_TIMEOUT`], serves at most
//! [`MAX_CONNECTIONS`] clients at once (others are closed, counted, and
//! logged at most once a second with their number) and closes every
//! connection after its answer.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tibet_iot::IoTNode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::error::MetricsError;
use crate::metrics_page::{render, to_prometheus_text};
use crate::mqtt::MqttStatsReader;

/// Longest HTTP request head read.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at the same time.
pub const MAX_CONNECTIONS: usize = 16;

/// What a scrape reads.
struct Source {
    node: Arc<IoTNode>,
    uplink: Mutex<Option<MqttStatsReader>>,
    /// Connections closed because [`MAX_CONNECTIONS`] were open.
    refused: AtomicU64,
}

/// A bound metrics endpoint; serving stops when it is dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tibet_iot::{IoTNode, TransportConfig};
/// use tibet_iot_ops::MetricsServer;
///
/// let node = Arc::new(IoTNode::new("jis:home:hub", TransportConfig::default()));
/// node.start().await?;
/// let metrics = MetricsServer::serve(node.clone(), "127.0.0.1:9150".parse()?).await?;
/// println!("metrics at http://{}/metrics", metrics.local_addr());
/// # Ok(()) }
/// ```
pub struct MetricsServer {
    addr: SocketAddr,
    source: Arc<Source>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .field("did", &self.source.node.did())
            .finish()
    }
}

impl MetricsServer {
    /// Binds `addr` (port 0: any free port) and serves `node`'s counters
    /// there until dropped. Must be called within a tokio runtime.
    pub async fn serve(node: Arc<IoTNode>, addr: SocketAddr) -> Result<Self, MetricsError> {
        let bind = |source| MetricsError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let source = Arc::new(Source {
            node,
            uplink: Mutex::new(None),
            refused: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept(listener, source.clone()));
        Ok(MetricsServer { addr, source, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds the counters of the node's uplink bridge (`tibet_mqtt_*`) to
    /// the page, from now on.
    pub fn watch_uplink(&self, uplink: MqttStatsReader) {
        *self.source.uplink.lock().unwrap_or_else(|p| p.into_inner()) = Some(uplink);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A warning that can repeat as fast as clients connect: logged at most
/// once a second, each line with the number of occurrences since the line
/// before.
#[derive(Debug, Default)]
struct EverySecond {
    last_line: Option<Instant>,
    unlogged: u64,
}

impl EverySecond {
    /// One more occurrence at `now`; `Some(n)` when a line is due, `n`
    /// counting this one and those left out since the last line.
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        if self
            .last_line
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

async fn accept(listener: TcpListener, source: Arc<Source>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
            let n = source.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(since) = refusals.note(Instant::now()) {
                tracing::warn!(
                    refused = n,
                    "metrics: too many clients, {since} connection(s) closed since the last line"
                );
            }
            continue;
        };
        let source = source.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &source).await {
                tracing::debug!("metrics: {e}");
            }
            drop(permit);
        });
    }
}

/// The page for a scrape now.
fn page(source: &Source) -> String {
    let stats = source.node.stats();
    let uplink = source
        .uplink
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(MqttStatsReader::stats);
    render(
        &stats,
        uplink.as_ref(),
        source.refused.load(Ordering::Relaxed),
    )
}

/// Reads one request head and writes one response.
async fn answer(mut stream: TcpStream, source: &Source) -> io::Result<()> {
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request timed out"))??;
    let (status, kind, body) = match route(&head) {
        Route::Metrics if wants_openmetrics(&head) => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            page(source),
        ),
        Route::Metrics => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            to_prometheus_text(&page(source)),
        ),
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

async fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the request ended",
            ));
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("request head longer than {MAX_REQUEST} bytes"),
            ));
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
    fn openmetrics_is_served_to_those_who_ask() {
        assert!(wants_openmetrics(
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n"
        ));
        assert!(!wants_openmetrics(
            b"GET /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n"
        ));
    }

    #[test]
    fn a_flood_of_occurrences_is_one_line_a_second_with_a_count() {
        let t0 = Instant::now();
        let mut log = EverySecond::default();
        assert_eq!(log.note(t0), Some(1), "the first one at once");
        let ms = Duration::from_millis;
        let lines: Vec<(u64, u64)> = (1..=2500u64)
            .filter_map(|i| log.note(t0 + ms(i)).map(|n| (i, n)))
            .collect();
        // One line at 1 s and one at 2 s, each counting the 1,000 since.
        assert_eq!(lines, [(1000, 1000), (2000, 1000)]);
        assert_eq!(log.note(t0 + ms(3000)), Some(501));
    }
}
