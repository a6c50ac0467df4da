//! Vouch credentials: a voucher's signed statement that binds a device DID,
//! the device's key, a trust factor and an expiry (docs/PROTOCOL.md
//! section 6).
//!
//! On the wire a packet carries `vouched_by` = the voucher's DID and
//! `vouch_signature` = `BASE64(statement) "." BASE64(signature)`, where the
//! statement is the canonical compact JSON of
//! `{"device_did", "device_key", "expires", "factor", "type": "tibet.vouch.v1", "voucher_did"}`
//! and the signature is the voucher's Ed25519 signature of those bytes. A
//! node that pins the voucher can check the statement without having seen
//! the device; the packet itself must be signed by the device key it names.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;
use serde_json::{Map, Value};

use super::keys::{Keypair, PublicKey};
use super::pins::PinStore;
use super::signing::{
    canonical_json, parse_signature, signature_text, verify_bytes, verify_packet,
};
use crate::packet::PingPacket;
use crate::time::Timestamp;

/// The statement's `type`.
pub const CREDENTIAL_TYPE: &str = "tibet.vouch.v1";
/// Longest `vouch_signature` text accepted.
pub const MAX_CREDENTIAL_TEXT: usize = 2048;

/// A vouch statement; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct VouchCredential {
    /// Who vouches.
    pub voucher_did: String,
    /// For whom.
    pub device_did: String,
    /// The key the device signs with.
    pub device_key: PublicKey,
    /// Trust factor in `0.0..=1.0`: the device gets voucher trust x factor.
    pub factor: f64,
    /// Expiry, Unix seconds (UTC).
    pub expires: i64,
}

/// Why a vouch credential counts as absent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Not `BASE64.BASE64`, too long, or the statement is not the canonical form.
    #[error("malformed vouch credential")]
    Malformed,
    /// The voucher's signature does not verify.
    #[error("vouch signature does not verify")]
    BadSignature,
    /// Past its expiry.
    #[error("vouch credential expired")]
    Expired,
    /// The voucher is not pinned, so nothing can be checked.
    #[error("voucher {0} is not pinned")]
    UnknownVoucher(String),
    /// The statement names another voucher or device than the packet.
    #[error("vouch credential names another voucher or device")]
    Mismatch,
    /// The packet is not signed by the device key the statement binds.
    #[error("packet not signed by the vouched device key")]
    DeviceSignature,
}

impl VouchCredential {
    /// The canonical statement bytes that the voucher signs.
    pub fn statement(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("device_did".into(), Value::from(self.device_did.clone()));
        m.insert(
            "device_key".into(),
            Value::from(self.device_key.to_base64()),
        );
        m.insert("expires".into(), Value::from(self.expires));
        m.insert("factor".into(), Value::from(self.factor));
        m.insert("type".into(), Value::from(CREDENTIAL_TYPE));
        m.insert("voucher_did".into(), Value::from(self.voucher_did.clone()));
        canonical_json(&Value::Object(m))
    }

    /// Signs the statement with the voucher's key: the `vouch_signature` text.
    pub fn issue(&self, voucher: &Keypair) -> String {
        let statement = self.statement();
        let sig = voucher.signing_key().sign(&statement);
        format!("{}.{}", STANDARD.encode(&statement), signature_text(&sig))
    }

    /// Parses and checks a `vouch_signature` text against the voucher's key
    /// and `now`.
    pub fn verify(
        text: &str,
        voucher: &PublicKey,
        now: Timestamp,
    ) -> Result<Self, CredentialError> {
        if text.len() > MAX_CREDENTIAL_TEXT {
            return Err(CredentialError::Malformed);
        }
        let (statement, sig) = text.split_once('.').ok_or(CredentialError::Malformed)?;
        let statement = STANDARD
            .decode(statement)
            .map_err(|_| CredentialError::Malformed)?;
        let sig = parse_signature(sig).map_err(|_| CredentialError::Malformed)?;
        verify_bytes(&statement, &sig, voucher).map_err(|_| CredentialError::BadSignature)?;
        let cred = Self::from_statement(&statement).ok_or(CredentialError::Malformed)?;
        if now.as_micros() / 1_000_000 >= cred.expires {
            return Err(CredentialError::Expired);
        }
        Ok(cred)
    }

    fn from_statement(bytes: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        let m = v.as_object()?;
        if m.len() != 6 || m.get("type")?.as_str()? != CREDENTIAL_TYPE {
            return None;
        }
        let factor = m.get("factor")?.as_f64()?;
        if !(0.0..=1.0).contains(&factor) {
            return None;
        }
        let cred = VouchCredential {
            voucher_did: m.get("voucher_did")?.as_str()?.to_owned(),
            device_did: m.get("device_did")?.as_str()?.to_owned(),
            device_key: PublicKey::parse(m.get("device_key")?.as_str()?).ok()?,
            factor,
            expires: m.get("expires")?.as_i64()?,
        };
        // One statement, one spelling: only the canonical bytes are accepted.
        (cred.statement() == bytes).then_some(cred)
    }
}

