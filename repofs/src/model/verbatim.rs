//! Verbatim mirrors: a dist served with the upstream's own signed
//! `InRelease`/`Release`/`Release.gpg` and index files, byte for byte,
//! instead of indices rendered and signed with the store's key.
//!
//! The upstream files travel inside the component states (the optional
//! [`ComponentState::upstream`]), so they become visible with the same one
//! rename of `state.json` as the packages they describe, and every snapshot
//! that freezes the components freezes the matching signed files. A dist is
//! served verbatim only when *every* one of its components carries the same
//! upstream release (a package imported into a mirrored dist by hand breaks
//! that, and the dist is rendered and re-signed as usual).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::snapshot::DistFile;
use super::state::ComponentState;

/// The upstream's files for one component of a verbatim mirror.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamFiles {
    /// `InRelease`, `Release`, `Release.gpg` (those the upstream publishes),
    /// paths relative to `dists/<dist>/`; the same in every component of the dist.
    pub release: Vec<DistFile>,
    /// This component's index files as published (`main/binary-amd64/Packages.xz`, ...),
    /// each listed with its hash in the signed Release.
    pub indices: Vec<DistFile>,
    /// Blob holding the OpenPGP keyring that verified the release, so `fsck`
    /// can check the signature again without the mirror's configuration.
    pub keyring: String,
}

impl UpstreamFiles {
    /// Every blob named here.
    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        self.release
            .iter()
            .chain(self.indices.iter())
            .map(|f| f.sha256.as_str())
            .chain(std::iter::once(self.keyring.as_str()))
    }
}

/// What a verbatim dist serves under `dists/<dist>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerbatimDist {
    /// Release files and every component's indices, sorted by path.
    pub files: Vec<DistFile>,
    pub keyring: String,
}

/// The upstream files to serve for a dist, or `None` when the dist must be
/// rendered: some component has no upstream files or they disagree on the
/// release.
pub fn plan_verbatim_dist(upstreams: &[Option<&UpstreamFiles>]) -> Option<VerbatimDist> {
    let (first, others) = upstreams.split_first()?;
    let first = (*first)?;
    if !others
        .iter()
        .all(|u| u.is_some_and(|u| u.release == first.release && u.keyring == first.keyring))
    {
        return None;
    }
    let mut files: BTreeMap<&str, &DistFile> = BTreeMap::new();
    for f in first
        .release
        .iter()
        .chain(upstreams.iter().flatten().flat_map(|u| u.indices.iter()))
    {
        files.insert(f.path.as_str(), f);
    }
    Some(VerbatimDist {
        files: files.into_values().cloned().collect(),
        keyring: first.keyring.clone(),
    })
}

/// The keyring blob of a verbatim dist (for `fsck`), when it is one.
pub fn verbatim_keyring<'a>(
    states: impl IntoIterator<Item = &'a ComponentState>,
) -> Option<String> {
    let mut keyring = None;
    for s in states {
        let k = &s.upstream.as_ref()?.keyring;
        match &keyring {
            None => keyring = Some(k.clone()),
            Some(prev) if prev != k => return None,
            Some(_) => {}
        }
    }
    keyring
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, sha: &str) -> DistFile {
        DistFile {
            path: path.into(),
            sha256: sha.into(),
            md5: String::new(),
            size: 1,
        }
    }

    fn comp(release: &str, index: &str) -> ComponentState {
        ComponentState {
            upstream: Some(UpstreamFiles {
                release: vec![file("InRelease", release)],
                indices: vec![file(index, index)],
                keyring: "k".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_dist_is_verbatim_only_when_every_component_agrees() {
        let mut states = BTreeMap::new();
        states.insert(
            "main".to_string(),
            comp("r1", "main/binary-amd64/Packages.xz"),
        );
        states.insert(
            "extra".to_string(),
            comp("r1", "extra/binary-amd64/Packages.xz"),
        );
        fn upstreams(states: &BTreeMap<String, ComponentState>) -> Vec<Option<&UpstreamFiles>> {
            states.values().map(|s| s.upstream.as_ref()).collect()
        }
        let v = plan_verbatim_dist(&upstreams(&states)).unwrap();
        let paths: Vec<_> = v.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "InRelease",
                "extra/binary-amd64/Packages.xz",
                "main/binary-amd64/Packages.xz"
            ]
        );
        assert_eq!(verbatim_keyring(states.values()), Some("k".into()));
        states.insert("local".to_string(), ComponentState::default());
        assert_eq!(plan_verbatim_dist(&upstreams(&states)), None);
        assert_eq!(verbatim_keyring(states.values()), None);
        states.insert(
            "local".to_string(),
            comp("r2", "local/binary-amd64/Packages.xz"),
        );
        assert_eq!(plan_verbatim_dist(&upstreams(&states)), None);
    }
}
