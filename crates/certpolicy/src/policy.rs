//! The policy and its evaluation: every rule runs, whatever failed before it.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};

use crate::chain;
use crate::findings::Findings;
use crate::input::{Inputs, Step};
use crate::report::Report;
use crate::rule::RuleId;
use crate::rules::{extensions, key, name, private_key, signature, structure, validity};

/// The device certificate policy. [`Policy::default`] is the policy of
/// `docs/certpolicy.md`; the fields tune it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// Warn (rule `validity`) when a certificate on the path expires within this window.
    /// Default: 30 days.
    pub expiry_warning: Duration,
    /// Smallest RSA modulus accepted by rule `key-strength`, in bits. Default: 2048.
    pub min_rsa_bits: usize,
    /// Fail rule `revocation` when no CRL is supplied (unknown status is denied).
    /// Default: true. A CA proving what it just issued, before any CRL exists, may turn
    /// it off; the rule is then reported as skipped.
    pub require_revocation_status: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            expiry_warning: Duration::from_secs(30 * 86_400),
            min_rsa_bits: 2048,
            require_revocation_status: true,
        }
    }
}

/// Everything one evaluation looks at, for [`Policy::evaluate_evidence`]; the fields are
/// the arguments of [`Policy::evaluate`] plus an optional private key.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The device certificate.
    pub leaf: &'a CertificateDer<'a>,
    /// Intermediate CAs the path may use (no other certificate is used as one).
    pub intermediates: &'a [CertificateDer<'a>],
    /// Trusted roots. Only self-signed certificates can end a path.
    pub trust_anchors: &'a [CertificateDer<'a>],
    /// CRLs; for each issuer only the newest is used.
    pub crls: &'a [CertificateRevocationListDer<'a>],
    /// The key the device holds for the leaf, when it is to be checked.
    pub private_key: Option<&'a PrivateKeyDer<'a>>,
    /// The name the certificate must carry, exactly (what `hostname` prints).
    pub computer_name: &'a str,
    /// The evaluation time.
    pub now: UnixTime,
}

impl Policy {
    /// Evaluates every rule against a leaf, the intermediates and trust anchors it may
    /// chain through, and the CRLs to check it against, at time `now`. Never stops at the
    /// first failure and never panics, whatever the bytes.
    pub fn evaluate(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        trust_anchors: &[CertificateDer<'_>],
        crls: &[CertificateRevocationListDer<'_>],
        computer_name: &str,
        now: UnixTime,
    ) -> Report {
        let inputs = Inputs::new(leaf, intermediates, trust_anchors, crls);
        self.run(&inputs, None, computer_name, now)
    }

    /// [`Policy::evaluate`] with every input in one value, including the private key.
    pub fn evaluate_evidence(&self, evidence: &Evidence<'_>) -> Report {
        let inputs = Inputs::new(
            evidence.leaf,
            evidence.intermediates,
            evidence.trust_anchors,
            evidence.crls,
        );
        self.run(
            &inputs,
            evidence.private_key,
            evidence.computer_name,
            evidence.now,
        )
    }

    fn run(
        &self,
        inputs: &Inputs<'_>,
        private_key: Option<&PrivateKeyDer<'_>>,
        computer_name: &str,
        now: UnixTime,
    ) -> Report {
        let now_secs = now.as_secs();
        let now_i64 = i64::try_from(now_secs).unwrap_or(i64::MAX);
        let mut out = Findings::default();
        let leaf_subject = &inputs.leaf.subject;

        structure::check(&inputs.leaf, &mut out);
        for cert in inputs.intermediates.iter().chain(&inputs.anchors) {
            structure::check(cert, &mut out);
        }

        let Some(leaf) = inputs.leaf.x509() else {
            for rule in RuleId::ALL {
                if rule != RuleId::Structure {
                    out.skip(
                        rule,
                        leaf_subject,
                        "not checked: the leaf certificate cannot be parsed (see rule structure)",
                    );
                }
            }
            return Report::new(computer_name, now_secs, out.0);
        };

        extensions::leaf_eku(leaf, leaf_subject, &mut out);
        extensions::leaf_key_usage(leaf, leaf_subject, &mut out);
        extensions::leaf_crl_dp(leaf, leaf_subject, &mut out);
        extensions::leaf_not_ca(leaf, leaf_subject, &mut out);
        name::check(leaf, computer_name, leaf_subject, &mut out);
        let warn = Some(self.expiry_warning);
        validity::check(leaf, leaf_subject, now_i64, warn, &mut out);
        signature::check(leaf, leaf_subject, &mut out);
        key::check(leaf, leaf_subject, self.min_rsa_bits, &mut out);
        match private_key {
            Some(k) => private_key::check(leaf, k, leaf_subject, &mut out),
            None => out.skip(
                RuleId::PrivateKey,
                leaf_subject,
                "not checked: no private key supplied",
            ),
        }

        for (step, cert) in inputs.path_cas() {
            let Some(x) = cert.x509() else { continue };
            let s = &cert.subject;
            validity::check(x, s, now_i64, warn, &mut out);
            key::check(x, s, self.min_rsa_bits, &mut out);
            let is_root = matches!(step, Step::Anchor(i) if inputs.anchor_is_root[i]);
            if !is_root {
                // A root's own signature is never relied on, so its digest does not matter.
                signature::check(x, s, &mut out);
            }
            if matches!(step, Step::Intermediate(_)) {
                extensions::ca_eku(x, s, &mut out);
            }
        }

        chain::check(inputs, now_i64, self.require_revocation_status, &mut out);
        Report::new(computer_name, now_secs, out.0)
    }
}
