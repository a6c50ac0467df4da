//! Fuzz key parsing: public key text (base64 of 32 bytes) and PKCS#8 PEM
//! private keys. Never a panic; whatever parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tibet_ping::identity::{Keypair, PublicKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = PublicKey::parse(text) {
        assert_eq!(key.to_base64(), text);
        assert_eq!(PublicKey::parse(&key.to_base64()), Ok(key));
    }
    if let Some(pair) = Keypair::from_pem(text) {
        let again = Keypair::from_pem(&pair.to_pem()).expect("own PEM parses");
        assert_eq!(again.public(), pair.public());
    }
});
