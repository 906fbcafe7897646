//! Read-only helpers for long-running readers of the store (the FUSE
//! view): cheap change detection for channel pointers, blob times, and the
//! snapshot tree loaded without index text.
//!
//! Nothing here writes or locks: every file read is immutable or replaced
//! by rename, so a reader sees the old or the new version.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::SystemTime;

use fs_err as fs;
use serde::Deserialize;

use super::{Error, Result, Store};
use crate::debian::name;
use crate::model::tree::{plan_tree, Tree};
use crate::model::{ComponentState, PoolFile, Snapshot, SourceEntry};

/// The identity of a channel pointer file: it changes whenever the pointer
/// is replaced (a rename gives a new inode), so comparing stamps notices a
/// promotion with one `stat`, without reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointerStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

/// A component state as the tree needs it: pool files only. Serde skips
/// the stanzas while parsing, so a 50,000-package component costs its file
/// list, not its index text.
#[derive(Deserialize)]
struct LeanComponent {
    #[serde(default)]
    binaries: Vec<LeanBinary>,
    #[serde(default)]
    sources: Vec<LeanSource>,
    /// Small (file lists, no text): kept, so the lean state differs from
    /// the full one by names and stanzas only.
    #[serde(default)]
    upstream: Option<crate::model::verbatim::UpstreamFiles>,
}

#[derive(Deserialize)]
struct LeanBinary {
    file: PoolFile,
}

#[derive(Deserialize)]
struct LeanSource {
    files: Vec<PoolFile>,
}

/// Component state blobs up to this size are read whole to be parsed
/// (see [`Store::load_component_files`]): about 20,000 packages' worth.
pub const LEAN_WHOLE_MAX: u64 = 16 << 20;

impl Store {
    fn channel_pointer_path(&self, channel: &str) -> PathBuf {
        self.root().join("channels").join(format!("{channel}.json"))
    }

    /// The stamp of a channel's pointer; `None` when there is no such
    /// channel (or the name is not a channel name).
    pub fn channel_stamp(&self, channel: &str) -> Result<Option<PointerStamp>> {
        if name::check_segment("channel", channel).is_err() {
            return Ok(None);
        }
        match fs::metadata(self.channel_pointer_path(channel)) {
            Ok(m) => Ok(Some(PointerStamp {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// When a blob was written: it never changes, so it is the mtime of
    /// every path that shows the blob (and `halo export`'s hard links).
    pub fn blob_mtime(&self, sha256: &str) -> Result<SystemTime> {
        Ok(fs::metadata(self.pool().path(sha256))?.modified()?)
    }

    /// A component state holding only its pool files, all in one source
    /// entry (names, versions and stanzas left empty): enough for
    /// [`plan_tree`], which only asks for `pool_files()`, in the same
    /// order. Parsed as it is read: the blob (tens of megabytes for a large
    /// component) is never in memory whole, nor are its stanzas.
    ///
    /// A blob up to [`LEAN_WHOLE_MAX`] is read whole and parsed from memory
    /// instead: serde_json reads a stream a byte at a time, several times
    /// slower than a slice, and the mount loads a tree on the first walk
    /// of a snapshot. Larger ones stream, so memory stays bounded.
    pub fn load_component_files(&self, sha256: &str) -> Result<ComponentState> {
        let path = self.pool().path(sha256);
        let corrupt = |e: serde_json::Error| Error::Corrupt {
            path: path.clone(),
            reason: format!("component state: {e}"),
        };
        let file = self.pool().open(sha256)?;
        let lean: LeanComponent = if file.metadata()?.len() <= LEAN_WHOLE_MAX {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut { file }, &mut bytes)?;
            serde_json::from_slice(&bytes).map_err(corrupt)?
        } else {
            let reader = std::io::BufReader::with_capacity(1 << 16, file);
            serde_json::from_reader(reader).map_err(corrupt)?
        };
        // Same layout: the binaries' vector is reused in place.
        let mut files: Vec<PoolFile> = lean.binaries.into_iter().map(|b| b.file).collect();
        files.extend(lean.sources.into_iter().flat_map(|s| s.files));
        Ok(ComponentState {
            binaries: Vec::new(),
            sources: vec![SourceEntry {
                package: String::new(),
                version: String::new(),
                stanza: String::new(),
                files,
                origin: String::new(),
            }],
            identity: None,
            upstream: lean.upstream,
            extra_files: Vec::new(),
        })
    }

    /// The tree of every archive of a snapshot: the same derivation as
    /// [`Store::snapshot_trees`] (`model::tree::plan_tree`), with the
    /// components loaded by [`Store::load_component_files`].
    pub fn snapshot_file_trees(&self, snapshot: &Snapshot) -> Result<Vec<(String, Tree)>> {
        let mut out = Vec::new();
        for (archive, a) in &snapshot.archives {
            let mut states = std::collections::HashMap::new();
            for d in a.dists.values() {
                for h in d.components.values() {
                    if !states.contains_key(h) {
                        states.insert(h.clone(), self.load_component_files(h)?);
                    }
                }
            }
            out.push((archive.clone(), plan_tree(a, |h| states.get(h))));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state::PoolFile;

    #[test]
    fn lean_components_keep_exactly_the_pool_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["pool", "tmp"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let store = Store {
            wait: None,
            snapshots_url: None,
            pdiff_history: super::super::DEFAULT_PDIFF_HISTORY,
            root: root.to_path_buf(),
            meta: super::super::StoreMeta {
                format: super::super::FORMAT,
                origin: "o".into(),
                label: "l".into(),
                architectures: vec![],
                created: String::new(),
            },
        };
        let pf = |p: &str| PoolFile {
            path: p.into(),
            sha256: "ab".repeat(32),
            size: 1,
        };
        let full = ComponentState {
            upstream: None,
            identity: None,
            extra_files: Vec::new(),
            binaries: vec![crate::model::BinaryEntry {
                package: "a".into(),
                version: "1".into(),
                arch: "all".into(),
                stanza: "Package: a\n".into(),
                file: pf("pool/main/a/a/a_1_all.deb"),
                origin: "x".into(),
            }],
            sources: vec![SourceEntry {
                package: "a".into(),
                version: "1".into(),
                stanza: "Package: a\n".into(),
                files: vec![pf("pool/main/a/a/a_1.dsc"), pf("pool/main/a/a/a_1.tar.xz")],
                origin: "y".into(),
            }],
        };
        let pool = store.pool();
        let mut batch = pool.batch();
        let d = batch
            .add_bytes(&serde_json::to_vec(&full).unwrap())
            .unwrap();
        batch.commit().unwrap();
        let lean = store.load_component_files(&d.sha256).unwrap();
        let paths = |c: &ComponentState| c.pool_files().cloned().collect::<Vec<_>>();
        assert_eq!(paths(&lean), paths(&full));
        assert!(store.blob_mtime(&d.sha256).is_ok());
        assert_eq!(store.channel_stamp("nope").unwrap(), None);
        assert_eq!(store.channel_stamp("../x").unwrap(), None);
    }
}
