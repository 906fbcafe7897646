//! `mirrors/<name>.json`: what the store remembers about each upstream
//! mirror between updates. It is a cache and a guard, never the truth: the
//! mirror's packages are in the working state like any archive's.
//!
//! - `dists`: per dist, what the last committed update fetched (the
//!   `InRelease` hash, `ETag`, `Last-Modified`, `Valid-Until`), so the next
//!   update can ask conditionally and recognise an unchanged upstream.
//! - `committed`: the dist -> component map that update committed. The
//!   record is written after `state.json`; a crash in between leaves a
//!   record that disagrees with the state, and the next update then does a
//!   full (idempotent) update instead of trusting it.
//! - `pending`: blobs an update in progress has downloaded into the pool
//!   before its commit. `gc` keeps them, so an interrupted update resumes
//!   without fetching finished files again; the next successful update
//!   clears the list (what it did not reference becomes garbage).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;

use fs_err as fs;
use serde::{Deserialize, Serialize};

use super::{fsutil, load_json, save_json, Result, Store};
use crate::debian::name;

/// What was fetched for one dist at the last committed update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedRelease {
    /// The URL of the signed release file (`.../InRelease` or `.../Release`).
    pub url: String,
    /// SHA-256 of its content.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The release's `Valid-Until` (RFC 3339), checked again when the
    /// upstream says "not modified".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRecord {
    /// Hash of the mirror's configuration when `dists` was fetched: a
    /// changed configuration means a full update.
    #[serde(default)]
    pub config: String,
    #[serde(default)]
    pub dists: BTreeMap<String, FetchedRelease>,
    /// dist -> component -> component state blob, as committed.
    #[serde(default)]
    pub committed: BTreeMap<String, BTreeMap<String, String>>,
    /// Blobs downloaded by an update that has not committed yet.
    #[serde(default)]
    pub pending: BTreeSet<String>,
}

/// The hold of one mirror's update (`mirrors/<name>.lock`): the record may
/// only be written by whoever holds it, which the type makes sure of.
#[derive(Debug)]
pub struct MirrorLock {
    name: String,
    _lock: super::WriteLock,
}

impl MirrorLock {
    /// The mirror it holds.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Store {
    pub(super) fn mirrors_dir(&self) -> std::path::PathBuf {
        self.root().join("mirrors")
    }

    /// The lock of one mirror's update: two updates of one mirror never run
    /// at once, while other writers go on (the update takes the store's
    /// writer lock only for its short commit).
    pub fn lock_mirror(&self, name: &str) -> Result<MirrorLock> {
        crate::debian::name::check_segment("mirror", name)?;
        super::fsutil::create_dir_synced(&self.mirrors_dir())?;
        let lock = super::WriteLock::acquire_within(
            &self.mirrors_dir().join(format!("{name}.lock")),
            self.wait_timeout(),
        )
        .map_err(|e| match e {
            super::lock::LockError::Io(e) => super::Error::Io(e),
            super::lock::LockError::Busy(d) => super::Error::Busy(d),
        })?;
        Ok(MirrorLock {
            name: name.to_string(),
            _lock: lock,
        })
    }

    /// The record of mirror `name` (empty when it was never updated).
    pub fn load_mirror_record(&self, name: &str) -> Result<Option<MirrorRecord>> {
        name::check_segment("mirror", name)?;
        let path = self.mirrors_dir().join(format!("{name}.json"));
        if !path.exists() {
            return Ok(None);
        }
        load_json(&path).map(Some)
    }

    /// Names the blobs an update is about to download in the record's
    /// `pending` list, before it downloads them, so that `gc` keeps them
    /// until the commit refers to them. Only the mirror's lock is needed:
    /// the store's writer lock is for the commit ([`Store::commit_mirror`]).
    pub fn save_mirror_pending(&self, mirror: &MirrorLock, record: &MirrorRecord) -> Result<()> {
        self.write_mirror_record(mirror, record)?;
        super::failpoint::hit("mirror:after-pending");
        Ok(())
    }

    pub(super) fn write_mirror_record(
        &self,
        mirror: &MirrorLock,
        record: &MirrorRecord,
    ) -> Result<()> {
        fsutil::create_dir_synced(&self.mirrors_dir())?;
        save_json(
            self,
            &self.mirrors_dir().join(format!("{}.json", mirror.name)),
            record,
        )
    }

    /// Every pending blob of every mirror record (kept by `gc`).
    pub fn mirror_pending_blobs(&self) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        let dir = self.mirrors_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for e in entries {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "json") {
                let record: MirrorRecord = load_json(&path)?;
                out.extend(record.pending);
            }
        }
        Ok(out)
    }
}
