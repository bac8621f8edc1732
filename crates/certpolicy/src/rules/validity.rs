//! Rule `validity` (P7): the leaf and every CA on the path, the trust anchor included,
//! are within their validity at `now` (bounds inclusive, as in RFC 5280). webpki never
//! checks the anchor's dates; OpenSSL does (error 10 at the root), so this is also a
//! parity check.

use std::time::Duration;

use x509_parser::prelude::*;

use crate::findings::Findings;
use crate::report::Subject;
use crate::rule::RuleId;

/// Whole days, for messages.
fn days(seconds: i64) -> i64 {
    seconds / 86_400
}

pub(crate) fn check(
    x: &X509Certificate<'_>,
    s: &Subject,
    now: i64,
    expiry_warning: Option<Duration>,
    out: &mut Findings,
) {
    let not_before = x.validity().not_before;
    let not_after = x.validity().not_after;
    if now < not_before.timestamp() {
        out.fail(
            RuleId::Validity,
            s,
            format!(
                "not valid before {not_before} ({} day(s) from now); check this machine's clock or wait",
                days(not_before.timestamp() - now).max(1)
            ),
        );
    } else if now > not_after.timestamp() {
        out.fail(
            RuleId::Validity,
            s,
            format!("expired on {not_after}; renew the certificate"),
        );
    } else {
        let left = not_after.timestamp() - now;
        let window = expiry_warning.map_or(0, |w| i64::try_from(w.as_secs()).unwrap_or(i64::MAX));
        if left < window {
            out.warn(
                RuleId::Validity,
                s,
                format!(
                    "expires on {not_after}, in {} day(s); renew it soon",
                    days(left)
                ),
            );
        } else {
            out.pass(
                RuleId::Validity,
                s,
                format!("valid from {not_before} until {not_after}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SubjectKind;
    use crate::rule::Outcome;
    use crate::rules::testcert::{NOW, TestCert, only_outcome};

    const DAY: i64 = 86_400;
    const THIRTY_DAYS: Duration = Duration::from_secs(30 * 86_400);

    fn at(now: i64) -> (Outcome, String) {
        let der = TestCert::device().der();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        let mut out = Findings::default();
        check(
            &x,
            &Subject::new(SubjectKind::Leaf, None, "t"),
            now,
            Some(THIRTY_DAYS),
            &mut out,
        );
        (only_outcome(&out), out.0[0].message.clone())
    }

    // The test certificate runs from 2025-01-01 to 2027-01-01 (NOW is 2026-01-01).
    const NOT_BEFORE: i64 = NOW - 365 * DAY;
    const NOT_AFTER: i64 = NOW + 365 * DAY;

    #[test]
    fn inside_passes_and_bounds_are_inclusive() {
        assert_eq!(at(NOW).0, Outcome::Pass);
        assert_eq!(at(NOT_BEFORE).0, Outcome::Pass);
        assert_eq!(at(NOT_AFTER).0, Outcome::Warn);
    }

    #[test]
    fn outside_fails_with_the_date() {
        let (o, m) = at(NOT_AFTER + 1);
        assert_eq!(o, Outcome::Fail);
        assert!(m.contains("expired on") && m.contains("2027"), "{m}");
        let (o, m) = at(NOT_BEFORE - 1);
        assert_eq!(o, Outcome::Fail);
        assert!(m.contains("not valid before"), "{m}");
    }

    #[test]
    fn warns_inside_the_window_only() {
        assert_eq!(at(NOT_AFTER - 29 * DAY).0, Outcome::Warn);
        assert!(at(NOT_AFTER - 29 * DAY).1.contains("in 29 day(s)"));
        assert_eq!(at(NOT_AFTER - 31 * DAY).0, Outcome::Pass);
    }
}
