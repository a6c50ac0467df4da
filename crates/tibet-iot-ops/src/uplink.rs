//! [`MqttUplink`]: joins a node's uplink (docs/FLEETS.md) to the MQTT
//! bridge (`mqtt.rs`), so that nodes that share no LAN reach each other
//! through a broker.
//!
//! Frames the engine cannot route on the LAN come out of the node's uplink
//! channel and are published (`PREFIX/ping/<target>`,
//! `PREFIX/response/<origin>`); frames from the broker go into
//! [`IoTNode::handle_uplink_frame`], which runs them through the same
//! decode, airlock, replay check and trust as UDP datagrams. Every queue on
//! the way is bounded and counts what it drops, and all of it runs in a
//! task of its own, outside the node's socket task, so a slow or absent
//! broker never blocks UDP.
//! Every few seconds the hub's live peers that it trusts (GROEN) become the
//! local DIDs the bridge subscribes to: a device that merely beacons a DID
//! on the LAN cannot make the hub fetch that DID's pings from the broker.
//! The sender of any other ping the hub publishes gets its response topic
//! held for a while (`origins.rs`), and those that expired are let go at
//! the same tick.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tibet_iot::{IoTNode, Uplink};
use tibet_ping::AirlockZone;
use tokio::sync::mpsc;

use crate::error::MqttConfigError;
use crate::mqtt::{Bridge, Inbound, MqttStats, MqttStatsReader};
use crate::mqtt_config::MqttConfig;

/// Uplink frames waiting for the bridge.
pub const UPLINK_CHANNEL: usize = 1024;
/// How often the local peers' DIDs are subscribed to anew.
const PEER_SYNC: Duration = Duration::from_secs(2);
/// Decided pings published to the events topic per second, at most (a
/// flood of junk on the LAN must not crowd frames out of the broker queue).
pub const EVENTS_PER_SECOND: u32 = 50;

/// A node joined to a fleet through an MQTT broker. Connects in the
/// background and retries while the broker is down (logged and counted,
/// never an error). Stops, and closes the node's uplink, when dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tibet_iot::{IoTNode, TransportConfig};
/// use tibet_iot_ops::{MqttConfig, MqttUplink};
///
/// let node = Arc::new(IoTNode::new("jis:site-a:hub", TransportConfig::default()));
/// node.start().await?;
/// let config = MqttConfig::new("mqtt://broker.lan", node.did())?;
/// let uplink = MqttUplink::start(node.clone(), config)?;
/// // ... later:
/// println!("{} frames published", uplink.stats().published);
/// # Ok(()) }
/// ```
pub struct MqttUplink {
    node: Arc<IoTNode>,
    bridge: Arc<Bridge>,
    /// Start of the current second and the events published in it.
    events_window: Mutex<(tokio::time::Instant, u32)>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MqttUplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttUplink")
            .field("did", &self.node.did())
            .field("stats", &self.stats())
            .finish()
    }
}

impl MqttUplink {
    /// Opens `node`'s uplink and starts the bridge to the broker of
    /// `config`. Must be called within a tokio runtime. Fails only on a
    /// configuration that cannot work ([`MqttConfig::check`]).
    pub fn start(node: Arc<IoTNode>, config: MqttConfig) -> Result<MqttUplink, MqttConfigError> {
        config.check()?;
        let (bridge, inbound) = Bridge::start(config);
        let bridge = Arc::new(bridge);
        let outbound = node.open_uplink(UPLINK_CHANNEL);
        let mut sync = tokio::time::interval(PEER_SYNC);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pump = Pump {
            bridge: bridge.clone(),
            inbound,
            outbound,
            sync,
        };
        let n = node.clone();
        let task = tokio::spawn(async move { while pump.once(&n).await {} });
        Ok(MqttUplink {
            node,
            bridge,
            events_window: Mutex::new((tokio::time::Instant::now(), 0)),
            task,
        })
    }

    /// Publishes a decided ping (its JSON) to `PREFIX/events/<own DID>`,
    /// when the configuration asks for it ([`MqttConfig::with_events`]).
    /// At most [`EVENTS_PER_SECOND`]; the rest are counted
    /// (`events_limited`).
    pub fn publish_event(&self, json: &[u8]) {
        let now = tokio::time::Instant::now();
        let mut window = self.events_window.lock().unwrap_or_else(|p| p.into_inner());
        let (start, n) = &mut *window;
        if now.duration_since(*start) >= Duration::from_secs(1) {
            (*start, *n) = (now, 0);
        }
        if *n >= EVENTS_PER_SECOND {
            self.bridge.count_event_limited();
            return;
        }
        if self.bridge.publish_event(json) {
            *n += 1;
        }
    }

    /// The bridge's counters now.
    pub fn stats(&self) -> MqttStats {
        self.bridge.stats()
    }

