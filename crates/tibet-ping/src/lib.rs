//! `tibet-ping`: the sans-IO TIBET ping protocol.
//!
//! Devices talk in intent-based pings: "I am `jis:home:sensor`, I want
//! `temperature.report`, because ...". This crate holds the wire types, the
//! frame codec and the decision pipeline (replay check, trust, airlock). It
//! owns no sockets and reads no clock: time comes in as a [`Timestamp`] and
//! randomness from an injected RNG, so every behaviour is deterministic in
//! tests.

#![forbid(unsafe_code)]

mod codec;
pub mod ids;
mod packet;
mod time;

pub use codec::{
    DecodeError, EncodeError, FLAG_MSGPACK, FLAG_RESPONSE, Frame, FrameHeader, HEADER_LEN, MAGIC,
    MAX_DEPTH, MAX_PAYLOAD, PacketCodec, VERSION, WireFormat, decode_header,
};
pub use packet::{
    AirlockZone, BROADCAST, JsonMap, PingDecision, PingPacket, PingResponse, PingType, Priority,
    RoutingMode, UnknownVariant,
};
pub use time::Timestamp;
