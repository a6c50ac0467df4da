//! The state store: an operator's decisions, kept across restarts in
//! `state.db` in the node's state directory (docs/OPERATIONS.md,
//! docs/ARCHITECTURE.md "State store").
//!
//! SQLite (compiled in through `rusqlite`): WAL journal, `synchronous=FULL`,
//! every write one transaction, so a decision [`IoTNode`](crate::IoTNode)
//! has returned is on disk (a clean stop, SIGKILL or power loss keeps it).
//! The schema carries its version in `PRAGMA user_version`
//! ([`SCHEMA_VERSION`]); older stores are migrated at open, a store from a
//! newer version, or a file that is not a sound SQLite database, is refused
//! with [`StoreError`] and never written to.
//!
//! It holds run-time trust scores (with what set them and when, and the
//! configured trust they overrode), vouches with their expiry,
//! vouch-credential revocations, airlock and auto-vouch rules added at run
//! time, and pins made by an approved beacon review
//! or removed by an operator, pins learnt on first use, and the reviews
//! still waiting (`state_reviews.rs`); the last two are copied by the
//! driver's keeper thread within a second of changing, and at every
//! operator decision (docs/OPERATIONS.md).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tibet_iot_proto::WaitingReviews;
use tibet_ping::{AirlockRule, AutoVouchRule, Timestamp};

/// The store's file in the state directory.
pub const STORE_FILE: &str = "state.db";

/// The schema version this build writes; stores with a lower version are
/// migrated at open.
pub const SCHEMA_VERSION: i64 = 3;

/// Migrations: entry `i` takes a store from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE trust (
        did      TEXT PRIMARY KEY NOT NULL,
        score    REAL NOT NULL,
        declared REAL,
        reason   TEXT NOT NULL,
        set_at   TEXT NOT NULL
    );
    CREATE TABLE vouches (
        id            INTEGER PRIMARY KEY,
        vouch_factor  REAL NOT NULL,
        voucher_trust REAL NOT NULL,
        pod_id        TEXT,
        reason        TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        expires_at    TEXT
    );
    CREATE TABLE vouched_dids (
        vouch INTEGER NOT NULL REFERENCES vouches(id) ON DELETE CASCADE,
        did   TEXT NOT NULL
    );
    CREATE TABLE revocations (
        voucher_did TEXT NOT NULL,
        device_did  TEXT NOT NULL,
        revoked_at  TEXT NOT NULL,
        PRIMARY KEY (voucher_did, device_did)
    );
    CREATE TABLE rules (
        id       INTEGER PRIMARY KEY,
        kind     TEXT NOT NULL,
        rule     TEXT NOT NULL,
        added_at TEXT NOT NULL
    );
    CREATE TABLE pins (
        did        TEXT PRIMARY KEY NOT NULL,
        public_key TEXT NOT NULL,
        removed    INTEGER NOT NULL,
        reason     TEXT NOT NULL,
        changed_at TEXT NOT NULL
    );
",
    crate::state_reviews::MIGRATION,
    "CREATE TABLE horizon (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        at TEXT NOT NULL
    );",
];

/// Why the state store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("state store {path}: {source}")]
    Sqlite {
        /// The store's file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The store was written by a newer version of this software: refused,
    /// never downgraded or overwritten.
    #[error(
        "state store {path} has schema version {found}; this build knows up to {supported} (upgrade tibet-iot, or move the file away)"
    )]
    NewerSchema {
        /// The store's file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The file is not a sound SQLite database: refused and left as it is.
    #[error(
        "state store {path} is corrupt ({detail}); it is left untouched: move it away to start without it"
    )]
    Corrupt {
        /// The store's file.
        path: PathBuf,
        /// What SQLite found.
        detail: String,
    },
}

