//! EDGE: the APT tree tests read (`HALO_REPO`): the frozen snapshot on a
//! repofs mount when one is configured (nothing to copy), else an export
//! made for the run in the store's work directory and removed after.
//!
//! The mount's `snapshots/<id>` is used rather than `channels/<testing>`:
//! the lease keeps testing on the snapshot, but a forced promotion could
//! still move it, and a test must keep reading what it was started on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use repofs::Store;

/// A provided tree; an export is removed when this is dropped.
pub struct Repo {
    pub path: PathBuf,
    export: Option<PathBuf>,
}

impl Repo {
    pub fn provide(
        store: &Store,
        snapshot: &str,
        mount: Option<&Path>,
        run_tag: &str,
    ) -> Result<Self> {
        if let Some(m) = mount {
            let path = m.join("snapshots").join(snapshot);
            if !path.is_dir() {
                anyhow::bail!(
                    "acceptance mount {}: no snapshots/{snapshot} (is repofs mounted there, on this store?)",
                    m.display()
                );
            }
            return Ok(Self { path, export: None });
        }
        let base = store.root().join("work");
        fs_err::create_dir_all(&base)?;
        let dir = base.join(format!("accept-{run_tag}"));
        store
            .export(snapshot, &dir)
            .with_context(|| format!("exporting snapshot {snapshot} for the tests"))?;
        Ok(Self {
            path: dir.clone(),
            export: Some(dir),
        })
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        if let Some(dir) = &self.export {
            if let Err(e) = fs_err::remove_dir_all(dir) {
                tracing::warn!("cannot remove the run's export: {e}");
            }
        }
    }
}
