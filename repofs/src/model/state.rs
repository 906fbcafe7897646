//! The content of one component of one dist of one archive: the binary and
//! source packages it holds, each with its pre-rendered index stanza and the
//! pool blobs behind it.
//!
//! A `ComponentState` is serialised into the pool as a blob; the working
//! state (`state.json`) and every snapshot refer to components by that
//! blob's hash, so an unchanged component costs nothing to snapshot again
//! and two snapshots share it.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::debian::Version;

/// A file of the archive's pool: where it appears and which blob holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolFile {
    /// Path relative to the archive root (`pool/main/h/hello/hello_1.0_amd64.deb`).
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryEntry {
    pub package: String,
    pub version: String,
    pub arch: String,
    /// The complete `Packages` stanza, newline-terminated.
    pub stanza: String,
    pub file: PoolFile,
    /// The file name this entry was imported from (named in conflict errors).
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEntry {
    pub package: String,
    pub version: String,
    /// The complete `Sources` stanza, newline-terminated.
    pub stanza: String,
    /// The `.dsc` first, then the files it lists.
    pub files: Vec<PoolFile>,
    pub origin: String,
}

/// Packages are kept sorted (name, dpkg version, arch) so that rendering is
/// deterministic and a component's blob hash depends on content only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentState {
    #[serde(default)]
    pub binaries: Vec<BinaryEntry>,
    #[serde(default)]
    pub sources: Vec<SourceEntry>,
    /// Set by `verbatim` mirrors only: the upstream's own signed release and
    /// index files to serve instead of rendering (see `model::verbatim`).
    /// Absent from the JSON when unset, so other components hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<super::verbatim::UpstreamFiles>,
    /// Set by mirrors that keep the upstream's identity (the default): the
    /// upstream Release's Origin, Label, Suite and Codename, rendered into
    /// our Release for the dist instead of the store's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ReleaseIdentity>,
    /// Files served as fetched under `dists/<dist>/` beside the rendered
    /// indices (a mirror's `<comp>/i18n/Translation-<lang>.*`), each listed
    /// in the Release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_files: Vec<super::snapshot::DistFile>,
}

/// What a Release says it is: the fields apt's pins and
/// unattended-upgrades' `Allowed-Origins` match.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
}

/// Position of each entry by identity; see [`ComponentState::index`].
#[derive(Debug, Default)]
pub struct EntryIndex {
    binaries: std::collections::HashMap<(String, String, String), usize>,
    sources: std::collections::HashMap<(String, String), usize>,
}

fn binary_key(b: &BinaryEntry) -> (String, String, String) {
    (b.package.clone(), b.version.clone(), b.arch.clone())
}

/// dpkg's order, then the text: versions dpkg holds equal (`1.0`, `1.00`)
/// still have one order, whatever the order they arrived in.
pub fn cmp_versions(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    match Version::cmp_texts(a, b) {
        Some(o) => o.then_with(|| a.cmp(b)),
        None => a.cmp(b),
    }
}

impl EntryIndex {
    /// Room for `n` more binaries: the table is not rebuilt (and held
    /// twice) while a large import fills it.
    pub fn reserve_binaries(&mut self, n: usize) {
        self.binaries.reserve(n);
    }
}

/// What happened when an entry was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    New,
    /// The same name, version, arch and content was there already.
    Unchanged,
}

/// Refusal to replace a package with different content under the same
/// name, version and architecture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} is already in the archive from {existing_origin} (sha256 {existing_sha256}); {new_origin} has different content (sha256 {new_sha256}): bump the version instead")]
pub struct Conflict {
    pub key: String,
    pub existing_origin: String,
    pub existing_sha256: String,
    pub new_origin: String,
    pub new_sha256: String,
}

impl ComponentState {
    pub fn add_binary(&mut self, entry: BinaryEntry) -> Result<Added, Conflict> {
        let pos = self.binaries.binary_search_by(|e| {
            e.package
                .cmp(&entry.package)
                .then_with(|| cmp_versions(&e.version, &entry.version))
                .then_with(|| e.arch.cmp(&entry.arch))
        });
        match pos {
            Ok(i) if self.binaries[i].version == entry.version => {
                let old = &self.binaries[i];
                if old.file.sha256 == entry.file.sha256 {
                    return Ok(Added::Unchanged);
                }
                Err(Conflict {
                    key: format!("{}_{}_{}", entry.package, entry.version, entry.arch),
                    existing_origin: old.origin.clone(),
                    existing_sha256: old.file.sha256.clone(),
                    new_origin: entry.origin,
                    new_sha256: entry.file.sha256,
                })
            }
            Ok(i) | Err(i) => {
                self.binaries.insert(i, entry);
                Ok(Added::New)
            }
        }
    }

