//! The public API as the CA and the server use it, on an rcgen-made chain (runs without
//! openssl): defaults, the policy's knobs, and that every rule reports.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use tessera_certpolicy::{
    CertificateDer, CertificateRevocationListDer, Evidence, Outcome, Policy, PrivateKeyDer, Report,
    RuleId, SubjectKind, UnixTime,
};
use time::macros::datetime;

const NAME: &str = "MAC01.local";
/// 2026-01-01T00:00:00Z.
const NOW: u64 = 1_767_225_600;

struct Chain {
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
    intermediate: CertificateDer<'static>,
    root: CertificateDer<'static>,
    crls: Vec<CertificateRevocationListDer<'static>>,
}

fn ca(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = datetime!(2025-01-01 0:00 UTC);
    p.not_after = datetime!(2030-01-01 0:00 UTC);
    p
}

fn crl(issuer: &Issuer<'_, &KeyPair>) -> CertificateRevocationListDer<'static> {
    let crl = CertificateRevocationListParams {
        this_update: datetime!(2025-12-31 0:00 UTC),
        next_update: datetime!(2026-01-07 0:00 UTC),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .unwrap();
    CertificateRevocationListDer::from(crl.der().to_vec())
}

/// EC root → EC intermediate → EC leaf, as the CA would issue (EC keeps the test fast).
fn chain() -> Chain {
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let root_params = ca("API Root");
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, &root_key);
    let int_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let int_params = ca("API Intermediate");
    let intermediate = int_params.signed_by(&int_key, &root_issuer).unwrap();
    let int_issuer = Issuer::new(int_params, &int_key);

    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut lp = CertificateParams::new(vec![NAME.to_owned()]).unwrap();
    lp.distinguished_name.push(DnType::CommonName, NAME);
    lp.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    lp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    lp.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec!["http://pki.example/int.crl".into()],
    }];
    lp.serial_number = Some(SerialNumber::from_slice(&[0x42]));
    lp.use_authority_key_identifier_extension = true;
    lp.not_before = datetime!(2025-01-01 0:00 UTC);
    lp.not_after = datetime!(2027-01-01 0:00 UTC);
    let leaf = lp.signed_by(&leaf_key, &int_issuer).unwrap();
    Chain {
        leaf: leaf.der().clone(),
        leaf_key: PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        intermediate: intermediate.der().clone(),
        root: root.der().clone(),
        crls: vec![crl(&int_issuer), crl(&root_issuer)],
    }
}

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(NOW))
}

fn evaluate(policy: &Policy, c: &Chain, crls: &[CertificateRevocationListDer<'_>]) -> Report {
    policy.evaluate(
        &c.leaf,
        std::slice::from_ref(&c.intermediate),
        std::slice::from_ref(&c.root),
        crls,
        NAME,
        now(),
    )
}

fn outcomes(report: &Report, rule: RuleId) -> Vec<Outcome> {
    report
        .findings()
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.outcome)
        .collect()
}

#[test]
fn the_default_policy_is_the_documented_one() {
    let p = Policy::default();
    assert_eq!(p.expiry_warning, Duration::from_secs(30 * 86_400));
    assert_eq!(p.min_rsa_bits, 2048);
    assert!(p.require_revocation_status);
}

#[test]
fn a_well_issued_chain_passes_every_rule_and_both_entry_points_agree() {
    let c = chain();
    let report = evaluate(&Policy::default(), &c, &c.crls);
    assert!(report.passed(), "{report}");
    assert_eq!(report.computer_name(), NAME);
    assert_eq!(report.evaluated_at(), NOW);
    for rule in RuleId::ALL {
        let o = outcomes(&report, rule);
        let expected = if rule == RuleId::PrivateKey {
            Outcome::Skipped
        } else {
            Outcome::Pass
        };
        assert!(o.contains(&expected), "{rule}: {o:?}\n{report}");
    }

    let with_key = Policy::default().evaluate_evidence(&Evidence {
        leaf: &c.leaf,
        intermediates: std::slice::from_ref(&c.intermediate),
        trust_anchors: std::slice::from_ref(&c.root),
        crls: &c.crls,
        private_key: Some(&c.leaf_key),
        computer_name: NAME,
        now: now(),
    });
    assert!(with_key.passed(), "{with_key}");
    assert_eq!(outcomes(&with_key, RuleId::PrivateKey), vec![Outcome::Pass]);
    // Same findings apart from the key.
    let without_key: Vec<_> = with_key
        .findings()
        .iter()
        .filter(|f| f.rule != RuleId::PrivateKey)
        .collect();
    let plain: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f.rule != RuleId::PrivateKey)
        .collect();
    assert_eq!(without_key, plain);
}

