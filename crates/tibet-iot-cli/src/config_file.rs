//! The node configuration file (TOML) and its merge with command-line flags.
//!
//! Every table rejects unknown keys (`deny_unknown_fields`), and values are
//! checked after parsing so that each error names the key it is about. The
//! documented example is `examples/hub.toml` at the repository root.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use std::net::SocketAddr;

use serde::Deserialize;

use crate::validate;

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A file whose content is refused (the cause is the source).
    #[error("config file {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with its text.
        #[source]
        source: Box<ConfigError>,
    },
    /// Not TOML, or not this schema: an unknown key, a missing key, a value
    /// of the wrong type or range. toml's message, on one line.
    #[error("{0}")]
    Syntax(String),
    /// A key whose value is well-formed but fails a check.
    #[error("key `{key}`: {message}")]
    Value {
        /// The key, e.g. `trust."jis:a:b"` or `vouch[0].dids`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// A [`ConfigError::Value`].
fn bad(key: impl Into<String>, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Value {
        key: key.into(),
        message: message.to_string(),
    }
}

/// The whole file. Only `did` is needed when no flag gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// This node's DID.
    pub did: Option<String>,
    /// Address to bind the transport socket to (default `::`, both
    /// families; a link-local IPv6 address with its interface,
    /// `fe80::10%eth0`).
    pub bind: Option<crate::bind_host::BindHost>,
    /// Transport port (default 7150).
    pub port: Option<u16>,
    /// Encode outgoing frames as msgpack instead of JSON.
    pub msgpack: Option<bool>,
    /// Path of the local control socket for `tibet-iot pending`.
    pub control: Option<PathBuf>,
    /// Multicast discovery.
    #[serde(default)]
    pub discovery: DiscoverySection,
    /// Background loop intervals.
    #[serde(default)]
    pub intervals: IntervalsSection,
    /// What this node says about itself in discovery.
    #[serde(default)]
    pub announce: AnnounceSection,
    /// Trust scores: `"jis:home:sensor" = 0.9`.
    #[serde(default)]
    pub trust: BTreeMap<String, f64>,
    /// Vouches this node makes for other devices.
    #[serde(default, rename = "vouch")]
    pub vouches: Vec<VouchEntry>,
    /// Airlock rules, checked before the trust thresholds.
    #[serde(default, rename = "airlock_rule")]
    pub airlock_rules: Vec<RuleEntry>,
    /// Auto-vouch rules for discovery beacons.
    #[serde(default, rename = "auto_vouch")]
    pub auto_vouch: Vec<AutoVouchEntry>,
    /// Provenance recording.
    pub audit: Option<AuditSection>,
    /// Metrics endpoint (docs/OPERATIONS.md).
    pub metrics: Option<MetricsSection>,
    /// MQTT fleet bridge (docs/FLEETS.md).
    pub mqtt: Option<MqttSection>,
    /// Key, identity mode and pins file (docs/PROTOCOL.md section 6).
    pub identity: Option<IdentitySection>,
    /// The state directory (docs/OPERATIONS.md).
    pub state: Option<StateSection>,
    /// Pinned DIDs: `"jis:home:sensor" = "PUBKEY"` (base64 of the raw key).
    #[serde(default)]
    pub pins: BTreeMap<String, String>,
    /// Table capacities, for hubs larger than the defaults allow.
    #[serde(default)]
    pub limits: LimitsSection,
}

/// `[limits]`: capacities of the node's tables. Unset keys keep the
/// library's defaults; every table refuses (and counts) beyond its capacity.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Peers tracked (default 4,096): a hub needs one per device.
    pub peers: Option<u64>,
    /// Nonces held for replay protection (default 3,200,000, about 30 bytes
    /// each): sustained pings per second x 30 s must fit, or trusted pings
    /// are refused (fail closed) until entries expire.
    pub nonce_capacity: Option<u64>,
    /// Learned routes (default 2,048).
    pub routes: Option<u64>,
    /// Recent answers kept for retransmitted duplicates (default 8,192).
    pub response_cache: Option<u64>,
    /// Bytes waiting for the socket (default 16 MiB).
    pub send_queue_bytes: Option<u64>,
}

