//! The store's scratch space, `STORE/work/`: the roots and exports that
//! acceptance runs (and builds) make while they run. A run claims each
//! directory by writing `work/<name>.owner` (its process stamp, its run)
//! before making it, and removes the claim after removing the directory. A
//! run killed outright leaves both behind: a claim whose process is gone
//! names a leftover, which `fsck` reports (not a fault: nothing the store
//! serves depends on it) and `gc` removes. A claim of a live process, or of
//! a process on another host, is never touched; a directory without a claim
//! (a root kept with `--keep`) is the operator's.

use std::path::{Path, PathBuf};

use fs_err as fs;
use serde::{Deserialize, Serialize};

use super::{fsutil, load_json, save_json, Result, Store};
use crate::debian::name;
use crate::model::process::{Liveness, ProcessStamp};

/// `work/<name>.owner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkOwner {
    #[serde(flatten)]
    pub process: ProcessStamp,
    /// The run (or build) that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// RFC 3339, UTC.
    pub since: String,
}

/// A claimed directory under `work/`; the claim goes when this is dropped
/// (after the owner removed the directory, or decided to keep it).
#[derive(Debug)]
pub struct WorkClaim {
    dir: PathBuf,
    owner: PathBuf,
    /// Leave the claim: the directory could not be removed, so once this
    /// process is gone `gc` removes it.
    leave: bool,
}

impl WorkClaim {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps the claim file when dropped: the directory is left for `gc`.
    pub fn leave_for_gc(&mut self) {
        self.leave = true;
    }
}

impl Drop for WorkClaim {
    fn drop(&mut self) {
        if !self.leave {
            if let Err(e) = fsutil::remove_file(&self.owner) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("cannot remove the claim {}: {e}", self.owner.display());
                }
            }
        }
    }
}

/// A directory of `work/` whose claimant is gone, or the claim of one.
#[derive(Debug, Clone, Serialize)]
pub struct Leftover {
    pub path: PathBuf,
    pub owner: WorkOwner,
    pub liveness: Liveness,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: left by {}pid {} on {} (gone) since {}",
            self.path.display(),
            self.owner
                .run
                .as_deref()
                .map_or(String::new(), |r| format!("run {r}, ")),
            self.owner.process.pid,
            self.owner.process.host,
            self.owner.since
        )
    }
}

impl Store {
    pub fn work_dir(&self) -> PathBuf {
        self.root().join("work")
    }

    fn owner_path(&self, name: &str) -> PathBuf {
        self.work_dir().join(format!("{name}.owner"))
    }

    /// Claims `work/<name>` for the calling process (the directory itself
    /// is the caller's to make). `run` names the run for operators.
    pub fn claim_work(&self, name: &str, run: Option<&str>) -> Result<WorkClaim> {
        name::check_segment("work directory", name)?;
        fsutil::create_dir_synced(&self.work_dir())?;
        let owner = WorkOwner {
            process: super::process::current(),
            run: run.map(str::to_string),
            since: jiff::Timestamp::now().to_string(),
        };
        let path = self.owner_path(name);
        save_json(self, &path, &owner)?;
        Ok(WorkClaim {
            dir: self.work_dir().join(name),
            owner: path,
            leave: false,
        })
    }

    /// Every claimed directory whose claimant is gone (this host can tell:
    /// same host, same boot, no such process), oldest claim first.
    pub fn work_leftovers(&self) -> Result<Vec<Leftover>> {
        let dir = self.work_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for e in entries {
            let file = e?.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".owner") else {
                continue;
            };
            if name::check_segment("work directory", name).is_err() {
                continue;
            }
            // A claim torn by a crash names nothing a process still uses.
            let owner: WorkOwner = match load_json(&dir.join(&file)) {
                Ok(o) => o,
                Err(_) => continue,
            };
            let liveness = super::process::liveness(&owner.process);
            if liveness == Liveness::Gone {
                out.push(Leftover {
                    path: dir.join(name),
                    owner,
                    liveness,
                });
            }
        }
        out.sort_by(|a, b| a.owner.since.cmp(&b.owner.since));
        Ok(out)
    }

    /// Removes one leftover: the directory (unless something is mounted
    /// below it: removing through a mount would delete what it shows), then
    /// its claim. Only `gc` calls this, under the writer lock.
    pub(crate) fn remove_leftover(&self, _lock: &super::WriteLock, l: &Leftover) -> Result<u64> {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let real = fs::canonicalize(&l.path).unwrap_or_else(|_| l.path.clone());
        if let Some(m) = mounted_under(&mounts, &real) {
            return Err(super::Error::Usage(format!(
                "{m} is mounted under {}: not removing it (umount it first)",
                l.path.display()
            )));
        }
        let bytes = disk_usage(&l.path);
        match fs::remove_dir_all(&l.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let owner = self.owner_path(
            &l.path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        );
        fsutil::remove_file(&owner)?;
        fsutil::sync_dir(&self.work_dir())?;
        Ok(bytes)
    }
}

/// The first mount point at or below `dir` in `/proc/self/mounts` text.
fn mounted_under(mounts: &str, dir: &Path) -> Option<String> {
    let dir = dir.to_string_lossy();
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        // The kernel escapes spaces in mount points as \040.
        .map(|m| m.replace("\\040", " "))
        .find(|m| m == dir.as_ref() || m.starts_with(&prefix))
}

/// Bytes under `path` (not following symlinks), for the report.
fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .map(|e| disk_usage(&e.path()))
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_below_a_leftover_is_found() {
        let mounts = "proc /proc proc rw 0 0\n/dev/x /s/work/sys-1/root/proc proc rw 0 0\n";
        assert_eq!(
            mounted_under(mounts, Path::new("/s/work/sys-1")).as_deref(),
            Some("/s/work/sys-1/root/proc")
        );
        assert_eq!(mounted_under(mounts, Path::new("/s/work/sys-10")), None);
        assert_eq!(mounted_under(mounts, Path::new("/s/work/sys-2")), None);
    }
}
