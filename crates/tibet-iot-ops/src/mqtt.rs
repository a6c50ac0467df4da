//! Fleets through an MQTT broker (docs/FLEETS.md): a bridge that carries
//! frames, bytes unchanged, between nodes that share no LAN.
//!
//! A node subscribes to `PREFIX/ping/<own DID>` and `PREFIX/response/<own
//! DID>`; it publishes a ping for a far DID to `PREFIX/ping/<target DID>` and
//! a response to `PREFIX/response/<origin DID>`. MQTT 5, QoS 1; a redelivered
//! message (`dup` set, a packet id seen recently) is dropped through a
//! bounded cache.
//!
//! Size: the client tells the broker the largest packet it takes
//! ([`MAX_PACKET`], MQTT 5's Maximum Packet Size), so the broker discards a
//! larger publish for us instead of sending it (a client that receives a
//! packet over its limit can only drop the connection). A publish within
//! that limit but larger than a frame ([`MAX_FRAME`]) is dropped here and
//! counted (`oversized`); the connection stays up either way. The broker is a transport, never a source of trust: the
//! frames that come out of [`Bridge`] go through the node's airlock, replay
//! check and identity exactly like UDP datagrams.
//!
//! Nothing here blocks the caller: [`Bridge::publish_ping_from`] and
//! [`Bridge::publish_response`] queue into a bounded channel and count what
//! does not fit; inbound frames go to a bounded channel the node drains. A
//! broker that is down is logged and counted, and the bridge retries with
//! exponential backoff (a warning, never an exit).
//!
//! A hub also subscribes to the topics of its local peers' DIDs
//! ([`Bridge::set_local_dids`], at most [`MAX_LOCAL_DIDS`]), so pings for
//! them and answers to their pings reach it. For a ping it relays from any
//! other sender, it holds that sender's response topic for a while
//! ([`Bridge::publish_ping_from`], `origins.rs`), so a one-off sender gets
//! its answer too. `uplink.rs` joins the bridge to the node's uplink.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::Transport;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::mqtt_config::{MqttConfig, topic_safe};
use crate::origins::{Noted, Origins};

/// Largest frame carried: the 8-byte header plus a 64 KiB payload.
pub(crate) const MAX_FRAME: usize = 8 + 65_536;
/// Largest MQTT packet the client takes (told to the broker, which discards
/// larger publishes instead of sending them): a frame with room for the
/// topic, and room to see (and count) publishes that are too large for a
/// frame.
pub(crate) const MAX_PACKET: usize = 4 * MAX_FRAME;
/// Publishes waiting for the broker connection.
pub(crate) const OUTBOUND_QUEUE: usize = 1024;
/// Received frames waiting for the node.
pub(crate) const INBOUND_QUEUE: usize = 1024;
/// Packet ids remembered for duplicate detection.
pub(crate) const DEDUPE_CAPACITY: usize = 1024;
/// Local peers' DIDs a hub subscribes to, at most.
pub(crate) const MAX_LOCAL_DIDS: usize = 256;
/// Longest wait between reconnect attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Which topic family a frame travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// A ping for the DID in the topic.
    Ping,
    /// A response for the origin DID in the topic.
    Response,
    /// Decided pings of the node in the topic (published only).
    Events,
}

impl Kind {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Kind::Ping => "ping",
            Kind::Response => "response",
            Kind::Events => "events",
        }
    }
}

/// A frame that arrived through the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inbound {
    /// Ping or response.
    pub(crate) kind: Kind,
    /// The frame, as published.
    pub(crate) frame: Vec<u8>,
}

