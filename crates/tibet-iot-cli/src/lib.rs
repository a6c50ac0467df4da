//! The I/O-free parts of the `tibet-iot` command line, as a library so that
//! tests and fuzz targets (`fuzz/`, docs/FUZZING.md) can drive them
//! directly: the TOML config file ([`config_file`]) and the checks it shares with
//! the command-line flags ([`validate`]). The command itself is the
//! `tibet-iot` binary (`src/main.rs`); the protocol lives in the `tibet-iot`
//! and `tibet-ping` libraries.
//!
//! ```
//! use tibet_iot_cli::config_file::{ConfigError, ConfigFile};
//!
//! let cfg = ConfigFile::from_toml("did = \"jis:home:hub\"\nport = 7150\n").unwrap();
//! assert_eq!(cfg.port, Some(7150));
//! let err = ConfigFile::from_toml("[trust]\n\"jis:a:b\" = 1.5\n").unwrap_err();
//! assert!(matches!(err, ConfigError::Value { .. }));
//! assert_eq!(err.to_string(), "key `trust.\"jis:a:b\"`: 1.5 is outside 0..1");
//! ```

#![forbid(unsafe_code)]

pub mod bind_host;
pub mod config_file;
pub mod iface;
pub mod validate;
