//! Certificates, private keys and device identities as validated DER bytes.
//!
//! Everything that enters the crate is parsed once here, so the stores never handle
//! bytes that are not a certificate or a PKCS#8 key.

use std::fmt;

use sha1::Digest as _;
use x509_parser::prelude::{FromDer as _, X509Certificate};
use zeroize::Zeroizing;

use crate::error::{KeystoreError, Result};

/// PEM label of a certificate.
const CERTIFICATE_LABEL: &str = "CERTIFICATE";
/// PEM label of an unencrypted PKCS#8 private key.
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

/// A DER-encoded X.509 certificate that parsed successfully.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CertificateDer(Vec<u8>);

impl CertificateDer {
    /// Checks that `der` is exactly one X.509 certificate (no trailing bytes).
    pub fn from_der(der: impl Into<Vec<u8>>) -> Result<Self> {
        Self::parse(der.into(), "certificate")
    }

    /// Parses one PEM `CERTIFICATE` block.
    pub fn from_pem(text: &[u8]) -> Result<Self> {
        let block = pem::parse(text).map_err(|e| KeystoreError::InvalidCertificate {
            what: "PEM certificate".into(),
            reason: e.to_string(),
        })?;
        if block.tag() != CERTIFICATE_LABEL {
            return Err(KeystoreError::InvalidCertificate {
                what: "PEM certificate".into(),
                reason: format!("PEM label is {:?}, expected CERTIFICATE", block.tag()),
            });
        }
        Self::parse(block.into_contents(), "PEM certificate")
    }

    /// Parses every PEM `CERTIFICATE` block in `text`, ignoring text between blocks.
    pub fn all_from_pem(text: &[u8]) -> Result<Vec<Self>> {
        let blocks = pem::parse_many(text).map_err(|e| KeystoreError::InvalidCertificate {
            what: "PEM bundle".into(),
            reason: e.to_string(),
        })?;
        blocks
            .into_iter()
            .filter(|b| b.tag() == CERTIFICATE_LABEL)
            .enumerate()
            .map(|(i, b)| Self::parse(b.into_contents(), &format!("PEM certificate #{}", i + 1)))
            .collect()
    }

    fn parse(der: Vec<u8>, what: &str) -> Result<Self> {
        match X509Certificate::from_der(&der) {
            Ok(([], _)) => Ok(Self(der)),
            Ok((rest, _)) => Err(KeystoreError::InvalidCertificate {
                what: what.into(),
                reason: format!("{} trailing bytes after the certificate", rest.len()),
            }),
            Err(e) => Err(KeystoreError::InvalidCertificate {
                what: what.into(),
                reason: e.to_string(),
            }),
        }
    }

    /// The DER bytes.
    pub fn as_der(&self) -> &[u8] {
        &self.0
    }

    /// The certificate as one PEM block.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new(CERTIFICATE_LABEL, self.0.clone()))
    }

    /// SHA-1 of the DER, the hash macOS `security` uses to name keychain items (`-Z`).
    pub fn sha1(&self) -> Sha1Fingerprint {
        Sha1Fingerprint(sha1::Sha1::digest(&self.0).into())
    }

    /// SHA-256 of the DER, the name of a trust anchor in the file store.
    pub fn sha256(&self) -> Sha256Fingerprint {
        use sha2::Digest as _;
        Sha256Fingerprint(sha2::Sha256::digest(&self.0).into())
    }

    /// Parsed view; cannot fail because construction already parsed it.
    fn with_parsed<T>(&self, f: impl FnOnce(&X509Certificate<'_>) -> T) -> Option<T> {
        X509Certificate::from_der(&self.0).ok().map(|(_, c)| f(&c))
    }

    /// The first subject common name, if it is a readable string.
    pub fn common_name(&self) -> Option<String> {
        self.with_parsed(|c| {
            c.subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned)
        })
        .flatten()
    }

    /// Whether issuer equals subject and the self-signature verifies.
    pub fn is_self_signed_root(&self) -> bool {
        self.with_parsed(|c| {
            c.issuer().as_raw() == c.subject().as_raw() && c.verify_signature(None).is_ok()
        })
        .unwrap_or(false)
    }

    /// Whether `self` names `issuer` as its issuer (by raw distinguished name).
    pub(crate) fn is_issued_by(&self, issuer: &CertificateDer) -> bool {
        let wanted = self.with_parsed(|c| c.issuer().as_raw().to_vec());
        let subject = issuer.with_parsed(|c| c.subject().as_raw().to_vec());
        matches!((wanted, subject), (Some(a), Some(b)) if a == b)
    }

    /// The subject's raw public key bits (RSAPublicKey DER, EC point, Ed25519 key).
    pub(crate) fn public_key_bits(&self) -> Option<Vec<u8>> {
        self.with_parsed(|c| c.public_key().subject_public_key.data.to_vec())
    }
}

