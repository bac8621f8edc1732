//! Shared helpers: a real test PKI made with rcgen.
#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use tessera_keystore::{CertificateDer, Identity, PrivateKeyDer};

pub struct TestPki {
    pub root: CertificateDer,
    pub intermediate: CertificateDer,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

impl TestPki {
    pub fn new(root_name: &str) -> Self {
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let root_params = ca_params(root_name);
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::new(root_params, root_key);
        let int_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let int_params = ca_params(&format!("{root_name} Intermediate"));
        let int = int_params.signed_by(&int_key, &root_issuer).unwrap();
        Self {
            root: CertificateDer::from_der(root.der().to_vec()).unwrap(),
            intermediate: CertificateDer::from_der(int.der().to_vec()).unwrap(),
            issuer: Issuer::new(int_params, int_key),
        }
    }

    pub fn identity(&self, computername: &str) -> Identity {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, computername);
        params.subject_alt_names = vec![SanType::DnsName(computername.try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        Identity::new(
            CertificateDer::from_der(leaf.der().to_vec()).unwrap(),
            vec![self.intermediate.clone(), self.root.clone()],
            PrivateKeyDer::from_pkcs8_der(key.serialize_der()).unwrap(),
        )
        .unwrap()
    }
}

/// Base64 chunks of the key's DER as they would appear in PEM; any of them in argv or a
/// log would mean key material leaked.
pub fn key_fragments(identity: &Identity) -> Vec<String> {
    let pem = identity.private_key().to_pem();
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .map(|l| l[..l.len().min(24)].to_owned())
        .filter(|l| l.len() >= 16)
        .collect()
}