/// The vouch a packet presents, checked: `Ok(None)` when it names no
/// voucher. The voucher must be pinned, the statement must name the packet's
/// `vouched_by` and `source_did`, be unexpired at `now`, and the packet must
/// be signed by the device key it binds. Any failure counts as no vouch.
pub fn verify_packet_vouch(
    packet: &PingPacket,
    pins: &PinStore,
    now: Timestamp,
) -> Result<Option<VouchCredential>, CredentialError> {
    let (Some(voucher_did), Some(text)) = (&packet.vouched_by, &packet.vouch_signature) else {
        return Ok(None);
    };
    let voucher = pins
        .get(voucher_did)
        .ok_or_else(|| CredentialError::UnknownVoucher(voucher_did.clone()))?;
    let cred = VouchCredential::verify(text, voucher, now)?;
    if cred.voucher_did != *voucher_did || cred.device_did != packet.source_did {
        return Err(CredentialError::Mismatch);
    }
    verify_packet(packet, &cred.device_key).map_err(|_| CredentialError::DeviceSignature)?;
    Ok(Some(cred))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::sign_packet;

    const NOW: i64 = 1_795_000_000;

    fn setup() -> (Keypair, Keypair, PinStore, VouchCredential) {
        let hub = Keypair::from_seed(&[10; 32]);
        let device = Keypair::from_seed(&[11; 32]);
        let mut pins = PinStore::new(8);
        pins.pin_first_use("jis:home:hub", hub.public());
        let cred = VouchCredential {
            voucher_did: "jis:home:hub".into(),
            device_did: "jis:home:lamp".into(),
            device_key: device.public(),
            factor: 0.7,
            expires: NOW + 3600,
        };
        (hub, device, pins, cred)
    }

    fn packet(device: &Keypair, vouch: String) -> PingPacket {
        let mut p = PingPacket::new(
            "ping_01",
            "jis:home:lamp",
            "jis:home:door",
            "light.on",
            "evening",
        );
        p.vouched_by = Some("jis:home:hub".into());
        p.vouch_signature = Some(vouch);
        sign_packet(&mut p, device);
        p
    }

    #[test]
    fn valid_vouch_verifies_without_knowing_the_device() {
        let (hub, device, pins, cred) = setup();
        let p = packet(&device, cred.issue(&hub));
        let got = verify_packet_vouch(&p, &pins, Timestamp::from_secs(NOW)).unwrap();
        assert_eq!(got, Some(cred));
        assert!(
            String::from_utf8(got.unwrap().statement())
                .unwrap()
                .contains(r#""factor":0.7"#)
        );
    }

    #[test]
    fn expired_forged_and_wrong_voucher_key_count_as_absent() {
        let (hub, device, pins, cred) = setup();
        let now = Timestamp::from_secs(NOW);
        let expired = VouchCredential {
            expires: NOW,
            ..cred.clone()
        };
        assert_eq!(
            verify_packet_vouch(&packet(&device, expired.issue(&hub)), &pins, now),
            Err(CredentialError::Expired)
        );
        // Forged: the device raises its own factor, keeping the hub's signature.
        let good = cred.issue(&hub);
        let (_, sig) = good.split_once('.').unwrap();
        let raised = VouchCredential {
            factor: 1.0,
            ..cred.clone()
        };
        let forged = format!("{}.{sig}", STANDARD.encode(raised.statement()));
        assert_eq!(
            verify_packet_vouch(&packet(&device, forged), &pins, now),
            Err(CredentialError::BadSignature)
        );
        // Signed by a key that is not the pinned voucher's.
        let impostor = Keypair::from_seed(&[12; 32]);
        assert_eq!(
            verify_packet_vouch(&packet(&device, cred.issue(&impostor)), &pins, now),
            Err(CredentialError::BadSignature)
        );
        // A stolen credential used by another key holder.
        let thief = Keypair::from_seed(&[13; 32]);
        assert_eq!(
            verify_packet_vouch(&packet(&thief, good.clone()), &pins, now),
            Err(CredentialError::DeviceSignature)
        );
        // Unknown voucher and garbage.
        let empty = PinStore::new(1);
        assert_eq!(
            verify_packet_vouch(&packet(&device, good), &empty, now),
            Err(CredentialError::UnknownVoucher("jis:home:hub".into()))
        );
        assert_eq!(
            verify_packet_vouch(&packet(&device, "x.y".into()), &pins, now),
            Err(CredentialError::Malformed)
        );
        let unvouched = PingPacket::new("ping_02", "jis:a", "jis:b", "i", "p");
        assert_eq!(verify_packet_vouch(&unvouched, &pins, now), Ok(None));
    }
}
