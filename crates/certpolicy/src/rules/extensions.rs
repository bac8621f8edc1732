//! Rules read from the leaf's extensions: `eku` (P2), `key-usage` (P3), `crl-dp` (P5) and
//! `not-ca` (P10), plus the CA-side extension checks OpenSSL makes and webpki does not.

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_X509_EXT_CRL_DISTRIBUTION_POINTS;
use x509_parser::prelude::*;

use crate::findings::Findings;
use crate::report::Subject;
use crate::rule::RuleId;

/// `eku` on the leaf: the extension must be present and contain clientAuth. A missing
/// EKU means "any" to RFC 5280, OpenSSL and webpki; the device policy is stricter.
pub(crate) fn leaf_eku(x: &X509Certificate<'_>, s: &Subject, out: &mut Findings) {
    match x.extended_key_usage() {
        Ok(Some(e)) if e.value.client_auth => {
            out.pass(RuleId::Eku, s, "extended key usage includes clientAuth");
        }
        Ok(Some(e)) if e.value.any => out.fail(
            RuleId::Eku,
            s,
            "extended key usage is anyExtendedKeyUsage without clientAuth; reissue with EKU clientAuth (1.3.6.1.5.5.7.3.2)",
        ),
        Ok(Some(_)) => out.fail(
            RuleId::Eku,
            s,
            "extended key usage lacks clientAuth; reissue with EKU clientAuth (1.3.6.1.5.5.7.3.2)",
        ),
        Ok(None) => out.fail(
            RuleId::Eku,
            s,
            "no extended key usage extension; the policy requires one containing clientAuth: reissue with EKU clientAuth",
        ),
        Err(e) => out.fail(
            RuleId::Eku,
            s,
            format!("extended key usage extension is duplicated or malformed ({e}); reissue the certificate"),
        ),
    }
}

/// `eku` on a CA of the path: an EKU extension, when present, must allow clientAuth, or
/// OpenSSL (error 26) and webpki reject the whole path.
pub(crate) fn ca_eku(x: &X509Certificate<'_>, s: &Subject, out: &mut Findings) {
    match x.extended_key_usage() {
        Ok(Some(e)) if !e.value.client_auth && !e.value.any => out.fail(
            RuleId::Eku,
            s,
            "this CA's extended key usage excludes clientAuth, so nothing it issues can be a client certificate; reissue the CA without EKU or with clientAuth",
        ),
        Err(e) => out.fail(
            RuleId::Eku,
            s,
            format!("extended key usage extension is duplicated or malformed ({e})"),
        ),
        _ => {}
    }
}

/// `key-usage` on the leaf: present with digitalSignature and keyEncipherment. OpenSSL
/// rejects a KU without digitalSignature (error 26) where webpki accepts it, so this rule
/// is also the parity check for that case.
pub(crate) fn leaf_key_usage(x: &X509Certificate<'_>, s: &Subject, out: &mut Findings) {
    match x.key_usage() {
        Ok(Some(k)) => {
            let mut missing = Vec::new();
            if !k.value.digital_signature() {
                missing.push("digitalSignature");
            }
            if !k.value.key_encipherment() {
                missing.push("keyEncipherment");
            }
            if missing.is_empty() {
                out.pass(
                    RuleId::KeyUsage,
                    s,
                    "key usage includes digitalSignature and keyEncipherment",
                );
            } else {
                out.fail(
                    RuleId::KeyUsage,
                    s,
                    format!(
                        "key usage lacks {}; reissue with digitalSignature and keyEncipherment",
                        missing.join(" and ")
                    ),
                );
            }
        }
        Ok(None) => out.fail(
            RuleId::KeyUsage,
            s,
            "no key usage extension; reissue with key usage digitalSignature and keyEncipherment",
        ),
        Err(e) => out.fail(
            RuleId::KeyUsage,
            s,
            format!(
                "key usage extension is duplicated or malformed ({e}); reissue the certificate"
            ),
        ),
    }
}

