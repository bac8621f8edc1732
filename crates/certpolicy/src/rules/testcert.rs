//! Test certificates built with rcgen, so each rule's unit tests can flip one property.

use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};
use time::macros::datetime;

use crate::findings::Findings;
use crate::rule::Outcome;

pub(crate) const NAME: &str = "MAC01.local";

/// 2026-01-01T00:00:00Z, inside the default test validity (2025 → 2027).
pub(crate) const NOW: i64 = 1_767_225_600;

pub(crate) struct TestCert {
    pub params: CertificateParams,
    alg: &'static SignatureAlgorithm,
}

impl TestCert {
    /// A leaf that satisfies every per-certificate rule.
    pub fn device() -> Self {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, NAME);
        p.distinguished_name = dn;
        p.subject_alt_names = vec![SanType::DnsName(NAME.try_into().unwrap())];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec!["http://pki.example/int.crl".into()],
        }];
        p.not_before = datetime!(2025-01-01 0:00 UTC);
        p.not_after = datetime!(2027-01-01 0:00 UTC);
        Self {
            params: p,
            alg: &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }

    pub fn with(mut self, f: impl FnOnce(&mut CertificateParams)) -> Self {
        f(&mut self.params);
        self
    }

    pub fn alg(mut self, alg: &'static SignatureAlgorithm) -> Self {
        self.alg = alg;
        self
    }

    pub fn ca(self) -> Self {
        self.with(|p| p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained))
    }

    pub fn custom_extension(self, oid: &[u64], critical: bool) -> Self {
        self.custom_extension_with(oid, critical, vec![0x05, 0x00])
    }

    pub fn custom_extension_with(self, oid: &[u64], critical: bool, content: Vec<u8>) -> Self {
        self.with(|p| {
            let mut ext = CustomExtension::from_oid_content(oid, content);
            ext.set_criticality(critical);
            p.custom_extensions.push(ext);
        })
    }

    /// Self-signed DER (the per-certificate rules do not care who signed).
    pub fn der(&self) -> Vec<u8> {
        let key = KeyPair::generate_for(self.alg).unwrap();
        self.params.self_signed(&key).unwrap().der().to_vec()
    }

    pub fn der_with_key(&self) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate_for(self.alg).unwrap();
        (self.params.self_signed(&key).unwrap().der().to_vec(), key)
    }
}

/// The single outcome of a rule that produced exactly one finding.
pub(crate) fn only_outcome(out: &Findings) -> Outcome {
    assert_eq!(out.0.len(), 1, "expected one finding, got {:?}", out.0);
    out.0[0].outcome
}
