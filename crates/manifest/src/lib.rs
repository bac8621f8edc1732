//! Munki manifests, pkginfo and catalogs, NSPredicate conditions, and resolution exactly as
//! the Munki client does it — minus its crashes: include cycles and missing includes are
//! errors that name the chain of manifests.
//!
//! - [`Manifest`], [`PkgInfo`], [`Catalog`]: read XML or binary plists, write XML; unknown
//!   keys survive a round trip.
//! - [`Repo`]: a Munki repository directory; names never escape it.
//! - [`make_catalogs`]: Munki's makecatalogs, warnings returned as data.
//! - [`Predicate`] and [`Facts`]: the NSPredicate subset Munki conditions use.
//! - [`resolve()`]: included manifests first, then conditional items, then own items; first
//!   occurrence wins; installs beat removals; catalogs inherited when empty. Resolution reads
//!   through a [`RepoSource`], so parsed manifests can be cached.
//!
//! ```
//! use tessera_manifest::{Catalog, CatalogIndex, Facts, Manifest, MemorySource, resolve};
//!
//! let site = br#"<plist version="1.0"><dict>
//!   <key>catalogs</key><array><string>production</string></array>
//!   <key>conditional_items</key><array><dict>
//!     <key>condition</key><string>machine_type == "laptop" AND os_vers_major >= 14</string>
//!     <key>managed_installs</key><array><string>VPN</string></array>
//!   </dict></array>
//! </dict></plist>"#;
//! let catalog = br#"<plist version="1.0"><array>
//!   <dict><key>name</key><string>VPN</string><key>version</key><string>2.1</string></dict>
//! </array></plist>"#;
//!
//! let mut source = MemorySource::new();
//! source.insert_manifest("site_default", Manifest::from_plist_bytes(site, "site_default")?);
//! source.insert_catalog(
//!     "production",
//!     CatalogIndex::new(Catalog::from_plist_bytes(catalog, "production")?),
//! );
//!
//! let mut facts = Facts::new();
//! facts.set("machine_type", "laptop").set_os_vers("14.5");
//! let resolved = resolve(&source, "site_default", &facts)?;
//! assert_eq!(resolved.managed_installs[0].name, "VPN");
//! assert_eq!(resolved.managed_installs[0].version, "2.1");
//! assert_eq!(resolved.source(resolved.managed_installs[0].source).unwrap().conditions.len(), 1);
//! # Ok::<(), tessera_manifest::Error>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod catalog_index;
pub mod error;
pub mod facts;
mod fast_hash;
pub mod makecatalogs;
pub mod model;
mod plist_io;
pub mod predicate;
pub mod primary;
pub mod repo;
pub mod resolve;
pub mod version;

pub use catalog_index::{CatalogIndex, find_item, item_applies};
pub use error::{Error, Result};
pub use facts::{FactValue, Facts, Timestamp};
pub use makecatalogs::{CatalogWarning, MakeCatalogsOptions, MakeCatalogsReport, make_catalogs};
pub use model::{Catalog, Condition, ConditionalItem, Manifest, PkgInfo, Section};
pub use plist_io::MAX_PLIST_DEPTH;
pub use predicate::{Predicate, PredicateError};
pub use primary::{
    ClientIdentity, ManifestCandidates, choose_primary_manifest, manifest_candidates,
};
pub use repo::{Repo, RepoKind, ResourceName};
pub use resolve::{
    Decision, Listed, MAX_INCLUDE_DEPTH, MemorySource, Provenance, Reason, RepoSource, Resolved,
    SourceId, Warning, resolve,
};
