//! Benchmark: a full `tessera-certpolicy` evaluation (chain of 3, CRLs for both CAs, all
//! rules) against the bare `webpki::EndEntityCert::verify_for_usage` on the same DER inputs
//! (parsing the leaf, anchor and CRLs each time, as the evaluation does). Goal: ≤ 1.5×.
//!
//! `cargo run --release -p tessera-benches --bin certpolicy`

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, RsaKeySize, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use tessera_benches::{Measurement, ratio_line};
use tessera_certpolicy::Policy;
use time::macros::datetime;
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

const NAME: &str = "MAC01.local";
const RUNS: usize = 3000;

struct Inputs {
    leaf: CertificateDer<'static>,
    intermediate: CertificateDer<'static>,
    root: CertificateDer<'static>,
    crls: Vec<CertificateRevocationListDer<'static>>,
}

fn ca_params(cn: &str, path_len: u8) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = datetime!(2025-01-01 0:00 UTC);
    p.not_after = datetime!(2035-01-01 0:00 UTC);
    p.use_authority_key_identifier_extension = true;
    p
}

fn crl(issuer: &Issuer<'_, &KeyPair>) -> anyhow::Result<CertificateRevocationListDer<'static>> {
    let crl = CertificateRevocationListParams {
        this_update: datetime!(2025-12-31 0:00 UTC),
        next_update: datetime!(2026-01-07 0:00 UTC),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)?;
    Ok(CertificateRevocationListDer::from(crl.der().to_vec()))
}

/// RSA-2048 root → EC P-256 intermediate → RSA-2048 leaf, the shape the Tessera CA issues.
fn inputs() -> anyhow::Result<Inputs> {
    let root_key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)?;
    let mut root_params = ca_params("Bench Root", 1);
    root_params.use_authority_key_identifier_extension = false;
    let root = root_params.self_signed(&root_key)?;
    let root_issuer = Issuer::new(root_params, &root_key);

    let int_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let int_params = ca_params("Bench Intermediate", 0);
    let intermediate = int_params.signed_by(&int_key, &root_issuer)?;
    let int_issuer = Issuer::new(int_params, &int_key);

    let leaf_key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)?;
    let mut lp = CertificateParams::new(vec![NAME.to_owned()])?;
    lp.distinguished_name.push(DnType::CommonName, NAME);
    lp.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    lp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    lp.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec!["http://pki.example/int.crl".into()],
    }];
    lp.use_authority_key_identifier_extension = true;
    lp.serial_number = Some(SerialNumber::from_slice(&[0x12, 0x34, 0x56]));
    lp.not_before = datetime!(2025-01-01 0:00 UTC);
    lp.not_after = datetime!(2027-01-01 0:00 UTC);
    let leaf = lp.signed_by(&leaf_key, &int_issuer)?;

    Ok(Inputs {
        leaf: leaf.der().clone(),
        intermediate: intermediate.der().clone(),
        root: root.der().clone(),
        crls: vec![crl(&int_issuer)?, crl(&root_issuer)?],
    })
}

/// The baseline: webpki alone, configured as the policy configures it.
fn bare_webpki(i: &Inputs, now: UnixTime) -> Result<(), webpki::Error> {
    let ee = EndEntityCert::try_from(&i.leaf)?;
    let anchors = [webpki::anchor_from_trusted_cert(&i.root)?];
    let crls: Vec<CertRevocationList<'_>> = i
        .crls
        .iter()
        .map(|c| BorrowedCertRevocationList::from_der(c.as_ref()).map(Into::into))
        .collect::<Result<_, _>>()?;
    let crl_refs: Vec<&CertRevocationList<'_>> = crls.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crl_refs)
        .map_err(|_| webpki::Error::UnknownRevocationStatus)?
        .with_depth(RevocationCheckDepth::Chain)
        .with_status_policy(UnknownStatusPolicy::Deny)
        .with_expiration_policy(ExpirationPolicy::Enforce)
        .build();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        std::slice::from_ref(&i.intermediate),
        now,
        KeyUsage::client_auth(),
        Some(revocation),
        None,
    )
    .map(|_| ())
}

fn main() -> anyhow::Result<()> {
    let i = inputs()?;
    let now = UnixTime::since_unix_epoch(Duration::from_secs(1_767_225_600)); // 2026-01-01
    let policy = Policy::default();
    let evaluate = || {
        policy.evaluate(
            &i.leaf,
            std::slice::from_ref(&i.intermediate),
            std::slice::from_ref(&i.root),
            &i.crls,
            NAME,
            now,
        )
    };

    // Both must accept the inputs, or the comparison means nothing.
    let report = evaluate();
    anyhow::ensure!(report.passed(), "the benchmark chain must pass:\n{report}");
    bare_webpki(&i, now).map_err(|e| anyhow::anyhow!("webpki rejected the chain: {e}"))?;

    // Warm up, then alternate rounds so drift on a shared machine hits both alike.
    let _ = Measurement::run("warm-up", 200, evaluate);
    let mut ours = Vec::new();
    let mut base = Vec::new();
    for _ in 0..5 {
        ours.push(Measurement::run("x", RUNS / 5, evaluate));
        base.push(Measurement::run("x", RUNS / 5, || bare_webpki(&i, now)));
    }
    let collect = |name: &str, rounds: &[Measurement]| {
        // Each round's median stands for the round; the overall median is over rounds.
        Measurement::from_samples(name, rounds.iter().map(Measurement::median).collect())
    };
    let ours = collect(
        "tessera-certpolicy evaluate (chain of 3 + 2 CRLs, all rules)",
        &ours,
    );
    let base = collect(
        "webpki verify_for_usage (same inputs, Chain/Deny/Enforce)",
        &base,
    );
    println!("{}", ratio_line(&ours, &base));
    println!("goal: ratio <= 1.50x");
    Ok(())
}