/// The bridge's counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Frames handed to the broker connection.
    pub(crate) published: AtomicU64,
    /// Publishes the broker acknowledged (QoS 1 `PUBACK`).
    pub(crate) acked: AtomicU64,
    /// Frames refused: outbound queue full.
    pub(crate) publish_dropped: AtomicU64,
    /// Frames refused: target DID unusable in a topic, or frame too large.
    pub(crate) publish_invalid: AtomicU64,
    /// Frames received on our topics.
    pub(crate) received: AtomicU64,
    /// Redeliveries dropped by the packet-id cache.
    pub(crate) duplicates: AtomicU64,
    /// Frames dropped: inbound queue full (the node is behind).
    pub(crate) inbound_dropped: AtomicU64,
    /// Messages on topics we did not ask for: ignored.
    pub(crate) foreign: AtomicU64,
    /// Messages larger than a frame (up to [`MAX_PACKET`]; the broker
    /// discards larger ones): dropped, the connection kept.
    pub(crate) oversized: AtomicU64,
    /// Connection failures (broker down, refused, lost).
    pub(crate) broker_down: AtomicU64,
    /// Connections established after the first.
    pub(crate) reconnects: AtomicU64,
    /// Subscriptions the broker confirmed (two per connection, and two per
    /// local peer).
    pub(crate) subscribed: AtomicU64,
    /// Local peers' DIDs not subscribed to: over [`MAX_LOCAL_DIDS`], or
    /// unusable in a topic.
    pub(crate) local_refused: AtomicU64,
    /// Local peers' DIDs subscribed to now.
    pub(crate) local_dids: AtomicU64,
    /// Response topics subscribed to for senders of relayed pings that are
    /// not local peers (`origins.rs`).
    pub(crate) origins_subscribed: AtomicU64,
    /// Such senders not subscribed for: over [`crate::origins::MAX_ORIGINS`],
    /// or the request queue full.
    pub(crate) origins_refused: AtomicU64,
    /// Decided pings published to the events topic (QoS 0).
    pub(crate) events_published: AtomicU64,
    /// Decided pings not published: over the per-second limit.
    pub(crate) events_limited: AtomicU64,
}

/// The uplink bridge's counters at one moment (docs/FLEETS.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MqttStats {
    /// Frames handed to the broker connection.
    pub published: u64,
    /// Publishes the broker acknowledged (QoS 1 `PUBACK`); `published`
    /// minus this is what is in flight, and is sent again after a reconnect.
    pub acked: u64,
    /// Frames refused: outbound queue full.
    pub publish_dropped: u64,
    /// Frames refused: target DID unusable in a topic, or frame too large.
    pub publish_invalid: u64,
    /// Frames received on our topics.
    pub received: u64,
    /// Redeliveries dropped by the packet-id cache.
    pub duplicates: u64,
    /// Frames dropped: inbound queue full (the node is behind).
    pub inbound_dropped: u64,
    /// Messages on topics we did not ask for: ignored.
    pub foreign: u64,
    /// Messages larger than a frame (up to the largest packet taken; the broker
    /// discards larger ones): dropped, the connection kept.
    pub oversized: u64,
    /// Connection failures (broker down, refused, lost).
    pub broker_down: u64,
    /// Connections established after the first.
    pub reconnects: u64,
    /// Subscriptions the broker confirmed (two per connection, and two per
    /// local peer).
    pub subscribed: u64,
    /// Local peers' DIDs not subscribed to: over `MAX_LOCAL_DIDS` (256), or
    /// unusable in a topic.
    pub local_refused: u64,
    /// Local peers' DIDs subscribed to now.
    pub local_dids: u64,
    /// Response topics subscribed to for senders of relayed pings that are
    /// not local peers (`origins.rs`).
    pub origins_subscribed: u64,
    /// Such senders not subscribed for: over 256 senders,
    /// or the request queue full.
    pub origins_refused: u64,
    /// Decided pings published to the events topic (QoS 0).
    pub events_published: u64,
    /// Decided pings not published: over the per-second limit.
    pub events_limited: u64,
}

/// Remembers the packet ids of recent QoS 1 deliveries, at most
/// [`DEDUPE_CAPACITY`].
#[derive(Debug, Default)]
struct Dedupe {
    order: VecDeque<u16>,
    set: HashSet<u16>,
}

