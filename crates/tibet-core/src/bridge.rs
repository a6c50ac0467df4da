//! [`NetworkBridge`]: turns network events (pings, heartbeats, discovery,
//! relay, trust changes) into tokens chained into one audit trail.

use std::net::SocketAddr;

use serde_json::json;
use tibet_ping::{AirlockZone, DEFAULT_TRUST_GROEN, DEFAULT_TRUST_ROOD, PingPacket, PingResponse};

use crate::ping_token::PingAnswer;
use crate::provider::{NewToken, Provider, heartbeat_token, packet_token};
use crate::store::AppendError;
use crate::token::Token;
use tibet_ping::DropRecord;

/// The zone a trust score falls in with thresholds `groen` and `rood`
/// (>= `groen` GROEN, >= `rood` GEEL, else ROOD), as the airlock decides.
pub fn zone_for(trust: f64, groen: f64, rood: f64) -> AirlockZone {
    if trust >= groen {
        AirlockZone::Groen
    } else if trust >= rood {
        AirlockZone::Geel
    } else {
        AirlockZone::Rood
    }
}

/// Records network events through a [`Provider`]; each event's parent is
/// the bridge's previous event (or, for the first, the provider's last
/// token), so the events form one trail.
#[derive(Debug)]
pub struct NetworkBridge {
    provider: Provider,
    last_id: Option<String>,
    /// The trail's last id before the open batch.
    batch_start: Option<Option<String>>,
}

impl NetworkBridge {
    /// A bridge recording through `provider`.
    pub fn new(provider: Provider) -> Self {
        NetworkBridge {
            provider,
            last_id: None,
            batch_start: None,
        }
    }

    /// The provider.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The provider, mutably (tokens made directly do not join the trail).
    pub fn provider_mut(&mut self) -> &mut Provider {
        &mut self.provider
    }

    /// Gives the provider back.
    pub fn into_provider(self) -> Provider {
        self.provider
    }

    /// The id of the bridge's last event.
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    fn record(&mut self, mut new: NewToken) -> Result<Token, AppendError> {
        if new.parent_id.is_none() {
            new.parent_id = self
                .last_id
                .clone()
                .or_else(|| self.provider.last_id().map(str::to_owned));
        }
        let token = self.provider.create(new)?;
        self.last_id = Some(token.token_id.clone());
        Ok(token)
    }

    /// Any event, as [`NetworkBridge::record_event`], without handing its
    /// token back (in an open batch no copy is made).
    pub fn add_event(&mut self, mut new: NewToken) -> Result<(), AppendError> {
        if new.parent_id.is_none() {
            new.parent_id = self
                .last_id
                .clone()
                .or_else(|| self.provider.last_id().map(str::to_owned));
        }
        self.provider.add(new)?;
        self.last_id = self.provider.last_id().map(str::to_owned);
        Ok(())
    }

    /// An answered ping, as [`NetworkBridge::add_event`] of
    /// [`packet_token`](crate::packet_token) with EROMHEEN `authenticated`
    /// when given; in an open batch written straight from the packet (see
    /// [`Provider::add_ping`]).
    pub fn add_ping(
        &mut self,
        packet: &PingPacket,
        answer: Option<PingAnswer>,
        authenticated: Option<bool>,
    ) -> Result<(), AppendError> {
        let first = match &self.last_id {
            Some(_) => None,
            None => self.provider.last_id().map(str::to_owned),
        };
        let parent = self.last_id.as_deref().or(first.as_deref());
        self.provider
            .add_ping(packet, answer, authenticated, parent)?;
        // The new id, copied into the old one's buffer.
        match (&mut self.last_id, self.provider.last_id()) {
            (Some(mine), Some(new)) => {
                mine.clear();
                mine.push_str(new);
            }
            (mine, new) => *mine = new.map(str::to_owned),
        }
        Ok(())
    }

    /// Opens a batch: the events recorded until
    /// [`NetworkBridge::commit_batch`] are stored together (see
    /// [`Provider::begin_batch`]).
    pub fn begin_batch(&mut self) {
        if self.provider.batch_len() == 0 {
            self.batch_start = Some(self.last_id.clone());
        }
        self.provider.begin_batch();
    }

    /// Stores the open batch (one write); returns how many events it held.
    /// When the store refuses them, the trail continues from the event
    /// before the batch.
    pub fn commit_batch(&mut self) -> Result<usize, AppendError> {
        let before = self.batch_start.take();
        let r = self.provider.commit_batch();
        if let (Err(_), Some(before)) = (&r, before) {
            self.last_id = before;
        }
        r
    }

