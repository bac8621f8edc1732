//! Rule `revocation`, the part webpki does not do: reading every CRL, passing only the
//! newest CRL of each issuer (webpki uses the first matching one, rustls/webpki#526) and
//! refusing a CRL whose thisUpdate is in the future (OpenSSL error 11; webpki ignores it).

use webpki::{BorrowedCertRevocationList, CertRevocationList};

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::X509Certificate;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::findings::Findings;
use crate::input::{Inputs, Step};
use crate::report::Subject;
use crate::rule::RuleId;

/// The CRL's authority key identifier: with the issuer name, it tells two CAs of the same
/// name apart (e.g. before and after a key rollover).
fn authority_key_id<'c>(crl: &'c CertificateRevocationList<'_>) -> Option<&'c [u8]> {
    crl.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0)
            }
            _ => None,
        })
}

fn subject_key_id<'c>(x: &'c X509Certificate<'_>) -> Option<&'c [u8]> {
    x.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0),
            _ => None,
        })
}

/// The CRLs handed to webpki, and which supplied CRLs they are.
pub(crate) struct UsableCrls<'a> {
    pub indices: Vec<usize>,
    pub webpki: Vec<CertRevocationList<'a>>,
}

/// Chooses the CRLs to hand to webpki, after reporting every CRL that cannot be used.
pub(crate) fn usable_crls<'a>(inputs: &Inputs<'a>, now: i64, out: &mut Findings) -> UsableCrls<'a> {
    let mut newest: Vec<usize> = Vec::new();
    for (i, crl) in inputs.crls.iter().enumerate() {
        let parsed = match &crl.parsed {
            Ok(p) => p,
            Err(e) => {
                out.fail(
                    RuleId::Revocation,
                    &crl.subject,
                    format!(
                        "not a parsable CRL ({e}); fetch it again from the CA's distribution point"
                    ),
                );
                continue;
            }
        };
        let issuer = parsed.issuer().as_raw();
        let rank = |crl: &CertificateRevocationList<'_>| {
            (crl.crl_number().cloned(), crl.last_update().timestamp())
        };
        let same_issuer = newest.iter().position(|&j| {
            inputs.crls[j].parsed.as_ref().is_ok_and(|other| {
                other.issuer().as_raw() == issuer
                    && authority_key_id(other) == authority_key_id(parsed)
            })
        });
        match same_issuer {
            Some(pos) => {
                let j = newest[pos];
                let replace = inputs.crls[j]
                    .parsed
                    .as_ref()
                    .is_ok_and(|other| rank(parsed) > rank(other));
                if replace {
                    newest[pos] = i;
                }
            }
            None => newest.push(i),
        }
    }

    // The path's CAs by name and subject key identifier: a CRL counts for a CA when the
    // names match and the key identifiers do not contradict each other.
    let path_issuers: Vec<(&[u8], Option<&[u8]>)> = inputs
        .path_cas()
        .filter_map(|(_, c)| c.x509().map(|x| (x.subject().as_raw(), subject_key_id(x))))
        .collect();
    let mut usable = UsableCrls {
        indices: Vec::new(),
        webpki: Vec::new(),
    };
    for i in newest {
        let crl = &inputs.crls[i];
        let Ok(parsed) = &crl.parsed else { continue };
        let crl_key = authority_key_id(parsed);
        let relevant = path_issuers.is_empty()
            || path_issuers.iter().any(|(name, key)| {
                *name == parsed.issuer().as_raw()
                    && (key.is_none() || crl_key.is_none() || *key == crl_key)
            });
        if !relevant {
            out.warn(
                RuleId::Revocation,
                &crl.subject,
                "this CRL's issuer (name and key identifier) is not a CA on the certification path, so it was not used; supply the CRLs of the path's CAs",
            );
            continue;
        }
        let this_update = parsed.last_update();
        if this_update.timestamp() > now {
            out.fail(
                RuleId::Revocation,
                &crl.subject,
                format!("the CRL is not yet valid (thisUpdate {this_update} is in the future); check this machine's clock"),
            );
        }
        match BorrowedCertRevocationList::from_der(crl.der) {
            Ok(b) => {
                usable.indices.push(i);
                usable.webpki.push(b.into());
            }
            Err(e) => out.fail(
                RuleId::Revocation,
                &crl.subject,
                format!("rustls-webpki cannot use this CRL ({e:?}); only complete v2 CRLs (no delta or indirect CRLs) are supported"),
            ),
        }
    }
    usable
}

/// The leaf and the intermediates on the path: the certificates whose status is checked.
fn checked_certificates<'i, 'a>(
    inputs: &'i Inputs<'a>,
) -> impl Iterator<Item = (&'i Subject, &'i X509Certificate<'a>)> {
    let leaf = inputs.leaf.x509().map(|x| (&inputs.leaf.subject, x));
    let intermediates = inputs.path_cas().filter_map(|(step, c)| match step {
        Step::Intermediate(_) => c.x509().map(|x| (&c.subject, x)),
        Step::Anchor(_) => None,
    });
    leaf.into_iter().chain(intermediates)
}

/// Names the certificate or CRL behind a revocation error of webpki, which does not say.
/// Empty when the facts cannot be found (the caller then reports webpki's words).
pub(crate) fn explain(
    e: &webpki::Error,
    inputs: &Inputs<'_>,
    used: &[usize],
    now: i64,
) -> Vec<(Subject, String)> {
    let used_crls = || {
        used.iter()
            .filter_map(|&i| inputs.crls[i].parsed.as_ref().ok().map(|p| (i, p)))
    };
    let mut found = Vec::new();
    match e {
        webpki::Error::CertRevoked => {
            for (subject, x) in checked_certificates(inputs) {
                let issuer = x.issuer().as_raw();
                for (_, crl) in used_crls().filter(|(_, c)| c.issuer().as_raw() == issuer) {
                    if let Some(entry) = crl
                        .iter_revoked_certificates()
                        .find(|r| r.raw_serial() == x.raw_serial())
                    {
                        let reason = entry
                            .reason_code()
                            .map_or_else(String::new, |(_, code)| format!(" ({code})"));
                        found.push((
                            subject.clone(),
                            format!(
                                "revoked on {}{reason} according to the CRL of {}; {}",
                                entry.revocation_date,
                                crl.issuer(),
                                if subject.kind == crate::report::SubjectKind::Leaf {
                                    "enroll the device again"
                                } else {
                                    "replace this CA and reissue what it signed"
                                }
                            ),
                        ));
                    }
                }
            }
        }
        webpki::Error::UnknownRevocationStatus => {
            for (subject, x) in checked_certificates(inputs) {
                let issuer = x.issuer().as_raw();
                if !used_crls().any(|(_, c)| c.issuer().as_raw() == issuer) {
                    found.push((
                        subject.clone(),
                        format!(
                            "no usable CRL from its issuer {} was supplied, so its revocation status is unknown and denied; supply that CA's current CRL",
                            x.issuer()
                        ),
                    ));
                }
            }
        }
        webpki::Error::CrlExpired { .. } => {
            for (i, crl) in used_crls() {
                if let Some(next) = crl.next_update()
                    && next.timestamp() < now
                {
                    found.push((
                        inputs.crls[i].subject.clone(),
                        format!("the CRL expired on {next} (nextUpdate); fetch a current CRL from the CA"),
                    ));
                }
            }
        }
        _ => {}
    }
    found
}
