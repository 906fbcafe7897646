//! The content-addressed pool: `pool/<first two hex>/<sha256>`, one file
//! per distinct content, read-only once written.
//!
//! Writes go through a [`Batch`]: content is streamed into temp files while
//! hashed, then `commit` makes the data durable, renames each temp file to
//! its hash (dropping duplicates) and makes the names durable. Only then
//! may state that refers to the blobs be committed.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use fs_err as fs;

use super::fsutil::{self, ClosedTemp, TempFile};
use crate::hash::{self, Digests, HashingWriter};

#[derive(Debug, Clone)]
pub struct Pool {
    dir: PathBuf,
    tmp: PathBuf,
}

impl Pool {
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        Self { dir, tmp }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with this hash lives (whether or not it exists).
    pub fn path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("__");
        self.dir.join(prefix).join(sha256)
    }

    /// True when a blob of this hash and size is present. A blob of the
    /// wrong size (a torn write on a file system that lost data) counts as
    /// absent, so the next write replaces it.
    pub fn has(&self, sha256: &str, size: u64) -> bool {
        fs::metadata(self.path(sha256)).is_ok_and(|m| m.len() == size)
    }

    /// The pool directory held open, for many questions about blobs: names
    /// are resolved from it instead of from `/`, without an allocation (a
    /// mirror of Debian's main asks 63,000 times per update; the mount asks
    /// for every file it shows). `None` when the directory cannot be
    /// opened (then use the methods of [`Pool`]).
    pub fn open_dir(&self) -> Option<PoolDir> {
        let dir = rustix::fs::open(
            &self.dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        Some(PoolDir { dir })
    }

    pub fn read(&self, sha256: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(sha256))
    }

    /// The blob mapped into memory, for large blobs read whole (a component
    /// state, the previous snapshot's indices): no copy into anonymous
    /// memory, whose pages a 40 MB read faults in and the process's exit
    /// frees again.
    pub fn map(&self, sha256: &str) -> io::Result<Mapped> {
        let file = self.open(sha256)?;
        if file.metadata()?.len() == 0 {
            return Ok(Mapped(None)); // an empty mapping is an error
        }
        // SAFETY: a committed pool blob is never written again: it is named
        // by its content, created read-only and only ever replaced by
        // rename or removed, neither of which touches a mapping. Only an
        // outside writer that truncates the file in place could fault the
        // reads, and it would have broken the store already.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().populate().map(file.file())? };
        Ok(Mapped(Some(map)))
    }

    pub fn open(&self, sha256: &str) -> io::Result<fs::File> {
        fs::File::open(self.path(sha256))
    }

    /// A writer for one blob whose bytes arrive piecemeal (a download):
    /// hashes while writing into a temp file; hand the finished blob to
    /// [`Batch::add_finished`]. Independent of any batch, so many downloads
    /// can write at once and one batch collects them.
    pub fn blob_writer(&self) -> io::Result<BlobWriter> {
        Ok(BlobWriter {
            tmp: self.shared_temp()?,
            hasher: hash::Hasher::new(),
        })
    }

    /// Bytes already in memory and hashed, written to a temp file for
    /// [`Batch::add_finished`]; like [`Pool::blob_writer`], usable from
    /// many threads at once.
    pub fn write_blob(&self, data: &[u8], digests: Digests) -> io::Result<FinishedBlob> {
        let mut tmp = self.shared_temp()?;
        tmp.file().write_all(data)?;
        Ok(FinishedBlob {
            tmp: tmp.close()?,
            digests,
        })
    }

    /// `file` linked into the pool's temp directory instead of copied,
    /// for [`AdoptedFile::finish`]: `None` when it cannot be (not a
    /// read-only regular file, so someone may still write it; another
    /// file system). The caller gives the file up: nothing may write it
    /// again, and its bytes must be hashed for `finish`.
    pub fn adopt(&self, file: &Path) -> io::Result<Option<AdoptedFile>> {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(file)?;
        if !meta.is_file() || meta.permissions().mode() & 0o222 != 0 {
            return Ok(None);
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.tmp.join(format!("w{:02x}", n % 64));
        let linked = match ClosedTemp::link_from(file, &dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir)?;
                ClosedTemp::link_from(file, &dir)
            }
            other => other,
        };
        match linked {
            Ok(tmp) => Ok(Some(AdoptedFile { tmp })),
            Err(e) => {
                tracing::debug!("cannot link {} into the pool, copying: {e}", file.display());
                Ok(None)
            }
        }
    }

    /// A read-only temp file in one of 64 shards of `tmp/` (one directory
    /// of tens of thousands of files is several times slower on ext4).
    fn shared_temp(&self) -> io::Result<TempFile> {
        self.shared_temp_with(|dir| TempFile::with_mode(dir, 0o444))
    }

    fn shared_temp_with(
        &self,
        create: impl Fn(&Path) -> io::Result<TempFile>,
    ) -> io::Result<TempFile> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.tmp.join(format!("w{:02x}", n % 64));
        match create(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir)?;
                create(&dir)
            }
            other => other,
        }
    }

    /// A temp file of exactly `len` bytes, mapped to be written in place: a
    /// large index is rendered straight into the page cache, with no buffer
    /// of its own and no copy into the file (at 200,000 packages writing
    /// the 108 MB `Packages` from a buffer took 0.3 s here). The blocks are
    /// reserved first, so a full disk is an error now, not a fault while
    /// the mapping is written. Hand it to [`Batch::add_spool`].
    pub fn spool(&self, len: usize) -> io::Result<Spool> {
        let mut tmp = self.shared_temp_with(|dir| TempFile::read_write(dir, 0o444))?;
        let file = tmp.file().file().try_clone()?;
        if len == 0 {
            return Ok(Spool {
                map: None,
                file,
                tmp: tmp.close()?,
            });
        }
        let size = u64::try_from(len).map_err(io::Error::other)?;
        rustix::fs::fallocate(
            tmp.file().file(),
            rustix::fs::FallocateFlags::empty(),
            0,
            size,
        )?;
        // SAFETY: the file was just created (create_new) in the pool's temp
        // area under a name no other process uses, and this process maps it
        // once; nothing else resizes or writes it while the map lives, and
        // its blocks are allocated, so writes through the map cannot fault.
        #[allow(unsafe_code)]
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(len)
                .map_mut(tmp.file().file())?
        };
        Ok(Spool {
            map: Some(map),
            file,
            tmp: tmp.close()?,
        })
    }

    pub fn batch(&self) -> Batch<'_> {
        Batch {
            pool: self,
            pending: Vec::new(),
            queued: HashSet::new(),
            shards: HashSet::new(),
            streamed: 0,
        }
    }

    /// Every blob name present, for fsck and gc.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for prefix in fs::read_dir(&self.dir)? {
            let prefix = prefix?;
            if !prefix.file_type()?.is_dir() {
                out.push(prefix.file_name().to_string_lossy().into_owned());
                continue;
            }
            for blob in fs::read_dir(prefix.path())? {
                out.push(format!(
                    "{}/{}",
                    prefix.file_name().to_string_lossy(),
                    blob?.file_name().to_string_lossy()
                ));
            }
        }
        Ok(out)
    }
}

