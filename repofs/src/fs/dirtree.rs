//! The APT tree of one snapshot as a compact, immutable directory index:
//! what the mount walks for every lookup and readdir under
//! `snapshots/<id>/` and `channels/<channel>/`.
//!
//! It is built from [`crate::model::tree::plan_tree`]'s output (path ->
//! blob per archive), the one derivation `halo export` also writes, so the
//! mount and an export hold the same paths and bytes. The index adds only
//! the directories implied by the paths: node 0 is the snapshot root listing
//! the archives, every directory's children are contiguous and sorted by
//! name (binary search), names live in one string arena. About 100 bytes a
//! file, so a 50,000-package snapshot is a few megabytes.
//!
//! PURE: no disk, no FUSE. Invariants: node indices are deterministic for a
//! given input, so a tree evicted from the cache and rebuilt gives the same
//! answers; a path is never both a file and a directory (refused at build).

use std::collections::{HashMap, VecDeque};

use crate::model::tree::Tree;

/// The index of the snapshot root (it lists the archives).
pub const ROOT: u32 = 0;

/// A blob behind a file: content hash and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Blob {
    pub sha256: [u8; 32],
    pub size: u64,
}

impl Blob {
    pub fn hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// Why a set of paths cannot form a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadTree {
    #[error("{path}: path is both a file and a directory")]
    Conflict { path: String },
    #[error("{path:?}: not a relative path of plain names")]
    Path { path: String },
    #[error("{path}: blob hash {sha256:?} is not 64 hex digits")]
    Hash { path: String, sha256: String },
    #[error("tree too large for a 32-bit index")]
    TooLarge,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Dir { first: u32, len: u32, subdirs: u32 },
    File { blob: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Node {
    name_start: u32,
    name_len: u32,
    parent: u32,
    kind: Kind,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory with this many subdirectories.
    Dir {
        subdirs: u32,
    },
    File(Blob),
}

/// One snapshot's tree: every archive under one root.
#[derive(Debug, Clone)]
pub struct DirTree {
    names: String,
    nodes: Vec<Node>,
    blobs: Vec<Blob>,
}

/// A directory while building: its children, sorted when laid out.
#[derive(Default)]
struct TmpDir<'a> {
    children: Vec<(&'a str, TmpChild)>,
}

#[derive(Clone, Copy)]
enum TmpChild {
    Dir(u32),
    File(Blob),
}

/// Directories found in the paths, keyed by (archive, path inside it) as
/// slices of the input: building holds no copy of the path strings (a
/// map of maps would cost hundreds of bytes per one-file directory).
struct Builder<'a> {
    dirs: Vec<TmpDir<'a>>,
    index: HashMap<(usize, &'a str), u32>,
}

fn check_name<'a>(archive: &str, path: &str, name: &'a str) -> Result<&'a str, BadTree> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(BadTree::Path {
            path: format!("{archive}/{path}"),
        });
    }
    Ok(name)
}

fn parse_blob(path: &str, sha256: &str, size: u64) -> Result<Blob, BadTree> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(sha256, &mut bytes).map_err(|_| BadTree::Hash {
        path: path.to_string(),
        sha256: sha256.to_string(),
    })?;
    Ok(Blob {
        sha256: bytes,
        size,
    })
}

fn index(n: usize) -> Result<u32, BadTree> {
    u32::try_from(n).map_err(|_| BadTree::TooLarge)
}

impl<'a> Builder<'a> {
    fn new_dir(&mut self, parent: u32, name: &'a str) -> Result<u32, BadTree> {
        let id = index(self.dirs.len())?;
        self.dirs.push(TmpDir::default());
        self.dirs[parent as usize]
            .children
            .push((name, TmpChild::Dir(id)));
        Ok(id)
    }

