//! The CA's home in the server's data directory, `<data>/ca/`:
//!
//! | file | mode | content |
//! |---|---|---|
//! | `ca.json` | 0644 | [`CaSettings`] (CRL URLs, lifetimes) |
//! | `issuing.pem` | 0644 | the CA certificate that signs devices |
//! | `issuing.key` | 0600 | its private key, PKCS#8 PEM |
//! | `parents.pem` | 0644 | the certificates above it up to the root (absent for a single-tier CA) |
//! | `root.key` | 0600 | the root's key, two-tier CAs made by `init` only |
//! | `ledger.json` | 0600 | the [`FileLedger`]: issued serials, revocations, last CRL number |
//! | `crl.pem` | 0644 | the issuing CA's current CRL |
//! | `root-crl.pem` | 0644 | the root's current CRL (two-tier only) |
//!
//! The directory is 0700. `create` builds it under a temporary name beside it and renames
//! it into place, so a CA home is either complete or absent.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::crl::{PublishedCrls, SignedCrl};
use crate::fsio::{self, PRIVATE, PUBLIC};
use crate::{
    Ca, CaError, CaMaterial, CaServices, CaSettings, Clock, FileLedger, InitOptions, Ledger,
    MemoryLedger, SerialSource,
};

const SETTINGS: &str = "ca.json";
const ISSUING_CERT: &str = "issuing.pem";
const ISSUING_KEY: &str = "issuing.key";
const PARENTS: &str = "parents.pem";
const ROOT_KEY: &str = "root.key";
const LEDGER: &str = "ledger.json";
const CRL: &str = "crl.pem";
const ROOT_CRL: &str = "root-crl.pem";

/// The CA directory inside a data directory.
#[derive(Debug, Clone)]
pub struct CaHome {
    dir: PathBuf,
}

impl CaHome {
    /// The CA home of data directory `data_dir` (`<data_dir>/ca`).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("ca"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a CA lives here.
    pub fn exists(&self) -> bool {
        self.dir.join(SETTINGS).is_file()
    }

    /// The ledger file of this home.
    pub fn ledger(&self) -> FileLedger {
        FileLedger::new(self.dir.join(LEDGER))
    }

    /// Stores a new CA here (with an empty ledger and its first CRLs). Refuses to replace
    /// an existing one.
    pub fn create(&self, ca: &Ca, crls: &PublishedCrls) -> Result<(), CaError> {
        if self.dir.exists() {
            return Err(CaError::CaExists {
                path: self.dir.clone(),
            });
        }
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(CaError::io("cannot create data directory", parent))?;
        let staging = parent.join(format!(".ca.new-{}", std::process::id()));
        DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(CaError::io("cannot create", &staging))?;
        let result = Self::fill(&staging, ca, crls).and_then(|()| {
            // rename(2) refuses to replace a non-empty directory: a concurrent init loses.
            fs::rename(&staging, &self.dir).map_err(|e| {
                if self.dir.exists() {
                    CaError::CaExists {
                        path: self.dir.clone(),
                    }
                } else {
                    CaError::io("cannot move the new CA into", &self.dir)(e)
                }
            })
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&staging);
            return result;
        }
        fsio::sync_dir(parent)
    }

