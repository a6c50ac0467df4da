//! A node's settings, resolved from the config file and the flags (flags
//! win), ready to hand to the library.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::config_file::{
    AutoVouchEntry, ConfigFile, Durability, LimitsSection, RuleEntry, VouchEntry,
};
use crate::identity_flags::{IdentityFlags, IdentitySettings, default_pins_file};
use crate::parse;
use tibet_iot_cli::bind_host::BindHost;
use tibet_iot_cli::iface::MulticastIf;

/// Flags shared by every command that runs a node (`listen`, `send`, ...).
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct NetFlags {
    /// Encode outgoing frames as msgpack (incoming frames are read either way).
    #[arg(long)]
    pub(crate) msgpack: bool,
    #[command(flatten)]
    pub(crate) identity: IdentityFlags,
}

/// Flags of the commands that use discovery (`listen`, `discover`).
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct DiscoveryFlags {
    /// Discovery port (default 7151).
    #[arg(long, value_name = "PORT")]
    pub(crate) discovery_port: Option<u16>,
    /// Interface for multicast discovery: an IPv4 address of it, its name
    /// (eth0) or its index; the IPv6 group is joined on the named one
    /// (127.0.0.1 keeps discovery on loopback, IPv4 only).
    #[arg(long, value_name = "IF")]
    pub(crate) multicast_if: Option<MulticastIf>,
}

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// This node's DID.
    pub(crate) did: String,
    /// Bind address.
    pub(crate) bind: BindHost,
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
    pub(crate) multicast_if: Option<MulticastIf>,
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
    /// What the node does when the audit file cannot keep up.
    pub(crate) audit_overload: tibet_iot::AuditOverload,
    /// Control socket.
    pub(crate) control: Option<PathBuf>,
    /// Key, identity mode, pins.
    pub(crate) identity: IdentitySettings,
    /// Table capacities (`[limits]`).
    pub(crate) limits: LimitsSection,
}

impl Settings {
    /// Settings for a short-lived client node (send, discover, bench):
    /// `[::]:port` (IPv4 and IPv6), no periodic discovery.
    pub(crate) fn client(did: String, port: u16, net: &NetFlags) -> Self {
        Settings {
            did,
            bind: BindHost::ANY,
            port,
            msgpack: net.msgpack,
            discovery: false,
            discovery_port: None,
            group: None,
            multicast_if: None,
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
            audit_overload: tibet_iot::AuditOverload::default(),
            control: None,
            identity: IdentitySettings::from_flags(&net.identity),
            limits: LimitsSection::default(),
        }
    }

    /// Settings for `discover`: a client node whose first beacon goes out
    /// at start.
    pub(crate) fn discoverer(
        did: String,
        port: u16,
        net: &NetFlags,
        disc: &DiscoveryFlags,
    ) -> Self {
        let mut s = Settings::client(did, port, net);
        s.discovery = true;
        s.discovery_port = disc.discovery_port;
        s.multicast_if = disc.multicast_if.clone();
        s
    }

    /// Checks, before any socket is bound, what the library would report
    /// only as a bind failure: that the multicast interface address is on
    /// this machine. The error names the flag (or config key) to fix.
    pub(crate) fn check_interfaces(&self) -> Result<()> {
        if let Some(MulticastIf::Name(name)) = &self.multicast_if
            && let Err(e) = tibet_iot::interface_index(name)
        {
            return Err(anyhow!(
                "--multicast-if {name} (or [discovery] interface in the config): no such                  interface on this machine ({e}); give its name as `ip link` shows it, its                  index, or an IPv4 address of it"
            ));
        }
        if let Some(MulticastIf::Addr(ip)) = &self.multicast_if
            && !ip.is_unspecified()
            && let Err(e) = std::net::UdpSocket::bind((*ip, 0))
        {
            let why = if e.kind() == std::io::ErrorKind::AddrNotAvailable {
                "the address is not on this machine".to_owned()
            } else {
                e.to_string()
            };
            return Err(anyhow!(
                "--multicast-if {ip} (or [discovery] interface in the config): {why}; \
                 give the IPv4 address of a local interface (127.0.0.1 keeps discovery on loopback)"
            ));
        }
        Ok(())
    }