    /// Adds every file of one archive (and the directories its paths imply).
    fn add_archive(&mut self, ai: usize, archive: &'a str, tree: &'a Tree) -> Result<(), BadTree> {
        let top = self.new_dir(0, check_name(archive, "", archive)?)?;
        let conflict = |p: &str| BadTree::Conflict {
            path: format!("{archive}/{p}"),
        };
        for (path, file) in tree {
            let mut parent = top;
            let mut start = 0;
            for (pos, _) in path.match_indices('/') {
                let (prefix, name) = (&path[..pos], check_name(archive, path, &path[start..pos])?);
                parent = match self.index.get(&(ai, prefix)) {
                    Some(&dir) => dir,
                    None if tree.contains_key(prefix) => return Err(conflict(prefix)),
                    None => {
                        let dir = self.new_dir(parent, name)?;
                        self.index.insert((ai, prefix), dir);
                        dir
                    }
                };
                start = pos + 1;
            }
            let name = check_name(archive, path, &path[start..])?;
            if self.index.contains_key(&(ai, path.as_str())) {
                return Err(conflict(path));
            }
            let blob = parse_blob(&format!("{archive}/{path}"), &file.sha256, file.size)?;
            self.dirs[parent as usize]
                .children
                .push((name, TmpChild::File(blob)));
        }
        Ok(())
    }
}

