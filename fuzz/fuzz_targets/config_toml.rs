//! Fuzz the TOML config file parser (`ConfigFile::from_toml`, from the
//! `tibet-iot-cli` library target): any text must parse or be refused with
//! a typed `ConfigError`, never panic; what is accepted has passed the value
//! checks. The same properties run on every `cargo test` as proptests
//! (`crates/tibet-iot-cli/tests/config_props.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

// The same checks as the proptests, from one file.
#[path = "../../crates/tibet-iot-cli/tests/config_checks/mod.rs"]
mod config_checks;

fuzz_target!(|data: &[u8]| {
    // A config file is read with `read_to_string`: not UTF-8 is an I/O error
    // before the parser; fuzz the parser on the text that gets there.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = config_checks::parse(text);
});
