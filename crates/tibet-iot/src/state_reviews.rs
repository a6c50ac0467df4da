//! The reviews still waiting, in the state store (docs/OPERATIONS.md,
//! "Config and state store"): the GEEL pings (each packet as its wire
//! JSON) and the beacons in review, with the time each was queued, so a
//! restored review expires when it would have. The store keeps one copy,
//! replaced as a whole in one transaction whenever what waits changed.

use rusqlite::{Connection, params};
use tibet_iot_proto::{WaitingBeacon, WaitingReviews};
use tibet_ping::identity::PublicKey;
use tibet_ping::{Beacon, PendingPing, PingPacket, Timestamp};

/// The tables (schema version 2).
pub(crate) const MIGRATION: &str = "
    CREATE TABLE review_pings (
        seq          INTEGER PRIMARY KEY,
        did          TEXT NOT NULL,
        packet_id    TEXT NOT NULL,
        packet       TEXT NOT NULL,
        sender_trust REAL NOT NULL,
        reason       TEXT NOT NULL,
        rule         TEXT,
        queued_at    TEXT NOT NULL
    );
    CREATE TABLE review_beacons (
        seq        INTEGER PRIMARY KEY,
        did        TEXT NOT NULL,
        beacon_id  TEXT NOT NULL,
        beacon     TEXT NOT NULL,
        public_key TEXT,
        queued_at  TEXT NOT NULL
    );
";

fn to_sql(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

fn from_sql(column: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
}

/// A timestamp column this module wrote.
#[derive(Debug, thiserror::Error)]
#[error("not an ISO 8601 timestamp: {0:?}")]
struct BadTimestamp(String);

/// A timestamp column, refused when it is not one.
pub(crate) fn timestamp(column: usize, text: String) -> rusqlite::Result<Timestamp> {
    Timestamp::parse(&text).ok_or_else(|| from_sql(column, BadTimestamp(text)))
}

/// Replaces the stored copy with `reviews` (inside the caller's
/// transaction).
pub(crate) fn write(c: &Connection, reviews: &WaitingReviews) -> rusqlite::Result<()> {
    c.execute_batch("DELETE FROM review_pings; DELETE FROM review_beacons;")?;
    let mut ping = c.prepare(
        "INSERT INTO review_pings (did, packet_id, packet, sender_trust, reason, rule, queued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for p in &reviews.pings {
        ping.execute(params![
            p.packet.source_did,
            p.packet.packet_id,
            serde_json::to_string(&p.packet).map_err(to_sql)?,
            p.sender_trust,
            p.reason,
            p.rule,
            p.queued_at.to_iso()
        ])?;
    }
    let mut beacon = c.prepare(
        "INSERT INTO review_beacons (did, beacon_id, beacon, public_key, queued_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for b in &reviews.beacons {
        beacon.execute(params![
            b.beacon.source_did,
            b.beacon.beacon_id,
            serde_json::to_string(&b.beacon).map_err(to_sql)?,
            b.key.map(|k| k.to_base64()),
            b.queued_at.to_iso()
        ])?;
    }
    Ok(())
}

/// The stored copy, oldest first.
pub(crate) fn load(c: &Connection) -> rusqlite::Result<WaitingReviews> {
    let mut st = c.prepare(
        "SELECT packet, sender_trust, reason, rule, queued_at FROM review_pings ORDER BY seq",
    )?;
    let pings = st
        .query_map([], |r| {
            let packet: String = r.get(0)?;
            Ok(PendingPing {
                packet: serde_json::from_str::<PingPacket>(&packet).map_err(|e| from_sql(0, e))?,
                sender_trust: r.get(1)?,
                reason: r.get(2)?,
                rule: r.get(3)?,
                queued_at: timestamp(4, r.get(4)?)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut st =
        c.prepare("SELECT beacon, public_key, queued_at FROM review_beacons ORDER BY seq")?;
    let beacons = st
        .query_map([], |r| {
            let beacon: String = r.get(0)?;
            let key = r
                .get::<_, Option<String>>(1)?
                .map(|k| PublicKey::parse(&k).map_err(|e| from_sql(1, e)))
                .transpose()?;
            Ok(WaitingBeacon {
                beacon: serde_json::from_str::<Beacon>(&beacon).map_err(|e| from_sql(0, e))?,
                key,
                queued_at: timestamp(2, r.get(2)?)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(WaitingReviews { pings, beacons })
}
