//! The mount's namespace: which node a name in a directory is, what a
//! directory lists, and the attributes and cache lifetimes the kernel gets.
//!
//! ```text
//! /                                  root
//! /snapshots/<id>/<archive>/...      the snapshot's tree (immutable)
//! /channels/<c>/<archive>/...        the tree of the snapshot <c> points at now
//! /channels/<c>.snapshot             symlink -> ../snapshots/<id>
//! ```
//!
//! A channel directory is the node "channel `c` showing snapshot `S`": the
//! entry `channels/<c>` has a zero TTL, so every path walk asks again and a
//! promotion shows at once, while everything below it is as immutable as
//! `snapshots/S/...` (long TTLs, cached directory listings). A process that
//! sits in a channel directory (rsync's cwd) keeps a consistent snapshot.
//! Under a channel, a name the current snapshot lacks falls back to earlier
//! targets ([`super::channel`]); such entries get a short TTL and are never
//! listed, so listings, `diff -r` and `rsync` see exactly the snapshot.
//!
//! Files are their blob (one inode per content, [`super::inodes`]); file
//! mtimes are the pool blob's, which never change; directory mtimes are the
//! snapshot's creation time. Tree directories are numbered by root and
//! index, so the inode table holds only files and the few other nodes:
//! memory follows the distinct files the kernel caches and the trees in
//! the cache, not the number of directories walked.
//!
//! Not touching disk or FUSE: the store is behind [`Catalog`], so this is
//! tested with an in-memory catalog.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::channel::FallbackPolicy;
use super::dirtree::{Blob, DirTree, NodeKind, ROOT as TREE_ROOT};
use super::errno::FsError;
use super::inodes::{self, blob_ino, decode_tree_dir, tree_dir_ino, InodeTable, RootIds};
use super::node::{dir_attr, empty_channel_ino, join, link_ino, link_text, millis, Found, Known};
pub use super::node::{
    Attr, Catalog, DirEntry, Entry, Kind, NodeKey, Root, SnapTree, SnapshotInfo, Top, CHANNEL_TTL,
    FALLBACK_TTL, IMMUTABLE_TTL, SNAPSHOT_TTL, TOP_TTL,
};
use crate::model::snapshot::check_snapshot_id;

/// The namespace over a catalog, with the table of inodes the kernel holds.
pub struct View<C> {
    catalog: C,
    policy: FallbackPolicy,
    /// Files, archives, fallback directories, links: what the kernel holds.
    table: Mutex<InodeTable<Known>>,
    /// Tree directories need no entry: their numbers name root and index.
    roots: Mutex<RootIds<Root>>,
}

impl<C: Catalog> View<C> {
    pub fn new(catalog: C, policy: FallbackPolicy) -> Self {
        Self {
            catalog,
            policy,
            table: Mutex::new(InodeTable::default()),
            roots: Mutex::new(RootIds::default()),
        }
    }

    /// The inode number of directory `dir` of `root`'s tree.
    fn tree_ino(&self, root: &Arc<Root>, dir: u32) -> u64 {
        let mut roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        tree_dir_ino(roots.intern(root, root.proposed_id()), dir)
    }

    /// Attributes of a tree directory (from the manifest for the root).
    fn tree_dir_attr(&self, root: &Root, dir: u32) -> Result<Attr, FsError> {
        if dir == TREE_ROOT {
            let info = self.catalog.snapshot_info(root.snapshot())?;
            return Ok(info.ok_or(FsError::NotFound)?.root_attr());
        }
        let snap = self.catalog.tree(root.snapshot())?;
        match snap.tree.kind(dir) {
            Some(NodeKind::Dir { subdirs }) => Ok(dir_attr(snap.created, subdirs)),
            _ => Err(FsError::NotFound),
        }
    }

    pub fn catalog(&self) -> &C {
        &self.catalog
    }

