//! Rule `chain` (with the revocation, validity and EKU facts rustls-webpki reports on the
//! way): path building, signatures, EKU and CRLs by rustls-webpki, plus the OpenSSL-parity
//! checks webpki does not make (self-signed anchors only, CA keyCertSign).
//!
//! webpki stops at its first error. To still report every problem, a failed verification
//! is retried with the failing aspect set aside (any EKU, a time inside the certificates'
//! validity, no CRLs) so the chain itself gets a verdict of its own.

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, ExtendedKeyUsageValidator,
    KeyPurposeIdIter, KeyUsage, RevocationCheckDepth, RevocationOptionsBuilder,
    UnknownStatusPolicy,
};

use crate::findings::Findings;
use crate::input::{Inputs, Step};
use crate::revocation;
use crate::rule::RuleId;
use crate::rules::extensions::ca_key_cert_sign_problem;

/// The rule a webpki error belongs to.
fn rule_for(e: &webpki::Error) -> RuleId {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } | E::CertNotValidYet { .. } | E::InvalidCertValidity => {
            RuleId::Validity
        }
        E::CertRevoked
        | E::UnknownRevocationStatus
        | E::CrlExpired { .. }
        | E::IssuerNotCrlSigner
        | E::InvalidCrlSignatureForPublicKey
        | E::InvalidCrlNumber
        | E::UnsupportedCrlVersion
        | E::UnsupportedDeltaCrl
        | E::UnsupportedIndirectCrl
        | E::UnsupportedCrlIssuingDistributionPoint
        | E::UnsupportedRevocationReason
        | E::UnsupportedRevocationReasonsPartitioning
        | E::UnsupportedCrlSignatureAlgorithmContext(_)
        | E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => RuleId::Revocation,
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => RuleId::Eku,
        E::UnsupportedSignatureAlgorithmContext(_) | E::SignatureAlgorithmMismatch => {
            RuleId::SignatureAlgorithm
        }
        // The signing key is outside what webpki verifies (e.g. RSA under 2048 bits).
        E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => RuleId::KeyStrength,
        E::CaUsedAsEndEntity => RuleId::NotCa,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::UnsupportedCertVersion
        | E::UnsupportedCriticalExtension
        | E::InvalidSerialNumber => RuleId::Structure,
        _ => RuleId::Chain,
    }
}

/// A sentence for a webpki error, with the raw error for searching.
fn describe(e: &webpki::Error) -> String {
    use webpki::Error as E;
    let what = match e {
        E::UnknownIssuer => {
            "no path to a trusted root: an issuer is neither among the intermediates nor a self-signed trust anchor; supply the missing intermediate or the right root"
        }
        E::CertRevoked => {
            "a certificate on the path is revoked by the supplied CRL; re-enroll the device (or replace the revoked CA)"
        }
        E::UnknownRevocationStatus => {
            "no supplied CRL covers a certificate on the path, so its status is unknown and denied; supply the current CRL of each issuing CA"
        }
        E::CrlExpired { .. } => {
            "a CRL on the path is past its nextUpdate; fetch a current CRL from the CA"
        }
        E::IssuerNotCrlSigner => {
            "a CRL issuer's key usage lacks cRLSign, so its CRL cannot be trusted; reissue that CA with cRLSign"
        }
        E::InvalidCrlSignatureForPublicKey => {
            "a CRL's signature does not verify with its issuer's key; fetch the CRL again"
        }
        E::CertExpired { .. } | E::CertNotValidYet { .. } => {
            "a certificate on the path is outside its validity period"
        }
        E::RequiredEkuNotFoundContext(_) => {
            "a certificate on the path has an extended key usage without clientAuth"
        }
        E::CaUsedAsEndEntity => {
            "the leaf is a CA certificate, which rustls-webpki refuses as an end entity"
        }
        E::InvalidSignatureForPublicKey => {
            "a signature on the path does not verify: a certificate was not issued by the CA it names; supply the right intermediate and root"
        }
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "a certificate on the path uses a signature algorithm or key rustls-webpki refuses (SHA-1, MD5, RSA under 2048 bits)"
        }
        E::UnsupportedCriticalExtension => {
            "a certificate on the path has a critical extension rustls-webpki does not understand"
        }
        _ => "rustls-webpki rejected the path",
    };
    format!("{what} [rustls-webpki: {e}]")
}

/// Accepts any EKU: used only when retrying after an EKU failure, which is already reported.
struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, _: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

/// What a retry sets aside.
#[derive(Default)]
struct Relaxed {
    eku: bool,
    time: Option<i64>,
    revocation: bool,
}

