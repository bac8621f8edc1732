//! Benchmark: device certificate issuance from a CSR with `tessera-ca` (name check, serial,
//! policy profile, signing, ledger record) against the bare rcgen signing cost of the same
//! certificate (prebuilt parameters, `CertificateParams::signed_by`), with an RSA-3072 CA
//! (the default) and an ECDSA P-256 CA. Also the full path from CSR bytes (parse and
//! signature check included). Figures go to docs/performance.md.
//!
//! `cargo run --release -p tessera-benches --bin ca`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use rcgen::{
    CertificateParams, CrlDistributionPoint, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use tessera_benches::{Measurement, ratio_line};
use tessera_ca::{
    Ca, CaServices, CaSettings, ComputerName, DeviceCsr, InitOptions, KeyAlgorithm, MemoryLedger,
    RandomSerials, SystemClock,
};
use time::{Duration, OffsetDateTime};

const NAME: &str = "MAC01.local";
const SAMPLES: usize = 15;

/// The same certificate the CA issues, built once, for the bare-signing baseline.
fn baseline_params() -> anyhow::Result<CertificateParams> {
    let now = OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, NAME);
    p.subject_alt_names = vec![SanType::DnsName(NAME.try_into()?)];
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec!["http://127.0.0.1:8080/crl/device-ca.crl".into()],
    }];
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(SerialNumber::from_slice(&[0x42; 16]));
    p.not_before = now - Duration::minutes(5);
    p.not_after = now + Duration::days(365);
    Ok(p)
}

fn run(algorithm: KeyAlgorithm, batch: usize) -> anyhow::Result<()> {
    let ca = Ca::init(
        &InitOptions {
            common_name: "Bench Device CA".into(),
            key_algorithm: algorithm,
            intermediate: false,
            settings: CaSettings::with_crl_base("http://127.0.0.1:8080")?,
        },
        CaServices {
            clock: Arc::new(SystemClock),
            serials: Arc::new(RandomSerials::from_os()),
            ledger: Arc::new(MemoryLedger::new()),
        },
    )?;
    // The device key is P-256 in every case: the CA key is what is being compared.
    let device_key = KeyPair::generate()?;
    let mut request = CertificateParams::new(Vec::<String>::new())?;
    request.distinguished_name.push(DnType::CommonName, NAME);
    let csr_pem = request.serialize_request(&device_key)?.pem()?;
    let csr = DeviceCsr::parse(csr_pem.as_bytes())?;
    let name = ComputerName::new(NAME)?;

    // Baseline: rcgen alone, signing the same profile with the same CA key.
    let material = ca.material();
    let ca_key = KeyPair::from_pem(&material.issuing_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&material.issuing_certificate_pem, &ca_key)?;
    let params = baseline_params()?;

    // Samples interleave the three workloads so that load from other processes on a
    // shared machine falls on all of them alike.
    let mut failures = 0usize;
    let (mut ours, mut full, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        let start = Instant::now();
        for _ in 0..batch {
            failures += usize::from(ca.issue_from_csr(&csr, &name).is_err());
        }
        ours.push(start.elapsed());
        let start = Instant::now();
        for _ in 0..batch {
            let parsed = DeviceCsr::parse(csr_pem.as_bytes());
            failures += usize::from(parsed.and_then(|c| ca.issue_from_csr(&c, &name)).is_err());
        }
        full.push(start.elapsed());
        let start = Instant::now();
        for _ in 0..batch {
            failures += usize::from(black_box(params.signed_by(&device_key, &issuer)).is_err());
        }
        bare.push(start.elapsed());
    }
    let ours = Measurement::from_samples(&format!("tessera-ca issue_from_csr x{batch}"), ours);
    let full = Measurement::from_samples(&format!("tessera-ca parse CSR + issue x{batch}"), full);
    let bare = Measurement::from_samples(&format!("rcgen signed_by x{batch}"), bare);
    anyhow::ensure!(failures == 0, "{failures} issuances failed");

    let per_second = |m: &Measurement| batch as f64 / m.median().as_secs_f64();
    println!("== {algorithm:?} CA ==");
    println!("{}", ratio_line(&ours, &bare));
    println!("{}", ratio_line(&full, &bare));
    println!(
        "issuance from a parsed CSR: {:.0}/s; from CSR bytes: {:.0}/s; bare rcgen signing: {:.0}/s",
        per_second(&ours),
        per_second(&full),
        per_second(&bare)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    run(KeyAlgorithm::EcdsaP256, 400)?;
    run(KeyAlgorithm::Rsa3072, 40)?;
    Ok(())
}