    fn fill(dir: &Path, ca: &Ca, crls: &PublishedCrls) -> Result<(), CaError> {
        let material = ca.material();
        let settings =
            serde_json::to_vec_pretty(ca.settings()).map_err(|e| CaError::InvalidSetting {
                setting: "settings",
                reason: e.to_string(),
            })?;
        fsio::write_atomic(&dir.join(SETTINGS), &settings, PUBLIC)?;
        fsio::write_atomic(
            &dir.join(ISSUING_KEY),
            material.issuing_key_pem.as_bytes(),
            PRIVATE,
        )?;
        fsio::write_atomic(
            &dir.join(ISSUING_CERT),
            material.issuing_certificate_pem.as_bytes(),
            PUBLIC,
        )?;
        if !material.parents_pem.is_empty() {
            fsio::write_atomic(
                &dir.join(PARENTS),
                material.parents_pem.concat().as_bytes(),
                PUBLIC,
            )?;
        }
        if let Some(root_key) = &material.root_key_pem {
            fsio::write_atomic(&dir.join(ROOT_KEY), root_key.as_bytes(), PRIVATE)?;
        }
        // Carry over what the CA recorded while it was being made (its CRL numbers).
        let ledger_json = serde_json::to_vec_pretty(&crate::ledger::LedgerState {
            last_crl_number: crls
                .issuing
                .number()
                .max(crls.root.as_ref().map_or(0, SignedCrl::number)),
            certificates: ca
                .ledger()
                .all()?
                .into_iter()
                .map(|c| (c.serial.clone(), c))
                .collect(),
        })
        .map_err(|e| CaError::Ledger(e.to_string()))?;
        fsio::write_atomic(&dir.join(LEDGER), &ledger_json, PRIVATE)?;
        Self::write_crls(dir, crls)
    }

    /// Makes a new CA with `options` and stores it here (with its first CRLs), then opens
    /// it with its file ledger: what `ca init` and a first `serve` do.
    pub fn initialise(
        &self,
        options: &InitOptions,
        clock: Arc<dyn Clock>,
        serials: Arc<dyn SerialSource>,
    ) -> Result<Ca, CaError> {
        if self.dir.exists() {
            return Err(CaError::CaExists {
                path: self.dir.clone(),
            });
        }
        let services = CaServices {
            clock: clock.clone(),
            serials: serials.clone(),
            ledger: Arc::new(MemoryLedger::new()),
        };
        let ca = Ca::init(options, services)?;
        self.create(&ca, &ca.sign_crls()?)?;
        self.open(clock, serials)
    }

    /// Stores a site's existing issuing CA here (`material` with its chain up to the root;
    /// usually without the root key) and opens it. Its CRL numbers start at the current
    /// Unix time, so that they continue above the counter-based numbers the site's own
    /// tooling is likely to have published for this issuer.
    pub fn import(
        &self,
        material: &CaMaterial,
        settings: CaSettings,
        clock: Arc<dyn Clock>,
        serials: Arc<dyn SerialSource>,
    ) -> Result<Ca, CaError> {
        if self.dir.exists() {
            return Err(CaError::CaExists {
                path: self.dir.clone(),
            });
        }
        let start = u64::try_from(clock.now().unix_timestamp()).unwrap_or(0);
        let services = CaServices {
            clock: clock.clone(),
            serials: serials.clone(),
            ledger: Arc::new(MemoryLedger::continuing_crl_numbers(start)),
        };
        let ca = Ca::open(material, settings, services)?;
        self.create(&ca, &ca.sign_crls()?)?;
        self.open(clock, serials)
    }

    /// Loads the CA stored here, with its file ledger and the given clock and serials.
    pub fn open(
        &self,
        clock: Arc<dyn Clock>,
        serials: Arc<dyn SerialSource>,
    ) -> Result<Ca, CaError> {
        self.open_with_ledger(clock, serials, Arc::new(self.ledger()))
    }

