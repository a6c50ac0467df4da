//! Identifier and nonce formats of the wire protocol, drawn from an injected RNG.

use alloc::format;
use alloc::string::String;

use rand::RngCore;

/// N (at most 16) random bytes as lowercase hex, into `out` (at least
/// 2N bytes long).
fn fill_hex<const N: usize>(out: &mut [u8], rng: &mut (impl RngCore + ?Sized)) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    const { assert!(N <= 16) };
    let mut bytes = [0u8; N];
    // Word by word: one dynamic call per 8 bytes, no byte-wise copy loop.
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
    }
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// `prefix` then N (at most 16) random bytes as lowercase hex, in one
/// allocation.
fn random_hex<const N: usize>(prefix: &str, rng: &mut (impl RngCore + ?Sized)) -> String {
    let mut buf = [0u8; 32];
    fill_hex::<N>(&mut buf, rng);
    // Hex digits are ASCII, so this never takes the fallback.
    let hex = core::str::from_utf8(&buf[..2 * N]).unwrap_or_default();
    let mut s = String::with_capacity(prefix.len() + 2 * N);
    s.push_str(prefix);
    s.push_str(hex);
    s
}

/// A packet id: `ping_` and 16 lowercase hex digits (8 random bytes).
pub fn packet_id(rng: &mut (impl RngCore + ?Sized)) -> String {
    random_hex::<8>("ping_", rng)
}

/// A response id: `resp_` and 16 lowercase hex digits.
pub fn response_id(rng: &mut (impl RngCore + ?Sized)) -> String {
    random_hex::<8>("resp_", rng)
}

/// [`response_id`] as ASCII bytes, without allocating; draws the same
/// random bytes, so it gives the same id.
pub(crate) fn response_id_bytes(rng: &mut (impl RngCore + ?Sized)) -> [u8; 21] {
    let mut id = *b"resp_0000000000000000";
    fill_hex::<8>(&mut id[5..], rng);
    id
}

/// A vouch id: `vouch_` and 16 lowercase hex digits.
pub fn vouch_id(rng: &mut (impl RngCore + ?Sized)) -> String {
    random_hex::<8>("vouch_", rng)
}

/// A replay nonce: 32 lowercase hex digits (16 random bytes).
pub fn nonce(rng: &mut (impl RngCore + ?Sized)) -> String {
    random_hex::<16>("", rng)
}

/// Checks a JIS DID: `jis:` followed by one or more non-empty
/// `:`-separated segments without whitespace or control characters
/// (`jis:home:hub`). The error is one line that names the bad input and
/// says what is expected (the CLI and the Python package print it as is).
pub fn check_did(s: &str) -> Result<(), String> {
    let Some(rest) = s.strip_prefix("jis:") else {
        return Err(format!(
            "invalid DID '{s}': must start with 'jis:' (e.g. jis:home:hub)"
        ));
    };
    if rest.is_empty() || rest.split(':').any(str::is_empty) {
        return Err(format!(
            "invalid DID '{s}': every ':'-separated segment must be non-empty (e.g. jis:home:hub)"
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("invalid DID '{s}': must not contain whitespace"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn formats() {
        let mut rng = StdRng::seed_from_u64(7);
        let id = packet_id(&mut rng);
        assert!(id.starts_with("ping_") && id.len() == 21, "{id}");
        assert!(
            id[5..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(response_id(&mut rng).len(), 21);
        let n = nonce(&mut rng);
        assert_eq!(n.len(), 32);
        assert_ne!(n, nonce(&mut rng));
        // Same bytes as the hex crate would print.
        let mut a = StdRng::seed_from_u64(9);
        let mut b = StdRng::seed_from_u64(9);
        let mut bytes = [0u8; 16];
        b.fill_bytes(&mut bytes);
        assert_eq!(nonce(&mut a), hex::encode(bytes));
        let mut a = StdRng::seed_from_u64(11);
        let mut b = StdRng::seed_from_u64(11);
        let bytes = response_id_bytes(&mut a);
        assert_eq!(core::str::from_utf8(&bytes).unwrap(), response_id(&mut b));
    }
}
