//! The certificate authority: CA keys and certificates, and the operations on them
//! (issue, renew, revoke, sign CRLs). Time, serials and the ledger are injected.

use std::fmt;
use std::sync::Arc;

use rcgen::{CertificateParams, Issuer, KeyIdMethod, KeyPair, PublicKeyData};
use time::OffsetDateTime;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::crl::{self, PublishedCrls, SignedCrl};
use crate::pkcs12::{self, Pkcs12Password, Pkcs12Profile};
use crate::profile::{self, CaSettings, KeyAlgorithm};
use crate::{
    CaError, Clock, ComputerName, DeviceCsr, IssuedCertificate, Ledger, Revocation,
    RevocationReason, Serial, SerialSource, SystemClock,
};

/// What the CA depends on besides its keys: the clock, where serials come from, and the
/// ledger.
#[derive(Clone)]
pub struct CaServices {
    /// "Now", for validity periods and CRL dates.
    pub clock: Arc<dyn Clock>,
    /// Serial numbers for new certificates.
    pub serials: Arc<dyn SerialSource>,
    /// Where issued certificates are recorded.
    pub ledger: Arc<dyn Ledger>,
}

impl CaServices {
    /// The system clock, operating-system-seeded random serials, and `ledger`.
    pub fn system(ledger: Arc<dyn Ledger>) -> Self {
        Self {
            clock: Arc::new(SystemClock),
            serials: Arc::new(crate::RandomSerials::from_os()),
            ledger,
        }
    }
}

impl fmt::Debug for CaServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaServices")
    }
}

/// How to make a new CA.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The root's common name; an intermediate gets the same name with " Issuing CA".
    pub common_name: String,
    /// Key type of the CA key(s). Default RSA-3072.
    pub key_algorithm: KeyAlgorithm,
    /// Make a root and an intermediate that signs devices (the root key then only signs
    /// the intermediate and the root CRL). Default: root only.
    pub intermediate: bool,
    /// CRL URLs and lifetimes.
    pub settings: CaSettings,
}

/// The PEM texts a CA is made of: what is stored on disk and what [`Ca::open`] reads.
#[derive(Clone)]
pub struct CaMaterial {
    /// The CA certificate that signs devices and the device CRL.
    pub issuing_certificate_pem: String,
    /// Its private key (PKCS#8 PEM). Secret.
    pub issuing_key_pem: String,
    /// The certificates above the issuing one, up to and including the self-signed root;
    /// empty when the issuing certificate is the root.
    pub parents_pem: Vec<String>,
    /// The root's private key when this CA holds it separately (two-tier CA made by
    /// [`Ca::init`]); lets the CA sign the root CRL. Secret.
    pub root_key_pem: Option<String>,
}

impl CaMaterial {
    /// A site's issuing CA from two files: `chain` (PEM: the issuing certificate first, then
    /// the certificates above it up to the root) and `key` (its unencrypted private key,
    /// PEM; refused if group or others can read it). The root key is not taken.
    pub fn from_files(chain: &std::path::Path, key: &std::path::Path) -> Result<Self, CaError> {
        let text = String::from_utf8(crate::fsio::read(chain)?).map_err(|_| {
            CaError::InvalidCaMaterial {
                what: "chain file",
                reason: format!("{} is not PEM text", chain.display()),
            }
        })?;
        let blocks = pem::parse_many(&text).map_err(|e| CaError::InvalidCaMaterial {
            what: "chain file",
            reason: format!("{} is not PEM ({e})", chain.display()),
        })?;
        let mut certificates = blocks
            .iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(crate::pem_lf);
        let Some(issuing) = certificates.next() else {
            return Err(CaError::InvalidCaMaterial {
                what: "chain file",
                reason: format!(
                    "{} holds no CERTIFICATE block; give the issuing CA certificate first",
                    chain.display()
                ),
            });
        };
        let key_pem = String::from_utf8(crate::fsio::read_private(key)?).map_err(|_| {
            CaError::InvalidCaMaterial {
                what: "key file",
                reason: format!("{} is not PEM text", key.display()),
            }
        })?;
        Ok(Self {
            issuing_certificate_pem: issuing,
            issuing_key_pem: key_pem,
            parents_pem: certificates.collect(),
            root_key_pem: None,
        })
    }
}