    /// A reader of the bridge's counters (for a metrics page, see
    /// [`MetricsServer::watch_uplink`](crate::MetricsServer::watch_uplink)).
    pub fn stats_reader(&self) -> MqttStatsReader {
        self.bridge.stats_reader()
    }
}

impl Drop for MqttUplink {
    fn drop(&mut self) {
        self.task.abort();
        self.node.close_uplink();
    }
}

/// The uplink's task: moves frames both ways and syncs the local DIDs.
struct Pump {
    bridge: Arc<Bridge>,
    inbound: mpsc::Receiver<Inbound>,
    outbound: mpsc::Receiver<Uplink>,
    sync: tokio::time::Interval,
}

impl Pump {
    /// Waits for one piece of work and does it: a frame from the broker
    /// into the node, a frame from the node to the broker, or the peer
    /// sync. `false` once both channels are closed.
    async fn once(&mut self, node: &IoTNode) -> bool {
        tokio::select! {
            frame = self.inbound.recv() => match frame {
                Some(frame) => node.handle_uplink_frame(&frame.frame),
                None => return false,
            },
            up = self.outbound.recv() => match up {
                Some(Uplink::Ping { target_did, origin_did, frame }) => {
                    self.bridge.publish_ping_from(&origin_did, &target_did, &frame);
                }
                Some(Uplink::Response { origin_did, frame }) => {
                    self.bridge.publish_response(&origin_did, &frame);
                }
                Some(other) => tracing::debug!("mqtt: uplink frame of an unknown kind: {other:?}"),
                // The uplink was closed or opened anew elsewhere.
                None => return false,
            },
            _ = self.sync.tick() => {
                let trusted: Vec<String> = node
                    .peers()
                    .into_iter()
                    .filter(|p| node.threshold_zone(node.trust_of(&p.did)) == AirlockZone::Groen)
                    .map(|p| p.did.into_string())
                    .collect();
                self.bridge.set_local_dids(trusted.iter().map(String::as_str));
                self.bridge.expire_origins();
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use tibet_iot::{SendOptions, TransportConfig, UPLINK_ADDR};
    use tibet_ping::{PingOptions, PingResponse, RoutingMode};

    use super::*;
    use crate::mqtt::tests::settings;
    use tibet_testkit::mqtt::Broker;

    fn config() -> TransportConfig {
        TransportConfig {
            request_timeout: Duration::from_secs(5),
            ..TransportConfig::loopback()
        }
    }

    /// A started node on loopback, joined to the broker on `port` (when
    /// given); returns it with its uplink.
    async fn node(did: &str, port: Option<u16>) -> (Arc<IoTNode>, SocketAddr, Option<MqttUplink>) {
        let node = Arc::new(IoTNode::new(did, config()));
        let addr = node.start().await.unwrap();
        let uplink = port.map(|port| MqttUplink::start(node.clone(), settings(port, did)).unwrap());
        (node, addr, uplink)
    }

    async fn until(reader: &MqttUplink, what: &str, cond: impl Fn(&MqttStats) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !cond(&reader.stats()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {:?}",
                reader.stats()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(
        from: &IoTNode,
        target: &str,
        via: SocketAddr,
        timeout: Duration,
    ) -> Option<PingResponse> {
        let opts = SendOptions {
            ping: PingOptions {
                routing_mode: RoutingMode::Mesh,
                max_hops: Some(5),
                ..PingOptions::default()
            },
            timeout: Some(timeout),
            ..SendOptions::default()
        };
        from.send_ping(target, via, "lock.open", "coming home", opts)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sites_without_a_shared_lan_ping_through_a_real_broker_that_restarts() {
        let Some(mut broker) = Broker::launch() else {
            return;
        };
        let port = broker.port();
        // Site A: a phone node on the uplink itself, and a hub with a
        // plain local device; site B: the lock. No discovery, no peers in
        // common, different ports: the broker is the only way between them.
        let (phone, _, phone_mq) = node("jis:site-a:phone", Some(port)).await;
        let (hub, hub_addr, hub_mq) = node("jis:site-a:hub", Some(port)).await;
        let (tablet, tablet_addr, _) = node("jis:site-a:tablet", None).await;
        let (lock, _, lock_mq) = node("jis:site-b:lock", Some(port)).await;
        let (intruder, _, intruder_mq) = node("jis:site-x:intruder", Some(port)).await;
        let (phone_mq, hub_mq, lock_mq) = (phone_mq.unwrap(), hub_mq.unwrap(), lock_mq.unwrap());
        lock.set_trust("jis:site-a:phone", 0.9);
        lock.set_trust("jis:site-a:tablet", 0.9);
        hub.set_trust("jis:site-a:tablet", 0.9);
        hub.add_peer("jis:site-a:tablet", tablet_addr);
        // Of two peers that arrive together, only the trusted one is
        // subscribed for.
        phone.set_trust("jis:site-a:speaker", 0.9);
        phone.add_peer("jis:site-a:speaker", "127.0.0.1:9".parse().unwrap());
        phone.add_peer("jis:site-a:stranger", "127.0.0.1:10".parse().unwrap());
        until(&phone_mq, "phone and speaker", |s| {
            s.local_dids == 1 && s.subscribed >= 4
        })
        .await;
        until(&lock_mq, "lock", |s| s.subscribed >= 2).await;
        until(intruder_mq.as_ref().unwrap(), "intruder", |s| {
            s.subscribed >= 2
        })
        .await;
        // The hub subscribes to its local peer's topics too.
        until(&hub_mq, "hub and tablet", |s| {
            s.local_dids == 1 && s.subscribed >= 4
        })
        .await;

        // The phone's own uplink.
        let r = ping(
            &phone,
            "jis:site-b:lock",
            UPLINK_ADDR,
            Duration::from_secs(5),
        )
        .await
        .expect("the lock answers across sites");
        assert_eq!(r.responder_did, "jis:site-b:lock");
        assert_eq!(r.airlock_zone, AirlockZone::Groen);

        // The tablet has no uplink: its mesh ping goes to the hub, which
        // has no local next hop and publishes it; the answer comes back on
        // the tablet's topic, which the hub holds, and home over UDP.
        let r = ping(&tablet, "jis:site-b:lock", hub_addr, Duration::from_secs(5))
            .await
            .expect("answered through the hub");
        assert_eq!(r.responder_did, "jis:site-b:lock");
        let hs = hub.stats();
        assert_eq!(hs.uplink.pings_out, 1);
        assert_eq!(hs.relay.responses_relayed, 1);

        // The broker is no source of trust: an unknown sender is ROOD and
        // gets silence, as over UDP.
        let r = ping(
            &intruder,
            "jis:site-b:lock",
            UPLINK_ADDR,
            Duration::from_millis(1500),
        )
        .await;
        assert!(r.is_none(), "{r:?}");
        let ls = lock.stats();
        assert_eq!(ls.engine.rood_dropped, 1);
        assert_eq!(ls.engine.pings_answered, 2);
        assert!(lock.peers().is_empty(), "nothing over MQTT became a peer");

        // The broker dies and comes back: the nodes reconnect and deliver
        // again.
        broker.restart();
        for (mq, what, subs) in [(&phone_mq, "phone", 8), (&lock_mq, "lock", 4)] {
            until(mq, what, |s| s.reconnects >= 1 && s.subscribed >= subs).await;
        }
        let r = ping(
            &phone,
            "jis:site-b:lock",
            UPLINK_ADDR,
            Duration::from_secs(5),
        )
        .await
        .expect("answered after the broker restarted");
        assert_eq!(r.responder_did, "jis:site-b:lock");
        assert!(phone_mq.stats().broker_down >= 1);
        assert_eq!(phone.stats().driver.uplink_dropped, 0);
        drop(broker);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_one_off_sender_through_a_hub_gets_its_answer() {
        let Some(broker) = Broker::launch() else {
            return;
        };
        let port = broker.port();
        // Site A: a hub, and a script that is no peer of it (it never said
        // hello, it has no uplink); site B: the lock.
        let (hub, hub_addr, hub_mq) = node("jis:site-a:hub", Some(port)).await;
        let (script, _, _) = node("jis:site-a:script", None).await;
        let (lock, _, lock_mq) = node("jis:site-b:lock", Some(port)).await;
        let (hub_mq, lock_mq) = (hub_mq.unwrap(), lock_mq.unwrap());
        hub.set_trust("jis:site-a:script", 0.9);
        lock.set_trust("jis:site-a:script", 0.9);
        until(&hub_mq, "hub", |s| s.subscribed >= 2).await;
        until(&lock_mq, "lock", |s| s.subscribed >= 2).await;

        let r = ping(&script, "jis:site-b:lock", hub_addr, Duration::from_secs(5))
            .await
            .expect("the one-off sender's answer comes back through the hub");
        assert_eq!(r.responder_did, "jis:site-b:lock");
        assert!(hub.peers().is_empty(), "the script never became a peer");
        let s = hub_mq.stats();
        assert_eq!((s.origins_subscribed, s.origins_refused), (1, 0), "{s:?}");
        assert_eq!(s.local_dids, 0);
        // A second ping from it renews the topic it holds, no new one.
        ping(&script, "jis:site-b:lock", hub_addr, Duration::from_secs(5))
            .await
            .expect("answered again");
        assert_eq!(hub_mq.stats().origins_subscribed, 1);
        drop(broker);
    }
}
