//! The [`Engine`]'s timers: resends and timeouts of requests, heartbeats,
//! peer and table cleanup, review expiry, drop records, beacons and
//! discovery answers, all driven by [`Engine::handle_timeout`], which hands
//! each to the concern that owns it.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::vec::Vec;

use core::net::SocketAddr;

use super::Engine;
use super::mesh::Mesh;
use super::shared::Shared;
use crate::advert::ONE_WAY_KEY;
use crate::audit_record::AuditRecord;
use crate::event::Event;
use crate::requests::{Due, RequestKind};
use crate::routes::AdvertEntry;
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
        let config = &self.shared.config;
        self.timers.heartbeat = Some(now.mono + config.heartbeat_interval);
        self.timers.cleanup = Some(now.mono + config.cleanup_interval);
        self.discovery.start(now.mono);
    }

    /// When [`Engine::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        [
            self.shared.requests.poll_timeout(),
            self.timers.heartbeat,
            self.timers.cleanup,
            self.mesh.router.trigger_due(&self.shared),
            self.discovery.schedule().poll_timeout(),
            self.shared.out.next_drop_flush(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs what is due at `now`: resends, timeouts, heartbeats, peer
    /// cleanup, beacons and discovery answers.
    pub fn handle_timeout(&mut self, now: Now) {
        let (shared, mesh) = (&mut self.shared, &mut self.mesh);
        while let Some(due) = shared.requests.pop_due(now.mono) {
            match due {
                Due::Resend(addr, also, bytes, is_mesh) => {
                    shared.stats.retransmissions += 1;
                    if is_mesh {
                        mesh.count_resent(1 + also.len() as u64);
                    }
                    let routed = is_mesh && also.is_empty();
                    for a in also {
                        shared.out.transmit(a, bytes.clone());
                    }
                    shared.out.transmit(addr, bytes);
                    if routed {
                        // Our own routed ping is unanswered so far: is its
                        // first hop still there?
                        mesh.router.probe_next_hop(shared, now, addr);
                    }
                }
                Due::TimedOut(req) if req.kind == RequestKind::Probe => {
                    mesh.router.probe_unanswered(now, req.addr);
                }
                Due::TimedOut(mut req) if req.fallback.is_some() => {
                    let fb = req.fallback.take().expect("checked");
                    mesh.retry_by_flood(shared, now, req, *fb);
                }
                Due::TimedOut(req) => {
                    shared.stats.requests_timed_out += 1;
                    if req.kind == RequestKind::Background {
                        mesh.router
                            .heartbeat_unanswered(shared, now, &req.target_did, req.addr);
                    }
                    if req.kind == RequestKind::Caller {
                        shared.out.event(match req.refused {
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
            self.timers.heartbeat = Some(now.mono + shared.config.heartbeat_interval);
            let round = mesh.router.advertisement_round(shared, now);
            Self::advertise(shared, mesh, now, &round, false);
        }
        if mesh
            .router
            .trigger_due(shared)
            .is_some_and(|t| t <= now.mono)
        {
            // A triggered update: what changed since the last advertisement,
            // at once, to the neighbours that route (docs/ARCHITECTURE.md,
            // "Routing").
            let delta = mesh.router.advertisement_delta(now);
            Self::advertise(shared, mesh, now, &delta, true);
        }
        if self.timers.cleanup.is_some_and(|t| t <= now.mono) {
            self.timers.cleanup = Some(now.mono + shared.config.cleanup_interval);
            mesh.router.expire(now);
            for gone in shared.peers.prune(now.mono) {
                mesh.router.forget_neighbour(now, gone.address);
                shared.out.event(Event::PeerExpired {
                    did: gone.did.into_string(),
                    address: gone.address,
                });
            }
            self.answers.expire(now);
            shared.uplink.expire(now.mono);
            shared.node.collect_garbage(now.wall);
            let expired = shared.node.expire_reviews(now.wall);
            shared.stats.reviews_expired += (expired.pings.len() + expired.beacons.len()) as u64;
            for pending in expired.pings {
                shared.out.audit(|| AuditRecord::PendingExpired {
                    pending: Box::new(pending),
                });
            }
            for beacon in expired.beacons {
                shared.out.audit(|| AuditRecord::BeaconReviewExpired {
                    beacon: Box::new(beacon),
                });
            }
        }
        if shared.out.next_drop_flush().is_some_and(|t| t <= now.mono) {
            shared.out.flush_drops(now);
        }
        self.discovery.on_timeout(shared, now);
    }

    /// Sends each live, proven peer a heartbeat carrying its advertisement
    /// of `routes` (and the whole table to a neighbour due it). A heartbeat
    /// round (`update` false) goes to every such peer and challenges the
    /// unproven ones; a triggered update only to the neighbours it gives a
    /// route, one-way ([`ONE_WAY_KEY`]: no answer) to each neighbour heard
    /// within the request timeout. A mesh that comes up sends many updates,
    /// and their answers would only say again that neighbours heard moments
    /// ago are there. A neighbour not heard lately is asked for an answer:
    /// one that does not come gets it probed (`heartbeat_unanswered`), and
    /// under churn that finds neighbours that left between rounds.
    fn advertise(
        shared: &mut Shared,
        mesh: &mut Mesh,
        now: Now,
        routes: &[AdvertEntry],
        update: bool,
    ) {
        let full = mesh.router.full_advertisement(now);
        let lately = shared.config.request_timeout;
        let targets: Vec<(compact_str::CompactString, SocketAddr, bool, bool)> = shared
            .peers
            .alive(now.mono)
            .filter(|p| p.proven || !update)
            .map(|p| {
                let heard = p.idle(now.mono) < lately;
                (p.did.clone(), p.address, p.proven, heard)
            })
            .collect();
        for (did, addr, proven, heard) in targets {
            if shared.check_capacity().is_err() {
                break;
            }
            if !proven {
                shared.challenge(now, None, &did, addr);
                continue;
            }
            let Some(mut extra) = mesh.router.heartbeat_routes(
                shared,
                now,
                (routes, full.as_deref()),
                (&did, addr),
                update,
            ) else {
                continue;
            };
            let one_way = update && heard;
            if one_way {
                extra.insert(ONE_WAY_KEY.to_owned(), true.into());
            }
            let packet = shared.node.heartbeat_with(now.wall, &did, None, extra);
            if one_way {
                shared.send_one_way_heartbeat(now, packet, addr);
            } else {
                shared.send_background_heartbeat(now, packet, addr);
            }
        }
    }

    /// Ends the current drop interval now: its counts become
    /// [`AuditRecord::Drops`] records at once (e.g. when the node stops).
    pub fn flush_drops(&mut self, now: Now) {
        self.shared.out.flush_drops(now);
    }
}