impl fmt::Debug for CaMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaMaterial")
            .field("issuing_certificate_pem", &"<certificate>")
            .field("issuing_key_pem", &"<redacted>")
            .field("parents", &self.parents_pem.len())
            .field(
                "root_key_pem",
                &self.root_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// One CA certificate with the key that signs as it.
struct Signer {
    certificate_der: Vec<u8>,
    certificate_pem: String,
    not_after: OffsetDateTime,
    key_id: KeyIdMethod,
    issuer: Issuer<'static, KeyPair>,
}

impl Signer {
    fn new(certificate_pem: &str, key: KeyPair, what: &'static str) -> Result<Self, CaError> {
        let bad = |reason: String| CaError::InvalidCaMaterial { what, reason };
        let der = pem_block(certificate_pem, "CERTIFICATE").map_err(&bad)?;
        let (rest, cert) = X509Certificate::from_der(&der).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the certificate".into()));
        }
        if !cert.is_ca() {
            return Err(bad(
                "it is not a CA certificate (basicConstraints cA is not TRUE)".into(),
            ));
        }
        match cert.key_usage() {
            Err(e) => return Err(bad(format!("its key usage extension is malformed ({e})"))),
            Ok(Some(ku)) if !ku.value.key_cert_sign() || !ku.value.crl_sign() => {
                return Err(bad("its key usage lacks keyCertSign or cRLSign".into()));
            }
            Ok(_) => {}
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(bad(
                "the private key does not belong to the certificate".into()
            ));
        }
        let not_after = cert.validity().not_after.to_datetime();
        let key_id = cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => {
                    Some(KeyIdMethod::PreSpecified(id.0.to_vec()))
                }
                _ => None,
            })
            .unwrap_or(KeyIdMethod::Sha256);
        let issuer = Issuer::from_ca_cert_der(&der.clone().into(), key)
            .map_err(|e| bad(format!("rcgen cannot use it as an issuer: {e}")))?;
        Ok(Self {
            certificate_der: der,
            certificate_pem: certificate_pem.to_owned(),
            not_after,
            key_id,
            issuer,
        })
    }

    fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }
}

/// A device certificate authority.
pub struct Ca {
    issuing: Signer,
    /// Holds the root key when it differs from the issuing one.
    root: Option<Signer>,
    /// Certificates above the issuing one, DER, up to the root.
    parents_der: Vec<Vec<u8>>,
    parents_pem: Vec<String>,
    settings: CaSettings,
    services: CaServices,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("tiers", &(1 + self.parents_der.len()))
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Makes a new CA: a root (and optionally an intermediate) with fresh keys.
    pub fn init(options: &InitOptions, services: CaServices) -> Result<Self, CaError> {
        options.settings.validate()?;
        if options.common_name.trim().is_empty() {
            return Err(CaError::InvalidSetting {
                setting: "common_name",
                reason: "the CA needs a name, e.g. \"Example Device CA\"".into(),
            });
        }
        let now = services.clock.now();
        let root_key = options.key_algorithm.generate()?;
        let path_len = u8::from(options.intermediate);
        let root_params = profile::root_params(
            &options.common_name,
            &services.serials.next_serial(),
            now,
            path_len,
        );
        let root_cert = root_params
            .self_signed(&root_key)
            .map_err(CaError::signing("sign the root certificate"))?;
        let root = Signer::new(&root_cert.pem(), root_key, "root certificate")?;
        if !options.intermediate {
            return Self::assemble(root, None, Vec::new(), options.settings.clone(), services);
        }
        let int_key = options.key_algorithm.generate()?;
        let int_params = profile::intermediate_params(
            &format!("{} Issuing CA", options.common_name),
            &services.serials.next_serial(),
            now,
            &options.settings,
        );
        let int_cert = int_params
            .signed_by(&int_key, &root.issuer)
            .map_err(CaError::signing("sign the intermediate certificate"))?;
        let issuing = Signer::new(&int_cert.pem(), int_key, "intermediate certificate")?;
        let parents = vec![root.certificate_pem.clone()];
        Self::assemble(
            issuing,
            Some(root),
            parents,
            options.settings.clone(),
            services,
        )
    }

