//! The errors of the FUSE view and the one place they become errno values.
//!
//! A missing name is `ENOENT`; anything that would change the tree is
//! `EROFS`; a damaged store or an impossible state is `EIO`, which the
//! adapter also logs as an error naming what failed: an operator must act.

use fuser::Errno;

use crate::store;

use super::dirtree::BadTree;
use super::inodes::Collision;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("read-only file system")]
    ReadOnly,
    /// The kernel named an inode we never gave it (or it forgot it).
    #[error("unknown inode {0:#x}")]
    UnknownInode(u64),
    #[error(transparent)]
    Collision(#[from] Collision),
    /// A blob a live snapshot names is not in the pool.
    #[error("blob {sha256} is missing from the pool")]
    MissingBlob { sha256: String },
    #[error("snapshot {snapshot}")]
    Tree {
        snapshot: String,
        #[source]
        source: BadTree,
    },
    #[error("{context}")]
    Store {
        context: String,
        #[source]
        source: Box<store::Error>,
    },
}

impl FsError {
    pub fn store(context: impl Into<String>, source: store::Error) -> Self {
        FsError::Store {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// The errno the caller sees.
    pub fn errno(&self) -> Errno {
        match self {
            FsError::NotFound | FsError::UnknownInode(_) => Errno::ENOENT,
            FsError::NotDir => Errno::ENOTDIR,
            FsError::IsDir => Errno::EISDIR,
            FsError::ReadOnly => Errno::EROFS,
            FsError::Store { source, .. } => store_errno(source),
            FsError::Collision(_) | FsError::Tree { .. } | FsError::MissingBlob { .. } => {
                Errno::EIO
            }
        }
    }

    /// True when the store is damaged or the view is broken: worth an
    /// `error!` (as opposed to a name that is simply not there).
    pub fn is_damage(&self) -> bool {
        self.errno() == Errno::EIO
    }
}

fn store_errno(e: &store::Error) -> Errno {
    match e {
        // gc removed a snapshot, or a channel was never created
        store::Error::UnknownSnapshot(_)
        | store::Error::UnknownChannel(_)
        | store::Error::EmptyChannel(_) => Errno::ENOENT,
        store::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => Errno::ENOENT,
        _ => Errno::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_errno_callers_expect() {
        assert_eq!(FsError::NotFound.errno(), Errno::ENOENT);
        assert_eq!(FsError::ReadOnly.errno(), Errno::EROFS);
        assert_eq!(FsError::NotDir.errno(), Errno::ENOTDIR);
        let gone = FsError::store("x", store::Error::UnknownSnapshot("s".into()));
        assert_eq!(gone.errno(), Errno::ENOENT);
        assert!(!gone.is_damage());
        let corrupt = FsError::store(
            "x",
            store::Error::Corrupt {
                path: "p".into(),
                reason: "r".into(),
            },
        );
        assert_eq!(corrupt.errno(), Errno::EIO);
        assert!(corrupt.is_damage());
    }
}
