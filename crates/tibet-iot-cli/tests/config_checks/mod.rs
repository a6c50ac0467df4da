//! What the config parser promises for any text, checked from outside: a
//! refusal is a typed `ConfigError` that prints on one line, and whatever
//! is accepted has passed the value checks. Shared by the proptests
//! (`tests/config_props.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/config_toml.rs`, by `#[path]`).

use tibet_iot_cli::config_file::{ConfigError, ConfigFile};
use tibet_iot_cli::validate;

/// What an accepted config must satisfy: the checks of `check()`, seen from
/// outside.
fn assert_checked(cfg: &ConfigFile) {
    if let Some(d) = &cfg.did {
        assert!(validate::did(d).is_ok(), "accepted bad did {d:?}");
    }
    for (did, score) in &cfg.trust {
        assert!(validate::did(did).is_ok(), "accepted trust DID {did:?}");
        assert!(validate::score(*score).is_ok(), "accepted score {score}");
    }
    for v in &cfg.vouches {
        assert!(!v.dids.is_empty());
        assert!(v.dids.iter().all(|d| validate::did(d).is_ok()));
        for s in [v.factor, v.my_trust].into_iter().flatten() {
            assert!(validate::score(s).is_ok(), "accepted vouch score {s}");
        }
    }
    for r in &cfg.airlock_rules {
        assert!(matches!(r.zone.as_str(), "GROEN" | "GEEL" | "ROOD"));
        if let Some(m) = r.min_trust {
            assert!(validate::score(m).is_ok());
        }
    }
    for v in [
        cfg.intervals.heartbeat,
        cfg.intervals.discovery,
        cfg.intervals.peer_cleanup,
        cfg.intervals.peer_timeout,
    ]
    .into_iter()
    .flatten()
    {
        assert!(v.is_finite() && v > 0.0, "accepted interval {v}");
    }
    if let Some(ttl) = cfg.discovery.ttl {
        assert!((1..=255).contains(&ttl));
    }
    if let Some(g) = cfg.discovery.group {
        assert!(g.is_multicast());
    }
}

/// Parses `text`: never panics; an error is typed and printable; what is
/// accepted passed [`assert_checked`].
pub(crate) fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
    let result = ConfigFile::from_toml(text);
    match &result {
        Ok(cfg) => assert_checked(cfg),
        Err(ConfigError::Syntax(m)) => {
            assert!(!m.is_empty());
            assert!(!m.contains('\n'), "one line: {m:?}");
        }
        Err(e @ ConfigError::Value { key, .. }) => {
            assert!(!key.is_empty());
            assert!(e.to_string().starts_with("key `"), "{e}");
        }
        Err(e) => panic!("text gives a file error: {e:?}"),
    }
    result
}
