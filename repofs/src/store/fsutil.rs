//! The only write path of the store: every file reaches its final name by
//! temp file, fsync, rename, fsync of the directory, so a crash at any
//! instant leaves either the old file or the new one, never a torn one.
//!
//! Batches (a thousand packages in one import) avoid a fsync per file: the
//! pool writes every temp file, `syncfs` makes their data durable at once,
//! renames them, and a second `syncfs` makes the names durable before the
//! state that refers to them is committed.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use fs_err as fs;

/// A temp file in `tmp_dir` that is removed unless persisted.
pub struct TempFile {
    path: PathBuf,
    file: Option<fs::File>,
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// This process's id, asked once: a temp name a blob took a `getpid` each
/// (no process forks and goes on writing the store: a child execs).
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

impl TempFile {
    pub fn new(tmp_dir: &Path) -> io::Result<Self> {
        Self::with_mode(tmp_dir, 0o644)
    }

    /// A temp file created with `mode` (pool blobs are born read-only,
    /// which saves a chmod per blob).
    pub fn with_mode(tmp_dir: &Path, mode: u32) -> io::Result<Self> {
        Self::open(tmp_dir, mode, false)
    }

    /// Opened for reading too (a file that is mapped to be written).
    pub fn read_write(tmp_dir: &Path, mode: u32) -> io::Result<Self> {
        Self::open(tmp_dir, mode, true)
    }

    fn open(tmp_dir: &Path, mode: u32, read: bool) -> io::Result<Self> {
        use fs_err::os::unix::fs::OpenOptionsExt;
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = tmp_dir.join(format!("{}.{}.tmp", pid(), n));
        let file = fs::OpenOptions::new()
            .read(read)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?;
        Ok(Self {
            path,
            file: Some(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&mut self) -> &mut fs::File {
        // invariant: `file` is only taken by `persist`/`close`, which consume self.
        self.file.as_mut().unwrap_or_else(|| unreachable!())
    }

    /// Closes the file without syncing; the caller syncs in bulk (`syncfs`)
    /// before renaming. Returns the temp path, still owned by the guard.
    pub fn close(mut self) -> io::Result<ClosedTemp> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
        }
        let path = std::mem::take(&mut self.path);
        Ok(ClosedTemp { path })
    }

    /// fsync, rename over `dest`, fsync the directory of `dest`.
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        let path = std::mem::take(&mut self.path);
        fs::rename(&path, dest)?;
        sync_parent(dest)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A closed, unsynced temp file waiting for a bulk sync and rename.
pub struct ClosedTemp {
    path: PathBuf,
}

impl ClosedTemp {
    /// Makes the file's data durable (before it is renamed into place).
    pub fn sync_data(&self) -> io::Result<()> {
        fs::File::open(&self.path)?.sync_data()
    }

    /// Renames into place without syncing (the caller syncs the file system
    /// afterwards).
    pub fn rename_to(mut self, dest: &Path) -> io::Result<()> {
        let path = std::mem::take(&mut self.path);
        fs::rename(path, dest)
    }

    /// Puts the file in place as [`ClosedTemp::rename_to`] does, by a hard
    /// link and the removal of the temp name: unlike renames between two
    /// directories, links into different directories run in parallel. A
    /// file already at `dest` is replaced (a damaged blob being repaired),
    /// and a file system without hard links gets the rename. A temp name
    /// left by a crash in between is a temp file like any other.
    pub fn link_to(self, dest: &Path) -> io::Result<()> {
        match std::fs::hard_link(&self.path, dest) {
            Ok(()) => Ok(()), // dropping `self` removes the temp name
            Err(_) => self.rename_to(dest),
        }
    }
}

impl ClosedTemp {
    /// `src` hard-linked under a temp name in `tmp_dir`: a file adopted
    /// rather than copied (same file system only; the caller falls back to
    /// a copy on any error).
    pub fn link_from(src: &Path, tmp_dir: &Path) -> io::Result<Self> {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = tmp_dir.join(format!("{}.{}.tmp", pid(), n));
        std::fs::hard_link(src, &path)?;
        Ok(Self { path })
    }
}

impl Drop for ClosedTemp {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `data` to `dest` atomically and durably.
pub fn write_atomic(tmp_dir: &Path, dest: &Path, data: &[u8]) -> io::Result<()> {
    let mut t = TempFile::new(tmp_dir)?;
    t.file().write_all(data)?;
    t.persist(dest)
}

/// Like [`write_atomic`], for secrets: the file is created 0600, so no
/// other user can read it at any instant, even if the writer dies before
/// the rename (the temp file then lies in `tmp/`, also 0600).
pub fn write_atomic_private(tmp_dir: &Path, dest: &Path, data: &[u8]) -> io::Result<()> {
    let mut t = TempFile::with_mode(tmp_dir, 0o600)?;
    t.file().write_all(data)?;
    t.persist(dest)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// Creates a directory (and its parents) and makes the new entries durable.
pub fn create_dir_synced(dir: &Path) -> io::Result<()> {
    // The parent of a bare relative name (`store`) is the empty path: the
    // current directory, which exists.
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_synced(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_parent(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Appends one line and fsyncs: the history files' only write.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let existed = path.exists();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    f.write_all(line.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    if !existed {
        sync_parent(path)?;
    }
    Ok(())
}

/// Cuts a file to `len` bytes durably (drops a crashed writer's tail).
pub fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let f = fs::OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

pub fn remove_file(path: &Path) -> io::Result<()> {
    fs::remove_file(path)
}

/// Flushes every dirty page and inode of the file system holding `dir`:
/// one call instead of a fsync per file in a batch.
#[allow(unsafe_code)]
pub fn syncfs(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(dir)?;
    // SAFETY: syncfs takes a valid open descriptor, which `f` holds for
    // the duration of the call; it touches no memory of ours.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts writing `file`'s dirty pages to disk without waiting: the sync
/// that must come before its rename then finds them written, or nearly.
/// A snapshot calls it on a large index as soon as the index is complete,
/// so the disk works while the index is hashed and compressed.
#[allow(unsafe_code)]
pub fn start_writeback(file: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range takes a valid open descriptor, which `file`
    // holds for the duration of the call; it touches no memory of ours.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_files_vanish_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let t = TempFile::new(dir.path()).unwrap();
        let p = t.path().to_path_buf();
        assert!(p.exists());
        drop(t);
        assert!(!p.exists());
        write_atomic(dir.path(), &dir.path().join("x"), b"1").unwrap();
        assert_eq!(fs::read(dir.path().join("x")).unwrap(), b"1");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        syncfs(dir.path()).unwrap();
    }

    #[test]
    fn a_bare_relative_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a");
        create_dir_synced(&sub).unwrap();
        assert!(sub.is_dir());
        // "store" has the parent "": nothing to create there.
        create_dir_synced(Path::new("")).unwrap();
    }

    #[test]
    fn private_files_are_never_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let t = TempFile::with_mode(dir.path(), 0o600).unwrap();
        // The temp file itself, before any rename, is already private.
        let mode = fs::metadata(t.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        drop(t);
        let dest = dir.path().join("secret");
        write_atomic_private(dir.path(), &dest, b"k").unwrap();
        let mode = fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
