//! Reading who a verified client certificate belongs to.

use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// The certificate's serial number as the ledger keys it: lowercase hex of the DER
/// integer's content bytes, without leading zero bytes.
pub fn serial_hex(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = X509Certificate::from_der(certificate.as_ref()).ok()?;
    let raw = parsed.raw_serial();
    let first = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    Some(hex::encode(&raw[first..]))
}
