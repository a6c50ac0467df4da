//! Identity flags and config (`--key`, `--identity`, `--pin`, `[identity]`,
//! `[pins]`), resolved into the library's `IdentityConfig`, and the pins
//! file the node keeps (docs/PROTOCOL.md section 6).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use tibet_iot::IdentityConfig;
use tibet_ping::identity::{DEFAULT_PIN_CAPACITY, IdentityMode, Keypair, PinStore, PublicKey};

/// Identity flags shared by every command that runs a node.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct IdentityFlags {
    /// Ed25519 private key file (PKCS#8 PEM, mode 0600, see `keygen`): sign
    /// every packet, response, beacon and heartbeat sent.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// How strictly signatures are demanded: `off`, `prefer` (default:
    /// pinned DIDs must sign) or `require` (drop anything unsigned or
    /// unpinned; needs --key).
    #[arg(long, value_name = "MODE")]
    pub(crate) identity: Option<IdentityMode>,
    /// Pin a DID to its public key: DID=PUBKEY (base64, as `pubkey` prints
    /// it; repeatable).
    #[arg(long, value_name = "DID=PUBKEY")]
    pub(crate) pin: Vec<String>,
    /// State directory of this node: its key (`node.key`, created on first
    /// use) and, for `listen`, the replay horizon and a lock. Default:
    /// $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/tibet-iot/DID, else
    /// ~/.local/state/tibet-iot/DID.
    #[arg(long, value_name = "DIR")]
    pub(crate) state: Option<PathBuf>,
}

/// What a command keeps in its state directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum StateUse {
    /// Nothing (load generators, discovery probes): no key unless given.
    #[default]
    None,
    /// The node key, created on first use (`send`).
    Key,
    /// The key, the replay horizon and the lock (`listen`).
    Node,
}

/// `[identity]` of the config file.
pub(crate) use tibet_iot_cli::config_file::IdentitySection;

/// The identity part of a node's settings, as given; [`IdentitySettings::resolve`]
/// checks it and loads the files.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdentitySettings {
    /// The flags.
    pub(crate) flags: IdentityFlags,
    /// `[identity]` of the config file (paths already relative to it).
    pub(crate) section: Option<IdentitySection>,
    /// `[pins]` of the config file.
    pub(crate) table: BTreeMap<String, String>,
    /// The pins file when `[identity] pins_file` is not set.
    pub(crate) default_pins_file: Option<PathBuf>,
    /// What the command keeps in its state directory.
    pub(crate) state: StateUse,
}

impl IdentitySettings {
    /// Settings from flags alone (client commands).
    pub(crate) fn from_flags(flags: &IdentityFlags) -> Self {
        IdentitySettings {
            flags: flags.clone(),
            ..IdentitySettings::default()
        }
    }

    /// The mode: `--identity` over `[identity] mode`, default prefer.
    pub(crate) fn mode(&self) -> Result<IdentityMode> {
        match (
            self.flags.identity,
            self.section.as_ref().and_then(|s| s.mode.as_deref()),
        ) {
            (Some(m), _) => Ok(m),
            (None, Some(text)) => text
                .parse()
                .map_err(|e| anyhow!("[identity] mode in the config: {e}")),
            (None, None) => Ok(IdentityMode::Prefer),
        }
    }

    /// The pins file node `did` keeps: `[identity] pins_file`, else next to
    /// the audit file (where one may keep it, [`default_pins_file`]), else
    /// `pins` in the state directory of a node that keeps one.
    pub(crate) fn pins_file(&self, did: &str) -> Option<PathBuf> {
        self.section
            .as_ref()
            .and_then(|s| s.pins_file.clone())
            .or_else(|| self.default_pins_file.clone())
            .or_else(|| {
                (self.state == StateUse::Node)
                    .then(|| self.state_dir(did).map(|d| d.join("pins")))
                    .flatten()
            })
    }

    /// Pins given by `[pins]` and `--pin` (flags replace the file's entry).
    fn pins(&self) -> Result<Vec<(String, String)>> {
        let mut pins: Vec<(String, String)> = self
            .table
            .iter()
            .map(|(d, k)| (d.clone(), k.clone()))
            .collect();
        for entry in &self.flags.pin {
            let (did, key) = entry
                .split_once('=')
                .ok_or_else(|| anyhow!("--pin {entry:?}: expected DID=PUBKEY"))?;
            pins.retain(|(d, _)| d != did);
            pins.push((did.to_owned(), key.to_owned()));
        }
        Ok(pins)
    }