/// One blob being written; see [`Pool::blob_writer`]. Dropping it removes
/// the temp file.
pub struct BlobWriter {
    tmp: TempFile,
    hasher: hash::Hasher,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.file().write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.file().flush()
    }
}

impl BlobWriter {
    /// Closes the temp file; the digests say what was written.
    pub fn finish(self) -> io::Result<FinishedBlob> {
        Ok(FinishedBlob {
            digests: self.hasher.finish(),
            tmp: self.tmp.close()?,
        })
    }
}

/// A written blob waiting for a batch (temp file removed if dropped).
pub struct FinishedBlob {
    tmp: ClosedTemp,
    digests: Digests,
}

impl FinishedBlob {
    pub fn digests(&self) -> &Digests {
        &self.digests
    }
}

/// A file linked into the pool's temp directory (see [`Pool::adopt`]);
/// the link is removed if dropped.
pub struct AdoptedFile {
    tmp: ClosedTemp,
}

impl AdoptedFile {
    /// The blob, once the caller has hashed the file's bytes.
    pub fn finish(self, digests: Digests) -> FinishedBlob {
        FinishedBlob {
            tmp: self.tmp,
            digests,
        }
    }
}

/// A blob's SHA-256 as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BlobId([u8; 32]);

impl BlobId {
    fn from_hex(sha256: &str) -> io::Result<Self> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(sha256, &mut id).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{sha256:?} is not a SHA-256: {e}"),
            )
        })?;
        Ok(Self(id))
    }
}

