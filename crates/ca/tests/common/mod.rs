//! Fixtures shared by the integration tests: CAs on a fixed clock with seeded serials, CSRs.
#![allow(dead_code)]

use std::sync::Arc;

use tessera_ca::{
    Ca, CaServices, CaSettings, DeviceCsr, InitOptions, KeyAlgorithm, ManualClock, MemoryLedger,
    RandomSerials,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// The fixed "now" of every fixture CA.
pub const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

pub struct Fixture {
    pub ca: Ca,
    pub clock: Arc<ManualClock>,
    pub ledger: Arc<MemoryLedger>,
}

pub fn settings() -> CaSettings {
    CaSettings::with_crl_base("http://tessera.test:8080").unwrap()
}

pub fn fixture(algorithm: KeyAlgorithm, intermediate: bool, seed: u64) -> Fixture {
    let clock = Arc::new(ManualClock::new(NOW));
    let ledger = Arc::new(MemoryLedger::new());
    let services = CaServices {
        clock: clock.clone(),
        serials: Arc::new(RandomSerials::seeded(seed)),
        ledger: ledger.clone(),
    };
    let ca = Ca::init(
        &InitOptions {
            common_name: "Tessera Test Device CA".into(),
            key_algorithm: algorithm,
            intermediate,
            settings: settings(),
        },
        services,
    )
    .unwrap();
    Fixture { ca, clock, ledger }
}

/// A CSR for `cn` (and optional SANs) signed by a fresh P-256 key.
pub fn ec_csr(cn: &str, sans: &[&str]) -> DeviceCsr {
    let key = rcgen::KeyPair::generate().unwrap();
    csr_with_key(cn, sans, &key)
}

pub fn csr_with_key(cn: &str, sans: &[&str], key: &rcgen::KeyPair) -> DeviceCsr {
    let mut params =
        rcgen::CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    DeviceCsr::parse(
        params
            .serialize_request(key)
            .unwrap()
            .pem()
            .unwrap()
            .as_bytes(),
    )
    .unwrap()
}

pub fn der_of(pem_text: &str) -> Vec<u8> {
    pem::parse(pem_text).unwrap().into_contents()
}
