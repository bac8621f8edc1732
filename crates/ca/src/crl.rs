//! Certificate revocation lists: signing with a strictly increasing CRL number and a
//! bounded nextUpdate, and reading back what was published to decide when to re-sign.

use rcgen::{CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, RevokedCertParams};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::{CaError, IssuedCertificate, Serial};

/// A signed CRL and the facts about it the CA needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCrl {
    der: Vec<u8>,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    revoked: Vec<Serial>,
}

impl SignedCrl {
    /// Reads a CRL (PEM `X509 CRL` or DER) this CA published.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let der = if bytes.starts_with(b"-----") {
            let block = pem::parse(bytes).map_err(|e| format!("bad PEM: {e}"))?;
            if block.tag() != "X509 CRL" {
                return Err(format!(
                    "the PEM block is a {:?}, not an X509 CRL",
                    block.tag()
                ));
            }
            block.into_contents()
        } else {
            bytes.to_vec()
        };
        let (rest, crl) = CertificateRevocationList::from_der(&der).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err("trailing bytes after the CRL".into());
        }
        let number_bytes = crl
            .crl_number()
            .map(num_bytes)
            .ok_or("the CRL has no CRL number")?;
        if number_bytes.len() > 8 {
            return Err("the CRL number does not fit in 64 bits".into());
        }
        let number = number_bytes
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b));
        let next_update = crl
            .next_update()
            .ok_or("the CRL has no nextUpdate")?
            .to_datetime();
        let this_update = crl.last_update().to_datetime();
        let revoked = crl
            .iter_revoked_certificates()
            .map(|r| Serial::from_unsigned_bytes(r.raw_serial()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            der,
            number,
            this_update,
            next_update,
            revoked,
        })
    }

    /// DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM (`-----BEGIN X509 CRL-----`).
    pub fn pem(&self) -> String {
        crate::pem_lf(&pem::Pem::new("X509 CRL", self.der.clone()))
    }

    /// The CRL number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// When it was signed.
    pub fn this_update(&self) -> OffsetDateTime {
        self.this_update
    }

    /// When relying parties must have a newer one.
    pub fn next_update(&self) -> OffsetDateTime {
        self.next_update
    }

    /// The serials it lists.
    pub fn revoked_serials(&self) -> &[Serial] {
        &self.revoked
    }
}

fn num_bytes(n: &x509_parser::num_bigint::BigUint) -> Vec<u8> {
    let bytes = n.to_bytes_be();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

/// The CRLs a CA publishes: its issuing CA's, and its root's when it holds the root key
/// separately (so `-crl_check_all` finds a CRL for every CA on the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedCrls {
    /// The issuing CA's CRL, listing revoked device certificates.
    pub issuing: SignedCrl,
    /// The root's CRL, for a two-tier CA.
    pub root: Option<SignedCrl>,
}

impl PublishedCrls {
    /// Every CRL, DER, issuing first.
    pub fn all_der(&self) -> Vec<Vec<u8>> {
        std::iter::once(&self.issuing)
            .chain(self.root.as_ref())
            .map(|c| c.der.clone())
            .collect()
    }
}

pub(crate) fn sign(
    issuer: &Issuer<'static, KeyPair>,
    key_id: &KeyIdMethod,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    revoked: &[IssuedCertificate],
) -> Result<SignedCrl, CaError> {
    let revoked_certs = revoked
        .iter()
        .filter_map(|c| {
            c.revoked.map(|r| RevokedCertParams {
                serial_number: c.serial.to_rcgen(),
                revocation_time: r.at,
                reason_code: Some(r.reason.to_rcgen()),
                invalidity_date: None,
            })
        })
        .collect();
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: rcgen::SerialNumber::from_slice(&number.to_be_bytes()),
        // No IDP: webpki only matches a CRL to a CDP without one when it is absent.
        issuing_distribution_point: None,
        revoked_certs,
        // The CRL's AKI must equal the issuer's SKI, whatever method made that one.
        key_identifier_method: key_id.clone(),
    };
    let crl = params
        .signed_by(issuer)
        .map_err(CaError::signing("sign the CRL"))?;
    SignedCrl::parse(crl.der()).map_err(|reason| CaError::InvalidCaMaterial {
        what: "CRL just signed",
        reason,
    })
}
