//! `tibet-ping`: the sans-IO TIBET ping protocol.
//!
//! Devices talk in intent-based pings: "I am `jis:home:sensor`, I want
//! `temperature.report`, because ...". This crate holds the wire types, the
//! frame codec and the decision pipeline. A [`PingNode`] is one device's
//! protocol state: it builds packets, and runs every received packet through
//! the sender's trust (explicit, else vouched through the
//! [`VouchRegistry`], else zero), the replay check ([`NonceTracker`]; skipped
//! for pings that would be ROOD, rate-limited per DID by a [`RateLimiter`]
//! below GROEN trust) and the [`Airlock`]
//! (rules, then thresholds: GROEN accept, GEEL pending human review, ROOD
//! silent drop). It owns no sockets and reads no clock: time comes in as a
//! [`Timestamp`] and randomness from an injected RNG, so every behaviour is
//! deterministic in tests.
//!
//! The protocol reads no clock, no file and no process state; a response's
//! processing time is measured by the caller
//! ([`Answer::set_processing_time`]). The default `std` feature adds what a
//! hosted driver wants beside it: [`Timestamp::now`], key and pin files
//! ([`identity::store`]) and msgpack frames. Built with
//! `--no-default-features` the crate is `#![no_std]` + `alloc`, for firmware
//! that brings its own allocator, time and randomness
//! (docs/ARCHITECTURE.md, "A core without std").
//!
//! ```
//! use rand::{SeedableRng, rngs::StdRng};
//! use tibet_ping::{AirlockZone, Outcome, PingNode, PingNodeConfig, PingOptions, Timestamp};
//!
//! let now = Timestamp::parse("2026-11-26T11:00:00Z").unwrap();
//! let small = PingNodeConfig { nonce_capacity: 1024, ..PingNodeConfig::default() };
//! let mut hub = PingNode::new("jis:home:hub", small.clone(), Box::new(StdRng::seed_from_u64(1)));
//! let mut sensor = PingNode::new("jis:home:sensor", small.clone(), Box::new(StdRng::seed_from_u64(2)));
//! let mut stranger = PingNode::new("jis:evil:x", small, Box::new(StdRng::seed_from_u64(3)));
//! hub.set_trust("jis:home:sensor", 0.9);
//!
//! // A trusted sender is accepted (GROEN) and gets an answer.
//! let ping = sensor.ping(now, "jis:home:hub", "temperature.report", "hourly log", PingOptions::default());
//! let got = hub.receive(now, &ping);
//! assert_eq!((got.outcome, got.response.airlock_zone), (Outcome::Accepted, AirlockZone::Groen));
//! assert!(got.should_reply());
//!
//! // An unknown sender is rejected (ROOD) and dropped silently.
//! let ping = stranger.ping(now, "jis:home:hub", "door.unlock", "let me in", PingOptions::default());
//! let got = hub.receive(now, &ping);
//! assert_eq!((got.outcome, got.response.airlock_zone), (Outcome::Rejected, AirlockZone::Rood));
//! assert!(!got.should_reply());
//!
//! // Its nonce was not even stored: nothing to protect for a ROOD sender.
//! assert_eq!(hub.stats().nonce_tracked, 1);
//!
//! // The sensor's packet again is a replay.
//! let ping = sensor.ping(now, "jis:home:hub", "temperature.report", "again", PingOptions::default());
//! assert_eq!(hub.receive(now, &ping).outcome, Outcome::Accepted);
//! assert_eq!(hub.receive(now, &ping).outcome, Outcome::Replay);
//! ```

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod airlock;
mod beacon;
mod codec;
mod collections;
mod drops;
pub mod identity;
pub mod ids;
mod iso;
mod nonce;
mod packet;
mod pattern;
mod ping_node;
mod ping_node_policy;
mod ping_stats;
pub mod pyjson;
mod ratelimit;
mod response;
mod review;
mod rule;
mod size;
mod time;
mod topology;
mod trust;
mod vouch;

pub use airlock::{
    Airlock, DEFAULT_PENDING_BYTES, DEFAULT_PENDING_CAPACITY, DEFAULT_TRUST_GROEN,
    DEFAULT_TRUST_ROOD, PendingPing, Verdict,
};
pub use beacon::{
    Announcement, AutoVouchRule, AutoVouchRuleError, Beacon, BeaconAdmission, BeaconDecision,
    BeaconHandler, BeaconResponse, BeaconStats, DEFAULT_BEACON_MAX_AGE,
    DEFAULT_BEACON_REPLAY_CAPACITY, DEFAULT_HITL_BYTES, DEFAULT_HITL_CAPACITY, DISCOVER_PURPOSE,
    GENERIC_DEVICE, discover_payload,
};
pub use codec::{
    DecodeCounts, DecodeError, Decoded, EncodeError, FLAG_MSGPACK, FLAG_RESPONSE, Frame,
    FrameHeader, HEADER_LEN, MAGIC, MAX_DEPTH, MAX_DID_LEN, MAX_ID_LEN, MAX_INTENT_LEN,
    MAX_NONCE_LEN, MAX_PAYLOAD, MAX_PURPOSE_LEN, PacketCodec, VERSION, WireFormat, decode_header,
};
pub use drops::{
    DEFAULT_DROP_INTERVAL, DEFAULT_DROP_SOURCES, DropAggregator, DropRecord, DropSource,
};
pub use nonce::{
    DEFAULT_FUTURE_SKEW, DEFAULT_NONCE_CAPACITY, DEFAULT_NONCE_WINDOW, NonceTracker, ReplayReason,
};
pub use packet::{
    AirlockZone, BROADCAST, JsonMap, PingDecision, PingPacket, PingResponse, PingType, Priority,
    RoutingMode, UnknownVariant,
};
pub use pattern::PatternError;
pub use ping_node::{
    ExpiredReviews, Outcome, PacketSigner, PingNode, PingNodeConfig, PingOptions, Reception,
};
pub use ping_stats::{PingNodeStats, ReplayCounts};
pub use ratelimit::{RateLimitStats, RateLimiter};
pub use response::{Answer, ResponseView};
pub use review::{Admission, DEFAULT_REVIEW_TTL, ReviewQueue, ReviewStats};
pub use rule::{AirlockRule, DEFAULT_RULE_PRIORITY, Glob, RulePattern};
pub use time::Timestamp;
pub use topology::{
    DEFAULT_TOPOLOGY_CAPACITY, NodeRole, Pod, Station, TopologyError, TopologyManager,
    TopologyStats,
};
pub use trust::{TrustAssessment, TrustSource, TrustStore, clamp_trust};
pub use vouch::{
    DEFAULT_VOUCH_BYTES, DEFAULT_VOUCH_CAPACITY, DEFAULT_VOUCH_TTL, MAX_DIDS_PER_VOUCH, Vouch,
    VouchAdmission, VouchError, VouchOptions, VouchRegistry, VouchStats,
};
