//! The CLI's handle on a running `tibet_iot::IoTNode`: starts it from
//! [`Settings`], sends pings, turns library events into printable ones and
//! answers control-socket requests. Only glue; the behaviour is the library's.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use tibet_iot::{Event as LibEvent, IoTNode, SendError, SendOptions, StartError, TransportConfig};
use tibet_ping::{
    AirlockRule, AirlockZone, AutoVouchRule, BeaconDecision, Glob, JsonMap, PingOptions,
    PingResponse, RoutingMode, RulePattern, Timestamp, VouchOptions,
};
use tokio::sync::broadcast;

use crate::settings::Settings;

/// One ping to send.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// Target DID.
    pub(crate) target: String,
    /// Where to send it (the target, or the first hop of a mesh route).
    pub(crate) addr: SocketAddr,
    /// Intent.
    pub(crate) intent: String,
    /// Purpose.
    pub(crate) purpose: String,
    /// Payload object.
    pub(crate) payload: JsonMap,
    /// Direct or mesh.
    pub(crate) routing: RoutingMode,
    /// How long to wait for the answer.
    pub(crate) timeout: Duration,
}

/// A node that answered a discovery beacon.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Found {
    /// Its DID.
    pub(crate) did: String,
    /// Its transport address.
    pub(crate) addr: SocketAddr,
    /// Announced device type.
    pub(crate) device_type: Option<String>,
    /// Announced capabilities.
    pub(crate) capabilities: Vec<String>,
    /// What our beacon handling decided (`auto_vouched`, `hitl_pending`, ...).
    pub(crate) decision: String,
}

/// Something `listen` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A ping addressed to us was decided.
    Ping {
        /// When (ISO 8601).
        time: String,
        /// Sender.
        source_did: String,
        /// From where.
        from: SocketAddr,
        /// Intent.
        intent: String,
        /// GROEN / GEEL / ROOD.
        zone: String,
        /// The sender's trust.
        trust: f64,
        /// accept / pending / reject / replay.
        outcome: String,
        /// The packet id (the handle for `pending approve`).
        packet_id: String,
        /// Signed by the key its DID is pinned to; otherwise the DID is a
        /// claim, and an answered ping says so (`unauthenticated`).
        authenticated: bool,
    },
    /// A peer proved its address (it answered our challenge from there).
    Proven {
        /// When (ISO 8601).
        time: String,
        /// Its DID.
        did: String,
        /// Its address.
        addr: SocketAddr,
    },
    /// A direct ping for another DID was dropped (not relayed): usually a
    /// typo in the sender's target DID.
    Misdirected {
        /// When (ISO 8601).
        time: String,
        /// Sender.
        source_did: String,
        /// From where.
        from: SocketAddr,
        /// The DID it was addressed to.
        target_did: String,
        /// The packet id.
        packet_id: String,
    },
    /// A packet failed the identity check (only counted per second by
    /// `listen`, see `listen.rs`).
    IdentityRefused {
        /// When (ISO 8601).
        time: String,
        /// The DID it claimed.
        did: String,
        /// From where.
        from: SocketAddr,
        /// Why (`unsigned`, `bad_signature`, `wrong_key`, ...).
        reason: &'static str,
    },
    /// A node was discovered.
    Discovered {
        /// When (ISO 8601).
        time: String,
        /// Its DID.
        did: String,
        /// Its address.
        addr: SocketAddr,
        /// Beacon decision.
        decision: String,
    },
}

impl Event {
    /// The human-readable line.
    #[cfg(test)]
    pub(crate) fn line(&self) -> String {
        self.to_string()
    }
}