    /// Loads an existing CA: one made by [`Ca::init`] or a site's own issuing CA (then
    /// `parents_pem` holds its chain up to the root and `root_key_pem` is `None`).
    /// Checks that each key belongs to its certificate and that the chain links up.
    pub fn open(
        material: &CaMaterial,
        settings: CaSettings,
        services: CaServices,
    ) -> Result<Self, CaError> {
        settings.validate()?;
        let issuing_key = load_key(&material.issuing_key_pem, "issuing key")?;
        let issuing = Signer::new(
            &material.issuing_certificate_pem,
            issuing_key,
            "issuing certificate",
        )?;
        let root = match &material.root_key_pem {
            None => None,
            Some(key_pem) => {
                let Some(root_pem) = material.parents_pem.last() else {
                    return Err(CaError::InvalidCaMaterial {
                        what: "root key",
                        reason:
                            "a root key was given but no root certificate above the issuing one"
                                .into(),
                    });
                };
                Some(Signer::new(
                    root_pem,
                    load_key(key_pem, "root key")?,
                    "root certificate",
                )?)
            }
        };
        Self::assemble(
            issuing,
            root,
            material.parents_pem.clone(),
            settings,
            services,
        )
    }

    fn assemble(
        issuing: Signer,
        root: Option<Signer>,
        parents_pem: Vec<String>,
        settings: CaSettings,
        services: CaServices,
    ) -> Result<Self, CaError> {
        let parents_der = parents_pem
            .iter()
            .map(|p| {
                pem_block(p, "CERTIFICATE").map_err(|reason| CaError::InvalidCaMaterial {
                    what: "chain certificate",
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_chain(&issuing.certificate_der, &parents_der)?;
        Ok(Self {
            issuing,
            root,
            parents_der,
            parents_pem,
            settings,
            services,
        })
    }

    /// The PEM texts to store (contains the private keys).
    pub fn material(&self) -> CaMaterial {
        CaMaterial {
            issuing_certificate_pem: self.issuing.certificate_pem.clone(),
            issuing_key_pem: self.issuing.key_pem(),
            parents_pem: self.parents_pem.clone(),
            root_key_pem: self.root.as_ref().map(Signer::key_pem),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &CaSettings {
        &self.settings
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.services.ledger
    }

    /// The CA chain, DER: the issuing certificate first, the root last.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.issuing.certificate_der.clone())
            .chain(self.parents_der.iter().cloned())
            .collect()
    }

    /// The CA chain as concatenated PEM, issuing certificate first.
    pub fn chain_pem(&self) -> String {
        std::iter::once(self.issuing.certificate_pem.as_str())
            .chain(self.parents_pem.iter().map(String::as_str))
            .collect()
    }

    /// The root certificate, DER (the trust anchor devices need).
    pub fn root_der(&self) -> &[u8] {
        self.parents_der
            .last()
            .unwrap_or(&self.issuing.certificate_der)
    }

    /// The issuing CA's certificates below the root, DER (what devices send as
    /// intermediates); empty for a single-tier CA.
    pub fn intermediates_der(&self) -> Vec<Vec<u8>> {
        let mut chain = self.chain_der();
        chain.pop();
        chain
    }

    /// Issues a device certificate for the key in `csr`. The CSR must ask for `name` (and
    /// nothing else); everything else in the certificate comes from policy.
    pub fn issue_from_csr(
        &self,
        csr: &DeviceCsr,
        name: &ComputerName,
    ) -> Result<IssuedCertificate, CaError> {
        csr.check_names(name)?;
        self.issue_for_key(name, csr.public_key())
    }

    /// Generates an RSA-2048 key for a device that cannot make its own, issues its
    /// certificate, and returns both with a PKCS#12 file holding the key and the full
    /// chain, encrypted with `password` in the given profile.
    pub fn issue_with_new_key(
        &self,
        name: &ComputerName,
        password: &Pkcs12Password,
        profile: Pkcs12Profile,
    ) -> Result<(IssuedCertificate, Vec<u8>), CaError> {
        let key = KeyAlgorithm::Rsa2048.generate()?;
        let issued = self.issue_for_key(name, &key)?;
        let leaf = pem_block(&issued.certificate_pem, "CERTIFICATE").map_err(|reason| {
            CaError::Pkcs12 {
                action: "write",
                reason,
            }
        })?;
        let chain: Vec<Vec<u8>> = std::iter::once(leaf).chain(self.chain_der()).collect();
        let pfx = pkcs12::write(
            key.serialized_der(),
            &chain,
            name.as_str(),
            password,
            profile,
        )?;
        Ok((issued, pfx))
    }

    /// Renews: a new certificate, with a new serial, for the computer the certificate
    /// `previous` was issued to, for the key in `csr`. The previous certificate stays
    /// valid until it is revoked or expires. Revoked or expired certificates cannot be
    /// renewed.
    pub fn renew(&self, previous: &Serial, csr: &DeviceCsr) -> Result<IssuedCertificate, CaError> {
        let Some(old) = self.services.ledger.find(previous)? else {
            return Err(CaError::UnknownSerial {
                serial: previous.to_hex(),
            });
        };
        if old.revoked.is_some() {
            return Err(CaError::NotRenewable {
                serial: previous.to_hex(),
                reason: "it is revoked",
            });
        }
        if self.services.clock.now() > old.not_after {
            return Err(CaError::NotRenewable {
                serial: previous.to_hex(),
                reason: "it has expired",
            });
        }
        self.issue_from_csr(csr, &old.computer_name)
    }

    /// Revokes a certificate this CA issued. Publish new CRLs afterwards
    /// ([`Ca::sign_crls`]).
    pub fn revoke(
        &self,
        serial: &Serial,
        reason: RevocationReason,
    ) -> Result<IssuedCertificate, CaError> {
        let revocation = Revocation {
            at: self.services.clock.now(),
            reason,
        };
        self.services.ledger.revoke(serial, &revocation)
    }

    /// Signs fresh CRLs (each with a new, higher CRL number): the issuing CA's, listing
    /// every revoked device certificate, and, when this CA holds a separate root key, the
    /// root's (empty: intermediates are not revoked through this CA).
    pub fn sign_crls(&self) -> Result<PublishedCrls, CaError> {
        let now = self.services.clock.now();
        let next_update = now + self.settings.crl_validity();
        let revoked = self.services.ledger.revoked()?;
        let issuing = crl::sign(
            &self.issuing.issuer,
            &self.issuing.key_id,
            self.services.ledger.next_crl_number()?,
            now,
            next_update,
            &revoked,
        )?;
        let root = match &self.root {
            Some(root) => Some(crl::sign(
                &root.issuer,
                &root.key_id,
                self.services.ledger.next_crl_number()?,
                now,
                next_update,
                &[],
            )?),
            None => None,
        };
        Ok(PublishedCrls { issuing, root })
    }

    /// Whether `published` must be replaced: there is none, it is older than the re-sign
    /// age, a revocation is missing from it, or the root CRL is missing.
    pub fn crls_due(&self, published: Option<&PublishedCrls>) -> Result<bool, CaError> {
        let Some(published) = published else {
            return Ok(true);
        };
        let now = self.services.clock.now();
        if self.root.is_some() != published.root.is_some() {
            return Ok(true);
        }
        let stale = |crl: &SignedCrl| {
            now >= crl.this_update() + self.settings.crl_resign_after() || now < crl.this_update()
        };
        if stale(&published.issuing) || published.root.as_ref().is_some_and(stale) {
            return Ok(true);
        }
        let mut listed: Vec<&Serial> = published.issuing.revoked_serials().iter().collect();
        listed.sort();
        let revoked = self.services.ledger.revoked()?;
        let mut expected: Vec<&Serial> = revoked.iter().map(|c| &c.serial).collect();
        expected.sort();
        Ok(listed != expected)
    }

    /// `published` if still current, otherwise freshly signed CRLs; the flag says whether
    /// they were re-signed (and must be stored and served).
    pub fn current_crls(
        &self,
        published: Option<PublishedCrls>,
    ) -> Result<(PublishedCrls, bool), CaError> {
        match published {
            Some(p) if !self.crls_due(Some(&p))? => Ok((p, false)),
            _ => Ok((self.sign_crls()?, true)),
        }
    }

    /// Evaluates `issued` against tessera-certpolicy's default policy at the clock's time,
    /// with this CA's chain and `crls`; without CRLs (before the first is published) the
    /// revocation rule is skipped instead of failed. This is how the CA proves that what it
    /// issues is what relying parties accept.
    pub fn prove(
        &self,
        issued: &IssuedCertificate,
        crls: Option<&PublishedCrls>,
    ) -> Result<tessera_certpolicy::Report, CaError> {
        use tessera_certpolicy::{CertificateDer, CertificateRevocationListDer, Policy, UnixTime};
        let leaf = pem_block(&issued.certificate_pem, "CERTIFICATE").map_err(|reason| {
            CaError::InvalidCaMaterial {
                what: "issued certificate",
                reason,
            }
        })?;
        let leaf = CertificateDer::from(leaf);
        let intermediates: Vec<CertificateDer<'static>> = self
            .intermediates_der()
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let anchors = [CertificateDer::from(self.root_der().to_vec())];
        let crls: Vec<CertificateRevocationListDer<'static>> = crls
            .map(PublishedCrls::all_der)
            .unwrap_or_default()
            .into_iter()
            .map(CertificateRevocationListDer::from)
            .collect();
        let mut policy = Policy::default();
        policy.require_revocation_status = !crls.is_empty();
        let secs = u64::try_from(self.services.clock.now().unix_timestamp()).unwrap_or(0);
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        Ok(policy.evaluate(
            &leaf,
            &intermediates,
            &anchors,
            &crls,
            issued.computer_name.as_str(),
            now,
        ))
    }

    fn issue_for_key(
        &self,
        name: &ComputerName,
        key: &impl PublicKeyData,
    ) -> Result<IssuedCertificate, CaError> {
        let now = self.services.clock.now();
        if now >= self.issuing.not_after {
            return Err(CaError::InvalidCaMaterial {
                what: "issuing certificate",
                reason: format!(
                    "it expired at {}; devices would reject anything it signs: make a new CA",
                    self.issuing.not_after
                ),
            });
        }
        let serial = self.services.serials.next_serial();
        let mut params: CertificateParams =
            profile::device_params(name, &serial, now, &self.settings)?;
        // A device certificate never outlives the CA that vouches for it.
        params.not_after = params.not_after.min(self.issuing.not_after);
        let certificate = params
            .signed_by(key, &self.issuing.issuer)
            .map_err(CaError::signing("sign the device certificate"))?;
        let issued = IssuedCertificate {
            serial,
            computer_name: name.clone(),
            not_before: params.not_before,
            not_after: params.not_after,
            certificate_pem: certificate.pem(),
            revoked: None,
        };
        self.services.ledger.record_issued(&issued)?;
        Ok(issued)
    }
}

fn load_key(pem_text: &str, what: &'static str) -> Result<KeyPair, CaError> {
    KeyPair::from_pem(pem_text).map_err(|e| CaError::InvalidCaMaterial {
        what,
        reason: format!("not a usable PKCS#8/PKCS#1/SEC1 PEM private key ({e})"),
    })
}

/// The contents of the single PEM block of type `tag` in `text`.
pub(crate) fn pem_block(text: &str, tag: &str) -> Result<Vec<u8>, String> {
    let block = pem::parse(text).map_err(|e| format!("bad PEM: {e}"))?;
    if block.tag() != tag {
        return Err(format!(
            "the PEM block is a {:?}, expected {tag:?}",
            block.tag()
        ));
    }
    Ok(block.into_contents())
}

/// Each certificate is signed by the next; the last is self-signed.
fn check_chain(issuing: &[u8], parents: &[Vec<u8>]) -> Result<(), CaError> {
    let bad = |reason: String| CaError::InvalidCaMaterial {
        what: "chain",
        reason,
    };
    let all: Vec<&[u8]> = std::iter::once(issuing)
        .chain(parents.iter().map(Vec::as_slice))
        .collect();
    for (index, der) in all.iter().enumerate() {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        let signer_der = all.get(index + 1).copied().unwrap_or(der);
        let (_, signer) = X509Certificate::from_der(signer_der).map_err(|e| bad(e.to_string()))?;
        if cert.issuer() != signer.subject()
            || cert.verify_signature(Some(signer.public_key())).is_err()
        {
            let position = if index + 1 == all.len() {
                "the last certificate is not a self-signed root".to_owned()
            } else {
                format!(
                    "certificate {index} ({}) is not signed by the one after it",
                    cert.subject()
                )
            };
            return Err(bad(format!(
                "{position}; give the chain in order, issuing CA first, root last"
            )));
        }
    }
    Ok(())
}
