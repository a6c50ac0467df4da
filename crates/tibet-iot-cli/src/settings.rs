//! A node's settings, resolved from the config file and the flags (flags
//! win), ready to hand to the library.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::config::{AutoVouchEntry, ConfigFile, Durability, RuleEntry, VouchEntry};
use crate::parse;

/// Flags shared by every command that runs a node (`listen`, `send`, ...).
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct NetFlags {
    /// Encode outgoing frames as msgpack (incoming frames are read either way).
    #[arg(long)]
    pub(crate) msgpack: bool,
    /// Discovery port (default 7151).
    #[arg(long, value_name = "PORT")]
    pub(crate) discovery_port: Option<u16>,
    /// IPv4 address of the interface for multicast discovery (127.0.0.1
    /// keeps discovery on loopback).
    #[arg(long, value_name = "ADDR")]
    pub(crate) multicast_if: Option<Ipv4Addr>,
}

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// This node's DID.
    pub(crate) did: String,
    /// Bind address.
    pub(crate) bind: IpAddr,
    /// Transport port (0: any free port).
    pub(crate) port: u16,
    /// msgpack frames.
    pub(crate) msgpack: bool,
    /// Run discovery (listener + periodic beacon).
    pub(crate) discovery: bool,
    /// Discovery port.
    pub(crate) discovery_port: Option<u16>,
    /// Multicast group.
    pub(crate) group: Option<Ipv4Addr>,
    /// Multicast interface.
    pub(crate) multicast_if: Option<Ipv4Addr>,
    /// Multicast TTL.
    pub(crate) ttl: Option<u32>,
    /// Heartbeat, discovery, cleanup intervals and peer timeout.
    pub(crate) heartbeat: Option<Duration>,
    /// Discovery beacon interval.
    pub(crate) discovery_interval: Option<Duration>,
    /// Peer cleanup interval.
    pub(crate) cleanup: Option<Duration>,
    /// Peer idle timeout.
    pub(crate) peer_timeout: Option<Duration>,
    /// Announced device type.
    pub(crate) device_type: Option<String>,
    /// Announced capabilities.
    pub(crate) capabilities: Vec<String>,
    /// Explicit trust scores.
    pub(crate) trust: Vec<(String, f64)>,
    /// Vouches this node makes.
    pub(crate) vouches: Vec<VouchEntry>,
    /// Airlock rules.
    pub(crate) rules: Vec<RuleEntry>,
    /// Auto-vouch rules.
    pub(crate) auto_vouch: Vec<AutoVouchEntry>,
    /// Audit file and durability.
    pub(crate) audit: Option<(PathBuf, Durability)>,
    /// Control socket.
    pub(crate) control: Option<PathBuf>,
}

impl Settings {
    /// Settings for a short-lived client node (send, discover, bench):
    /// `0.0.0.0:port`, no periodic discovery.
    pub(crate) fn client(did: String, port: u16, net: &NetFlags) -> Self {
        Settings {
            did,
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
            msgpack: net.msgpack,
            discovery: false,
            discovery_port: net.discovery_port,
            group: None,
            multicast_if: net.multicast_if,
            ttl: None,
            heartbeat: None,
            discovery_interval: None,
            cleanup: None,
            peer_timeout: None,
            device_type: None,
            capabilities: Vec::new(),
            trust: Vec::new(),
            vouches: Vec::new(),
            rules: Vec::new(),
            auto_vouch: Vec::new(),
            audit: None,
            control: None,
        }
    }

