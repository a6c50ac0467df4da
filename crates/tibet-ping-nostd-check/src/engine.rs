//! The node engine without the standard library: two [`Engine`]s, a sensor
//! and a hub, exchange a signed ping and its answer as datagrams, at a time
//! passed in, as firmware would drive the engine between its radio and its
//! clock.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tibet_iot_proto::{
    Engine, Event, IdentityConfig, Limits, MonoTime, Now, RequestId, SendOptions, Transmit,
    TransportConfig,
};
use tibet_ping::identity::{Keypair, PinStore};
use tibet_ping::{AirlockZone, PingDecision, PingNodeConfig, Timestamp};

use crate::{CheckError, HUB, SENSOR};

/// The hub's address on the simulated link.
pub const HUB_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 7150));
/// The sensor's address on the simulated link.
pub const SENSOR_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 7150));

/// What the engines did in [`engine_round_trip`].
#[derive(Clone, Debug, PartialEq)]
pub struct EngineRoundTrip {
    /// The sensor's ping, as it went on the wire, and where to.
    pub ping: Transmit,
    /// The hub's answer, as it went on the wire, and where to.
    pub answer: Transmit,
    /// The zone the hub put the ping in.
    pub zone: AirlockZone,
    /// The hub's decision.
    pub decision: PingDecision,
    /// Whether the hub authenticated the sensor by its pinned key.
    pub authenticated: bool,
    /// Whether the answer the sensor took is the one to its request.
    pub answered: bool,
    /// The answer's timestamp text: the time passed in.
    pub answer_time: alloc::string::String,
    /// What the hub sent for the same datagram again (a retransmission is
    /// answered from the response cache with the same bytes).
    pub again: Vec<Transmit>,
}

fn config(key: &Keypair, pins: PinStore) -> TransportConfig {
    // A device's tables: small, bounded as on the host.
    let limits = Limits {
        peers: 16,
        pending_requests: 16,
        seen_cache: 64,
        relay_paths: 64,
        response_cache: 64,
        routes: 16,
        send_queue: 16,
        ..Limits::default()
    };
    TransportConfig {
        discovery_enabled: false,
        identity: IdentityConfig {
            key: Some(key.clone()),
            pins,
            ..IdentityConfig::default()
        },
        limits,
        ping: PingNodeConfig {
            nonce_capacity: 256,
            untrusted_nonce_capacity: 256,
            ..PingNodeConfig::default()
        },
        ..TransportConfig::default()
    }
}

fn transmits(engine: &mut Engine) -> Vec<Transmit> {
    core::iter::from_fn(|| engine.poll_transmit()).collect()
}

fn one(mut sent: Vec<Transmit>, what: &str) -> Result<Transmit, CheckError> {
    match sent.len() {
        1 => Ok(sent.remove(0)),
        n => Err(CheckError::Engine(alloc::format!(
            "{n} datagrams for {what}"
        ))),
    }
}

/// The sensor pings the hub at `now_micros` (microseconds since the Unix
/// epoch; the monotonic clock starts at one second), engines seeded from
/// `seed`: the hub pins the sensor's key and trusts it, takes the ping as
/// a datagram, answers; the sensor takes the answer. The same datagram is
/// then fed to the hub again.
pub fn engine_round_trip(now_micros: i64, seed: u64) -> Result<EngineRoundTrip, CheckError> {
    let now = Now::new(MonoTime::from_secs(1), Timestamp::from_micros(now_micros));
    let hub_key = Keypair::from_seed(&[1; 32]);
    let sensor_key = Keypair::from_seed(&[2; 32]);
    let mut pins = PinStore::new(8);
    pins.set(SENSOR, sensor_key.public())
        .map_err(|_| CheckError::Signature)?;
    let mut hub = Engine::new(HUB, config(&hub_key, pins), seed);
    let mut sensor = Engine::new(SENSOR, config(&sensor_key, PinStore::new(8)), seed ^ 1);
    hub.set_trust(now, SENSOR, 0.9);
    hub.set_events_enabled(true);
    sensor.set_events_enabled(true);

    let id: RequestId = sensor
        .send_ping(
            now,
            HUB,
            HUB_ADDR,
            "temperature.report",
            "hourly log",
            SendOptions::default(),
        )
        .map_err(|e| CheckError::Engine(alloc::format!("{e}")))?;
    let ping = one(transmits(&mut sensor), "the ping")?;

    hub.handle_datagram(now, SENSOR_ADDR, &ping.payload);
    let answer = one(transmits(&mut hub), "the answer")?;
    let decided = core::iter::from_fn(|| hub.poll_event()).find_map(|e| match e {
        Event::PingDecided {
            zone,
            decision,
            authenticated,
            ..
        } => Some((zone, decision, authenticated)),
        _ => None,
    });
    let Some((zone, decision, authenticated)) = decided else {
        return Err(CheckError::Engine("the hub decided no ping".into()));
    };

    sensor.handle_datagram(now, HUB_ADDR, &answer.payload);
    let response = core::iter::from_fn(|| sensor.poll_event()).find_map(|e| match e {
        Event::RequestAnswered { id: got, response } => Some((got == id, response)),
        _ => None,
    });
    let Some((answered, response)) = response else {
        return Err(CheckError::Engine("the sensor took no answer".into()));
    };

    hub.handle_datagram(now, SENSOR_ADDR, &ping.payload);
    let again = transmits(&mut hub);

    Ok(EngineRoundTrip {
        ping,
        answer,
        zone,
        decision,
        authenticated,
        answered,
        answer_time: response.timestamp,
        again,
    })
}
