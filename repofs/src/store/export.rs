//! `halo export`: a snapshot as a plain APT tree on disk
//! (`DIR/<archive>/{dists,pool}`), for hosts without FUSE. Files are hard
//! links to pool blobs where the file system allows it, copies otherwise;
//! the tree is the same one the FUSE view serves (`model::tree`).

use std::collections::HashMap;
use std::io;
use std::path::Path;

use fs_err as fs;

use super::{fsutil, Error, Result, Store};
use crate::model::tree::{plan_tree, Tree};
use crate::model::{ComponentState, Snapshot};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ExportReport {
    pub files: u64,
    pub bytes: u64,
    pub linked: u64,
    pub copied: u64,
}

impl Store {
    /// The tree of every archive of a snapshot.
    pub fn snapshot_trees(&self, snapshot: &Snapshot) -> Result<Vec<(String, Tree)>> {
        let mut cache: HashMap<String, ComponentState> = HashMap::new();
        for a in snapshot.archives.values() {
            for d in a.dists.values() {
                for h in d.components.values() {
                    if !cache.contains_key(h) {
                        cache.insert(h.clone(), self.load_component(h)?);
                    }
                }
            }
        }
        Ok(snapshot
            .archives
            .iter()
            .map(|(name, a)| (name.clone(), plan_tree(a, |h| cache.get(h))))
            .collect())
    }

    /// Writes the tree of snapshot `id` under `dir`, which must not exist
    /// or be empty.
    ///
    /// The tree is built in a hidden directory inside `dir` and each
    /// archive is renamed into place when all of it is written: a failure
    /// half-way (a full disk, a name the file system refuses) leaves no
    /// partial archive whose InRelease lists files that are not there.
    /// Inside rather than beside `dir`, so the renames stay on one file
    /// system when `dir` is a mount point, and `dir` keeps its owner and
    /// mode.
    pub fn export(&self, id: &str, dir: &Path) -> Result<ExportReport> {
        let snapshot = self.load_snapshot(id)?;
        match fs::symlink_metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(Error::Usage(format!(
                    "{} is not a directory: export into a new or empty directory",
                    dir.display()
                )))
            }
            Ok(_) if fs::read_dir(dir)?.next().is_some() => {
                return Err(Error::Usage(format!(
                    "{} is not empty: export into a new or empty directory",
                    dir.display()
                )))
            }
            _ => {}
        }
        fs::create_dir_all(dir)?;
        let temp = dir.join(format!(".halo-export-{}", std::process::id()));
        let built = self.export_into(&snapshot, &temp).and_then(|report| {
            for entry in fs::read_dir(&temp)? {
                let entry = entry?;
                fs::rename(entry.path(), dir.join(entry.file_name()))?;
            }
            fs::remove_dir(&temp)?;
            fsutil::sync_dir(dir)?;
            Ok(report)
        });
        if built.is_err() {
            let _ = fs::remove_dir_all(&temp);
        }
        built
    }

    fn export_into(&self, snapshot: &Snapshot, dir: &Path) -> Result<ExportReport> {
        let pool = self.pool();
        let mut report = ExportReport::default();
        fs::create_dir(dir)?;
        for (archive, tree) in self.snapshot_trees(snapshot)? {
            let root = dir.join(&archive);
            for (path, file) in &tree {
                let dest = root.join(path);
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent)?;
                }
                let src = pool.path(&file.sha256);
                match fs::hard_link(&src, &dest) {
                    Ok(()) => report.linked += 1,
                    Err(e)
                        if e.kind() == io::ErrorKind::CrossesDevices
                            || e.raw_os_error() == Some(libc::EXDEV)
                            || e.kind() == io::ErrorKind::PermissionDenied =>
                    {
                        fs::copy(&src, &dest)?;
                        report.copied += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
                report.files += 1;
                report.bytes += file.size;
            }
        }
        Ok(report)
    }
}