    fn table(&self) -> MutexGuard<'_, InodeTable<Known>> {
        // A panic while holding the lock cannot leave the table half
        // updated (every update is one map operation): keep serving.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Inodes the kernel holds now (for logs and memory figures).
    pub fn inode_count(&self) -> usize {
        self.table().len()
    }

    fn node(&self, ino: u64) -> Result<NodeKey, FsError> {
        match ino {
            inodes::ROOT => Ok(NodeKey::Root),
            inodes::SNAPSHOTS => Ok(NodeKey::Snapshots),
            inodes::CHANNELS => Ok(NodeKey::Channels),
            _ => {
                if let Some((id, dir)) = decode_tree_dir(ino) {
                    let roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
                    let root = roots.get(id).ok_or(FsError::UnknownInode(ino))?;
                    return Ok(NodeKey::Dir { root, dir });
                }
                self.table()
                    .get(ino)
                    .map(|k| k.node.clone())
                    .ok_or(FsError::UnknownInode(ino))
            }
        }
    }

    /// Resolves `name` in directory `parent`; the kernel now holds the
    /// returned inode once more (until [`View::forget`]).
    pub fn lookup(&self, parent: u64, name: &str, now: SystemTime) -> Result<Entry, FsError> {
        let parent = self.node(parent)?;
        let found = self.child(&parent, name, now)?;
        if found.ino > inodes::CHANNELS && decode_tree_dir(found.ino).is_none() {
            self.table().remember(
                found.ino,
                Known {
                    node: found.node,
                    attr: found.attr,
                },
            )?;
        }
        let attr_ttl = if found.ino <= inodes::CHANNELS {
            TOP_TTL
        } else {
            found.ttl
        };
        Ok(Entry {
            ino: found.ino,
            attr: found.attr,
            ttl: found.ttl,
            attr_ttl,
        })
    }

