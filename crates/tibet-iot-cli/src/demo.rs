//! `tibet-iot demo`: a self-contained tour on loopback, no configuration,
//! a few seconds. Real UDP sockets on 127.0.0.1 with ports picked by the
//! OS; each step says what happened and whether it matched what the
//! protocol promises, and the exit status is non-zero if any step did not.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot::{Event, IoTNode, SendOptions, TransportConfig};
use tibet_ping::{
    AirlockZone, Frame, PacketCodec, PingDecision, PingNode, PingNodeConfig, PingOptions,
    PingResponse, RoutingMode, Timestamp, VouchOptions,
};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;

use crate::output;

/// Arguments of `demo` (none: it needs no configuration).
#[derive(clap::Args, Debug)]
pub(crate) struct Args {}

/// How long the demo waits for an answer that should come.
const ANSWER: Duration = Duration::from_secs(3);
/// How long it waits to show that no answer comes.
const SILENCE: Duration = Duration::from_millis(600);

const HUB: &str = "jis:demo:hub";
const SENSOR: &str = "jis:demo:sensor";
const STRANGER: &str = "jis:demo:stranger";
const LAMP: &str = "jis:demo:lamp";
const DOORBELL: &str = "jis:demo:doorbell";
const RELAY: &str = "jis:demo:relay";
const FAR: &str = "jis:demo:far";
const SCANNER: &str = "jis:demo:scanner";

struct Tally {
    steps: usize,
    matched: usize,
}

impl Tally {
    fn step(&mut self, title: &str) {
        self.steps += 1;
        println!("\n[{}/7] {title}", self.steps);
    }

    fn check(&mut self, what: &str, ok: bool, expected: &str) -> bool {
        if ok {
            println!("      {what}  -> matched (expected {expected})");
        } else {
            println!("      {what}  -> MISMATCH (expected {expected})");
        }
        ok
    }

    /// Checks that the answer `a` came from zone `zone`, printed as
    /// "`label`: <answer>".
    fn check_zone(&mut self, label: &str, a: &Answer, zone: AirlockZone, expected: &str) -> bool {
        self.check(&format!("{label}: {}", show(a)), zone_is(a, zone), expected)
    }

    /// Checks the hub's decision `seen` (`ok` says whether it is the
    /// expected one), printed as "hub decided: <decision>".
    fn check_decided(&mut self, seen: &Option<Event>, ok: bool, expected: &str) -> bool {
        self.check(
            &format!(
                "hub decided: {}",
                seen.as_ref().map_or("nothing".into(), describe)
            ),
            ok,
            expected,
        )
    }

    fn close(&mut self, all: bool) {
        if all {
            self.matched += 1;
        }
    }
}

