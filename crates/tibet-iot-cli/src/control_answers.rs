//! The answers of a running `listen` to its control socket (`pending`,
//! `pins`, `status`): each request as a call on the node, each answer as
//! the operator reads it. Network input in an answer (DIDs, ids) is made
//! safe to print.

use tibet_iot::IoTNode;
use tibet_ping::{AirlockZone, PendingPing};

use crate::control::{PendingItem, Request, Response};
use crate::node_handle::Node;

impl Node {
    /// The sender whose ping `id` a review acts on: `from` when given, else
    /// the one sender that used `id`. Several senders may have used one id
    /// (a re-send under another DID is an entry of its own); then the
    /// operator must name one, so an approval never lands on a ping other
    /// than the one they read.
    fn review_sender(&self, id: &str, from: Option<String>) -> Result<String, String> {
        if let Some(did) = from {
            return Ok(did);
        }
        let senders: Vec<String> = self
            .inner
            .pending()
            .into_iter()
            .filter(|p| p.packet.packet_id == id)
            .map(|p| p.packet.source_did)
            .collect();
        match senders.as_slice() {
            [] => Err(format!(
                "no pending ping with id {}",
                crate::output::safe(id)
            )),
            [one] => Ok(one.clone()),
            many => {
                // The senders are network input: name a few, count the rest,
                // so a crowd of DIDs cannot fill the operator's screen.
                let mut named: Vec<String> = many
                    .iter()
                    .take(REVIEW_SENDERS_NAMED)
                    .map(|d| crate::output::safe(d))
                    .collect();
                if many.len() > REVIEW_SENDERS_NAMED {
                    named.push(format!("{} more", many.len() - REVIEW_SENDERS_NAMED));
                }
                Err(format!(
                    "{} pings wait under id {}, from {}: name one with --from DID",
                    many.len(),
                    crate::output::safe(id),
                    named.join(", ")
                ))
            }
        }
    }

    /// Answers a control-socket request.
    pub(crate) fn control(&self, request: Request) -> Response {
        // A decision the state store could not record is not acknowledged
        // as kept: the operator learns it will not survive a restart.
        let failures = self.inner.state_store_failures();
        let mut response = self.control_request(request);
        if response.ok && self.inner.state_store_failures() > failures {
            response.ok = false;
            response.error = Some(
                "done, but the state store could not record it (see the listener's log): \
                 it will not survive a restart"
                    .into(),
            );
        }
        response
    }

