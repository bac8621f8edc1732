//! Loading certificates, CRLs and private keys from PEM or DER bytes, or from files.
//!
//! The evaluation itself never touches the file system; these helpers are the thin edge
//! where front ends turn paths and bytes into the DER types [`crate::Policy::evaluate`]
//! takes.

use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};

use crate::policy::Evidence;

/// Why input could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("cannot read {}: {reason}; check the path and that this user may read it", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said (in the message, so it is not repeated as a cause).
        reason: std::io::Error,
    },
    /// The input looked like PEM but its armour is broken.
    #[error(
        "{what}: malformed PEM ({reason}); re-export it, e.g. with `openssl x509 -outform PEM`"
    )]
    Pem {
        /// What was being loaded, e.g. the path.
        what: String,
        /// The PEM parser's complaint.
        reason: pem::PemError,
    },
    /// The input held nothing of the expected kind.
    #[error(
        "{what}: no {expected} found; expected PEM blocks labelled \"{expected}\" or one DER value"
    )]
    NothingFound {
        /// What was being loaded.
        what: String,
        /// The PEM label that was looked for.
        expected: &'static str,
    },
    /// The private key is encrypted; the evaluation needs the plain key.
    #[error(
        "{what}: the private key is encrypted; supply the unencrypted key from a file only you can read"
    )]
    EncryptedKey {
        /// What was being loaded.
        what: String,
    },
    /// The private key is neither PKCS#8, PKCS#1 nor SEC1 DER.
    #[error(
        "{what}: not a private key ({reason}); expected PKCS#8, PKCS#1 (RSA) or SEC1 (EC), PEM or DER"
    )]
    BadKey {
        /// What was being loaded.
        what: String,
        /// Why the bytes were rejected.
        reason: &'static str,
    },
}

const CERTIFICATE_LABELS: &[&str] = &["CERTIFICATE", "X509 CERTIFICATE"];
const CRL_LABELS: &[&str] = &["X509 CRL"];

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// PEM blocks with one of `labels`, or the whole input as one DER value.
fn der_values(
    bytes: &[u8],
    labels: &[&str],
    expected: &'static str,
    what: &str,
) -> Result<Vec<Vec<u8>>, LoadError> {
    let values: Vec<Vec<u8>> = if looks_like_pem(bytes) {
        pem::parse_many(bytes)
            .map_err(|reason| LoadError::Pem {
                what: what.to_owned(),
                reason,
            })?
            .into_iter()
            .filter(|p| labels.contains(&p.tag()))
            .map(pem::Pem::into_contents)
            .collect()
    } else if bytes.is_empty() {
        Vec::new()
    } else {
        vec![bytes.to_vec()]
    };
    if values.is_empty() {
        return Err(LoadError::NothingFound {
            what: what.to_owned(),
            expected,
        });
    }
    Ok(values)
}

/// Every certificate in PEM input (in order), or the input as one DER certificate.
/// `what` names the input in errors (a path, "--cert").
pub fn certificates_from_bytes(
    bytes: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    Ok(der_values(bytes, CERTIFICATE_LABELS, "CERTIFICATE", what)?
        .into_iter()
        .map(CertificateDer::from)
        .collect())
}

/// Every CRL in PEM input, or the input as one DER CRL.
pub fn crls_from_bytes(
    bytes: &[u8],
    what: &str,
) -> Result<Vec<CertificateRevocationListDer<'static>>, LoadError> {
    Ok(der_values(bytes, CRL_LABELS, "X509 CRL", what)?
        .into_iter()
        .map(CertificateRevocationListDer::from)
        .collect())
}

