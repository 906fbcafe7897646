//! The filesystem the kernel talks to ([`RepoFs`]): its state and the
//! helpers its callbacks ([`super::callbacks`]) delegate to, converting
//! between fuser's types and the view's.
//!
//! EDGE: owns the open-file table and the pool descriptors; the decisions
//! (names, listings, attributes, lifetimes) are the view's.

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    BackingId, Errno, FileAttr, FileType, Generation, INodeNo, OpenAccMode, OpenFlags,
    ReplyDirectory, ReplyDirectoryPlus, ReplyOpen,
};

use super::cache::Lru;
use super::catalog::{Evicted, StoreCatalog};
use super::errno::FsError;
use super::handles::{self, Handles};
use super::inodes;
use super::options::MountOptions;
use super::view::{Attr, DirEntry, Kind, View};
use crate::store::{Pool, Store};

/// The filesystem the kernel talks to.
pub struct RepoFs {
    pub(super) view: View<StoreCatalog>,
    pub(super) handles: Handles,
    pub(super) pool: Pool,
    /// Owner shown on every node: the owner of the store directory.
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// Directory listings being read, by inode (a large directory takes
    /// several readdir calls); dropped when a reading ends.
    pub(super) listings: Lru<u64, Arc<[DirEntry]>>,
    /// The kernel opens directories without asking us.
    pub(super) no_opendir: bool,
    /// Passthrough requested by the options.
    pub(super) want_passthrough: bool,
    /// Passthrough granted by the kernel and not refused since.
    pub(super) passthrough: Arc<AtomicBool>,
}

pub(super) enum Opened {
    Passthrough(u64, Arc<BackingId>),
    Direct(u64),
}

/// Why an open could not get a passthrough backing.
enum NoBacking {
    /// The blob itself cannot be opened.
    Blob(FsError),
    /// The kernel refused the backing: serve this file ourselves.
    Refused(io::Error, std::fs::File),
}

impl RepoFs {
    /// `evicted`: where the catalog reports snapshot trees it dropped
    /// (see [`spawn_invalidator`]).
    pub fn new(
        store: Store,
        opts: &MountOptions,
        evicted: Option<Sender<Evicted>>,
    ) -> io::Result<Self> {
        let meta = fs_err::metadata(store.root())?;
        let pool = store.pool();
        Ok(Self {
            view: View::new(StoreCatalog::new(store, opts.trees, evicted), opts.fallback),
            handles: Handles::default(),
            listings: Lru::new(
                std::num::NonZeroUsize::new(16).unwrap_or(std::num::NonZeroUsize::MIN),
            ),
            no_opendir: false,
            pool,
            uid: meta.uid(),
            gid: meta.gid(),
            want_passthrough: opts.passthrough,
            passthrough: Arc::new(AtomicBool::new(false)),
        })
    }

    /// True once the kernel granted passthrough.
    pub fn passthrough(&self) -> bool {
        self.passthrough.load(Ordering::Relaxed)
    }