/// Parity with OpenSSL (errors 79/32): a CA whose KU is present must allow keyCertSign.
/// webpki ignores KU on CAs. Returns the failure message, reported under `chain`.
pub(crate) fn ca_key_cert_sign_problem(x: &X509Certificate<'_>) -> Option<String> {
    match x.key_usage() {
        Ok(Some(k)) if !k.value.key_cert_sign() => Some(
            "this CA's key usage lacks keyCertSign, so OpenSSL refuses it as an issuer; reissue the CA with keyCertSign (and cRLSign)".to_owned(),
        ),
        Err(e) => Some(format!("this CA's key usage is duplicated or malformed ({e})")),
        _ => None,
    }
}

/// `crl-dp`: at least one distribution point with an `http://` URI (scheme compared
/// without case). `https`, `ldap` and `file` do not count: a relying party must be able
/// to fetch the CRL before it can trust any TLS server.
pub(crate) fn leaf_crl_dp(x: &X509Certificate<'_>, s: &Subject, out: &mut Findings) {
    let ext = match x.get_extension_unique(&OID_X509_EXT_CRL_DISTRIBUTION_POINTS) {
        Ok(ext) => ext,
        Err(e) => {
            out.fail(
                RuleId::CrlDp,
                s,
                format!("CRL distribution points extension is duplicated or malformed ({e})"),
            );
            return;
        }
    };
    let Some(ext) = ext else {
        out.fail(
            RuleId::CrlDp,
            s,
            "no CRL distribution points extension; reissue with an http:// CRL distribution point",
        );
        return;
    };
    let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() else {
        out.fail(
            RuleId::CrlDp,
            s,
            "CRL distribution points extension cannot be parsed; reissue the certificate",
        );
        return;
    };
    let mut uris = Vec::new();
    for point in points.iter() {
        if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
            for name in names {
                if let GeneralName::URI(uri) = name {
                    uris.push(*uri);
                }
            }
        }
    }
    let is_http = |u: &str| {
        u.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
    };
    match uris.iter().copied().find(|u| is_http(u)) {
        Some(uri) => out.pass(RuleId::CrlDp, s, format!("CRL distribution point {uri}")),
        None if uris.is_empty() => out.fail(
            RuleId::CrlDp,
            s,
            "CRL distribution points name no URI; reissue with an http:// CRL distribution point",
        ),
        None => out.fail(
            RuleId::CrlDp,
            s,
            format!(
                "no http:// CRL distribution point (found {}); reissue with an http:// URI",
                uris.join(", ")
            ),
        ),
    }
}

