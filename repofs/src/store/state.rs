//! The working state: `state.json` maps archive -> dist -> component to the
//! hash of a `ComponentState` blob. Imports and mirror updates replace it
//! (one rename: all of an import or none); snapshots freeze it.

use std::collections::BTreeMap;
use std::io;

use super::{load_json, save_json, Error, Result, Store, WriteLock};
use crate::model::{ComponentState, StateMap};

impl Store {
    pub fn load_state(&self) -> Result<StateMap> {
        let path = self.root().join("state.json");
        if !path.exists() {
            return Ok(StateMap::new());
        }
        load_json(&path)
    }

    /// Replaces the working state: the commit point of every write that
    /// changes it. The lock is taken by the caller because the state must
    /// be loaded, decided and its blobs committed under the same hold;
    /// those blobs must be durable before this.
    pub(crate) fn save_state(&self, _lock: &WriteLock, state: &StateMap) -> Result<()> {
        save_json(self, &self.root().join("state.json"), state)
    }

    /// Loads and parses a component state blob.
    pub fn load_component(&self, sha256: &str) -> Result<ComponentState> {
        let path = self.pool().path(sha256);
        let data = self.pool().map(sha256)?;
        crate::model::state_json::parse(&data).map_err(|e| Error::Corrupt {
            path,
            reason: format!("component state: {e}"),
        })
    }

    /// Views a component state blob mapped from the pool (for rendering).
    pub fn view_component<'a>(
        &self,
        sha256: &str,
        data: &'a [u8],
    ) -> Result<crate::model::state_view::StateView<'a>> {
        crate::model::state_view::StateView::parse(data).map_err(|e| Error::Corrupt {
            path: self.pool().path(sha256),
            reason: format!("component state: {e}"),
        })
    }

    /// Every component of an archive in the working state, parsed.
    pub fn load_archive_components(
        &self,
        state: &StateMap,
        archive: &str,
    ) -> Result<BTreeMap<(String, String), ComponentState>> {
        let mut out = BTreeMap::new();
        if let Some(dists) = state.get(archive) {
            for (dist, comps) in dists {
                for (comp, hash) in comps {
                    out.insert((dist.clone(), comp.clone()), self.load_component(hash)?);
                }
            }
        }
        Ok(out)
    }
}

/// Streams a component state into a pool batch (compact JSON: it can hold
/// tens of thousands of stanzas); returns its blob hash.
pub fn add_component(
    batch: &mut super::pool::Batch<'_>,
    state: &ComponentState,
) -> io::Result<String> {
    batch.add_with(|w| serde_json::to_writer(w, state).map_err(io::Error::other))
}
