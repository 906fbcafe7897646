//! The working state: `state.json` maps archive -> dist -> component to the
//! hash of a `ComponentState` blob. Imports and mirror updates replace it
//! (one rename: all of an import or none); snapshots freeze it.

use std::collections::BTreeMap;
use std::io;

use super::{load_json, save_json, Error, Result, Store};
use crate::model::{ComponentState, StateMap};

impl Store {
    pub fn load_state(&self) -> Result<StateMap> {
        let path = self.root().join("state.json");
        if !path.exists() {
            return Ok(StateMap::new());
        }
        load_json(&path)
    }

    /// Replaces the working state. Caller holds the lock and has committed
    /// every blob the new state names.
    pub fn save_state(&self, state: &StateMap) -> Result<()> {
        save_json(self, &self.root().join("state.json"), state)
    }

    /// Loads and parses a component state blob.
    pub fn load_component(&self, sha256: &str) -> Result<ComponentState> {
        let path = self.pool().path(sha256);
        let data = self.pool().read(sha256)?;
        serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            path,
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

/// Serialises a component state for the pool (compact: it can hold tens of
/// thousands of stanzas).
pub fn encode_component(state: &ComponentState) -> io::Result<Vec<u8>> {
    serde_json::to_vec(state).map_err(io::Error::other)
}
