//! The identity policy and the pure verification step the engine runs on
//! every received packet (docs/PROTOCOL.md section 6).

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::fmt;
use core::str::FromStr;

use super::beacon_key::{BeaconKeyError, KeyCache, beacon_key_with};
use super::keys::{PublicKey, PublicKeyError};
use super::pins::PinStore;
use super::signing::{SignatureError, verify_packet};
use crate::packet::{PingPacket, PingType};

/// How strictly a node demands signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdentityMode {
    /// Signatures are neither checked nor required.
    Off,
    /// Pinned DIDs must sign; unpinned DIDs work unsigned (Python peers interoperate).
    #[default]
    Prefer,
    /// Anything unsigned or unpinned is dropped (a signed beacon proving its
    /// key still passes, so that trust on first use can pin it).
    Require,
}

impl IdentityMode {
    /// The config and flag spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdentityMode::Off => "off",
            IdentityMode::Prefer => "prefer",
            IdentityMode::Require => "require",
        }
    }
}

impl fmt::Display for IdentityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An identity mode name that is not `off`, `prefer` or `require`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown identity mode {0:?}, expected off, prefer or require")]
pub struct UnknownIdentityMode(pub String);

impl FromStr for IdentityMode {
    type Err = UnknownIdentityMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(IdentityMode::Off),
            "prefer" => Ok(IdentityMode::Prefer),
            "require" => Ok(IdentityMode::Require),
            _ => Err(UnknownIdentityMode(s.to_owned())),
        }
    }
}

/// A packet that passed the identity step, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// [`IdentityMode::Off`]: not checked.
    NotChecked,
    /// Signed by the key its DID is pinned to.
    Verified(PublicKey),
    /// A discover beacon from an unpinned DID, signed by the key it carries:
    /// a candidate for trust on first use ([`PinStore::pin_first_use`]).
    SelfCertified(PublicKey),
    /// An unpinned DID in [`IdentityMode::Prefer`]: processed as today,
    /// its claim unproven.
    Unpinned,
}

impl Identity {
    /// Whether the packet's source is authenticated: signed by the key its
    /// DID is pinned to. Only such a packet proves who sent it (a
    /// self-certified beacon proves possession of a key, not of the DID).
    pub const fn is_verified(&self) -> bool {
        matches!(self, Identity::Verified(_))
    }
}

/// Why a packet is dropped by the identity step. The engine counts these
/// by [`IdentityRefusal::as_str`], audits once per source per interval, and
/// never lets such a packet move a peer entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityRefusal {
    /// A pinned DID sent an unsigned packet.
    Unsigned,
    /// The signature is malformed or does not verify with the pinned key
    /// (includes any field changed after signing).
    BadSignature,
    /// The packet is signed by a key it carries that differs from the pin.
    WrongKey,
    /// [`IdentityMode::Require`] and the DID is not pinned.
    UnpinnedInRequire,
    /// The packet carries a key (beacon fields) that does not prove itself.
    BadBeaconKey,
}

impl IdentityRefusal {
    /// Every reason, for counters.
    pub const ALL: &'static [IdentityRefusal] = &[
        IdentityRefusal::Unsigned,
        IdentityRefusal::BadSignature,
        IdentityRefusal::WrongKey,
        IdentityRefusal::UnpinnedInRequire,
        IdentityRefusal::BadBeaconKey,
    ];

    /// A short stable name for counters and audit records.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdentityRefusal::Unsigned => "unsigned",
            IdentityRefusal::BadSignature => "bad_signature",
            IdentityRefusal::WrongKey => "wrong_key",
            IdentityRefusal::UnpinnedInRequire => "unpinned_in_require",
            IdentityRefusal::BadBeaconKey => "bad_beacon_key",
        }
    }
}

impl fmt::Display for IdentityRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity step: decides from the packet, the pins and the mode alone.
pub fn check_identity(
    packet: &PingPacket,
    pins: &PinStore,
    mode: IdentityMode,
) -> Result<Identity, IdentityRefusal> {
    check_identity_with(packet, pins, mode, None, &mut |t| PublicKey::parse(t))
}

/// [`check_identity`] with the work already done elsewhere: `pre` is the
/// result of checking the packet's signature against a key (from a batch
/// check, [`super::verify_packets`]); it is used only if that key is the one
/// the packet's DID is pinned to now, otherwise the signature is checked
/// here. Carried beacon keys are parsed through `keys` (a
/// [`KeyCache`](super::KeyCache)). The decision is the same as
/// [`check_identity`]'s.
pub fn check_identity_cached(
    packet: &PingPacket,
    pins: &PinStore,
    mode: IdentityMode,
    pre: Option<(&PublicKey, Result<(), SignatureError>)>,
    keys: &mut KeyCache,
) -> Result<Identity, IdentityRefusal> {
    check_identity_with(packet, pins, mode, pre, &mut |t| keys.parse(t))
}

