//! The commit of a mirror update. It is the store's, not the mirror
//! command's, so that its order and its locks are kept by the types: it
//! needs the mirror's lock to be called and takes the writer lock itself.
//!
//! Under the writer lock, in this order, each step durable before the
//! next (a crash between two leaves the mirror wholly old or wholly new):
//!
//! 1. the archive must still be what the update loaded (another writer,
//!    such as `halo remove`, may have changed it during the download);
//! 2. the component state blobs (and any upstream files they name) are
//!    made durable: `gc`, which takes the writer lock, cannot take them
//!    before `state.json` names them;
//! 3. `state.json` is renamed: the commit point;
//! 4. the mirror record: what was fetched, what was committed, no pending
//!    blobs. A crash before it leaves a record that disagrees with the
//!    state, which the next update ignores (a full, idempotent update).

use std::collections::{BTreeMap, BTreeSet};

use super::failpoint;
use super::mirrors::{FetchedRelease, MirrorLock, MirrorRecord};
use super::pool::Batch;
use super::{Error, Store};

/// An archive's dist -> component -> component state blob.
pub type Dists = BTreeMap<String, BTreeMap<String, String>>;

/// What a mirror update decided, besides its new component states.
#[derive(Debug, Clone)]
pub struct MirrorCommit<'a> {
    /// The archive as the update loaded it.
    pub before: &'a Dists,
    /// The fingerprint of the mirror's configuration and keyring.
    pub config: String,
    /// What was fetched per dist (kept for the dists the archive keeps).
    pub releases: BTreeMap<String, FetchedRelease>,
}

impl Store {
    /// Commits a mirror update. `components` adds the new component state
    /// blobs to the batch and returns the archive's new dists; it runs
    /// under the writer lock, after the archive was found unchanged.
    /// Returns whether the working state changed.
    pub fn commit_mirror<E: From<Error>>(
        &self,
        mirror: &MirrorLock,
        commit: MirrorCommit<'_>,
        components: impl FnOnce(&mut Batch<'_>) -> Result<Dists, E>,
    ) -> Result<bool, E> {
        let name = mirror.name();
        let lock = self.lock()?;
        let mut state = self.load_state()?;
        if state.get(name).unwrap_or(&Dists::new()) != commit.before {
            return Err(Error::ArchiveChanged {
                mirror: name.to_string(),
            }
            .into());
        }
        let pool = self.pool();
        let mut batch = pool.batch();
        let dists = components(&mut batch)?;
        if !batch.is_empty() {
            failpoint::hit("mirror:before-blobs");
            batch.commit().map_err(Error::from)?;
        }
        let changed = dists != *commit.before;
        if changed {
            failpoint::hit("mirror:before-state");
            state.insert(name.to_string(), dists.clone());
            self.save_state(&lock, &state)?;
            tracing::info!(mirror = name, "mirror state committed");
        }
        let mut releases = commit.releases;
        releases.retain(|d, _| dists.contains_key(d));
        let record = MirrorRecord {
            config: commit.config,
            dists: releases,
            committed: dists,
            pending: BTreeSet::new(),
        };
        if self.load_mirror_record(name)?.as_ref() != Some(&record) {
            failpoint::hit("mirror:before-record");
            self.write_mirror_record(mirror, &record)?;
        }
        Ok(changed)
    }
}