    pub(super) fn attr(&self, ino: u64, a: &Attr) -> FileAttr {
        let (kind, perm) = match a.kind {
            Kind::Dir => (FileType::Directory, 0o555),
            Kind::File => (FileType::RegularFile, 0o444),
            Kind::Symlink => (FileType::Symlink, 0o777),
        };
        FileAttr {
            ino: INodeNo(ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: a.mtime,
            mtime: a.mtime,
            ctime: a.mtime,
            crtime: a.mtime,
            kind,
            perm,
            nlink: a.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// The errno for `err`, logging damage as an error an operator must see.
    pub(super) fn fail(&self, op: &str, ino: u64, err: FsError) -> Errno {
        if err.is_damage() {
            tracing::error!(op, ino, "{err}");
        } else {
            tracing::debug!(op, ino, "{err}");
        }
        err.errno()
    }

    pub(super) fn open_blob(
        &self,
        ino: u64,
        flags: OpenFlags,
        reply: &ReplyOpen,
    ) -> Result<Opened, FsError> {
        if flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
            return Err(FsError::ReadOnly);
        }
        let blob = self.view.blob(ino)?;
        let open_blob = || match self.pool.open(&blob.hex()) {
            Ok(f) => Ok(f.into_parts().0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(FsError::MissingBlob { sha256: blob.hex() })
            }
            Err(e) => Err(FsError::store(format!("blob {}", blob.hex()), e.into())),
        };
        if self.passthrough() {
            let opened = self.handles.open_backed(ino, || {
                let file = open_blob().map_err(NoBacking::Blob)?;
                reply
                    .open_backing(&file)
                    .map_err(|e| NoBacking::Refused(e, file))
            });
            match opened {
                Ok((fh, backing)) => return Ok(Opened::Passthrough(fh, backing)),
                Err(NoBacking::Blob(e)) => return Err(e),
                Err(NoBacking::Refused(e, file)) => {
                    tracing::warn!("kernel refused a passthrough backing file ({e}); serving reads ourselves from now on");
                    self.passthrough.store(false, Ordering::Relaxed);
                    return Ok(Opened::Direct(self.handles.open_direct(file)));
                }
            }
        }
        Ok(Opened::Direct(self.handles.open_direct(open_blob()?)))
    }

    /// The listing of directory `ino`: computed afresh when a reading
    /// starts (offset 0), reused for the following calls of that reading.
    pub(super) fn listing(&self, ino: u64, offset: u64) -> Result<Arc<[DirEntry]>, FsError> {
        if offset > 0 {
            if let Some(l) = self.listings.get(&ino) {
                return Ok(l);
            }
        }
        let listing: Arc<[DirEntry]> = self.view.list(ino, SystemTime::now())?.into();
        self.listings.put(ino, listing.clone());
        Ok(listing)
    }

    pub(super) fn fill_dir(
        &self,
        ino: u64,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> Result<(), FsError> {
        let entries = self.listing(ino, offset)?;
        let mut sent = 0;
        for (i, (child, kind, name)) in with_dots(ino, &entries).skip(offset as usize) {
            if reply.add(INodeNo(child), i + 1, file_type(kind), name) {
                break;
            }
            sent += 1;
        }
        self.done_listing(ino, sent);
        Ok(())
    }

    /// Every entry sent counts as a lookup the kernel will forget later
    /// (except `.` and `..`), so each goes through [`View::lookup`].
    pub(super) fn fill_dir_plus(
        &self,
        ino: u64,
        offset: u64,
        reply: &mut ReplyDirectoryPlus,
    ) -> Result<(), FsError> {
        let entries = self.listing(ino, offset)?;
        let (dir, dir_ttl) = self.view.getattr(ino)?;
        let now = SystemTime::now();
        let mut sent = 0;
        for (i, (child, _, name)) in with_dots(ino, &entries).skip(offset as usize) {
            let (e, ttl) = if i < 2 {
                ((child, dir), dir_ttl)
            } else {
                let Ok(e) = self.view.lookup(ino, name, now) else {
                    continue; // gone since it was listed (gc)
                };
                ((e.ino, e.attr), e.ttl.min(e.attr_ttl))
            };
            if reply.add(
                INodeNo(e.0),
                i + 1,
                name,
                &ttl,
                &self.attr(e.0, &e.1),
                Generation(0),
            ) {
                if i >= 2 {
                    self.view.forget(e.0, 1); // not sent: not held by the kernel
                }
                break;
            }
            sent += 1;
        }
        self.done_listing(ino, sent);
        Ok(())
    }

    /// A readdir call that sent nothing marks the end of a reading: its
    /// listing is dropped (so the cache holds only readings in progress).
    pub(super) fn done_listing(&self, ino: u64, sent: usize) {
        if sent == 0 {
            self.listings.remove(&ino);
        }
    }

    pub(super) fn read_blob(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, FsError> {
        if let Some(read) = self.handles.read(fh, offset, size) {
            return read.map_err(|e| FsError::store(format!("read of inode {ino:#x}"), e.into()));
        }
        // A passthrough handle should see no reads; serve one anyway.
        let blob = self.view.blob(ino)?;
        let file = self
            .pool
            .open(&blob.hex())
            .map_err(|_| FsError::MissingBlob { sha256: blob.hex() })?;
        handles::read_at(file.file(), offset, size as usize)
            .map_err(|e| FsError::store(format!("blob {}", blob.hex()), e.into()))
    }
}

pub(super) fn name(name: &OsStr) -> Result<&str, FsError> {
    name.to_str().ok_or(FsError::NotFound)
}

/// `.`, `..` and the entries, numbered from 0 (an entry's readdir offset
/// is its number plus one).
pub(super) fn with_dots<'a>(
    ino: u64,
    entries: &'a [DirEntry],
) -> impl Iterator<Item = (u64, (u64, Kind, &'a str))> + 'a {
    [(ino, Kind::Dir, "."), (inodes::ROOT, Kind::Dir, "..")]
        .into_iter()
        .chain(entries.iter().map(|e| (e.ino, e.kind, e.name.as_str())))
        .enumerate()
        .map(|(i, e)| (i as u64, e))
}

pub(super) fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
    }
}
