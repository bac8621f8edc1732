//! Test PKI built with rcgen: a self-signed root and leaves signed by it.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, RsaKeySize, SanType,
};

use crate::identity::{CertificateDer, Identity, PrivateKeyDer};

pub(crate) struct TestPki {
    pub(crate) root: CertificateDer,
    issuer: Issuer<'static, KeyPair>,
}

impl TestPki {
    pub(crate) fn new() -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "Tessera Test Root");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let root = CertificateDer::from_der(cert.der().to_vec()).unwrap();
        Self {
            root,
            issuer: Issuer::new(params, key),
        }
    }

    pub(crate) fn leaf(&self, name: &str, rsa: bool) -> (CertificateDer, PrivateKeyDer) {
        let key = if rsa {
            KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap()
        } else {
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
        };
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names = vec![SanType::DnsName(name.try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            CertificateDer::from_der(cert.der().to_vec()).unwrap(),
            PrivateKeyDer::from_pkcs8_der(key.serialize_der()).unwrap(),
        )
    }

    pub(crate) fn identity(&self, name: &str) -> Identity {
        let (leaf, key) = self.leaf(name, false);
        Identity::new(leaf, vec![self.root.clone()], key).unwrap()
    }
}

pub(crate) fn device_identity() -> Identity {
    TestPki::new().identity("MAC01.local")
}
