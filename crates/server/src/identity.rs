//! Reading who a verified client certificate belongs to.

use rustls_pki_types::CertificateDer;
use tessera_store::{DeviceKey, Store};
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

/// The enrolled device a verified certificate was issued to, from the ledger in the store.
pub async fn certified_device<S: Store>(
    store: &S,
    certificate: &CertificateDer<'_>,
) -> tessera_store::Result<Option<DeviceKey>> {
    let Some(serial) = serial_hex(certificate) else {
        return Ok(None);
    };
    Ok(store
        .certificate(&serial)
        .await?
        .and_then(|record| record.device))
}