/// Runs the demo.
pub(crate) async fn run(_args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    println!("tibet-iot demo: nodes on 127.0.0.1, ports chosen by the OS");
    let discovery_port = free_udp_port()?;
    let cfg = |discovery: bool| TransportConfig {
        discovery_enabled: discovery,
        discovery_port,
        multicast_interface: Ipv4Addr::LOCALHOST,
        discovery_interval: Duration::from_secs(3600),
        discovery_reply_delay: Duration::from_millis(100),
        ..TransportConfig::loopback()
    };
    let hub = IoTNode::new(
        HUB,
        TransportConfig {
            device_type: "hub".into(),
            ..cfg(true)
        },
    );
    let sensor = IoTNode::new(
        SENSOR,
        TransportConfig {
            device_type: "sensor".into(),
            capabilities: vec!["temperature.read".into()],
            ..cfg(true)
        },
    );
    let mut hub_events = hub.subscribe();
    let hub_addr = hub.start().await.context("starting the hub")?;
    let sensor_addr = sensor.start().await.context("starting the sensor")?;
    println!("hub {HUB} on {hub_addr}, sensor {SENSOR} on {sensor_addr}");
    let mut t = Tally {
        steps: 0,
        matched: 0,
    };

    // 1. Mutual GROEN.
    t.step("hub and sensor trust each other and ping over UDP");
    hub.set_trust(SENSOR, 0.9);
    sensor.set_trust(HUB, 0.95);
    let a = direct(&sensor, HUB, hub_addr, "temperature.report", ANSWER).await?;
    let b = direct(&hub, SENSOR, sensor_addr, "temperature.read", ANSWER).await?;
    let ok1 = t.check_zone("sensor -> hub", &a, AirlockZone::Groen, "GROEN");
    let ok2 = t.check_zone("hub -> sensor", &b, AirlockZone::Groen, "GROEN");
    t.close(ok1 && ok2);

    // 2. Unknown sender: silent drop.
    t.step("an unknown node pings the hub");
    let stranger = IoTNode::new(STRANGER, cfg(false));
    stranger.start().await.context("starting the stranger")?;
    let r = direct(&stranger, HUB, hub_addr, "door.unlock", SILENCE).await?;
    let seen = decided(&mut hub_events, STRANGER).await;
    let ok1 = t.check(
        &format!("stranger -> hub: {}", show(&r)),
        r.1.is_none(),
        "no answer at all",
    );
    let rejected = matches!(
        &seen,
        Some(Event::PingDecided {
            zone: AirlockZone::Rood,
            decision: PingDecision::Reject,
            ..
        })
    );
    let ok2 = t.check_decided(&seen, rejected, "ROOD, rejected silently");
    t.close(ok1 && ok2);
    stranger.stop().await;

    // 3. Replay.
    t.step("a captured ping is replayed from another socket");
    let ok = replay_step(&mut t, hub_addr, &mut hub_events).await?;
    t.close(ok);

    // 4. Vouching.
    t.step("the hub vouches for a lamp it has never talked to");
    let vouch = hub
        .vouch(
            vec![LAMP.into()],
            VouchOptions {
                my_trust: 1.0,
                vouch_factor: 0.8,
                reason: "installed by the owner".into(),
                ..Default::default()
            },
        )
        .context("vouching")?;
    println!(
        "      vouch {} gives {LAMP} trust 1.0 x 0.8 = 0.8",
        vouch.vouch_id
    );
    let lamp = IoTNode::new(LAMP, cfg(false));
    lamp.start().await.context("starting the lamp")?;
    let r = direct(&lamp, HUB, hub_addr, "status.report", ANSWER).await?;
    let source =
        r.1.as_ref()
            .and_then(|x| x.fira_breakdown.get("source").cloned());
    let ok1 = t.check_zone("lamp -> hub", &r, AirlockZone::Groen, "GROEN");
    let ok2 = t.check(
        &format!(
            "trust source: {}",
            source.as_ref().map_or("none".into(), |s| s.to_string())
        ),
        source.as_ref().and_then(|s| s.as_str()) == Some("vouched"),
        "\"vouched\"",
    );
    t.close(ok1 && ok2);
    lamp.stop().await;

    // 5. Human review.
    t.step("a half-trusted doorbell asks to unlock the door");
    hub.set_trust(DOORBELL, 0.5);
    let doorbell = IoTNode::new(DOORBELL, cfg(false));
    doorbell.start().await.context("starting the doorbell")?;
    let r = direct(&doorbell, HUB, hub_addr, "door.unlock", ANSWER).await?;
    let ok1 = t.check_zone("doorbell -> hub", &r, AirlockZone::Geel, "GEEL, pending");
    let queued = hub.pending();
    let ok2 = t.check(
        &format!("hub review queue: {} ping(s)", queued.len()),
        queued.iter().any(|p| p.packet.source_did == DOORBELL),
        "the doorbell's ping waiting",
    );
    let approved =
        r.1.as_ref()
            .and_then(|resp| hub.approve_pending(&resp.in_response_to, Some(0.8)));
    let ok3 = t.check(
        &format!(
            "operator approves it and raises trust to 0.8: {}",
            if approved.is_some() {
                "approved"
            } else {
                "not found"
            }
        ),
        approved.is_some() && hub.pending().is_empty(),
        "approved, queue empty",
    );
    let r = direct(&doorbell, HUB, hub_addr, "door.unlock", ANSWER).await?;
    let ok4 = t.check_zone("doorbell asks again", &r, AirlockZone::Groen, "GROEN");
    t.close(ok1 && ok2 && ok3 && ok4);
    doorbell.stop().await;

    // 6. Mesh relay with the response coming home.
    t.step("a mesh ping crosses a relay to a node the hub cannot see");
    let relay = IoTNode::new(RELAY, cfg(false));
    let far = IoTNode::new(FAR, cfg(false));
    let mut relay_events = relay.subscribe();
    let relay_addr = relay.start().await.context("starting the relay")?;
    let far_addr = far.start().await.context("starting the far node")?;
    relay.add_peer(FAR, far_addr);
    relay.add_peer(HUB, hub_addr);
    // A relay forwards only for senders it would not drop itself.
    relay.set_trust(HUB, 0.9);
    far.set_trust(HUB, 0.9);
    println!("      hub -> relay {relay_addr} -> far {far_addr}; the hub only knows the relay");
    let r = ping(
        &hub,
        FAR,
        relay_addr,
        "data.sync",
        ANSWER,
        RoutingMode::Mesh,
    )
    .await?;
    let relayed = relay_count(&mut relay_events).await;
    let ok1 = t.check(
        &format!("hub -> far via relay: {}", show(&r)),
        zone_is(&r, AirlockZone::Groen) && r.1.as_ref().is_some_and(|x| x.responder_did == FAR),
        "GROEN answered by the far node",
    );
    let ok2 = t.check(
        &format!(
            "relay forwarded {} packet(s) and {} response(s)",
            relayed.0, relayed.1
        ),
        relayed.0 >= 1 && relayed.1 >= 1,
        "the ping out and the response back",
    );
    t.close(ok1 && ok2);
    relay.stop().await;
    far.stop().await;

    // 7. Discovery.
    t.step("a new node sends a discovery beacon to 224.0.71.50 on loopback");
    let scanner = IoTNode::new(SCANNER, cfg(true));
    let mut scan_events = scanner.subscribe();
    scanner.start().await.context("starting the scanner")?;
    let found = discovered(&mut scan_events, &[HUB, SENSOR], ANSWER).await;
    let ok = t.check(
        &format!(
            "scanner heard: {}",
            if found.is_empty() {
                "nobody".into()
            } else {
                found.join(", ")
            }
        ),
        found.iter().any(|d| d == HUB) && found.iter().any(|d| d == SENSOR),
        "the hub and the sensor",
    );
    t.close(ok);
    scanner.stop().await;
    hub.stop().await;
    sensor.stop().await;

    println!(
        "\n{}/{} steps matched what was expected ({:.1}s)",
        t.matched,
        t.steps,
        started.elapsed().as_secs_f64()
    );
    Ok(if t.matched == t.steps {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

type Answer = (Duration, Option<PingResponse>);

async fn ping(
    from: &IoTNode,
    target: &str,
    addr: SocketAddr,
    intent: &str,
    timeout: Duration,
    routing: RoutingMode,
) -> Result<Answer> {
    let started = Instant::now();
    let options = SendOptions {
        ping: PingOptions {
            routing_mode: routing,
            ..PingOptions::default()
        },
        timeout: Some(timeout),
        ..SendOptions::default()
    };
    let r = from
        .send_ping(target, addr, intent, "demo", options)
        .await?;
    Ok((started.elapsed(), r))
}

/// A direct (not mesh) ping, see [`ping`].
async fn direct(
    from: &IoTNode,
    target: &str,
    addr: SocketAddr,
    intent: &str,
    timeout: Duration,
) -> Result<Answer> {
    ping(from, target, addr, intent, timeout, RoutingMode::Direct).await
}

/// The zone of a raw response, or "no answer".
fn zone_or_no_answer(r: &Option<PingResponse>) -> String {
    r.as_ref()
        .map_or("no answer".into(), |r| format!("{}", r.airlock_zone))
}

fn show(a: &Answer) -> String {
    match &a.1 {
        Some(r) => output::answer_line(r, a.0),
        None => format!("no answer within {}", output::ms(a.0)),
    }
}

fn zone_is(a: &Answer, zone: AirlockZone) -> bool {
    a.1.as_ref().is_some_and(|r| r.airlock_zone == zone)
}

fn describe(e: &Event) -> String {
    match e {
        Event::PingDecided {
            zone,
            decision,
            replay,
            ..
        } => {
            format!(
                "{zone}, {decision}{}",
                if *replay { " (replay)" } else { "" }
            )
        }
        other => format!("{other:?}"),
    }
}

/// The hub's next decision on a ping from `source`.
async fn decided(events: &mut broadcast::Receiver<Event>, source: &str) -> Option<Event> {
    let deadline = tokio::time::Instant::now() + ANSWER;
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .ok()?;
        match e {
            Ok(ev @ Event::PingDecided { .. }) => {
                if matches!(&ev, Event::PingDecided { source_did, .. } if source_did == source) {
                    return Some(ev);
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

async fn replay_step(
    t: &mut Tally,
    hub_addr: SocketAddr,
    hub_events: &mut broadcast::Receiver<Event>,
) -> Result<bool> {
    // The sensor's identity, a packet built by the protocol library, sent
    // as raw bytes so the very same datagram can be sent twice.
    let mut sensor_proto = PingNode::new(
        SENSOR,
        PingNodeConfig {
            nonce_capacity: 16,
            ..PingNodeConfig::default()
        },
        Box::new(StdRng::from_entropy()),
    );
    let packet = sensor_proto.ping(
        Timestamp::now(),
        HUB,
        "temperature.report",
        "demo",
        PingOptions::default(),
    );
    let codec = PacketCodec::json();
    let bytes = codec
        .encode_packet(&packet)
        .context("encoding the packet")?;
    let original = UdpSocket::bind("127.0.0.1:0").await?;
    let attacker = UdpSocket::bind("127.0.0.1:0").await?;
    original.send_to(&bytes, hub_addr).await?;
    let first = recv_response(&codec, &original, ANSWER).await;
    let ok1 = t.check(
        &format!("original: {}", zone_or_no_answer(&first)),
        first
            .as_ref()
            .is_some_and(|r| r.airlock_zone == AirlockZone::Groen),
        "GROEN",
    );
    let _ = decided(hub_events, SENSOR).await;
    attacker.send_to(&bytes, hub_addr).await?;
    let second = recv_response(&codec, &attacker, SILENCE).await;
    let seen = decided(hub_events, SENSOR).await;
    let ok2 = t.check(
        &format!("replay: {}", zone_or_no_answer(&second)),
        second.is_none(),
        "no answer",
    );
    let detected = matches!(
        seen,
        Some(Event::PingDecided {
            replay: true,
            zone: AirlockZone::Rood,
            ..
        })
    );
    let ok3 = t.check_decided(&seen, detected, "ROOD, replay detected");
    Ok(ok1 && ok2 && ok3)
}

async fn recv_response(
    codec: &PacketCodec,
    sock: &UdpSocket,
    wait: Duration,
) -> Option<PingResponse> {
    let mut buf = vec![0u8; 70_000];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (n, _) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        if let Ok(Frame::Response(r)) = codec.decode(&buf[..n]) {
            return Some(r);
        }
    }
}

/// (packets relayed, responses relayed back) seen within a short wait.
async fn relay_count(events: &mut broadcast::Receiver<Event>) -> (usize, usize) {
    let mut counts = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Ok(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
        match e {
            Event::PacketRelayed { .. } => counts.0 += 1,
            Event::ResponseRelayed { .. } => counts.1 += 1,
            _ => {}
        }
        if counts.0 >= 1 && counts.1 >= 1 {
            break;
        }
    }
    counts
}

/// DIDs announced to the scanner, until all of `want` are heard or `wait` passes.
async fn discovered(
    events: &mut broadcast::Receiver<Event>,
    want: &[&str],
    wait: Duration,
) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(e) = tokio::time::timeout_at(deadline, events.recv()).await {
        match e {
            Ok(Event::PeerDiscovered {
                did,
                address,
                device_type,
                ..
            }) => {
                if !found.contains(&did) {
                    println!("      heard {did} ({device_type}) at {address}");
                    found.push(did);
                }
                if want.iter().all(|w| found.iter().any(|f| f == w)) {
                    break;
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    found
}

/// A UDP port that was free a moment ago, for the demo's private discovery
/// group (so it never meets a real network's 7151).
fn free_udp_port() -> Result<u16> {
    let s = StdUdpSocket::bind("127.0.0.1:0").context("finding a free UDP port")?;
    Ok(s.local_addr()?.port())
}