/// The human-readable line, written straight into the output buffer.
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Ping {
                time,
                source_did,
                intent,
                zone,
                trust,
                outcome,
                authenticated,
                ..
            } => {
                write!(
                    f,
                    "{time}  {source_did}  {intent}  {zone}  trust {trust:.2}  {outcome}"
                )?;
                if !authenticated && (outcome == "accept" || outcome == "pending") {
                    f.write_str("  unauthenticated")?;
                }
                Ok(())
            }
            Event::Discovered {
                time,
                did,
                addr,
                decision,
            } => {
                write!(f, "{time}  discovered {did} at {addr}  {decision}")
            }
            Event::Proven { time, did, addr } => {
                write!(f, "{time}  proven {did} at {addr}")
            }
            Event::Misdirected {
                time,
                source_did,
                target_did,
                ..
            } => {
                write!(
                    f,
                    "{time}  {source_did}  dropped: addressed to {target_did}, not to this node"
                )
            }
            Event::IdentityRefused {
                time,
                did,
                from,
                reason,
            } => {
                write!(f, "{time}  {did}  from {from}  identity refused: {reason}")
            }
        }
    }
}

/// A running node.
pub(crate) struct Node {
    pub(crate) inner: std::sync::Arc<IoTNode>,
    addr: SocketAddr,
    /// `None` once unsubscribed: the library then builds no events.
    events: Option<broadcast::Receiver<LibEvent>>,
    /// The pins file and the pins generation last written to it.
    pins_file: Option<(std::path::PathBuf, std::sync::atomic::AtomicU64)>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("did", &self.inner.did())
            .field("addr", &self.addr)
            .finish()
    }
}

/// The library configuration for `settings`.
pub(crate) fn transport_config(s: &Settings) -> TransportConfig {
    // Settings left unset keep the library's defaults.
    let d = TransportConfig::default();
    // The config checked every limit against its range (at most 2^32).
    let size = |v: Option<u64>, default: usize| v.map_or(default, |v| v as usize);
    let l = &s.limits;
    let limits = tibet_iot::Limits {
        peers: size(l.peers, d.limits.peers),
        routes: size(l.routes, d.limits.routes),
        response_cache: size(l.response_cache, d.limits.response_cache),
        send_queue_bytes: size(l.send_queue_bytes, d.limits.send_queue_bytes),
        ..d.limits.clone()
    };
    let ping = tibet_ping::PingNodeConfig {
        nonce_capacity: size(l.nonce_capacity, d.ping.nonce_capacity),
        ..d.ping.clone()
    };
    // A name that does not resolve was refused by `check_interfaces`.
    let mif = s
        .multicast_if
        .as_ref()
        .and_then(|m| m.resolve().ok())
        .unwrap_or((d.multicast_interface, d.multicast_ifindex));
    TransportConfig {
        bind_host: s.bind.ip,
        bind_scope_id: s.bind.scope_id,
        bind_port: s.port,
        use_msgpack: s.msgpack,
        discovery_enabled: s.discovery,
        discovery_port: s.discovery_port.unwrap_or(d.discovery_port),
        multicast_group: s.group.unwrap_or(d.multicast_group),
        multicast_interface: mif.0,
        multicast_ifindex: mif.1,
        multicast_ttl: s.ttl.unwrap_or(d.multicast_ttl),
        heartbeat_interval: s.heartbeat.unwrap_or(d.heartbeat_interval),
        discovery_interval: s.discovery_interval.unwrap_or(d.discovery_interval),
        cleanup_interval: s.cleanup.unwrap_or(d.cleanup_interval),
        peer_timeout: s.peer_timeout.unwrap_or(d.peer_timeout),
        device_type: s.device_type.clone().unwrap_or(d.device_type.clone()),
        capabilities: s.capabilities.clone(),
        limits,
        ping,
        audit: tibet_iot::AuditConfig {
            on_overload: s.audit_overload,
            ..d.audit.clone()
        },
        ..d
    }
}

