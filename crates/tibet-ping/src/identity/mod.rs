//! Authenticated identity: Ed25519 keys, the signing input of packets and
//! responses, pinned DIDs with trust on first use, the identity policy and
//! vouch credentials (docs/PROTOCOL.md section 6).
//!
//! All pure: no sockets, no clocks (expiry takes `now`), no files. Key and
//! pin files are [`store`]'s, built with the `std` feature.

mod beacon_key;
mod credential;
mod keys;
mod pins;
mod policy;
mod signing;
#[cfg(feature = "std")]
pub mod store;

pub use beacon_key::{
    BeaconKeyError, DEFAULT_KEY_CACHE_CAPACITY, KeyCache, KeyCacheStats, PUBLIC_KEY_FIELD,
    PUBLIC_KEY_HASH_FIELD, add_beacon_key, beacon_key, beacon_proof,
};
pub use credential::{
    CREDENTIAL_TYPE, CredentialError, MAX_CREDENTIAL_TEXT, VouchCredential, verify_packet_vouch,
};
pub use keys::{Keypair, PublicKey, PublicKeyError};
pub use pins::{
    DEFAULT_PIN_CAPACITY, MAX_PIN_DID_LEN, PinDecision, PinLineError, PinStats, PinStore,
    valid_pin_did,
};
pub use policy::{
    Identity, IdentityMode, IdentityRefusal, UnknownIdentityMode, check_identity,
    check_identity_cached,
};
pub use signing::{
    SIGNATURE_TEXT_LEN, SignatureError, canonical_json, packet_signing_input, parse_signature,
    response_signing_input, sign_bytes, sign_packet, sign_response, signature_text, verify_bytes,
    verify_packet, verify_packets, verify_response,
};
#[cfg(feature = "std")]
pub use store::{KeyFileError, MAX_KEY_FILE, MAX_PIN_FILE, PinFileError};