/// Blobs being added; nothing is visible under a hash name before `commit`.
pub struct Batch<'p> {
    pool: &'p Pool,
    /// Hashes as bytes, not hex: a 50,000-package import queues 50,000.
    pending: Vec<(BlobId, ClosedTemp)>,
    queued: HashSet<BlobId>,
    /// Shard directories of `tmp/` known to exist: creating thousands of
    /// files in one directory costs several times more on ext4.
    shards: HashSet<String>,
    streamed: u64,
}

impl Batch<'_> {
    /// Streams `reader` into the batch, returning its digests.
    pub fn add_reader<R: Read>(&mut self, mut reader: R) -> io::Result<Digests> {
        self.streamed += 1;
        let shard = format!("{:02x}", self.streamed % 256);
        let mut tmp = self.temp_file(&shard)?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(1 << 16, tmp.file()));
        io::copy(&mut reader, &mut w)?;
        let (mut buf, digests) = w.finish();
        buf.flush()?;
        drop(buf);
        self.queue(digests.sha256.clone(), digests.size, tmp)?;
        Ok(digests)
    }

    /// Adds what `write` produces, streamed to disk while hashed (a
    /// component state of 50,000 packages is never held as one buffer);
    /// returns its SHA-256. Only the blob's name is computed: no index
    /// lists a state, and MD5 and SHA-1 of the 40 MB state of a 50,000
    /// package component were 0.1 s of every import into it.
    pub fn add_with<F>(&mut self, write: F) -> io::Result<String>
    where
        F: FnOnce(&mut dyn Write) -> io::Result<()>,
    {
        self.streamed += 1;
        let shard = format!("{:02x}", self.streamed % 256);
        let mut tmp = self.temp_file(&shard)?;
        let mut w = hash::Sha256Writer::new(io::BufWriter::with_capacity(1 << 16, tmp.file()));
        write(&mut w)?;
        let (mut buf, sha256, size) = w.finish();
        buf.flush()?;
        drop(buf);
        self.queue(sha256.clone(), size, tmp)?;
        Ok(sha256)
    }

    /// Adds bytes already in memory (rendered indices, manifests).
    pub fn add_bytes(&mut self, data: &[u8]) -> io::Result<Digests> {
        self.add_hashed(data, hash::digest(data))
    }

    /// Adds bytes already in memory whose `digests` the caller computed
    /// (the snapshot hashes indices beside their compression).
    pub fn add_hashed(&mut self, data: &[u8], digests: Digests) -> io::Result<Digests> {
        let id = BlobId::from_hex(&digests.sha256)?;
        if self.queued.contains(&id) || self.pool.has(&digests.sha256, digests.size) {
            return Ok(digests);
        }
        let mut tmp = self.temp_file(&digests.sha256[..2])?;
        tmp.file().write_all(data)?;
        self.queued.insert(id);
        self.pending.push((id, tmp.close()?));
        Ok(digests)
    }

    /// Adds a blob rendered into a [`Spool`], whose digests the caller
    /// computed.
    pub fn add_spool(&mut self, spool: Spool, digests: Digests) -> io::Result<Digests> {
        let Spool { map, tmp, .. } = spool;
        drop(map); // the bytes are the file's pages; the commit syncs them
        self.add_finished(FinishedBlob { tmp, digests })
    }

    /// Adds a blob the caller has just found missing from the pool
    /// ([`Pool::has`]), without asking again: an import asked once a
    /// package, beside reading it. Should another writer commit the same
    /// blob meanwhile, the rename replaces it with the same bytes.
    pub fn add_missing(&mut self, blob: FinishedBlob) -> io::Result<Digests> {
        let FinishedBlob { tmp, digests } = blob;
        let id = BlobId::from_hex(&digests.sha256)?;
        if self.queued.insert(id) {
            self.pending.push((id, tmp));
        }
        Ok(digests)
    }

    /// Adds a blob written by a [`BlobWriter`].
    pub fn add_finished(&mut self, blob: FinishedBlob) -> io::Result<Digests> {
        if self.pool.has(&blob.digests.sha256, blob.digests.size) {
            return Ok(blob.digests.clone()); // the temp file goes with `blob`
        }
        self.add_missing(blob)
    }

    /// Number of blobs waiting for `commit`.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    fn temp_file(&mut self, shard: &str) -> io::Result<TempFile> {
        let dir = self.pool.tmp.join(shard);
        if !self.shards.contains(shard) {
            fs::create_dir_all(&dir)?;
            self.shards.insert(shard.to_string());
        }
        match TempFile::with_mode(&dir, 0o444) {
            // gc removes empty shard directories; a writer that does not
            // hold the store lock (a mirror downloading) makes it again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir)?;
                TempFile::with_mode(&dir, 0o444)
            }
            other => other,
        }
    }

    fn queue(&mut self, sha256: String, size: u64, tmp: TempFile) -> io::Result<()> {
        let id = BlobId::from_hex(&sha256)?;
        if self.pool.has(&sha256, size) || !self.queued.insert(id) {
            return Ok(()); // dropping `tmp` removes it
        }
        self.pending.push((id, tmp.close()?));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Makes every added blob durable under its hash name.
    pub fn commit(self) -> io::Result<()> {
        use rayon::prelude::*;
        if self.pending.is_empty() {
            return Ok(());
        }
        let small = self.pending.len() <= SYNC_FILES_UP_TO;
        if small {
            self.pending
                .par_iter()
                .try_for_each(|(_, tmp)| tmp.sync_data())?;
        } else {
            fsutil::syncfs(&self.pool.dir)?;
        }
        let placed: Vec<(PathBuf, ClosedTemp)> = self
            .pending
            .into_iter()
            .map(|(id, tmp)| (self.pool.path(&hex::encode(id.0)), tmp))
            .collect();
        let mut dirs = HashSet::new();
        let mut created = false;
        for dir in placed.iter().filter_map(|(dest, _)| dest.parent()) {
            if dirs.insert(dir.to_path_buf()) && !dir.is_dir() {
                fs::create_dir_all(dir)?;
                created = true;
            }
        }
        if !small {
            // Renames from `tmp/` into the pool all take the file system's
            // one cross-directory rename lock; a link and an unlink lock
            // only their own directory, so they run on every core (50,000
            // renames were 0.75 s of one core).
            placed
                .into_par_iter()
                .try_for_each(|(dest, tmp)| tmp.link_to(&dest))?;
            return fsutil::syncfs(&self.pool.dir);
        }
        for (dest, tmp) in placed {
            tmp.rename_to(&dest)?;
        }
        if created {
            dirs.insert(self.pool.dir.clone()); // new shard directories' entries
        }
        dirs.par_iter().try_for_each(|d| fsutil::sync_dir(d))
    }
}

