//! The TP frame codec: one UDP datagram carries one [`PingPacket`] or
//! [`PingResponse`] (docs/PROTOCOL.md §1).
//!
//! ```text
//! 0  2  magic "TP" (0x54 0x50)
//! 2  1  version 0x01
//! 3  1  flags: bit0 is_response, bit1 msgpack (other bits ignored)
//! 4  4  payload length, u32 big-endian (at most 65,536)
//! 8  N  payload: compact JSON (UTF-8) or a msgpack map with string keys
//! ```
//!
//! Decoding treats the datagram as hostile: the header is checked before
//! anything is read from the payload, the declared length must match the
//! datagram exactly, nesting is bounded (JSON by `serde_json`'s limit of 128,
//! msgpack by a structural pre-check, see [`MAX_DEPTH`]), no allocation is
//! sized from an unchecked length prefix, and every failure is a typed
//! [`DecodeError`], never a panic. A compact JSON packet of the usual shape
//! is read by a fast path (`codec/fast.rs`) that hands anything else,
//! errors included, to the full decoder; what it takes, it decodes alike.
//!
//! JSON is written compact and in UTF-8: non-ASCII text goes out as raw
//! UTF-8, where the Python reference (`json.dumps(..., separators=(",",
//! ":"))`, `ensure_ascii` on) writes `\uXXXX` escapes. Both decode to the
//! same strings on either side; our frames are the shorter. Field order
//! follows the reference's `to_dict()`, so ASCII-only frames are usually
//! byte-identical to Python's (floats we produce may differ in spelling:
//! `1e-5` versus `1e-05`, same value). Payload numbers keep their JSON text,
//! so integers of any size and relayed floats go back out as they came in.
//! Msgpack uses named fields (a map), like `rmp_serde::to_vec_named`, with
//! native numbers; an integer msgpack cannot hold is an
//! [`EncodeError::MsgpackNumber`] (see `codec/native.rs`).
//!
//! Msgpack frames take `rmp-serde`, which needs the `std` feature. Without
//! it the codec reads and writes JSON only: writing msgpack is an
//! [`EncodeError::Serialize`], and a msgpack datagram, after the same
//! structural pre-check, a [`DecodeError::Payload`] (dropped and counted
//! like any frame this node cannot read).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;

use serde::{Deserializer as _, Serialize};

use crate::packet::{JsonMap, PingPacket, PingResponse};
use crate::response::ResponseView;

mod counts;
mod error;
mod fast;
mod fields;
mod msgpack_guard;
pub(crate) mod native;
mod payload;

pub use counts::DecodeCounts;
pub use error::{DecodeError, EncodeError, WireFormat};
pub use fields::{MAX_DID_LEN, MAX_ID_LEN, MAX_INTENT_LEN, MAX_NONCE_LEN, MAX_PURPOSE_LEN};
pub use msgpack_guard::MAX_DEPTH;

use fields::{Issue, PacketSeed, ResponseSeed};

/// Largest payload a frame may carry, in bytes (64 KiB).
pub const MAX_PAYLOAD: usize = 65_536;
/// Length of the frame header in bytes.
pub const HEADER_LEN: usize = 8;
/// The two magic bytes that open every frame: `TP`.
pub const MAGIC: [u8; 2] = *b"TP";
/// The only frame version.
pub const VERSION: u8 = 0x01;
/// Flag bit 0: the payload is a [`PingResponse`].
pub const FLAG_RESPONSE: u8 = 0b01;
/// Flag bit 1: the payload is msgpack (else JSON).
pub const FLAG_MSGPACK: u8 = 0b10;

/// A validated frame header: magic and version checked, and the declared
/// payload length equal to what the datagram holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The raw flags byte (unknown bits kept, but ignored).
    pub flags: u8,
    /// The payload length in bytes.
    pub payload_len: u32,
}

impl FrameHeader {
    /// Whether the payload is a response (flag bit 0).
    pub const fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    /// The payload format (flag bit 1).
    pub const fn format(&self) -> WireFormat {
        if self.flags & FLAG_MSGPACK != 0 {
            WireFormat::Msgpack
        } else {
            WireFormat::Json
        }
    }
}