/// Applies trust, vouches, airlock rules and auto-vouch rules to `node`.
fn apply_policy(node: &IoTNode, s: &Settings) -> Result<()> {
    for (did, score) in &s.trust {
        node.set_trust(did, *score);
    }
    for (i, v) in s.vouches.iter().enumerate() {
        let defaults = VouchOptions::default();
        node.vouch(
            v.dids.clone(),
            VouchOptions {
                vouch_factor: v.factor.unwrap_or(defaults.vouch_factor),
                my_trust: v.my_trust.unwrap_or(defaults.my_trust),
                pod_id: v.pod_id.clone(),
                reason: v.reason.clone().unwrap_or_default(),
                ..defaults
            },
        )
        .with_context(|| format!("vouch[{i}]"))?;
    }
    for (i, r) in s.rules.iter().enumerate() {
        let zone: AirlockZone = r
            .zone
            .parse()
            .with_context(|| format!("airlock_rule[{i}].zone"))?;
        let ping_type = match &r.ping_type {
            Some(t) => Some(
                t.parse()
                    .with_context(|| format!("airlock_rule[{i}].ping_type"))?,
            ),
            None => None,
        };
        let pattern = RulePattern {
            source_did: r.source_did.as_deref().map(Glob::new),
            intent: r.intent.as_deref().map(Glob::new),
            pod_id: r.pod_id.clone(),
            ping_type,
            min_trust: r.min_trust,
        };
        let mut rule = AirlockRule::new(format!("rule_{i}"), r.name.clone(), pattern, zone);
        if let Some(p) = r.priority {
            rule.priority = i32::try_from(p)
                .with_context(|| format!("airlock_rule[{i}].priority out of range"))?;
        }
        node.add_rule(rule);
    }
    for (i, a) in s.auto_vouch.iter().enumerate() {
        let rule = AutoVouchRule {
            name: a.name.clone(),
            device_type: a.device_type.clone(),
            required_capabilities: (!a.required_capabilities.is_empty())
                .then(|| a.required_capabilities.clone()),
            source_pattern: a.source_pattern.clone(),
            pod_id: a.pod_id.clone(),
            ..AutoVouchRule::default()
        };
        node.add_auto_vouch_rule(rule)
            .with_context(|| format!("auto_vouch[{i}]"))?;
    }
    Ok(())
}

impl Node {
    /// Binds the sockets and starts the background loops.
    pub(crate) async fn start(settings: &Settings) -> Result<Node> {
        let mut config = transport_config(settings);
        config.identity = settings.identity.resolve(&settings.did)?;
        let inner = IoTNode::new(settings.did.clone(), config);
        if settings.identity.state == crate::identity_flags::StateUse::Node {
            inner.set_state_dir(settings.identity.state_dir(&settings.did));
        }
        apply_policy(&inner, settings)?;
        // No sink without --audit: the engine then builds no audit records
        // (the metrics page reads the engine's own ping counters, and the
        // driver's count of tokens stored).
        if let Some((path, durability)) = &settings.audit {
            let sink = crate::audit_file::open(path, *durability, &settings.did)?;
            inner.set_audit(Some(sink));
        }
        let events = inner.subscribe();
        let addr = inner.start().await.map_err(|e| match e {
            StartError::Bind { addr, source } if source.kind() == std::io::ErrorKind::AddrInUse => {
                anyhow::anyhow!(
                    "port {} is in use on {} (another listener?); pick another with --port",
                    addr.port(),
                    addr.ip()
                )
            }
            StartError::Bind { addr, source }
                if source.kind() == std::io::ErrorKind::AddrNotAvailable =>
            {
                anyhow::anyhow!(
                    "cannot bind {addr}: the address is not on this machine (check --bind)"
                )
            }
            other => anyhow::anyhow!("{other}"),
        })?;
        let pins_file = settings
            .identity
            .pins_file(&settings.did)
            .map(|p| (p, std::sync::atomic::AtomicU64::new(0)));
        Ok(Node {
            inner: std::sync::Arc::new(inner),
            addr,
            events: Some(events),
            pins_file,
        })
    }

