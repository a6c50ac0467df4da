//! Receive batches: [`Engine::handle_datagrams`] checks the signatures of a
//! batch's packets from pinned DIDs in one batch verification
//! (docs/PERFORMANCE.md, identity section) and then handles each datagram
//! exactly as [`Engine::handle_datagram`] would, in order.

use alloc::vec;
use alloc::vec::Vec;

use core::net::{IpAddr, SocketAddr};

use tibet_ping::identity::{IdentityMode, PublicKey, SignatureError, verify_packets};
use tibet_ping::{DecodeError, Decoded, PingPacket};

use super::{Engine, keep_strings};
use crate::identity_gate::PreVerified;
use crate::source::Source;
use crate::time::Now;

/// Most datagrams decoded ahead at once by [`Engine::handle_datagrams`]
/// (larger batches are taken in chunks of this size).
pub const MAX_DATAGRAM_BATCH: usize = 64;

/// After a batch that held a bad signature, this many batches are checked
/// one signature at a time: a sender that puts one forged packet into every
/// batch cannot make the node pay a failing batch check on top of the
/// single checks each time (at most one batch in `BATCH_BACKOFF + 1`).
const BATCH_BACKOFF: u8 = 8;

/// What receive batches keep from one batch to the next.
#[derive(Debug, Default)]
pub(super) struct BatchState {
    /// Signatures checked ahead (see [`Engine::batch_verified`]).
    verified: u64,
    /// Batches still to be checked one by one after a batch check failed.
    backoff: u8,
    /// The packets a batch is decoded into, whose strings are reused.
    packets: Vec<PingPacket>,
}

impl Engine {
    /// Several datagrams that arrived on the transport socket, in arrival
    /// order (one receive batch). The decisions, counters, events, audit
    /// records and transmits are those of calling
    /// [`Engine::handle_datagram`] for each in turn; only the work differs:
    /// signed packets whose DID is pinned are verified together, and a
    /// failing batch is re-checked one by one to find the bad signatures.
    /// A pre-checked result is used only if the DID is still pinned to the
    /// same key when its packet's turn comes (an earlier packet of the batch
    /// may have changed the pins).
    pub fn handle_datagrams(&mut self, now: Now, batch: &[(SocketAddr, &[u8])]) {
        for chunk in batch.chunks(MAX_DATAGRAM_BATCH) {
            self.handle_chunk(now, chunk);
        }
    }

    fn handle_chunk(&mut self, now: Now, chunk: &[(SocketAddr, &[u8])]) {
        if self.identity.mode() == IdentityMode::Off || chunk.len() < 2 {
            for &(from, datagram) in chunk {
                self.handle_datagram(now, from, datagram);
            }
            return;
        }
        // Packets are decoded into the engine's batch packets, whose strings
        // are reused from one batch to the next (as `handle_datagram` reuses
        // one packet).
        let mut packets = core::mem::take(&mut self.batch.packets);
        if packets.len() < chunk.len() {
            packets.resize_with(chunk.len(), || PingPacket::new("", "", "", "", ""));
        }
        // Datagrams from the uplink's address are not decoded: they are
        // refused at their turn, as by `handle_datagram`.
        let decoded: Vec<Option<Result<Decoded, DecodeError>>> = chunk
            .iter()
            .zip(packets.iter_mut())
            .map(|(&(from, datagram), packet)| {
                Source::udp(from).map(|_| self.codec.decode_into(datagram, packet))
            })
            .collect();
        let mut pre: Vec<Option<PreVerified>> = vec![None; chunk.len()];
        {
            // Checks are made ahead only within what the verification
            // budget holds now (free ones, then the tokens each address and
            // the shared bucket have, counted down here); the budget itself
            // is charged at each packet's turn, exactly as one by one.
            let mut items: Vec<(&PingPacket, PublicKey)> = Vec::new();
            let mut slots = Vec::new();
            let mut taken: Vec<(IpAddr, f64)> = Vec::new();
            let mut taken_total = 0.0;
            for (i, (frame, p)) in decoded.iter().zip(&packets).enumerate() {
                let from = chunk[i].0;
                let Some(Ok(Decoded::Packet)) = frame else {
                    continue;
                };
                let Some(key) = self.identity.pins().get(&p.source_did).copied() else {
                    continue;
                };
                if p.signature.is_empty() {
                    continue;
                }
                if !self.verify_is_free(now, Source::Udp(from), p) {
                    let (own, shared) = self.guard.verify_tokens(now.mono, from.ip());
                    let at = match taken.iter().position(|(ip, _)| *ip == from.ip()) {
                        Some(at) => at,
                        None => {
                            taken.push((from.ip(), 0.0));
                            taken.len() - 1
                        }
                    };
                    if own < taken[at].1 + 1.0 || shared < taken_total + 1.0 {
                        continue;
                    }
                    taken[at].1 += 1.0;
                    taken_total += 1.0;
                }
                items.push((p, key));
                slots.push(i);
            }
            if self.batch.backoff > 0 {
                // A recent batch held a bad signature: checking one by one
                // costs less than a failing batch plus the singles.
                self.batch.backoff -= 1;
            } else if items.len() >= 2 {
                let refs: Vec<(&PingPacket, &PublicKey)> =
                    items.iter().map(|(p, k)| (*p, k)).collect();
                let results = verify_packets(&refs);
                self.batch.verified += refs.len() as u64;
                // Well-formed but not verifying: the batch check failed and
                // every signature was checked again alone.
                if results.contains(&Err(SignatureError::Invalid)) {
                    self.batch.backoff = BATCH_BACKOFF;
                }
                for ((&slot, (_, key)), result) in slots.iter().zip(&items).zip(results) {
                    pre[slot] = Some((*key, result));
                }
            }
        }
        // Each datagram in turn takes the one receive path, as
        // `handle_datagram` sends it.
        for (((&(from, datagram), frame), pre), packet) in
            chunk.iter().zip(decoded).zip(pre).zip(&packets)
        {
            if let (Some(source), Some(frame)) = (self.arrive(now, from), frame) {
                self.receive(now, source, datagram, frame, packet, pre);
            }
        }
        for (&(_, datagram), packet) in chunk.iter().zip(packets.iter_mut()) {
            if !keep_strings(packet, datagram.len()) {
                *packet = PingPacket::new("", "", "", "", "");
            }
        }
        self.batch.packets = packets;
    }

    /// Signatures checked ahead in receive batches (a measure of the work
    /// saved; not part of [`Engine::stats`], which is the same either way).
    pub fn batch_verified(&self) -> u64 {
        self.batch.verified
    }

    /// Counters of the cache of parsed keys carried in beacons.
    pub fn key_cache_stats(&self) -> tibet_ping::identity::KeyCacheStats {
        self.identity.key_cache_stats()
    }
}