/// A run-time trust decision.
#[derive(Clone, Debug, PartialEq)]
pub struct TrustEntry {
    /// Whose trust.
    pub did: String,
    /// The score set.
    pub score: f64,
    /// The configured trust of `did` when the decision was made (`None`:
    /// none configured); a configuration that differs at start wins.
    pub declared: Option<f64>,
    /// What set it (`set_trust`, `pending approved ping_...`).
    pub reason: String,
    /// When.
    pub set_at: Timestamp,
}

/// A vouch made at run time.
#[derive(Clone, Debug, PartialEq)]
pub struct VouchEntry {
    /// The devices vouched for.
    pub dids: Vec<String>,
    /// Passed-on share of the voucher's trust.
    pub vouch_factor: f64,
    /// The voucher's own trust.
    pub voucher_trust: f64,
    /// Pod.
    pub pod_id: Option<String>,
    /// Human reason.
    pub reason: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops counting.
    pub expires_at: Option<Timestamp>,
}

/// A vouch-credential revocation made at run time.
#[derive(Clone, Debug, PartialEq)]
pub struct RevocationEntry {
    /// The voucher.
    pub voucher_did: String,
    /// The device.
    pub device_did: String,
    /// When.
    pub revoked_at: Timestamp,
}

/// A pin made or removed at run time.
#[derive(Clone, Debug, PartialEq)]
pub struct PinEntry {
    /// The DID.
    pub did: String,
    /// The key (base64): pinned, or the one removed.
    pub public_key: String,
    /// Whether the pin of `public_key` was removed (else made).
    pub removed: bool,
    /// Why (`beacon approved`, `removed`).
    pub reason: String,
    /// When.
    pub changed_at: Timestamp,
}

/// A rule added at run time.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleEntry {
    /// An airlock rule.
    Airlock(AirlockRule),
    /// An auto-vouch rule for beacons.
    AutoVouch(AutoVouchRule),
}

/// Everything a store holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredState {
    /// Trust decisions, by DID.
    pub trust: Vec<TrustEntry>,
    /// Vouches, oldest first.
    pub vouches: Vec<VouchEntry>,
    /// Revocations.
    pub revocations: Vec<RevocationEntry>,
    /// Pins made and removed, by DID.
    pub pins: Vec<PinEntry>,
    /// Rules added at run time, oldest first.
    pub rules: Vec<RuleEntry>,
    /// The reviews waiting when the copy was last written.
    pub reviews: WaitingReviews,
    /// The replay horizon: packets sent at or before it are refused.
    pub horizon: Option<Timestamp>,
}

/// One decision to record.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Decision {
    /// A trust score set.
    Trust(TrustEntry),
    /// A vouch made.
    Vouch(VouchEntry),
    /// A vouch-credential revocation.
    Revocation(RevocationEntry),
    /// A pin made or removed.
    Pin(PinEntry),
    /// A rule added.
    Rule(RuleEntry),
    /// What waits for review now (replaces the stored copy).
    Reviews(WaitingReviews),
    /// The replay horizon (replaces the stored one; see `replay_horizon.rs`).
    Horizon(Timestamp),
}

/// An open state store.
#[derive(Debug)]
pub struct StateStore {
    conn: Connection,
    path: PathBuf,
}

fn ts(text: String) -> Timestamp {
    // Written by this module only; an unreadable one reads as the epoch
    // rather than failing a start.
    Timestamp::parse(&text).unwrap_or(Timestamp::from_micros(0))
}

