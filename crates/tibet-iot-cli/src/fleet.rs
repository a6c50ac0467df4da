//! `listen --mqtt`: joins the node's uplink (docs/FLEETS.md) to the MQTT
//! [`Bridge`].
//!
//! Frames the engine cannot route on the LAN come out of the node's uplink
//! channel and are published (`PREFIX/ping/<target>`,
//! `PREFIX/response/<origin>`); frames from the broker go into
//! [`IoTNode::handle_uplink_frame`], which runs them through the same
//! decode, airlock, replay check and trust as UDP datagrams. Every queue on
//! the way is bounded and counts what it drops, and all of it runs outside
//! the node's socket task, so a slow or absent broker never blocks UDP.
//! Every few seconds the hub's live peers that it trusts (GROEN) become the
//! local DIDs the bridge subscribes to: a device that merely beacons a DID
//! on the LAN cannot make the hub fetch that DID's pings from the broker.
//! The sender of any other ping the hub publishes gets its response topic
//! held for a while (`origins.rs`), and those that expired are let go at
//! the same tick.

use std::time::Duration;

use tibet_iot::{IoTNode, Uplink};
use tibet_ping::AirlockZone;
use tokio::sync::mpsc;

#[cfg(test)]
use crate::mqtt::StatsReader;
use crate::mqtt::{Bridge, Inbound, MqttSettings, MqttStats};

/// Uplink frames waiting for the bridge.
pub(crate) const UPLINK_CHANNEL: usize = 1024;
/// How often the local peers' DIDs are subscribed to anew.
const PEER_SYNC: Duration = Duration::from_secs(2);
/// Decided pings published to the events topic per second, at most (a
/// flood of junk on the LAN must not crowd frames out of the broker queue).
pub(crate) const EVENTS_PER_SECOND: u32 = 50;

/// A node joined to a fleet.
pub(crate) struct Fleet {
    bridge: Bridge,
    inbound: mpsc::Receiver<Inbound>,
    outbound: mpsc::Receiver<Uplink>,
    sync: tokio::time::Interval,
    /// Start of the current second and the events published in it.
    events_window: (tokio::time::Instant, u32),
}

impl Fleet {
    /// Opens `node`'s uplink and starts the bridge (connecting in the
    /// background: a broker that is down is a warning and a retry).
    pub(crate) fn start(settings: MqttSettings, node: &IoTNode) -> Fleet {
        let (bridge, inbound) = Bridge::start(settings);
        let outbound = node.open_uplink(UPLINK_CHANNEL);
        let mut sync = tokio::time::interval(PEER_SYNC);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Fleet {
            bridge,
            inbound,
            outbound,
            sync,
            events_window: (tokio::time::Instant::now(), 0),
        }
    }

    /// Waits for one piece of work and does it: a frame from the broker
    /// into the node, a frame from the node to the broker, or the peer
    /// sync. Cancel-safe (for `select!`).
    pub(crate) async fn pump(&mut self, node: &IoTNode) {
        tokio::select! {
            Some(frame) = self.inbound.recv() => node.handle_uplink_frame(&frame.frame),
            Some(up) = self.outbound.recv() => match up {
                Uplink::Ping { target_did, origin_did, frame } => {
                    self.bridge.publish_ping_from(&origin_did, &target_did, &frame);
                }
                Uplink::Response { origin_did, frame } => {
                    self.bridge.publish_response(&origin_did, &frame);
                }
                other => tracing::debug!("mqtt: uplink frame of an unknown kind: {other:?}"),
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
    }

    /// Publishes a decided ping to the events topic, when asked to
    /// (`--mqtt-events`).
    /// At most [`EVENTS_PER_SECOND`]; the rest are counted.
    pub(crate) fn publish_event(&mut self, json: &[u8]) {
        let now = tokio::time::Instant::now();
        let (start, n) = &mut self.events_window;
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
    pub(crate) fn stats(&self) -> MqttStats {
        self.bridge.stats()
    }

    /// A reader of the bridge's counters.
    #[cfg(test)]
    pub(crate) fn stats_reader(&self) -> StatsReader {
        self.bridge.stats_reader()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use tibet_iot::{SendOptions, TransportConfig, UPLINK_ADDR};
    use tibet_ping::{PingOptions, PingResponse, RoutingMode};

    use super::*;
    use crate::mqtt::tests::{Broker, settings};

    fn config() -> TransportConfig {
        TransportConfig {
            request_timeout: Duration::from_secs(5),
            ..TransportConfig::loopback()
        }
    }

    /// A started node on loopback, joined to the broker on `port` (when
    /// given) by a pump task; returns it with its bridge's counters.
    async fn node(did: &str, port: Option<u16>) -> (Arc<IoTNode>, SocketAddr, Option<StatsReader>) {
        let node = Arc::new(IoTNode::new(did, config()));
        let addr = node.start().await.unwrap();
        let reader = port.map(|port| {
            let mut fleet = Fleet::start(settings(port, did), &node);
            let reader = fleet.stats_reader();
            let n = node.clone();
            tokio::spawn(async move {
                loop {
                    fleet.pump(&n).await;
                }
            });
            reader
        });
        (node, addr, reader)
    }

    async fn until(reader: &StatsReader, what: &str, cond: impl Fn(&MqttStats) -> bool) {
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