/// The first private key in PEM input (PKCS#8, PKCS#1 or SEC1), or the input as DER.
pub fn private_key_from_bytes(
    bytes: &[u8],
    what: &str,
) -> Result<PrivateKeyDer<'static>, LoadError> {
    if !looks_like_pem(bytes) {
        return PrivateKeyDer::try_from(bytes)
            .map(|k| k.clone_key())
            .map_err(|reason| LoadError::BadKey {
                what: what.to_owned(),
                reason,
            });
    }
    let blocks = pem::parse_many(bytes).map_err(|reason| LoadError::Pem {
        what: what.to_owned(),
        reason,
    })?;
    for block in blocks {
        match block.tag() {
            "PRIVATE KEY" => {
                return Ok(PrivateKeyDer::Pkcs8(block.into_contents().into()));
            }
            "RSA PRIVATE KEY" => return Ok(PrivateKeyDer::Pkcs1(block.into_contents().into())),
            "EC PRIVATE KEY" => return Ok(PrivateKeyDer::Sec1(block.into_contents().into())),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(LoadError::EncryptedKey {
                    what: what.to_owned(),
                });
            }
            _ => {}
        }
    }
    Err(LoadError::NothingFound {
        what: what.to_owned(),
        expected: "PRIVATE KEY",
    })
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|reason| LoadError::Io {
        path: path.to_owned(),
        reason,
    })
}

/// [`certificates_from_bytes`] over a file's contents.
pub fn certificates_from_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    certificates_from_bytes(&read(path)?, &path.display().to_string())
}

/// [`crls_from_bytes`] over a file's contents.
pub fn crls_from_file(
    path: &Path,
) -> Result<Vec<CertificateRevocationListDer<'static>>, LoadError> {
    crls_from_bytes(&read(path)?, &path.display().to_string())
}

/// [`private_key_from_bytes`] over a file's contents.
pub fn private_key_from_file(path: &Path) -> Result<PrivateKeyDer<'static>, LoadError> {
    private_key_from_bytes(&read(path)?, &path.display().to_string())
}

/// Owned inputs of one evaluation, loaded from files: what `tessera-agent doctor` and
/// `tessera-server cert check` evaluate.
#[derive(Debug)]
pub struct LoadedEvidence {
    /// The device certificate: the first certificate of the `--cert` file.
    pub leaf: CertificateDer<'static>,
    /// Further certificates of the `--cert` file, then those of the intermediate files.
    pub intermediates: Vec<CertificateDer<'static>>,
    /// Every certificate of the trust anchor files.
    pub trust_anchors: Vec<CertificateDer<'static>>,
    /// Every CRL of the CRL files.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// The private key, when a key file was given.
    pub private_key: Option<PrivateKeyDer<'static>>,
}

/// The files [`LoadedEvidence::from_files`] reads.
#[derive(Debug, Clone, Copy)]
pub struct EvidenceFiles<'a> {
    /// Device certificate (PEM or DER); a PEM chain's later certificates count as intermediates.
    pub cert: &'a Path,
    /// Private key of the device certificate.
    pub key: Option<&'a Path>,
    /// Trust anchor (root) files.
    pub trust_anchors: &'a [PathBuf],
    /// Intermediate CA files.
    pub intermediates: &'a [PathBuf],
    /// CRL files.
    pub crls: &'a [PathBuf],
}

impl LoadedEvidence {
    /// Reads and decodes every file; the first unreadable one is the error.
    pub fn from_files(files: &EvidenceFiles<'_>) -> Result<Self, LoadError> {
        let mut chain = certificates_from_file(files.cert)?.into_iter();
        let Some(leaf) = chain.next() else {
            return Err(LoadError::NothingFound {
                what: files.cert.display().to_string(),
                expected: "CERTIFICATE",
            });
        };
        let mut intermediates: Vec<_> = chain.collect();
        for path in files.intermediates {
            intermediates.extend(certificates_from_file(path)?);
        }
        let mut trust_anchors = Vec::new();
        for path in files.trust_anchors {
            trust_anchors.extend(certificates_from_file(path)?);
        }
        let mut crls = Vec::new();
        for path in files.crls {
            crls.extend(crls_from_file(path)?);
        }
        let private_key = files.key.map(private_key_from_file).transpose()?;
        Ok(Self {
            leaf,
            intermediates,
            trust_anchors,
            crls,
            private_key,
        })
    }

