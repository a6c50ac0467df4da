//! `tibet-ping` and the `tibet-iot-proto` engine without the standard
//! library: one ping built, signed, encoded, decoded, verified and decided
//! in the airlock, with the time and the randomness passed in, as firmware
//! would run it ([`round_trip`]); and two engines exchanging a ping and its
//! answer as datagrams ([`engine_round_trip`]).
//!
//! The crate is `#![no_std]` and takes `tibet-ping` and `tibet-iot-proto`
//! with their default features off, so `cargo build -p
//! tibet-ping-nostd-check` fails as soon as either needs `std` again. With the `firmware` feature it also links as
//! a staticlib (panic handler, allocator, kept entry point), which is how
//! docs/ARCHITECTURE.md measures the size of the core: a dependency that
//! pulled `std` back in would then clash with the panic handler.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod engine;

pub use engine::{EngineRoundTrip, HUB_ADDR, SENSOR_ADDR, engine_round_trip};

use alloc::string::String;
use alloc::vec::Vec;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tibet_ping::identity::{Keypair, sign_packet, verify_packet};
use tibet_ping::{
    AirlockZone, Announcement, AutoVouchRule, Beacon, BeaconDecision, Frame, Outcome, PacketCodec,
    PingNode, PingNodeConfig, PingOptions, Timestamp,
};

/// The hub's DID.
pub const HUB: &str = "jis:home:hub";
/// The trusted sensor's DID.
pub const SENSOR: &str = "jis:home:sensor";

/// What the core decided in [`round_trip`].
#[derive(Clone, Debug, PartialEq)]
pub struct RoundTrip {
    /// The sensor's ping, as it went on the wire.
    pub ping_frame: Vec<u8>,
    /// The hub's answer, as it went on the wire.
    pub answer_frame: Vec<u8>,
    /// The hub's decision on the ping.
    pub outcome: Outcome,
    /// The zone the decoded answer carries.
    pub zone: AirlockZone,
    /// The answer's timestamp text: the time passed in.
    pub answer_time: String,
    /// The hub's decision on the same frame again.
    pub again: Outcome,
    /// The hub's decision on a stranger's ping.
    pub stranger: Outcome,
    /// The hub's decision on a new device's beacon, under an auto-vouch
    /// rule with a source pattern.
    pub beacon: BeaconDecision,
}

/// Why [`round_trip`] stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// A frame did not encode or decode, or decoded to the wrong kind.
    Codec(String),
    /// The sensor's signature did not verify.
    Signature,
    /// The auto-vouch rule was refused.
    Rule,
    /// The engines did not send or report what the exchange needs.
    Engine(String),
}

fn node(did: &str, seed: u64) -> PingNode {
    let config = PingNodeConfig {
        nonce_capacity: 256,
        untrusted_nonce_capacity: 256,
        ..PingNodeConfig::default()
    };
    PingNode::new(
        did,
        config,
        alloc::boxed::Box::new(SmallRng::seed_from_u64(seed)),
    )
}

fn codec_error(e: impl core::fmt::Display) -> CheckError {
    CheckError::Codec(alloc::format!("{e}"))
}