    /// Checks that the audit file (if any) can be appended to, so a bad
    /// `--audit` fails at start with one line, not later per token.
    pub(crate) fn check_audit_file(&self) -> Result<()> {
        if let Some((path, _)) = &self.audit {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow!("cannot create the audit directory {}: {e}", dir.display())
                })?;
            }
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .map_err(|e| anyhow!("cannot append to audit file {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Whether some sender can land in GEEL (pending review): an airlock
    /// rule names GEEL, or a trust score (given or vouched) lies in the
    /// GEEL range 0.3..0.7.
    pub(crate) fn geel_reachable(&self) -> bool {
        let geel = |t: f64| (0.3..0.7).contains(&t);
        self.rules
            .iter()
            .any(|r| r.zone.eq_ignore_ascii_case("GEEL"))
            || self.trust.iter().any(|(_, t)| geel(*t))
            || self.vouches.iter().any(|v| {
                let d = tibet_ping::VouchOptions::default();
                geel(v.my_trust.unwrap_or(d.my_trust) * v.factor.unwrap_or(d.vouch_factor))
            })
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
        let audit_overload = file
            .audit
            .as_ref()
            .and_then(|a| a.on_overload)
            .unwrap_or_default()
            .into();
        let audit = match (&flags.audit, file.audit) {
            (Some(path), section) => Some((
                path.clone(),
                section.map(|s| s.durability()).unwrap_or_default(),
            )),
            (None, Some(section)) => Some((section.file.clone(), section.durability())),
            (None, None) => None,
        };
        let secs = |v: Option<f64>| v.map(Duration::from_secs_f64);
        let mut identity_flags = flags.net.identity.clone();
        if identity_flags.state.is_none() {
            identity_flags.state = file.state.map(|s| s.dir);
        }
        let identity = IdentitySettings {
            flags: identity_flags,
            section: file.identity.clone(),
            table: file.pins.clone(),
            default_pins_file: default_pins_file(audit.as_ref().map(|(p, _)| p.as_path())),
            state: crate::identity_flags::StateUse::Node,
        };
        let discovery = !flags.no_discovery && file.discovery.enabled.unwrap_or(true);
        Ok(Settings {
            did,
            bind: flags.bind.or(file.bind).unwrap_or(BindHost::ANY),
            port: flags.port.or(file.port).unwrap_or(7150),
            msgpack: flags.net.msgpack || file.msgpack.unwrap_or(false),
            discovery,
            discovery_port: flags.disc.discovery_port.or(file.discovery.port),
            group: file.discovery.group,
            // Without discovery no multicast is sent or joined: the
            // interface is not used, so a wrong one must not stop the node.
            multicast_if: if discovery {
                flags.disc.multicast_if.clone().or(file.discovery.interface)
            } else {
                None
            },
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
            audit_overload,
            control: flags.control.clone().or(file.control),
            identity,
            limits: file.limits,
        })
    }
}

/// The flags of `listen` that configure the node.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct ListenFlags {
    /// This node's DID (e.g. jis:home:hub); required unless the config gives it.
    #[arg(long, value_name = "DID")]
    pub(crate) did: Option<String>,
    /// Address to bind, IPv4 or IPv6 (default `::`: both families; on a
    /// host without IPv6, 0.0.0.0); a link-local IPv6 address with its
    /// interface, fe80::10%eth0.
    #[arg(long, value_name = "HOST")]
    pub(crate) bind: Option<BindHost>,
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
    #[command(flatten)]
    pub(crate) disc: DiscoveryFlags,
}

impl ListenFlags {
    /// Loads the config file (if any) and merges the flags into it.
    pub(crate) fn resolve(&self) -> Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let mut file = ConfigFile::load(path)?;
                // Paths in the file are relative to the file, not to the
                // cwd; `~/` is the home directory.
                let base = path.parent().unwrap_or(std::path::Path::new("."));
                if let Some(a) = file.audit.as_mut() {
                    a.file = config_path(base, &a.file)?;
                }
                if let Some(c) = file.control.as_mut() {
                    *c = config_path(base, c)?;
                }
                if let Some(s) = file.state.as_mut() {
                    s.dir = config_path(base, &s.dir)?;
                }
                if let Some(id) = file.identity.as_mut() {
                    if let Some(k) = id.key.as_mut() {
                        *k = config_path(base, k)?;
                    }
                    if let Some(p) = id.pins_file.as_mut() {
                        *p = config_path(base, p)?;
                    }
                }
                file
            }
            None => ConfigFile::default(),
        };
        Settings::from_file_and_flags(file, self)
    }
}

/// A path from the config file at `base`: `~/...` under `$HOME`, a relative
/// path under `base`, an absolute path as it is.
fn config_path(base: &std::path::Path, p: &std::path::Path) -> Result<PathBuf> {
    if let Ok(rest) = p.strip_prefix("~") {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| anyhow!("{}: `~` needs $HOME, which is not set", p.display()))?;
        return Ok(PathBuf::from(home).join(rest));
    }
    Ok(if p.is_relative() {
        base.join(p)
    } else {
        p.to_path_buf()
    })
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
    fn a_wrong_multicast_interface_names_its_flag() {
        let flags = ListenFlags {
            did: Some("jis:a:b".into()),
            disc: DiscoveryFlags {
                multicast_if: Some(MulticastIf::Addr(Ipv4Addr::new(192, 0, 2, 1))),
                ..Default::default()
            },
            ..Default::default()
        };
        let s = Settings::from_file_and_flags(ConfigFile::default(), &flags).unwrap();
        let e = s.check_interfaces().unwrap_err().to_string();
        assert!(e.contains("--multicast-if 192.0.2.1"), "{e}");
        assert!(!e.contains("--bind"), "{e}");
        let off = ListenFlags {
            no_discovery: true,
            ..flags
        };
        let s = Settings::from_file_and_flags(ConfigFile::default(), &off).unwrap();
        assert!(s.check_interfaces().is_ok(), "unused without discovery");
    }

    #[test]
    fn config_paths() {
        let base = std::path::Path::new("/etc/tibet");
        let p = |s: &str| config_path(base, std::path::Path::new(s)).unwrap();
        assert_eq!(p("a.jsonl"), PathBuf::from("/etc/tibet/a.jsonl"));
        assert_eq!(p("/var/a.jsonl"), PathBuf::from("/var/a.jsonl"));
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            assert_eq!(p("~/x/a.jsonl"), PathBuf::from(home).join("x/a.jsonl"));
        }
    }

    #[test]
    fn geel_reachability() {
        let file = |t: &str| ConfigFile::from_toml(&format!("did = \"jis:a:b\"\n{t}")).unwrap();
        let reach = |t: &str| {
            Settings::from_file_and_flags(file(t), &ListenFlags::default())
                .unwrap()
                .geel_reachable()
        };
        assert!(!reach("[trust]\n\"jis:x:y\" = 0.9\n"));
        assert!(reach("[trust]\n\"jis:x:y\" = 0.5\n"));
        assert!(reach(
            "[[airlock_rule]]\nname = \"n\"\nzone = \"GEEL\"\nintent = \"door.*\"\n"
        ));
        assert!(reach(
            "[[vouch]]\ndids = [\"jis:x:y\"]\nfactor = 0.7\nmy_trust = 0.9\n"
        ));
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
