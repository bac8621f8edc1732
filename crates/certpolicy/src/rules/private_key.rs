//! Rule `private-key`: a supplied private key belongs to the leaf (its public half equals
//! the certificate's public key). Whether the key is exportable is a property of where it
//! is stored, enforced by the keystore, not here.

use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use x509_parser::prelude::*;

use crate::findings::Findings;
use crate::report::Subject;
use crate::rule::RuleId;

/// The public key of `key` in the form a certificate's subjectPublicKey BIT STRING holds:
/// RSAPublicKey DER for RSA, the uncompressed point for EC, the raw 32 bytes for Ed25519.
fn public_key_of(key: &PrivateKeyDer<'_>) -> Option<Vec<u8>> {
    let ec_algs = [
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
    ];
    match key {
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der())
            .ok()
            .map(|kp| kp.public_key().as_ref().to_vec()),
        PrivateKeyDer::Sec1(k) => ec_algs.iter().find_map(|alg| {
            EcdsaKeyPair::from_private_key_der(alg, k.secret_sec1_der())
                .ok()
                .map(|kp| kp.public_key().as_ref().to_vec())
        }),
        PrivateKeyDer::Pkcs8(k) => {
            let der = k.secret_pkcs8_der();
            RsaKeyPair::from_pkcs8(der)
                .ok()
                .map(|kp| kp.public_key().as_ref().to_vec())
                .or_else(|| {
                    ec_algs.iter().find_map(|alg| {
                        EcdsaKeyPair::from_pkcs8(alg, der)
                            .ok()
                            .map(|kp| kp.public_key().as_ref().to_vec())
                    })
                })
                .or_else(|| {
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                        .ok()
                        .map(|kp| kp.public_key().as_ref().to_vec())
                })
        }
        _ => None,
    }
}

pub(crate) fn check(
    leaf: &X509Certificate<'_>,
    key: &PrivateKeyDer<'_>,
    s: &Subject,
    out: &mut Findings,
) {
    let Some(public) = public_key_of(key) else {
        out.fail(
            RuleId::PrivateKey,
            s,
            "the private key cannot be read (not an RSA, EC P-256/P-384/P-521 or Ed25519 key in PKCS#8, PKCS#1 or SEC1); supply the key that was made for this certificate",
        );
        return;
    };
    // Public keys, not secrets: a plain comparison is fine here.
    if public.as_slice() == leaf.public_key().subject_public_key.data.as_ref() {
        out.pass(
            RuleId::PrivateKey,
            s,
            "the private key matches the certificate's public key",
        );
    } else {
        out.fail(
            RuleId::PrivateKey,
            s,
            "the private key does not belong to this certificate (public keys differ); supply the key the certificate was issued for, or re-enroll",
        );
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::PrivatePkcs8KeyDer;

    use super::*;
    use crate::report::SubjectKind;
    use crate::rule::Outcome;
    use crate::rules::testcert::{TestCert, only_outcome};

    fn outcome(cert_der: &[u8], key: &PrivateKeyDer<'_>) -> Outcome {
        let (_, x) = X509Certificate::from_der(cert_der).unwrap();
        let mut out = Findings::default();
        check(
            &x,
            key,
            &Subject::new(SubjectKind::Leaf, None, "t"),
            &mut out,
        );
        only_outcome(&out)
    }

    fn pkcs8(kp: &rcgen::KeyPair) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der()))
    }

    #[test]
    fn own_key_matches_other_key_does_not() {
        let (der, key) = TestCert::device().der_with_key();
        let (_, other) = TestCert::device().der_with_key();
        assert_eq!(outcome(&der, &pkcs8(&key)), Outcome::Pass);
        assert_eq!(outcome(&der, &pkcs8(&other)), Outcome::Fail);
    }

    #[test]
    fn rsa_key_matches() {
        let (der, key) = TestCert::device()
            .alg(&rcgen::PKCS_RSA_SHA256)
            .der_with_key();
        assert_eq!(outcome(&der, &pkcs8(&key)), Outcome::Pass);
    }

    #[test]
    fn garbage_key_fails_without_panicking() {
        let der = TestCert::device().der();
        let junk = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(vec![0x30, 0x01, 0x00]));
        assert_eq!(outcome(&der, &junk), Outcome::Fail);
    }
}
