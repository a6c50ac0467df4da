//! Ed25519 key files and public key text (docs/PROTOCOL.md section 6).
//!
//! A private key file is PKCS#8 PEM, the form `openssl genpkey -algorithm
//! ed25519` writes. It is created with mode 0600 and never overwritten; a
//! key file that group or others can read is refused on load, naming the
//! file. A public key travels as text: standard base64 of the raw 32 bytes
//! (44 characters, WireGuard style).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, EncodePrivateKey, KeypairBytes, spki::der::pem::LineEnding,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// Longest key file read (a PKCS#8 PEM Ed25519 key is about 120 bytes).
pub const MAX_KEY_FILE: u64 = 16 * 1024;

/// An Ed25519 public key: what a DID is pinned to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// Public key text that is not standard base64 of a valid 32-byte Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// Not standard base64 (with padding).
    #[error("public key is not standard base64")]
    Base64,
    /// Decodes, but not to 32 bytes.
    #[error("public key is {0} bytes, expected 32")]
    Length(usize),
    /// 32 bytes that are not a point on the curve, or a point of small order.
    #[error("public key is not a valid Ed25519 point")]
    Point,
}

impl PublicKey {
    /// Parses the 44-character base64 text.
    pub fn parse(text: &str) -> Result<Self, PublicKeyError> {
        // 32 bytes are 44 base64 characters; refuse long input before decoding.
        if text.len() != 44 {
            return match STANDARD.decode(text) {
                Ok(raw) => Err(PublicKeyError::Length(raw.len())),
                Err(_) => Err(PublicKeyError::Base64),
            };
        }
        // 44 characters decode to at most 33 bytes.
        let mut buf = [0u8; 36];
        match STANDARD.decode_slice(text, &mut buf) {
            Ok(32) => {
                let mut raw = [0u8; 32];
                raw.copy_from_slice(&buf[..32]);
                Self::from_bytes(&raw)
            }
            Ok(n) => Err(PublicKeyError::Length(n)),
            Err(_) => Err(PublicKeyError::Base64),
        }
    }

    /// From the raw 32 bytes; points of small order (weak keys) are refused.
    pub fn from_bytes(raw: &[u8; 32]) -> Result<Self, PublicKeyError> {
        match VerifyingKey::from_bytes(raw) {
            Ok(k) if !k.is_weak() => Ok(PublicKey(k)),
            _ => Err(PublicKeyError::Point),
        }
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The standard base64 text (44 characters).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.as_bytes())
    }

    /// Hex SHA-256 of the raw key: a beacon's `public_key_hash`.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(self.as_bytes()))
    }

    /// The `ed25519-dalek` key, for verification.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl From<VerifyingKey> for PublicKey {
    fn from(k: VerifyingKey) -> Self {
        PublicKey(k)
    }
}

impl FromStr for PublicKey {
    type Err = PublicKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicKey::parse(s)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// A node's Ed25519 private key. Its `Debug` never prints the secret.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair(public {})", self.public())
    }
}

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

impl Keypair {
    /// A fresh key from `rng` (a cryptographic RNG: the OS one in production).
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Keypair(SigningKey::generate(rng))
    }

    /// From a 32-byte seed (test vectors, fuzzing).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Keypair(SigningKey::from_bytes(seed))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The `ed25519-dalek` key, for signing.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }

    /// Parses PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(text: &str) -> Option<Self> {
        SigningKey::from_pkcs8_pem(text).ok().map(Keypair)
    }

    /// The PKCS#8 PEM text, v1 without the public key: byte for byte the form
    /// `openssl genpkey -algorithm ed25519` writes (some OpenSSL 3 releases
    /// cannot read the v2 form that carries the public key).
    pub fn to_pem(&self) -> String {
        let bytes = KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        };
        // Encoding 32 key bytes cannot fail.
        bytes
            .to_pkcs8_pem(LineEnding::LF)
            .map(|z| z.to_string())
            .unwrap_or_default()
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_text_round_trips_and_rejects_bad_input() {
        let key = Keypair::from_seed(&[7; 32]).public();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(PublicKey::parse(&text), Ok(key));
        assert_eq!(PublicKey::parse("not base64!"), Err(PublicKeyError::Base64));
        // The identity point (small order) is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(PublicKeyError::Point));
        assert_eq!(PublicKey::parse("AAAA"), Err(PublicKeyError::Length(3)));
        assert_eq!(
            PublicKey::parse(&STANDARD.encode([1u8; 33])),
            Err(PublicKeyError::Length(33))
        );
        let mut bad = text.clone();
        bad.replace_range(0..1, "*");
        assert_eq!(PublicKey::parse(&bad), Err(PublicKeyError::Base64));
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
}
