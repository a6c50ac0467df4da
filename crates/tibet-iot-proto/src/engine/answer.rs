//! The ping path: a packet for this node, from the retransmission check
//! through the [`PingNode`](tibet_ping::PingNode) pipeline to the answer,
//! its audit record, its counters and the peer it may move; and the
//! amplification credit that pays for answers to untrusted sources.

use alloc::boxed::Box;
use alloc::vec::Vec;

use core::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use tibet_ping::{AirlockZone, Outcome, PingPacket, PingType, RoutingMode};

use super::Engine;
use super::inbound::Inbound;
use crate::audit_queue::Admission;
use crate::audit_record::{AnsweredPing, AuditRecord};
use crate::event::Event;
use crate::source::Source;
use crate::time::Now;

impl Engine {
    /// Whether the answer to a ping from `from` may go, and with its
    /// record(s) (docs/SECURITY.md, audit): `None` while auditing is off.
    fn admit_answer(
        &mut self,
        now: Now,
        from: SocketAddr,
        trusted: bool,
        records: usize,
    ) -> Option<Admission> {
        if !self.out.audit_enabled() {
            return None;
        }
        let guard = &mut self.guard;
        let admission = self
            .out
            .audit_queue()
            .admit(now.mono, trusted, records, || {
                guard.allow_audit(now.mono, from.ip())
            });
        match admission {
            Admission::Record => {}
            Admission::Unrecorded => {
                if trusted {
                    self.out.audit_unrecorded(records);
                } else {
                    self.stats.audit_rate_limited += 1;
                    self.note_drop(now, from, "audit_limited");
                }
            }
            Admission::Refuse(reason) => {
                self.stats.audit_refused += 1;
                if !trusted {
                    self.stats.audit_rate_limited += 1;
                }
                self.note_drop(now, from, reason);
            }
        }
        Some(admission)
    }

    /// Whether `did` is trusted (GROEN by trust score): its traffic is exempt
    /// from the amplification credit and the per-address buckets.
    pub(super) fn is_trusted(&self, now: Now, did: &str) -> bool {
        let score = self.node.trust_of(now.wall, did).score;
        self.node.airlock().threshold_zone(score) == AirlockZone::Groen
    }

    /// Spends `len` bytes of `ip`'s amplification credit (counted when it
    /// has too little), after taking the credit of the frame in hand.
    pub(super) fn spend_credit(
        &mut self,
        now: Now,
        inbound: Option<&mut Inbound>,
        ip: IpAddr,
        len: usize,
    ) -> bool {
        if let Some(inbound) = inbound {
            inbound.settle(&mut self.guard, now);
        }
        self.guard.spend(now.mono, ip, len)
    }

    /// Whether `packet` comes straight from a live peer that proved its
    /// address and whose remembered explicit trust is current and GROEN;
    /// notes the peer's slot in `inbound` for [`Engine::on_packet`].
    pub(super) fn may_earn_late(
        &mut self,
        now: Now,
        inbound: &mut Inbound,
        packet: &PingPacket,
    ) -> bool {
        let Source::Udp(from) = inbound.source else {
            return false;
        };
        if packet.hop_count != 0 {
            return false;
        }
        let found = self.peers.slot(&packet.source_did);
        inbound.peer = Some(found);
        let Some(slot) = found else {
            return false;
        };
        self.peers
            .proven_at(now.mono, slot, &packet.source_did, from)
            && self
                .peers
                .known_trust(slot)
                .is_some_and(|(score, generation)| {
                    generation == self.node.trust_generation()
                        && score.is_some_and(|s| s >= self.node.config().trust_groen)
                })
    }

    pub(super) fn transmit_charged(
        &mut self,
        now: Now,
        source: IpAddr,
        to: SocketAddr,
        payload: impl Into<Bytes>,
    ) -> bool {
        let payload = payload.into();
        if !self.spend_credit(now, None, source, payload.len()) {
            self.note_drop(now, SocketAddr::new(source, 0), "amplification");
            return false;
        }
        self.out.transmit(to, payload);
        true
    }

