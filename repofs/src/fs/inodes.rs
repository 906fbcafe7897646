//! Inode numbers and the table of inodes the kernel holds.
//!
//! Numbers are derived, never allocated, so they are the same in every
//! mount of the same store:
//!
//! - a file's number comes from its blob's SHA-256 (top bit set): the same
//!   content is the same inode under every snapshot, channel and path, like
//!   a hard link, so the page cache and the passthrough backing file are
//!   shared, and a channel path whose content changed is a new inode;
//! - a directory of a snapshot tree is its root's id (30 bits, proposed by
//!   a hash of the snapshot, or channel and target) and its index in the
//!   tree (32 bits), bit 62 set: the view decodes it without keeping a
//!   table entry, so a `find` over many trees costs the view nothing per
//!   directory;
//! - other directories and symlinks (archives, fallback directories,
//!   `<c>.snapshot`) are a SHA-256 of what identifies them (bits 63 and 62
//!   clear);
//! - `1`, `2`, `3` are the root, `snapshots/` and `channels/`.
//!
//! Two different nodes could in theory share 63 bits; the table detects it
//! when the second one is looked up ([`Collision`]) instead of serving the
//! wrong content.
//!
//! The table maps the numbers the kernel currently holds to what they are,
//! with the kernel's lookup count, and drops an entry when the kernel
//! forgets it: its size follows the kernel's inode cache, not the store.
//!
//! PURE.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub const ROOT: u64 = 1;
pub const SNAPSHOTS: u64 = 2;
pub const CHANNELS: u64 = 3;
/// Derived numbers below this are moved up, keeping the fixed ones apart.
const FIRST_DERIVED: u64 = 16;
const BLOB_BIT: u64 = 1 << 63;
const TREE_BIT: u64 = 1 << 62;
/// Bits of a root id.
pub const ROOT_ID_MASK: u32 = (1 << 30) - 1;

/// The inode number of a file holding this blob.
pub fn blob_ino(sha256: &[u8; 32]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&sha256[..8]);
    u64::from_be_bytes(first) | BLOB_BIT
}

/// The inode number of a directory or symlink identified by `parts`
/// (length-prefixed, so `["ab", "c"]` and `["a", "bc"]` differ).
pub fn derived_ino(parts: &[&str]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(first) & !(BLOB_BIT | TREE_BIT);
    if n < FIRST_DERIVED {
        n + FIRST_DERIVED
    } else {
        n
    }
}

/// The inode number of directory `dir` (its index in the tree) of the
/// tree whose root has id `root`.
pub fn tree_dir_ino(root: u32, dir: u32) -> u64 {
    TREE_BIT | (u64::from(root & ROOT_ID_MASK) << 32) | u64::from(dir)
}

/// The root id and directory index of a tree directory's inode number.
pub fn decode_tree_dir(ino: u64) -> Option<(u32, u32)> {
    let root = u32::try_from((ino >> 32) & u64::from(ROOT_ID_MASK)).ok()?;
    let dir = u32::try_from(ino & u64::from(u32::MAX)).ok()?;
    (ino & (BLOB_BIT | TREE_BIT) == TREE_BIT).then_some((root, dir))
}

/// Ids of tree roots. A root gets the id its hash proposes, or the next
/// free one when another root holds it. Roots are few (snapshots, and
/// channel/target pairs) and kept for the life of the mount, so an inode
/// number given to the kernel always decodes.
#[derive(Debug)]
pub struct RootIds<T> {
    by_id: HashMap<u32, Arc<T>>,
    ids: HashMap<Arc<T>, u32>,
}

impl<T> Default for RootIds<T> {
    fn default() -> Self {
        Self {
            by_id: HashMap::new(),
            ids: HashMap::new(),
        }
    }
}

impl<T: Eq + Hash> RootIds<T> {
    /// The id of `root`, assigning one (from `proposed`) on first sight.
    pub fn intern(&mut self, root: &Arc<T>, proposed: u32) -> u32 {
        if let Some(id) = self.ids.get(root) {
            return *id;
        }
        let mut id = proposed & ROOT_ID_MASK;
        while self.by_id.contains_key(&id) {
            id = (id + 1) & ROOT_ID_MASK;
        }
        self.by_id.insert(id, root.clone());
        self.ids.insert(root.clone(), id);
        id
    }

