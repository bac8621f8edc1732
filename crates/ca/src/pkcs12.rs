//! PKCS#12 files for devices whose key the server generates. Written with p12-keystore in
//! the compatible profile by default (3DES key and certificate bags, HMAC-SHA1 MAC, 2048
//! iterations: what every macOS version and OpenSSL 3 without `-legacy` import); read in
//! any scheme p12-keystore knows, including OpenSSL 3's default (AES-256, SHA-256 MAC).

use std::fmt;

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12ImportPolicy,
    PrivateKey, PrivateKeyChain,
};
use rand::RngCore;
use rand::distr::{Alphanumeric, SampleString};

use crate::CaError;

/// Iterations for key derivation and MAC in the compatible profile (OpenSSL's default).
pub const COMPATIBLE_ITERATIONS: u32 = 2048;

/// Length of generated passwords: 32 alphanumerics, about 190 bits.
pub const GENERATED_PASSWORD_LEN: usize = 32;

/// A PKCS#12 password: never empty (macOS refuses empty ones), never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs12Password(String);

impl Pkcs12Password {
    /// Wraps a password chosen by a person; refuses an empty one.
    pub fn new(password: String) -> Result<Self, CaError> {
        if password.is_empty() {
            return Err(CaError::EmptyPassword);
        }
        Ok(Self(password))
    }

    /// A random password of [`GENERATED_PASSWORD_LEN`] ASCII letters and digits.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        Self(Alphanumeric.sample_string(rng, GENERATED_PASSWORD_LEN))
    }

    /// A random password from the operating system's generator.
    pub fn generate_from_os() -> Self {
        Self::generate(&mut <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng())
    }

    /// The password itself, for handing to the person who imports the file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pkcs12Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pkcs12Password(<redacted>)")
    }
}

/// How a PKCS#12 file is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pkcs12Profile {
    /// 3DES bags, HMAC-SHA1 MAC, 2048 iterations: imports on every macOS and in OpenSSL 3
    /// without `-legacy`. The default.
    #[default]
    Compatible,
    /// PBES2 AES-256 bags, HMAC-SHA256 MAC: for Linux and recent macOS only.
    Modern,
}

/// A key with its certificate chain, read from a PKCS#12 file.
#[derive(Clone)]
pub struct Pkcs12Identity {
    /// The entry's friendly name (alias).
    pub friendly_name: String,
    /// The private key, PKCS#8 DER. Secret.
    pub private_key_pkcs8: Vec<u8>,
    /// The certificates, DER, the key's own first.
    pub certificates: Vec<Vec<u8>>,
}

impl fmt::Debug for Pkcs12Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs12Identity")
            .field("friendly_name", &self.friendly_name)
            .field("private_key_pkcs8", &"<redacted>")
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

fn write_error(reason: impl fmt::Display) -> CaError {
    CaError::Pkcs12 {
        action: "write",
        reason: reason.to_string(),
    }
}

/// Writes a PKCS#12 file holding `private_key_pkcs8` and `chain` (the key's certificate
/// first, then its issuers up to the root) under `friendly_name`.
pub fn write(
    private_key_pkcs8: &[u8],
    chain: &[Vec<u8>],
    friendly_name: &str,
    password: &Pkcs12Password,
    profile: Pkcs12Profile,
) -> Result<Vec<u8>, CaError> {
    let Some(leaf) = chain.first() else {
        return Err(write_error("no certificate was given for the key"));
    };
    let key = PrivateKey::from_der(private_key_pkcs8).map_err(write_error)?;
    let certs = chain
        .iter()
        .map(|der| Certificate::from_der(der).map_err(write_error))
        .collect::<Result<Vec<_>, _>>()?;
    // localKeyId = SHA-1 of the certificate, as OpenSSL writes it; it pairs key and cert.
    let local_key_id =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf);
    let mut store = KeyStore::new();
    store.add_entry(
        friendly_name,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id.as_ref(), key, certs)),
    );
    let writer = store.writer(password.expose());
    let writer = match profile {
        Pkcs12Profile::Compatible => writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .encryption_iterations(COMPATIBLE_ITERATIONS)
            .mac_algorithm(MacAlgorithm::HmacSha1)
            .mac_iterations(COMPATIBLE_ITERATIONS),
        Pkcs12Profile::Modern => writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .mac_algorithm(MacAlgorithm::HmacSha256),
    };
    writer.write().map_err(write_error)
}

/// Reads the first key and its chain from a PKCS#12 file.
pub fn read(data: &[u8], password: &Pkcs12Password) -> Result<Pkcs12Identity, CaError> {
    let read_error = |reason: String| CaError::Pkcs12 {
        action: "read",
        reason,
    };
    let store = KeyStore::from_pkcs12(data, password.expose(), Pkcs12ImportPolicy::Strict)
        .map_err(|e| read_error(e.to_string()))?;
    let Some((alias, chain)) = store.private_key_chain() else {
        return Err(read_error(
            "it holds no private key with a certificate".into(),
        ));
    };
    Ok(Pkcs12Identity {
        friendly_name: alias.to_owned(),
        private_key_pkcs8: chain.key().as_der().to_vec(),
        certificates: chain.certs().iter().map(|c| c.as_der().to_vec()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn empty_passwords_are_refused_and_secrets_stay_out_of_debug() {
        assert!(matches!(
            Pkcs12Password::new(String::new()),
            Err(CaError::EmptyPassword)
        ));
        let pw = Pkcs12Password::new("hunter2".into()).unwrap();
        assert!(!format!("{pw:?}").contains("hunter2"));
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_seed_determined() {
        let a = Pkcs12Password::generate(&mut StdRng::seed_from_u64(3));
        let b = Pkcs12Password::generate(&mut StdRng::seed_from_u64(3));
        let c = Pkcs12Password::generate(&mut StdRng::seed_from_u64(4));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.expose().len(), GENERATED_PASSWORD_LEN);
        assert!(a.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn round_trip_in_both_profiles_and_wrong_password_fails() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["MAC01.local".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pw = Pkcs12Password::new("correct horse".into()).unwrap();
        for profile in [Pkcs12Profile::Compatible, Pkcs12Profile::Modern] {
            let pfx = write(
                key.serialized_der(),
                &[cert.der().to_vec()],
                "MAC01.local",
                &pw,
                profile,
            )
            .unwrap();
            let identity = read(&pfx, &pw).unwrap();
            assert_eq!(identity.friendly_name, "MAC01.local");
            assert_eq!(identity.private_key_pkcs8, key.serialized_der());
            assert_eq!(identity.certificates, vec![cert.der().to_vec()]);
            let wrong = Pkcs12Password::new("wrong".into()).unwrap();
            assert!(matches!(
                read(&pfx, &wrong),
                Err(CaError::Pkcs12 { action: "read", .. })
            ));
        }
        assert!(
            write(
                key.serialized_der(),
                &[],
                "x",
                &pw,
                Pkcs12Profile::Compatible
            )
            .is_err()
        );
        assert!(read(b"not a pfx", &pw).is_err());
    }
}
