//! The PDiff files of a new snapshot's index (`<index>.diff/Index`, listed
//! in the Release, and `<index>.diff/<snapshot id>.gz`, served beside it):
//! the patch from the previous snapshot's index to this one's, after the
//! patches the previous snapshot already served, newest `keep` kept.
//!
//! Made when the snapshot is made, from the snapshot it follows (the
//! newest one made from the working state), so a channel's promotion stays
//! a pointer move: a channel that moves several snapshots ahead gets the
//! chain of patches between them, and one that moves back (a re-dated
//! copy) or to unrelated content finds its index in no history and apt
//! downloads the full index instead.

use super::pool::Batch;
use super::{Result, Store};
use crate::hash::{self, Digests};
use crate::index::compress;
use crate::index::pdiff::{self, DiffIndex, Step, Sum};
use crate::model::{DistFile, DistSnapshot};

/// What one index's diff directory holds in the new snapshot.
#[derive(Debug, Default)]
pub(super) struct DiffFiles {
    /// `<index>.diff/Index`: listed in the Release.
    pub index: Option<DistFile>,
    /// The patches it names: served, not listed.
    pub patches: Vec<DistFile>,
}

/// Indices apt fetches diffs for: `Packages` and `Sources`, plain.
pub(super) fn has_diffs(path: &str) -> bool {
    path.ends_with("/Packages") || path.ends_with("/Sources")
}

pub(super) fn diff_dir_files<'a>(
    prev: &'a DistSnapshot,
    path: &str,
) -> (Option<&'a DistFile>, Vec<&'a DistFile>) {
    let dir = format!("{path}.diff/");
    let index = prev.files.iter().find(|f| f.path == format!("{dir}Index"));
    let patches = prev
        .pdiffs
        .iter()
        .filter(|f| f.path.starts_with(&dir))
        .collect();
    (index, patches)
}

fn sum(sha256: &str, size: u64) -> Sum {
    Sum {
        sha256: sha256.to_string(),
        size,
    }
}

fn dist_file(path: String, d: &Digests) -> DistFile {
    DistFile {
        path,
        sha256: d.sha256.clone(),
        md5: d.md5.clone(),
        size: d.size,
    }
}

impl Store {
    /// The diff files of index `path` (now `data`, with `digests`) in the
    /// snapshot `name` that follows `prev`, keeping the handle's
    /// `pdiff_history` newest. Nothing when there is nothing to diff
    /// against (a new index, a history of 0, a text no ed script can
    /// express).
    pub(super) fn index_diffs(
        &self,
        batch: &mut Batch<'_>,
        prev: Option<&DistSnapshot>,
        path: &str,
        data: &[u8],
        digests: &Digests,
        name: &str,
    ) -> Result<DiffFiles> {
        let keep = self.pdiff_history;
        let Some(prev) = prev.filter(|_| keep > 0) else {
            return Ok(DiffFiles::default());
        };
        let Some(old) = prev.files.iter().find(|f| f.path == path) else {
            return Ok(DiffFiles::default());
        };
        let (old_index, old_patches) = diff_dir_files(prev, path);
        if old.sha256 == digests.sha256 {
            // The same index: the same diffs, whatever else changed.
            return Ok(DiffFiles {
                index: old_index.cloned(),
                patches: old_patches.into_iter().cloned().collect(),
            });
        }
        let pool = self.pool();
        let old_data = pool.map(&old.sha256)?;
        let Some(script) = pdiff::ed_script(&old_data, data) else {
            return Ok(DiffFiles::default());
        };
        drop(old_data);
        let gz = compress::gzip(&script)?;
        let patch = hash::digest(&script);
        let download = batch.add_bytes(&gz)?;
        let prev_index = match old_index {
            Some(f) => DiffIndex::parse(&String::from_utf8_lossy(&pool.read(&f.sha256)?)),
            None => None,
        };
        let step = Step {
            name: name.to_string(),
            from: sum(&old.sha256, old.size),
            patch: sum(&patch.sha256, patch.size),
            download: sum(&download.sha256, download.size),
        };
        let mut index = DiffIndex::next(
            prev_index.as_ref(),
            step,
            sum(&digests.sha256, digests.size),
            keep,
        );
        // Every patch the Index names must be served: an older one the
        // previous snapshot does not have cuts the history there.
        let patch_path = |n: &str| format!("{path}.diff/{n}.gz");
        let mut patches = Vec::new();
        for step in &index.history {
            let p = patch_path(&step.name);
            if step.name == name {
                patches.push(dist_file(p, &download));
            } else if let Some(f) = old_patches.iter().find(|f| f.path == p) {
                patches.push((*f).clone());
            } else {
                patches.clear();
            }
        }
        let cut = index.history.len() - patches.len();
        index.history.drain(..cut);
        let text = index.render();
        let d = batch.add_bytes(text.as_bytes())?;
        Ok(DiffFiles {
            index: Some(dist_file(format!("{path}.diff/Index"), &d)),
            patches,
        })
    }
}