/// Up to this many blobs, a commit syncs each file it adds and each
/// directory it renames into; above, one `syncfs` is far cheaper than
/// thousands of fsyncs. Syncing only its own files also keeps a small batch
/// (a snapshot's twenty indices) from waiting for every other writer's
/// dirty pages on the same file system, which `syncfs` writes out too: the
/// snapshot's sync took 35 to 120 ms depending on what else was writing.
const SYNC_FILES_UP_TO: usize = 64;

/// A new blob's bytes, written in place through a shared mapping of its
/// temp file (see [`Pool::spool`]).
pub struct Spool {
    map: Option<memmap2::MmapMut>,
    /// Held open to start its writeback early.
    file: std::fs::File,
    tmp: ClosedTemp,
}

impl Spool {
    /// Starts writing the bytes to disk (see [`fsutil::start_writeback`]);
    /// call once they are all written.
    pub fn start_writeback(&self) -> io::Result<()> {
        fsutil::start_writeback(&self.file)
    }
}

impl std::ops::Deref for Spool {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}

impl std::ops::DerefMut for Spool {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or_default()
    }
}

/// An index being rendered: in memory when small, spooled when large.
pub enum IndexBuf {
    Heap(Vec<u8>),
    Spool(Spool),
}

impl IndexBuf {
    /// Starts writing a spooled index to disk (nothing to do in memory).
    pub fn start_writeback(&self) -> io::Result<()> {
        match self {
            IndexBuf::Heap(_) => Ok(()),
            IndexBuf::Spool(s) => s.start_writeback(),
        }
    }
}

