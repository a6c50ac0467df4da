//! Identifier and nonce formats of the wire protocol, drawn from an injected RNG.

use rand::RngCore;

fn random_hex<const N: usize>(rng: &mut (impl RngCore + ?Sized)) -> String {
    let mut bytes = [0u8; N];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A packet id: `ping_` and 16 lowercase hex digits (8 random bytes).
pub fn packet_id(rng: &mut (impl RngCore + ?Sized)) -> String {
    format!("ping_{}", random_hex::<8>(rng))
}

/// A response id: `resp_` and 16 lowercase hex digits.
pub fn response_id(rng: &mut (impl RngCore + ?Sized)) -> String {
    format!("resp_{}", random_hex::<8>(rng))
}

/// A vouch id: `vouch_` and 16 lowercase hex digits.
pub fn vouch_id(rng: &mut (impl RngCore + ?Sized)) -> String {
    format!("vouch_{}", random_hex::<8>(rng))
}

/// A replay nonce: 32 lowercase hex digits (16 random bytes).
pub fn nonce(rng: &mut (impl RngCore + ?Sized)) -> String {
    random_hex::<16>(rng)
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
    }
}