#[test]
fn without_crls_revocation_fails_unless_the_policy_waives_it() {
    let c = chain();
    let strict = evaluate(&Policy::default(), &c, &[]);
    assert_eq!(strict.failed_rules(), vec![RuleId::Revocation], "{strict}");

    let mut lenient = Policy::default();
    lenient.require_revocation_status = false;
    let report = evaluate(&lenient, &c, &[]);
    assert!(report.passed(), "{report}");
    assert_eq!(
        outcomes(&report, RuleId::Revocation),
        vec![Outcome::Skipped]
    );
}

#[test]
fn the_expiry_window_is_configurable() {
    let c = chain();
    let mut policy = Policy::default();
    // The leaf has 365 days left; the CAs four years.
    policy.expiry_warning = Duration::from_secs(400 * 86_400);
    let report = evaluate(&policy, &c, &c.crls);
    assert!(report.passed(), "{report}");
    let warned: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f.rule == RuleId::Validity && f.outcome == Outcome::Warn)
        .map(|f| f.subject.kind)
        .collect();
    assert_eq!(warned, vec![SubjectKind::Leaf], "{report}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let c = chain();
    // Wrong name, no anchor, no CRL: three independent failures, none hiding another.
    let report = Policy::default().evaluate(&c.leaf, &[], &[], &[], "mac01.local", now());
    let failed = report.failed_rules();
    for rule in [RuleId::Chain, RuleId::Revocation, RuleId::SubjectName] {
        assert!(
            failed.contains(&rule),
            "{rule} missing from {failed:?}\n{report}"
        );
    }
    // The leaf's own rules were still checked.
    assert_eq!(outcomes(&report, RuleId::Eku), vec![Outcome::Pass]);
    assert_eq!(outcomes(&report, RuleId::KeyUsage), vec![Outcome::Pass]);
}

#[test]
fn a_crl_from_an_unrelated_issuer_is_a_warning_not_a_failure() {
    let c = chain();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let unrelated = Issuer::new(ca("Unrelated CA"), &key);
    let mut crls = c.crls.clone();
    crls.push(crl(&unrelated));
    let report = evaluate(&Policy::default(), &c, &crls);
    assert!(report.passed(), "{report}");
    assert!(
        report
            .findings()
            .iter()
            .any(|f| f.rule == RuleId::Revocation
                && f.outcome == Outcome::Warn
                && f.subject.kind == SubjectKind::Crl
                && f.subject.index == Some(2)),
        "{report}"
    );
}

#[test]
fn a_same_named_ca_with_another_key_does_not_shadow_the_real_crl() {
    let c = chain();
    // Another chain whose CAs carry the same names, listed first: its intermediate CRL
    // has the same issuer name, another key identifier and the same number.
    let impostor = chain();
    let crls = vec![
        impostor.crls[0].clone(),
        c.crls[0].clone(),
        c.crls[1].clone(),
    ];
    let report = evaluate(&Policy::default(), &c, &crls);
    assert!(report.passed(), "{report}");
}

#[test]
fn the_path_prefers_the_intermediate_whose_key_identifier_matches() {
    let c = chain();
    // A same-named intermediate with another key, listed first (as after a key rollover).
    let other = chain();
    let intermediates = [other.intermediate.clone(), c.intermediate.clone()];
    let report = Policy::default().evaluate(
        &c.leaf,
        &intermediates,
        std::slice::from_ref(&c.root),
        &c.crls,
        NAME,
        now(),
    );
    assert!(report.passed(), "{report}");
    let checked: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f.rule == RuleId::Validity && f.subject.kind == SubjectKind::Intermediate)
        .map(|f| f.subject.index)
        .collect();
    assert_eq!(checked, vec![Some(1)], "{report}");
}