impl Dedupe {
    /// Whether a delivery is a redelivery of one already passed on.
    fn is_duplicate(&mut self, pkid: u16, dup: bool) -> bool {
        if dup && self.set.contains(&pkid) {
            return true;
        }
        if self.set.insert(pkid) {
            self.order.push_back(pkid);
            if self.order.len() > DEDUPE_CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
        false
    }
}

/// A running bridge; stops when dropped.
pub(crate) struct Bridge {
    client: AsyncClient,
    settings: MqttConfig,
    counters: Arc<Counters>,
    local: Arc<Mutex<BTreeSet<String>>>,
    origins: Arc<Mutex<Origins>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Bridge {
    /// Starts connecting (in the background, retrying) and returns the
    /// bridge and its stream of received frames.
    pub(crate) fn start(settings: MqttConfig) -> (Bridge, mpsc::Receiver<Inbound>) {
        let mut options = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
        options.set_keep_alive(Duration::from_secs(15));
        options.set_clean_start(true);
        // Also the client's own limit on what it reads (module docs).
        options.set_max_packet_size(Some(MAX_PACKET as u32));
        if let Some((user, pass)) = &settings.credentials {
            options.set_credentials(user, pass);
        }
        if let Some(ca) = &settings.tls_ca {
            let client = settings.tls_client.clone();
            options.set_transport(Transport::tls(ca.clone(), client, None));
        }
        let (client, eventloop) = AsyncClient::new(options, OUTBOUND_QUEUE);
        let counters = Arc::new(Counters::default());
        let local = Arc::new(Mutex::new(BTreeSet::new()));
        let origins = Arc::new(Mutex::new(Origins::default()));
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        let task = tokio::spawn(drive(
            eventloop,
            client.clone(),
            settings.clone(),
            counters.clone(),
            Subscriptions {
                local: local.clone(),
                origins: origins.clone(),
            },
            tx,
        ));
        (
            Bridge {
                client,
                settings,
                counters,
                local,
                origins,
                task,
            },
            rx,
        )
    }

    /// Publishes a ping frame of our own for `target_did`; `false` when it
    /// was refused (counted).
    #[cfg(test)]
    pub(crate) fn publish_ping(&self, target_did: &str, frame: &[u8]) -> bool {
        self.publish(Kind::Ping, target_did, frame)
    }

    /// Publishes a ping frame that `origin_did` sent for `target_did`.
    /// Unless the sender is this node or a local peer (whose response
    /// topics are held already), first subscribes to its response topic
    /// for [`crate::origins::ORIGIN_TTL`] (renewed by each of its pings), so
    /// the answer reaches us: the subscription goes to the broker before the
    /// publish, on the same connection. `false` when the ping was refused
    /// (counted).
    pub(crate) fn publish_ping_from(
        &self,
        origin_did: &str,
        target_did: &str,
        frame: &[u8],
    ) -> bool {
        if topic_safe(target_did) && frame.len() <= MAX_FRAME {
            self.await_response(origin_did);
        }
        self.publish(Kind::Ping, target_did, frame)
    }

    /// Holds `did`'s response topic (see [`Bridge::publish_ping_from`]).
    fn await_response(&self, did: &str) {
        if did == self.settings.own_did || !topic_safe(did) || lock(&self.local).contains(did) {
            return;
        }
        let noted = lock(&self.origins).note(tokio::time::Instant::now(), did);
        let c = &self.counters;
        match noted {
            Noted::New => {
                let topic = self.settings.topic(Kind::Response, did);
                match self.client.try_subscribe(topic, QoS::AtLeastOnce) {
                    Ok(()) => {
                        c.origins_subscribed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        // The request queue is full: not held, so the
                        // sender's next ping tries again.
                        lock(&self.origins).forget(did);
                        c.origins_refused.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!("mqtt: cannot subscribe for {did}: {e}");
                    }
                }
            }
            Noted::Renewed => {}
            Noted::Refused => {
                c.origins_refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lets go of the response topics of senders whose time is up (called
    /// every few seconds by `uplink.rs`).
    pub(crate) fn expire_origins(&self) {
        let expired = lock(&self.origins).expire(tokio::time::Instant::now());
        if expired.is_empty() {
            return;
        }
        let local = lock(&self.local);
        for did in expired.iter().filter(|d| !local.contains(*d)) {
            let _ = self
                .client
                .try_unsubscribe(self.settings.topic(Kind::Response, did));
        }
    }

    /// Publishes a response frame for `origin_did`; `false` when it was
    /// refused (counted).
    pub(crate) fn publish_response(&self, origin_did: &str, frame: &[u8]) -> bool {
        self.publish(Kind::Response, origin_did, frame)
    }

    /// Publishes one decided ping (JSON) to `PREFIX/events/<own DID>` at
    /// QoS 0, when the settings ask for it; `false` when it was not
    /// (refusals counted as `publish_dropped`).
    pub(crate) fn publish_event(&self, json: &[u8]) -> bool {
        if !self.settings.events {
            return false;
        }
        let topic = self.settings.topic(Kind::Events, &self.settings.own_did);
        let c = &self.counters;
        match self
            .client
            .try_publish(topic, QoS::AtMostOnce, false, json.to_vec())
        {
            Ok(()) => {
                c.events_published.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                c.publish_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Counts an event left out by the caller's rate limit.
    pub(crate) fn count_event_limited(&self) {
        self.counters.events_limited.fetch_add(1, Ordering::Relaxed);
    }

    fn publish(&self, kind: Kind, did: &str, frame: &[u8]) -> bool {
        let c = &self.counters;
        if !topic_safe(did) || frame.len() > MAX_FRAME {
            c.publish_invalid.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let topic = self.settings.topic(kind, did);
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, false, frame.to_vec())
        {
            Ok(()) => {
                c.published.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                let n = c.publish_dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(dropped = n, "mqtt: outbound queue full, frame dropped");
                false
            }
        }
    }

    /// Subscribes to the topics of exactly these local peers' DIDs (the
    /// first [`MAX_LOCAL_DIDS`] usable ones, besides our own) and
    /// unsubscribes from the others.
    pub(crate) fn set_local_dids<'a>(&self, dids: impl IntoIterator<Item = &'a str>) {
        let mut wanted = BTreeSet::new();
        let mut refused = 0;
        for did in dids {
            if did == self.settings.own_did || wanted.contains(did) {
                continue;
            }
            if !topic_safe(did) || wanted.len() >= MAX_LOCAL_DIDS {
                refused += 1;
                continue;
            }
            wanted.insert(did.to_owned());
        }
        let c = &self.counters;
        c.local_refused.fetch_add(refused, Ordering::Relaxed);
        let mut local = lock(&self.local);
        for did in wanted.difference(&local) {
            for kind in [Kind::Ping, Kind::Response] {
                let topic = self.settings.topic(kind, did);
                if let Err(e) = self.client.try_subscribe(topic, QoS::AtLeastOnce) {
                    tracing::debug!("mqtt: cannot subscribe for {did}: {e}");
                }
            }
        }
        for did in local.difference(&wanted) {
            // A sender's response topic may still be held for its pings.
            let awaited = lock(&self.origins).contains(did);
            for kind in [Kind::Ping, Kind::Response] {
                if kind == Kind::Response && awaited {
                    continue;
                }
                let _ = self.client.try_unsubscribe(self.settings.topic(kind, did));
            }
        }
        c.local_dids.store(wanted.len() as u64, Ordering::Relaxed);
        *local = wanted;
    }

    /// A reader of the counters that outlives nothing (for tests and
    /// metrics).
    pub(crate) fn stats_reader(&self) -> MqttStatsReader {
        MqttStatsReader(self.counters.clone())
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> MqttStats {
        self.stats_reader().stats()
    }
}

/// Reads a bridge's counters; cheap to clone, valid after the bridge
/// stopped (the counters then stay as they were).
#[derive(Clone, Debug)]
pub struct MqttStatsReader(Arc<Counters>);

impl MqttStatsReader {
    /// The counters now.
    pub fn stats(&self) -> MqttStats {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MqttStats {
            published: get(&c.published),
            acked: get(&c.acked),
            publish_dropped: get(&c.publish_dropped),
            publish_invalid: get(&c.publish_invalid),
            received: get(&c.received),
            duplicates: get(&c.duplicates),
            inbound_dropped: get(&c.inbound_dropped),
            foreign: get(&c.foreign),
            oversized: get(&c.oversized),
            broker_down: get(&c.broker_down),
            reconnects: get(&c.reconnects),
            subscribed: get(&c.subscribed),
            local_refused: get(&c.local_refused),
            local_dids: get(&c.local_dids),
            origins_subscribed: get(&c.origins_subscribed),
            origins_refused: get(&c.origins_refused),
            events_published: get(&c.events_published),
            events_limited: get(&c.events_limited),
        }
    }
}

/// Locks `m`, also after a panic elsewhere (the sets stay consistent: every
/// change is one insert or remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The DIDs whose topics the bridge holds besides its own.
struct Subscriptions {
    /// Local peers: both topics.
    local: Arc<Mutex<BTreeSet<String>>>,
    /// Senders of relayed pings: their response topic.
    origins: Arc<Mutex<Origins>>,
}

/// Polls the connection: subscribes on every (re)connect, passes frames on,
/// backs off while the broker is unreachable.
async fn drive(
    mut eventloop: rumqttc::v5::EventLoop,
    client: AsyncClient,
    settings: MqttConfig,
    counters: Arc<Counters>,
    subs: Subscriptions,
    inbound: mpsc::Sender<Inbound>,
) {
    let ping_topic = settings.topic(Kind::Ping, &settings.own_did);
    let response_topic = settings.topic(Kind::Response, &settings.own_did);
    let ping_prefix = format!("{}/ping/", settings.prefix);
    let response_prefix = format!("{}/response/", settings.prefix);
    let is_local = |did: &str| lock(&subs.local).contains(did);
    let is_awaited = |did: &str| is_local(did) || lock(&subs.origins).contains(did);
    let mut dedupe = Dedupe::default();
    let mut backoff = Duration::from_millis(100);
    let mut connected_once = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if connected_once {
                    counters.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                connected_once = true;
                backoff = Duration::from_millis(100);
                tracing::info!(
                    "mqtt: connected to {}:{} as {}",
                    settings.host,
                    settings.port,
                    settings.client_id
                );
                let dids: Vec<String> = lock(&subs.local).iter().cloned().collect();
                let origins: Vec<String> = lock(&subs.origins).dids().map(str::to_owned).collect();
                let topics = [ping_topic.clone(), response_topic.clone()]
                    .into_iter()
                    .chain(dids.iter().flat_map(|d| {
                        [
                            settings.topic(Kind::Ping, d),
                            settings.topic(Kind::Response, d),
                        ]
                    }))
                    .chain(origins.iter().map(|d| settings.topic(Kind::Response, d)));
                for topic in topics {
                    if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                        tracing::warn!("mqtt: cannot subscribe to {topic}: {e}");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let topic = std::str::from_utf8(&p.topic).unwrap_or_default();
                let kind = if topic == ping_topic {
                    Kind::Ping
                } else if topic == response_topic {
                    Kind::Response
                } else if topic.strip_prefix(&ping_prefix).is_some_and(is_local) {
                    Kind::Ping
                } else if topic.strip_prefix(&response_prefix).is_some_and(is_awaited) {
                    Kind::Response
                } else {
                    counters.foreign.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if p.payload.len() > MAX_FRAME {
                    counters.oversized.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if p.qos != QoS::AtMostOnce && dedupe.is_duplicate(p.pkid, p.dup) {
                    counters.duplicates.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                counters.received.fetch_add(1, Ordering::Relaxed);
                let frame = Inbound {
                    kind,
                    frame: p.payload.to_vec(),
                };
                if inbound.try_send(frame).is_err() {
                    counters.inbound_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                counters.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let granted = ack
                    .return_codes
                    .iter()
                    .filter(|c| matches!(c, SubscribeReasonCode::Success(_)))
                    .count();
                if granted < ack.return_codes.len() {
                    tracing::warn!("mqtt: the broker refused a subscription (check its ACL)");
                }
                counters
                    .subscribed
                    .fetch_add(granted as u64, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => {
                let n = counters.broker_down.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    failures = n,
                    "mqtt: broker {}:{} unreachable ({e}); retrying in {:.1}s",
                    settings.host,
                    settings.port,
                    backoff.as_secs_f64()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
