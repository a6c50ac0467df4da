//! The bench's packets on the wire: one ping encoded once by the library's
//! codec, then copied and patched in place per send (packet id, nonce,
//! timestamp; all fixed width), and answers matched by their
//! `in_response_to` without a full decode. The load generator must cost
//! less than the listener it measures; a sample of answers is still
//! decoded in full (`bench_load.rs`).

use anyhow::{Result, bail};
use memchr::memmem;
use tibet_ping::identity::{Keypair, SIGNATURE_TEXT_LEN, packet_signing_input, sign_bytes};
use tibet_ping::{
    FLAG_MSGPACK, FLAG_RESPONSE, HEADER_LEN, MAGIC, PacketCodec, PingPacket, Timestamp, VERSION,
};

/// Placeholders in the template; each must occur exactly once in the frame.
const ID_PLACEHOLDER: &str = "ping_b1e2c3d4e5f6a7b8";
const NONCE_PLACEHOLDER: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
/// Length of `Timestamp::to_iso` with a fraction (always written so).
const TS_LEN: usize = 32;

/// A ping frame with the offsets of its per-send fields.
#[derive(Debug, Clone)]
pub(crate) struct PingTemplate {
    frame: Vec<u8>,
    id_at: usize,
    nonce_at: usize,
    ts_at: usize,
    signed: Option<Signed>,
}

/// With a key: the signing input, patched like the frame, is signed per
/// ping and the signature written over a placeholder of the same length.
#[derive(Debug, Clone)]
struct Signed {
    key: Keypair,
    input: Vec<u8>,
    id_at: usize,
    nonce_at: usize,
    ts_at: usize,
    sig_at: usize,
}

/// Where `needle` occurs in `hay`, if exactly once.
fn once(hay: &[u8], needle: &[u8], what: &str) -> Result<usize> {
    let mut hits = memmem::find_iter(hay, needle);
    match (hits.next(), hits.next()) {
        (Some(at), None) => Ok(at),
        _ => bail!("cannot build the bench ping: {what} is not unique in the frame"),
    }
}

impl PingTemplate {
    /// Encodes one ping from `my_did` to `target` with `intent`, signed
    /// per send with `key` if given.
    pub(crate) fn new(
        codec: PacketCodec,
        my_did: &str,
        target: &str,
        intent: &str,
        key: Option<Keypair>,
    ) -> Result<Self> {
        let ts = iso_now();
        let sig_placeholder = "A".repeat(SIGNATURE_TEXT_LEN - 2) + "==";
        let packet = PingPacket {
            nonce: NONCE_PLACEHOLDER.into(),
            timestamp: ts.clone(),
            signature: if key.is_some() {
                sig_placeholder.clone()
            } else {
                String::new()
            },
            ..PingPacket::new(ID_PLACEHOLDER, my_did, target, intent, "tibet-iot bench")
        };
        let frame = codec.encode_packet(&packet)?;
        let id_at = once(&frame, ID_PLACEHOLDER.as_bytes(), "the packet id")? + "ping_".len();
        let nonce_at = once(&frame, NONCE_PLACEHOLDER.as_bytes(), "the nonce")?;
        let ts_at = once(&frame, ts.as_bytes(), "the timestamp")?;
        let signed = match key {
            None => None,
            Some(key) => {
                let input = packet_signing_input(&packet);
                Some(Signed {
                    id_at: once(&input, ID_PLACEHOLDER.as_bytes(), "the packet id")?
                        + "ping_".len(),
                    nonce_at: once(&input, NONCE_PLACEHOLDER.as_bytes(), "the nonce")?,
                    ts_at: once(&input, ts.as_bytes(), "the timestamp")?,
                    sig_at: once(&frame, sig_placeholder.as_bytes(), "the signature")?,
                    input,
                    key,
                })
            }
        };
        Ok(PingTemplate {
            frame,
            id_at,
            nonce_at,
            ts_at,
            signed,
        })
    }

    /// The encoded frame (placeholders included).
    pub(crate) fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// Writes a ping into `buf` (a copy of [`Self::frame`]): packet id
    /// `ping_` + hex of `id`, nonce hex of `nonce`, timestamp `ts`.
    pub(crate) fn patch(&self, buf: &mut [u8], id: u64, nonce: [u64; 2], ts: &[u8; TS_LEN]) {
        hex16(id, &mut buf[self.id_at..self.id_at + 16]);
        hex16(nonce[0], &mut buf[self.nonce_at..self.nonce_at + 16]);
        hex16(nonce[1], &mut buf[self.nonce_at + 16..self.nonce_at + 32]);
        buf[self.ts_at..self.ts_at + TS_LEN].copy_from_slice(ts);
        if let Some(s) = &self.signed {
            let mut input = s.input.clone();
            input[s.id_at..s.id_at + 16].copy_from_slice(&buf[self.id_at..self.id_at + 16]);
            input[s.nonce_at..s.nonce_at + 32]
                .copy_from_slice(&buf[self.nonce_at..self.nonce_at + 32]);
            input[s.ts_at..s.ts_at + TS_LEN].copy_from_slice(ts);
            let sig = sign_bytes(&input, &s.key);
            buf[s.sig_at..s.sig_at + SIGNATURE_TEXT_LEN].copy_from_slice(sig.as_bytes());
        }
    }
}