impl LimitsSection {
    /// Each key with the range it must be in.
    fn entries(&self) -> [(&'static str, Option<u64>, u64); 5] {
        [
            ("limits.peers", self.peers, 1_000_000),
            ("limits.nonce_capacity", self.nonce_capacity, 100_000_000),
            ("limits.routes", self.routes, 1_000_000),
            ("limits.response_cache", self.response_cache, 10_000_000),
            ("limits.send_queue_bytes", self.send_queue_bytes, 1 << 32),
        ]
    }
}

/// `[discovery]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySection {
    /// Listen for and answer discovery beacons (default true).
    pub enabled: Option<bool>,
    /// Discovery port (default 7151).
    pub port: Option<u16>,
    /// Multicast group (default 224.0.71.50).
    pub group: Option<Ipv4Addr>,
    /// Interface used for multicast: an IPv4 address of it, its name or
    /// its index (default: the system's choice).
    pub interface: Option<crate::iface::MulticastIf>,
    /// Multicast TTL (default 2).
    pub ttl: Option<u32>,
}

/// `[intervals]`, in seconds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalsSection {
    /// Heartbeat to known peers (default 30).
    pub heartbeat: Option<f64>,
    /// Discovery beacon (default 60).
    pub discovery: Option<f64>,
    /// Peer cleanup (default 45).
    pub peer_cleanup: Option<f64>,
    /// A peer idle longer than this is pruned (default 120).
    pub peer_timeout: Option<f64>,
}

/// `[announce]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnounceSection {
    /// Device type, e.g. `hub`, `sensor`.
    pub device_type: Option<String>,
    /// Capabilities, e.g. `temperature.read`.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// `[[vouch]]`: this node vouches for `dids`; their trust becomes
/// `my_trust x factor` (0.9 x 0.7 = 0.63 by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VouchEntry {
    /// The vouched DIDs.
    pub dids: Vec<String>,
    /// Vouch factor (default 0.7).
    pub factor: Option<f64>,
    /// The voucher's own trust (default 0.9).
    pub my_trust: Option<f64>,
    /// Pod the devices belong to.
    pub pod_id: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

/// `[[airlock_rule]]`: a pattern and the zone it decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    /// Rule name, reported as `applied_rule`.
    pub name: String,
    /// Zone: `GROEN`, `GEEL` or `ROOD`.
    pub zone: String,
    /// Higher is checked first (default 50).
    pub priority: Option<i64>,
    /// Glob on the source DID.
    pub source_did: Option<String>,
    /// Glob on the intent.
    pub intent: Option<String>,
    /// Exact pod id.
    pub pod_id: Option<String>,
    /// Exact ping type.
    pub ping_type: Option<String>,
    /// Minimum sender trust.
    pub min_trust: Option<f64>,
}

/// `[[auto_vouch]]`: beacons matching every given condition are vouched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoVouchEntry {
    /// Rule name.
    pub name: String,
    /// Exact device type.
    pub device_type: Option<String>,
    /// Capabilities the device must announce (subset).
    #[serde(default)]
    pub required_capabilities: Vec<String>,
    /// Regex on the source DID.
    pub source_pattern: Option<String>,
    /// Pod to assign.
    pub pod_id: Option<String>,
}

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// JSONL token file, appended to.
    pub file: PathBuf,
    /// When records are forced to disk: `group_commit` (default) or `every_token`.
    pub durability: Option<DurabilityKind>,
    /// For `group_commit`: the longest time a record stays unsynced (default 100 ms).
    pub group_commit_ms: Option<u64>,
    /// When the audit file cannot keep up: `block` (default: the node reads
    /// less and answers later, never without a token) or `drop` (answers
    /// go, tokens that do not fit are dropped, counted and warned about).
    pub on_overload: Option<OverloadKind>,
}

/// `[audit] on_overload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverloadKind {
    /// Every answer has its token; the node slows down instead.
    #[default]
    Block,
    /// Lossy: answers never wait; tokens that do not fit are dropped.
    Drop,
}

impl From<OverloadKind> for tibet_iot::AuditOverload {
    fn from(k: OverloadKind) -> Self {
        match k {
            OverloadKind::Block => tibet_iot::AuditOverload::Block,
            OverloadKind::Drop => tibet_iot::AuditOverload::Drop,
        }
    }
}

/// How hard the audit file is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityKind {
    /// fsync at most every `group_commit_ms`; a process crash loses nothing,
    /// a power loss at most that interval.
    #[default]
    GroupCommit,
    /// fsync after every record.
    EveryToken,
}

/// The resolved durability policy: the store's own type.
pub use tibet_core::Durability;

/// `[identity]` of the config file.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// Private key file (relative to the config file).
    pub key: Option<PathBuf>,
    /// `off`, `prefer` or `require`.
    pub mode: Option<String>,
    /// Where the node keeps the DIDs it pinned by trust on first use
    /// (default: `pins` next to the audit file, none without one).
    pub pins_file: Option<PathBuf>,
}

/// `[state]` of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// The node's state directory (relative to the config file); `--state`
    /// wins over it.
    pub dir: PathBuf,
}

