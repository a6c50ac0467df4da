//! Fuzz vouch credential parsing: arbitrary `vouch_signature` text checked
//! against a fixed voucher key. Never a panic; nothing forged verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tibet_ping::Timestamp;
use tibet_ping::identity::{Keypair, VouchCredential};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let voucher = Keypair::from_seed(&[0x24; 32]).public();
    let _ = VouchCredential::verify(text, &voucher, Timestamp::from_secs(0));
});