/// The current time as the reference writes it, always with a fraction
/// (so always [`TS_LEN`] bytes).
pub(crate) fn iso_now() -> String {
    let mut now = Timestamp::now();
    if now.as_micros() % 1_000_000 == 0 {
        now = Timestamp::from_micros(now.as_micros() + 1);
    }
    now.to_iso()
}

/// [`iso_now`] as a fixed-size array.
pub(crate) fn iso_now_bytes() -> [u8; TS_LEN] {
    let s = iso_now();
    let mut out = [b'0'; TS_LEN];
    // A year past 9999 would not fit; the template check catches it first.
    let n = s.len().min(TS_LEN);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

fn hex16(v: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate().take(16) {
        *o = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// Whether `datagram` has a TP header with the response flag.
pub(crate) fn is_response(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN
        && datagram[..2] == MAGIC
        && datagram[2] == VERSION
        && datagram[3] & FLAG_RESPONSE != 0
}

/// The packet id (as the number its 16 hex digits spell) that a response
/// frame answers, if `datagram` is a TP response to a `ping_` + 16 hex id.
pub(crate) fn answered_id(datagram: &[u8]) -> Option<u64> {
    if !is_response(datagram) {
        return None;
    }
    let payload = &datagram[HEADER_LEN..];
    let key: &[u8] = if datagram[3] & FLAG_MSGPACK != 0 {
        // fixstr(14) "in_response_to", then fixstr(21) "ping_...".
        b"\xaein_response_to\xb5ping_"
    } else {
        b"\"in_response_to\":\"ping_"
    };
    let at = memmem::find(payload, key)? + key.len();
    let digits = payload.get(at..at + 16)?;
    if datagram[3] & FLAG_MSGPACK == 0 && payload.get(at + 16) != Some(&b'"') {
        return None;
    }
    let mut v = 0u64;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(n);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tibet_ping::{AirlockZone, Frame, PingDecision, PingResponse};

    fn response(codec: PacketCodec, to: &str) -> Vec<u8> {
        let r = PingResponse {
            response_id: "resp_0000000000000001".into(),
            in_response_to: to.into(),
            responder_did: "jis:a:b".into(),
            decision: PingDecision::Accept,
            payload: Default::default(),
            capabilities: vec![],
            trust_score: 0.9,
            fira_breakdown: Default::default(),
            tibet_token_id: None,
            timestamp: iso_now(),
            rtt_ms: Some(0.1),
            airlock_zone: AirlockZone::Groen,
            applied_rule: None,
            signature: String::new(),
        };
        codec.encode_response(&r).unwrap()
    }

    #[test]
    fn patched_pings_decode_with_the_patched_fields() {
        for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
            let t = PingTemplate::new(codec, "jis:bench:c", "jis:bench:hub", "bench.ping", None)
                .unwrap();
            let mut buf = t.frame().to_vec();
            let ts = iso_now_bytes();
            t.patch(&mut buf, 0x0123_4567_89ab_cdef, [1, u64::MAX], &ts);
            let Ok(Frame::Packet(p)) = codec.decode(&buf) else {
                panic!("not a packet")
            };
            assert_eq!(p.packet_id, "ping_0123456789abcdef");
            assert_eq!(p.nonce, "0000000000000001ffffffffffffffff");
            assert_eq!(p.timestamp.as_bytes(), &ts);
            assert!(p.sent_at().is_some());
            assert_eq!(p.source_did, "jis:bench:c");
            assert_eq!(p.target_did, "jis:bench:hub");
        }
    }

    #[test]
    fn signed_templates_sign_each_patched_ping() {
        use tibet_ping::identity::{SignatureError, verify_packet};
        let key = Keypair::from_seed(&[9; 32]);
        for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
            let t = PingTemplate::new(
                codec,
                "jis:bench:c",
                "jis:bench:hub",
                "bench.ping",
                Some(key.clone()),
            )
            .unwrap();
            let ts = iso_now_bytes();
            for id in [1u64, 0xdead_beef] {
                let mut buf = t.frame().to_vec();
                t.patch(&mut buf, id, [id, !id], &ts);
                let Ok(Frame::Packet(p)) = codec.decode(&buf) else {
                    panic!("not a packet")
                };
                assert_eq!(p.packet_id, format!("ping_{id:016x}"));
                assert_eq!(verify_packet(&p, &key.public()), Ok(()));
                let mut other = p.clone();
                other.nonce = "00".repeat(16);
                assert_eq!(
                    verify_packet(&other, &key.public()),
                    Err(SignatureError::Invalid)
                );
            }
        }
    }

    #[test]
    fn answered_id_reads_json_and_msgpack_responses() {
        for codec in [PacketCodec::json(), PacketCodec::msgpack()] {
            let frame = response(codec, "ping_00000000000000ff");
            assert_eq!(answered_id(&frame), Some(255));
            // Not a response, or an id of another shape: no match.
            let mut as_packet = frame.clone();
            as_packet[3] &= !FLAG_RESPONSE;
            assert_eq!(answered_id(&as_packet), None);
            assert_eq!(answered_id(&response(codec, "ping_00ff")), None);
            assert_eq!(answered_id(&response(codec, "ping_00000000000000FF")), None);
            assert_eq!(answered_id(&frame[..20]), None);
        }
    }
}
