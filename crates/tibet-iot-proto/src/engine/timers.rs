//! The [`Engine`]'s timers: resends and timeouts of requests, heartbeats,
//! peer and table cleanup, review expiry, drop records, beacons and
//! discovery answers, all driven by [`Engine::handle_timeout`].

use alloc::boxed::Box;
use alloc::vec::Vec;

use core::net::SocketAddr;

use super::Engine;
use crate::audit_record::AuditRecord;
use crate::event::Event;
use crate::requests::{Due, RequestKind};
use crate::time::{MonoTime, Now};

/// When the background timers are next due (none before
/// [`Engine::start`]).
#[derive(Debug, Default)]
pub(super) struct Timers {
    /// The next heartbeat round.
    heartbeat: Option<MonoTime>,
    /// The next cleanup of peers, tables and reviews.
    cleanup: Option<MonoTime>,
}

impl Engine {
    /// Starts the background timers: heartbeat, cleanup, and discovery (the
    /// first beacon is due at `now`).
    pub fn start(&mut self, now: Now) {
        self.timers.heartbeat = Some(now.mono + self.config.heartbeat_interval);
        self.timers.cleanup = Some(now.mono + self.config.cleanup_interval);
        self.discovery.start(now.mono);
    }

    /// When [`Engine::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        [
            self.requests.poll_timeout(),
            self.timers.heartbeat,
            self.timers.cleanup,
            self.discovery.poll_timeout(),
            self.out.next_drop_flush(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs what is due at `now`: resends, timeouts, heartbeats, peer
    /// cleanup, beacons and discovery answers.
    pub fn handle_timeout(&mut self, now: Now) {
        while let Some(due) = self.requests.pop_due(now.mono) {
            match due {
                Due::Resend(addr, also, bytes, mesh) => {
                    self.stats.retransmissions += 1;
                    if mesh {
                        self.routes.stats.mesh_datagrams += 1 + also.len() as u64;
                    }
                    let routed = mesh && also.is_empty();
                    for a in also {
                        self.out.transmit(a, bytes.clone());
                    }
                    self.out.transmit(addr, bytes);
                    if routed {
                        // Our own routed ping is unanswered so far: is its
                        // first hop still there?
                        self.probe_next_hop(now, addr);
                    }
                }
                Due::TimedOut(req) if req.kind == RequestKind::Probe => {
                    self.probe_unanswered(now, req.addr);
                }
                Due::TimedOut(mut req) if req.fallback.is_some() => {
                    let fb = req.fallback.take().expect("checked");
                    self.retry_by_flood(now, req, *fb);
                }
                Due::TimedOut(req) => {
                    self.stats.requests_timed_out += 1;
                    if req.kind == RequestKind::Background {
                        self.heartbeat_unanswered(now, &req.target_did, req.addr);
                    }
                    if req.kind == RequestKind::Caller {
                        self.out.event(match req.refused {
                            Some(error) => Event::RequestFailed {
                                id: req.id,
                                error: *error,
                            },
                            None => Event::RequestTimedOut { id: req.id },
                        });
                    }
                }
            }
        }
        if self.timers.heartbeat.is_some_and(|t| t <= now.mono) {
            self.timers.heartbeat = Some(now.mono + self.config.heartbeat_interval);
            let targets: Vec<(compact_str::CompactString, SocketAddr, bool)> = self
                .peers
                .alive(now.mono)
                .map(|p| (p.did.clone(), p.address, p.proven))
                .collect();
            let round = if self.config.routing {
                self.routes.advertisement_round(now.mono)
            } else {
                Vec::new()
            };
            for (did, addr, proven) in targets {
                if self.check_capacity().is_err() {
                    break;
                }
                if !proven {
                    self.challenge(now, None, &did, addr);
                    continue;
                }
                let routes = self.heartbeat_routes(now, &round, &did, addr);
                let packet = self.node.heartbeat_with(now.wall, &did, None, routes);
                self.send_background_heartbeat(now, packet, addr);
            }
        }
        if self.timers.cleanup.is_some_and(|t| t <= now.mono) {
            self.timers.cleanup = Some(now.mono + self.config.cleanup_interval);
            self.routes.expire(now.mono);
            for gone in self.peers.prune(now.mono) {
                self.forget_neighbour(now, gone.address);
                self.out.event(Event::PeerExpired {
                    did: gone.did.into_string(),
                    address: gone.address,
                });
            }
            self.responses.expire(now.mono);
            self.uplink.expire(now.mono);
            self.node.collect_garbage(now.wall);
            let expired = self.node.expire_reviews(now.wall);
            self.stats.reviews_expired += (expired.pings.len() + expired.beacons.len()) as u64;
            for pending in expired.pings {
                self.out.audit(|| AuditRecord::PendingExpired {
                    pending: Box::new(pending),
                });
            }
            for beacon in expired.beacons {
                self.out.audit(|| AuditRecord::BeaconReviewExpired {
                    beacon: Box::new(beacon),
                });
            }
        }
        if self.out.next_drop_flush().is_some_and(|t| t <= now.mono) {
            self.flush_drops(now);
        }
        if self.discovery.beacon_due(now.mono) {
            match self.discover_datagram(now) {
                Ok(bytes) => self.out.transmit(self.multicast_dest, bytes),
                Err(_) => self.stats.encode_errors += 1,
            }
        }
        for addr in self.discovery.due_replies(now.mono) {
            // An answer to a beacon: paid from the credit the beacon's
            // address earned.
            match self.discover_datagram(now) {
                Ok(bytes) => {
                    self.transmit_charged(now, addr.ip(), addr, bytes);
                }
                Err(_) => self.stats.encode_errors += 1,
            }
        }
    }

    /// Ends the current drop interval now: its counts become
    /// [`AuditRecord::Drops`] records at once (e.g. when the node stops).
    pub fn flush_drops(&mut self, now: Now) {
        self.out.flush_drops(now);
    }
}
