//! Commands that work directly on the data directory's database, beside a running server
//! (`token`, `device`): one way to open it, with one message when it is not there yet.

use std::path::Path;

use anyhow::Context as _;
use tessera_server::datadir::DataDir;
use tessera_store::SqliteStore;

/// A single-threaded runtime and the opened store.
pub(crate) fn open(data: &Path) -> anyhow::Result<(tokio::runtime::Runtime, SqliteStore)> {
    let database = DataDir::new(data).database();
    if !database.exists() {
        anyhow::bail!(
            "no database at {}: run `tessera-server --data {} serve` once to initialise the data directory",
            database.display(),
            data.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = runtime
        .block_on(SqliteStore::open(&database))
        .with_context(|| format!("opening {}", database.display()))?;
    Ok((runtime, store))
}