/// `not-ca`: the leaf must not carry basicConstraints cA=TRUE (OpenSSL accepts such a
/// leaf for sslclient; webpki and the policy do not).
pub(crate) fn leaf_not_ca(x: &X509Certificate<'_>, s: &Subject, out: &mut Findings) {
    match x.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => out.fail(
            RuleId::NotCa,
            s,
            "the certificate is a CA (basicConstraints cA=TRUE); a device certificate must be an end entity: reissue without cA",
        ),
        Ok(_) => out.pass(RuleId::NotCa, s, "not a CA certificate"),
        Err(e) => out.fail(
            RuleId::NotCa,
            s,
            format!("basic constraints extension is duplicated or malformed ({e})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CrlDistributionPoint, ExtendedKeyUsagePurpose as Eku, KeyUsagePurpose as Ku};

    use super::*;
    use crate::report::SubjectKind;
    use crate::rule::Outcome;
    use crate::rules::testcert::{TestCert, only_outcome};

    fn run(
        cert: &TestCert,
        rule: fn(&X509Certificate<'_>, &Subject, &mut Findings),
    ) -> (Outcome, String) {
        let der = cert.der();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        let mut out = Findings::default();
        rule(&x, &Subject::new(SubjectKind::Leaf, None, "t"), &mut out);
        (only_outcome(&out), out.0[0].message.clone())
    }

    #[test]
    fn eku_client_auth_passes_even_with_extras() {
        let c = TestCert::device()
            .with(|p| p.extended_key_usages = vec![Eku::ServerAuth, Eku::ClientAuth]);
        assert_eq!(run(&c, leaf_eku).0, Outcome::Pass);
    }

    #[test]
    fn eku_missing_any_only_or_server_only_fails() {
        for ekus in [vec![], vec![Eku::Any], vec![Eku::ServerAuth]] {
            let c = TestCert::device().with(|p| p.extended_key_usages = ekus.clone());
            let (outcome, message) = run(&c, leaf_eku);
            assert_eq!(outcome, Outcome::Fail, "{ekus:?}");
            assert!(message.contains("clientAuth"), "{message}");
        }
    }

    #[test]
    fn ca_eku_without_client_auth_fails_but_absent_or_any_passes() {
        let server = TestCert::device()
            .ca()
            .with(|p| p.extended_key_usages = vec![Eku::ServerAuth]);
        let der = server.der();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        let mut out = Findings::default();
        ca_eku(
            &x,
            &Subject::new(SubjectKind::Intermediate, Some(0), "i"),
            &mut out,
        );
        assert!(out.has_fail(RuleId::Eku));
        for ekus in [vec![], vec![Eku::Any]] {
            let der = TestCert::device()
                .ca()
                .with(|p| p.extended_key_usages = ekus)
                .der();
            let (_, x) = X509Certificate::from_der(&der).unwrap();
            let mut out = Findings::default();
            ca_eku(
                &x,
                &Subject::new(SubjectKind::Intermediate, Some(0), "i"),
                &mut out,
            );
            assert!(out.0.is_empty());
        }
    }

    #[test]
    fn key_usage_needs_both_bits_and_names_the_missing_one() {
        assert_eq!(run(&TestCert::device(), leaf_key_usage).0, Outcome::Pass);
        let ds_only = TestCert::device().with(|p| p.key_usages = vec![Ku::DigitalSignature]);
        let (o, m) = run(&ds_only, leaf_key_usage);
        assert_eq!(o, Outcome::Fail);
        assert!(m.contains("lacks keyEncipherment"), "{m}");
        let ke_only = TestCert::device().with(|p| p.key_usages = vec![Ku::KeyEncipherment]);
        assert!(
            run(&ke_only, leaf_key_usage)
                .1
                .contains("lacks digitalSignature")
        );
        let none = TestCert::device().with(|p| p.key_usages = vec![]);
        assert!(
            run(&none, leaf_key_usage)
                .1
                .contains("no key usage extension")
        );
    }

    #[test]
    fn ca_without_key_cert_sign_is_a_problem() {
        let der = TestCert::device()
            .ca()
            .with(|p| p.key_usages = vec![Ku::CrlSign])
            .der();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        assert!(ca_key_cert_sign_problem(&x).is_some());
        let der = TestCert::device()
            .ca()
            .with(|p| p.key_usages = vec![Ku::KeyCertSign, Ku::CrlSign])
            .der();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        assert!(ca_key_cert_sign_problem(&x).is_none());
    }

    #[test]
    fn crl_dp_http_passes_case_insensitively_others_fail() {
        let with = |uris: Vec<&str>| {
            TestCert::device().with(move |p| {
                p.crl_distribution_points = vec![CrlDistributionPoint {
                    uris: uris.into_iter().map(str::to_owned).collect(),
                }];
            })
        };
        assert_eq!(
            run(&with(vec!["HTTP://pki.example/a.crl"]), leaf_crl_dp).0,
            Outcome::Pass
        );
        assert_eq!(
            run(
                &with(vec!["ldap://x/a", "http://pki.example/a.crl"]),
                leaf_crl_dp
            )
            .0,
            Outcome::Pass
        );
        let (o, m) = run(&with(vec!["https://pki.example/a.crl"]), leaf_crl_dp);
        assert_eq!(o, Outcome::Fail);
        assert!(m.contains("https://pki.example/a.crl"), "{m}");
        let none = TestCert::device().with(|p| p.crl_distribution_points = vec![]);
        assert!(
            run(&none, leaf_crl_dp)
                .1
                .contains("no CRL distribution points")
        );
    }

    #[test]
    fn not_ca_fails_a_ca_leaf() {
        assert_eq!(run(&TestCert::device(), leaf_not_ca).0, Outcome::Pass);
        assert_eq!(run(&TestCert::device().ca(), leaf_not_ca).0, Outcome::Fail);
    }
}