impl From<Vec<u8>> for IndexBuf {
    fn from(v: Vec<u8>) -> Self {
        IndexBuf::Heap(v)
    }
}

impl std::ops::Deref for IndexBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            IndexBuf::Heap(v) => v,
            IndexBuf::Spool(s) => s,
        }
    }
}

impl std::ops::DerefMut for IndexBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            IndexBuf::Heap(v) => v,
            IndexBuf::Spool(s) => s,
        }
    }
}

impl Batch<'_> {
    /// Adds a rendered index: a spooled one is already in its file.
    pub fn add_index(&mut self, data: IndexBuf, digests: Digests) -> io::Result<Digests> {
        match data {
            IndexBuf::Heap(v) => self.add_hashed(&v, digests),
            IndexBuf::Spool(s) => self.add_spool(s, digests),
        }
    }
}

/// A blob's bytes in memory, mapped from the pool (see [`Pool::map`]).
#[derive(Debug, Default)]
pub struct Mapped(Option<memmap2::Mmap>);

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// The pool directory held open (see [`Pool::open_dir`]); shared by threads.
#[derive(Debug)]
pub struct PoolDir {
    dir: std::os::fd::OwnedFd,
}

impl PoolDir {
    /// `stat` of the blob `sha256` (following a symlink, as
    /// `fs::metadata` does).
    fn stat(&self, sha256: &str) -> io::Result<rustix::fs::Stat> {
        let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
        let prefix = sha256.get(..2).ok_or_else(invalid)?;
        // `ab/<sha256>` and a NUL on the stack.
        let mut buf = [0u8; 132];
        let n = sha256.len() + 3;
        if n >= buf.len() {
            return Err(invalid());
        }
        buf[..2].copy_from_slice(prefix.as_bytes());
        buf[2] = b'/';
        buf[3..n].copy_from_slice(sha256.as_bytes());
        let rel = std::ffi::CStr::from_bytes_with_nul(&buf[..=n]).map_err(|_| invalid())?;
        Ok(rustix::fs::statat(
            &self.dir,
            rel,
            rustix::fs::AtFlags::empty(),
        )?)
    }

    /// As [`Pool::has`] answers.
    pub fn has(&self, sha256: &str, size: u64) -> bool {
        self.stat(sha256)
            .is_ok_and(|st| u64::try_from(st.st_size) == Ok(size))
    }

    /// A prober for one pass over many blobs (see [`PoolProbe`]).
    pub fn probe(&self) -> PoolProbe<'_> {
        PoolProbe {
            dir: self,
            shards: std::iter::repeat_with(std::sync::OnceLock::new)
                .take(256)
                .collect(),
        }
    }

    /// The blob's modification time, as `fs::metadata(..).modified()`
    /// gives it (to the nanosecond).
    pub fn mtime(&self, sha256: &str) -> io::Result<std::time::SystemTime> {
        let st = self.stat(sha256)?;
        let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
        let t = match u64::try_from(st.st_mtime) {
            Ok(secs) => std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(secs, nanos)),
            Err(_) => std::time::UNIX_EPOCH
                .checked_sub(std::time::Duration::from_secs(st.st_mtime.unsigned_abs()))
                .and_then(|t| t.checked_add(std::time::Duration::from_nanos(u64::from(nanos)))),
        };
        t.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
    }
}