    /// Borrows these inputs for [`crate::Policy::evaluate_evidence`].
    pub fn evidence<'a>(&'a self, computer_name: &'a str, now: UnixTime) -> Evidence<'a> {
        Evidence {
            leaf: &self.leaf,
            intermediates: &self.intermediates,
            trust_anchors: &self.trust_anchors,
            crls: &self.crls,
            private_key: self.private_key.as_ref(),
            computer_name,
            now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_block(label: &str, body: &[u8]) -> String {
        pem::encode(&pem::Pem::new(label, body.to_vec()))
    }

    #[test]
    fn pem_bundle_yields_every_certificate_in_order_and_skips_other_blocks() {
        let text = format!(
            "{}{}{}",
            pem_block("CERTIFICATE", b"one"),
            pem_block("PRIVATE KEY", b"key"),
            pem_block("CERTIFICATE", b"two")
        );
        let certs = certificates_from_bytes(text.as_bytes(), "bundle").unwrap();
        let bodies: Vec<&[u8]> = certs.iter().map(AsRef::as_ref).collect();
        assert_eq!(bodies, vec![&b"one"[..], &b"two"[..]]);
    }

    #[test]
    fn der_input_is_one_value() {
        let certs = certificates_from_bytes(&[0x30, 0x00], "x").unwrap();
        assert_eq!(certs.len(), 1);
    }

    #[test]
    fn empty_and_wrong_label_inputs_say_what_was_expected() {
        let err = certificates_from_bytes(b"", "leaf.pem").unwrap_err();
        assert!(err.to_string().contains("leaf.pem: no CERTIFICATE found"));
        let crl_only = pem_block("X509 CRL", b"c");
        let err = certificates_from_bytes(crl_only.as_bytes(), "x").unwrap_err();
        assert!(matches!(err, LoadError::NothingFound { .. }));
        assert_eq!(crls_from_bytes(crl_only.as_bytes(), "x").unwrap().len(), 1);
    }

    #[test]
    fn broken_pem_is_an_error_not_a_panic() {
        let err = certificates_from_bytes(
            b"-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n",
            "x",
        )
        .unwrap_err();
        assert!(matches!(err, LoadError::Pem { .. }));
    }

    #[test]
    fn keys_by_label_and_encrypted_keys_refused() {
        let k = private_key_from_bytes(pem_block("RSA PRIVATE KEY", b"k").as_bytes(), "k").unwrap();
        assert!(matches!(k, PrivateKeyDer::Pkcs1(_)));
        let err = private_key_from_bytes(pem_block("ENCRYPTED PRIVATE KEY", b"k").as_bytes(), "k")
            .unwrap_err();
        assert!(err.to_string().contains("encrypted"));
        assert!(matches!(
            private_key_from_bytes(b"garbage", "k"),
            Err(LoadError::BadKey { .. })
        ));
    }

    #[test]
    fn evidence_files_split_a_chain_file_into_leaf_and_intermediates() {
        let dir = tempfile::tempdir().unwrap();
        let chain = dir.path().join("chain.pem");
        let root = dir.path().join("root.pem");
        let crl = dir.path().join("int.crl");
        std::fs::write(
            &chain,
            format!(
                "{}{}",
                pem_block("CERTIFICATE", b"leaf"),
                pem_block("CERTIFICATE", b"int")
            ),
        )
        .unwrap();
        std::fs::write(&root, pem_block("CERTIFICATE", b"root")).unwrap();
        std::fs::write(&crl, b"\x30\x00").unwrap();
        let loaded = LoadedEvidence::from_files(&EvidenceFiles {
            cert: &chain,
            key: None,
            trust_anchors: &[root],
            intermediates: &[],
            crls: &[crl],
        })
        .unwrap();
        assert_eq!(loaded.leaf.as_ref(), b"leaf");
        assert_eq!(loaded.intermediates.len(), 1);
        assert_eq!(loaded.trust_anchors[0].as_ref(), b"root");
        assert_eq!(loaded.crls.len(), 1);
        assert!(loaded.private_key.is_none());
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = certificates_from_file(Path::new("/nonexistent/leaf.pem")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/leaf.pem"));
    }
}