/// `[mqtt]` in the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// Broker URL: `mqtt://[USER:PASSWORD@]HOST[:PORT][?client_id=ID]` (1883)
    /// or `mqtts://...` (8883, TLS).
    pub url: Option<String>,
    /// Client id (default: `tibet-` and the node's DID with `:` as `-`).
    pub client_id: Option<String>,
    /// Use TLS (implied by `mqtts://` and by `ca_file`).
    pub tls: Option<bool>,
    /// PEM file of the CA that signed the broker's certificate (turns TLS on).
    pub ca_file: Option<PathBuf>,
    /// PEM file of this node's client certificate (chain), for a broker
    /// that authenticates clients by certificate; with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM file of that certificate's private key (mode 600).
    pub key_file: Option<PathBuf>,
    /// File whose first line is `USERNAME:PASSWORD`.
    pub credentials_file: Option<PathBuf>,
    /// Topic prefix (default `tibet/v1`).
    pub topic_prefix: Option<String>,
    /// Publish decided pings to `PREFIX/events/<node DID>` (default false).
    pub publish_events: Option<bool>,
}

/// `[metrics]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address of the metrics endpoint, e.g. `"127.0.0.1:9150"`.
    pub listen: Option<SocketAddr>,
}

impl AuditSection {
    /// The policy this section asks for.
    pub fn durability(&self) -> Durability {
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
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Parses and checks TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cfg: ConfigFile = toml::from_str(text).map_err(|e| {
            // toml's message names the key; keep it on one line.
            ConfigError::Syntax(one_line(&e.to_string()))
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(d) = &self.did {
            validate::did(d).map_err(|e| bad("did", e))?;
        }
        for (key, value, max) in self.limits.entries() {
            if let Some(v) = value
                && !(1..=max).contains(&v)
            {
                return Err(bad(key, format!("{v} must be between 1 and {max}")));
            }
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
                return Err(bad(
                    key,
                    format!("{v} must be a positive number of seconds"),
                ));
            }
        }
        if let Some(g) = self.discovery.group
            && !g.is_multicast()
        {
            return Err(bad(
                "discovery.group",
                format!("{g} is not a multicast address"),
            ));
        }
        if let Some(ttl) = self.discovery.ttl
            && (ttl == 0 || ttl > 255)
        {
            return Err(bad(
                "discovery.ttl",
                format!("{ttl} must be within 1..=255"),
            ));
        }
        for (did, score) in &self.trust {
            let key = format!("trust.\"{did}\"");
            validate::did(did).map_err(|e| bad(&*key, e))?;
            validate::score(*score).map_err(|e| bad(&*key, e))?;
        }
        for (i, v) in self.vouches.iter().enumerate() {
            if v.dids.is_empty() {
                return Err(bad(
                    format!("vouch[{i}].dids"),
                    "must name at least one DID",
                ));
            }
            for d in &v.dids {
                validate::did(d).map_err(|e| bad(format!("vouch[{i}].dids"), e))?;
            }
            for (k, s) in [("factor", v.factor), ("my_trust", v.my_trust)] {
                if let Some(s) = s {
                    validate::score(s).map_err(|e| bad(format!("vouch[{i}].{k}"), e))?;
                }
            }
        }
        for (i, r) in self.airlock_rules.iter().enumerate() {
            if !matches!(r.zone.as_str(), "GROEN" | "GEEL" | "ROOD") {
                return Err(bad(
                    format!("airlock_rule[{i}].zone"),
                    format!("'{}' is not one of GROEN, GEEL, ROOD", r.zone),
                ));
            }
            if let Some(t) = &r.ping_type {
                t.parse::<tibet_ping::PingType>()
                    .map_err(|e| bad(format!("airlock_rule[{i}].ping_type"), e))?;
            }
            if let Some(m) = r.min_trust {
                validate::score(m).map_err(|e| bad(format!("airlock_rule[{i}].min_trust"), e))?;
            }
        }
        if let Some(a) = &self.audit {
            if a.group_commit_ms == Some(0) {
                return Err(bad("audit.group_commit_ms", "must be at least 1"));
            }
            if a.group_commit_ms.is_some() && a.durability == Some(DurabilityKind::EveryToken) {
                return Err(bad(
                    "audit.group_commit_ms",
                    "only applies to durability = \"group_commit\"",
                ));
            }
        }
        for (i, a) in self.auto_vouch.iter().enumerate() {
            if let Some(p) = &a.source_pattern {
                check_regex(p).map_err(|e| bad(format!("auto_vouch[{i}].source_pattern"), e))?;
            }
        }
        Ok(())
    }
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