impl Relaxed {
    fn is_strict(&self) -> bool {
        !self.eku && self.time.is_none() && !self.revocation
    }
}

fn unix(t: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(t).unwrap_or(0),
    ))
}

/// A time at which the leaf and every intermediate on the path are valid, if any.
fn common_validity(inputs: &Inputs<'_>) -> Option<i64> {
    let leaf = inputs.leaf.x509()?;
    let mut start = leaf.validity().not_before.timestamp();
    let mut end = leaf.validity().not_after.timestamp();
    for (step, cert) in inputs.path_cas() {
        if let (Step::Intermediate(_), Some(x)) = (step, cert.x509()) {
            start = start.max(x.validity().not_before.timestamp());
            end = end.min(x.validity().not_after.timestamp());
        }
    }
    (start <= end).then_some(start)
}

/// Whether a CA (not the leaf) already failed rule `key-strength`.
fn weak_ca_on_path(out: &Findings) -> bool {
    out.0.iter().any(|f| {
        f.rule == RuleId::KeyStrength
            && f.outcome == crate::rule::Outcome::Fail
            && f.subject.kind != crate::report::SubjectKind::Leaf
    })
}

/// Runs the parity checks and webpki, adding `chain` and `revocation` findings (and
/// findings for other rules when webpki is the only one that sees a problem).
pub(crate) fn check(inputs: &Inputs<'_>, now: i64, require_revocation: bool, out: &mut Findings) {
    let leaf = &inputs.leaf.subject;

    // Trust anchors must be roots: OpenSSL without -partial_chain ends a path only at a
    // self-signed certificate (error 2); webpki would accept any anchor.
    for (i, cert) in inputs.anchors.iter().enumerate() {
        if cert.x509().is_none() || inputs.anchor_is_root[i] {
            continue;
        }
        if inputs.path_anchor() == Some(i) {
            out.fail(
                RuleId::Chain,
                &cert.subject,
                "this trust anchor is not a self-signed root, so it cannot end a path; give it as an intermediate and supply its root as the trust anchor",
            );
        } else {
            out.warn(
                RuleId::Chain,
                &cert.subject,
                "this trust anchor is not a self-signed root and was ignored",
            );
        }
    }
    // OpenSSL refuses a CA whose key usage lacks keyCertSign (errors 79/32), the root
    // included (verified: 79 at the root); webpki does not look.
    for (_, cert) in inputs.path_cas() {
        if let Some(x) = cert.x509()
            && let Some(problem) = ca_key_cert_sign_problem(x)
        {
            out.fail(RuleId::Chain, &cert.subject, problem);
        }
    }

    let crls = revocation::usable_crls(inputs, now, out);
    let crl_refs: Vec<&CertRevocationList<'_>> = crls.webpki.iter().collect();

    let leaf_der = CertificateDer::from(inputs.leaf.der);
    let ee = match EndEntityCert::try_from(&leaf_der) {
        Ok(ee) => ee,
        Err(e) => {
            // Usually already reported by our own reading of the leaf (rule structure).
            let rule = rule_for(&e);
            if !out.has_fail(rule) {
                out.fail(
                    rule,
                    leaf,
                    format!("rustls-webpki cannot read the leaf [{e}]; reissue it"),
                );
            }
            if rule != RuleId::Chain {
                out.skip(
                    RuleId::Chain,
                    leaf,
                    format!("not checked: rustls-webpki cannot read the leaf (see rule {rule})"),
                );
            }
            out.skip(
                RuleId::Revocation,
                leaf,
                "not checked: the leaf cannot be read by rustls-webpki",
            );
            return;
        }
    };
    let anchor_ders: Vec<(usize, CertificateDer<'_>)> = inputs
        .anchors
        .iter()
        .enumerate()
        .filter(|(i, c)| inputs.anchor_is_root[*i] && c.x509().is_some())
        .map(|(i, c)| (i, CertificateDer::from(c.der)))
        .collect();
    let mut anchors: Vec<TrustAnchor<'_>> = Vec::with_capacity(anchor_ders.len());
    for (i, der) in &anchor_ders {
        match webpki::anchor_from_trusted_cert(der) {
            Ok(anchor) => anchors.push(anchor),
            Err(e) => out.warn(
                RuleId::Chain,
                &inputs.anchors[*i].subject,
                format!("rustls-webpki cannot use this trust anchor [{e}], so it was ignored"),
            ),
        }
    }
    let intermediates: Vec<CertificateDer<'_>> = inputs
        .intermediates
        .iter()
        .map(|c| CertificateDer::from(c.der))
        .collect();

    let mut relaxed = Relaxed::default();
    if crl_refs.is_empty() {
        relaxed.revocation = true;
        if require_revocation {
            out.fail(
                RuleId::Revocation,
                leaf,
                "no usable CRL was supplied, so the revocation status of the leaf and intermediates is unknown and denied; supply the current CRL of each issuing CA",
            );
        }
    }

    let verify = |relaxed: &Relaxed| {
        let revocation = if relaxed.revocation {
            None
        } else {
            RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
                b.with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(UnknownStatusPolicy::Deny)
                    .with_expiration_policy(ExpirationPolicy::Enforce)
                    .build()
            })
        };
        let time = unix(relaxed.time.unwrap_or(now));
        let algs = webpki::ALL_VERIFICATION_ALGS;
        if relaxed.eku {
            ee.verify_for_usage(
                algs,
                &anchors,
                &intermediates,
                time,
                AnyEku,
                revocation,
                None,
            )
            .map(|_| ())
        } else {
            ee.verify_for_usage(
                algs,
                &anchors,
                &intermediates,
                time,
                KeyUsage::client_auth(),
                revocation,
                None,
            )
            .map(|_| ())
        }
    };

    let mut stopped_at = None;
    // At most one retry per aspect, so this ends.
    for _ in 0..4 {
        match verify(&relaxed) {
            Ok(()) => {
                let via = inputs.path.len().saturating_sub(1);
                let message = if relaxed.is_strict()
                    || (relaxed.revocation && !relaxed.eku && relaxed.time.is_none())
                {
                    format!(
                        "builds to a self-signed trust anchor through {via} intermediate(s); signatures verify"
                    )
                } else {
                    format!(
                        "builds to a self-signed trust anchor through {via} intermediate(s) once the problems reported under other rules are set aside"
                    )
                };
                out.pass(RuleId::Chain, leaf, message);
                if !relaxed.revocation {
                    if !out.has_fail(RuleId::Revocation) {
                        out.pass(
                            RuleId::Revocation,
                            leaf,
                            "neither the leaf nor any intermediate is revoked; the CRLs are current",
                        );
                    }
                } else if !out.has_any(RuleId::Revocation) {
                    out.skip(
                        RuleId::Revocation,
                        leaf,
                        if require_revocation {
                            "not checked: the path is not valid at the evaluation time"
                        } else {
                            "not checked: no CRL supplied and the policy does not require one"
                        },
                    );
                }
                return;
            }
            Err(e) => {
                let mut rule = rule_for(&e);
                // aws-lc refuses to verify with an RSA key under 2048 bits and webpki then
                // reports a bad signature: when a CA on the path already fails key-strength,
                // that is the cause (OpenSSL: error 67), and the signature is unknown, not bad.
                if e == webpki::Error::InvalidSignatureForPublicKey && weak_ca_on_path(out) {
                    rule = RuleId::KeyStrength;
                }
                stopped_at = Some(rule);
                let explained = if rule == RuleId::Revocation {
                    revocation::explain(&e, inputs, &crls.indices, now)
                } else {
                    Vec::new()
                };
                if !explained.is_empty() {
                    for (subject, message) in explained {
                        out.fail(rule, &subject, format!("{message} [rustls-webpki: {e}]"));
                    }
                } else if rule == RuleId::Chain || !out.has_fail(rule) {
                    out.fail(rule, leaf, describe(&e));
                }
                match rule {
                    RuleId::Eku if !relaxed.eku => relaxed.eku = true,
                    RuleId::Revocation if !relaxed.revocation => relaxed.revocation = true,
                    RuleId::Validity if relaxed.time.is_none() => match common_validity(inputs) {
                        Some(t) if t != now => {
                            relaxed.time = Some(t);
                            relaxed.revocation = true;
                        }
                        _ => break,
                    },
                    _ => break,
                }
            }
        }
    }
    let stopped_at = stopped_at.map_or_else(String::new, |r| format!(" (rule {r})"));
    if !out.has_fail(RuleId::Chain) {
        out.skip(
            RuleId::Chain,
            leaf,
            format!("not fully checked: rustls-webpki stopped at a problem reported under another rule{stopped_at}"),
        );
    }
    if !out.has_any(RuleId::Revocation) {
        out.skip(
            RuleId::Revocation,
            leaf,
            format!("not checked: rustls-webpki stopped before revocation at a problem reported under another rule{stopped_at}"),
        );
    }
}
