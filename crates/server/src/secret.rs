//! Bearer secrets (the admin token, enrollment tokens): generated from the OS RNG, shown
//! once, stored only as a SHA-256 hash, compared in constant time.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A new random secret: 32 bytes from the OS, base64url, with a prefix that says what it
/// is (so a leaked one is recognisable in a log or a repository scan).
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    // ThreadRng is a CSPRNG (ChaCha) seeded from the OS.
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a secret: SHA-256, lowercase hex. The secrets are 256-bit random,
/// so a fast hash is enough (no dictionary to protect against).
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored_hash`, in time independent of where they differ.
pub fn matches(secret: &str, stored_hash: &str) -> bool {
    let candidate = hash(secret);
    candidate.len() == stored_hash.len()
        && bool::from(candidate.as_bytes().ct_eq(stored_hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_distinct_prefixed_and_verify() {
        let a = generate("tsa");
        let b = generate("tsa");
        assert_ne!(a, b);
        assert!(a.starts_with("tsa_") && a.len() == 4 + 43, "{a}");
        let stored = hash(&a);
        assert!(matches(&a, &stored));
        assert!(!matches(&b, &stored));
        assert!(!matches(&a, "short"));
    }
}