    fn control_request(&self, request: Request) -> Response {
        match request {
            Request::List => {
                let mut pending: Vec<PendingItem> = self.inner.pending().iter().map(item).collect();
                pending.extend(
                    self.inner
                        .pending_beacons()
                        .iter()
                        .map(|b| beacon_item(&self.inner, b)),
                );
                Response {
                    ok: true,
                    pending: Some(pending),
                    ..Default::default()
                }
            }
            Request::Approve { id, .. } if id.starts_with("beacon_") => {
                let beacon = self
                    .inner
                    .pending_beacons()
                    .into_iter()
                    .find(|b| b.beacon_id == id);
                let found = beacon
                    .and_then(|b| Some((b, self.inner.approve_beacon(&id, Default::default())?)));
                match found {
                    Some((beacon, Ok(_))) => {
                        self.save_pins();
                        Response {
                            ok: true,
                            item: Some(beacon_item(&self.inner, &beacon)),
                            ..Default::default()
                        }
                    }
                    Some((_, Err(e))) => Response::error(format!("cannot vouch: {e}")),
                    None => Response::error(format!("no pending beacon with id {id}")),
                }
            }
            Request::Reject { id, .. } if id.starts_with("beacon_") => {
                match self.inner.reject_beacon(&id) {
                    Some(b) => Response {
                        ok: true,
                        item: Some(beacon_item(&self.inner, &b)),
                        ..Default::default()
                    },
                    None => Response::error(format!("no pending beacon with id {id}")),
                }
            }
            Request::Approve { id, from, trust } => {
                if let Some(t) = trust
                    && let Err(e) = crate::parse::check_score(t)
                {
                    return Response::error(format!("trust {e}"));
                }
                let did = match self.review_sender(&id, from) {
                    Ok(did) => did,
                    Err(e) => return Response::error(e),
                };
                match self.inner.approve_pending_from(&did, &id, trust) {
                    Some(p) => Response {
                        ok: true,
                        item: Some(item(&p)),
                        ..Default::default()
                    },
                    None => no_pending(&id, &did),
                }
            }
            Request::Reject { id, from } => {
                let did = match self.review_sender(&id, from) {
                    Ok(did) => did,
                    Err(e) => return Response::error(e),
                };
                match self.inner.reject_pending_from(&did, &id) {
                    Some(p) => Response {
                        ok: true,
                        item: Some(item(&p)),
                        ..Default::default()
                    },
                    None => no_pending(&id, &did),
                }
            }
            Request::Pins => {
                let (pins, _) = self.inner.pins();
                Response {
                    ok: true,
                    pins: Some(pins.iter().map(|(did, key)| pin_item(did, key)).collect()),
                    ..Default::default()
                }
            }
            Request::Unpin { did } => match self.inner.remove_pin(&did) {
                Some(key) => {
                    self.save_pins();
                    Response {
                        ok: true,
                        pins: Some(vec![pin_item(&did, &key)]),
                        ..Default::default()
                    }
                }
                None => Response::error(format!("{} is not pinned", crate::output::safe(&did))),
            },
            Request::Peers => Response {
                ok: true,
                peers: Some(crate::status::peer_items(&self.inner)),
                ..Default::default()
            },
            Request::Stats => {
                let stats = self.inner.stats();
                let send_errors = stats.driver.send_errors;
                let mut v = serde_json::to_value(stats).unwrap_or_default();
                if let Some(m) = v.as_object_mut() {
                    m.insert("driver_send_errors".into(), send_errors.into());
                }
                Response {
                    ok: true,
                    stats: Some(v),
                    ..Default::default()
                }
            }
        }
    }
}

fn pin_item(did: &str, key: &tibet_ping::identity::PublicKey) -> crate::control::PinItem {
    crate::control::PinItem {
        did: did.to_owned(),
        public_key: key.to_base64(),
        fingerprint: key.sha256_hex()[..16].to_owned(),
    }
}

/// A beacon waiting for review, shown like a pending ping: its intent is
/// `discover`, its purpose names the device type and the key it proved (if
/// any), and approving it vouches for the device and pins that key. A key
/// offered for a DID this node already trusts says so, with the key's
/// fingerprint; the trust shown is the one the node applies to the DID now.
fn beacon_item(node: &IoTNode, b: &tibet_ping::Beacon) -> PendingItem {
    let trust = node.trust_of(&b.source_did);
    let hash = &b.public_key_hash;
    let purpose = if hash.is_empty() {
        format!("beacon of a {} (no key)", b.device_type)
    } else if trust > 0.0 {
        format!(
            "key offered for {}, key sha256 {hash} (approve to pin it)",
            b.source_did
        )
    } else {
        format!("beacon of a {} (key sha256 {hash})", b.device_type)
    };
    PendingItem {
        id: b.beacon_id.clone(),
        source_did: b.source_did.clone(),
        intent: "discover".into(),
        purpose,
        trust,
        zone: "GEEL".into(),
        received_at: b.timestamp.clone(),
    }
}

/// A pending ping as the operator sees it.
fn item(p: &PendingPing) -> PendingItem {
    PendingItem {
        id: p.packet.packet_id.clone(),
        source_did: p.packet.source_did.clone(),
        intent: p.packet.intent.clone(),
        purpose: p.packet.purpose.clone(),
        trust: p.sender_trust,
        zone: AirlockZone::Geel.to_string(),
        received_at: p.queued_at.to_iso(),
    }
}

/// Senders named when a review's id is ambiguous (`pending list` shows all).
const REVIEW_SENDERS_NAMED: usize = 5;

/// The answer to a review of a ping that is not (or no longer) waiting.
fn no_pending(id: &str, did: &str) -> Response {
    Response::error(format!(
        "no pending ping with id {} from {}",
        crate::output::safe(id),
        crate::output::safe(did)
    ))
}
