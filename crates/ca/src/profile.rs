//! What the CA writes into certificates: the settings an operator chooses and the fixed
//! device-certificate profile built from them (never from anything a CSR asks for).

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{CaError, ComputerName, Serial};

/// A CRL distribution point URL: `http://` (not https, which would need a working TLS
/// chain to fetch the very CRL that checks it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CrlUrl(String);

impl CrlUrl {
    /// Checks that `url` is an absolute `http://` URL with a host and no spaces.
    pub fn new(url: &str) -> Result<Self, CaError> {
        let invalid = |reason| CaError::InvalidCrlUrl {
            url: url.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid("it is not an absolute URL"));
        };
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(invalid("the scheme is not http"));
        }
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() {
            return Err(invalid("it has no host"));
        }
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("it contains spaces or non-ASCII characters"));
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CrlUrl {
    type Error = CaError;
    fn try_from(url: String) -> Result<Self, CaError> {
        Self::new(&url)
    }
}

impl From<CrlUrl> for String {
    fn from(url: CrlUrl) -> String {
        url.0
    }
}

/// The key type of a CA or device key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// RSA, 2048-bit modulus, signatures SHA-256 (device keys made by the server).
    Rsa2048,
    /// RSA, 3072-bit modulus, signatures SHA-256 (the default for CA keys).
    #[default]
    Rsa3072,
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256,
}

impl KeyAlgorithm {
    /// Generates a key of this type (RSA takes tens to hundreds of milliseconds).
    pub fn generate(self) -> Result<KeyPair, CaError> {
        let generated = match self {
            Self::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            Self::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
            }
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        };
        generated.map_err(CaError::signing("generate a key"))
    }
}

/// The operator's choices for a CA; stored beside the CA (`ca.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSettings {
    /// Where relying parties fetch the issuing CA's CRL; written into every device
    /// certificate.
    pub crl_url: CrlUrl,
    /// Where they fetch the root's CRL (lists revoked intermediates); written into the
    /// intermediate. Only used with an intermediate.
    pub root_crl_url: CrlUrl,
    /// Device certificate lifetime in days (default 365).
    pub leaf_validity_days: u16,
    /// How long a CRL is valid: its nextUpdate is thisUpdate + this many days (default 7).
    pub crl_validity_days: u16,
    /// A CRL older than this many hours is re-signed when asked for (default 48); must be
    /// well below `crl_validity_days` so relying parties never hold an expired CRL.
    pub crl_resign_after_hours: u16,
}

impl CaSettings {
    /// The defaults, with CRLs published under `base` (e.g. `http://tessera.example:8080`):
    /// `<base>/crl/device-ca.crl` for the issuing CA and `<base>/crl/root-ca.crl` for the
    /// root (the paths tessera-server serves).
    pub fn with_crl_base(base: &str) -> Result<Self, CaError> {
        let base = base.trim_end_matches('/');
        Ok(Self {
            crl_url: CrlUrl::new(&format!("{base}/crl/device-ca.crl"))?,
            root_crl_url: CrlUrl::new(&format!("{base}/crl/root-ca.crl"))?,
            leaf_validity_days: 365,
            crl_validity_days: 7,
            crl_resign_after_hours: 48,
        })
    }

    /// Checks the numbers against each other.
    pub fn validate(&self) -> Result<(), CaError> {
        if self.leaf_validity_days == 0 {
            return Err(CaError::InvalidSetting {
                setting: "leaf_validity_days",
                reason: "must be at least 1".into(),
            });
        }
        if self.crl_validity_days == 0 {
            return Err(CaError::InvalidSetting {
                setting: "crl_validity_days",
                reason: "must be at least 1".into(),
            });
        }
        if self.crl_resign_after_hours == 0
            || u32::from(self.crl_resign_after_hours) >= u32::from(self.crl_validity_days) * 24
        {
            return Err(CaError::InvalidSetting {
                setting: "crl_resign_after_hours",
                reason: format!(
                    "must be between 1 and the CRL validity ({} h), or CRLs expire before \
                     they are re-signed",
                    u32::from(self.crl_validity_days) * 24
                ),
            });
        }
        Ok(())
    }