    /// Any other event, as a token joining the trail (its parent is the
    /// bridge's previous event unless `new` names one).
    pub fn record_event(&mut self, new: NewToken) -> Result<Token, AppendError> {
        self.record(new)
    }

    /// A ping and its optional response (action `ping.<ping_type>`; fields
    /// as [`Provider::from_packet`]).
    pub fn record_ping(
        &mut self,
        packet: &PingPacket,
        response: Option<&PingResponse>,
    ) -> Result<Token, AppendError> {
        self.record(packet_token(packet, response))
    }

    /// A heartbeat from `source_did`, seen from `addr` (action `heartbeat`;
    /// ERIN source and status, EROMHEEN host and port).
    pub fn record_heartbeat(
        &mut self,
        source_did: &str,
        addr: Option<SocketAddr>,
        status: Option<&str>,
    ) -> Result<Token, AppendError> {
        let eromheen = match addr {
            Some(a) => json!({"host": a.ip().to_string(), "port": a.port()}),
            None => json!({}),
        };
        self.record(heartbeat_token(source_did, status).eromheen(eromheen))
    }

    /// `count` heartbeats from `source_did`, the last seen from `addr`, as
    /// one token (action `heartbeat`, as [`NetworkBridge::record_heartbeat`]
    /// with EROMHEEN `count` too): a node writes one per peer per interval.
    pub fn record_heartbeats(
        &mut self,
        source_did: &str,
        addr: SocketAddr,
        count: u64,
    ) -> Result<Token, AppendError> {
        let eromheen = json!({"host": addr.ip().to_string(), "port": addr.port(), "count": count});
        let mut new = heartbeat_token(source_did, None).eromheen(eromheen);
        if count > 1 {
            new = new.erachter(format!("{count} heartbeats from {source_did}"));
        }
        self.record(new)
    }

    /// A device found on the network (action `discovery`; `decision` such
    /// as `accepted`, `rejected`, `pending`).
    pub fn record_discovery(
        &mut self,
        did: &str,
        addr: SocketAddr,
        decision: &str,
    ) -> Result<Token, AppendError> {
        let host = addr.ip().to_string();
        let port = addr.port();
        self.record(
            NewToken::new("discovery")
                .erin(json!({"discovered_did": did, "decision": decision}))
                .eraan([did])
                .eromheen(json!({"host": host, "port": port}))
                .erachter(format!(
                    "Discovered {did} at {host}:{port} \u{2014} {decision}"
                )),
        )
    }

    /// A packet relayed through the mesh, optionally to `forwarded_to`
    /// (action `relay`).
    pub fn record_relay(
        &mut self,
        packet: &PingPacket,
        forwarded_to: Option<SocketAddr>,
    ) -> Result<Token, AppendError> {
        let (src, dst, hops) = (&packet.source_did, &packet.target_did, packet.hop_count);
        let mut eromheen = json!({"hop_count": hops});
        if let Some(a) = forwarded_to {
            eromheen["forwarded_host"] = json!(a.ip().to_string());
            eromheen["forwarded_port"] = json!(a.port());
        }
        self.record(
            NewToken::new("relay")
                .erin(json!({"source_did": src, "target_did": dst, "hop_count": hops}))
                .eraan([src.as_str(), dst.as_str()])
                .eromheen(eromheen)
                .erachter(format!("Relaying packet from {src} to {dst} (hop {hops})")),
        )
    }

    /// Aggregated drops of one source over one interval (action `drops`):
    /// ERIN `source`, `counts` by reason, `total`, `from`, `until` (ISO
    /// 8601); ERAAN the source; EROMHEEN `interval_s`. One token per
    /// [`DropRecord`], so an attacker's datagrams never each cost a token.
    pub fn record_drops(&mut self, record: &DropRecord) -> Result<Token, AppendError> {
        let source = record.source.to_string();
        let total = record.total();
        let seconds = record
            .until
            .saturating_duration_since(record.from)
            .as_secs_f64();
        self.record(
            NewToken::new("drops")
                .erin(json!({
                    "source": source,
                    "counts": record.counts,
                    "total": total,
                    "from": record.from.to_iso(),
                    "until": record.until.to_iso(),
                }))
                .eraan([source.as_str()])
                .eromheen(json!({"interval_s": seconds}))
                .erachter(format!("{total} dropped from {source} in {seconds:.0} s")),
        )
    }