    pub fn get(&self, id: u32) -> Option<Arc<T>> {
        self.by_id.get(&id).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Two different nodes derived the same inode number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inode number {ino:#x} of {new} is already used by {existing}")]
pub struct Collision {
    pub ino: u64,
    pub existing: String,
    pub new: String,
}

#[derive(Debug)]
struct Slot<N> {
    node: N,
    /// How many lookups the kernel has not forgotten yet.
    nlookup: u64,
}

/// Inode number -> node, for the inodes the kernel holds.
#[derive(Debug)]
pub struct InodeTable<N> {
    slots: HashMap<u64, Slot<N>>,
}

impl<N> Default for InodeTable<N> {
    fn default() -> Self {
        Self {
            slots: HashMap::new(),
        }
    }
}

impl<N: PartialEq + std::fmt::Debug> InodeTable<N> {
    /// Records one lookup of `ino` (the kernel now holds one more
    /// reference); the node must be the one already recorded, if any.
    pub fn remember(&mut self, ino: u64, node: N) -> Result<(), Collision> {
        match self.slots.get_mut(&ino) {
            Some(slot) if slot.node == node => {
                slot.nlookup += 1;
                Ok(())
            }
            Some(slot) => Err(Collision {
                ino,
                existing: format!("{:?}", slot.node),
                new: format!("{node:?}"),
            }),
            None => {
                self.slots.insert(ino, Slot { node, nlookup: 1 });
                Ok(())
            }
        }
    }

    /// The kernel dropped `n` references.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if let Some(slot) = self.slots.get_mut(&ino) {
            slot.nlookup = slot.nlookup.saturating_sub(n);
            if slot.nlookup == 0 {
                self.slots.remove(&ino);
            }
        }
    }

    pub fn get(&self, ino: u64) -> Option<&N> {
        self.slots.get(&ino).map(|s| &s.node)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_kept_apart() {
        let sha = [0xab; 32];
        assert_eq!(blob_ino(&sha), 0xabab_abab_abab_abab | BLOB_BIT);
        let d = derived_ino(&["dir", "s", "20261127T025247.123Z", "rustedhalo/pool"]);
        assert_eq!(
            d,
            derived_ino(&["dir", "s", "20261127T025247.123Z", "rustedhalo/pool"])
        );
        assert_eq!(d & (BLOB_BIT | TREE_BIT), 0);
        assert!(d >= FIRST_DERIVED);
        assert_ne!(derived_ino(&["ab", "c"]), derived_ino(&["a", "bc"]));
        assert_ne!(blob_ino(&[0; 32]), ROOT);
    }

    #[test]
    fn tree_directories_decode_and_stay_apart() {
        let ino = tree_dir_ino(7, 42);
        assert_eq!(decode_tree_dir(ino), Some((7, 42)));
        assert_eq!(decode_tree_dir(blob_ino(&[0xff; 32])), None);
        assert_eq!(decode_tree_dir(derived_ino(&["x"])), None);
        assert_eq!(decode_tree_dir(ROOT), None);
        assert_eq!(
            decode_tree_dir(tree_dir_ino(ROOT_ID_MASK, u32::MAX)),
            Some((ROOT_ID_MASK, u32::MAX))
        );
    }

    #[test]
    fn colliding_roots_get_distinct_ids() {
        let mut ids = RootIds::default();
        let (a, b) = (Arc::new("a"), Arc::new("b"));
        assert_eq!(ids.intern(&a, 5), 5);
        assert_eq!(ids.intern(&b, 5), 6);
        assert_eq!(ids.intern(&Arc::new("a"), 9), 5);
        assert_eq!(ids.get(6).as_deref(), Some(&"b"));
        assert_eq!(ids.intern(&Arc::new("c"), ROOT_ID_MASK), ROOT_ID_MASK);
        assert_eq!(ids.intern(&Arc::new("d"), ROOT_ID_MASK), 0);
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn lookups_are_counted_until_forgotten() {
        let mut t = InodeTable::default();
        t.remember(10, "a").unwrap();
        t.remember(10, "a").unwrap();
        t.forget(10, 1);
        assert_eq!(t.get(10), Some(&"a"));
        t.forget(10, 1);
        assert_eq!(t.get(10), None);
        assert!(t.is_empty());
        t.forget(99, 5); // unknown: ignored
    }

    #[test]
    fn a_collision_is_refused() {
        let mut t = InodeTable::default();
        t.remember(10, "a").unwrap();
        let err = t.remember(10, "b").unwrap_err();
        assert_eq!(err.ino, 10);
        assert_eq!(t.get(10), Some(&"a"));
    }
}