/// Checks a datagram's header and length without touching the payload.
///
/// Cheap enough to count or route frames by kind before decoding them.
pub fn decode_header(datagram: &[u8]) -> Result<FrameHeader, DecodeError> {
    let Some((header, payload)) = datagram.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::ShortHeader {
            len: datagram.len(),
        });
    };
    let [m0, m1, version, flags, l0, l1, l2, l3] = *header;
    if [m0, m1] != MAGIC {
        return Err(DecodeError::BadMagic { found: [m0, m1] });
    }
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion { version });
    }
    let payload_len = u32::from_be_bytes([l0, l1, l2, l3]);
    let declared = payload_len as usize;
    if declared > MAX_PAYLOAD {
        return Err(DecodeError::TooLarge {
            declared: u64::from(payload_len),
        });
    }
    if declared > payload.len() {
        return Err(DecodeError::Truncated {
            declared,
            available: payload.len(),
        });
    }
    if declared < payload.len() {
        return Err(DecodeError::TrailingBytes {
            declared,
            extra: payload.len() - declared,
        });
    }
    Ok(FrameHeader { flags, payload_len })
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A ping (flag bit 0 clear).
    Packet(PingPacket),
    /// An answer (flag bit 0 set).
    Response(PingResponse),
}

/// Encodes and decodes TP frames; the setting picks the format written,
/// decoding reads either format by the flags.
///
/// ```
/// use tibet_ping::{DecodeError, Frame, PacketCodec, PingPacket};
///
/// let packet: PingPacket = serde_json::from_str(
///     r#"{"packet_id":"ping_0011223344556677","source_did":"jis:home:sensor",
///         "target_did":"jis:home:hub","ping_type":"intent","priority":2,
///         "routing_mode":"direct","intent":"temperature.read","purpose":"climate"}"#,
/// )?;
/// let datagram = PacketCodec::msgpack().encode_packet(&packet)?;
/// assert_eq!(&datagram[..2], b"TP");
/// // Any codec decodes either format.
/// assert_eq!(PacketCodec::json().decode(&datagram)?, Frame::Packet(packet));
/// assert_eq!(
///     PacketCodec::json().decode(&datagram[..5]),
///     Err(DecodeError::ShortHeader { len: 5 })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketCodec {
    use_msgpack: bool,
}

impl PacketCodec {
    /// A codec writing msgpack when `use_msgpack`, else JSON.
    pub const fn new(use_msgpack: bool) -> Self {
        PacketCodec { use_msgpack }
    }

    /// A codec writing compact JSON (the reference's default).
    pub const fn json() -> Self {
        Self::new(false)
    }

    /// A codec writing msgpack maps.
    pub const fn msgpack() -> Self {
        Self::new(true)
    }

    /// The format this codec writes.
    pub const fn format(&self) -> WireFormat {
        if self.use_msgpack {
            WireFormat::Msgpack
        } else {
            WireFormat::Json
        }
    }

    /// Encodes a packet into one datagram.
    pub fn encode_packet(&self, p: &PingPacket) -> Result<Vec<u8>, EncodeError> {
        self.check_numbers("payload", &p.payload)?;
        self.encode(p, 0)
    }