    /// The state directory of node `did` (see [`IdentityFlags::state`]);
    /// `None` when the command keeps none or no home is known.
    pub(crate) fn state_dir(&self, did: &str) -> Option<PathBuf> {
        if self.state == StateUse::None {
            return None;
        }
        self.flags.state.clone().or_else(|| default_state_dir(did))
    }

    /// Loads the key and the pins file and checks the pins: the library
    /// config, or one clear error (naming the file, or the DID of a bad pin).
    /// Without a key file, a command that keeps state signs with the key in
    /// its state directory, created on first use: signed by default.
    pub(crate) fn resolve(&self, did: &str) -> Result<IdentityConfig> {
        let mode = self.mode()?;
        let key_file = self
            .flags
            .key
            .clone()
            .or_else(|| self.section.as_ref().and_then(|s| s.key.clone()));
        let key = match (&key_file, self.state_dir(did)) {
            (Some(path), _) => Some(Keypair::load(path)?),
            (None, Some(dir)) if mode != IdentityMode::Off => Some(node_key(&dir)?),
            (None, _) => None,
        };
        if mode == IdentityMode::Require && key.is_none() {
            return Err(anyhow!(
                "--identity require needs --key FILE (or [identity] key): a node that demands \
                 signatures must sign its own packets"
            ));
        }
        let mut pins = match self.pins_file(did) {
            Some(path) => PinStore::load(&path, DEFAULT_PIN_CAPACITY)?,
            None => PinStore::new(DEFAULT_PIN_CAPACITY),
        };
        for (did, text) in self.pins()? {
            let key = PublicKey::parse(text.trim()).map_err(|e| {
                anyhow!(
                    "pin for {did}: {e} (give the 44-character base64 that `tibet-iot pubkey` prints)"
                )
            })?;
            pins.set(&did, key)
                .map_err(|e| anyhow!("pin for {did:?}: refused ({e:?})"))?;
        }
        Ok(IdentityConfig {
            mode,
            key,
            pins,
            ..IdentityConfig::default()
        })
    }
}

/// The start-up warnings of `listen`: one line per DID given trust (or a
/// vouch) without a pin. In prefer mode anyone can claim such a DID; in
/// require mode its packets are all dropped until a key is pinned.
pub(crate) fn unpinned_trust_warnings<'a>(
    mode: IdentityMode,
    pins: &PinStore,
    trusted: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    trusted
        .into_iter()
        .filter(|d| pins.get(d).is_none() && seen.insert(*d))
        .filter_map(|d| match mode {
            IdentityMode::Prefer => Some(format!(
                "{d} is trusted without a pin: anyone on the network can claim it \
                 (pin it with --pin {d}=PUBKEY, or approve the key it offers)"
            )),
            IdentityMode::Require => Some(format!(
                "{d} is trusted but has no pin: in require mode every packet claiming it is \
                 dropped until its key is pinned (--pin {d}=PUBKEY, or approve the key it offers)"
            )),
            IdentityMode::Off => None,
        })
        .collect()
}

/// The default state directory of node `did`: $STATE_DIRECTORY (set by
/// systemd's `StateDirectory=`; its first entry), else
/// $XDG_STATE_HOME/tibet-iot/DID, else ~/.local/state/tibet-iot/DID.
pub(crate) fn default_state_dir(did: &str) -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dirs) = var("STATE_DIRECTORY") {
        let first = dirs.to_string_lossy().split(':').next().map(PathBuf::from);
        return first.filter(|p| p.is_absolute());
    }
    let base = var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("tibet-iot").join(dir_name(did)))
}

/// A DID as one path component: characters outside `[A-Za-z0-9:._-]`
/// become `_`, and a name of dots alone is prefixed.
fn dir_name(did: &str) -> String {
    let name: String = did
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.chars().all(|c| c == '.') {
        format!("_{name}")
    } else {
        name
    }
}

