//! Rule identifiers and outcomes: the stable vocabulary of a [`crate::Report`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// One rule of the device certificate policy. The kebab-case id (`as_str`) is stable: it
/// appears in the human report, in the JSON output and in `docs/certpolicy.md`, and scripts
/// may match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    /// The leaf builds to a self-signed trust anchor through the given intermediates, with
    /// valid signatures (rustls-webpki) and OpenSSL's CA checks (keyCertSign, real roots).
    Chain,
    /// The leaf has an EKU extension containing clientAuth; no CA on the path excludes it.
    Eku,
    /// The leaf has a KU extension with digitalSignature and keyEncipherment.
    KeyUsage,
    /// The leaf names at least one CRL distribution point with an `http://` URI.
    CrlDp,
    /// Exactly one CN, or a SAN dNSName, equals the computer name byte for byte.
    SubjectName,
    /// The leaf and every CA on the path are within their validity period.
    Validity,
    /// No MD5 or SHA-1 signature on any certificate below the root.
    SignatureAlgorithm,
    /// RSA keys of at least the policy's size; EC keys on P-256 or P-384 only.
    KeyStrength,
    /// The leaf is not a CA (no basicConstraints cA=TRUE).
    NotCa,
    /// The leaf and every intermediate have a current, non-revoking CRL from their issuer.
    Revocation,
    /// Every certificate parses, has no duplicate, unparsable or unknown critical extension.
    Structure,
    /// A supplied private key belongs to the leaf certificate.
    PrivateKey,
}

impl RuleId {
    /// Every rule, in report order.
    pub const ALL: [Self; 12] = [
        Self::Structure,
        Self::Chain,
        Self::Validity,
        Self::Revocation,
        Self::Eku,
        Self::KeyUsage,
        Self::CrlDp,
        Self::SubjectName,
        Self::SignatureAlgorithm,
        Self::KeyStrength,
        Self::NotCa,
        Self::PrivateKey,
    ];

    /// The stable id used in output and documentation, e.g. `"key-usage"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chain => "chain",
            Self::Eku => "eku",
            Self::KeyUsage => "key-usage",
            Self::CrlDp => "crl-dp",
            Self::SubjectName => "subject-name",
            Self::Validity => "validity",
            Self::SignatureAlgorithm => "signature-algorithm",
            Self::KeyStrength => "key-strength",
            Self::NotCa => "not-ca",
            Self::Revocation => "revocation",
            Self::Structure => "structure",
            Self::PrivateKey => "private-key",
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule concluded about one certificate (or CRL, or key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The rule holds.
    Pass,
    /// The rule is broken: the certificate is not acceptable.
    Fail,
    /// The rule holds today but needs attention soon (e.g. the leaf expires within the
    /// warning window). A warning does not make the report fail.
    Warn,
    /// The rule could not be evaluated because an earlier problem (reported as its own
    /// failure) hides the facts it needs, or because its input was not supplied.
    Skipped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Warn => "warn",
            Self::Skipped => "skipped",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_kebab_case_and_match_serde() {
        for rule in RuleId::ALL {
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{}\"", rule.as_str()));
            assert_eq!(rule.to_string(), rule.as_str());
        }
        assert_eq!(RuleId::SignatureAlgorithm.as_str(), "signature-algorithm");
    }

    #[test]
    fn all_lists_each_rule_once() {
        let mut ids: Vec<_> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RuleId::ALL.len());
    }
}