impl fmt::Debug for CertificateDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateDer(sha256={})", self.sha256())
    }
}

/// An unencrypted PKCS#8 private key. The bytes are wiped on drop and never printed.
#[derive(Clone)]
pub struct PrivateKeyDer(Zeroizing<Vec<u8>>);

impl PrivateKeyDer {
    /// Checks that `der` is a PKCS#8 key of a supported algorithm (RSA, EC P-256/P-384, Ed25519).
    pub fn from_pkcs8_der(der: impl Into<Vec<u8>>) -> Result<Self> {
        let key = Self(Zeroizing::new(der.into()));
        if key.public_key_bits().is_none() {
            return Err(KeystoreError::InvalidPrivateKey {
                reason: "not PKCS#8, or an algorithm other than RSA, EC P-256/P-384 or Ed25519"
                    .into(),
            });
        }
        Ok(key)
    }

    /// Parses one PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pem(text: &[u8]) -> Result<Self> {
        let block = pem::parse(text).map_err(|e| KeystoreError::InvalidPrivateKey {
            reason: format!("not PEM: {e}"),
        })?;
        if block.tag() != PRIVATE_KEY_LABEL {
            return Err(KeystoreError::InvalidPrivateKey {
                reason: format!(
                    "PEM label is {:?}, expected PRIVATE KEY (PKCS#8)",
                    block.tag()
                ),
            });
        }
        Self::from_pkcs8_der(block.into_contents())
    }

    /// The PKCS#8 DER bytes.
    pub fn as_der(&self) -> &[u8] {
        &self.0
    }

    /// The key as one PEM block, in memory that is wiped on drop.
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode(&pem::Pem::new(
            PRIVATE_KEY_LABEL,
            self.0.to_vec(),
        )))
    }

    /// The public key that belongs to this private key, in the encoding a certificate's
    /// subjectPublicKey BIT STRING carries, or None if the key is not understood.
    fn public_key_bits(&self) -> Option<Vec<u8>> {
        use aws_lc_rs::signature::{self, KeyPair as _};
        if let Ok(rsa) = aws_lc_rs::rsa::KeyPair::from_pkcs8(&self.0) {
            return Some(rsa.public_key().as_ref().to_vec());
        }
        for alg in [
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        ] {
            if let Ok(ec) = signature::EcdsaKeyPair::from_pkcs8(alg, &self.0) {
                return Some(ec.public_key().as_ref().to_vec());
            }
        }
        signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.0)
            .ok()
            .map(|k| k.public_key().as_ref().to_vec())
    }
}

impl fmt::Debug for PrivateKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyDer(<redacted>)")
    }
}

/// A device identity: the leaf certificate, the chain up to (optionally including) the root,
/// and the leaf's private key. Construction proves that the key belongs to the leaf, so a
/// stored identity can never pair a certificate with someone else's key.
#[derive(Clone, Debug)]
pub struct Identity {
    leaf: CertificateDer,
    chain: Vec<CertificateDer>,
    private_key: PrivateKeyDer,
}

impl Identity {
    /// Builds an identity after checking that `private_key` matches `leaf`.
    pub fn new(
        leaf: CertificateDer,
        chain: Vec<CertificateDer>,
        private_key: PrivateKeyDer,
    ) -> Result<Self> {
        let matches = match (leaf.public_key_bits(), private_key.public_key_bits()) {
            (Some(a), Some(b)) => bool::from(subtle::ConstantTimeEq::ct_eq(&a[..], &b[..])),
            _ => false,
        };
        if !matches {
            return Err(KeystoreError::KeyDoesNotMatchCertificate {
                leaf_sha256: leaf.sha256().to_string(),
            });
        }
        Ok(Self {
            leaf,
            chain,
            private_key,
        })
    }