/// A sensor pings the hub at `now` (microseconds since the Unix epoch),
/// randomness from `seed`: the signed ping goes through the codec both
/// ways, the hub decides it and answers, and the same frame again, a
/// stranger's ping and a new device's beacon are decided too.
pub fn round_trip(now_micros: i64, seed: u64) -> Result<RoundTrip, CheckError> {
    let now = Timestamp::from_micros(now_micros);
    let codec = PacketCodec::json();
    let key = Keypair::from_seed(&[7; 32]);
    let mut hub = node(HUB, seed);
    let mut sensor = node(SENSOR, seed ^ 1);
    let mut stranger = node("jis:evil:x", seed ^ 2);
    hub.set_trust(SENSOR, 0.9);

    let mut ping = sensor.ping(
        now,
        HUB,
        "temperature.report",
        "hourly log",
        PingOptions::default(),
    );
    sign_packet(&mut ping, &key);
    let ping_frame = codec.encode_packet(&ping).map_err(codec_error)?;
    let Frame::Packet(got) = codec.decode(&ping_frame).map_err(codec_error)? else {
        return Err(CheckError::Codec("a ping decoded as a response".into()));
    };
    verify_packet(&got, &key.public()).map_err(|_| CheckError::Signature)?;

    let answer = hub.answer(now, &got, None);
    let mut answer_frame = Vec::new();
    let view = hub.response_view(now, &answer, &got);
    codec
        .encode_view_into(&view, &mut answer_frame)
        .map_err(codec_error)?;
    let Frame::Response(response) = codec.decode(&answer_frame).map_err(codec_error)? else {
        return Err(CheckError::Codec("an answer decoded as a ping".into()));
    };
    let again = hub.answer(now, &got, None).outcome;

    let odd = stranger.ping(now, HUB, "door.unlock", "let me in", PingOptions::default());
    let stranger = hub.answer(now, &odd, None).outcome;

    hub.beacon_handler_mut()
        .add_auto_vouch_rule(AutoVouchRule {
            name: "home sensors".into(),
            source_pattern: Some("jis:home:sensor_".into()),
            ..AutoVouchRule::default()
        })
        .map_err(|_| CheckError::Rule)?;
    let mut device = node("jis:home:sensor_2", seed ^ 3);
    let discover = device.discover(now, &Announcement::default());
    let beacon = Beacon::from_discover_packet(&discover)
        .ok_or_else(|| CheckError::Codec("a discover ping is no beacon".into()))?;
    let beacon = hub.handle_beacon(now, &beacon).decision;

    Ok(RoundTrip {
        ping_frame,
        answer_frame,
        outcome: answer.outcome,
        zone: response.airlock_zone,
        answer_time: response.timestamp,
        again,
        stranger,
        beacon,
    })
}

/// What firmware supplies, here for a host-built staticlib: a panic
/// handler (the core is built with `panic = "abort"`), an allocator, and
/// references that keep [`round_trip`] and [`engine_round_trip`] through
/// link-time optimisation.
#[cfg(feature = "firmware")]
mod firmware {
    #[global_allocator]
    static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

    #[cfg(not(test))]
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        loop {
            core::hint::spin_loop();
        }
    }

    /// The entry a firmware would call, kept in the link.
    #[used]
    static ENTRY: fn(i64, u64) -> Result<super::RoundTrip, super::CheckError> = super::round_trip;

    /// The engine's entry, kept in the link.
    #[used]
    static ENGINE_ENTRY: fn(i64, u64) -> Result<super::EngineRoundTrip, super::CheckError> =
        super::engine_round_trip;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_decides_without_std() {
        // 2026-11-26T11:00:00Z.
        let now = 1_795_690_800_000_000;
        let got = round_trip(now, 9).unwrap();
        assert_eq!(got.outcome, Outcome::Accepted);
        assert_eq!(got.zone, AirlockZone::Groen);
        assert_eq!(got.answer_time, "2026-11-26T11:00:00+00:00");
        assert_eq!(got.again, Outcome::Replay);
        assert_eq!(got.stranger, Outcome::Rejected);
        assert_eq!(got.beacon, BeaconDecision::AutoVouched);
        assert_eq!(&got.ping_frame[..2], b"TP");
        // The same inputs give the same bytes: nothing read from the world.
        assert_eq!(round_trip(now, 9).unwrap(), got);
    }

    #[test]
    fn the_engine_runs_without_std() {
        let now = 1_795_690_800_000_000;
        let got = engine_round_trip(now, 9).unwrap();
        assert_eq!(got.ping.destination, HUB_ADDR);
        assert_eq!(&got.ping.payload[..2], b"TP");
        assert_eq!(got.answer.destination, SENSOR_ADDR);
        assert_eq!(
            (got.zone, got.decision),
            (AirlockZone::Groen, tibet_ping::PingDecision::Accept)
        );
        assert!(got.authenticated, "the hub checked the pinned key");
        assert!(got.answered, "the answer matched the sensor's request");
        assert_eq!(got.answer_time, "2026-11-26T11:00:00+00:00");
        // A retransmitted ping is answered from the cache, byte for byte.
        assert_eq!(got.again, core::slice::from_ref(&got.answer));
        // The same inputs give the same bytes: nothing read from the world.
        assert_eq!(engine_round_trip(now, 9).unwrap(), got);
    }
}