    pub fn add_source(&mut self, entry: SourceEntry) -> Result<Added, Conflict> {
        let pos = self.sources.binary_search_by(|e| {
            e.package
                .cmp(&entry.package)
                .then_with(|| cmp_versions(&e.version, &entry.version))
        });
        match pos {
            Ok(i) if self.sources[i].version == entry.version => {
                let old = &self.sources[i];
                if old.files == entry.files {
                    return Ok(Added::Unchanged);
                }
                Err(Conflict {
                    key: format!("source {}_{}", entry.package, entry.version),
                    existing_origin: old.origin.clone(),
                    existing_sha256: old
                        .files
                        .first()
                        .map(|f| f.sha256.clone())
                        .unwrap_or_default(),
                    new_origin: entry.origin,
                    new_sha256: entry
                        .files
                        .first()
                        .map(|f| f.sha256.clone())
                        .unwrap_or_default(),
                })
            }
            Ok(i) | Err(i) => {
                self.sources.insert(i, entry);
                Ok(Added::New)
            }
        }
    }

    /// Binary and source entries by identity, for adding many entries
    /// without keeping the lists sorted on every insert.
    pub fn index(&self) -> EntryIndex {
        let mut index = EntryIndex::default();
        for (i, b) in self.binaries.iter().enumerate() {
            index.binaries.insert(binary_key(b), i);
        }
        for (i, s) in self.sources.iter().enumerate() {
            index
                .sources
                .insert((s.package.clone(), s.version.clone()), i);
        }
        index
    }

    /// Room for `n` more binaries, so a large import does not hold the
    /// entries twice while the vector grows.
    pub fn reserve_binaries(&mut self, n: usize) {
        self.binaries.reserve_exact(n);
    }

    /// Adds a binary in O(1) through `index`; call [`Self::sort`] after the
    /// last one.
    pub fn push_binary(
        &mut self,
        index: &mut EntryIndex,
        entry: BinaryEntry,
    ) -> Result<Added, Conflict> {
        let key = binary_key(&entry);
        if let Some(&i) = index.binaries.get(&key) {
            let old = &self.binaries[i];
            if old.file.sha256 == entry.file.sha256 {
                return Ok(Added::Unchanged);
            }
            return Err(Conflict {
                key: format!("{}_{}_{}", entry.package, entry.version, entry.arch),
                existing_origin: old.origin.clone(),
                existing_sha256: old.file.sha256.clone(),
                new_origin: entry.origin,
                new_sha256: entry.file.sha256,
            });
        }
        index.binaries.insert(key, self.binaries.len());
        self.binaries.push(entry);
        Ok(Added::New)
    }

    /// Adds a source package through `index`; call [`Self::sort`] after.
    pub fn push_source(
        &mut self,
        index: &mut EntryIndex,
        entry: SourceEntry,
    ) -> Result<Added, Conflict> {
        let key = (entry.package.clone(), entry.version.clone());
        if let Some(&i) = index.sources.get(&key) {
            let old = &self.sources[i];
            if old.files == entry.files {
                return Ok(Added::Unchanged);
            }
            return Err(Conflict {
                key: format!("source {}_{}", entry.package, entry.version),
                existing_origin: old.origin.clone(),
                existing_sha256: old
                    .files
                    .first()
                    .map(|f| f.sha256.clone())
                    .unwrap_or_default(),
                new_origin: entry.origin,
                new_sha256: entry
                    .files
                    .first()
                    .map(|f| f.sha256.clone())
                    .unwrap_or_default(),
            });
        }
        index.sources.insert(key, self.sources.len());
        self.sources.push(entry);
        Ok(Added::New)
    }

    /// Restores the canonical order (name, dpkg version, arch).
    pub fn sort(&mut self) {
        // In place, without a cached key per entry: on a 50,000-package
        // import the keys cost more memory at this point than anything
        // else. Versions are parsed only between entries of one package.
        self.binaries.sort_unstable_by(|a, b| {
            a.package
                .cmp(&b.package)
                .then_with(|| cmp_versions(&a.version, &b.version))
                .then_with(|| a.arch.cmp(&b.arch))
        });
        self.sources.sort_unstable_by(|a, b| {
            a.package
                .cmp(&b.package)
                .then_with(|| cmp_versions(&a.version, &b.version))
        });
    }

    /// Every pool file this component refers to.
    pub fn pool_files(&self) -> impl Iterator<Item = &PoolFile> {
        self.binaries
            .iter()
            .map(|b| &b.file)
            .chain(self.sources.iter().flat_map(|s| s.files.iter()))
    }

