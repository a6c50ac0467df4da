//! The node configuration file (TOML) and its merge with command-line flags.
//!
//! Every table rejects unknown keys (`deny_unknown_fields`), and values are
//! checked after parsing so that each error names the key it is about. The
//! documented example is `examples/hub.toml` at the repository root.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::parse;

/// The whole file. Only `did` is needed when no flag gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// This node's DID.
    pub(crate) did: Option<String>,
    /// Address to bind the transport socket to (default `0.0.0.0`).
    pub(crate) bind: Option<IpAddr>,
    /// Transport port (default 7150).
    pub(crate) port: Option<u16>,
    /// Encode outgoing frames as msgpack instead of JSON.
    pub(crate) msgpack: Option<bool>,
    /// Path of the local control socket for `tibet-iot pending`.
    pub(crate) control: Option<PathBuf>,
    /// Multicast discovery.
    #[serde(default)]
    pub(crate) discovery: DiscoverySection,
    /// Background loop intervals.
    #[serde(default)]
    pub(crate) intervals: IntervalsSection,
    /// What this node says about itself in discovery.
    #[serde(default)]
    pub(crate) announce: AnnounceSection,
    /// Trust scores: `"jis:home:sensor" = 0.9`.
    #[serde(default)]
    pub(crate) trust: BTreeMap<String, f64>,
    /// Vouches this node makes for other devices.
    #[serde(default, rename = "vouch")]
    pub(crate) vouches: Vec<VouchEntry>,
    /// Airlock rules, checked before the trust thresholds.
    #[serde(default, rename = "airlock_rule")]
    pub(crate) airlock_rules: Vec<RuleEntry>,
    /// Auto-vouch rules for discovery beacons.
    #[serde(default, rename = "auto_vouch")]
    pub(crate) auto_vouch: Vec<AutoVouchEntry>,
    /// Provenance recording.
    pub(crate) audit: Option<AuditSection>,
    /// Metrics endpoint (docs/OPERATIONS.md).
    pub(crate) metrics: Option<crate::ops::MetricsSection>,
    /// MQTT fleet bridge (docs/FLEETS.md).
    pub(crate) mqtt: Option<crate::mqtt::MqttSection>,
    /// Key, identity mode and pins file (docs/PROTOCOL.md section 6).
    pub(crate) identity: Option<crate::identity::IdentitySection>,
    /// Pinned DIDs: `"jis:home:sensor" = "PUBKEY"` (base64 of the raw key).
    #[serde(default)]
    pub(crate) pins: BTreeMap<String, String>,
}

/// `[discovery]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiscoverySection {
    /// Listen for and answer discovery beacons (default true).
    pub(crate) enabled: Option<bool>,
    /// Discovery port (default 7151).
    pub(crate) port: Option<u16>,
    /// Multicast group (default 224.0.71.50).
    pub(crate) group: Option<Ipv4Addr>,
    /// IPv4 address of the interface used for multicast (default: the system's choice).
    pub(crate) interface: Option<Ipv4Addr>,
    /// Multicast TTL (default 2).
    pub(crate) ttl: Option<u32>,
}

/// `[intervals]`, in seconds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IntervalsSection {
    /// Heartbeat to known peers (default 30).
    pub(crate) heartbeat: Option<f64>,
    /// Discovery beacon (default 60).
    pub(crate) discovery: Option<f64>,
    /// Peer cleanup (default 45).
    pub(crate) peer_cleanup: Option<f64>,
    /// A peer idle longer than this is pruned (default 120).
    pub(crate) peer_timeout: Option<f64>,
}

/// `[announce]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnnounceSection {
    /// Device type, e.g. `hub`, `sensor`.
    pub(crate) device_type: Option<String>,
    /// Capabilities, e.g. `temperature.read`.
    #[serde(default)]
    pub(crate) capabilities: Vec<String>,
}

/// `[[vouch]]`: this node vouches for `dids`; their trust becomes
/// `my_trust x factor` (0.9 x 0.7 = 0.63 by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VouchEntry {
    /// The vouched DIDs.
    pub(crate) dids: Vec<String>,
    /// Vouch factor (default 0.7).
    pub(crate) factor: Option<f64>,
    /// The voucher's own trust (default 0.9).
    pub(crate) my_trust: Option<f64>,
    /// Pod the devices belong to.
    pub(crate) pod_id: Option<String>,
    /// Why.
    pub(crate) reason: Option<String>,
}

/// `[[airlock_rule]]`: a pattern and the zone it decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleEntry {
    /// Rule name, reported as `applied_rule`.
    pub(crate) name: String,
    /// Zone: `GROEN`, `GEEL` or `ROOD`.
    pub(crate) zone: String,
    /// Higher is checked first (default 50).
    pub(crate) priority: Option<i64>,
    /// Glob on the source DID.
    pub(crate) source_did: Option<String>,
    /// Glob on the intent.
    pub(crate) intent: Option<String>,
    /// Exact pod id.
    pub(crate) pod_id: Option<String>,
    /// Exact ping type.
    pub(crate) ping_type: Option<String>,
    /// Minimum sender trust.
    pub(crate) min_trust: Option<f64>,
}