    /// The kernel dropped `n` lookups of `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino > inodes::CHANNELS && decode_tree_dir(ino).is_none() {
            self.table().forget(ino, n);
        }
    }

    pub fn getattr(&self, ino: u64) -> Result<(Attr, Duration), FsError> {
        let top = |dir: Top, subdirs: usize| {
            let subdirs = u32::try_from(subdirs).unwrap_or(u32::MAX);
            Ok((dir_attr(self.catalog.top_mtime(dir), subdirs), TOP_TTL))
        };
        match ino {
            inodes::ROOT => top(Top::Root, 2),
            inodes::SNAPSHOTS => top(Top::Snapshots, self.catalog.snapshot_ids()?.len()),
            inodes::CHANNELS => top(Top::Channels, self.catalog.channels()?.len()),
            _ => {
                if let NodeKey::Dir { root, dir } = self.node(ino)? {
                    return Ok((self.tree_dir_attr(&root, dir)?, IMMUTABLE_TTL));
                }
                let table = self.table();
                let known = table.get(ino).ok_or(FsError::UnknownInode(ino))?;
                Ok((known.attr, IMMUTABLE_TTL))
            }
        }
    }

    /// The text of a symlink.
    pub fn readlink(&self, ino: u64) -> Result<String, FsError> {
        match self.node(ino)? {
            NodeKey::Link { target, .. } => Ok(link_text(&target)),
            _ => Err(FsError::NotFound),
        }
    }

    /// The blob of a file, to open it.
    pub fn blob(&self, ino: u64) -> Result<Blob, FsError> {
        match self.node(ino)? {
            NodeKey::File(blob) => Ok(blob),
            NodeKey::Link { .. } => Err(FsError::NotFound),
            _ => Err(FsError::IsDir),
        }
    }

    /// True for directories whose listing never changes (the kernel may
    /// cache it).
    pub fn is_immutable_dir(&self, ino: u64) -> bool {
        matches!(
            self.node(ino),
            Ok(NodeKey::Dir { .. } | NodeKey::Archive { .. })
        )
    }

    fn child(&self, parent: &NodeKey, name: &str, now: SystemTime) -> Result<Found, FsError> {
        match parent {
            NodeKey::Root => self.top_child(name),
            NodeKey::Snapshots => self.snapshot_root(name),
            NodeKey::Channels => self.channel_child(name),
            NodeKey::Dir {
                root,
                dir: TREE_ROOT,
            } => self.archive(root, name, now),
            NodeKey::Dir { root, dir } => {
                let snap = self.catalog.tree(root.snapshot())?;
                self.tree_child(root, &snap, *dir, name, now)
            }
            NodeKey::Archive {
                root,
                name: archive,
            } => {
                let snap = self.catalog.tree(root.snapshot())?;
                let dir = snap
                    .tree
                    .lookup(TREE_ROOT, archive)
                    .ok_or(FsError::NotFound)?;
                self.tree_child(root, &snap, dir, name, now)
            }
            NodeKey::Fallback { root, path } => self.fallback(root, &join(path, name), now),
            NodeKey::EmptyChannel { .. } => Err(FsError::NotFound),
            NodeKey::Link { .. } | NodeKey::File(_) => Err(FsError::NotDir),
        }
    }

    fn top_child(&self, name: &str) -> Result<Found, FsError> {
        let (ino, node) = match name {
            "snapshots" => (inodes::SNAPSHOTS, NodeKey::Snapshots),
            "channels" => (inodes::CHANNELS, NodeKey::Channels),
            _ => return Err(FsError::NotFound),
        };
        let (attr, _) = self.getattr(ino)?;
        Ok(Found {
            ino,
            node,
            attr,
            ttl: IMMUTABLE_TTL,
        })
    }

    fn snapshot_root(&self, id: &str) -> Result<Found, FsError> {
        check_snapshot_id(id).map_err(|_| FsError::NotFound)?;
        self.tree_root(Root::Snapshot(id.to_string()), id, SNAPSHOT_TTL)
    }

    /// The root directory of the tree of snapshot `id`, shown as `root`.
    fn tree_root(&self, root: Root, id: &str, ttl: Duration) -> Result<Found, FsError> {
        let info = self.catalog.snapshot_info(id)?.ok_or(FsError::NotFound)?;
        let root = Arc::new(root);
        Ok(Found {
            ino: self.tree_ino(&root, TREE_ROOT),
            node: NodeKey::Dir {
                root,
                dir: TREE_ROOT,
            },
            attr: info.root_attr(),
            ttl,
        })
    }

    fn channel_child(&self, name: &str) -> Result<Found, FsError> {
        if let Some(view) = self.catalog.channel(name)? {
            return match &view.target {
                Some(target) => self.tree_root(
                    Root::Channel {
                        channel: name.to_string(),
                        target: target.clone(),
                    },
                    target,
                    CHANNEL_TTL,
                ),
                None => Ok(Found {
                    ino: empty_channel_ino(name),
                    node: NodeKey::EmptyChannel {
                        channel: name.into(),
                    },
                    attr: dir_attr(self.catalog.top_mtime(Top::Channels), 0),
                    ttl: CHANNEL_TTL,
                }),
            };
        }
        let channel = name.strip_suffix(".snapshot").ok_or(FsError::NotFound)?;
        let view = self.catalog.channel(channel)?.ok_or(FsError::NotFound)?;
        let target = view.target.as_deref().ok_or(FsError::NotFound)?;
        let info = self
            .catalog
            .snapshot_info(target)?
            .ok_or(FsError::NotFound)?;
        Ok(Found {
            ino: link_ino(channel, target),
            node: NodeKey::Link {
                channel: channel.into(),
                target: target.into(),
            },
            attr: Attr {
                kind: Kind::Symlink,
                size: link_text(target).len() as u64,
                mtime: info.created,
                nlink: 1,
            },
            ttl: CHANNEL_TTL,
        })
    }

    /// An archive of a snapshot's root, from the manifest (no tree).
    fn archive(&self, root: &Arc<Root>, name: &str, now: SystemTime) -> Result<Found, FsError> {
        let info = self
            .catalog
            .snapshot_info(root.snapshot())?
            .ok_or(FsError::NotFound)?;
        if !info.archives.iter().any(|a| a == name) {
            return match root.as_ref() {
                Root::Channel { .. } => self.fallback(root, name, now),
                Root::Snapshot(_) => Err(FsError::NotFound),
            };
        }
        Ok(Found {
            ino: root.dir_ino(name),
            node: NodeKey::Archive {
                root: root.clone(),
                name: name.into(),
            },
            // dists/ and pool/ (nlink is informative only)
            attr: dir_attr(info.created, 2),
            ttl: IMMUTABLE_TTL,
        })
    }

    fn tree_child(
        &self,
        root: &Arc<Root>,
        snap: &SnapTree,
        dir: u32,
        name: &str,
        now: SystemTime,
    ) -> Result<Found, FsError> {
        if let Some(idx) = snap.tree.lookup(dir, name) {
            return match snap.tree.kind(idx).ok_or(FsError::NotFound)? {
                NodeKind::Dir { subdirs } => Ok(Found {
                    ino: self.tree_ino(root, idx),
                    node: NodeKey::Dir {
                        root: root.clone(),
                        dir: idx,
                    },
                    attr: dir_attr(snap.created, subdirs),
                    ttl: IMMUTABLE_TTL,
                }),
                NodeKind::File(blob) => self.file(blob, IMMUTABLE_TTL),
            };
        }
        match root.as_ref() {
            Root::Channel { .. } => self.fallback(root, &join(&snap.tree.path(dir), name), now),
            Root::Snapshot(_) => Err(FsError::NotFound),
        }
    }

    fn file(&self, blob: Blob, ttl: Duration) -> Result<Found, FsError> {
        let ino = blob_ino(&blob.sha256);
        let known = self.table().get(ino).map(|k| k.attr);
        let attr = match known {
            Some(attr) => attr,
            None => Attr {
                kind: Kind::File,
                size: blob.size,
                mtime: self.catalog.blob_mtime(&blob)?,
                nlink: 1,
            },
        };
        Ok(Found {
            ino,
            node: NodeKey::File(blob),
            attr,
            ttl,
        })
    }

    /// The other snapshots of `root`'s channel that answer for `path`, with
    /// their trees: the channel's current target when `root` is an older
    /// one (a path walk that started before a promotion), then the earlier
    /// targets the fallback rules allow. A snapshot removed meanwhile is
    /// skipped.
    fn fallback_trees(
        &self,
        root: &Root,
        path: &str,
        now: SystemTime,
    ) -> Result<Vec<Arc<SnapTree>>, FsError> {
        let Root::Channel { channel, target } = root else {
            return Ok(Vec::new());
        };
        let Some(view) = self.catalog.channel(channel)? else {
            return Ok(Vec::new());
        };
        let mut ids: Vec<&str> = view.target.as_deref().into_iter().collect();
        ids.extend(view.fallbacks(&self.policy, path, millis(now)));
        let mut out = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if id == target || ids[..i].contains(id) {
                continue;
            }
            match self.catalog.tree(id) {
                Ok(t) => out.push(t),
                Err(e) if !e.is_damage() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn fallback(&self, root: &Arc<Root>, path: &str, now: SystemTime) -> Result<Found, FsError> {
        for snap in self.fallback_trees(root, path, now)? {
            let Some(idx) = snap.tree.resolve(path) else {
                continue;
            };
            return match snap.tree.kind(idx).ok_or(FsError::NotFound)? {
                NodeKind::Dir { subdirs } => Ok(Found {
                    ino: root.dir_ino(path),
                    node: NodeKey::Fallback {
                        root: root.clone(),
                        path: path.into(),
                    },
                    attr: dir_attr(snap.created, subdirs),
                    ttl: FALLBACK_TTL,
                }),
                NodeKind::File(blob) => self.file(blob, FALLBACK_TTL),
            };
        }
        Err(FsError::NotFound)
    }

    /// The names of a directory (without `.` and `..`).
    pub fn list(&self, ino: u64, now: SystemTime) -> Result<Vec<DirEntry>, FsError> {
        match self.node(ino)? {
            NodeKey::Root => Ok(vec![
                DirEntry::new(inodes::SNAPSHOTS, Kind::Dir, "snapshots"),
                DirEntry::new(inodes::CHANNELS, Kind::Dir, "channels"),
            ]),
            NodeKey::Snapshots => Ok(self
                .catalog
                .snapshot_ids()?
                .into_iter()
                .map(|id| {
                    let ino = self.tree_ino(&Arc::new(Root::Snapshot(id.clone())), TREE_ROOT);
                    DirEntry::new(ino, Kind::Dir, &id)
                })
                .collect()),
            NodeKey::Channels => self.list_channels(),
            // A snapshot's root lists its archives: the manifest says
            // which, so `ls snapshots/*/` loads no tree.
            NodeKey::Dir {
                root,
                dir: TREE_ROOT,
            } => {
                let info = self
                    .catalog
                    .snapshot_info(root.snapshot())?
                    .ok_or(FsError::NotFound)?;
                Ok(info
                    .archives
                    .iter()
                    .map(|a| DirEntry::new(root.dir_ino(a), Kind::Dir, a))
                    .collect())
            }
            NodeKey::Archive { root, name } => {
                let snap = self.catalog.tree(root.snapshot())?;
                let dir = snap
                    .tree
                    .lookup(TREE_ROOT, &name)
                    .ok_or(FsError::NotFound)?;
                Ok(list_tree(&snap.tree, dir, |idx, _| {
                    self.tree_ino(&root, idx)
                }))
            }
            NodeKey::Dir { root, dir } => {
                let snap = self.catalog.tree(root.snapshot())?;
                Ok(list_tree(&snap.tree, dir, |idx, _| {
                    self.tree_ino(&root, idx)
                }))
            }
            NodeKey::Fallback { root, path } => {
                for snap in self.fallback_trees(&root, &path, now)? {
                    if let Some(idx) = snap.tree.resolve(&path) {
                        let ino = |_, name: &str| root.dir_ino(&join(&path, name));
                        return Ok(list_tree(&snap.tree, idx, ino));
                    }
                }
                Ok(Vec::new())
            }
            NodeKey::EmptyChannel { .. } => Ok(Vec::new()),
            NodeKey::Link { .. } | NodeKey::File(_) => Err(FsError::NotDir),
        }
    }

    fn list_channels(&self) -> Result<Vec<DirEntry>, FsError> {
        let mut out = Vec::new();
        for (name, view) in self.catalog.channels()? {
            match &view.target {
                Some(target) => {
                    let root = Arc::new(Root::Channel {
                        channel: name.clone(),
                        target: target.clone(),
                    });
                    out.push(DirEntry::new(
                        self.tree_ino(&root, TREE_ROOT),
                        Kind::Dir,
                        &name,
                    ));
                    let link = format!("{name}.snapshot");
                    out.push(DirEntry::new(link_ino(&name, target), Kind::Symlink, &link));
                }
                None => out.push(DirEntry::new(empty_channel_ino(&name), Kind::Dir, &name)),
            }
        }
        Ok(out)
    }
}

/// The children of `dir` in `tree`; `dir_ino(index, name)` numbers the
/// subdirectories as lookup does (files are their blob).
fn list_tree(tree: &DirTree, dir: u32, dir_ino: impl Fn(u32, &str) -> u64) -> Vec<DirEntry> {
    tree.children(dir)
        .filter_map(|idx| {
            let name = tree.name(idx);
            match tree.kind(idx)? {
                NodeKind::Dir { .. } => Some(DirEntry::new(dir_ino(idx, name), Kind::Dir, name)),
                NodeKind::File(blob) => {
                    Some(DirEntry::new(blob_ino(&blob.sha256), Kind::File, name))
                }
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