impl DirTree {
    /// Builds the index of a snapshot from its archives' trees.
    pub fn build(archives: &[(String, Tree)]) -> Result<Self, BadTree> {
        let mut b = Builder {
            dirs: vec![TmpDir::default()],
            index: HashMap::new(),
        };
        for (ai, (archive, tree)) in archives.iter().enumerate() {
            b.add_archive(ai, archive, tree)?;
        }
        let mut out = DirTree {
            names: String::new(),
            nodes: vec![Node {
                name_start: 0,
                name_len: 0,
                parent: ROOT,
                kind: Kind::Dir {
                    first: 1,
                    len: 0,
                    subdirs: 0,
                },
            }],
            blobs: Vec::new(),
        };
        // Breadth first, so each directory's children are contiguous.
        let mut queue = VecDeque::from([(ROOT, 0u32)]);
        while let Some((idx, tmp)) = queue.pop_front() {
            let mut children = std::mem::take(&mut b.dirs[tmp as usize].children);
            children.sort_unstable_by(|x, y| x.0.cmp(y.0));
            if let Some(w) = children.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(BadTree::Conflict {
                    path: w[0].0.to_string(),
                });
            }
            let first = index(out.nodes.len())?;
            let len = index(children.len())?;
            let mut subdirs = 0;
            for (name, child) in children {
                let node_idx = index(out.nodes.len())?;
                let name_start = index(out.names.len())?;
                out.names.push_str(name);
                let kind = match child {
                    TmpChild::Dir(t) => {
                        subdirs += 1;
                        queue.push_back((node_idx, t));
                        Kind::Dir {
                            first: 0,
                            len: 0,
                            subdirs: 0,
                        }
                    }
                    TmpChild::File(blob) => {
                        out.blobs.push(blob);
                        Kind::File {
                            blob: index(out.blobs.len() - 1)?,
                        }
                    }
                };
                out.nodes.push(Node {
                    name_start,
                    name_len: index(name.len())?,
                    parent: idx,
                    kind,
                });
            }
            out.nodes[idx as usize].kind = Kind::Dir {
                first,
                len,
                subdirs,
            };
        }
        out.names.shrink_to_fit();
        Ok(out)
    }

    fn get(&self, idx: u32) -> Option<&Node> {
        self.nodes.get(idx as usize)
    }

    /// The name of a node (empty for the root).
    pub fn name(&self, idx: u32) -> &str {
        self.get(idx)
            .and_then(|n| {
                let start = n.name_start as usize;
                self.names.get(start..start + n.name_len as usize)
            })
            .unwrap_or("")
    }

    pub fn kind(&self, idx: u32) -> Option<NodeKind> {
        Some(match self.get(idx)?.kind {
            Kind::Dir { subdirs, .. } => NodeKind::Dir { subdirs },
            Kind::File { blob } => NodeKind::File(*self.blobs.get(blob as usize)?),
        })
    }

    /// The children of a directory, in name order (empty for a file).
    pub fn children(&self, dir: u32) -> std::ops::Range<u32> {
        match self.get(dir).map(|n| n.kind) {
            Some(Kind::Dir { first, len, .. }) => first..first + len,
            _ => 0..0,
        }
    }

    /// The child of `dir` called `name`.
    pub fn lookup(&self, dir: u32, name: &str) -> Option<u32> {
        let range = self.children(dir);
        let (start, end) = (range.start as usize, range.end as usize);
        let slice = self.nodes.get(start..end)?;
        let at = slice
            .binary_search_by(|n| {
                let s = n.name_start as usize;
                self.names[s..s + n.name_len as usize].cmp(name)
            })
            .ok()?;
        Some(range.start + index(at).ok()?)
    }

    /// The node at `path` (`""` is the root; `rustedhalo/dists/trusty`).
    pub fn resolve(&self, path: &str) -> Option<u32> {
        if path.is_empty() {
            return Some(ROOT);
        }
        path.split('/')
            .try_fold(ROOT, |dir, part| self.lookup(dir, part))
    }

    /// The path of a node from the root (`""` for the root).
    pub fn path(&self, idx: u32) -> String {
        let mut parts = Vec::new();
        let mut cur = idx;
        while cur != ROOT {
            parts.push(self.name(cur));
            match self.get(cur) {
                Some(n) => cur = n.parent,
                None => break,
            }
        }
        parts.reverse();
        parts.join("/")
    }

    /// Number of nodes (files and directories): a measure of its memory.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tree::TreeFile;

    fn file(sha: char, size: u64) -> TreeFile {
        TreeFile {
            sha256: sha.to_string().repeat(64),
            size,
        }
    }

    fn sample() -> DirTree {
        let mut a = Tree::new();
        a.insert("dists/trusty/InRelease".into(), file('a', 1));
        a.insert(
            "dists/trusty/main/binary-amd64/Packages".into(),
            file('b', 2),
        );
        a.insert("pool/main/h/hello/hello_1_all.deb".into(), file('c', 3));
        a.insert("pool/main/a/abc/abc_1_all.deb".into(), file('d', 4));
        let mut b = Tree::new();
        b.insert("dists/x/Release".into(), file('e', 5));
        DirTree::build(&[("rustedhalo".into(), a), ("ceph".into(), b)]).unwrap()
    }

    #[test]
    fn paths_resolve_to_blobs_and_directories() {
        let t = sample();
        let deb = t
            .resolve("rustedhalo/pool/main/h/hello/hello_1_all.deb")
            .unwrap();
        match t.kind(deb) {
            Some(NodeKind::File(b)) => {
                assert_eq!(b.size, 3);
                assert_eq!(b.hex(), "c".repeat(64));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.path(deb), "rustedhalo/pool/main/h/hello/hello_1_all.deb");
        let main = t.resolve("rustedhalo/pool/main").unwrap();
        assert_eq!(t.kind(main), Some(NodeKind::Dir { subdirs: 2 }));
        assert_eq!(t.resolve(""), Some(ROOT));
        assert_eq!(t.resolve("rustedhalo/pool/main/z"), None);
        assert_eq!(t.resolve("rustedhalo/dists/trusty/InRelease/x"), None);
    }

    #[test]
    fn children_are_sorted_and_complete() {
        let t = sample();
        let names: Vec<_> = t.children(ROOT).map(|i| t.name(i)).collect();
        assert_eq!(names, ["ceph", "rustedhalo"]);
        let main = t.resolve("rustedhalo/pool/main").unwrap();
        let names: Vec<_> = t.children(main).map(|i| t.name(i)).collect();
        assert_eq!(names, ["a", "h"]);
        let deb = t.resolve("rustedhalo/dists/trusty/InRelease").unwrap();
        assert!(t.children(deb).is_empty());
        assert_eq!(t.kind(ROOT), Some(NodeKind::Dir { subdirs: 2 }));
    }

    #[test]
    fn rebuilding_gives_the_same_indices() {
        let (a, b) = (sample(), sample());
        for p in ["rustedhalo/pool/main/h", "ceph/dists/x/Release"] {
            assert_eq!(a.resolve(p), b.resolve(p));
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let mut t = Tree::new();
        t.insert("a".into(), file('a', 1));
        t.insert("a/b".into(), file('a', 1));
        let err = DirTree::build(&[("x".into(), t)]).unwrap_err();
        assert!(matches!(err, BadTree::Conflict { .. }), "{err:?}");
        for bad in ["a//b", "../a", "a/./b"] {
            let mut t = Tree::new();
            t.insert(bad.into(), file('a', 1));
            assert!(matches!(
                DirTree::build(&[("x".into(), t)]),
                Err(BadTree::Path { .. })
            ));
        }
        let mut t = Tree::new();
        t.insert(
            "a".into(),
            TreeFile {
                sha256: "zz".into(),
                size: 1,
            },
        );
        assert!(matches!(
            DirTree::build(&[("x".into(), t)]),
            Err(BadTree::Hash { .. })
        ));
    }
}
