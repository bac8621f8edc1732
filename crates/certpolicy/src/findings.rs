//! Collects findings while the rules run.

use crate::report::{Finding, Subject};
use crate::rule::{Outcome, RuleId};

#[derive(Default)]
pub(crate) struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn add(&mut self, rule: RuleId, outcome: Outcome, subject: &Subject, message: String) {
        self.0.push(Finding {
            rule,
            outcome,
            message,
            subject: subject.clone(),
        });
    }

    pub fn pass(&mut self, rule: RuleId, subject: &Subject, message: impl Into<String>) {
        self.add(rule, Outcome::Pass, subject, message.into());
    }

    pub fn fail(&mut self, rule: RuleId, subject: &Subject, message: impl Into<String>) {
        self.add(rule, Outcome::Fail, subject, message.into());
    }

    pub fn warn(&mut self, rule: RuleId, subject: &Subject, message: impl Into<String>) {
        self.add(rule, Outcome::Warn, subject, message.into());
    }

    pub fn skip(&mut self, rule: RuleId, subject: &Subject, message: impl Into<String>) {
        self.add(rule, Outcome::Skipped, subject, message.into());
    }

    pub fn has_fail(&self, rule: RuleId) -> bool {
        self.0
            .iter()
            .any(|f| f.rule == rule && f.outcome == Outcome::Fail)
    }

    pub fn has_any(&self, rule: RuleId) -> bool {
        self.0.iter().any(|f| f.rule == rule)
    }
}