    /// Every blob this component needs: its pool files and, for a verbatim
    /// mirror, the upstream's release, index and keyring blobs.
    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        self.pool_files()
            .map(|f| f.sha256.as_str())
            .chain(self.upstream.iter().flat_map(|u| u.blobs()))
            .chain(self.extra_files.iter().map(|f| f.sha256.as_str()))
    }

    /// Concrete architectures of the binaries (not `all`).
    pub fn architectures(&self) -> impl Iterator<Item = &str> {
        self.binaries
            .iter()
            .map(|b| b.arch.as_str())
            .filter(|a| *a != "all")
    }
}

/// Pool path -> (blob, origin) across components (a whole archive): one
/// pool path can hold only one content, whatever dist refers to it.
pub fn pool_paths<'c>(
    components: impl Iterator<Item = &'c ComponentState>,
) -> std::collections::BTreeMap<String, (String, String)> {
    let mut out = std::collections::BTreeMap::new();
    for c in components {
        for b in &c.binaries {
            out.insert(
                b.file.path.clone(),
                (b.file.sha256.clone(), b.origin.clone()),
            );
        }
        for s in &c.sources {
            for f in &s.files {
                out.insert(f.path.clone(), (f.sha256.clone(), s.origin.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(package: &str, version: &str, sha: &str) -> BinaryEntry {
        BinaryEntry {
            package: package.into(),
            version: version.into(),
            arch: "amd64".into(),
            stanza: String::new(),
            file: PoolFile {
                path: format!("pool/main/x/{package}_{version}.deb"),
                sha256: sha.into(),
                size: 1,
            },
            origin: format!("{package}-{sha}.deb"),
        }
    }

    #[test]
    fn push_then_sort_gives_the_order_add_keeps_whatever_the_arrival() {
        let versions = ["1.10", "1.9", "1:0.1", "1.00", "1.0", "1~rc1", "1.0-1"];
        let mut added = ComponentState::default();
        for (i, v) in versions.iter().enumerate() {
            added.add_binary(bin("p", v, &i.to_string())).unwrap();
        }
        let expect: Vec<_> = added.binaries.iter().map(|b| b.version.clone()).collect();
        assert_eq!(
            expect,
            ["1~rc1", "1.0", "1.00", "1.0-1", "1.9", "1.10", "1:0.1"]
        );
        for rotation in 0..versions.len() {
            let mut pushed = ComponentState::default();
            let mut index = pushed.index();
            for (i, v) in versions
                .iter()
                .cycle()
                .skip(rotation)
                .take(versions.len())
                .enumerate()
            {
                pushed
                    .push_binary(&mut index, bin("p", v, &i.to_string()))
                    .unwrap();
            }
            pushed.sort();
            let got: Vec<_> = pushed.binaries.iter().map(|b| b.version.clone()).collect();
            assert_eq!(got, expect, "arrival rotated by {rotation}");
        }
    }

    #[test]
    fn keeps_dpkg_order_and_detects_conflicts() {
        let mut c = ComponentState::default();
        assert_eq!(c.add_binary(bin("b", "1.10", "1")), Ok(Added::New));
        assert_eq!(c.add_binary(bin("b", "1.9", "2")), Ok(Added::New));
        assert_eq!(c.add_binary(bin("a", "1~rc1", "3")), Ok(Added::New));
        let order: Vec<_> = c.binaries.iter().map(|b| b.version.as_str()).collect();
        assert_eq!(order, ["1~rc1", "1.9", "1.10"]);
        assert_eq!(c.add_binary(bin("b", "1.9", "2")), Ok(Added::Unchanged));
        let err = c.add_binary(bin("b", "1.9", "9")).unwrap_err();
        assert!(err.to_string().contains("b-2.deb") && err.to_string().contains("b-9.deb"));
        assert_eq!(c.binaries.len(), 3);
    }

    #[test]
    fn push_then_sort_matches_sorted_insert() {
        let mut a = ComponentState::default();
        let mut b = ComponentState::default();
        let mut index = b.index();
        for (p, v, s) in [
            ("z", "1", "1"),
            ("b", "1.10", "2"),
            ("b", "1.9", "3"),
            ("a", "2", "4"),
        ] {
            a.add_binary(bin(p, v, s)).unwrap();
            assert_eq!(b.push_binary(&mut index, bin(p, v, s)), Ok(Added::New));
        }
        assert_eq!(
            b.push_binary(&mut index, bin("b", "1.9", "3")),
            Ok(Added::Unchanged)
        );
        assert!(b.push_binary(&mut index, bin("b", "1.9", "x")).is_err());
        b.sort();
        assert_eq!(a, b);
    }
}