fn check_identity_with(
    packet: &PingPacket,
    pins: &PinStore,
    mode: IdentityMode,
    pre: Option<(&PublicKey, Result<(), SignatureError>)>,
    parse: &mut dyn FnMut(&str) -> Result<PublicKey, PublicKeyError>,
) -> Result<Identity, IdentityRefusal> {
    if mode == IdentityMode::Off {
        return Ok(Identity::NotChecked);
    }
    if let Some(pinned) = pins.get(&packet.source_did) {
        let verified = match pre {
            Some((key, result)) if key == pinned => result,
            _ => verify_packet(packet, pinned),
        };
        return match verified {
            Ok(()) => Ok(Identity::Verified(*pinned)),
            Err(SignatureError::Missing) => Err(IdentityRefusal::Unsigned),
            Err(SignatureError::Malformed) => Err(IdentityRefusal::BadSignature),
            Err(_) => match beacon_key_with(&packet.payload, &mut *parse) {
                Ok(Some(carried))
                    if carried != *pinned && verify_packet(packet, &carried).is_ok() =>
                {
                    Err(IdentityRefusal::WrongKey)
                }
                _ => Err(IdentityRefusal::BadSignature),
            },
        };
    }
    // Unpinned. A packet that carries a key must prove it, in any mode.
    let carried = match beacon_key_with(&packet.payload, parse) {
        Ok(k) => k,
        Err(_) => return Err(IdentityRefusal::BadBeaconKey),
    };
    if let Some(key) = carried {
        return match verify_packet(packet, &key) {
            Ok(()) if packet.ping_type == PingType::Discover => Ok(Identity::SelfCertified(key)),
            Ok(()) if mode == IdentityMode::Prefer => Ok(Identity::Unpinned),
            Ok(()) => Err(IdentityRefusal::UnpinnedInRequire),
            Err(_) => Err(IdentityRefusal::BadBeaconKey),
        };
    }
    match mode {
        IdentityMode::Require => Err(IdentityRefusal::UnpinnedInRequire),
        _ => Ok(Identity::Unpinned),
    }
}

/// Maps a beacon key failure to the refusal the engine counts.
impl From<BeaconKeyError> for IdentityRefusal {
    fn from(_: BeaconKeyError) -> Self {
        IdentityRefusal::BadBeaconKey
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Keypair, add_beacon_key, sign_packet};
    use crate::packet::PingType;

    fn ping(from: &str) -> PingPacket {
        let mut p = PingPacket::new(
            "ping_0011223344556677",
            from,
            "jis:home:hub",
            "door.unlock",
            "let me in",
        );
        p.nonce = "00112233445566778899aabbccddeeff".into();
        p
    }

    fn signed(from: &str, key: &Keypair) -> PingPacket {
        let mut p = ping(from);
        sign_packet(&mut p, key);
        p
    }

    #[test]
    fn modes_parse_and_default_to_prefer() {
        assert_eq!(IdentityMode::default(), IdentityMode::Prefer);
        for m in [
            IdentityMode::Off,
            IdentityMode::Prefer,
            IdentityMode::Require,
        ] {
            assert_eq!(m.as_str().parse(), Ok(m));
        }
        assert!("strict".parse::<IdentityMode>().is_err());
    }

    #[test]
    fn spoofing_a_pinned_did_fails_in_five_ways() {
        let owner = Keypair::from_seed(&[1; 32]);
        let attacker = Keypair::from_seed(&[2; 32]);
        let mut pins = PinStore::new(8);
        pins.pin_first_use("jis:home:sensor", owner.public());
        let mode = IdentityMode::Prefer;

        let good = signed("jis:home:sensor", &owner);
        assert_eq!(
            check_identity(&good, &pins, mode),
            Ok(Identity::Verified(owner.public()))
        );

        let unsigned = ping("jis:home:sensor");
        assert_eq!(
            check_identity(&unsigned, &pins, mode),
            Err(IdentityRefusal::Unsigned)
        );

        let mut garbage = ping("jis:home:sensor");
        garbage.signature = "AAAA".into();
        assert_eq!(
            check_identity(&garbage, &pins, mode),
            Err(IdentityRefusal::BadSignature)
        );

        let other_key = signed("jis:home:sensor", &attacker);
        assert_eq!(
            check_identity(&other_key, &pins, mode),
            Err(IdentityRefusal::BadSignature)
        );

        let mut changed = good.clone();
        changed.intent = "door.open".into();
        assert_eq!(
            check_identity(&changed, &pins, mode),
            Err(IdentityRefusal::BadSignature)
        );

        let mut raised = good.clone();
        raised.max_hops = 10;
        assert_eq!(
            check_identity(&raised, &pins, mode),
            Err(IdentityRefusal::BadSignature)
        );

        // The attacker names their own key in the payload: wrong key.
        let mut carried = ping("jis:home:sensor");
        add_beacon_key(&mut carried.payload, &attacker.public());
        sign_packet(&mut carried, &attacker);
        assert_eq!(
            check_identity(&carried, &pins, mode),
            Err(IdentityRefusal::WrongKey)
        );

        // hop_count is not signed: relays may raise it.
        let mut hopped = good.clone();
        hopped.hop_count = 2;
        assert!(check_identity(&hopped, &pins, mode).is_ok());
        // Off checks nothing.
        assert_eq!(
            check_identity(&unsigned, &pins, IdentityMode::Off),
            Ok(Identity::NotChecked)
        );
    }