/// Writes one decision (inside the caller's transaction).
fn write(c: &Connection, d: &Decision) -> rusqlite::Result<()> {
    match d {
        Decision::Trust(e) => {
            c.execute(
                "INSERT OR REPLACE INTO trust (did, score, declared, reason, set_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.did, e.score, e.declared, e.reason, e.set_at.to_iso()],
            )?;
        }
        Decision::Vouch(v) => {
            c.execute(
                "INSERT INTO vouches (vouch_factor, voucher_trust, pod_id, reason, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    v.vouch_factor,
                    v.voucher_trust,
                    v.pod_id,
                    v.reason,
                    v.created_at.to_iso(),
                    v.expires_at.map(|t| t.to_iso())
                ],
            )?;
            let id = c.last_insert_rowid();
            for did in &v.dids {
                c.execute(
                    "INSERT INTO vouched_dids (vouch, did) VALUES (?1, ?2)",
                    params![id, did],
                )?;
            }
        }
        Decision::Revocation(r) => {
            c.execute(
                "INSERT OR REPLACE INTO revocations (voucher_did, device_did, revoked_at)
                 VALUES (?1, ?2, ?3)",
                params![r.voucher_did, r.device_did, r.revoked_at.to_iso()],
            )?;
        }
        Decision::Rule(rule) => {
            let (kind, json) = match rule {
                RuleEntry::Airlock(r) => ("airlock", serde_json::to_string(r)),
                RuleEntry::AutoVouch(r) => ("auto_vouch", serde_json::to_string(r)),
            };
            let json = json.map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            c.execute(
                "INSERT INTO rules (kind, rule, added_at) VALUES (?1, ?2, ?3)",
                params![kind, json, Timestamp::now().to_iso()],
            )?;
        }
        Decision::Reviews(r) => crate::state_reviews::write(c, r)?,
        Decision::Horizon(t) => {
            c.execute(
                "INSERT OR REPLACE INTO horizon (id, at) VALUES (1, ?1)",
                params![t.to_iso()],
            )?;
        }
        Decision::Pin(p) => {
            c.execute(
                "INSERT OR REPLACE INTO pins (did, public_key, removed, reason, changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    p.did,
                    p.public_key,
                    p.removed,
                    p.reason,
                    p.changed_at.to_iso()
                ],
            )?;
        }
    }
    Ok(())
}

/// A row of `trust` (did, score, declared, reason, set_at).
fn trust_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TrustEntry> {
    Ok(TrustEntry {
        did: r.get(0)?,
        score: r.get(1)?,
        declared: r.get(2)?,
        reason: r.get(3)?,
        set_at: ts(r.get(4)?),
    })
}

impl StateStore {
    /// Opens (creating it if absent) `state.db` in `dir`, checks it and
    /// migrates it to [`SCHEMA_VERSION`]. The caller holds the directory's
    /// lock ([`crate::StateError::InUse`]).
    pub fn open(dir: &Path) -> Result<StateStore, StoreError> {
        let path = dir.join(STORE_FILE);
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        let store = StateStore {
            conn,
            path: path.clone(),
        };
        // Read-only checks first: nothing is written to a store refused.
        let version = store.checked_version()?;
        store
            .conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        store
            .conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        store
            .conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        store.migrate(version)?;
        Ok(store)
    }