    /// A change of `did`'s trust score (action `trust_change`), zones by the
    /// default thresholds; see [`NetworkBridge::record_trust_change_in`].
    pub fn record_trust_change(
        &mut self,
        did: &str,
        old_trust: f64,
        new_trust: f64,
        reason: &str,
    ) -> Result<Token, AppendError> {
        let zone = |t| zone_for(t, DEFAULT_TRUST_GROEN, DEFAULT_TRUST_ROOD);
        let zones = (zone(old_trust), zone(new_trust));
        self.record_trust_change_in(did, old_trust, new_trust, zones, reason)
    }

    /// A change of `did`'s trust score (action `trust_change`) between the
    /// zones `(old, new)` the node's configured thresholds give; ERACHTER is
    /// `reason` (or a description), plus `(zone: A -> B)` when the zone
    /// changes.
    pub fn record_trust_change_in(
        &mut self,
        did: &str,
        old_trust: f64,
        new_trust: f64,
        (old_zone, new_zone): (AirlockZone, AirlockZone),
        reason: &str,
    ) -> Result<Token, AppendError> {
        let mut erachter = if reason.is_empty() {
            format!("Trust change for {did}: {old_trust:.2} -> {new_trust:.2}")
        } else {
            reason.to_owned()
        };
        if old_zone != new_zone {
            erachter.push_str(&format!(" (zone: {old_zone} -> {new_zone})"));
        }
        self.record(
            NewToken::new("trust_change")
                .erin(json!({
                    "did": did,
                    "old_trust": old_trust,
                    "new_trust": new_trust,
                    "old_zone": old_zone.as_str(),
                    "new_zone": new_zone.as_str(),
                }))
                .eraan([did])
                .eromheen(json!({"zone_changed": old_zone != new_zone}))
                .erachter(erachter),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::chain::Chain;
    use crate::provider::tests::{fixed_provider, packet, response};

    #[test]
    fn events_form_one_trail_with_reference_fields() {
        let mut b = NetworkBridge::new(fixed_provider("jis:home:hub"));
        let addr: SocketAddr = "192.168.1.50:7150".parse().unwrap();
        let ping = b.record_ping(&packet(), Some(&response())).unwrap();
        let disc = b
            .record_discovery("jis:new:sensor", addr, "accepted")
            .unwrap();
        let hb = b
            .record_heartbeat("jis:sensor:temp1", Some(addr), None)
            .unwrap();
        let relay = b
            .record_relay(&packet(), Some("10.0.0.2:7150".parse().unwrap()))
            .unwrap();
        let trust = b
            .record_trust_change("jis:sensor:temp1", 0.5, 0.9, "Vouched by admin")
            .unwrap();

        assert_eq!(ping.action, "ping.intent");
        assert_eq!(ping.eromheen["zone"], "GEEL");
        assert_eq!(disc.action, "discovery");
        assert_eq!(
            disc.erin,
            json!({"discovered_did": "jis:new:sensor", "decision": "accepted"})
        );
        assert_eq!(
            Value::Object(disc.eromheen.clone()),
            json!({"host": "192.168.1.50", "port": 7150})
        );
        assert_eq!(
            disc.erachter,
            "Discovered jis:new:sensor at 192.168.1.50:7150 \u{2014} accepted"
        );
        assert_eq!(disc.actor, "jis:home:hub");
        assert_eq!(hb.actor, "jis:sensor:temp1");
        assert_eq!(hb.erin, json!({"source": "jis:sensor:temp1"}));
        assert_eq!(
            relay.erachter,
            "Relaying packet from jis:home:sensor to jis:home:hub (hop 2)"
        );
        assert_eq!(
            Value::Object(relay.eromheen.clone()),
            json!({"hop_count": 2, "forwarded_host": "10.0.0.2", "forwarded_port": 7150})
        );
        assert_eq!(trust.action, "trust_change");
        assert_eq!(trust.erachter, "Vouched by admin (zone: GEEL -> GROEN)");
        assert_eq!(trust.erin["old_zone"], "GEEL");
        assert_eq!(trust.eromheen["zone_changed"], true);

        let chain = Chain::new(b.provider().store())
            .trace(&trust.token_id, 100)
            .unwrap();
        let ids: Vec<_> = chain.iter().map(|t| t.token_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                &trust.token_id,
                &relay.token_id,
                &hb.token_id,
                &disc.token_id,
                &ping.token_id
            ]
        );
        assert_eq!(b.last_id(), Some(trust.token_id.as_str()));
    }

    #[test]
    fn drops_are_one_token_per_source_per_interval() {
        use tibet_ping::{DropAggregator, DropSource};
        let mut b = NetworkBridge::new(fixed_provider("jis:home:hub"));
        let t0 = tibet_ping::Timestamp::from_secs(1_790_000_000);
        let mut agg = DropAggregator::new(std::time::Duration::from_secs(10), 64);
        let addr: SocketAddr = "10.0.0.9:7150".parse().unwrap();
        for i in 0..100_000u64 {
            let at = t0 + std::time::Duration::from_micros(i * 50);
            agg.note(
                at,
                DropSource::Addr(addr),
                if i % 2 == 0 { "rood" } else { "replay" },
            );
            for r in agg.flush_due(at) {
                b.record_drops(&r).unwrap();
            }
        }
        for r in agg.flush(t0 + std::time::Duration::from_secs(10)) {
            b.record_drops(&r).unwrap();
        }
        let tokens = b.provider().store().all().unwrap().len();
        assert_eq!(tokens, 1, "100,000 drops in 5 s from one source: one token");
        let t = b.provider().last_id().map(str::to_owned).unwrap();
        let t = b.provider().store().get(&t).unwrap().unwrap();
        assert_eq!(t.action, "drops");
        assert_eq!(
            t.erin,
            json!({"source": "10.0.0.9:7150", "counts": {"replay": 50_000, "rood": 50_000},
                   "total": 100_000, "from": t0.to_iso(),
                   "until": (t0 + std::time::Duration::from_secs(10)).to_iso()})
        );
        assert_eq!(t.eromheen["interval_s"], 10.0);
        assert!(t.verify(None));
    }

    #[test]
    fn ping_tokens_cap_purpose_and_payload_with_a_hash_of_the_full_value() {
        let mut b = NetworkBridge::new(fixed_provider("jis:home:hub"));
        let mut p = packet();
        p.purpose = "é".repeat(3000);
        p.payload = json!({"blob": "x".repeat(60_000)})
            .as_object()
            .unwrap()
            .clone();
        let t = b.record_ping(&p, None).unwrap();
        let purpose = t.erin["purpose"].as_str().unwrap();
        assert_eq!(purpose.len(), 256);
        assert_eq!(t.erachter, purpose);
        assert_eq!(t.erin["purpose_bytes"], 6000);
        assert_eq!(
            t.erin["purpose_sha256"],
            crate::cap::sha256_hex(p.purpose.as_bytes())
        );
        assert_eq!(t.erin["payload"], json!({}));
        let full = serde_json::to_vec(&p.payload).unwrap();
        assert_eq!(t.erin["payload_bytes"], full.len());
        assert_eq!(t.erin["payload_sha256"], crate::cap::sha256_hex(&full));
        assert!(
            t.to_json_line().len() < 4096,
            "a 60 KB datagram makes a small token"
        );
        // Small values are kept as they are, with no extra keys.
        let t = b.record_ping(&packet(), None).unwrap();
        assert_eq!(t.erin["purpose"], "Thermostat check");
        assert_eq!(t.erin["payload"], json!({"celsius": 21.5}));
        assert!(t.erin.get("payload_sha256").is_none());
    }

    #[test]
    fn trust_change_text_without_reason() {
        let mut b = NetworkBridge::new(fixed_provider("jis:hub"));
        let t = b.record_trust_change("jis:x", 0.8, 0.75, "").unwrap();
        assert_eq!(t.erachter, "Trust change for jis:x: 0.80 -> 0.75");
        assert_eq!(t.eromheen["zone_changed"], false);
        let t = b.record_trust_change("jis:x", 0.75, 0.1, "").unwrap();
        assert_eq!(
            t.erachter,
            "Trust change for jis:x: 0.75 -> 0.10 (zone: GROEN -> ROOD)"
        );
        assert_eq!(zone_for(0.3, 0.7, 0.3), AirlockZone::Geel);
        assert_eq!(zone_for(0.29, 0.7, 0.3), AirlockZone::Rood);
        assert_eq!(
            zone_for(0.75, 0.8, 0.5),
            AirlockZone::Geel,
            "thresholds are taken"
        );
    }
}
