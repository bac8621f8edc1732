//! OCS Inventory NG compatible packages: the `info` file, fragments, digests and safe
//! extraction.
//!
//! A package is one stored archive plus an `info` file in `<repo>/download/<ID>/`.
//! Unmodified OCS agents read the `info` file and fetch fragments `ID-1 … ID-N`, which the
//! server serves as byte ranges of the archive ([`FragmentPlan`]); Tessera agents also check
//! the SHA-256 of every fragment and of the whole payload, carried in extra `info`
//! attributes that OCS agents ignore ([`info`]).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use tessera_package::{
//!     Action, Assembler, Label, Notification, PackageInfo, PackageSpec, PayloadSource,
//!     Priority, Protocol, Repository,
//! };
//!
//! # fn main() -> Result<(), tessera_package::Error> {
//! let dir = tempfile::tempdir().expect("temporary directory");
//! let repo = Repository::new(dir.path());
//! let spec = PackageSpec {
//!     label: Label::new("hello", "1.0")?,
//!     priority: Priority::new(5)?,
//!     action: Action::execute("sh hello.sh")?,
//!     protocol: Protocol::Https,
//!     notification: Notification::default(),
//! };
//! let payload = b"The quick brown fox jumps over the lazy dog";
//! let now = UNIX_EPOCH + Duration::from_secs(1_716_800_000);
//! let package = repo.build(spec, PayloadSource::Reader(&mut &payload[..]), 16, now, &mut |_| {})?;
//! assert_eq!(package.id().get(), 1_716_800_000);
//! assert_eq!(package.md5().to_hex(), "9e107d9d372bb6826bd81d3542a419d6");
//!
//! // What the agent does: read `info`, append verified fragments, check the whole.
//! let info = PackageInfo::parse(package.to_info_xml().as_bytes())?;
//! let mut assembler = Assembler::new(&info, Vec::new());
//! for fragment in info.integrity.as_ref().expect("Tessera data").plan().fragments() {
//!     let range = fragment.offset as usize..(fragment.offset + fragment.length) as usize;
//!     assembler.append(fragment.number.get(), &payload[range])?;
//! }
//! assert_eq!(assembler.finish()?, payload);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod assemble;
mod digest;
mod digester;
mod error;
pub mod extract;
mod fragment;
pub mod import;
pub mod info;
mod md5_engine;
mod model;
mod package;
mod repository;

pub use assemble::{Assembler, verify_fragment};
pub use digest::{DigestAlgorithm, DigestEncoding, Md5Digest, OcsDigest, Sha256Digest};
pub use digester::{Digester, PayloadDigests};
pub use error::{Error, Result};
pub use extract::{ArchiveFormat, ExtractLimits, ExtractReport, extract_file};
pub use fragment::{Fragment, FragmentNumber, FragmentPlan, MAX_FRAGMENTS};
pub use info::{Integrity, PackageInfo};
pub use md5_engine::Md5Hasher;
pub use model::{Action, Label, Notification, PackageId, Priority, Protocol};
pub use package::{Package, PackageSpec};
pub use repository::{
    ARCHIVE_FILE, DEFAULT_FRAGMENT_SIZE, Durability, INFO_FILE, PayloadSource, Repository,
    StoredPackage,
};
