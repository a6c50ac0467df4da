//! [`Answers`]: the ping path. A packet for this node, from the
//! retransmission check through the [`PingNode`](tibet_ping::PingNode)
//! pipeline to the answer, its audit record, its counters and the peer it
//! may move; the cache of answers sent, which answers retransmissions.

use alloc::boxed::Box;
use alloc::vec::Vec;

use core::net::SocketAddr;

use bytes::Bytes;
use tibet_ping::{AirlockZone, Answer, Outcome, PingPacket, PingType, RoutingMode};

use super::inbound::Inbound;
use super::mesh::Mesh;
use super::shared::Shared;
use crate::advert::ONE_WAY_KEY;
use crate::audit_queue::Admission;
use crate::audit_record::{AnsweredPing, AuditRecord};
use crate::config::TransportConfig;
use crate::event::Event;
use crate::metrics::PingMetrics;
use crate::response_cache::ResponseCache;
use crate::source::Source;
use crate::time::Now;

/// The answers of this node: the cache that answers retransmissions, the
/// buffer answers are written into, and the ping metrics.
#[derive(Debug)]
pub(super) struct Answers {
    responses: ResponseCache,
    /// Where answers are written before their exact-size copy is sent.
    buf: Vec<u8>,
    metrics: PingMetrics,
}

impl Answers {
    /// The response cache `config` asks for.
    pub(super) fn new(config: &TransportConfig) -> Answers {
        Answers {
            responses: ResponseCache::new(config.limits.response_cache, config.ping.nonce_window)
                .with_max_bytes(config.limits.response_cache_bytes),
            buf: Vec::new(),
            metrics: PingMetrics::default(),
        }
    }

    /// The cache of answers sent.
    pub(super) fn responses(&self) -> &ResponseCache {
        &self.responses
    }

    /// The ping metrics.
    pub(super) fn metrics(&self) -> &PingMetrics {
        &self.metrics
    }

    /// The periodic cleanup: expired answers go.
    pub(super) fn expire(&mut self, now: Now) {
        self.responses.expire(now.mono);
    }

    /// Whether the answer to a ping from `from` may go, and with its
    /// record(s) (docs/SECURITY.md, audit): `None` while auditing is off.
    fn admit_answer(
        shared: &mut Shared,
        now: Now,
        from: SocketAddr,
        trusted: bool,
        records: usize,
    ) -> Option<Admission> {
        if !shared.out.audit_enabled() {
            return None;
        }
        let guard = &mut shared.guard;
        let admission = shared
            .out
            .audit_queue()
            .admit(now.mono, trusted, records, || {
                guard.allow_audit(now.mono, from.ip())
            });
        match admission {
            Admission::Record => {}
            Admission::Unrecorded => {
                if trusted {
                    shared.out.audit_unrecorded(records);
                } else {
                    shared.stats.audit_rate_limited += 1;
                    shared.note_drop(now, from, "audit_limited");
                }
            }
            Admission::Refuse(reason) => {
                shared.stats.audit_refused += 1;
                if !trusted {
                    shared.stats.audit_rate_limited += 1;
                }
                shared.note_drop(now, from, reason);
            }
        }
        Some(admission)
    }

    /// Whether `packet` comes straight from a live peer that proved its
    /// address and whose remembered explicit trust is current and GROEN;
    /// notes the peer's slot in `inbound` for [`Answers::on_packet`].
    pub(super) fn may_earn_late(
        shared: &Shared,
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
        let found = shared.peers.slot(&packet.source_did);
        inbound.peer = Some(found);
        let Some(slot) = found else {
            return false;
        };
        shared
            .peers
            .proven_at(now.mono, slot, &packet.source_did, from)
            && shared
                .peers
                .known_trust(slot)
                .is_some_and(|(score, generation)| {
                    generation == shared.node.trust_generation()
                        && score.is_some_and(|s| s >= shared.node.config().trust_groen)
                })
    }

