//! The one audit adapter over `tibet_core::NetworkBridge`: each
//! [`AuditRecord`] becomes a provenance token on the bridge's trail.
//!
//! Actions: `ping.<type>`, `heartbeat`, `discovery`, `relay` (with the
//! forwarded-to address when the packet went to one next hop),
//! `trust_change`, `review.approved` / `review.rejected` (with the packet id
//! of the pending ping), `review.expired` (a pending ping or a beacon nobody
//! reviewed in time), `vouch`, `rule_added`, `auto_vouch_rule_added`,
//! `drops` (one token per source per interval, with counts by reason),
//! `identity.refused` (one token per source per interval, with the count),
//! `identity.pinned`.

use serde_json::json;
use tibet_core::{NetworkBridge, NewToken, PingAnswer};
use tibet_iot_proto::{AnsweredPing, AuditRecord};
use tibet_ping::PingPacket;

use crate::audit_sink::{AuditError, AuditSink, Stored};

fn stored<T, E: std::error::Error + Send + Sync + 'static>(
    r: Result<T, E>,
) -> Result<(), AuditError> {
    r.map(|_| ()).map_err(|e| AuditError(Box::new(e)))
}

/// The token of an event about a GEEL ping under review: `action`, with
/// `kind` first in its `erin` when given, told in `story`.
fn pending_token(
    action: &str,
    kind: Option<&str>,
    pending: &tibet_ping::PendingPing,
    story: String,
) -> NewToken {
    let p = &pending.packet;
    let mut erin = serde_json::Map::new();
    if let Some(kind) = kind {
        erin.insert("kind".into(), kind.into());
    }
    erin.insert("packet_id".into(), p.packet_id.clone().into());
    erin.insert("source_did".into(), p.source_did.clone().into());
    erin.insert("intent".into(), p.intent.clone().into());
    erin.insert("sender_trust".into(), pending.sender_trust.into());
    erin.insert("reason".into(), pending.reason.clone().into());
    NewToken::new(action)
        .erin(erin.into())
        .eraan([p.source_did.as_str()])
        .eromheen(json!({"packet_id": p.packet_id}))
        .erachter(story)
}

/// Records an answered ping: the bridge's token, with whether its sender
/// was authenticated in EROMHEEN (`authenticated`), so an audit shows which
/// decisions rested on a claim. In a batch it is written straight from the
/// packet (no intermediate token).
fn add_ping(
    bridge: &mut NetworkBridge,
    packet: &PingPacket,
    answer: &AnsweredPing,
    authenticated: bool,
) -> Result<(), AuditError> {
    let answer = PingAnswer {
        decision: answer.decision,
        trust_score: answer.trust_score,
        zone: answer.zone,
    };
    stored(bridge.add_ping(packet, Some(answer), Some(authenticated)))
}

