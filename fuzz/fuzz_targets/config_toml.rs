//! Fuzz the TOML config file parser (`ConfigFile::from_toml`, from the
//! `tibet-iot-cli` library target): any text must parse or be refused with
//! a typed `ConfigError`, never panic; what is accepted has passed the value
//! checks. The same properties run on every `cargo test` as proptests
//! (`crates/tibet-iot-cli/tests/config_props.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tibet_iot_cli::config::{ConfigError, ConfigFile};
use tibet_iot_cli::validate;

fuzz_target!(|data: &[u8]| {
    // A config file is read with `read_to_string`: not UTF-8 is an I/O error
    // before the parser; fuzz the parser on the text that gets there.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ConfigFile::from_toml(text) {
        Ok(cfg) => {
            if let Some(d) = &cfg.did {
                assert!(validate::did(d).is_ok(), "accepted did {d:?}");
            }
            for (did, score) in &cfg.trust {
                assert!(validate::did(did).is_ok(), "accepted trust DID {did:?}");
                assert!(validate::score(*score).is_ok(), "accepted score {score}");
            }
            for v in &cfg.vouches {
                assert!(!v.dids.is_empty());
                assert!(v.dids.iter().all(|d| validate::did(d).is_ok()));
            }
            if let Some(ttl) = cfg.discovery.ttl {
                assert!((1..=255).contains(&ttl));
            }
        }
        Err(ConfigError::Syntax(m)) => assert!(!m.is_empty() && !m.contains('\n'), "{m:?}"),
        Err(e @ ConfigError::Value { .. }) => assert!(e.to_string().starts_with("key `")),
        Err(e) => panic!("text gives a file error: {e:?}"),
    }
});
