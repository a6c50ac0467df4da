//! The response path: an answer to one of our requests (matched, checked
//! against the responder's pin, and reported), or one the relay passes
//! back along its reverse path ([`Mesh::pass_back`]).

use alloc::borrow::ToOwned;
use alloc::boxed::Box;

use tibet_ping::PingResponse;

use super::inbound::Inbound;
use super::mesh::Mesh;
use super::shared::Shared;
use crate::error::SendError;
use crate::event::Event;
use crate::peers::PeerUpdate;
use crate::requests::RequestKind;
use crate::time::Now;

/// A response arrived: to one of our requests, or to pass back along a
/// relay's reverse path.
pub(super) fn on_response(
    shared: &mut Shared,
    mesh: &mut Mesh,
    now: Now,
    inbound: &mut Inbound,
    response: PingResponse,
    datagram: &[u8],
) {
    let (source, from) = (inbound.source, inbound.from());
    if let Some(req) = shared.requests.get_by_packet(&response.in_response_to) {
        let target_ok =
            req.target_did == tibet_ping::BROADCAST || response.responder_did == req.target_did;
        if !(target_ok && (from == req.addr || req.also.contains(&from))) {
            shared.stats.responses_foreign += 1;
            return;
        }
        if !shared.identity.accept_response(&response) {
            // Forged or unsigned where a signature is due: the request
            // stays open for the real answer, and says why at its
            // deadline if none comes.
            let did = response.responder_did;
            let refused = SendError::AnswerRefused {
                pinned_key: shared
                    .identity
                    .pins()
                    .get(&did)
                    .map(|k| k.sha256_hex()[..16].to_owned()),
                responder_did: did.clone(),
                from,
                signed: !response.signature.is_empty(),
            };
            if let Some(req) = shared.requests.get_mut_by_packet(&response.in_response_to) {
                req.refused = Some(Box::new(refused));
            }
            shared.identity_refused(now, from, &did, "response_refused");
            return;
        }
        let id = req.id;
        let req = shared.requests.remove(id).expect("present");
        shared.stats.responses_matched += 1;
        if req.direct && !source.is_uplink() {
            let upd = shared
                .peers
                .record_activity(now.mono, &response.responder_did, from);
            // An answer from the address we sent a fresh packet id and
            // nonce to: the peer receives there (a nonce challenge).
            let was = shared
                .peers
                .get(now.mono, &response.responder_did)
                .is_some_and(|p| p.proven);
            shared.peers.set_proven(&response.responder_did, true);
            shared.peer_update(&response.responder_did, from, upd);
            if !was && upd != PeerUpdate::Refused {
                shared.out.event(Event::PeerProven {
                    did: response.responder_did.clone(),
                    address: from,
                });
            }
            mesh.router
                .learn_neighbour(shared, now, &response.responder_did, from);
        } else if !source.is_uplink() {
            mesh.router
                .learn_from_response(shared, now, &response.responder_did, from);
        }
        if req.kind == RequestKind::Caller {
            shared.out.event(Event::RequestAnswered {
                id,
                response: Box::new(response),
            });
        }
        return;
    }
    if !mesh.pass_back(shared, now, inbound, response, datagram) {
        shared.stats.responses_orphan += 1;
    }
}
