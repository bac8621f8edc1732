//! Rule `key-strength` (P9): RSA keys of at least the policy's size, EC keys on P-256 or
//! P-384 only. webpki never checks an end-entity key; OpenSSL does only at `-auth_level 2`
//! (error 66), which is the level distribution builds use.

use x509_parser::der_parser::oid;
use x509_parser::der_parser::oid::Oid;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::findings::Findings;
use crate::report::Subject;
use crate::rule::RuleId;

const RSA: Oid<'static> = oid!(1.2.840.113549.1.1.1);
const EC: Oid<'static> = oid!(1.2.840.10045.2.1);
const P256: Oid<'static> = oid!(1.2.840.10045.3.1.7);
const P384: Oid<'static> = oid!(1.3.132.0.34);

pub(crate) fn check(x: &X509Certificate<'_>, s: &Subject, min_rsa_bits: usize, out: &mut Findings) {
    let spki = x.public_key();
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == RSA {
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) if rsa.key_size() >= min_rsa_bits => out.pass(
                RuleId::KeyStrength,
                s,
                format!("RSA-{} key", rsa.key_size()),
            ),
            Ok(PublicKey::RSA(rsa)) => out.fail(
                RuleId::KeyStrength,
                s,
                format!(
                    "RSA-{} key is weaker than the required {min_rsa_bits} bits; make a new key of at least {min_rsa_bits} bits and reissue",
                    rsa.key_size()
                ),
            ),
            _ => out.fail(
                RuleId::KeyStrength,
                s,
                "RSA public key cannot be parsed; reissue the certificate",
            ),
        }
    } else if *algorithm == EC {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == P256 => out.pass(RuleId::KeyStrength, s, "EC key on P-256"),
            Some(c) if c == P384 => out.pass(RuleId::KeyStrength, s, "EC key on P-384"),
            Some(c) => out.fail(
                RuleId::KeyStrength,
                s,
                format!(
                    "EC key on curve {c}; only P-256 and P-384 are allowed: make a new key on P-256"
                ),
            ),
            None => out.fail(
                RuleId::KeyStrength,
                s,
                "EC key without a named curve; only P-256 and P-384 are allowed",
            ),
        }
    } else {
        out.fail(
            RuleId::KeyStrength,
            s,
            format!("public key algorithm {algorithm} is not allowed; use RSA (≥ {min_rsa_bits} bits) or EC P-256/P-384"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SubjectKind;
    use crate::rule::Outcome;
    use crate::rules::testcert::{TestCert, only_outcome};

    fn outcome(cert: &TestCert, min: usize) -> (Outcome, String) {
        let der = cert.der();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        let mut out = Findings::default();
        check(
            &x,
            &Subject::new(SubjectKind::Leaf, None, "t"),
            min,
            &mut out,
        );
        (only_outcome(&out), out.0[0].message.clone())
    }

    #[test]
    fn p256_and_p384_pass_p521_and_ed25519_fail() {
        assert_eq!(outcome(&TestCert::device(), 2048).0, Outcome::Pass);
        assert_eq!(
            outcome(
                &TestCert::device().alg(&rcgen::PKCS_ECDSA_P384_SHA384),
                2048
            )
            .0,
            Outcome::Pass
        );
        let (o, m) = outcome(
            &TestCert::device().alg(&rcgen::PKCS_ECDSA_P521_SHA512),
            2048,
        );
        assert_eq!(o, Outcome::Fail);
        assert!(m.contains("1.3.132.0.35"), "{m}");
        assert_eq!(
            outcome(&TestCert::device().alg(&rcgen::PKCS_ED25519), 2048).0,
            Outcome::Fail
        );
    }

    #[test]
    fn rsa_is_measured_against_the_policy_minimum() {
        let rsa = || TestCert::device().alg(&rcgen::PKCS_RSA_SHA256);
        let der = rsa().der();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        let s = Subject::new(SubjectKind::Leaf, None, "t");
        let mut out = Findings::default();
        check(&x, &s, 2048, &mut out);
        check(&x, &s, 3072, &mut out);
        assert_eq!(out.0[0].outcome, Outcome::Pass);
        assert_eq!(out.0[1].outcome, Outcome::Fail);
        assert!(
            out.0[1]
                .message
                .contains("RSA-2048 key is weaker than the required 3072")
        );
    }
}
