//! The HTTPS listener's own certificate, issued by the device CA so that one trust anchor
//! serves both directions: agents verify the server with the CA they enrolled against,
//! and an unmodified OCS agent gets the same file as `--ca`.

use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use tessera_ca::{
    Ca, CaMaterial, ComputerName, IssuedCertificate, RandomSerials, SerialSource as _,
};
use time::{Duration, OffsetDateTime};

use crate::Error;

/// Days a server certificate is valid; renewed at start-up when less than a month is left.
pub const SERVER_CERT_DAYS: i64 = 397;

/// A server certificate and its key, PEM.
pub struct ServerIdentity {
    /// The server certificate followed by the CA chain.
    pub chain_pem: String,
    /// The private key, PKCS#8 PEM. Secret.
    pub key_pem: String,
}

/// Issues a server certificate for `names` (DNS names or IP addresses) from `ca`, and
/// records it in the CA's ledger like every certificate the CA signs.
pub fn issue(ca: &Ca, names: &[String], now: OffsetDateTime) -> Result<ServerIdentity, Error> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::Tls(format!("issuing the server certificate: {what}: {e}"))
    };
    let material: CaMaterial = ca.material();
    let issuer_key =
        KeyPair::from_pem(&material.issuing_key_pem).map_err(|e| fail("CA key", &e))?;
    let issuer = Issuer::from_ca_cert_pem(&material.issuing_certificate_pem, issuer_key)
        .map_err(|e| fail("CA certificate", &e))?;

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| fail("key", &e))?;
    let mut params = CertificateParams::default();
    let first = names.first().map_or("localhost", String::as_str);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first);
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => name
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| fail(name, &e)),
        })
        .collect::<Result<_, _>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let serial = RandomSerials::from_os().next_serial();
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(SERVER_CERT_DAYS);
    let certificate = params
        .signed_by(&key, &issuer)
        .map_err(|e| fail("signing", &e))?;

    let recorded = IssuedCertificate {
        serial,
        computer_name: ComputerName::new(first).map_err(|e| fail("name", &e))?,
        not_before: params.not_before,
        not_after: params.not_after,
        certificate_pem: certificate.pem(),
        revoked: None,
    };
    ca.ledger()
        .record_issued(&recorded)
        .map_err(|e| fail("ledger", &e))?;
    Ok(ServerIdentity {
        chain_pem: format!("{}{}", certificate.pem(), ca.chain_pem()),
        key_pem: key.serialize_pem(),
    })
}
