//! Discovery inside the [`Engine`]: beacons received (admission, review,
//! introduction of peers, first-use pins) and sent (our discover packet),
//! and the nonce challenge that asks a new peer to prove its address.

use alloc::borrow::ToOwned;
use alloc::string::ToString;
use alloc::vec::Vec;

use core::net::SocketAddr;

use tibet_ping::identity::Identity;
use tibet_ping::{Beacon, BeaconAdmission, BeaconDecision, PingPacket};

use super::inbound::Inbound;
use super::{Engine, TRANSPORT_PORT_KEY};
use crate::audit_record::AuditRecord;
use crate::error::SendError;
use crate::event::Event;
use crate::peers::PeerUpdate;
use crate::time::Now;

impl Engine {
    /// Sends our discover packet by unicast to `addr` (a discovery port, or
    /// a host the multicast group cannot reach).
    pub fn announce_to(&mut self, now: Now, addr: SocketAddr) -> Result<(), SendError> {
        let bytes = self.discover_datagram(now)?;
        self.out.transmit(addr, bytes);
        Ok(())
    }

    pub(super) fn discover_datagram(&mut self, now: Now) -> Result<Vec<u8>, SendError> {
        let mut packet = self.node.discover(now.wall, &self.announcement);
        packet
            .payload
            .insert(TRANSPORT_PORT_KEY.to_owned(), self.local_port.into());
        // Signed again: the key fields and the port were added after the
        // node signed it.
        self.identity.sign_beacon(&mut packet);
        self.codec
            .encode_packet(&packet)
            .map_err(|e| SendError::Encode(e.to_string()))
    }

    pub(super) fn on_beacon(
        &mut self,
        now: Now,
        inbound: &mut Inbound,
        packet: &PingPacket,
        via_discovery: bool,
    ) {
        let from = inbound.from();
        if packet.source_did == self.node.did() {
            return; // our own beacon, looped back by the multicast group
        }
        let Some(beacon) = Beacon::from_discover_packet(packet) else {
            self.malformed(now, from, "discover packet is not a beacon");
            return;
        };
        // Beacons cost review entries, vouches, audit records and answers:
        // a bucket per address bounds them.
        if !self.guard.allow_beacon(now.mono, from.ip()) {
            self.stats.beacons_rate_limited += 1;
            self.note_drop(now, from, "beacon_limited");
            return;
        }
        // Who the DID already is decides what its beacon may do: nothing it
        // says binds a key to, or changes the trust of, a DID that an
        // operator trusted, pinned or vouched for (docs/SECURITY.md).
        let pinned = self.identity.pins().get(&packet.source_did).is_some();
        let offers_key = matches!(inbound.identity, Identity::SelfCertified(_));
        let admission =
            self.node
                .beacon_admission(now.wall, &packet.source_did, pinned, offers_key);
        let answer = self.node.handle_beacon_as(now.wall, &beacon, admission);
        let decision = answer.decision;
        if decision == BeaconDecision::Rejected {
            self.stats.beacons_rejected += 1;
            self.note_drop(now, from, "beacon_rejected");
            return;
        }
        // Our beacons name the transport port; the reference's come from a
        // throwaway socket and cannot be answered or reached.
        let transport = packet
            .payload
            .get(TRANSPORT_PORT_KEY)
            .and_then(|v| v.as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .map(|p| {
                // `from` with the announced port: a link-local IPv6 source
                // keeps its scope (interface), without which it is unusable.
                let mut addr = from;
                addr.set_port(p);
                addr
            });
        if let Some(addr) = transport {
            // A beacon proves nothing: it may introduce a peer, never move one.
            let upd = self.peers.introduce(now.mono, &packet.source_did, addr);
            self.peer_update(&packet.source_did, addr, upd);
            if upd == PeerUpdate::Joined {
                // Ask the newcomer to prove its address right away.
                self.challenge(now, Some(&mut *inbound), &packet.source_did, addr);
            }
        }
        let address = transport.unwrap_or(from);
        if let Identity::SelfCertified(key) = inbound.identity {
            match decision {
                // Only a DID nobody knew may be pinned by a rule.
                BeaconDecision::AutoVouched if admission == BeaconAdmission::Open => {
                    self.pin_first_use(&packet.source_did, key, "auto_vouched")
                }
                BeaconDecision::HitlPending => {
                    let entry = (packet.source_did.clone(), key);
                    let size = beacon.beacon_id.len() + entry.0.len() + 32;
                    self.beacon_keys
                        .insert_sized(now.mono, beacon.beacon_id.clone(), entry, size);
                }
                _ => {}
            }
        }
        self.out.audit(|| AuditRecord::Discovery {
            did: packet.source_did.clone(),
            address,
            decision,
        });
        if via_discovery {
            if let Some(addr) = transport {
                self.discovery
                    .on_beacon(now.mono, &packet.nonce, addr, &mut self.rng);
            } else {
                self.discovery.on_beacon_unanswerable();
            }
        } else {
            self.discovery.on_announcement();
        }
        self.out.event(Event::PeerDiscovered {
            did: packet.source_did.clone(),
            address,
            decision,
            device_type: beacon.device_type.clone(),
            capabilities: beacon.capabilities.clone(),
        });
    }

    /// Sends unproven peer `did` at `addr` a heartbeat: its nonce challenge
    /// (an answer from `addr` proves the address). Paid from the credit the
    /// address earned, since only input from it introduced the peer.
    pub(super) fn challenge(
        &mut self,
        now: Now,
        inbound: Option<&mut Inbound>,
        did: &str,
        addr: SocketAddr,
    ) {
        if self.check_capacity().is_err() {
            return;
        }
        let packet = self.node.heartbeat(now.wall, did, None);
        let len = self.codec.encode_packet(&packet).map_or(0, |b| b.len());
        if !self.spend_credit(now, inbound, addr.ip(), len) {
            self.stats.challenges_refused += 1;
            return;
        }
        if self.send_background_heartbeat(now, packet, addr) {
            self.stats.challenges_sent += 1;
        }
    }
}
