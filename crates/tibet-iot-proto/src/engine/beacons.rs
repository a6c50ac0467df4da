//! [`Discovery`]: beacons received (admission, review, introduction of
//! peers, first-use pins) and sent (our discover packet, and answers to
//! others' beacons), with the keys of beacons waiting for review.

use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use core::net::SocketAddr;

use tibet_ping::identity::{Identity, PublicKey};
use tibet_ping::{Announcement, Beacon, BeaconAdmission, BeaconDecision, PingPacket};

use super::TRANSPORT_PORT_KEY;
use super::inbound::Inbound;
use super::shared::Shared;
use crate::audit_record::AuditRecord;
use crate::bounded::{BoundedMap, WhenFull};
use crate::config::TransportConfig;
use crate::discovery::NetworkDiscovery;
use crate::error::SendError;
use crate::event::Event;
use crate::peers::PeerUpdate;
use crate::time::{MonoTime, Now};

/// Discovery's state: the beacon schedule, what we announce, and the keys
/// of self-certified beacons waiting for review.
#[derive(Debug)]
pub(super) struct Discovery {
    schedule: NetworkDiscovery,
    announcement: Announcement,
    /// The transport port our beacons announce.
    local_port: u16,
    /// Where our beacons go.
    multicast_dest: SocketAddr,
    /// Keys of self-certified beacons waiting for human review, by beacon id.
    beacon_keys: BoundedMap<String, (String, PublicKey)>,
}

impl Discovery {
    /// The discovery `config` asks for.
    pub(super) fn new(config: &TransportConfig) -> Discovery {
        Discovery {
            schedule: NetworkDiscovery::new(
                config.discovery_enabled,
                config.discovery_interval,
                config.discovery_reply_delay,
                config.discovery_reply_interval,
                config.limits.discovery_replies,
            ),
            announcement: Announcement {
                capabilities: config.capabilities.clone(),
                device_type: Some(config.device_type.clone()),
                ..Announcement::default()
            },
            local_port: config.bind_port,
            multicast_dest: config.multicast_addr(),
            beacon_keys: BoundedMap::new(
                config.limits.discovery_replies.max(256),
                config.ping.review_ttl,
                WhenFull::EvictOldest,
            ),
        }
    }

    /// The beacon schedule (its counters, its next deadline).
    pub(super) fn schedule(&self) -> &NetworkDiscovery {
        &self.schedule
    }

    /// Starts the beacons: the first is due at `now`.
    pub(super) fn start(&mut self, now: MonoTime) {
        self.schedule.start(now);
    }

    /// Sets the transport port our beacons announce and where they go.
    pub(super) fn set_local(&mut self, transport_port: u16, multicast_dest: SocketAddr) {
        self.local_port = transport_port;
        self.multicast_dest = multicast_dest;
    }

    /// The key the beacon `beacon_id`, waiting for review, was signed by
    /// (with its DID).
    pub(super) fn beacon_key(&self, now: Now, beacon_id: &str) -> Option<&(String, PublicKey)> {
        self.beacon_keys.get(now.mono, beacon_id)
    }

    /// Keeps the key of a beacon waiting for review.
    pub(super) fn keep_beacon_key(
        &mut self,
        now: Now,
        beacon_id: String,
        did: String,
        key: PublicKey,
    ) {
        let size = beacon_id.len() + did.len() + 32;
        self.beacon_keys
            .insert_sized(now.mono, beacon_id, (did, key), size);
    }

    /// Sends our beacon when it is due, and the answers to others' beacons
    /// that are due (each paid from the credit the beacon's address earned).
    pub(super) fn on_timeout(&mut self, shared: &mut Shared, now: Now) {
        if self.schedule.beacon_due(now.mono) {
            match self.discover_datagram(shared, now) {
                Ok(bytes) => shared.out.transmit(self.multicast_dest, bytes),
                Err(_) => shared.stats.encode_errors += 1,
            }
        }
        for addr in self.schedule.due_replies(now.mono) {
            match self.discover_datagram(shared, now) {
                Ok(bytes) => {
                    shared.transmit_charged(now, addr.ip(), addr, bytes);
                }
                Err(_) => shared.stats.encode_errors += 1,
            }
        }
    }

