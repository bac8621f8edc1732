//! The result of an evaluation: every finding, never only the first failure.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rule::{Outcome, RuleId};

/// Which input a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectKind {
    /// The certificate being evaluated.
    Leaf,
    /// One of the supplied intermediates (`index` is its position in that list).
    Intermediate,
    /// One of the supplied trust anchors (`index` is its position in that list).
    TrustAnchor,
    /// One of the supplied CRLs (`index` is its position in that list).
    Crl,
    /// The supplied private key.
    PrivateKey,
}

/// The input a [`Finding`] is about, named so a person can find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// What kind of input it is.
    pub kind: SubjectKind,
    /// Position in the supplied list, for intermediates, anchors and CRLs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub index: Option<usize>,
    /// The certificate's subject DN (for a CRL: its issuer DN), or a description when the
    /// input could not be parsed.
    pub name: String,
}

impl Subject {
    pub(crate) fn new(kind: SubjectKind, index: Option<usize>, name: impl Into<String>) -> Self {
        Self {
            kind,
            index,
            name: name.into(),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            SubjectKind::Leaf => "leaf",
            SubjectKind::Intermediate => "intermediate",
            SubjectKind::TrustAnchor => "trust anchor",
            SubjectKind::Crl => "CRL",
            SubjectKind::PrivateKey => "private key",
        };
        match self.index {
            Some(i) => write!(f, "{kind} #{} ({})", i + 1, self.name),
            None => write!(f, "{kind} ({})", self.name),
        }
    }
}

/// One conclusion of one rule about one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule that was checked.
    pub rule: RuleId,
    /// What it concluded.
    pub outcome: Outcome,
    /// A sentence a person can act on: what was found and, on failure, what to do.
    pub message: String,
    /// The certificate, CRL or key the finding is about.
    pub subject: Subject,
}

/// Everything the policy found about one leaf, its chain, CRLs and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    passed: bool,
    computer_name: String,
    evaluated_at: u64,
    findings: Vec<Finding>,
}

impl Report {
    pub(crate) fn new(computer_name: &str, evaluated_at: u64, mut findings: Vec<Finding>) -> Self {
        // Report order: by rule (RuleId::ALL order), then by input, so output is stable.
        let rank = |r: RuleId| {
            RuleId::ALL
                .iter()
                .position(|x| *x == r)
                .unwrap_or(usize::MAX)
        };
        findings.sort_by_key(|f| rank(f.rule));
        Self {
            passed: !findings.iter().any(|f| f.outcome == Outcome::Fail),
            computer_name: computer_name.to_owned(),
            evaluated_at,
            findings,
        }
    }

    /// True when no rule failed (warnings and skipped rules do not fail a report).
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// Every finding, ordered by rule.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Only the failures.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.outcome == Outcome::Fail)
    }

    /// The distinct rules that failed, in report order.
    pub fn failed_rules(&self) -> Vec<RuleId> {
        let mut rules: Vec<RuleId> = self.failures().map(|f| f.rule).collect();
        rules.dedup();
        rules
    }

    /// The computer name the subject-name rule compared against.
    pub fn computer_name(&self) -> &str {
        &self.computer_name
    }

    /// The evaluation time, in seconds since the Unix epoch.
    pub fn evaluated_at(&self) -> u64 {
        self.evaluated_at
    }
}

impl fmt::Display for Report {
    /// A readable report: one line per finding with ✓ (pass), ✗ (fail), ! (warn) or
    /// - (skipped), then a verdict line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let mark = match finding.outcome {
                Outcome::Pass => "✓",
                Outcome::Fail => "✗",
                Outcome::Warn => "!",
                Outcome::Skipped => "-",
            };
            writeln!(
                f,
                "{mark} {:<19} {}: {}",
                finding.rule.as_str(),
                finding.subject,
                finding.message
            )?;
        }
        let failed = self.failed_rules();
        if failed.is_empty() {
            writeln!(f, "PASS: the certificate satisfies the device policy")
        } else {
            let ids: Vec<&str> = failed.iter().map(|r| r.as_str()).collect();
            writeln!(f, "FAIL: rules broken: {}", ids.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: RuleId, outcome: Outcome) -> Finding {
        Finding {
            rule,
            outcome,
            message: "m".into(),
            subject: Subject::new(SubjectKind::Leaf, None, "CN=x"),
        }
    }

    #[test]
    fn warnings_and_skips_do_not_fail_a_report() {
        let r = Report::new(
            "x",
            0,
            vec![
                finding(RuleId::Validity, Outcome::Warn),
                finding(RuleId::PrivateKey, Outcome::Skipped),
                finding(RuleId::Eku, Outcome::Pass),
            ],
        );
        assert!(r.passed());
        assert!(r.failed_rules().is_empty());
        assert!(r.to_string().contains("PASS"));
    }

    #[test]
    fn one_failure_fails_and_is_named() {
        let r = Report::new(
            "x",
            0,
            vec![
                finding(RuleId::Eku, Outcome::Pass),
                finding(RuleId::CrlDp, Outcome::Fail),
            ],
        );
        assert!(!r.passed());
        assert_eq!(r.failed_rules(), vec![RuleId::CrlDp]);
        assert!(r.to_string().contains("FAIL: rules broken: crl-dp"));
        assert!(r.to_string().contains("✗ crl-dp"));
    }

    #[test]
    fn findings_are_ordered_by_rule() {
        let r = Report::new(
            "x",
            0,
            vec![
                finding(RuleId::PrivateKey, Outcome::Pass),
                finding(RuleId::Structure, Outcome::Pass),
            ],
        );
        assert_eq!(r.findings()[0].rule, RuleId::Structure);
    }

    #[test]
    fn json_shape_is_documented_one() {
        let r = Report::new("MAC01.local", 7, vec![finding(RuleId::Eku, Outcome::Fail)]);
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["passed"], false);
        assert_eq!(v["computer_name"], "MAC01.local");
        assert_eq!(v["evaluated_at"], 7);
        assert_eq!(v["findings"][0]["rule"], "eku");
        assert_eq!(v["findings"][0]["outcome"], "fail");
        assert_eq!(v["findings"][0]["subject"]["kind"], "leaf");
        assert!(v["findings"][0]["subject"].get("index").is_none());
    }
}