/// One of the pool's 256 shard directories, as a [`PoolProbe`] found it.
#[derive(Debug)]
enum Shard {
    Open(std::os::fd::OwnedFd),
    /// Not there (or not a directory): holds no blob.
    Missing,
    /// Could not be opened for another reason: ask [`PoolDir::has`].
    Unknown,
}

/// [`PoolDir::has`] for a pass over many blobs (a mirror's fetch plan):
/// each shard directory is opened once, on first use, and a blob is looked
/// up by its name in it; a shard that does not exist answers "absent" for
/// all its blobs without a system call each. Why: a first mirror of
/// Debian's main into an empty pool asked `stat` 63,000 times to learn
/// that 256 directories are missing. It remembers what it found, so it is
/// for one pass, not a long-lived view (a shard made later stays missing
/// to it: the blob is then fetched again, which the pool dedupes).
/// Shared by threads.
#[derive(Debug)]
pub struct PoolProbe<'d> {
    dir: &'d PoolDir,
    shards: Vec<std::sync::OnceLock<Shard>>,
}

impl PoolProbe<'_> {
    /// As [`PoolDir::has`] answers.
    pub fn has(&self, sha256: &str, size: u64) -> bool {
        let b = sha256.as_bytes();
        let hex = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        // Only a plain name (lowercase hex, as the pool names blobs) takes
        // the shard's directory; anything else is asked as before.
        if b.len() != 64 || !b.iter().all(|&c| hex(c).is_some()) {
            return self.dir.has(sha256, size);
        }
        let index = b
            .first()
            .zip(b.get(1))
            .and_then(|(&h, &l)| Some(usize::from(hex(h)? * 16 + hex(l)?)))
            .unwrap_or(0);
        let shard = self.shards[index].get_or_init(|| {
            match rustix::fs::openat(
                &self.dir.dir,
                &sha256[..2],
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ) {
                Ok(fd) => Shard::Open(fd),
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Shard::Missing,
                Err(_) => Shard::Unknown,
            }
        });
        match shard {
            Shard::Missing => false,
            Shard::Unknown => self.dir.has(sha256, size),
            Shard::Open(fd) => rustix::fs::statat(fd, sha256, rustix::fs::AtFlags::empty())
                .is_ok_and(|st| u64::try_from(st.st_size) == Ok(size)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool in `dir`, its directories made.
    fn new_pool(dir: &Path) -> Pool {
        let pool = Pool::new(dir.join("pool"), dir.join("tmp"));
        fs::create_dir_all(&pool.tmp).unwrap();
        fs::create_dir_all(pool.dir()).unwrap();
        pool
    }

    /// Files left in the shards of the pool's `tmp/`.
    fn temps_left(pool: &Pool) -> usize {
        fs::read_dir(&pool.tmp)
            .unwrap()
            .map(|d| fs::read_dir(d.unwrap().path()).unwrap().count())
            .sum()
    }

    #[test]
    fn blobs_appear_only_on_commit_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let pool = new_pool(dir.path());
        let mut b = pool.batch();
        let d = b.add_bytes(b"abc").unwrap();
        b.add_reader(&b"abc"[..]).unwrap();
        assert!(!pool.has(&d.sha256, 3));
        b.commit().unwrap();
        assert!(pool.has(&d.sha256, 3));
        // The open directory answers as the pool does: held, wrong size,
        // absent, not a hash; and the same mtime.
        let p = pool.open_dir().unwrap();
        let absent = "0".repeat(64);
        for (h, size) in [
            (d.sha256.as_str(), 3),
            (&d.sha256, 4),
            (&absent, 3),
            ("a", 3),
            ("a\0b", 1),
        ] {
            assert_eq!(p.has(h, size), pool.has(h, size), "{h} {size}");
        }
        let modified = fs::metadata(pool.path(&d.sha256))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(p.mtime(&d.sha256).unwrap(), modified);
        assert_eq!(
            p.mtime(&absent).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(pool.read(&d.sha256).unwrap(), b"abc");
        assert_eq!(pool.list().unwrap().len(), 1);
        assert_eq!(temps_left(&pool), 0);
    }

    #[test]
    fn a_large_batch_links_every_blob_in_place_and_repairs_a_damaged_one() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let pool = new_pool(dir.path());
        let blobs: Vec<Vec<u8>> = (0..SYNC_FILES_UP_TO * 3)
            .map(|i| format!("blob {i}").into_bytes())
            .collect();
        // One blob already in the pool, truncated: the batch that adds it
        // again puts the whole bytes back.
        let damaged = hash::digest(&blobs[7]).sha256;
        let mut first = pool.batch();
        first.add_bytes(&blobs[7]).unwrap();
        first.commit().unwrap();
        fs::set_permissions(pool.path(&damaged), std::fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(pool.path(&damaged), b"blo").unwrap();
        let mut b = pool.batch();
        let names: Vec<String> = blobs
            .iter()
            .map(|data| {
                let blob = pool.write_blob(data, hash::digest(data)).unwrap();
                b.add_finished(blob).unwrap().sha256
            })
            .collect();
        assert!(
            b.len() > SYNC_FILES_UP_TO,
            "the bulk path is the one tested"
        );
        b.commit().unwrap();
        for (name, data) in names.iter().zip(&blobs) {
            assert_eq!(&pool.read(name).unwrap(), data);
            // In place by its one name: the temp name is gone.
            assert_eq!(fs::metadata(pool.path(name)).unwrap().nlink(), 1, "{name}");
        }
        assert_eq!(pool.list().unwrap().len(), blobs.len());
        assert_eq!(temps_left(&pool), 0);
    }

    #[test]
    fn adopted_files_become_blobs_without_a_copy_and_writable_ones_are_not_adopted() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let pool = new_pool(dir.path());
        let file = dir.path().join("x.deb");
        fs::write(&file, b"package").unwrap();
        assert!(pool.adopt(&file).unwrap().is_none(), "a writable file");
        fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
        let adopted = pool.adopt(&file).unwrap().unwrap();
        let digests = hash::digest(b"package");
        let mut b = pool.batch();
        b.add_finished(adopted.finish(digests.clone())).unwrap();
        b.commit().unwrap();
        let blob = fs::metadata(pool.path(&digests.sha256)).unwrap();
        assert_eq!(blob.ino(), fs::metadata(&file).unwrap().ino());
        assert_eq!(blob.mode() & 0o777, 0o444);
        // Dropped unused, the link goes.
        drop(pool.adopt(&file).unwrap());
        assert_eq!(fs::metadata(&file).unwrap().nlink(), 2);
    }

    #[test]
    fn a_probe_answers_as_has_does() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new(dir.path().join("pool"), dir.path().join("tmp"));
        fs::create_dir_all(pool.dir()).unwrap();
        let held = hash::digest(b"held").sha256;
        let other_in_shard = format!("{}{}", &held[..2], "0".repeat(62));
        let empty_shard = format!(
            "{}{}",
            if &held[..2] == "ee" { "ef" } else { "ee" },
            "1".repeat(62)
        );
        let file_shard = format!(
            "{}{}",
            if &held[..2] == "dd" { "dc" } else { "dd" },
            "2".repeat(62)
        );
        fs::create_dir_all(pool.path(&held).parent().unwrap()).unwrap();
        fs::write(pool.path(&held), b"held").unwrap();
        fs::write(pool.dir().join(&file_shard[..2]), b"not a directory").unwrap();
        let upper = held.to_ascii_uppercase();
        let dir_fd = pool.open_dir().unwrap();
        let questions = [
            (held.as_str(), 4),
            (held.as_str(), 5),
            (&other_in_shard, 1),
            (&empty_shard, 1),
            (&file_shard, 1),
            (&upper, 4),
            ("", 0),
            ("zz", 0),
            ("../../etc/passwd", 0),
        ];
        // Twice: the second pass answers from the shards it opened.
        let probe = dir_fd.probe();
        for _ in 0..2 {
            for (sha, size) in questions {
                assert_eq!(probe.has(sha, size), pool.has(sha, size), "{sha} {size}");
            }
        }
        assert!(probe.has(&held, 4));
    }
}
