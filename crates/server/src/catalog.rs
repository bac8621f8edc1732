//! Keeping the store's package records in step with the package repository on disk.
//!
//! Packages are built into `<data>/repo/download/<ID>/` by `tessera-server package build`
//! (or copied there from an OCS server); the store holds their metadata so that
//! deployments can refer to them. [`sync_packages`] records every package found on disk
//! that the store does not know yet, and is run at start-up and before an assignment.

use tessera_package::{PackageId, Repository, StoredPackage};
use tessera_store::{PackageRecord, Store};
use time::OffsetDateTime;

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Packages newly recorded.
    pub added: Vec<i64>,
    /// Package directories that could not be read, with the reason (left alone).
    pub unreadable: Vec<(String, String)>,
}

/// The store record for a stored package.
pub fn record_for(stored: &StoredPackage, now: OffsetDateTime) -> Option<PackageRecord> {
    let info = &stored.info;
    let id = i64::try_from(info.id.get()).ok()?;
    let (name, version) = match &info.label {
        Some(label) => (label.name.clone(), label.version.clone()),
        // An `info` from the OCS console carries no name: the ID is the best we have.
        None => (info.id.to_string(), String::new()),
    };
    Some(PackageRecord {
        id,
        name,
        version,
        priority: info.priority.get(),
        action: info.action.keyword().to_owned(),
        fragments: info.fragment_count,
        size: stored.archive_size,
        created_at: now,
    })
}

/// Records every package on disk that the store does not have yet.
pub async fn sync_packages<S: Store>(
    store: &S,
    packages: &Repository,
    now: OffsetDateTime,
) -> tessera_store::Result<SyncReport> {
    let repository = packages.clone();
    let found: Vec<(PackageId, Result<StoredPackage, String>)> =
        tokio::task::spawn_blocking(move || {
            repository
                .list()
                .unwrap_or_default()
                .into_iter()
                .map(|id| (id, repository.load(id).map_err(|e| e.to_string())))
                .collect()
        })
        .await
        .unwrap_or_default();
    let mut report = SyncReport::default();
    for (id, stored) in found {
        match stored {
            Ok(stored) => {
                let Some(record) = record_for(&stored, now) else {
                    continue;
                };
                if store.package(record.id).await?.is_none() {
                    store.put_package(&record).await?;
                    report.added.push(record.id);
                }
            }
            Err(reason) => report.unreadable.push((id.to_string(), reason)),
        }
    }
    Ok(report)
}
