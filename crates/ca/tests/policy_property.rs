//! Acceptance property: every certificate the CA issues, for any valid computer name,
//! passes tessera-certpolicy's default policy; once revoked, it fails rule `revocation`.

mod common;

use std::sync::OnceLock;

use common::{NOW, der_of, ec_csr, fixture};
use proptest::prelude::*;
use tessera_ca::{ComputerName, KeyAlgorithm, RevocationReason};
use tessera_certpolicy::{CertificateDer, CertificateRevocationListDer, Policy, RuleId, UnixTime};

fn now_for_policy() -> UnixTime {
    let secs = (NOW + time::Duration::minutes(1)).unix_timestamp();
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(secs).unwrap()))
}

/// One EC two-tier CA for every case (keys are the expensive part).
fn shared() -> &'static common::Fixture {
    static CA: OnceLock<common::Fixture> = OnceLock::new();
    CA.get_or_init(|| fixture(KeyAlgorithm::EcdsaP256, true, 31))
}

/// DNS host names: 1–4 labels of letters, digits and inner hyphens, mixed case.
fn computer_names() -> impl Strategy<Value = String> {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,14}[A-Za-z0-9])?";
    proptest::collection::vec(label, 1..=4).prop_map(|labels| labels.join("."))
}

fn evaluate(
    leaf_pem: &str,
    crls: &tessera_ca::PublishedCrls,
    name: &str,
) -> tessera_certpolicy::Report {
    let f = shared();
    let leaf = CertificateDer::from(der_of(leaf_pem));
    let intermediates: Vec<CertificateDer<'static>> =
        f.ca.intermediates_der()
            .into_iter()
            .map(CertificateDer::from)
            .collect();
    let anchors = [CertificateDer::from(f.ca.root_der().to_vec())];
    let crls: Vec<CertificateRevocationListDer<'static>> = crls
        .all_der()
        .into_iter()
        .map(CertificateRevocationListDer::from)
        .collect();
    Policy::default().evaluate(
        &leaf,
        &intermediates,
        &anchors,
        &crls,
        name,
        now_for_policy(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn issued_certificates_pass_the_default_policy_and_revoked_ones_fail_revocation(name in computer_names()) {
        let f = shared();
        let computer = ComputerName::new(&name).unwrap();
        let issued = f.ca.issue_from_csr(&ec_csr(&name, &[&name]), &computer).unwrap();

        let report = evaluate(&issued.certificate_pem, &f.ca.sign_crls().unwrap(), &name);
        prop_assert!(report.passed(), "{}", report);

        // The CA's own proof agrees, before any CRL and with one.
        prop_assert!(f.ca.prove(&issued, None).unwrap().passed());

        f.ca.revoke(&issued.serial, RevocationReason::KeyCompromise).unwrap();
        let report = evaluate(&issued.certificate_pem, &f.ca.sign_crls().unwrap(), &name);
        prop_assert!(!report.passed());
        prop_assert!(report.failed_rules().contains(&RuleId::Revocation), "{}", report);
        let proof = f.ca.prove(&issued, Some(&f.ca.sign_crls().unwrap())).unwrap();
        prop_assert!(proof.failed_rules().contains(&RuleId::Revocation));
    }
}

#[test]
fn server_generated_rsa_keys_pass_the_policy_with_their_key() {
    let f = shared();
    let name = ComputerName::new("Workgroup-PC7").unwrap();
    let password = tessera_ca::Pkcs12Password::new("pw".into()).unwrap();
    let (issued, pfx) =
        f.ca.issue_with_new_key(&name, &password, tessera_ca::Pkcs12Profile::Compatible)
            .unwrap();
    let identity = tessera_ca::pkcs12::read(&pfx, &password).unwrap();
    let leaf = CertificateDer::from(der_of(&issued.certificate_pem));
    let intermediates: Vec<CertificateDer<'static>> =
        f.ca.intermediates_der()
            .into_iter()
            .map(CertificateDer::from)
            .collect();
    let anchors = [CertificateDer::from(f.ca.root_der().to_vec())];
    let crls: Vec<CertificateRevocationListDer<'static>> =
        f.ca.sign_crls()
            .unwrap()
            .all_der()
            .into_iter()
            .map(CertificateRevocationListDer::from)
            .collect();
    let key = tessera_certpolicy::PrivateKeyDer::try_from(identity.private_key_pkcs8).unwrap();
    let report = Policy::default().evaluate_evidence(&tessera_certpolicy::Evidence {
        leaf: &leaf,
        intermediates: &intermediates,
        trust_anchors: &anchors,
        crls: &crls,
        private_key: Some(&key),
        computer_name: name.as_str(),
        now: now_for_policy(),
    });
    assert!(report.passed(), "{report}");
    // The same certificate does not pass for another computer.
    let report = evaluate(
        &issued.certificate_pem,
        &f.ca.sign_crls().unwrap(),
        "workgroup-pc7",
    );
    assert!(report.failed_rules().contains(&RuleId::SubjectName));
}
