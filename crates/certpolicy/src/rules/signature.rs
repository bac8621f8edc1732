//! Rule `signature-algorithm` (P8): no MD5 or SHA-1 signature on any certificate below the
//! root, and the inner (TBS) and outer algorithm identifiers agree.

use x509_parser::der_parser::oid;
use x509_parser::der_parser::oid::Oid;
use x509_parser::prelude::*;
use x509_parser::signature_algorithm::SignatureAlgorithm;

use crate::findings::Findings;
use crate::report::Subject;
use crate::rule::RuleId;

const WEAK: &[(Oid<'static>, &str)] = &[
    (oid!(1.2.840.113549.1.1.4), "md5WithRSAEncryption"),
    (oid!(1.2.840.113549.1.1.2), "md2WithRSAEncryption"),
    (oid!(1.2.840.113549.1.1.5), "sha1WithRSAEncryption"),
    (oid!(1.3.14.3.2.29), "sha1WithRSA (OIW)"),
    (oid!(1.2.840.10045.4.1), "ecdsa-with-SHA1"),
    (oid!(1.2.840.10040.4.3), "dsa-with-SHA1"),
];
const RSASSA_PSS: Oid<'static> = oid!(1.2.840.113549.1.1.10);
const NAMED: &[(Oid<'static>, &str)] = &[
    (oid!(1.2.840.113549.1.1.11), "sha256WithRSAEncryption"),
    (oid!(1.2.840.113549.1.1.12), "sha384WithRSAEncryption"),
    (oid!(1.2.840.113549.1.1.13), "sha512WithRSAEncryption"),
    (oid!(1.2.840.113549.1.1.10), "RSASSA-PSS"),
    (oid!(1.2.840.10045.4.3.2), "ecdsa-with-SHA256"),
    (oid!(1.2.840.10045.4.3.3), "ecdsa-with-SHA384"),
    (oid!(1.2.840.10045.4.3.4), "ecdsa-with-SHA512"),
    (oid!(1.3.101.112), "Ed25519"),
];
const SHA1: Oid<'static> = oid!(1.3.14.3.2.26);
const MD5: Oid<'static> = oid!(1.2.840.113549.2.5);

/// The weak digest named by an algorithm identifier, if any. RSASSA-PSS hides its digest
/// in the parameters, and absent parameters mean SHA-1 (RFC 4055).
fn weak_digest(alg: &AlgorithmIdentifier<'_>) -> Option<&'static str> {
    if let Some((_, name)) = WEAK.iter().find(|(o, _)| *o == alg.algorithm) {
        return Some(name);
    }
    if alg.algorithm == RSASSA_PSS && alg.parameters.is_none() {
        return Some("RSASSA-PSS with default (SHA-1) parameters");
    }
    match SignatureAlgorithm::try_from(alg) {
        Ok(SignatureAlgorithm::RSASSA_PSS(params)) => {
            let hash = params.hash_algorithm_oid();
            (*hash == SHA1 || *hash == MD5).then_some("RSASSA-PSS with a SHA-1 or MD5 digest")
        }
        _ => None,
    }
}

pub(crate) fn check(x: &X509Certificate<'_>, s: &Subject, out: &mut Findings) {
    let outer = &x.signature_algorithm;
    let inner = &x.tbs_certificate.signature;
    if outer.algorithm != inner.algorithm || outer.parameters != inner.parameters {
        out.fail(
            RuleId::SignatureAlgorithm,
            s,
            format!(
                "the signed algorithm {} differs from the outer algorithm {}; the certificate is malformed: reissue it",
                inner.algorithm, outer.algorithm
            ),
        );
    } else if let Some(name) = weak_digest(outer) {
        out.fail(
            RuleId::SignatureAlgorithm,
            s,
            format!("signed with {name}, which is forgeable; reissue with SHA-256 or stronger"),
        );
    } else {
        out.pass(
            RuleId::SignatureAlgorithm,
            s,
            match NAMED.iter().find(|(o, _)| *o == outer.algorithm) {
                Some((_, name)) => format!("signed with {name}"),
                None => format!(
                    "signature algorithm {} is not MD5 or SHA-1",
                    outer.algorithm
                ),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SubjectKind;
    use crate::rule::Outcome;
    use crate::rules::testcert::{TestCert, only_outcome};

    fn outcome(der: &[u8]) -> Outcome {
        let (_, x) = X509Certificate::from_der(der).unwrap();
        let mut out = Findings::default();
        check(&x, &Subject::new(SubjectKind::Leaf, None, "t"), &mut out);
        only_outcome(&out)
    }

    #[test]
    fn sha256_and_sha384_pass() {
        assert_eq!(outcome(&TestCert::device().der()), Outcome::Pass);
        let p384 = TestCert::device().alg(&rcgen::PKCS_ECDSA_P384_SHA384).der();
        assert_eq!(outcome(&p384), Outcome::Pass);
    }

    #[test]
    fn weak_oids_are_recognised() {
        for (oid, _) in WEAK {
            let alg = AlgorithmIdentifier::new(oid.clone(), None);
            assert!(weak_digest(&alg).is_some(), "{oid}");
        }
        let sha256 = AlgorithmIdentifier::new(oid!(1.2.840.113549.1.1.11), None);
        assert!(weak_digest(&sha256).is_none());
    }

    #[test]
    fn pss_without_parameters_means_sha1() {
        // RFC 4055: absent RSASSA-PSS parameters default to SHA-1. A real SHA-1-signed
        // certificate is produced with openssl in tests/openssl_parity.rs.
        let pss = AlgorithmIdentifier::new(oid!(1.2.840.113549.1.1.10), None);
        assert!(weak_digest(&pss).is_some());
    }
}
