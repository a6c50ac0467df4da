//! A fast path for the JSON packet every peer sends: compact, known keys
//! once each, strings without escapes, an empty payload.
//!
//! [`packet`] reads only that shape and says `false` at the first byte of
//! anything else (whitespace, an escape, an unknown or repeated key, a
//! non-empty payload, an over-long field, a number it does not spell the
//! way JSON must, ...). The caller then decodes the payload again with the
//! full `serde` visitor (`fields.rs`), which gives every error and every
//! unusual-but-valid input its exact meaning. So the fast path never
//! decides an error, and what it accepts it must decode exactly as the
//! visitor does; `fast_path_agrees_with_the_visitor` (in `codec/tests.rs`)
//! checks that on random and hand-picked frames.

use alloc::string::String;

use super::fields::{self, PACKET_REQUIRED};
use super::{MAX_DID_LEN, MAX_ID_LEN, MAX_INTENT_LEN, MAX_NONCE_LEN, MAX_PURPOSE_LEN};
use crate::packet::{PingPacket, Priority};

/// A cursor over the payload text.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.text.as_bytes().get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.byte()? == b).then_some(())
    }

    fn literal(&mut self, lit: &[u8]) -> bool {
        let hit = self.text.as_bytes()[self.at..].starts_with(lit);
        if hit {
            self.at += lit.len();
        }
        hit
    }

    /// A string (the text holds no escapes or control characters: see
    /// [`read`]).
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let len = memchr::memchr(b'"', &self.text.as_bytes()[start..])?;
        self.at = start + len + 1;
        // `start` and `start + len` sit next to ASCII quotes, so they are
        // character boundaries of the (already UTF-8 checked) text.
        self.text.get(start..start + len)
    }

    /// A non-negative integer as JSON spells it (no sign, no leading zero,
    /// no fraction or exponent: those end the number and then fail the
    /// separator check), up to `u32::MAX`.
    fn u32(&mut self) -> Option<u32> {
        let rest = &self.text.as_bytes()[self.at..];
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || len > 10 || (len > 1 && rest[0] == b'0') {
            return None;
        }
        let value = rest[..len]
            .iter()
            .try_fold(0u64, |acc, &d| Some(acc * 10 + u64::from(d - b'0')))?;
        self.at += len;
        u32::try_from(value).ok()
    }

    /// A plain string of at most `max` bytes.
    fn capped(&mut self, max: usize) -> Option<&'a str> {
        self.string().filter(|s| s.len() <= max)
    }

    /// `null` (`None`) or a plain string of at most `max` bytes.
    fn opt_string(&mut self, max: usize) -> Option<Option<&'a str>> {
        if self.literal(b"null") {
            return Some(None);
        }
        self.capped(max).map(Some)
    }
}

fn set(out: &mut String, s: &str) {
    out.clear();
    out.push_str(s);
}

fn set_opt(out: &mut Option<String>, s: Option<&str>) {
    match s {
        None => *out = None,
        Some(s) => set(out.get_or_insert_with(String::new), s),
    }
}

/// Decodes `text` into `p` if it has the common shape (see the module
/// docs); `false` leaves `p` partly written, for the full decoder to
/// overwrite.
pub(super) fn packet(text: &str, p: &mut PingPacket) -> bool {
    read(text, p).is_some()
}

fn read(text: &str, p: &mut PingPacket) -> Option<()> {
    // An escape or a control character anywhere is not this shape: inside a
    // string the full decoder must read it, outside one it is whitespace
    // (or an error), which compact JSON never has. One pass over the whole
    // text, without an early exit, so the compiler makes it SIMD; the
    // strings are then found by their closing quote alone.
    let odd = text
        .as_bytes()
        .iter()
        .fold(false, |odd, &b| odd | (b == b'\\') | (b < 0x20));
    if odd {
        return None;
    }
    let mut c = Cursor { text, at: 0 };
    c.expect(b'{')?;
    let mut seen = 0u32;
    loop {
        let i = fields::packet_field(c.string()?)?;
        if seen & (1 << i) != 0 {
            return None;
        }
        seen |= 1 << i;
        c.expect(b':')?;
        match i {
            0 => set(&mut p.packet_id, c.capped(MAX_ID_LEN)?),
            1 => set(&mut p.source_did, c.capped(MAX_DID_LEN)?),
            2 => set(&mut p.target_did, c.capped(MAX_DID_LEN)?),
            3 => p.ping_type = c.string()?.parse().ok()?,
            4 => p.priority = Priority::from_u8(u8::try_from(c.u32()?).ok()?)?,
            5 => p.routing_mode = c.string()?.parse().ok()?,
            6 => set(&mut p.intent, c.capped(MAX_INTENT_LEN)?),
            7 => set(&mut p.purpose, c.capped(MAX_PURPOSE_LEN)?),
            8 if c.literal(b"{}") => p.payload.clear(),
            9 => set_opt(&mut p.pod_id, c.opt_string(usize::MAX)?),
            10 => set_opt(&mut p.station_id, c.opt_string(usize::MAX)?),
            11 => p.hop_count = c.u32()?,
            12 => p.max_hops = c.u32()?,
            13 => set(&mut p.nonce, c.capped(MAX_NONCE_LEN)?),
            14 => set(&mut p.timestamp, c.string()?),
            15 => set_opt(&mut p.tibet_token_id, c.opt_string(usize::MAX)?),
            16 => set_opt(&mut p.vouched_by, c.opt_string(MAX_DID_LEN)?),
            17 => set_opt(&mut p.vouch_signature, c.opt_string(usize::MAX)?),
            18 => set(&mut p.signature, c.string()?),
            // A payload with content, or not an object.
            _ => return None,
        }
        match c.byte()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    let required = (1u32 << PACKET_REQUIRED) - 1;
    if c.at != text.len() || seen & required != required {
        return None;
    }
    fields::absent_to_defaults(p, seen);
    Some(())
}