    /// Merges a config file with flags; flags override the file.
    pub(crate) fn from_file_and_flags(file: ConfigFile, flags: &ListenFlags) -> Result<Self> {
        let did = match (&flags.did, &file.did) {
            (Some(d), _) => parse::did(d)?,
            (None, Some(d)) => d.clone(),
            (None, None) => {
                return Err(anyhow!(
                    "no DID given: pass --did DID or set `did` in the config file"
                ));
            }
        };
        let mut trust: Vec<(String, f64)> = file.trust.into_iter().collect();
        for entry in &flags.trust {
            let (d, s) = parse::trust_entry(entry)?;
            trust.retain(|(old, _)| *old != d);
            trust.push((d, s));
        }
        let audit = match (&flags.audit, file.audit) {
            (Some(path), section) => Some((
                path.clone(),
                section.map(|s| s.durability()).unwrap_or_default(),
            )),
            (None, Some(section)) => Some((section.file.clone(), section.durability())),
            (None, None) => None,
        };
        let secs = |v: Option<f64>| v.map(Duration::from_secs_f64);
        Ok(Settings {
            did,
            bind: flags
                .bind
                .or(file.bind)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: flags.port.or(file.port).unwrap_or(7150),
            msgpack: flags.net.msgpack || file.msgpack.unwrap_or(false),
            discovery: !flags.no_discovery && file.discovery.enabled.unwrap_or(true),
            discovery_port: flags.net.discovery_port.or(file.discovery.port),
            group: file.discovery.group,
            multicast_if: flags.net.multicast_if.or(file.discovery.interface),
            ttl: file.discovery.ttl,
            heartbeat: secs(file.intervals.heartbeat),
            discovery_interval: secs(file.intervals.discovery),
            cleanup: secs(file.intervals.peer_cleanup),
            peer_timeout: secs(file.intervals.peer_timeout),
            device_type: flags.device_type.clone().or(file.announce.device_type),
            capabilities: if flags.capability.is_empty() {
                file.announce.capabilities
            } else {
                flags.capability.clone()
            },
            trust,
            vouches: file.vouches,
            rules: file.airlock_rules,
            auto_vouch: file.auto_vouch,
            audit,
            control: flags.control.clone().or(file.control),
        })
    }
}

/// The flags of `listen` that configure the node.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct ListenFlags {
    /// This node's DID (e.g. jis:home:hub); required unless the config gives it.
    #[arg(long, value_name = "DID")]
    pub(crate) did: Option<String>,
    /// Address to bind (default 0.0.0.0).
    #[arg(long, value_name = "HOST")]
    pub(crate) bind: Option<IpAddr>,
    /// UDP port (default 7150; 0 picks a free one).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Trust a sender: DID=SCORE with SCORE in 0..1 (repeatable).
    #[arg(long, value_name = "DID=SCORE")]
    pub(crate) trust: Vec<String>,
    /// TOML config file (see examples/hub.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Record provenance tokens (JSONL) to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) audit: Option<PathBuf>,
    /// Local control socket for `tibet-iot pending` (mode 0600).
    #[arg(long, value_name = "SOCKET")]
    pub(crate) control: Option<PathBuf>,
    /// Do not listen for or answer discovery beacons.
    #[arg(long)]
    pub(crate) no_discovery: bool,
    /// Device type announced to discovery (default "generic").
    #[arg(long, value_name = "TYPE")]
    pub(crate) device_type: Option<String>,
    /// A capability announced to discovery (repeatable).
    #[arg(long, value_name = "CAP")]
    pub(crate) capability: Vec<String>,
    #[command(flatten)]
    pub(crate) net: NetFlags,
}

impl ListenFlags {
    /// Loads the config file (if any) and merges the flags into it.
    pub(crate) fn resolve(&self) -> Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let mut file = ConfigFile::load(path)?;
                // Paths in the file are relative to the file, not to the cwd.
                let base = path.parent().unwrap_or(std::path::Path::new("."));
                if let Some(a) = file.audit.as_mut()
                    && a.file.is_relative()
                {
                    a.file = base.join(&a.file);
                }
                if let Some(c) = file.control.as_mut()
                    && c.is_relative()
                {
                    *c = base.join(&*c);
                }
                file
            }
            None => ConfigFile::default(),
        };
        Settings::from_file_and_flags(file, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let file = ConfigFile::from_toml(
            "did = \"jis:home:hub\"\nport = 7000\n[trust]\n\"jis:a:b\" = 0.2\n\"jis:c:d\" = 0.8\n",
        )
        .unwrap();
        let flags = ListenFlags {
            port: Some(0),
            trust: vec!["jis:a:b=0.9".into()],
            ..Default::default()
        };
        let s = Settings::from_file_and_flags(file, &flags).unwrap();
        assert_eq!(s.did, "jis:home:hub");
        assert_eq!(s.port, 0);
        assert!(s.trust.contains(&("jis:a:b".into(), 0.9)));
        assert!(s.trust.contains(&("jis:c:d".into(), 0.8)));
        assert_eq!(s.trust.len(), 2);
    }

    #[test]
    fn a_did_is_required() {
        let e = Settings::from_file_and_flags(ConfigFile::default(), &ListenFlags::default());
        assert!(e.unwrap_err().to_string().contains("--did"));
        let flags = ListenFlags {
            did: Some("nope".into()),
            ..Default::default()
        };
        assert!(Settings::from_file_and_flags(ConfigFile::default(), &flags).is_err());
    }
}