    /// Loads the CA stored here with another ledger (the server's database); the file
    /// ledger is then not used.
    pub fn open_with_ledger(
        &self,
        clock: Arc<dyn Clock>,
        serials: Arc<dyn SerialSource>,
        ledger: Arc<dyn Ledger>,
    ) -> Result<Ca, CaError> {
        if !self.exists() {
            return Err(CaError::CaMissing {
                path: self.dir.clone(),
            });
        }
        let settings_path = self.dir.join(SETTINGS);
        let settings: CaSettings =
            serde_json::from_slice(&fsio::read(&settings_path)?).map_err(|e| {
                CaError::DamagedFile {
                    path: settings_path.clone(),
                    reason: e.to_string(),
                }
            })?;
        let text = |name: &str, private: bool| -> Result<String, CaError> {
            let path = self.dir.join(name);
            let bytes = if private {
                fsio::read_private(&path)?
            } else {
                fsio::read(&path)?
            };
            String::from_utf8(bytes).map_err(|_| CaError::DamagedFile {
                path,
                reason: "not UTF-8 PEM text".into(),
            })
        };
        let parents_pem = if self.dir.join(PARENTS).exists() {
            split_pem_certificates(&text(PARENTS, false)?).map_err(|reason| {
                CaError::DamagedFile {
                    path: self.dir.join(PARENTS),
                    reason,
                }
            })?
        } else {
            Vec::new()
        };
        let material = CaMaterial {
            issuing_certificate_pem: text(ISSUING_CERT, false)?,
            issuing_key_pem: text(ISSUING_KEY, true)?,
            parents_pem,
            root_key_pem: if self.dir.join(ROOT_KEY).exists() {
                Some(text(ROOT_KEY, true)?)
            } else {
                None
            },
        };
        let services = CaServices {
            clock,
            serials,
            ledger,
        };
        Ca::open(&material, settings, services)
    }

    /// The CRLs stored here, if any.
    pub fn published_crls(&self) -> Result<Option<PublishedCrls>, CaError> {
        let read = |name: &str| -> Result<Option<SignedCrl>, CaError> {
            let path = self.dir.join(name);
            if !path.exists() {
                return Ok(None);
            }
            SignedCrl::parse(&fsio::read(&path)?)
                .map(Some)
                .map_err(|reason| CaError::DamagedFile { path, reason })
        };
        let Some(issuing) = read(CRL)? else {
            return Ok(None);
        };
        Ok(Some(PublishedCrls {
            issuing,
            root: read(ROOT_CRL)?,
        }))
    }

    /// Stores CRLs (atomically, one file each).
    /// A CRL is not replaced by one with a lower or equal number: when two processes sign
    /// at once (the server's schedule and `ca revoke`), the newer CRL stays published.
    pub fn store_crls(&self, crls: &PublishedCrls) -> Result<(), CaError> {
        let newer = |name: &str, candidate: &SignedCrl| -> Result<bool, CaError> {
            let path = self.dir.join(name);
            if !path.exists() {
                return Ok(true);
            }
            // A damaged file is replaced rather than kept.
            Ok(SignedCrl::parse(&fsio::read(&path)?)
                .map_or(true, |stored| candidate.number() > stored.number()))
        };
        if newer(CRL, &crls.issuing)? {
            fsio::write_atomic(&self.dir.join(CRL), crls.issuing.pem().as_bytes(), PUBLIC)?;
        }
        if let Some(root) = &crls.root
            && newer(ROOT_CRL, root)?
        {
            fsio::write_atomic(&self.dir.join(ROOT_CRL), root.pem().as_bytes(), PUBLIC)?;
        }
        Ok(())
    }

    fn write_crls(dir: &Path, crls: &PublishedCrls) -> Result<(), CaError> {
        fsio::write_atomic(&dir.join(CRL), crls.issuing.pem().as_bytes(), PUBLIC)?;
        if let Some(root) = &crls.root {
            fsio::write_atomic(&dir.join(ROOT_CRL), root.pem().as_bytes(), PUBLIC)?;
        }
        Ok(())
    }

    /// The current CRLs: the stored ones while fresh, otherwise newly signed and stored.
    pub fn current_crls(&self, ca: &Ca) -> Result<PublishedCrls, CaError> {
        let (crls, resigned) = ca.current_crls(self.published_crls()?)?;
        if resigned {
            self.store_crls(&crls)?;
        }
        Ok(crls)
    }
}

/// Splits concatenated PEM certificates into one PEM text each.
fn split_pem_certificates(text: &str) -> Result<Vec<String>, String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("bad PEM: {e}"))?;
    if blocks.is_empty() || blocks.iter().any(|p| p.tag() != "CERTIFICATE") {
        return Err("expected one or more CERTIFICATE blocks".into());
    }
    Ok(blocks.iter().map(crate::pem_lf).collect())
}