impl AuditSink for NetworkBridge {
    fn record(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        match record {
            AuditRecord::Ping {
                packet,
                answer,
                authenticated,
            } => add_ping(self, packet, answer, *authenticated),
            AuditRecord::Heartbeat {
                did,
                address,
                count,
            } => stored(self.record_heartbeats(did, *address, *count)),
            AuditRecord::Discovery {
                did,
                address,
                decision,
            } => stored(self.record_discovery(did, *address, decision.as_str())),
            AuditRecord::Relay { packet, next_hops } => {
                let single = match next_hops.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                };
                stored(self.record_relay(packet, single))
            }
            AuditRecord::TrustChange {
                did,
                old,
                new,
                old_zone,
                new_zone,
                reason,
            } => {
                stored(self.record_trust_change_in(did, *old, *new, (*old_zone, *new_zone), reason))
            }
            AuditRecord::PendingReviewed { pending, approved } => {
                let p = &pending.packet;
                let (action, verb) = if *approved {
                    ("review.approved", "Approved")
                } else {
                    ("review.rejected", "Rejected")
                };
                let story = format!("{verb} pending ping {} from {}", p.packet_id, p.source_did);
                stored(self.record_event(pending_token(action, None, pending, story)))
            }
            AuditRecord::Vouched { vouch } => stored(
                self.record_event(
                    NewToken::new("vouch")
                        .erin(json!({
                            "vouch_id": vouch.vouch_id,
                            "voucher_did": vouch.voucher_did,
                            "vouched_dids": vouch.vouched_dids,
                            "vouch_factor": vouch.vouch_factor,
                        }))
                        .eraan(vouch.vouched_dids.iter().map(String::as_str))
                        .eromheen(json!({"pod_id": vouch.pod_id}))
                        .erachter(format!("Vouched: {}", vouch.reason)),
                ),
            ),
            AuditRecord::RuleAdded { rule } => stored(
                self.record_event(
                    NewToken::new("rule_added")
                        .erin(serde_json::to_value(rule).unwrap_or_default())
                        .erachter("Airlock rule added"),
                ),
            ),
            AuditRecord::AutoVouchRuleAdded { rule } => stored(
                self.record_event(
                    NewToken::new("auto_vouch_rule_added")
                        .erin(serde_json::to_value(rule).unwrap_or_default())
                        .erachter("Auto-vouch rule added"),
                ),
            ),
            AuditRecord::Drops(record) => stored(self.record_drops(record)),
            AuditRecord::PendingExpired { pending } => {
                let p = &pending.packet;
                let story = format!(
                    "Pending ping {} from {} expired unreviewed",
                    p.packet_id, p.source_did
                );
                stored(self.record_event(pending_token(
                    "review.expired",
                    Some("ping"),
                    pending,
                    story,
                )))
            }
            AuditRecord::BeaconReviewExpired { beacon } => stored(
                self.record_event(
                    NewToken::new("review.expired")
                        .erin(json!({
                            "kind": "beacon",
                            "beacon_id": beacon.beacon_id,
                            "source_did": beacon.source_did,
                            "device_type": beacon.device_type,
                        }))
                        .eraan([beacon.source_did.as_str()])
                        .erachter(format!(
                            "Beacon {} of {} expired unreviewed",
                            beacon.beacon_id, beacon.source_did
                        )),
                ),
            ),
            AuditRecord::IdentityRefused {
                did,
                address,
                reason,
                count,
            } => stored(
                self.record_event(
                    NewToken::new("identity.refused")
                        .erin(json!({
                            "claimed_did": did,
                            "address": address.to_string(),
                            "reason": reason,
                            "count": count,
                        }))
                        .eraan([did.as_str()])
                        .eromheen(json!({"address": address.to_string()}))
                        .erachter(format!(
                            "Refused {count} packet(s) claiming {did} from {address}: {reason}"
                        )),
                ),
            ),
            AuditRecord::Pinned { did, key, reason } => stored(
                self.record_event(
                    NewToken::new("identity.pinned")
                        .erin(json!({
                            "did": did,
                            "public_key": key.to_base64(),
                            "public_key_hash": key.sha256_hex(),
                        }))
                        .eraan([did.as_str()])
                        .eromheen(json!({"reason": reason}))
                        .erachter(format!("Pinned {did} to its key ({reason})")),
                ),
            ),
            AuditRecord::Unpinned { did, key } => stored(
                self.record_event(
                    NewToken::new("identity.unpinned")
                        .erin(json!({
                            "did": did,
                            "public_key": key.to_base64(),
                            "public_key_hash": key.sha256_hex(),
                        }))
                        .eraan([did.as_str()])
                        .erachter(format!("Removed the pin of {did}")),
                ),
            ),
            AuditRecord::CredentialRevoked {
                voucher_did,
                device_did,
            } => stored(
                self.record_event(
                    NewToken::new("identity.credential_revoked")
                        .erin(json!({"voucher_did": voucher_did, "device_did": device_did}))
                        .eraan([voucher_did.as_str(), device_did.as_str()])
                        .erachter(format!(
                            "Vouch credentials of {voucher_did} for {device_did} revoked"
                        )),
                ),
            ),
            _ => Ok(()),
        }
    }

    /// One token per record, stored with one append (one `write` for a
    /// file): all or none.
    fn record_batch(&mut self, records: &[AuditRecord]) -> Stored {
        self.begin_batch();
        let mut out = Stored::default();
        for r in records {
            // Ping tokens (the bulk) are written straight into the batch.
            if let Err(e) = self.record(r) {
                out.failed += 1;
                out.first_error.get_or_insert(e);
            }
        }
        match self.commit_batch() {
            Ok(n) => out.written += n as u64,
            Err(e) => {
                out.failed += records.len() as u64 - out.failed;
                out.first_error = Some(AuditError(Box::new(e)));
            }
        }
        out
    }

    fn flush(&mut self) -> Result<(), AuditError> {
        stored(self.provider_mut().flush())
    }
}
