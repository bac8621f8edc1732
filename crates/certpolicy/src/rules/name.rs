//! Rule `subject-name` (P6): exactly one CN equal to the computer name, or a SAN dNSName
//! equal to it, byte for byte. Never webpki's or OpenSSL's host-name matching: both ignore
//! case, and a device name is exact.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

use crate::findings::Findings;
use crate::report::Subject;
use crate::rule::RuleId;

/// Why a computer name can never match, whatever the certificate says.
fn unusable_computer_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("the computer name is empty")
    } else if !name.is_ascii() {
        Some("the computer name is not ASCII (dNSName is IA5String; rename the device)")
    } else if name.ends_with('.') {
        Some("the computer name ends with a dot")
    } else if name.contains('*') {
        Some("the computer name contains a wildcard")
    } else {
        None
    }
}

pub(crate) fn check(x: &X509Certificate<'_>, computer_name: &str, s: &Subject, out: &mut Findings) {
    if let Some(why) = unusable_computer_name(computer_name) {
        out.fail(
            RuleId::SubjectName,
            s,
            format!("{why}: {computer_name:?} cannot match a device certificate; pass the name `hostname` prints"),
        );
        return;
    }
    let mut seen = Vec::new();
    match x.subject_alternative_name() {
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(dns) = name {
                    if *dns == computer_name {
                        out.pass(
                            RuleId::SubjectName,
                            s,
                            format!("SAN dNSName equals the computer name {computer_name:?}"),
                        );
                        return;
                    }
                    seen.push(format!("SAN dNSName {dns:?}"));
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            out.fail(
                RuleId::SubjectName,
                s,
                format!("subject alternative name extension is duplicated or malformed ({e}); reissue the certificate"),
            );
            return;
        }
    }
    let cns: Vec<_> = x.subject().iter_common_name().collect();
    match cns.as_slice() {
        [cn] => match cn.as_str() {
            Ok(value) if value == computer_name => {
                out.pass(
                    RuleId::SubjectName,
                    s,
                    format!("subject CN equals the computer name {computer_name:?}"),
                );
                return;
            }
            Ok(value) => seen.push(format!("CN {value:?}")),
            Err(_) => seen.push("a CN in an unsupported string type (e.g. BMPString)".to_owned()),
        },
        [] => {}
        many => seen.push(format!("{} CNs (ambiguous, so none counts)", many.len())),
    }
    let found = if seen.is_empty() {
        "no CN and no SAN dNSName".to_owned()
    } else {
        seen.join(", ")
    };
    out.fail(
        RuleId::SubjectName,
        s,
        format!("neither the single CN nor a SAN dNSName equals the computer name {computer_name:?} (case-sensitive); found {found}: reissue for this computer name"),
    );
}

#[cfg(test)]
mod tests {
    use rcgen::{DistinguishedName, DnType, DnValue, SanType};

    use super::*;
    use crate::report::SubjectKind;
    use crate::rule::Outcome;
    use crate::rules::testcert::{NAME, TestCert, only_outcome};

    fn outcome(cert: &TestCert, name: &str) -> (Outcome, String) {
        let der = cert.der();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        let mut out = Findings::default();
        check(
            &x,
            name,
            &Subject::new(SubjectKind::Leaf, None, "t"),
            &mut out,
        );
        (only_outcome(&out), out.0[0].message.clone())
    }

    fn cn_only(cns: &[&str]) -> TestCert {
        let cns: Vec<String> = cns.iter().map(|s| (*s).to_owned()).collect();
        TestCert::device().with(move |p| {
            p.subject_alt_names = vec![];
            let mut dn = DistinguishedName::new();
            for cn in cns {
                dn.push(DnType::CommonName, cn);
            }
            p.distinguished_name = dn;
        })
    }

    fn san_only(dns: &str) -> TestCert {
        let dns = dns.to_owned();
        TestCert::device().with(move |p| {
            p.distinguished_name = DistinguishedName::new();
            p.subject_alt_names = vec![SanType::DnsName(dns.try_into().unwrap())];
        })
    }

    #[test]
    fn exact_cn_or_san_passes() {
        assert_eq!(outcome(&cn_only(&[NAME]), NAME).0, Outcome::Pass);
        assert_eq!(outcome(&san_only(NAME), NAME).0, Outcome::Pass);
    }

    #[test]
    fn case_differences_fail() {
        let (o, m) = outcome(&TestCert::device(), "mac01.local");
        assert_eq!(o, Outcome::Fail);
        assert!(
            m.contains("case-sensitive") && m.contains("\"MAC01.local\""),
            "{m}"
        );
    }

    #[test]
    fn trailing_dot_wildcard_empty_and_non_ascii_fail() {
        assert_eq!(
            outcome(&san_only("MAC01.local."), "MAC01.local").0,
            Outcome::Fail
        );
        assert_eq!(
            outcome(&san_only("MAC01.local."), "MAC01.local.").0,
            Outcome::Fail
        );
        assert_eq!(outcome(&san_only("*.local"), "*.local").0, Outcome::Fail);
        assert_eq!(outcome(&san_only("*.local"), NAME).0, Outcome::Fail);
        assert_eq!(outcome(&TestCert::device(), "").0, Outcome::Fail);
        assert!(
            outcome(&cn_only(&["MÄC01"]), "MÄC01")
                .1
                .contains("not ASCII")
        );
    }

    // Two CNs (ambiguous → fail) cannot be built with rcgen, whose DN holds one value per
    // attribute type; tests/openssl_parity.rs builds that case with openssl.

    #[test]
    fn bmp_string_cn_does_not_match() {
        let c = TestCert::device().with(move |p| {
            p.subject_alt_names = vec![];
            let mut dn = DistinguishedName::new();
            dn.push(
                DnType::CommonName,
                DnValue::BmpString(NAME.try_into().unwrap()),
            );
            p.distinguished_name = dn;
        });
        let (o, m) = outcome(&c, NAME);
        assert_eq!(o, Outcome::Fail);
        assert!(m.contains("unsupported string type"), "{m}");
    }
}