    /// Builds an identity from PEM texts: one leaf, zero or more chain certificates, one PKCS#8 key.
    pub fn from_pem(leaf: &[u8], chain: &[u8], private_key: &[u8]) -> Result<Self> {
        Self::new(
            CertificateDer::from_pem(leaf)?,
            CertificateDer::all_from_pem(chain)?,
            PrivateKeyDer::from_pem(private_key)?,
        )
    }

    /// The leaf (device) certificate.
    pub fn leaf(&self) -> &CertificateDer {
        &self.leaf
    }

    /// The issuing chain, nearest issuer first.
    pub fn chain(&self) -> &[CertificateDer] {
        &self.chain
    }

    /// The leaf's private key.
    pub fn private_key(&self) -> &PrivateKeyDer {
        &self.private_key
    }
}

/// SHA-1 fingerprint of a certificate; displayed as 40 upper-case hex digits like `security` prints it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha1Fingerprint(pub [u8; 20]);

impl Sha1Fingerprint {
    /// Parses 40 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(text.trim(), &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Display for Sha1Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl fmt::Debug for Sha1Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha1Fingerprint({self})")
    }
}

/// SHA-256 fingerprint of a certificate; displayed as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Fingerprint(pub [u8; 32]);

impl Sha256Fingerprint {
    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Display for Sha256Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestPki, device_identity};

    #[test]
    fn identity_accepts_matching_key_for_rsa_and_ec() {
        let pki = TestPki::new();
        for rsa in [false, true] {
            let (leaf, key) = pki.leaf("MAC01.local", rsa);
            Identity::new(leaf, vec![pki.root.clone()], key).expect("matching pair");
        }
    }

    #[test]
    fn identity_rejects_someone_elses_key() {
        let pki = TestPki::new();
        let (leaf, _) = pki.leaf("MAC01.local", false);
        let (_, other_key) = pki.leaf("MAC02.local", false);
        let err = Identity::new(leaf, vec![], other_key).unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::KeyDoesNotMatchCertificate { .. }
        ));
        assert!(err.to_string().contains("re-enroll"));
    }

    #[test]
    fn garbage_is_rejected_not_panicking() {
        assert!(CertificateDer::from_der(vec![0x30, 0x03, 0x01, 0x01]).is_err());
        assert!(PrivateKeyDer::from_pkcs8_der(vec![1, 2, 3]).is_err());
        assert!(
            CertificateDer::from_pem(
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            )
            .is_err()
        );
    }

    #[test]
    fn trailing_bytes_after_certificate_are_rejected() {
        let id = device_identity();
        let mut der = id.leaf().as_der().to_vec();
        der.push(0);
        let err = CertificateDer::from_der(der).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }

    #[test]
    fn pem_round_trip_keeps_bytes() {
        let id = device_identity();
        let again = Identity::from_pem(
            id.leaf().to_pem().as_bytes(),
            id.chain()[0].to_pem().as_bytes(),
            id.private_key().to_pem().as_bytes(),
        )
        .unwrap();
        assert_eq!(again.leaf(), id.leaf());
        assert_eq!(again.private_key().as_der(), id.private_key().as_der());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let id = device_identity();
        let shown = format!("{id:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&hex::encode(&id.private_key().as_der()[..16])));
    }

    #[test]
    fn sha1_matches_openssl_style_upper_hex() {
        let id = device_identity();
        let fp = id.leaf().sha1();
        assert_eq!(fp.to_string().len(), 40);
        assert_eq!(Sha1Fingerprint::from_hex(&fp.to_string()), Some(fp));
        assert_eq!(Sha1Fingerprint::from_hex("zz"), None);
    }

    #[test]
    fn root_is_self_signed_and_leaf_is_not() {
        let pki = TestPki::new();
        let (leaf, _) = pki.leaf("MAC01.local", false);
        assert!(pki.root.is_self_signed_root());
        assert!(!leaf.is_self_signed_root());
        assert!(leaf.is_issued_by(&pki.root));
    }
}