    /// Sends an answer (or a relayed answer) to `to`: mesh answers as
    /// `mesh_copies` copies; when `charge` names an untrusted source, only if
    /// its credit covers every copy (`false`, counted, otherwise).
    pub(super) fn answer(
        &mut self,
        now: Now,
        to: SocketAddr,
        bytes: Bytes,
        mesh: bool,
        charge: Option<IpAddr>,
        inbound: &mut Inbound,
    ) -> bool {
        let copies = if mesh {
            self.config.mesh_copies.max(1)
        } else {
            1
        };
        if let Some(ip) = charge
            && !self.spend_credit(now, Some(inbound), ip, bytes.len() * usize::from(copies))
        {
            self.note_drop(now, SocketAddr::new(ip, 0), "amplification");
            return false;
        }
        if mesh {
            self.transmit_mesh(to, bytes, copies);
        } else {
            self.out.transmit(to, bytes);
        }
        true
    }

    /// Sends an answer to a datagram's address, or over the uplink to
    /// `origin_did`.
    fn reply(&mut self, source: Source, origin_did: &str, bytes: Vec<u8>) {
        match source {
            Source::Uplink => self.uplink.response(origin_did, bytes),
            Source::Udp(addr) => self.out.transmit(addr, bytes),
        }
    }

    pub(super) fn on_packet(&mut self, now: Now, inbound: &mut Inbound, packet: &PingPacket) {
        if packet.target_did != self.node.did() && !packet.is_broadcast() {
            self.on_relay(now, inbound, packet.clone());
            return;
        }
        let (source, from) = (inbound.source, inbound.from());
        let key = self.responses.key(from, &packet.packet_id, &packet.nonce);
        if let Some((bytes, exempt)) = self.responses.get(now.mono, key, from) {
            // A retransmission: the same answer again, not a replay, and
            // only to the address that got the original answer.
            self.stats.duplicates_answered += 1;
            if source.is_uplink() {
                self.reply(source, &packet.source_did, bytes.to_vec());
            } else {
                let mesh = packet.routing_mode == RoutingMode::Mesh;
                let charge = (!exempt).then(|| from.ip());
                self.answer(now, from, bytes, mesh, charge, inbound);
            }
            return;
        }
        if packet.hop_count > 0
            && packet.routing_mode == RoutingMode::Mesh
            && !self.relay.mark_seen(now.mono, &packet.packet_id)
        {
            // A second copy that took another path through the mesh.
            self.stats.mesh_duplicates += 1;
            return;
        }
        let slot = inbound.peer.take().unwrap_or_else(|| {
            (packet.hop_count == 0 && !source.is_uplink())
                .then(|| self.peers.slot(&packet.source_did))
                .flatten()
        });
        // What the peer table remembers of the sender's explicit trust, if
        // still current; else it is read again (once per change).
        let current = slot
            .and_then(|i| self.peers.known_trust(i))
            .filter(|&(_, generation)| generation == self.node.trust_generation());
        let known = current.and_then(|(score, generation)| score.map(|s| (s, generation)));
        let started = self.processing_clock.as_ref().map(|clock| clock());
        let mut answer = self
            .node
            .answer_known(now.wall, packet, inbound.credential, known);
        if let (Some(clock), Some(started)) = (&self.processing_clock, started) {
            answer.set_processing_time(started, clock());
        }
        if let Some(i) = slot
            && current.is_none()
        {
            let (score, generation) = self.node.explicit_trust(&packet.source_did);
            self.peers.remember_trust(i, score, generation);
        }
        let replay = matches!(answer.outcome, Outcome::Replay);
        let (zone, decision) = (answer.zone, answer.decision);
        self.metrics.observe(zone, decision, answer.rtt_ms);
        let trusted = zone == AirlockZone::Groen;
        // No answer without its record: the record (and a heartbeat's
        // second one) must fit before the answer may go.
        let mut reply = answer.should_reply();
        let mut recorded = false;
        let mut refused = false;
        if reply {
            let direct_heartbeat = packet.ping_type == PingType::Heartbeat
                && packet.hop_count == 0
                && !source.is_uplink();
            let records = 1 + usize::from(direct_heartbeat);
            match self.admit_answer(now, from, trusted, records) {
                Some(Admission::Refuse(_)) => (reply, refused) = (false, true),
                Some(Admission::Record) => recorded = true,
                Some(Admission::Unrecorded) | None => {}
            }
        }
        if !(reply && trusted) {
            // Only a GROEN answer leaves the datagram's credit untaken.
            inbound.settle(&mut self.guard, now);
        }
        inbound.forgo_earn();
        if reply {
            // The owned response is built only for a signature; otherwise
            // the answer is written straight from the node's state into the
            // reused buffer (an audit record keeps only what its token
            // says, `AnsweredPing`).
            // Answers are signed for senders that sign (they can check the
            // answer against a pin); an unsigned sender gets an unsigned
            // answer, so a load of unsigned pings costs no signatures.
            let signs = self.config.identity.key.is_some() && !packet.signature.is_empty();
            let mut response = None;
            if signs {
                let mut r = self.node.response_for(now.wall, &answer, packet);
                self.identity.sign_response(&mut r);
                response = Some(r);
            }
            let mut buf = core::mem::take(&mut self.answer_buf);
            let encoded = match &response {
                Some(r) => self.codec.encode_response_into(r, &mut buf),
                None => {
                    let view = self.node.response_view(now.wall, &answer, packet);
                    self.codec.encode_view_into(&view, &mut buf)
                }
            };
            match encoded {
                Ok(()) => {
                    let mesh = packet.routing_mode == RoutingMode::Mesh;
                    let sent = if source.is_uplink() {
                        // One answer per ping answered, back through the
                        // broker (never onto the LAN): no credit spent.
                        self.reply(source, &packet.source_did, buf.to_vec());
                        true
                    } else {
                        // One exact-size copy for the send queue; the
                        // buffer's spare capacity stays for the next answer.
                        let charge = (!trusted).then(|| from.ip());
                        let copy = Bytes::copy_from_slice(&buf);
                        self.answer(now, from, copy, mesh, charge, inbound)
                    };
                    if sent {
                        // The cache keeps its own copy (its byte log).
                        self.responses.insert(now.mono, key, from, &buf, trusted);
                        if source.is_uplink() {
                            self.uplink.note_origin(
                                now.mono,
                                &packet.packet_id,
                                &packet.source_did,
                            );
                        }
                        self.stats.pings_answered += 1;
                        if mesh && !source.is_uplink() {
                            let relays =
                                (packet.hop_count as usize).min(crate::routes::INFINITY as usize);
                            let seen = &mut self.routes.stats.mesh_relays_seen;
                            if seen.len() <= relays {
                                seen.resize(relays + 1, 0);
                            }
                            seen[relays] += 1;
                        }
                    }
                }
                Err(_) => self.stats.encode_errors += 1,
            }
            self.answer_buf = buf;
            if recorded {
                // Queued before the driver sends the answer (admitted
                // above, so it fits). ROOD drops and replays are
                // aggregated (below), never one record per datagram.
                let authenticated = inbound.proved_its_did();
                let answered = AnsweredPing {
                    decision: answer.decision,
                    trust_score: answer.trust_score(),
                    zone: answer.zone,
                };
                self.out.audit(|| AuditRecord::Ping {
                    packet: Box::new(packet.clone()),
                    answer: answered,
                    authenticated,
                });
            }
            // Only a packet that passed the replay check and was not ROOD,
            // and came straight from its sender (not over the uplink), may
            // move a peer.
            if packet.hop_count == 0 && !source.is_uplink() {
                let upd = self
                    .peers
                    .record_activity_at(slot, now.mono, &packet.source_did, from);
                self.peer_update(&packet.source_did, from, upd);
                if inbound.identity.is_verified() {
                    // Signed by the DID's pin and fresh: the address is
                    // proven (its signatures are then checked without a
                    // budget, docs/SECURITY.md).
                    self.peers.set_proven(&packet.source_did, true);
                }
                self.learn_from_heartbeat(now, packet, from);
                if packet.ping_type == PingType::Heartbeat && recorded {
                    // One heartbeat record per peer per interval, with
                    // the count it stands for (room was admitted above).
                    if let Some(count) = self
                        .out
                        .audit_queue()
                        .heartbeat_due(now.mono, &packet.source_did)
                        && !self.out.audit_queue().push(AuditRecord::Heartbeat {
                            did: packet.source_did.clone(),
                            address: from,
                            count,
                        })
                    {
                        self.out
                            .audit_queue()
                            .heartbeat_deferred(now.mono, &packet.source_did);
                    }
                }
            }
        } else if refused {
            // Counted, and noted in the drop records, by `admit_answer`.
        } else if replay {
            self.stats.replays_dropped += 1;
            self.note_drop(now, from, "replay");
        } else {
            self.stats.rood_dropped += 1;
            self.note_drop(now, from, "rood");
        }
        if self.out.events_enabled() {
            self.out.event(Event::PingDecided {
                from,
                packet_id: packet.packet_id.clone(),
                source_did: packet.source_did.clone(),
                intent: packet.intent.clone(),
                ping_type: packet.ping_type,
                zone,
                decision,
                trust: answer.trust_score(),
                replay,
                authenticated: inbound.proved_its_did(),
            });
        }
    }
}
