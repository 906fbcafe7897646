//! Open file and directory handles.
//!
//! An open file pins its content: it holds either the kernel passthrough
//! backing of the pool blob (the kernel then reads the blob itself) or the
//! blob's open file descriptor. Blobs are never modified and an open
//! descriptor survives `gc` unlinking the blob, so a reader keeps reading
//! what it opened whatever promotions or collections happen meanwhile.
//!
//! The kernel requires one backing id per inode while any handle of it is
//! open: the table keeps a weak map inode -> backing, strong references in
//! the handles, so the backing is closed with the last handle.
//!
//! Directories have no handles: the kernel opens them without asking
//! (`FUSE_NO_OPENDIR_SUPPORT`) and caches their listings.
//!
//! EDGE (file descriptors, fuser's `BackingId`).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use fuser::BackingId;

enum OpenFile {
    /// Reads go to the kernel's backing file; we see none.
    Backed { ino: u64, _backing: Arc<BackingId> },
    /// Reads come to us and are served from the blob.
    Direct(Arc<File>),
}

/// All open handles of the mount.
#[derive(Default)]
pub struct Handles {
    next: AtomicU64,
    files: Mutex<HashMap<u64, OpenFile>>,
    backing: Mutex<HashMap<u64, Weak<BackingId>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is one map operation: never half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handles {
    fn next_fh(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A handle reading through the backing of `ino`: the one its open
    /// handles share, else a new one from `create`. Looked up and created
    /// under one lock: two opens of one inode on two request threads must
    /// not register two backings (the kernel fails the second open with
    /// EIO), and the first open needs the ioctl's answer before the second
    /// can share it.
    pub fn open_backed<E>(
        &self,
        ino: u64,
        create: impl FnOnce() -> Result<BackingId, E>,
    ) -> Result<(u64, Arc<BackingId>), E> {
        let backing = {
            let mut map = lock(&self.backing);
            match map.get(&ino).and_then(Weak::upgrade) {
                Some(shared) => shared,
                None => {
                    let created = Arc::new(create()?);
                    map.insert(ino, Arc::downgrade(&created));
                    created
                }
            }
        };
        let fh = self.next_fh();
        lock(&self.files).insert(
            fh,
            OpenFile::Backed {
                ino,
                _backing: backing.clone(),
            },
        );
        Ok((fh, backing))
    }

    /// A handle whose reads we serve from `file`.
    pub fn open_direct(&self, file: File) -> u64 {
        let fh = self.next_fh();
        lock(&self.files).insert(fh, OpenFile::Direct(Arc::new(file)));
        fh
    }

    /// Reads up to `size` bytes at `offset`; `None` when the handle is not
    /// ours to read (unknown, or served by passthrough).
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Option<io::Result<Vec<u8>>> {
        let file = match lock(&self.files).get(&fh) {
            Some(OpenFile::Direct(f)) => f.clone(),
            _ => return None,
        };
        Some(read_at(&file, offset, size as usize))
    }

    pub fn release(&self, fh: u64) {
        let removed = lock(&self.files).remove(&fh);
        if let Some(OpenFile::Backed { ino, _backing }) = removed {
            drop(_backing);
            let mut backing = lock(&self.backing);
            if backing.get(&ino).is_some_and(|w| w.strong_count() == 0) {
                backing.remove(&ino);
            }
        }
    }

    /// Open file handles (for logs).
    pub fn open_files(&self) -> usize {
        lock(&self.files).len()
    }
}

/// Reads until `size` bytes or end of file.
pub fn read_at(file: &File, offset: u64, size: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size];
    let mut done = 0;
    while done < size {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_handles_read_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        std::fs::write(&p, b"hello world").unwrap();
        let h = Handles::default();
        let fh = h.open_direct(File::open(&p).unwrap());
        // The blob may disappear (gc): the handle still reads it.
        std::fs::remove_file(&p).unwrap();
        assert_eq!(h.read(fh, 6, 100).unwrap().unwrap(), b"world");
        assert_eq!(h.read(fh, 0, 5).unwrap().unwrap(), b"hello");
        assert_eq!(h.read(fh, 50, 5).unwrap().unwrap(), b"");
        h.release(fh);
        assert!(h.read(fh, 0, 1).is_none());
        assert_eq!(h.open_files(), 0);
    }
}
