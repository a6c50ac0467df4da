//! The response path: an answer to one of our requests (matched, checked
//! against the responder's pin, and reported), or one to pass back along a
//! relay's reverse path.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;

use bytes::Bytes;
use tibet_ping::PingResponse;

use super::Engine;
use super::inbound::Inbound;
use crate::error::SendError;
use crate::event::Event;
use crate::peers::PeerUpdate;
use crate::requests::RequestKind;
use crate::time::Now;
use crate::uplink::UPLINK_ADDR;

impl Engine {
    pub(super) fn on_response(
        &mut self,
        now: Now,
        inbound: &mut Inbound,
        response: PingResponse,
        datagram: &[u8],
    ) {
        let (source, from) = (inbound.source, inbound.from());
        if let Some(req) = self.requests.get_by_packet(&response.in_response_to) {
            let target_ok =
                req.target_did == tibet_ping::BROADCAST || response.responder_did == req.target_did;
            if !(target_ok && (from == req.addr || req.also.contains(&from))) {
                self.stats.responses_foreign += 1;
                return;
            }
            if !self.identity.accept_response(&response) {
                // Forged or unsigned where a signature is due: the request
                // stays open for the real answer, and says why at its
                // deadline if none comes.
                let did = response.responder_did;
                let refused = SendError::AnswerRefused {
                    pinned_key: self
                        .pins()
                        .get(&did)
                        .map(|k| k.sha256_hex()[..16].to_owned()),
                    responder_did: did.clone(),
                    from,
                    signed: !response.signature.is_empty(),
                };
                if let Some(req) = self.requests.get_mut_by_packet(&response.in_response_to) {
                    req.refused = Some(Box::new(refused));
                }
                self.identity_refused(now, from, &did, "response_refused");
                return;
            }
            let id = req.id;
            let req = self.requests.remove(id).expect("present");
            self.stats.responses_matched += 1;
            if req.direct && !source.is_uplink() {
                let upd = self
                    .peers
                    .record_activity(now.mono, &response.responder_did, from);
                // An answer from the address we sent a fresh packet id and
                // nonce to: the peer receives there (a nonce challenge).
                let was = self
                    .peers
                    .get(now.mono, &response.responder_did)
                    .is_some_and(|p| p.proven);
                self.peers.set_proven(&response.responder_did, true);
                self.peer_update(&response.responder_did, from, upd);
                if !was && upd != PeerUpdate::Refused {
                    self.out.event(Event::PeerProven {
                        did: response.responder_did.clone(),
                        address: from,
                    });
                }
                self.learn_neighbour(now, &response.responder_did, from);
            } else if !source.is_uplink() {
                self.learn_from_response(now, &response.responder_did, from);
            }
            if req.kind == RequestKind::Caller {
                self.out.event(Event::RequestAnswered {
                    id,
                    response: Box::new(response),
                });
            }
            return;
        }
        if let Some(prev) = self
            .relay
            .reverse_path(now.mono, &response.in_response_to, from)
        {
            if !self
                .relay
                .store_response(now.mono, &response.in_response_to, datagram)
            {
                // A copy of an answer already passed back.
                return;
            }
            if prev == UPLINK_ADDR {
                self.uplink
                    .relayed_response(now.mono, &response.in_response_to, datagram);
            } else {
                let frame = Bytes::copy_from_slice(datagram);
                let charge = (!source.is_uplink()
                    && !self.is_trusted(now, &response.responder_did))
                .then(|| from.ip());
                if !self.answer(now, prev, frame, true, charge, inbound) {
                    return;
                }
            }
            // The uplink is no route on the mesh.
            if !source.is_uplink() {
                self.learn_from_response(now, &response.responder_did, from);
            }
            if self.out.events_enabled() {
                self.out.event(Event::ResponseRelayed {
                    in_response_to: response.in_response_to,
                    to: prev,
                });
            }
            return;
        }
        if !self.relay.has_path(now.mono, &response.in_response_to) {
            self.stats.responses_orphan += 1;
        }
    }
}
