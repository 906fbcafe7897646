//! EDGE: the APT tree of one snapshot that a system or a build root reads
//! (and acceptance tests, as `HALO_REPO`): the snapshot on a repofs mount
//! when one is configured (nothing to copy), else an export made in the
//! work directory and removed after (a remote agent's export is
//! downloaded from `halo serve`'s tree: `Repository::export`).
//!
//! The mount's `snapshots/<id>` is used rather than `channels/<name>`: a
//! promotion could move the channel, and a step must keep reading what it
//! was started on.

use std::path::{Path, PathBuf};

use crate::repository::{Claim, Repository};
use anyhow::{Context, Result};

/// A provided tree; an export is removed when this is dropped.
pub struct Repo {
    pub path: PathBuf,
    export: Option<PathBuf>,
    /// The export's claim in `STORE/work` (`repofs::store::work`): if this
    /// process dies before removing the export, `halo gc` removes it.
    claim: Option<Claim>,
}

impl Repo {
    /// `export_name` names the export's directory under the work directory.
    pub fn provide(
        store: &dyn Repository,
        snapshot: &str,
        mount: Option<&Path>,
        export_name: &str,
    ) -> Result<Self> {
        if let Some(m) = mount {
            let path = m.join("snapshots").join(snapshot);
            if !path.is_dir() {
                anyhow::bail!(
                    "mount {}: no snapshots/{snapshot} (is repofs mounted there, on this store?)",
                    m.display()
                );
            }
            return Ok(Self {
                path,
                export: None,
                claim: None,
            });
        }
        let base = store.work_dir();
        fs_err::create_dir_all(&base)?;
        let dir = base.join(export_name);
        let claim = store
            .claim_work(export_name, None)
            .with_context(|| format!("claiming {}", dir.display()))?;
        store
            .export(snapshot, &dir)
            .with_context(|| format!("exporting snapshot {snapshot}"))?;
        Ok(Self {
            path: dir.clone(),
            export: Some(dir),
            claim: Some(claim),
        })
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        if let Some(dir) = &self.export {
            if let Err(e) = fs_err::remove_dir_all(dir) {
                tracing::warn!("cannot remove the export (halo gc will): {e}");
                if let Some(c) = &mut self.claim {
                    c.leave_for_gc();
                }
            }
        }
    }
}
