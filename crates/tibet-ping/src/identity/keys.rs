//! Ed25519 keys and their text forms (docs/PROTOCOL.md section 6).
//!
//! A private key is PKCS#8 PEM text, the form `openssl genpkey -algorithm
//! ed25519` writes (its file lives in [`super::store`]). A public key
//! travels as text: standard base64 of the raw 32 bytes (44 characters,
//! WireGuard style).

use alloc::string::{String, ToString};
use core::fmt;
use core::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, EncodePrivateKey, KeypairBytes, spki::der::pem::LineEnding,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

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
}
