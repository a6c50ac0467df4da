//! Receive batches: the signatures of a batch's packets from pinned DIDs
//! are checked in one batch verification (docs/PERFORMANCE.md, identity
//! section) before [`Engine::handle_datagrams`](super::Engine::handle_datagrams)
//! hands each datagram to the one receive path, in order (`receive.rs`).

use alloc::vec;
use alloc::vec::Vec;

use core::net::{IpAddr, SocketAddr};

use tibet_ping::identity::{PublicKey, SignatureError, verify_packets};
use tibet_ping::{DecodeError, Decoded, PingPacket};

use super::shared::Shared;
use crate::identity_gate::PreVerified;
use crate::source::Source;
use crate::time::Now;

/// Most datagrams decoded ahead at once by
/// [`Engine::handle_datagrams`](super::Engine::handle_datagrams) (larger
/// batches are taken in chunks of this size).
pub const MAX_DATAGRAM_BATCH: usize = 64;

/// After a batch that held a bad signature, this many batches are checked
/// one signature at a time: a sender that puts one forged packet into every
/// batch cannot make the node pay a failing batch check on top of the
/// single checks each time (at most one batch in `BATCH_BACKOFF + 1`).
const BATCH_BACKOFF: u8 = 8;

/// A datagram of a batch, decoded ahead (`None`: from the uplink's
/// address, refused at its turn).
pub(super) type DecodedAhead = Option<Result<Decoded, DecodeError>>;

/// What receive batches keep from one batch to the next.
#[derive(Debug, Default)]
pub(super) struct BatchState {
    /// Signatures checked ahead (see
    /// [`Engine::batch_verified`](super::Engine::batch_verified)).
    pub(super) verified: u64,
    /// Batches still to be checked one by one after a batch check failed.
    backoff: u8,
    /// The packets a batch is decoded into, whose strings are reused.
    packets: Vec<PingPacket>,
}

impl BatchState {
    /// The packets to decode a batch of `n` datagrams into (their strings
    /// reused from the last batch); give them back with
    /// [`BatchState::put_packets`].
    pub(super) fn take_packets(&mut self, n: usize) -> Vec<PingPacket> {
        let mut packets = core::mem::take(&mut self.packets);
        if packets.len() < n {
            packets.resize_with(n, || PingPacket::new("", "", "", "", ""));
        }
        packets
    }

    /// The batch's packets back, for the next batch.
    pub(super) fn put_packets(&mut self, packets: Vec<PingPacket>) {
        self.packets = packets;
    }

    /// Checks ahead, in one batch verification, the signatures of the
    /// chunk's packets whose DID is pinned, within what the verification
    /// budget holds now (free ones, then the tokens each address and the
    /// shared bucket have, counted down here); the budget itself is charged
    /// at each packet's turn, exactly as one by one. The result of each
    /// datagram's check, if made.
    pub(super) fn pre_verify(
        &mut self,
        shared: &Shared,
        now: Now,
        chunk: &[(SocketAddr, &[u8])],
        decoded: &[DecodedAhead],
        packets: &[PingPacket],
    ) -> Vec<Option<PreVerified>> {
        let mut pre: Vec<Option<PreVerified>> = vec![None; chunk.len()];
        let mut items: Vec<(&PingPacket, PublicKey)> = Vec::new();
        let mut slots = Vec::new();
        let mut taken: Vec<(IpAddr, f64)> = Vec::new();
        let mut taken_total = 0.0;
        for (i, (frame, p)) in decoded.iter().zip(packets).enumerate() {
            let from = chunk[i].0;
            let Some(Ok(Decoded::Packet)) = frame else {
                continue;
            };
            let Some(key) = shared.identity.pins().get(&p.source_did).copied() else {
                continue;
            };
            if p.signature.is_empty() {
                continue;
            }
            if !shared.verify_is_free(now, Source::Udp(from), p) {
                let (own, common) = shared.guard.verify_tokens(now.mono, from.ip());
                let at = match taken.iter().position(|(ip, _)| *ip == from.ip()) {
                    Some(at) => at,
                    None => {
                        taken.push((from.ip(), 0.0));
                        taken.len() - 1
                    }
                };
                if own < taken[at].1 + 1.0 || common < taken_total + 1.0 {
                    continue;
                }
                taken[at].1 += 1.0;
                taken_total += 1.0;
            }
            items.push((p, key));
            slots.push(i);
        }
        if self.backoff > 0 {
            // A recent batch held a bad signature: checking one by one
            // costs less than a failing batch plus the singles.
            self.backoff -= 1;
        } else if items.len() >= 2 {
            let refs: Vec<(&PingPacket, &PublicKey)> = items.iter().map(|(p, k)| (*p, k)).collect();
            let results = verify_packets(&refs);
            self.verified += refs.len() as u64;
            // Well-formed but not verifying: the batch check failed and
            // every signature was checked again alone.
            if results.contains(&Err(SignatureError::Invalid)) {
                self.backoff = BATCH_BACKOFF;
            }
            for ((&slot, (_, key)), result) in slots.iter().zip(&items).zip(results) {
                pre[slot] = Some((*key, result));
            }
        }
        pre
    }
}
