//! Fuzz the pin file parser: never a panic, the store stays within its
//! capacity, and what parses writes back to text that parses to the same pins.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tibet_ping::identity::PinStore;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pins) = PinStore::parse(text, 16) {
        assert!(pins.len() <= 16);
        let again = PinStore::parse(&pins.to_text(), 16).expect("own text parses");
        assert!(pins.iter().eq(again.iter()));
    }
});