    /// Encodes a response into one datagram.
    pub fn encode_response(&self, r: &PingResponse) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::with_capacity(HEADER_LEN + 640);
        self.encode_response_into(r, &mut buf)?;
        Ok(buf)
    }

    /// [`PacketCodec::encode_response`] into `buf` (cleared first), so a
    /// caller answering many pings reuses one buffer.
    pub fn encode_response_into(
        &self,
        r: &PingResponse,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        Self::check_floats(r.trust_score, r.rtt_ms)?;
        self.check_numbers("payload", &r.payload)?;
        self.check_numbers("fira_breakdown", &r.fira_breakdown)?;
        self.encode_into(r, FLAG_RESPONSE, buf)
    }

    /// Writes a borrowed response (see [`ResponseView`]) into `buf`
    /// (cleared first): the same bytes [`PacketCodec::encode_response`]
    /// writes for the equivalent [`PingResponse`], with no allocation once
    /// `buf` has grown to an answer's size.
    pub fn encode_view_into(
        &self,
        r: &ResponseView<'_>,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        // Its maps hold only a finite score and a count, which fit msgpack.
        Self::check_floats(r.trust_score(), r.rtt_ms())?;
        match self.format() {
            // Written without the serializer's per-key work.
            WireFormat::Json => self.frame_into(FLAG_RESPONSE, buf, |b| {
                r.write_json(b).map_err(error::reason)
            }),
            WireFormat::Msgpack => self.encode_into(r, FLAG_RESPONSE, buf),
        }
    }

    fn check_floats(trust_score: f64, rtt_ms: Option<f64>) -> Result<(), EncodeError> {
        if !trust_score.is_finite() {
            return Err(EncodeError::NonFinite {
                field: "trust_score",
            });
        }
        if rtt_ms.is_some_and(|v| !v.is_finite()) {
            return Err(EncodeError::NonFinite { field: "rtt_ms" });
        }
        Ok(())
    }

    /// Msgpack only: refuses a map holding a number msgpack cannot carry
    /// (an integer outside `-2^63..2^64`; JSON frames carry any size).
    fn check_numbers(&self, field: &'static str, map: &JsonMap) -> Result<(), EncodeError> {
        match self.format() {
            WireFormat::Json => Ok(()),
            WireFormat::Msgpack => native::unfit_number(map).map_or(Ok(()), |n| {
                Err(EncodeError::MsgpackNumber {
                    field,
                    number: error::reason(n),
                })
            }),
        }
    }

    fn encode<T: Serialize>(&self, value: &T, flags: u8) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::with_capacity(HEADER_LEN + 640);
        self.encode_into(value, flags, &mut buf)?;
        Ok(buf)
    }

    fn encode_into<T: Serialize>(
        &self,
        value: &T,
        flags: u8,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.frame_into(flags, buf, |b| match self.format() {
            WireFormat::Json => write_json(b, value).map_err(error::reason),
            #[cfg(feature = "std")]
            WireFormat::Msgpack => value
                .serialize(&mut rmp_serde::Serializer::new(b).with_struct_map())
                .map_err(error::reason),
            #[cfg(not(feature = "std"))]
            WireFormat::Msgpack => Err(MSGPACK_NEEDS_STD.into()),
        })
    }

    /// A frame into `buf` (cleared first): the header, then the payload
    /// `write` appends in this codec's format.
    fn frame_into(
        &self,
        flags: u8,
        buf: &mut Vec<u8>,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(), EncodeError> {
        let format = self.format();
        buf.clear();
        let flags = match format {
            WireFormat::Json => flags,
            WireFormat::Msgpack => flags | FLAG_MSGPACK,
        };
        buf.extend_from_slice(&[MAGIC[0], MAGIC[1], VERSION, flags, 0, 0, 0, 0]);
        write(buf).map_err(|reason| EncodeError::Serialize { format, reason })?;
        let len = buf.len() - HEADER_LEN;
        if len > MAX_PAYLOAD {
            return Err(EncodeError::TooLarge { len });
        }
        // len <= MAX_PAYLOAD, so it fits in a u32.
        buf[4..HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }

    /// Decodes one datagram, in whichever format its flags name, into a
    /// packet or a response (flag bit 0).
    ///
    /// Stricter than the Python reference, which accepts these: bytes after
    /// the declared payload, a declared length over 64 KiB, a known field
    /// given twice, NaN or infinite `trust_score`/`rtt_ms`, msgpack `bin` and
    /// `ext` values, and nesting deeper than [`MAX_DEPTH`]. Like it, unknown
    /// keys are ignored and flag bits 2 to 7 are ignored.
    pub fn decode(&self, datagram: &[u8]) -> Result<Frame, DecodeError> {
        let mut packet = PingPacket::new("", "", "", "", "");
        Ok(match self.decode_into(datagram, &mut packet)? {
            Decoded::Packet => Frame::Packet(packet),
            Decoded::Response(r) => Frame::Response(r),
        })
    }

    /// [`PacketCodec::decode`], with a packet decoded into `packet`, whose
    /// strings are reused: a receiver that keeps one packet for decoding
    /// allocates nothing for a ping once those strings have grown (the
    /// `payload`, when not empty, is still built). Every field of `packet`
    /// is overwritten, absent optional fields with their defaults; after an
    /// error, or when the frame is a response, it holds unspecified values.
    /// The checks and errors are exactly those of [`PacketCodec::decode`].
    pub fn decode_into(
        &self,
        datagram: &[u8],
        packet: &mut PingPacket,
    ) -> Result<Decoded, DecodeError> {
        let header = decode_header(datagram)?;
        let payload = &datagram[HEADER_LEN..];
        let issue = Cell::new(None);
        match header.format() {
            WireFormat::Json => {
                // Like the reference, the whole payload must be UTF-8 text;
                // checking it once lets serde_json skip a check per string.
                let text = core::str::from_utf8(payload).map_err(|e| DecodeError::Payload {
                    format: WireFormat::Json,
                    reason: error::reason(e),
                })?;
                // The common compact packet without the serde machinery;
                // anything else (and every error) takes the full path.
                if !header.is_response() && fast::packet(text, packet) {
                    return Ok(Decoded::Packet);
                }
                let seed = PacketSeed {
                    cell: &issue,
                    out: packet,
                };
                let mut de = serde_json::Deserializer::from_str(text);
                let frame = if header.is_response() {
                    de.deserialize_map(ResponseSeed(&issue))
                        .map(Decoded::Response)
                } else {
                    de.deserialize_map(seed).map(|()| Decoded::Packet)
                };
                frame.and_then(|f| de.end().map(|()| f)).map_err(|e| {
                    let data = e.classify() == serde_json::error::Category::Data;
                    classify(WireFormat::Json, issue.get(), data, e)
                })
            }
            WireFormat::Msgpack => {
                msgpack_guard::check(payload).map_err(|e| DecodeError::Payload {
                    format: WireFormat::Msgpack,
                    reason: e.to_string(),
                })?;
                Self::decode_msgpack(payload, header.is_response(), packet, &issue)
            }
        }
    }

    #[cfg(feature = "std")]
    fn decode_msgpack(
        payload: &[u8],
        is_response: bool,
        packet: &mut PingPacket,
        issue: &Cell<Option<Issue>>,
    ) -> Result<Decoded, DecodeError> {
        let seed = PacketSeed {
            cell: issue,
            out: packet,
        };
        let mut de = rmp_serde::Deserializer::from_read_ref(payload);
        // The guard already bounds nesting; this is a second fence.
        de.set_max_depth(MAX_DEPTH + 2);
        let frame = if is_response {
            de.deserialize_map(ResponseSeed(issue))
                .map(Decoded::Response)
        } else {
            de.deserialize_map(seed).map(|()| Decoded::Packet)
        };
        frame.map_err(|e| {
            use rmp_serde::decode::Error as E;
            let data = matches!(
                e,
                E::TypeMismatch(_) | E::OutOfRange | E::Syntax(_) | E::Uncategorized(_)
            );
            classify(WireFormat::Msgpack, issue.get(), data, e)
        })
    }

    #[cfg(not(feature = "std"))]
    fn decode_msgpack(
        _payload: &[u8],
        _is_response: bool,
        _packet: &mut PingPacket,
        _issue: &Cell<Option<Issue>>,
    ) -> Result<Decoded, DecodeError> {
        Err(DecodeError::Payload {
            format: WireFormat::Msgpack,
            reason: MSGPACK_NEEDS_STD.into(),
        })
    }
}

/// Why a build without `std` writes and reads no msgpack.
#[cfg(not(feature = "std"))]
const MSGPACK_NEEDS_STD: &str = "msgpack frames need the `std` feature";

/// Appends `value`'s compact JSON to `out`: written in place with `std`;
/// without it `serde_json` offers no writer, so through a temporary buffer.
#[inline]
pub(crate) fn write_json<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), serde_json::Error> {
    #[cfg(feature = "std")]
    {
        serde_json::to_writer(out, value)
    }
    #[cfg(not(feature = "std"))]
    {
        out.extend_from_slice(&serde_json::to_vec(value)?);
        Ok(())
    }
}

/// What [`PacketCodec::decode_into`] decoded.
// Unboxed like `Frame`: a response is moved out at once, and boxing it
// would cost every receiver of answers an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A ping (flag bit 0 clear), now in the packet passed in.
    Packet,
    /// An answer (flag bit 0 set).
    Response(PingResponse),
}

/// Turns a format error plus what the visitor noted into a [`DecodeError`].
/// `data` says the format blamed the value's type or content rather than
/// the syntax.
fn classify(
    format: WireFormat,
    issue: Option<Issue>,
    data: bool,
    err: impl core::fmt::Display,
) -> DecodeError {
    match issue {
        Some(Issue::Missing(field)) => DecodeError::MissingField { field },
        Some(Issue::Duplicate(field)) => DecodeError::DuplicateField { field },
        Some(Issue::TooLong(field, len, max)) => DecodeError::FieldTooLong { field, len, max },
        Some(Issue::InField(field)) if data => DecodeError::WrongType {
            field,
            reason: error::reason(err),
        },
        _ => DecodeError::Payload {
            format,
            reason: error::reason(err),
        },
    }
}

#[cfg(test)]
mod tests;