    #[test]
    fn unpinned_senders_pass_in_prefer_and_drop_in_require() {
        let pins = PinStore::new(8);
        let unsigned = ping("jis:py:peer");
        assert_eq!(
            check_identity(&unsigned, &pins, IdentityMode::Prefer),
            Ok(Identity::Unpinned)
        );
        assert_eq!(
            check_identity(&unsigned, &pins, IdentityMode::Require),
            Err(IdentityRefusal::UnpinnedInRequire)
        );
        let key = Keypair::from_seed(&[4; 32]);
        let signed_unpinned = signed("jis:new:dev", &key);
        assert_eq!(
            check_identity(&signed_unpinned, &pins, IdentityMode::Require),
            Err(IdentityRefusal::UnpinnedInRequire)
        );
    }

    #[test]
    fn a_signed_beacon_self_certifies_even_in_require() {
        let key = Keypair::from_seed(&[5; 32]);
        let mut beacon = ping("jis:new:lamp");
        beacon.ping_type = PingType::Discover;
        add_beacon_key(&mut beacon.payload, &key.public());
        sign_packet(&mut beacon, &key);
        let mut pins = PinStore::new(8);
        for mode in [IdentityMode::Prefer, IdentityMode::Require] {
            assert_eq!(
                check_identity(&beacon, &pins, mode),
                Ok(Identity::SelfCertified(key.public()))
            );
        }
        // The same beacon with a forged signature proves nothing.
        let mut forged = beacon.clone();
        forged.purpose = "changed".into();
        assert_eq!(
            check_identity(&forged, &pins, IdentityMode::Prefer),
            Err(IdentityRefusal::BadBeaconKey)
        );
        // Once pinned, a beacon with another key is refused.
        pins.pin_first_use("jis:new:lamp", key.public());
        let other = Keypair::from_seed(&[6; 32]);
        let mut rekeyed = ping("jis:new:lamp");
        rekeyed.ping_type = PingType::Discover;
        add_beacon_key(&mut rekeyed.payload, &other.public());
        sign_packet(&mut rekeyed, &other);
        assert_eq!(
            check_identity(&rekeyed, &pins, IdentityMode::Prefer),
            Err(IdentityRefusal::WrongKey)
        );
        assert_eq!(
            pins.pin_first_use("jis:new:lamp", other.public()),
            crate::identity::PinDecision::Conflict
        );
    }

    #[test]
    fn a_pre_checked_result_counts_only_for_the_key_pinned_now() {
        let owner = Keypair::from_seed(&[1; 32]);
        let other = Keypair::from_seed(&[2; 32]);
        let mut pins = PinStore::new(8);
        pins.pin_first_use("jis:home:sensor", owner.public());
        let mode = IdentityMode::Prefer;
        let good = signed("jis:home:sensor", &owner);
        let mut keys = KeyCache::new(4);
        let failed = Err(SignatureError::Invalid);
        // A result for the pinned key is taken as it is...
        assert_eq!(
            check_identity_cached(
                &good,
                &pins,
                mode,
                Some((&owner.public(), failed)),
                &mut keys
            ),
            Err(IdentityRefusal::BadSignature)
        );
        // ...one for another key is ignored and the signature checked here.
        assert_eq!(
            check_identity_cached(
                &good,
                &pins,
                mode,
                Some((&other.public(), failed)),
                &mut keys
            ),
            Ok(Identity::Verified(owner.public()))
        );
        assert_eq!(
            check_identity_cached(&good, &pins, mode, None, &mut keys),
            check_identity(&good, &pins, mode)
        );
    }
}