    /// Sends an answer to `to`: a mesh packet's as a mesh answer
    /// ([`Mesh::answer`]), charged to `charge` when it names an untrusted
    /// source.
    #[allow(clippy::too_many_arguments)]
    fn send(
        shared: &mut Shared,
        mesh: &mut Mesh,
        now: Now,
        to: SocketAddr,
        bytes: Bytes,
        routed: bool,
        charge: Option<core::net::IpAddr>,
        inbound: &mut Inbound,
    ) -> bool {
        if routed {
            mesh.answer(shared, now, to, bytes, charge, inbound)
        } else {
            shared.send_answer(now, to, bytes, 1, charge, inbound)
        }
    }

    /// Sends the answer to `packet` (decided: `answer`, GROEN when
    /// `trusted`) back the way it came, and keeps it in the response cache
    /// under `key` for retransmissions.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        shared: &mut Shared,
        mesh: &mut Mesh,
        now: Now,
        inbound: &mut Inbound,
        packet: &PingPacket,
        answer: &Answer,
        key: u64,
        trusted: bool,
    ) {
        let (source, from) = (inbound.source, inbound.from());
        // The owned response is built only for a signature; otherwise the
        // answer is written straight from the node's state into the reused
        // buffer (an audit record keeps only what its token says,
        // `AnsweredPing`). Answers are signed for senders that sign (they
        // can check the answer against a pin); an unsigned sender gets an
        // unsigned answer, so a load of unsigned pings costs no signatures.
        let signs = shared.config.identity.key.is_some() && !packet.signature.is_empty();
        let mut response = None;
        if signs {
            let mut r = shared.node.response_for(now.wall, answer, packet);
            shared.identity.sign_response(&mut r);
            response = Some(r);
        }
        let mut buf = core::mem::take(&mut self.buf);
        let encoded = match &response {
            Some(r) => shared.codec.encode_response_into(r, &mut buf),
            None => {
                let view = shared.node.response_view(now.wall, answer, packet);
                shared.codec.encode_view_into(&view, &mut buf)
            }
        };
        match encoded {
            Ok(()) => {
                let routed = packet.routing_mode == RoutingMode::Mesh;
                let sent = if source.is_uplink() {
                    // One answer per ping answered, back through the
                    // broker (never onto the LAN): no credit spent.
                    shared.reply(source, &packet.source_did, buf.to_vec());
                    true
                } else {
                    // One exact-size copy for the send queue; the
                    // buffer's spare capacity stays for the next answer.
                    let charge = (!trusted).then(|| from.ip());
                    let copy = Bytes::copy_from_slice(&buf);
                    Self::send(shared, mesh, now, from, copy, routed, charge, inbound)
                };
                if sent {
                    // The cache keeps its own copy (its byte log).
                    self.responses.insert(now.mono, key, from, &buf, trusted);
                    if source.is_uplink() {
                        shared
                            .uplink
                            .note_origin(now.mono, &packet.packet_id, &packet.source_did);
                    }
                    shared.stats.pings_answered += 1;
                    if routed && !source.is_uplink() {
                        mesh.count_answered(packet.hop_count);
                    }
                }
            }
            Err(_) => shared.stats.encode_errors += 1,
        }
        self.buf = buf;
    }

    /// A packet for this node (or a broadcast), through the identity step.
    pub(super) fn on_packet(
        &mut self,
        shared: &mut Shared,
        mesh: &mut Mesh,
        now: Now,
        inbound: &mut Inbound,
        packet: &PingPacket,
    ) {
        let (source, from) = (inbound.source, inbound.from());
        let key = self.responses.key(from, &packet.packet_id, &packet.nonce);
        if let Some((bytes, exempt)) = self.responses.get(now.mono, key, from) {
            // A retransmission: the same answer again, not a replay, and
            // only to the address that got the original answer.
            shared.stats.duplicates_answered += 1;
            if source.is_uplink() {
                shared.reply(source, &packet.source_did, bytes.to_vec());
            } else {
                let routed = packet.routing_mode == RoutingMode::Mesh;
                let charge = (!exempt).then(|| from.ip());
                Self::send(shared, mesh, now, from, bytes, routed, charge, inbound);
            }
            return;
        }
        if packet.hop_count > 0
            && packet.routing_mode == RoutingMode::Mesh
            && !mesh.first_copy(now, &packet.packet_id)
        {
            // A second copy that took another path through the mesh.
            shared.stats.mesh_duplicates += 1;
            return;
        }
        let slot = inbound.peer.take().unwrap_or_else(|| {
            (packet.hop_count == 0 && !source.is_uplink())
                .then(|| shared.peers.slot(&packet.source_did))
                .flatten()
        });
        // What the peer table remembers of the sender's explicit trust, if
        // still current; else it is read again (once per change).
        let current = slot
            .and_then(|i| shared.peers.known_trust(i))
            .filter(|&(_, generation)| generation == shared.node.trust_generation());
        let known = current.and_then(|(score, generation)| score.map(|s| (s, generation)));
        let started = shared.processing_clock.as_ref().map(|clock| clock());
        let mut answer = shared
            .node
            .answer_known(now.wall, packet, inbound.credential, known);
        if let (Some(clock), Some(started)) = (&shared.processing_clock, started) {
            answer.set_processing_time(started, clock());
        }
        if let Some(i) = slot
            && current.is_none()
        {
            let (score, generation) = shared.node.explicit_trust(&packet.source_did);
            shared.peers.remember_trust(i, score, generation);
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
        let direct_heartbeat =
            packet.ping_type == PingType::Heartbeat && packet.hop_count == 0 && !source.is_uplink();
        let one_way = direct_heartbeat
            && packet.payload.get(ONE_WAY_KEY) == Some(&serde_json::Value::Bool(true));
        if reply {
            let records = 1 + usize::from(direct_heartbeat);
            match Self::admit_answer(shared, now, from, trusted, records) {
                Some(Admission::Refuse(_)) => (reply, refused) = (false, true),
                Some(Admission::Record) => recorded = true,
                Some(Admission::Unrecorded) | None => {}
            }
        }
        if !(reply && trusted) {
            // Only a GROEN answer leaves the datagram's credit untaken.
            inbound.settle(&mut shared.guard, now);
        }
        inbound.forgo_earn();
        if reply {
            if one_way {
                // A triggered route update: taken like any heartbeat, not
                // answered (docs/PROTOCOL.md, "Route advertisements").
                shared.stats.updates_unanswered += 1;
            } else {
                self.respond(shared, mesh, now, inbound, packet, &answer, key, trusted);
            }
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
                shared.out.audit(|| AuditRecord::Ping {
                    packet: Box::new(packet.clone()),
                    answer: answered,
                    authenticated,
                });
            }
            // Only a packet that passed the replay check and was not ROOD,
            // and came straight from its sender (not over the uplink), may
            // move a peer.
            if packet.hop_count == 0 && !source.is_uplink() {
                let upd = shared
                    .peers
                    .record_activity_at(slot, now.mono, &packet.source_did, from);
                shared.peer_update(&packet.source_did, from, upd);
                if inbound.identity.is_verified() {
                    // Signed by the DID's pin and fresh: the address is
                    // proven (its signatures are then checked without a
                    // budget, docs/SECURITY.md).
                    shared.peers.set_proven(&packet.source_did, true);
                }
                mesh.router.learn_from_heartbeat(shared, now, packet, from);
                if packet.ping_type == PingType::Heartbeat && recorded {
                    // One heartbeat record per peer per interval, with
                    // the count it stands for (room was admitted above).
                    if let Some(count) = shared
                        .out
                        .audit_queue()
                        .heartbeat_due(now.mono, &packet.source_did)
                        && !shared.out.audit_queue().push(AuditRecord::Heartbeat {
                            did: packet.source_did.clone(),
                            address: from,
                            count,
                        })
                    {
                        shared
                            .out
                            .audit_queue()
                            .heartbeat_deferred(now.mono, &packet.source_did);
                    }
                }
            }
        } else if refused {
            // Counted, and noted in the drop records, by `admit_answer`.
        } else if replay {
            shared.stats.replays_dropped += 1;
            shared.note_drop(now, from, "replay");
        } else {
            shared.stats.rood_dropped += 1;
            shared.note_drop(now, from, "rood");
        }
        if shared.out.events_enabled() {
            shared.out.event(Event::PingDecided {
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
