//! The PKCS#12 bundle handed to `security import`: 3DES key and certificate bags with an
//! HMAC-SHA1 MAC, 2048 iterations — the profile every macOS version reads (spec §4.2/§4.3).

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
    PrivateKeyChain,
};
use zeroize::Zeroizing;

use crate::error::{KeystoreError, Result};
use crate::identity::Identity;

/// Iterations for both the bag encryption and the MAC (what OpenSSL and macOS use).
const ITERATIONS: u32 = 2048;

/// Builds the PKCS#12 DER for `identity` under `alias`, protected by `password`.
/// The chain is leaf first, then the issuers; the local key id is SHA-1 of the leaf.
pub fn build_pkcs12(
    identity: &Identity,
    alias: &str,
    password: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let err = |e: p12_keystore::error::Error| KeystoreError::Pkcs12 {
        reason: e.to_string(),
    };
    let key = PrivateKey::from_der(identity.private_key().as_der()).map_err(err)?;
    let mut certs = vec![Certificate::from_der(identity.leaf().as_der()).map_err(err)?];
    for c in identity.chain() {
        certs.push(Certificate::from_der(c.as_der()).map_err(err)?);
    }
    let local_key_id = identity.leaf().sha1().0.to_vec();
    let mut store = KeyStore::new();
    store.add_entry(
        alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, certs)),
    );
    let der = store
        .writer(password)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha1)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(err)?;
    Ok(Zeroizing::new(der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::device_identity;
    use p12_keystore::Pkcs12ImportPolicy;

    #[test]
    fn round_trips_through_p12_keystore() {
        let id = device_identity();
        let der = build_pkcs12(&id, "MAC01.local", "one-time-pw").unwrap();
        let back = KeyStore::from_pkcs12(&der, "one-time-pw", Pkcs12ImportPolicy::Strict).unwrap();
        let (alias, chain) = back.private_key_chain().unwrap();
        assert_eq!(alias, "MAC01.local");
        assert_eq!(chain.key().as_der(), id.private_key().as_der());
        assert_eq!(chain.certs()[0].as_der(), id.leaf().as_der());
        assert_eq!(chain.certs().len(), 1 + id.chain().len());
        assert!(KeyStore::from_pkcs12(&der, "wrong", Pkcs12ImportPolicy::Strict).is_err());
    }

    /// The oracle: OpenSSL 3 must read the file without `-legacy` and report the 3DES/SHA-1
    /// profile. The password goes through the environment, never argv.
    #[test]
    fn openssl_reads_it_without_legacy_and_sees_3des_sha1() {
        if std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: openssl CLI not installed");
            return;
        }
        let id = device_identity();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.p12");
        std::fs::write(
            &path,
            build_pkcs12(&id, "MAC01.local", "pw-for-test").unwrap(),
        )
        .unwrap();
        let out = std::process::Command::new("openssl")
            .args(["pkcs12", "-info", "-noout", "-passin", "env:PFXPW", "-in"])
            .arg(&path)
            .env("PFXPW", "pw-for-test")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("MAC: sha1, Iteration 2048"), "{text}");
        assert!(
            text.contains("pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048"),
            "{text}"
        );
        assert!(!text.contains("RC2"), "{text}");
    }
}
