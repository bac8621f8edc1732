//! Rule `revocation`, the part webpki does not do: reading every CRL, passing only the
//! newest CRL of each issuer (webpki uses the first matching one, rustls/webpki#526) and
//! refusing a CRL whose thisUpdate is in the future (OpenSSL error 11; webpki ignores it).

use webpki::{BorrowedCertRevocationList, CertRevocationList};

use crate::findings::Findings;
use crate::input::Inputs;
use crate::rule::RuleId;

/// The CRLs to hand to webpki, after reporting every CRL that cannot be used.
pub(crate) fn usable_crls<'a>(
    inputs: &Inputs<'a>,
    now: i64,
    out: &mut Findings,
) -> Vec<CertRevocationList<'a>> {
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
        let rank = |crl: &x509_parser::revocation_list::CertificateRevocationList<'_>| {
            (crl.crl_number().cloned(), crl.last_update().timestamp())
        };
        let same_issuer = newest.iter().position(|&j| {
            inputs.crls[j]
                .parsed
                .as_ref()
                .is_ok_and(|other| other.issuer().as_raw() == issuer)
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

    let path_issuers: Vec<&[u8]> = inputs
        .path_cas()
        .filter_map(|(_, c)| c.x509().map(|x| x.subject().as_raw()))
        .collect();
    let mut usable = Vec::new();
    for i in newest {
        let crl = &inputs.crls[i];
        let Ok(parsed) = &crl.parsed else { continue };
        let relevant = path_issuers.is_empty() || path_issuers.contains(&parsed.issuer().as_raw());
        if !relevant {
            out.warn(
                RuleId::Revocation,
                &crl.subject,
                "this CRL's issuer is not on the certification path, so it was not used; supply the CRLs of the path's CAs",
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
            Ok(b) => usable.push(b.into()),
            Err(e) => out.fail(
                RuleId::Revocation,
                &crl.subject,
                format!("rustls-webpki cannot use this CRL ({e:?}); only complete v2 CRLs (no delta or indirect CRLs) are supported"),
            ),
        }
    }
    usable
}