/// The node key in `dir` (`node.key`), created (mode 0600, directory 0700)
/// on first use.
fn node_key(dir: &Path) -> Result<Keypair> {
    let path = dir.join("node.key");
    if path.exists() {
        return Ok(Keypair::load(&path)?);
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow!("cannot create the state directory {}: {e}", dir.display()))?;
    let key = Keypair::generate(&mut rand::rngs::OsRng);
    key.save(&path)?;
    tracing::info!(
        "created the node key {} (public key {})",
        path.display(),
        key.public().to_base64()
    );
    Ok(key)
}

/// The pins file next to the audit file, where that is a directory one may
/// keep pins in: the audit file is (or will be) a regular file, and its
/// directory exists and is writable. `--audit /dev/null` is not such a
/// place (pins there would be lost at reboot, reopening the first-use
/// race); the pins then go to the state directory
/// ([`IdentitySettings::pins_file`]).
pub(crate) fn default_pins_file(audit: Option<&Path>) -> Option<PathBuf> {
    let audit = audit?;
    if std::fs::metadata(audit).is_ok_and(|m| !m.is_file()) {
        return None;
    }
    let dir = audit
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let writable = std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    writable.then(|| dir.join("pins"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_go_beside_the_audit_file_only_where_they_can_be_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let audit = tmp.path().join("audit.jsonl");
        assert_eq!(
            default_pins_file(Some(&audit)),
            Some(tmp.path().join("pins"))
        );
        assert_eq!(default_pins_file(Some(Path::new("/dev/null"))), None);
        let missing = tmp.path().join("no-such-dir").join("audit.jsonl");
        assert_eq!(default_pins_file(Some(&missing)), None);
        // Then the state directory of a listener keeps them.
        let settings = IdentitySettings {
            flags: IdentityFlags {
                state: Some(tmp.path().join("state")),
                ..IdentityFlags::default()
            },
            default_pins_file: default_pins_file(Some(Path::new("/dev/null"))),
            state: StateUse::Node,
            ..IdentitySettings::default()
        };
        assert_eq!(
            settings.pins_file("jis:a"),
            Some(tmp.path().join("state").join("pins"))
        );
    }

    #[test]
    fn a_bad_pin_names_its_did() {
        let flags = IdentityFlags {
            pin: vec!["jis:home:sensor=not-a-key".into()],
            ..Default::default()
        };
        let e = IdentitySettings::from_flags(&flags)
            .resolve("jis:a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("jis:home:sensor"), "{e}");
        let flags = IdentityFlags {
            pin: vec!["no-equals".into()],
            ..Default::default()
        };
        assert!(
            IdentitySettings::from_flags(&flags)
                .resolve("jis:a")
                .is_err()
        );
    }

    #[test]
    fn require_needs_a_key_and_flags_override_the_file() {
        let flags = IdentityFlags {
            identity: Some(IdentityMode::Require),
            ..Default::default()
        };
        let section = IdentitySection {
            mode: Some("off".into()),
            ..Default::default()
        };
        let with = |flags: &IdentityFlags, section: &IdentitySection| IdentitySettings {
            flags: flags.clone(),
            section: Some(section.clone()),
            ..IdentitySettings::default()
        };
        let s = with(&flags, &section);
        assert_eq!(s.mode().unwrap(), IdentityMode::Require);
        let e = s.resolve("jis:a").unwrap_err().to_string();
        assert!(e.contains("--key"), "{e}");
        let s = with(&IdentityFlags::default(), &section);
        assert_eq!(s.mode().unwrap(), IdentityMode::Off);
        let bad = IdentitySection {
            mode: Some("strict".into()),
            ..Default::default()
        };
        assert!(
            with(&IdentityFlags::default(), &bad)
                .resolve("jis:a")
                .is_err()
        );
    }

    #[test]
    fn warnings_name_each_unpinned_trusted_did_once() {
        let mut pins = PinStore::new(8);
        pins.set("jis:a:pinned", Keypair::from_seed(&[1; 32]).public())
            .unwrap();
        let w = unpinned_trust_warnings(
            IdentityMode::Prefer,
            &pins,
            ["jis:a:pinned", "jis:b:open", "jis:b:open"],
        );
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("jis:b:open"));
        let w = unpinned_trust_warnings(IdentityMode::Require, &pins, ["jis:b:open"]);
        assert!(w[0].contains("dropped until its key is pinned"), "{w:?}");
        assert!(unpinned_trust_warnings(IdentityMode::Off, &pins, ["jis:b:open"]).is_empty());
    }
}