    /// Writes the pins file (atomically) when trust on first use changed the
    /// pins since the last write.
    pub(crate) fn save_pins(&self) {
        use std::sync::atomic::Ordering;
        let Some((path, saved)) = &self.pins_file else {
            return;
        };
        if self.inner.pins_generation() == saved.load(Ordering::Relaxed) {
            return;
        }
        let (text, generation) = self.inner.pins();
        match text.save(path) {
            Ok(()) => saved.store(generation, Ordering::Relaxed),
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// The identity mode and pins in force (for the start-up warning).
    pub(crate) fn identity(
        &self,
    ) -> (
        tibet_ping::identity::IdentityMode,
        tibet_ping::identity::PinStore,
    ) {
        (self.inner.identity_mode(), self.inner.pins().0)
    }

    /// The library node (for the fleet uplink).
    pub(crate) fn inner(&self) -> std::sync::Arc<IoTNode> {
        self.inner.clone()
    }

    /// This node's DID.
    pub(crate) fn did(&self) -> &str {
        self.inner.did()
    }

    /// The bound transport address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends a ping; `None` when no answer came in time; an error names a
    /// failure the node could tell apart (nothing listening, an answer our
    /// pin refused, ...).
    pub(crate) async fn send(&self, out: Outgoing) -> Result<Option<PingResponse>, SendError> {
        let options = SendOptions {
            ping: PingOptions {
                routing_mode: out.routing,
                payload: out.payload,
                ..PingOptions::default()
            },
            timeout: Some(out.timeout),
            ..SendOptions::default()
        };
        self.inner
            .send_ping(&out.target, out.addr, &out.intent, &out.purpose, options)
            .await
    }

    /// Stops receiving events; the node then builds none (`next_event`
    /// waits forever).
    pub(crate) fn unsubscribe(&mut self) {
        self.events = None;
    }

    /// The next printable event; `None` when the node stopped.
    pub(crate) async fn next_event(&mut self) -> Option<Event> {
        loop {
            let Some(events) = self.events.as_mut() else {
                return std::future::pending().await;
            };
            let event = match events.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("{n} events were not printed (output too slow)");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if matches!(event, LibEvent::PeerDiscovered { .. }) {
                self.save_pins();
            }
            if let Some(e) = printable(event) {
                return Some(e);
            }
        }
    }

    /// The next printable event already queued, without waiting; `None`
    /// when the queue is empty (or the node stopped).
    pub(crate) fn try_next_event(&mut self) -> Option<Event> {
        loop {
            let event = match self.events.as_mut()?.try_recv() {
                Ok(e) => e,
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    tracing::warn!("{n} events were not printed (output too slow)");
                    continue;
                }
                Err(_) => return None,
            };
            if matches!(event, LibEvent::PeerDiscovered { .. }) {
                self.save_pins();
            }
            if let Some(e) = printable(event) {
                return Some(e);
            }
        }
    }

    /// Waits `window` for discovery answers (the node must run with
    /// discovery on: its first beacon goes out at start), or until
    /// `interrupt` fires; returns the nodes heard so far either way, and
    /// whether it was interrupted.
    pub(crate) async fn discover(
        mut self,
        window: Duration,
        interrupt: &mut tokio::signal::unix::Signal,
    ) -> (Node, Vec<Found>, bool) {
        let mut found: Vec<Found> = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        let mut interrupted = false;
        loop {
            let event = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = interrupt.recv() => {
                    interrupted = true;
                    break;
                }
                e = async { match self.events.as_mut() { Some(ev) => ev.recv().await, None => std::future::pending().await } } => e,
            };
            match event {
                Ok(LibEvent::PeerDiscovered {
                    did,
                    address,
                    decision,
                    device_type,
                    capabilities,
                }) => {
                    if did == self.inner.did() {
                        continue;
                    }
                    tracing::debug!(did = %crate::output::safe(&did), %address, "discover: heard a node");
                    let f = Found {
                        did,
                        addr: address,
                        device_type: Some(device_type),
                        capabilities,
                        decision: beacon_decision(decision),
                    };
                    match found.iter_mut().find(|x| x.did == f.did) {
                        Some(old) => *old = f,
                        None => found.push(f),
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        found.sort_by(|a, b| a.did.cmp(&b.did));
        (self, found, interrupted)
    }

    /// Stops gracefully.
    pub(crate) async fn stop(self) {
        self.inner.stop().await;
    }
}

/// The printable form of a library event (`None` for the ones `listen`
/// does not print).
fn printable(event: LibEvent) -> Option<Event> {
    let now = Timestamp::now();
    match event {
        LibEvent::PingDecided {
            from,
            packet_id,
            source_did,
            intent,
            zone,
            decision,
            trust,
            replay,
            authenticated,
            ..
        } => {
            // The trust the pipeline used for this very ping, not today's.
            Some(Event::Ping {
                time: now.to_iso(),
                source_did,
                from,
                intent,
                zone: zone.to_string(),
                trust,
                outcome: if replay {
                    "replay".into()
                } else {
                    decision.to_string()
                },
                packet_id,
                authenticated,
            })
        }
        LibEvent::PeerDiscovered {
            did,
            address,
            decision,
            ..
        } => Some(Event::Discovered {
            time: now.to_iso(),
            did,
            addr: address,
            decision: beacon_decision(decision),
        }),
        LibEvent::Misdirected {
            from,
            packet_id,
            source_did,
            target_did,
        } => Some(Event::Misdirected {
            time: now.to_iso(),
            source_did,
            from,
            target_did,
            packet_id,
        }),
        LibEvent::IdentityRefused { from, did, reason } => Some(Event::IdentityRefused {
            time: now.to_iso(),
            did,
            from,
            reason,
        }),
        LibEvent::PeerProven { did, address } => Some(Event::Proven {
            time: now.to_iso(),
            did,
            addr: address,
        }),
        _ => None,
    }
}

/// The wire spelling of a beacon decision (`auto_vouched`, `hitl_pending`, `rejected`).
fn beacon_decision(d: BeaconDecision) -> String {
    d.as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::NetFlags;
    use std::net::Ipv4Addr;
    use tibet_iot_cli::iface::MulticastIf;

    #[test]
    fn unset_settings_keep_the_library_defaults() {
        let s = Settings::client("jis:a:b".into(), 0, &NetFlags::default());
        let expected = TransportConfig {
            bind_host: s.bind.ip,
            bind_port: 0,
            discovery_enabled: false,
            ..TransportConfig::default()
        };
        assert_eq!(
            format!("{:?}", transport_config(&s)),
            format!("{expected:?}")
        );
    }

    #[test]
    fn set_settings_override_the_defaults() {
        let mut s = Settings::client("jis:a:b".into(), 7, &NetFlags::default());
        s.msgpack = true;
        s.discovery = true;
        s.discovery_port = Some(9);
        s.group = Some(Ipv4Addr::new(224, 0, 0, 9));
        s.multicast_if = Some(MulticastIf::Addr(Ipv4Addr::LOCALHOST));
        s.ttl = Some(5);
        s.heartbeat = Some(Duration::from_secs(1));
        s.discovery_interval = Some(Duration::from_secs(2));
        s.cleanup = Some(Duration::from_secs(3));
        s.peer_timeout = Some(Duration::from_secs(4));
        s.device_type = Some("lamp".into());
        s.capabilities = vec!["light.on".into()];
        let c = transport_config(&s);
        assert_eq!(
            (c.bind_port, c.use_msgpack, c.discovery_enabled),
            (7, true, true)
        );
        assert_eq!(c.discovery_port, 9);
        assert_eq!(c.multicast_group, Ipv4Addr::new(224, 0, 0, 9));
        assert_eq!(c.multicast_interface, Ipv4Addr::LOCALHOST);
        assert_eq!(c.multicast_ttl, 5);
        assert_eq!(c.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(c.discovery_interval, Duration::from_secs(2));
        assert_eq!(c.cleanup_interval, Duration::from_secs(3));
        assert_eq!(c.peer_timeout, Duration::from_secs(4));
        assert_eq!(c.device_type, "lamp");
        assert_eq!(c.capabilities, ["light.on"]);
    }
}
