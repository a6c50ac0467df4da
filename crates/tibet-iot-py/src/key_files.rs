//! Identity helpers: Ed25519 key files (PKCS#8 PEM, mode 0600) as the CLI's
//! `keygen` and `pubkey` write and read them, and the DID check.

use std::path::PathBuf;

use pyo3::prelude::*;
use tibet_ping::identity::Keypair;

use crate::config::{check_did, load_key};
use crate::pytypes::{ErrorKind, error};

/// Writes a new private key to `path` (never over an existing file) and
/// returns its public key (base64, for pins).
#[pyfunction]
pub(crate) fn generate_key(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.allow_threads(|| {
        let key = Keypair::generate(&mut rand::rngs::OsRng);
        key.save(&path)
            .map_err(|e| error(ErrorKind::KeyFile, e.to_string()))?;
        Ok(key.public().to_string())
    })
}

/// The public key (base64) of the key file at `path`.
#[pyfunction]
pub(crate) fn public_key(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.allow_threads(|| Ok(load_key(&path)?.public().to_string()))
}

/// Raises `InvalidDidError` unless `did` is a JIS DID (`jis:home:hub`).
#[pyfunction]
pub(crate) fn validate_did(did: &str) -> PyResult<()> {
    check_did(did)
}