/// `[[auto_vouch]]`: beacons matching every given condition are vouched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AutoVouchEntry {
    /// Rule name.
    pub(crate) name: String,
    /// Exact device type.
    pub(crate) device_type: Option<String>,
    /// Capabilities the device must announce (subset).
    #[serde(default)]
    pub(crate) required_capabilities: Vec<String>,
    /// Regex on the source DID.
    pub(crate) source_pattern: Option<String>,
    /// Pod to assign.
    pub(crate) pod_id: Option<String>,
}

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditSection {
    /// JSONL token file, appended to.
    pub(crate) file: PathBuf,
    /// When records are forced to disk: `group_commit` (default) or `every_token`.
    pub(crate) durability: Option<DurabilityKind>,
    /// For `group_commit`: the longest time a record stays unsynced (default 100 ms).
    pub(crate) group_commit_ms: Option<u64>,
}

/// How hard the audit file is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DurabilityKind {
    /// fsync at most every `group_commit_ms`; a process crash loses nothing,
    /// a power loss at most that interval.
    #[default]
    GroupCommit,
    /// fsync after every record.
    EveryToken,
}

/// The resolved durability policy: the store's own type.
pub(crate) use tibet_core::Durability;

impl AuditSection {
    /// The policy this section asks for.
    pub(crate) fn durability(&self) -> Durability {
        match self.durability.unwrap_or_default() {
            DurabilityKind::EveryToken => Durability::EveryToken,
            DurabilityKind::GroupCommit => Durability::GroupCommit {
                interval: std::time::Duration::from_millis(self.group_commit_ms.unwrap_or(100)),
            },
        }
    }
}

impl ConfigFile {
    /// Reads and checks a file; every error names the file and the key.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("config file {}", path.display()))
    }

    /// Parses and checks TOML text.
    pub(crate) fn from_toml(text: &str) -> Result<Self> {
        let cfg: ConfigFile = toml::from_str(text).map_err(|e| {
            // toml's message names the key; keep it on one line.
            anyhow::anyhow!("{}", one_line(&e.to_string()))
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        if let Some(d) = &self.did {
            parse::did(d).context("key `did`")?;
        }
        for (key, v) in [
            ("intervals.heartbeat", self.intervals.heartbeat),
            ("intervals.discovery", self.intervals.discovery),
            ("intervals.peer_cleanup", self.intervals.peer_cleanup),
            ("intervals.peer_timeout", self.intervals.peer_timeout),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0 && v < 1e9)
            {
                bail!("key `{key}`: {v} must be a positive number of seconds");
            }
        }
        if let Some(g) = self.discovery.group
            && !g.is_multicast()
        {
            bail!("key `discovery.group`: {g} is not a multicast address");
        }
        if let Some(ttl) = self.discovery.ttl
            && (ttl == 0 || ttl > 255)
        {
            bail!("key `discovery.ttl`: {ttl} must be within 1..=255");
        }
        for (did, score) in &self.trust {
            parse::did(did).with_context(|| format!("key `trust.\"{did}\"`"))?;
            check_score_at(&format!("trust.\"{did}\""), *score)?;
        }
        for (i, v) in self.vouches.iter().enumerate() {
            if v.dids.is_empty() {
                bail!("key `vouch[{i}].dids`: must name at least one DID");
            }
            for d in &v.dids {
                parse::did(d).with_context(|| format!("key `vouch[{i}].dids`"))?;
            }
            for (k, s) in [("factor", v.factor), ("my_trust", v.my_trust)] {
                if let Some(s) = s {
                    check_score_at(&format!("vouch[{i}].{k}"), s)?;
                }
            }
        }
        for (i, r) in self.airlock_rules.iter().enumerate() {
            if !matches!(r.zone.as_str(), "GROEN" | "GEEL" | "ROOD") {
                bail!(
                    "key `airlock_rule[{i}].zone`: '{}' is not one of GROEN, GEEL, ROOD",
                    r.zone
                );
            }
            if let Some(t) = &r.ping_type {
                t.parse::<tibet_ping::PingType>()
                    .map_err(|e| anyhow::anyhow!("key `airlock_rule[{i}].ping_type`: {e}"))?;
            }
            if let Some(m) = r.min_trust {
                check_score_at(&format!("airlock_rule[{i}].min_trust"), m)?;
            }
        }
        if let Some(a) = &self.audit {
            if a.group_commit_ms == Some(0) {
                bail!("key `audit.group_commit_ms`: must be at least 1");
            }
            if a.group_commit_ms.is_some() && a.durability == Some(DurabilityKind::EveryToken) {
                bail!("key `audit.group_commit_ms`: only applies to durability = \"group_commit\"");
            }
        }
        for (i, a) in self.auto_vouch.iter().enumerate() {
            if let Some(p) = &a.source_pattern {
                check_regex(p)
                    .map_err(|e| anyhow::anyhow!("key `auto_vouch[{i}].source_pattern`: {e}"))?;
            }
        }
        Ok(())
    }
}

/// [`parse::check_score`], naming `key` in the error.
fn check_score_at(key: &str, score: f64) -> Result<()> {
    parse::check_score(score)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("key `{key}`: {e}"))
}

fn check_regex(p: &str) -> Result<(), String> {
    regex::Regex::new(p).map(|_| ()).map_err(|e| {
        format!(
            "'{p}' is not a valid regular expression: {}",
            one_line(&e.to_string())
        )
    })
}

fn one_line(s: &str) -> String {
    // toml errors look like "TOML parse error at line 3, column 1\n  |\n3 | x = 1\n  | ^\nunknown field `x`, expected ..."
    let mut lines = s.lines().filter(|l| !l.trim().is_empty());
    let head = lines.next().unwrap_or_default().trim().to_owned();
    let tail = s
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('|') && !l.contains(" | "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    if tail.is_empty() || tail == head {
        head
    } else {
        format!("{head}: {tail}")
    }
}