    /// The CRL validity as a duration.
    pub fn crl_validity(&self) -> Duration {
        Duration::days(i64::from(self.crl_validity_days))
    }

    /// The CRL re-signing age as a duration.
    pub fn crl_resign_after(&self) -> Duration {
        Duration::hours(i64::from(self.crl_resign_after_hours))
    }
}

/// How far `not_before` lies before the issuing time, for devices whose clocks run late.
pub const BACKDATE: Duration = Duration::minutes(5);

/// CA certificate lifetimes: 20 years for a root, 10 for an intermediate.
pub(crate) const ROOT_VALIDITY: Duration = Duration::days(20 * 365);
pub(crate) const INTERMEDIATE_VALIDITY: Duration = Duration::days(10 * 365);

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// The device certificate profile: CN and SAN dNSName = the computer name, EKU clientAuth,
/// KU digitalSignature + keyEncipherment (rcgen marks KU critical), one http CRL
/// distribution point, AKI (SKI comes with it), the given serial, explicit validity.
pub(crate) fn device_params(
    name: &ComputerName,
    serial: &Serial,
    now: OffsetDateTime,
    settings: &CaSettings,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(name.as_str());
    let dns = name
        .as_str()
        .to_owned()
        .try_into()
        .map_err(CaError::signing("use the computer name as a DNS name"))?;
    params.subject_alt_names = vec![SanType::DnsName(dns)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![settings.crl_url.as_str().to_owned()],
    }];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial.to_rcgen());
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(i64::from(settings.leaf_validity_days));
    Ok(params)
}

/// A root CA: self-signed, may sign one level of intermediates (or devices directly).
pub(crate) fn root_params(
    cn: &str,
    serial: &Serial,
    now: OffsetDateTime,
    path_len: u8,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(serial.to_rcgen());
    params.not_before = now - BACKDATE;
    params.not_after = now + ROOT_VALIDITY;
    params
}

/// An intermediate that signs devices only.
pub(crate) fn intermediate_params(
    cn: &str,
    serial: &Serial,
    now: OffsetDateTime,
    settings: &CaSettings,
) -> CertificateParams {
    let mut params = root_params(cn, serial, now, 0);
    params.not_after = now + INTERMEDIATE_VALIDITY;
    params.use_authority_key_identifier_extension = true;
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![settings.root_crl_url.as_str().to_owned()],
    }];
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crl_urls_must_be_plain_http() {
        assert!(CrlUrl::new("http://pki.example/ca/crl").is_ok());
        assert!(CrlUrl::new("HTTP://127.0.0.1:8080/ca/crl").is_ok());
        for bad in [
            "https://pki.example/crl",
            "ldap://x/crl",
            "pki.example/crl",
            "http:///crl",
            "http://a b/crl",
            "",
        ] {
            assert!(
                matches!(CrlUrl::new(bad), Err(CaError::InvalidCrlUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn default_settings_are_valid_and_bad_schedules_are_refused() {
        let settings = CaSettings::with_crl_base("http://127.0.0.1:8080/").unwrap();
        settings.validate().unwrap();
        assert_eq!(
            settings.crl_url.as_str(),
            "http://127.0.0.1:8080/crl/device-ca.crl"
        );
        assert_eq!(settings.crl_validity(), Duration::days(7));

        let mut late = settings.clone();
        late.crl_resign_after_hours = 7 * 24;
        assert!(late.validate().is_err());
        let mut zero = settings;
        zero.leaf_validity_days = 0;
        assert!(zero.validate().is_err());
    }

    #[test]
    fn settings_round_trip_and_refuse_unknown_fields() {
        let settings = CaSettings::with_crl_base("http://h").unwrap();
        let json = serde_json::to_string(&settings).unwrap();
        assert_eq!(serde_json::from_str::<CaSettings>(&json).unwrap(), settings);
        let with_https = json.replace("http://h/crl/device-ca.crl", "https://h/crl/device-ca.crl");
        assert!(serde_json::from_str::<CaSettings>(&with_https).is_err());
    }
}
