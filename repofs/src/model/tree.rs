//! The APT tree of one archive of one snapshot: every path a client can
//! read (`dists/...`, `dists/.../by-hash/SHA256/<hex>`, `pool/...`) and the
//! blob behind it. `halo export` writes this tree to disk and the FUSE view
//! serves it, so both show exactly the same bytes.

use std::collections::BTreeMap;

use super::snapshot::ArchiveSnapshot;
use super::state::ComponentState;

/// A file of the tree: the blob behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub sha256: String,
    pub size: u64,
}

/// Path (relative to the archive root) -> blob.
pub type Tree = BTreeMap<String, TreeFile>;

/// Index files apt fetches by hash: everything under a component directory.
fn has_by_hash(path: &str) -> bool {
    path.contains('/')
}

/// Builds the tree of an archive. `component` resolves a component state
/// blob hash to its parsed content (the caller loads and caches them).
pub fn plan_tree<'a, F>(archive: &ArchiveSnapshot, mut component: F) -> Tree
where
    F: FnMut(&str) -> Option<&'a ComponentState>,
{
    let mut tree = Tree::new();
    for (dist, d) in &archive.dists {
        for f in &d.files {
            let file = TreeFile {
                sha256: f.sha256.clone(),
                size: f.size,
            };
            if has_by_hash(&f.path) {
                if let Some((dir, _)) = f.path.rsplit_once('/') {
                    tree.insert(
                        format!("dists/{dist}/{dir}/by-hash/SHA256/{}", f.sha256),
                        file.clone(),
                    );
                }
            }
            tree.insert(format!("dists/{dist}/{}", f.path), file);
        }
        // Patches are fetched by name only, never by hash.
        for f in &d.pdiffs {
            let file = TreeFile {
                sha256: f.sha256.clone(),
                size: f.size,
            };
            tree.insert(format!("dists/{dist}/{}", f.path), file);
        }
        for hash in d.components.values() {
            if let Some(state) = component(hash) {
                for pf in state.pool_files() {
                    tree.insert(
                        pf.path.clone(),
                        TreeFile {
                            sha256: pf.sha256.clone(),
                            size: pf.size,
                        },
                    );
                }
            }
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::{DistFile, DistSnapshot};
    use crate::model::state::{BinaryEntry, PoolFile};

    #[test]
    fn tree_has_indices_by_hash_and_pool() {
        let mut d = DistSnapshot::default();
        d.components.insert("main".into(), "c1".into());
        d.files.push(DistFile {
            path: "main/binary-amd64/Packages".into(),
            sha256: "aa".into(),
            md5: String::new(),
            size: 1,
        });
        d.files.push(DistFile {
            path: "InRelease".into(),
            sha256: "bb".into(),
            md5: String::new(),
            size: 2,
        });
        let mut a = ArchiveSnapshot::default();
        a.dists.insert("trusty".into(), d);
        let state = ComponentState {
            binaries: vec![BinaryEntry {
                package: "hi".into(),
                version: "1".into(),
                arch: "all".into(),
                stanza: String::new(),
                file: PoolFile {
                    path: "pool/main/h/hi/hi_1_all.deb".into(),
                    sha256: "cc".into(),
                    size: 3,
                },
                origin: String::new(),
            }],
            sources: vec![],
            upstream: None,
            identity: None,
            extra_files: Vec::new(),
        };
        let tree = plan_tree(&a, |h| (h == "c1").then_some(&state));
        let paths: Vec<_> = tree.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "dists/trusty/InRelease",
                "dists/trusty/main/binary-amd64/Packages",
                "dists/trusty/main/binary-amd64/by-hash/SHA256/aa",
                "pool/main/h/hi/hi_1_all.deb"
            ]
        );
    }
}
