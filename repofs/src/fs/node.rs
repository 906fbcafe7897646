//! The vocabulary of the view: what an inode is ([`NodeKey`]), whose tree
//! a directory belongs to ([`Root`]), the attributes and cache lifetimes
//! the kernel gets, and the [`Catalog`] the view reads the store through.
//!
//! PURE: types and the small functions that derive inode numbers and
//! attributes from them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::channel::ChannelView;
use super::dirtree::{Blob, DirTree};
use super::errno::FsError;
use super::inodes::derived_ino;

/// Entries and attributes that never change (snapshot trees, blobs).
pub const IMMUTABLE_TTL: Duration = Duration::from_secs(24 * 3600);
/// `snapshots/<id>`: `gc` may remove it.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(1);
/// `channels/<c>` and `<c>.snapshot`: a promotion must show at once.
pub const CHANNEL_TTL: Duration = Duration::ZERO;
/// Names served from an earlier target of a channel.
pub const FALLBACK_TTL: Duration = Duration::from_secs(1);
/// Attributes of the three top directories.
pub const TOP_TTL: Duration = Duration::from_secs(1);

/// A snapshot's tree, ready to serve.
#[derive(Debug)]
pub struct SnapTree {
    pub created: SystemTime,
    pub tree: DirTree,
}

/// What the view needs to know of a snapshot without loading its tree
/// (its manifest is a few kilobytes; its tree can be megabytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub created: SystemTime,
    /// Archive names, sorted: the listing of `snapshots/<id>/`.
    pub archives: Arc<[String]>,
}

impl SnapshotInfo {
    pub(super) fn root_attr(&self) -> Attr {
        dir_attr(
            self.created,
            u32::try_from(self.archives.len()).unwrap_or(u32::MAX),
        )
    }
}

/// The store as the view reads it. Implementations cache; the view never
/// writes.
pub trait Catalog: Send + Sync {
    /// Snapshot ids, oldest first.
    fn snapshot_ids(&self) -> Result<Vec<String>, FsError>;
    /// `None` when there is no such snapshot (any more).
    fn snapshot_info(&self, id: &str) -> Result<Option<SnapshotInfo>, FsError>;
    fn tree(&self, id: &str) -> Result<Arc<SnapTree>, FsError>;
    /// Every channel, by name.
    fn channels(&self) -> Result<Vec<(String, Arc<ChannelView>)>, FsError>;
    /// The channel as it is now; `None` when there is no such channel.
    fn channel(&self, name: &str) -> Result<Option<Arc<ChannelView>>, FsError>;
    fn blob_mtime(&self, blob: &Blob) -> Result<SystemTime, FsError>;
    /// The time of a top directory: it changes whenever its listing may
    /// have (the kernel drops a cached listing when the mtime moves).
    fn top_mtime(&self, dir: Top) -> SystemTime;
}

/// The directories above the snapshot trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Top {
    Root,
    Snapshots,
    Channels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// Attributes the kernel sees (mode, owner and block counts are added by
/// the adapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub kind: Kind,
    pub size: u64,
    pub mtime: SystemTime,
    pub nlink: u32,
}

pub(super) fn dir_attr(mtime: SystemTime, subdirs: u32) -> Attr {
    Attr {
        kind: Kind::Dir,
        size: 0,
        mtime,
        nlink: subdirs.saturating_add(2),
    }
}

/// Whose tree a directory belongs to.
#[derive(Debug, PartialEq, Eq, Hash)]
pub enum Root {
    Snapshot(String),
    /// A channel while it points at `target`.
    Channel {
        channel: String,
        target: String,
    },
}

impl Root {
    /// The snapshot whose tree this is.
    pub fn snapshot(&self) -> &str {
        match self {
            Root::Snapshot(id) => id,
            Root::Channel { target, .. } => target,
        }
    }

    /// The root id this root proposes (see [`super::inodes::RootIds`]).
    pub(super) fn proposed_id(&self) -> u32 {
        let h = match self {
            Root::Snapshot(id) => derived_ino(&["root", "snapshot", id]),
            Root::Channel { channel, target } => derived_ino(&["root", "channel", channel, target]),
        };
        (h & u64::from(super::inodes::ROOT_ID_MASK)) as u32
    }

    /// The inode number of a directory of this root that is not a tree
    /// directory (an archive, a fallback directory), by path.
    pub(super) fn dir_ino(&self, path: &str) -> u64 {
        match self {
            Root::Snapshot(id) => derived_ino(&["dir", "snapshot", id, path]),
            Root::Channel { channel, target } => {
                derived_ino(&["dir", "channel", channel, target, path])
            }
        }
    }
}

/// What an inode is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKey {
    Root,
    Snapshots,
    Channels,
    /// A directory of `root`'s snapshot tree (index into its [`DirTree`]).
    /// Index 0, the snapshot's root, is answered from the manifest.
    Dir {
        root: Arc<Root>,
        dir: u32,
    },
    /// `<root>/<archive>`: named, so that looking it up or listing its
    /// parent loads no tree; the tree loads when a name inside is asked.
    Archive {
        root: Arc<Root>,
        name: Arc<str>,
    },
    /// A channel directory that only an earlier target of the channel has.
    Fallback {
        root: Arc<Root>,
        path: Arc<str>,
    },
    /// `channels/<c>` of a channel that points at nothing yet.
    EmptyChannel {
        channel: Arc<str>,
    },
    /// `channels/<c>.snapshot`.
    Link {
        channel: Arc<str>,
        target: Arc<str>,
    },
    File(Blob),
}

/// A table slot: the node and the attributes given at lookup.
#[derive(Debug, Clone)]
pub(super) struct Known {
    pub(super) node: NodeKey,
    pub(super) attr: Attr,
}

impl PartialEq for Known {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

/// A successful lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ino: u64,
    pub attr: Attr,
    /// How long the kernel may keep the name -> inode entry.
    pub ttl: Duration,
    /// How long it may keep the attributes (shorter for the top
    /// directories, whose mtime tells the kernel to drop a cached listing).
    pub attr_ttl: Duration,
}

/// One name of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub kind: Kind,
    pub name: String,
}

impl DirEntry {
    pub(super) fn new(ino: u64, kind: Kind, name: &str) -> Self {
        Self {
            ino,
            kind,
            name: name.to_string(),
        }
    }
}

pub(super) struct Found {
    pub(super) ino: u64,
    pub(super) node: NodeKey,
    pub(super) attr: Attr,
    pub(super) ttl: Duration,
}

pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

pub(super) fn link_text(target: &str) -> String {
    format!("../snapshots/{target}")
}

pub(super) fn link_ino(channel: &str, target: &str) -> u64 {
    derived_ino(&["link", channel, target])
}

pub(super) fn empty_channel_ino(channel: &str) -> u64 {
    derived_ino(&["empty-channel", channel])
}

pub(super) fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
