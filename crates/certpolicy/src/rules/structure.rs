//! Rule `structure`: the certificate parses, with no duplicate, unparsable or unknown
//! critical extension (spec P12).

use x509_parser::extensions::ParsedExtension;
use x509_parser::x509::X509Version;

use crate::findings::Findings;
use crate::input::Cert;
use crate::rule::RuleId;

/// Checks one supplied certificate.
pub(crate) fn check(cert: &Cert<'_>, out: &mut Findings) {
    let s = &cert.subject;
    let x = match &cert.parsed {
        Ok(x) => x,
        Err(e) => {
            out.fail(
                RuleId::Structure,
                s,
                format!("not a parsable X.509 certificate ({e}); check that the file holds a certificate in PEM or DER"),
            );
            return;
        }
    };
    let mut problems = Vec::new();
    if x.version() != X509Version::V3 {
        problems.push(format!(
            "it is an X.509 version {} certificate; only v3 carries the extensions the policy needs",
            x.version().0 + 1
        ));
    }
    if cert.trailing > 0 {
        problems.push(format!(
            "{} unexpected byte(s) follow the certificate",
            cert.trailing
        ));
    }
    // `extensions_map` fails on a repeated OID; the deprecated `find_extension` would hide it.
    if let Err(e) = x.tbs_certificate.extensions_map() {
        problems.push(format!("duplicate extensions ({e})"));
    }
    for ext in x.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::ParseError { error } => problems.push(format!(
                "extension {} cannot be parsed ({error})",
                ext.oid
            )),
            ParsedExtension::UnsupportedExtension { .. } if ext.critical => problems.push(format!(
                "extension {} is critical but unknown, so relying parties must reject the certificate",
                ext.oid
            )),
            _ => {}
        }
    }
    if problems.is_empty() {
        out.pass(
            RuleId::Structure,
            s,
            "parses cleanly; no duplicate, unparsable or unknown critical extension",
        );
    } else {
        out.fail(
            RuleId::Structure,
            s,
            format!("{}; reissue the certificate", problems.join("; ")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SubjectKind;
    use crate::rule::Outcome;
    use crate::rules::testcert::{TestCert, only_outcome};

    fn run(der: &[u8]) -> Findings {
        let mut out = Findings::default();
        check(&Cert::parse(der, SubjectKind::Leaf, None), &mut out);
        out
    }

    #[test]
    fn a_well_formed_certificate_passes() {
        let der = TestCert::device().der();
        assert_eq!(only_outcome(&run(&der)), Outcome::Pass);
    }

    #[test]
    fn garbage_fails_with_an_actionable_message() {
        let out = run(b"\x30\x03\x02\x01\x00");
        assert_eq!(only_outcome(&out), Outcome::Fail);
        assert!(
            out.0[0]
                .message
                .contains("not a parsable X.509 certificate")
        );
    }

    #[test]
    fn trailing_bytes_fail() {
        let mut der = TestCert::device().der();
        der.extend_from_slice(&[0, 0]);
        let out = run(&der);
        assert_eq!(only_outcome(&out), Outcome::Fail);
        assert!(out.0[0].message.contains("2 unexpected byte(s)"));
    }

    #[test]
    fn unknown_critical_extension_fails() {
        let der = TestCert::device()
            .custom_extension(&[1, 3, 6, 1, 4, 1, 99999, 1], true)
            .der();
        let out = run(&der);
        assert_eq!(only_outcome(&out), Outcome::Fail);
        assert!(out.0[0].message.contains("critical but unknown"));
    }

    #[test]
    fn duplicate_extension_fails() {
        // A second EKU extension (SEQUENCE { clientAuth }) beside the one rcgen writes.
        let eku = vec![
            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
        ];
        let der = TestCert::device()
            .custom_extension_with(&[2, 5, 29, 37], false, eku)
            .der();
        let out = run(&der);
        assert_eq!(only_outcome(&out), Outcome::Fail);
        assert!(
            out.0[0].message.contains("duplicate extensions"),
            "{}",
            out.0[0].message
        );
    }

    #[test]
    fn unknown_non_critical_extension_passes() {
        let der = TestCert::device()
            .custom_extension(&[1, 3, 6, 1, 4, 1, 99999, 1], false)
            .der();
        assert_eq!(only_outcome(&run(&der)), Outcome::Pass);
    }
}