    /// Our discover packet, signed.
    pub(super) fn discover_datagram(
        &self,
        shared: &mut Shared,
        now: Now,
    ) -> Result<Vec<u8>, SendError> {
        let mut packet = shared.node.discover(now.wall, &self.announcement);
        packet
            .payload
            .insert(TRANSPORT_PORT_KEY.to_owned(), self.local_port.into());
        // Signed again: the key fields and the port were added after the
        // node signed it.
        shared.identity.sign_beacon(&mut packet);
        shared
            .codec
            .encode_packet(&packet)
            .map_err(|e| SendError::Encode(e.to_string()))
    }

    /// A beacon, through the identity step; `via_discovery` when it came
    /// to the discovery socket (it may then be answered).
    pub(super) fn on_beacon(
        &mut self,
        shared: &mut Shared,
        now: Now,
        inbound: &mut Inbound,
        packet: &PingPacket,
        via_discovery: bool,
    ) {
        let from = inbound.from();
        if packet.source_did == shared.node.did() {
            return; // our own beacon, looped back by the multicast group
        }
        let Some(beacon) = Beacon::from_discover_packet(packet) else {
            shared.malformed(now, from, "discover packet is not a beacon");
            return;
        };
        // Beacons cost review entries, vouches, audit records and answers:
        // a bucket per address bounds them.
        if !shared.guard.allow_beacon(now.mono, from.ip()) {
            shared.stats.beacons_rate_limited += 1;
            shared.note_drop(now, from, "beacon_limited");
            return;
        }
        // Who the DID already is decides what its beacon may do: nothing it
        // says binds a key to, or changes the trust of, a DID that an
        // operator trusted, pinned or vouched for (docs/SECURITY.md).
        let pinned = shared.identity.pins().get(&packet.source_did).is_some();
        let offers_key = matches!(inbound.identity, Identity::SelfCertified(_));
        let admission =
            shared
                .node
                .beacon_admission(now.wall, &packet.source_did, pinned, offers_key);
        let answer = shared.node.handle_beacon_as(now.wall, &beacon, admission);
        let decision = answer.decision;
        if decision == BeaconDecision::Rejected {
            shared.stats.beacons_rejected += 1;
            shared.note_drop(now, from, "beacon_rejected");
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
            let upd = shared.peers.introduce(now.mono, &packet.source_did, addr);
            shared.peer_update(&packet.source_did, addr, upd);
            if upd == PeerUpdate::Joined {
                // Ask the newcomer to prove its address right away.
                shared.challenge(now, Some(&mut *inbound), &packet.source_did, addr);
            }
        }
        let address = transport.unwrap_or(from);
        if let Identity::SelfCertified(key) = inbound.identity {
            match decision {
                // Only a DID nobody knew may be pinned by a rule.
                BeaconDecision::AutoVouched if admission == BeaconAdmission::Open => {
                    shared.pin_first_use(&packet.source_did, key, "auto_vouched")
                }
                BeaconDecision::HitlPending => {
                    self.keep_beacon_key(
                        now,
                        beacon.beacon_id.clone(),
                        packet.source_did.clone(),
                        key,
                    );
                }
                _ => {}
            }
        }
        shared.out.audit(|| AuditRecord::Discovery {
            did: packet.source_did.clone(),
            address,
            decision,
        });
        if via_discovery {
            if let Some(addr) = transport {
                self.schedule
                    .on_beacon(now.mono, &packet.nonce, addr, &mut shared.rng);
            } else {
                self.schedule.on_beacon_unanswerable();
            }
        } else {
            self.schedule.on_announcement();
        }
        shared.out.event(Event::PeerDiscovered {
            did: packet.source_did.clone(),
            address,
            decision,
            device_type: beacon.device_type.clone(),
            capabilities: beacon.capabilities.clone(),
        });
    }
}
