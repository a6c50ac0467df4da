//! Key and pin files: the only I/O of the identity layer, built with the
//! `std` feature (docs/PROTOCOL.md section 6).
//!
//! A private key file holds [`Keypair::to_pem`]'s text. It is created with
//! mode 0600 and never overwritten; a key file that group or others can
//! read is refused on load, naming the file. A pin file holds
//! [`PinStore::to_text`]'s text and is written atomically: a temporary file
//! in the same directory, fsync, rename, fsync of the directory.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::keys::Keypair;
use super::pins::{PinLineError, PinStore};

/// Longest key file read (a PKCS#8 PEM Ed25519 key is about 120 bytes).
pub const MAX_KEY_FILE: u64 = 16 * 1024;

/// Longest pin file read.
pub const MAX_PIN_FILE: u64 = 4 * 1024 * 1024;

/// Why a key file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Opening, reading or writing failed.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `save` found the file already there; it never overwrites.
    #[error("key file {} already exists; not overwriting it", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Group or others may read the file (mode shown in octal).
    #[error("key file {} is readable by group or others (mode {mode:o}); run chmod 600 on it", path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than [`MAX_KEY_FILE`].
    #[error("key file {} is too large to be a key", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not a PKCS#8 PEM Ed25519 private key.
    #[error("key file {} is not a PKCS#8 PEM Ed25519 private key", path.display())]
    Format {
        /// The file.
        path: PathBuf,
    },
}

/// Why a pin file could not be loaded or saved. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinFileError {
    /// Reading or writing failed.
    #[error("pin file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Larger than [`MAX_PIN_FILE`].
    #[error("pin file {} is larger than {MAX_PIN_FILE} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A line is malformed.
    #[error("pin file {} line {line}: {source}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        #[source]
        source: PinLineError,
    },
}

impl Keypair {
    /// Reads a key file, refusing one that group or others can read.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        if meta.len() > MAX_KEY_FILE {
            return Err(KeyFileError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = fs::read_to_string(path).map_err(io)?;
        Keypair::from_pem(&text).ok_or_else(|| KeyFileError::Format {
            path: path.to_owned(),
        })
    }

    /// Writes the key as a new file with mode 0600; never overwrites.
    pub fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: path.to_owned(),
                }
            } else {
                KeyFileError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        file.write_all(self.to_pem().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| KeyFileError::Io {
                path: path.to_owned(),
                source,
            })
    }
}

impl PinStore {
    /// Loads a pin file; a missing file is an empty store.
    pub fn load(path: &Path, capacity: usize) -> Result<Self, PinFileError> {
        let io = |source| PinFileError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PinStore::new(capacity)),
            Err(e) => return Err(io(e)),
        };
        if meta.len() > MAX_PIN_FILE {
            return Err(PinFileError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = fs::read_to_string(path).map_err(io)?;
        PinStore::parse(&text, capacity).map_err(|(line, source)| PinFileError::Line {
            path: path.to_owned(),
            line,
            source,
        })
    }

    /// Writes the pin file atomically: temp file, fsync, rename, fsync of the directory.
    pub fn save(&self, path: &Path) -> Result<(), PinFileError> {
        let io = |source| PinFileError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| io(io::Error::new(io::ErrorKind::InvalidInput, "no file name")))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(self.to_text().as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            fs::File::open(&dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PublicKey;

    fn key(i: u8) -> PublicKey {
        Keypair::from_seed(&[i; 32]).public()
    }

    #[test]
    fn save_load_mode_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = Keypair::from_seed(&[9; 32]);
        key.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert_eq!(Keypair::load(&path).unwrap().public(), key.public());
        let other = Keypair::from_seed(&[1; 32]);
        assert!(matches!(
            other.save(&path),
            Err(KeyFileError::Exists { .. })
        ));
        assert_eq!(Keypair::load(&path).unwrap().public(), key.public());
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_key_is_refused_naming_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("open.key");
        Keypair::from_seed(&[3; 32]).save(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = Keypair::load(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Permissions { mode: 0o640, .. }));
        assert!(err.to_string().contains("open.key"), "{err}");
    }

    #[test]
    fn garbage_file_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.key");
        fs::write(&path, "hello").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(
            Keypair::load(&path),
            Err(KeyFileError::Format { .. })
        ));
        assert!(matches!(
            Keypair::load(&dir.path().join("missing")),
            Err(KeyFileError::Io { .. })
        ));
    }

    #[test]
    fn file_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins");
        assert!(PinStore::load(&path, 8).unwrap().is_empty());
        let mut pins = PinStore::new(8);
        pins.pin_first_use("jis:home:hub", key(1));
        pins.pin_first_use("jis:home:sensor", key(2));
        pins.save(&path).unwrap();
        let back = PinStore::load(&path, 8).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            pins.iter().collect::<Vec<_>>()
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bad_lines_name_file_line_and_did() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins");
        let good = key(1).to_base64();
        let cases = [
            (format!("# c\n\njis:a {good} extra\n"), 3, "expected"),
            (format!("jis:a {good}\njis:b AAAA\n"), 2, "jis:b"),
            (format!("jis:a {good}\njis:a {}\n", key(2)), 2, "twice"),
            (
                format!("jis:a {good}\njis:b {}\njis:c {}\n", key(2), key(3)),
                3,
                "more than 2",
            ),
        ];
        for (text, line, needle) in cases {
            fs::write(&path, text).unwrap();
            let err = PinStore::load(&path, 2).unwrap_err();
            assert!(
                matches!(err, PinFileError::Line { line: l, .. } if l == line),
                "{err}"
            );
            let msg = format!(
                "{err}: {}",
                std::error::Error::source(&err)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            assert!(msg.contains(needle) && msg.contains("pins"), "{msg}");
        }
    }
}