    /// Opens an existing store for reading only (`tibet-iot state list`),
    /// checked like [`StateStore::open`]; `None` when `dir` has none.
    pub fn open_read_only(dir: &Path) -> Result<Option<StateStore>, StoreError> {
        let path = dir.join(STORE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let store = StateStore { conn, path };
        store.checked_version()?;
        Ok(Some(store))
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: source.to_string(),
                }
            }
            _ => StoreError::Sqlite {
                path: self.path.clone(),
                source,
            },
        }
    }

    /// The schema version, after an integrity check; refuses a newer or a
    /// corrupt store without writing to it.
    fn checked_version(&self) -> Result<i64, StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.sqlite(e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let check: String = self
            .conn
            .pragma_query_value(None, "quick_check", |r| r.get(0))
            .map_err(|e| self.sqlite(e))?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: check,
            });
        }
        Ok(version)
    }

    fn migrate(&self, from: i64) -> Result<(), StoreError> {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
            let tx = self
                .conn
                .unchecked_transaction()
                .map_err(|e| self.sqlite(e))?;
            tx.execute_batch(sql).map_err(|e| self.sqlite(e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| self.sqlite(e))?;
            tx.commit().map_err(|e| self.sqlite(e))?;
        }
        Ok(())
    }

    /// Records `decisions` in one transaction.
    pub fn record(&self, decisions: &[Decision]) -> Result<(), StoreError> {
        let run = || -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            for d in decisions {
                write(&tx, d)?;
            }
            tx.commit()
        };
        run().map_err(|e| self.sqlite(e))
    }

    /// Records a trust decision (replacing the DID's earlier one).
    pub fn put_trust(&self, e: &TrustEntry) -> Result<(), StoreError> {
        self.record(&[Decision::Trust(e.clone())])
    }

    /// Forgets the trust decision of `did` (a configuration that changed
    /// since won).
    pub fn delete_trust(&self, did: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM trust WHERE did = ?1", params![did])
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// Forgets vouches that expired at or before `now`; how many.
    pub fn delete_expired_vouches(&self, now: Timestamp) -> Result<usize, StoreError> {
        let expired: Vec<(i64, String)> = {
            let run = || -> rusqlite::Result<Vec<(i64, String)>> {
                let mut st = self
                    .conn
                    .prepare("SELECT id, expires_at FROM vouches WHERE expires_at IS NOT NULL")?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
            };
            run().map_err(|e| self.sqlite(e))?
        };
        let ids: Vec<i64> = expired
            .into_iter()
            .filter(|(_, t)| ts(t.clone()) <= now)
            .map(|(id, _)| id)
            .collect();
        let run = || -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            for id in &ids {
                tx.execute("DELETE FROM vouches WHERE id = ?1", params![id])?;
            }
            tx.commit()
        };
        run().map_err(|e| self.sqlite(e))?;
        Ok(ids.len())
    }

    /// Forgets the stored pin decision of `did` (a configuration that
    /// changed since won).
    pub fn delete_pin(&self, did: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM pins WHERE did = ?1", params![did])
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// Everything the store holds.
    pub fn load(&self) -> Result<StoredState, StoreError> {
        let run = || -> rusqlite::Result<StoredState> {
            let mut out = StoredState::default();
            let mut st = self
                .conn
                .prepare("SELECT did, score, declared, reason, set_at FROM trust ORDER BY did")?;
            out.trust = st
                .query_map([], trust_row)?
                .collect::<rusqlite::Result<_>>()?;
            let mut st = self.conn.prepare(
                "SELECT id, vouch_factor, voucher_trust, pod_id, reason, created_at, expires_at
                 FROM vouches ORDER BY id",
            )?;
            let mut dids = self
                .conn
                .prepare("SELECT did FROM vouched_dids WHERE vouch = ?1 ORDER BY rowid")?;
            let rows: Vec<(i64, VouchEntry)> = st
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        VouchEntry {
                            dids: Vec::new(),
                            vouch_factor: r.get(1)?,
                            voucher_trust: r.get(2)?,
                            pod_id: r.get(3)?,
                            reason: r.get(4)?,
                            created_at: ts(r.get(5)?),
                            expires_at: r.get::<_, Option<String>>(6)?.map(ts),
                        },
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (id, mut v) in rows {
                v.dids = dids
                    .query_map(params![id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                out.vouches.push(v);
            }
            let mut st = self.conn.prepare(
                "SELECT voucher_did, device_did, revoked_at FROM revocations
                 ORDER BY voucher_did, device_did",
            )?;
            out.revocations = st
                .query_map([], |r| {
                    Ok(RevocationEntry {
                        voucher_did: r.get(0)?,
                        device_did: r.get(1)?,
                        revoked_at: ts(r.get(2)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut st = self
                .conn
                .prepare("SELECT kind, rule FROM rules ORDER BY id")?;
            out.rules = st
                .query_map([], |r| {
                    let (kind, json): (String, String) = (r.get(0)?, r.get(1)?);
                    let bad = |e: serde_json::Error| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    };
                    match kind.as_str() {
                        "airlock" => serde_json::from_str(&json)
                            .map(RuleEntry::Airlock)
                            .map_err(bad),
                        _ => serde_json::from_str(&json)
                            .map(RuleEntry::AutoVouch)
                            .map_err(bad),
                    }
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut st = self.conn.prepare(
                "SELECT did, public_key, removed, reason, changed_at FROM pins ORDER BY did",
            )?;
            out.pins = st
                .query_map([], |r| {
                    Ok(PinEntry {
                        did: r.get(0)?,
                        public_key: r.get(1)?,
                        removed: r.get(2)?,
                        reason: r.get(3)?,
                        changed_at: ts(r.get(4)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            out.reviews = crate::state_reviews::load(&self.conn)?;
            out.horizon = self.horizon_row()?;
            Ok(out)
        };
        run().map_err(|e| self.sqlite(e))
    }

    /// Forgets every decision (the schema stays, and so does the replay
    /// horizon: forgetting it would let packets of the last run replay),
    /// in one transaction.
    pub fn reset(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(
                "BEGIN; DELETE FROM vouched_dids; DELETE FROM vouches; DELETE FROM trust;
                 DELETE FROM revocations; DELETE FROM pins; DELETE FROM rules;
                 DELETE FROM review_pings; DELETE FROM review_beacons; COMMIT;",
            )
            .map_err(|e| self.sqlite(e))
    }

    /// The replay horizon the last run left, if any.
    pub fn horizon(&self) -> Result<Option<Timestamp>, StoreError> {
        self.horizon_row().map_err(|e| self.sqlite(e))
    }

    fn horizon_row(&self) -> rusqlite::Result<Option<Timestamp>> {
        // An unreadable horizon fails the start: reading it as anything
        // earlier would let the last run's packets replay.
        self.conn
            .query_row("SELECT at FROM horizon WHERE id = 1", [], |r| {
                crate::state_reviews::timestamp(0, r.get(0)?)
            })
            .optional()
    }

    /// The trust decision of `did`, if any.
    pub fn trust(&self, did: &str) -> Result<Option<TrustEntry>, StoreError> {
        self.conn
            .query_row(
                "SELECT did, score, declared, reason, set_at FROM trust WHERE did = ?1",
                params![did],
                trust_row,
            )
            .optional()
            .map_err(|e| self.sqlite(e))
    }
}

/// Forgets every decision in the store of state directory `dir`, holding
/// the directory's lock (refused while a node runs with it). False when
/// `dir` has no store.
pub fn reset_state_store(dir: &Path) -> Result<bool, crate::StartError> {
    if !dir.join(STORE_FILE).exists() {
        return Ok(false);
    }
    let _locked = crate::replay_horizon::StateDir::open(dir)?;
    StateStore::open(dir)?.reset()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(did: &str, score: f64) -> TrustEntry {
        TrustEntry {
            did: did.into(),
            score,
            declared: None,
            reason: "set_trust".into(),
            set_at: Timestamp::parse("2026-12-06T23:00:00+00:00").unwrap(),
        }
    }

    #[test]
    fn decisions_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(tmp.path()).unwrap();
        store.put_trust(&entry("jis:a", 0.9)).unwrap();
        store.put_trust(&entry("jis:a", 0.4)).unwrap();
        let v = VouchEntry {
            dids: vec!["jis:b".into(), "jis:c".into()],
            vouch_factor: 0.7,
            voucher_trust: 0.9,
            pod_id: None,
            reason: "r".into(),
            created_at: Timestamp::from_micros(1),
            expires_at: Some(Timestamp::from_micros(5)),
        };
        store.record(&[Decision::Vouch(v.clone())]).unwrap();
        drop(store);
        let store = StateStore::open(tmp.path()).unwrap();
        let s = store.load().unwrap();
        assert_eq!(s.trust, vec![entry("jis:a", 0.4)]);
        assert_eq!(s.vouches, vec![v]);
        assert_eq!(
            store
                .delete_expired_vouches(Timestamp::from_micros(5))
                .unwrap(),
            1
        );
        assert!(store.load().unwrap().vouches.is_empty());
        store.reset().unwrap();
        assert_eq!(store.load().unwrap(), StoredState::default());
    }
}
