//! The component an import adds to, held compactly, and the pool paths of
//! its archive.
//!
//! An import holds the whole target component until it commits. Kept as a
//! [`ComponentState`], each binary costs about a kilobyte: its stanza (500
//! bytes and more), pool path, hash in hex and origin, each a separate
//! allocation, plus the same path, hash and origin again in the archive's
//! pool-path map. At 200,000 packages that was most of a 390 MiB peak.
//! Here a binary keeps in memory only what ordering and the duplicate
//! checks need (name, version, architecture, SHA-256 as 32 bytes, size:
//! about 130 bytes); its stanza, pool path and origin go to an unlinked
//! spool file in the store's `tmp/` and are read back once, when the
//! component is written (in order, so mostly sequentially). The spool
//! needs no cleanup: it has no name, so a crash leaves nothing behind.
//!
//! The blob written is byte for byte what `serde_json` writes for the
//! equivalent [`ComponentState`] (the tests compare), so component hashes
//! do not change with the representation.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use fs_err as fs;
use hashbrown::HashTable;
use serde::ser::{Error as _, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::{Error, Result};
use crate::model::state::{cmp_versions, Added, Conflict, EntryIndex};
use crate::model::{BinaryEntry, ComponentState, PoolFile, SourceEntry};

/// Spool writes are gathered up to this size.
const SPOOL_BUFFER: usize = 1 << 16;

/// Bytes read at once when the component is written and the spool is read
/// in the order it was written.
const READ_WINDOW: usize = 1 << 18;

/// Bytes of a component state's JSON parsed at once when it is loaded.
const LOAD_WINDOW: usize = 4 << 20;

/// Appends up to `n` bytes of `reader` to `buf`; whether it ended first.
fn fill(reader: &mut impl io::Read, buf: &mut Vec<u8>, n: usize) -> io::Result<bool> {
    let want = n as u64;
    let got = reader.by_ref().take(want).read_to_end(buf)? as u64;
    Ok(got < want)
}

/// One binary package: its identity and blob in memory, its text spooled.
#[derive(Debug, Clone)]
struct Binary {
    package: Box<str>,
    version: Box<str>,
    /// Index into [`SpooledComponent::arches`] (a component has a few).
    arch: u32,
    sha256: [u8; 32],
    size: u64,
    /// Where its stanza, pool path and origin start in the spool, and
    /// their lengths.
    at: u64,
    lens: [u32; 3],
}

impl Binary {
    fn path_at(&self) -> u64 {
        self.at + u64::from(self.lens[0])
    }

    fn text_len(&self) -> usize {
        self.lens.iter().map(|&l| l as usize).sum()
    }
}

/// Who holds a pool path: its blob and where its path and origin are
/// spooled. `hash` is the path's hash, compared before the spool is read.
#[derive(Debug, Clone)]
struct PathRecord {
    hash: u64,
    sha256: [u8; 32],
    at: u64,
    path_len: u32,
    origin_len: u32,
}

/// A pool path that another file holds with different content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTaken {
    pub sha256: String,
    pub origin: String,
}

/// An append-only file of text, read back by offset.
struct Spool {
    file: std::fs::File,
    buf: Vec<u8>,
    /// Bytes already in the file (the buffer follows them).
    flushed: u64,
}

impl Spool {
    fn new(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            file: unnamed_file(dir)?,
            buf: Vec::with_capacity(SPOOL_BUFFER),
            flushed: 0,
        })
    }

    /// Appends `parts` back to back; returns where the first starts and
    /// their lengths.
    fn append<const N: usize>(&mut self, parts: [&str; N]) -> io::Result<(u64, [u32; N])> {
        let at = self.flushed + self.buf.len() as u64;
        let mut lens = [0u32; N];
        for (len, part) in lens.iter_mut().zip(parts) {
            *len = u32::try_from(part.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "text over 4 GiB"))?;
            self.buf.extend_from_slice(part.as_bytes());
        }
        if self.buf.len() >= SPOOL_BUFFER {
            self.flush()?;
        }
        Ok((at, lens))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.write_all_at(&self.buf, self.flushed)?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// `len` bytes at `at` as text (a conflict's message, a path compared).
    fn read(&mut self, at: u64, len: u32) -> io::Result<String> {
        let end = at + u64::from(len);
        if end > self.flushed {
            self.flush()?;
        }
        let mut out = vec![0; len as usize];
        self.file.read_exact_at(&mut out, at)?;
        String::from_utf8(out).map_err(|_| io::Error::other("spool: not UTF-8"))
    }
}

/// An unlinked file in `dir` (`O_TMPFILE`), or where the file system lacks
/// that, a named one removed at once.
fn unnamed_file(dir: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(f) => Ok(f),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
            let path = dir.join(format!(
                "spool.{}.{}",
                std::process::id(),
                rand::random::<u64>()
            ));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(f)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("spool file in {}: {e}", dir.display()),
        )),
    }
}

/// A reader of the spool for writing the component: reads ahead while the
/// records asked for follow each other, one record at a time otherwise.
struct SpoolReader<'a> {
    file: &'a std::fs::File,
    window: Vec<u8>,
    start: u64,
    /// Where the last record asked for ended.
    last_end: u64,
}

impl<'a> SpoolReader<'a> {
    fn new(file: &'a std::fs::File) -> Self {
        Self {
            file,
            window: Vec::new(),
            start: 0,
            last_end: u64::MAX,
        }
    }

    fn get(&mut self, at: u64, len: usize) -> io::Result<&[u8]> {
        let end = at + len as u64;
        let held = self.start + self.window.len() as u64;
        if at < self.start || end > held {
            let want = if at == self.last_end {
                len.max(READ_WINDOW)
            } else {
                len
            };
            self.window.resize(want, 0);
            let mut got = 0;
            while got < want {
                match self.file.read_at(&mut self.window[got..], at + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if got < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "spool shorter than its records",
                ));
            }
            self.window.truncate(got);
            self.start = at;
        }
        self.last_end = end;
        let from = (at - self.start) as usize;
        Ok(&self.window[from..from + len])
    }
}

/// The target component of an import, its binaries compact and their text
/// spooled, with the pool paths of the whole archive.
pub struct SpooledComponent {
    binaries: Vec<Binary>,
    /// Binaries by (package, version, arch): positions in `binaries`.
    keys: HashTable<u32>,
    arches: Vec<Box<str>>,
    /// Sources, the upstream's files, identity, extra files: few, whole.
    /// Its `binaries` stay empty.
    rest: ComponentState,
    rest_index: EntryIndex,
    paths: Vec<PathRecord>,
    /// Pool paths: positions in `paths`.
    path_table: HashTable<u32>,
    spool: Spool,
    hasher: RandomState,
}

fn hex_id(sha256: &str) -> io::Result<[u8; 32]> {
    let mut id = [0u8; 32];
    if !crate::hash::is_sha256_hex(sha256) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{sha256:?} is not a SHA-256"),
        ));
    }
    hex::decode_to_slice(sha256, &mut id).map_err(io::Error::other)?;
    Ok(id)
}

impl SpooledComponent {
    /// An empty component whose spool lives in `tmp_dir`.
    pub fn new(tmp_dir: &Path) -> Result<Self> {
        Ok(Self {
            binaries: Vec::new(),
            keys: HashTable::new(),
            arches: Vec::new(),
            rest: ComponentState::default(),
            rest_index: EntryIndex::default(),
            paths: Vec::new(),
            path_table: HashTable::new(),
            spool: Spool::new(tmp_dir)?,
            hasher: RandomState::new(),
        })
    }

    /// Room for `n` more binaries.
    pub fn reserve(&mut self, n: usize) {
        self.binaries.reserve_exact(n);
        let hasher = &self.hasher;
        let binaries = &self.binaries;
        self.keys
            .reserve(n, |&i| key_hash(hasher, &binaries[i as usize]));
        let paths = &self.paths;
        self.path_table.reserve(n, |&i| paths[i as usize].hash);
    }

    /// The pool paths of another component of the archive: they are taken
    /// (one pool path holds one content, whatever dist refers to it).
    pub fn add_paths_of(&mut self, other: &ComponentState) -> Result<()> {
        for b in &other.binaries {
            let found = self.find_path(&b.file.path)?;
            self.set_path(found, &b.file.path, hex_id(&b.file.sha256)?, &b.origin)?;
        }
        self.add_source_paths(&other.sources)
    }

    /// Takes in the target component as loaded; its pool paths are taken.
    pub fn load(&mut self, state: ComponentState) -> Result<()> {
        let ComponentState {
            binaries,
            sources,
            upstream,
            identity,
            extra_files,
        } = state;
        self.reserve(binaries.len());
        for b in binaries {
            self.load_binary(b)?;
        }
        let rest = ComponentState {
            binaries: Vec::new(),
            sources,
            upstream,
            identity,
            extra_files,
        };
        self.add_source_paths(&rest.sources)?;
        self.rest_index = rest.index();
        self.rest = rest;
        Ok(())
    }

    fn add_source_paths(&mut self, sources: &[SourceEntry]) -> Result<()> {
        for s in sources {
            for f in &s.files {
                let found = self.find_path(&f.path)?;
                self.set_path(found, &f.path, hex_id(&f.sha256)?, &s.origin)?;
            }
        }
        Ok(())
    }

    /// [`Self::load`] from the component's JSON, read a window at a time:
    /// the target component's binaries are never held whole, not even as
    /// their blob's bytes (a re-import into a large component would
    /// otherwise peak at the blob, the parsed component and this
    /// together); the fields after them (sources, kept parsed anyway) are
    /// read whole. `Ok(Err(reason))` when the JSON is not a component
    /// state.
    pub fn load_json(&mut self, reader: impl io::Read) -> Result<std::result::Result<(), String>> {
        self.load_json_in(reader, LOAD_WINDOW)
    }

    /// [`Self::load_json`] with windows of `window` bytes. A blob in the
    /// layout we write (`state_json`) has its `binaries` cut at entry
    /// boundaries and parsed from memory on every core, a window at a
    /// time: `serde_json` reading from a stream takes a call per byte,
    /// and that was most of a small import into a large component. Any
    /// other JSON, and a state smaller than a window, is parsed in one
    /// pass, as `serde_json` parses a [`ComponentState`]. A window that
    /// does not parse is the blob's error (the cut is sound for any JSON);
    /// its reason then names the place in its piece, not in the blob. What
    /// follows the last cut is parsed in one pass, so JSON laid out other
    /// than ours (spaces between entries) still reads as one pass reads it;
    /// the one difference: a field we never write, between `binaries` and
    /// `sources`, holding objects that start with `"package"`, is refused.
    fn load_json_in(
        &mut self,
        mut reader: impl io::Read,
        window: usize,
    ) -> Result<std::result::Result<(), String>> {
        use crate::model::state_json::{parse_window, ENTRY, HEAD};
        const SOURCES: &[u8] = b"\"sources\":";
        let mut buf = Vec::with_capacity(window + (1 << 16));
        let ended = fill(&mut reader, &mut buf, window)?;
        if ended {
            return self.load_one_pass(serde_json::Deserializer::from_slice(&buf));
        }
        if !buf.starts_with(HEAD) || buf.get(HEAD.len()) == Some(&b']') {
            let stream = io::Cursor::new(buf).chain(reader);
            return self.load_one_pass(serde_json::Deserializer::from_reader(stream));
        }
        buf.drain(..HEAD.len());
        let parts = rayon::current_num_threads() * 2;
        loop {
            // The array ends before the first `"sources":` (a raw quote is
            // never inside a string, so that is the key; in our layout it
            // follows the array, `}],"sources":`). The entries before the
            // last one that starts in the window are whole.
            let end = memchr::memmem::find(&buf, SOURCES);
            if let Some(last) = memchr::memmem::rfind(&buf[..end.unwrap_or(buf.len())], ENTRY) {
                let pieces = match parse_window::<BinaryEntry>(&buf[..last + 1], parts) {
                    Ok(pieces) => pieces,
                    Err(reason) => return Ok(Err(reason)),
                };
                for b in pieces.into_iter().flatten() {
                    self.load_binary(b)?;
                }
                buf.drain(..last + 2);
            }
            if end.is_some() || fill(&mut reader, &mut buf, window)? {
                break;
            }
        }
        // The last entries and the fields after them (or, in JSON laid out
        // otherwise, whatever is left) in one pass, as the state they end.
        let mut last = Vec::with_capacity(HEAD.len() + buf.len());
        last.extend_from_slice(HEAD);
        last.extend_from_slice(&buf);
        drop(buf);
        reader.read_to_end(&mut last)?;
        self.load_one_pass(serde_json::Deserializer::from_slice(&last))
    }

    /// The component from one `serde_json` pass, each binary going into
    /// the spool as it is read.
    fn load_one_pass<'de, R: serde_json::de::Read<'de>>(
        &mut self,
        mut de: serde_json::Deserializer<R>,
    ) -> Result<std::result::Result<(), String>> {
        let mut failed = None;
        let rest = serde::de::DeserializeSeed::deserialize(
            ComponentSeed {
                into: self,
                failed: &mut failed,
            },
            &mut de,
        )
        .and_then(|rest| de.end().map(|()| rest));
        if let Some(e) = failed {
            return Err(e);
        }
        let rest = match rest {
            Ok(rest) => rest,
            Err(e) if e.is_io() => return Err(Error::Io(e.into())),
            Err(e) => return Ok(Err(e.to_string())),
        };
        self.take_rest(rest)?;
        Ok(Ok(()))
    }

    /// The loaded component's fields other than its binaries.
    fn take_rest(&mut self, rest: ComponentState) -> Result<()> {
        self.add_source_paths(&rest.sources)?;
        self.rest_index = rest.index();
        self.rest = rest;
        Ok(())
    }

    /// One binary of the loaded target component.
    fn load_binary(&mut self, b: BinaryEntry) -> Result<()> {
        let found = self.find_path(&b.file.path)?;
        self.set_path(found, &b.file.path, hex_id(&b.file.sha256)?, &b.origin)?;
        if let Err(c) = self.insert_binary(b)? {
            return Err(Error::Corrupt {
                path: "component state".into(),
                reason: format!("lists {} twice with different content", c.key),
            });
        }
        Ok(())
    }

    /// Records `path` as holding `sha256` from `origin`, unless the archive
    /// has it with other content: then who has it.
    pub fn claim_path(
        &mut self,
        path: &str,
        sha256: &str,
        origin: &str,
    ) -> Result<std::result::Result<(), PathTaken>> {
        let id = hex_id(sha256)?;
        let found = self.find_path(path)?;
        if let Some(i) = found {
            let rec = self.paths[i].clone();
            if rec.sha256 != id {
                let origin = self
                    .spool
                    .read(rec.at + u64::from(rec.path_len), rec.origin_len)?;
                return Ok(Err(PathTaken {
                    sha256: hex::encode(rec.sha256),
                    origin,
                }));
            }
        }
        self.set_path(found, path, id, origin)?;
        Ok(Ok(()))
    }

    fn find_path(&mut self, path: &str) -> io::Result<Option<usize>> {
        let hash = self.hasher.hash_one(path);
        let candidates: Vec<u32> = self
            .path_table
            .iter_hash(hash)
            .copied()
            .filter(|&i| self.paths[i as usize].hash == hash)
            .collect();
        for i in candidates {
            let rec = &self.paths[i as usize];
            let (at, len) = (rec.at, rec.path_len);
            if self.spool.read(at, len)? == path {
                return Ok(Some(i as usize));
            }
        }
        Ok(None)
    }

    /// Sets who holds `path` (the latest claim names it in messages);
    /// `found` is its record, if it has one.
    fn set_path(
        &mut self,
        found: Option<usize>,
        path: &str,
        sha256: [u8; 32],
        origin: &str,
    ) -> io::Result<()> {
        let (at, [path_len, origin_len]) = self.spool.append([path, origin])?;
        let rec = PathRecord {
            hash: 0,
            sha256,
            at,
            path_len,
            origin_len,
        };
        match found {
            Some(i) => {
                self.paths[i] = PathRecord {
                    hash: self.paths[i].hash,
                    ..rec
                };
            }
            None => self.put_path(path, rec),
        }
        Ok(())
    }

    /// Adds a path known to be new.
    fn put_path(&mut self, path: &str, mut rec: PathRecord) {
        rec.hash = self.hasher.hash_one(path);
        let i = self.paths.len() as u32;
        let paths = &self.paths;
        self.path_table
            .insert_unique(rec.hash, i, |&j| paths[j as usize].hash);
        self.paths.push(rec);
    }

    fn arch_id(&mut self, arch: &str) -> u32 {
        match self.arches.iter().position(|a| &**a == arch) {
            Some(i) => i as u32,
            None => {
                self.arches.push(arch.into());
                (self.arches.len() - 1) as u32
            }
        }
    }

    /// Adds a binary; its pool path must have been claimed. Like
    /// [`ComponentState::push_binary`]: the same name, version and arch
    /// with the same blob is unchanged, with another blob a conflict.
    pub fn push_binary(&mut self, entry: BinaryEntry) -> Result<Added> {
        Ok(self.insert_binary(entry)??)
    }

    /// Adds a binary unless one of its name, version and arch is there.
    fn insert_binary(
        &mut self,
        entry: BinaryEntry,
    ) -> Result<std::result::Result<Added, Conflict>> {
        let sha256 = hex_id(&entry.file.sha256)?;
        let arch = self.arch_id(&entry.arch);
        let hash = self
            .hasher
            .hash_one((entry.package.as_str(), entry.version.as_str(), arch));
        let binaries = &self.binaries;
        if let Some(&i) = self.keys.find(hash, |&i| {
            let b = &binaries[i as usize];
            *b.package == *entry.package && *b.version == *entry.version && b.arch == arch
        }) {
            let old = self.binaries[i as usize].clone();
            if old.sha256 == sha256 {
                return Ok(Ok(Added::Unchanged));
            }
            let origin = self
                .spool
                .read(old.path_at() + u64::from(old.lens[1]), old.lens[2])?;
            return Ok(Err(Conflict {
                key: format!("{}_{}_{}", entry.package, entry.version, entry.arch),
                existing_origin: origin,
                existing_sha256: hex::encode(old.sha256),
                new_origin: entry.origin,
                new_sha256: entry.file.sha256,
            }));
        }
        let (at, lens) = self
            .spool
            .append([&entry.stanza, &entry.file.path, &entry.origin])?;
        let i = self.binaries.len();
        self.binaries.push(Binary {
            package: entry.package.into(),
            version: entry.version.into(),
            arch,
            sha256,
            size: entry.file.size,
            at,
            lens,
        });
        let (hasher, binaries) = (&self.hasher, &self.binaries);
        self.keys
            .insert_unique(hash, i as u32, |&j| key_hash(hasher, &binaries[j as usize]));
        Ok(Ok(Added::New))
    }

    /// Adds a source package, as [`ComponentState::push_source`].
    pub fn push_source(&mut self, entry: SourceEntry) -> Result<Added> {
        Ok(self.rest.push_source(&mut self.rest_index, entry)?)
    }

    /// Restores the canonical order (name, dpkg version, arch), as
    /// [`ComponentState::sort`]. The lookup tables are dropped: call it
    /// once, after the last entry is added.
    pub fn sort(&mut self) {
        self.keys = HashTable::new();
        self.path_table = HashTable::new();
        self.paths = Vec::new();
        let arches = &self.arches;
        self.binaries.sort_unstable_by(|a, b| {
            a.package
                .cmp(&b.package)
                .then_with(|| cmp_versions(&a.version, &b.version))
                .then_with(|| arches[a.arch as usize].cmp(&arches[b.arch as usize]))
        });
        self.rest.sort();
    }

    /// `keep_versions`, as [`crate::model::retention::retain_versions`]:
    /// returns what was dropped, sorted.
    pub fn retain_versions(&mut self, keep: usize) -> Vec<String> {
        let arches = &self.arches;
        let drop = crate::model::retention::drop_mask(
            self.binaries
                .iter()
                .map(|b| (&*b.package, &*b.version, &*arches[b.arch as usize])),
            keep,
        );
        let mut dropped = Vec::new();
        let mut doomed = drop.into_iter();
        self.binaries.retain(|b| {
            if doomed.next().unwrap_or(false) {
                dropped.push(format!(
                    "{}_{}_{}",
                    b.package, b.version, arches[b.arch as usize]
                ));
                false
            } else {
                true
            }
        });
        dropped.extend(crate::model::retention::retain_versions(
            &mut self.rest,
            keep,
        ));
        dropped.sort();
        dropped
    }

    /// Writes the component as JSON, the same bytes `serde_json` writes
    /// for the equivalent [`ComponentState`].
    pub fn write_json(&mut self, w: &mut dyn Write) -> io::Result<()> {
        self.spool.flush()?;
        let view = JsonView {
            binaries: &self.binaries,
            arches: &self.arches,
            rest: &self.rest,
            spool: &self.spool.file,
        };
        serde_json::to_writer(w, &view).map_err(io::Error::other)
    }

    /// The component as a [`ComponentState`] (the blob is written with
    /// [`Self::write_json`]).
    #[cfg(test)]
    pub fn to_state(&mut self) -> Result<ComponentState> {
        let mut json = Vec::new();
        self.write_json(&mut json)?;
        serde_json::from_slice(&json).map_err(|e| Error::Io(io::Error::other(e)))
    }
}

/// The hash of a binary's identity; [`SpooledComponent::insert_binary`]
/// hashes the same tuple.
fn key_hash(hasher: &RandomState, b: &Binary) -> u64 {
    hasher.hash_one((&*b.package, &*b.version, b.arch))
}

/// Deserialises like [`ComponentState`]'s derived `Deserialize` (every
/// field defaults, unknown fields are ignored), each binary going into the
/// spooled component as it is read; returns the rest.
struct ComponentSeed<'a> {
    into: &'a mut SpooledComponent,
    /// A failure of the spool (not of the JSON), reported as itself.
    failed: &'a mut Option<Error>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ComponentSeed<'_> {
    type Value = ComponentState;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        de: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        de.deserialize_struct(
            "ComponentState",
            &["binaries", "sources", "upstream", "identity", "extra_files"],
            self,
        )
    }
}

impl<'de> serde::de::Visitor<'de> for ComponentSeed<'_> {
    type Value = ComponentState;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a component state")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut sources = None;
        let mut upstream = None;
        let mut identity = None;
        let mut extra_files = None;
        let mut binaries_seen = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let twice = |seen: bool| {
                if seen {
                    Err(A::Error::duplicate_field("field"))
                } else {
                    Ok(())
                }
            };
            match &*key {
                "binaries" => {
                    twice(binaries_seen)?;
                    binaries_seen = true;
                    map.next_value_seed(BinariesSeed {
                        into: &mut *self.into,
                        failed: &mut *self.failed,
                    })?;
                }
                "sources" => {
                    twice(sources.is_some())?;
                    sources = Some(map.next_value::<Vec<SourceEntry>>()?);
                }
                "upstream" => {
                    twice(upstream.is_some())?;
                    upstream = Some(map.next_value()?);
                }
                "identity" => {
                    twice(identity.is_some())?;
                    identity = Some(map.next_value()?);
                }
                "extra_files" => {
                    twice(extra_files.is_some())?;
                    extra_files = Some(map.next_value()?);
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        // Exhaustive: a field added to ComponentState fails to compile
        // here until it is read too.
        Ok(ComponentState {
            binaries: Vec::new(),
            sources: sources.unwrap_or_default(),
            upstream: upstream.unwrap_or_default(),
            identity: identity.unwrap_or_default(),
            extra_files: extra_files.unwrap_or_default(),
        })
    }
}

/// The `binaries` array, each entry added as it is read.
struct BinariesSeed<'a> {
    into: &'a mut SpooledComponent,
    failed: &'a mut Option<Error>,
}

impl<'de> serde::de::DeserializeSeed<'de> for BinariesSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> std::result::Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for BinariesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of binary packages")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        use serde::de::Error as _;
        if let Some(n) = seq.size_hint() {
            self.into.reserve(n);
        }
        while let Some(b) = seq.next_element::<BinaryEntry>()? {
            if let Err(e) = self.into.load_binary(b) {
                let message = e.to_string();
                *self.failed = Some(e);
                return Err(A::Error::custom(message));
            }
        }
        Ok(())
    }
}

/// Serialises like [`ComponentState`]'s derived `Serialize`.
struct JsonView<'a> {
    binaries: &'a [Binary],
    arches: &'a [Box<str>],
    rest: &'a ComponentState,
    spool: &'a std::fs::File,
}

/// A binary as [`BinaryEntry`] serialises (same fields, same order).
#[derive(Serialize)]
struct BinaryRef<'a> {
    package: &'a str,
    version: &'a str,
    arch: &'a str,
    stanza: &'a str,
    file: PoolFileRef<'a>,
    origin: &'a str,
}

/// As [`PoolFile`] serialises.
#[derive(Serialize)]
struct PoolFileRef<'a> {
    path: &'a str,
    sha256: &'a str,
    size: u64,
}

/// Guards the mirror of the derived forms: a field added to [`BinaryEntry`]
/// or [`PoolFile`] fails to compile here until the view has it too.
#[allow(dead_code)]
fn same_fields(b: &BinaryEntry) -> BinaryRef<'_> {
    let BinaryEntry {
        package,
        version,
        arch,
        stanza,
        file,
        origin,
    } = b;
    let PoolFile { path, sha256, size } = file;
    BinaryRef {
        package,
        version,
        arch,
        stanza,
        file: PoolFileRef {
            path,
            sha256,
            size: *size,
        },
        origin,
    }
}

struct Binaries<'a>(&'a JsonView<'a>);

impl Serialize for Binaries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let view = self.0;
        let mut reader = SpoolReader::new(view.spool);
        let mut seq = s.serialize_seq(Some(view.binaries.len()))?;
        let mut sha = [0u8; 64];
        for b in view.binaries {
            let text = reader.get(b.at, b.text_len()).map_err(S::Error::custom)?;
            let text = std::str::from_utf8(text).map_err(S::Error::custom)?;
            let (stanza, rest) = text.split_at(b.lens[0] as usize);
            let (path, origin) = rest.split_at(b.lens[1] as usize);
            hex::encode_to_slice(b.sha256, &mut sha).map_err(S::Error::custom)?;
            let sha256 = std::str::from_utf8(&sha).map_err(S::Error::custom)?;
            seq.serialize_element(&BinaryRef {
                package: &b.package,
                version: &b.version,
                arch: &view.arches[b.arch as usize],
                stanza,
                file: PoolFileRef {
                    path,
                    sha256,
                    size: b.size,
                },
                origin,
            })?;
        }
        seq.end()
    }
}

impl Serialize for JsonView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // Exhaustive: a field added to ComponentState fails to compile here
        // until it is written too, in the derived order and with its
        // `skip_serializing_if`.
        let ComponentState {
            binaries: _,
            sources,
            upstream,
            identity,
            extra_files,
        } = self.rest;
        let mut st = s.serialize_struct("ComponentState", 5)?;
        st.serialize_field("binaries", &Binaries(self))?;
        st.serialize_field("sources", sources)?;
        match upstream {
            Some(_) => st.serialize_field("upstream", upstream)?,
            None => st.skip_field("upstream")?,
        }
        match identity {
            Some(_) => st.serialize_field("identity", identity)?,
            None => st.skip_field("identity")?,
        }
        if extra_files.is_empty() {
            st.skip_field("extra_files")?;
        } else {
            st.serialize_field("extra_files", extra_files)?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state::ReleaseIdentity;
    use crate::model::verbatim::UpstreamFiles;
    use crate::model::DistFile;

    fn sha(n: u64) -> String {
        crate::hash::digest(n.to_string().as_bytes()).sha256
    }

    fn bin(package: &str, version: &str, arch: &str, n: u64) -> BinaryEntry {
        BinaryEntry {
            package: package.into(),
            version: version.into(),
            arch: arch.into(),
            // Text JSON must escape, and text that is not ASCII.
            stanza: format!(
                "Package: {package}\nVersion: {version}\nDescription: \"quoted\" \\ tab\there — été {n}\n"
            ),
            file: PoolFile {
                path: format!("pool/main/{package}/{package}_{version}_{arch}.deb"),
                sha256: sha(n),
                size: n,
            },
            origin: format!("/in/{package}_{version}_{arch}.deb"),
        }
    }

    fn source(package: &str, version: &str, n: u64) -> SourceEntry {
        SourceEntry {
            package: package.into(),
            version: version.into(),
            stanza: format!("Package: {package}\nVersion: {version}\n"),
            files: vec![PoolFile {
                path: format!("pool/main/{package}/{package}_{version}.dsc"),
                sha256: sha(n),
                size: n,
            }],
            origin: format!("/in/{package}_{version}.dsc"),
        }
    }

    fn dist_file(path: &str, n: u64) -> DistFile {
        DistFile {
            path: path.into(),
            sha256: sha(n),
            md5: "d41d8cd98f00b204e9800998ecf8427e".into(),
            size: n,
        }
    }

    /// A component with every field set, binaries enough to pass the spool
    /// buffer and the read window several times.
    fn full_state(binaries: usize) -> ComponentState {
        let mut state = ComponentState::default();
        let versions = ["1.0", "1.0~rc1", "1:0.5", "1.10", "1.9-2"];
        for i in 0..binaries {
            let arch = ["amd64", "arm64", "all"][i % 3];
            let b = bin(
                &format!("pkg{:04}", i / 15),
                versions[(i / 3) % versions.len()],
                arch,
                i as u64,
            );
            state.add_binary(b).unwrap();
        }
        state.add_source(source("pkg0000", "1.0", 900_001)).unwrap();
        state.add_source(source("pkg0001", "2~b", 900_002)).unwrap();
        state.upstream = Some(UpstreamFiles {
            release: vec![dist_file("InRelease", 1)],
            indices: vec![dist_file("main/binary-amd64/Packages.xz", 2)],
            keyring: sha(3),
        });
        state.identity = Some(ReleaseIdentity {
            origin: Some("Debian".into()),
            label: None,
            suite: Some("stable".into()),
            codename: Some("bookworm".into()),
        });
        state.extra_files = vec![dist_file("main/i18n/Translation-en.xz", 4)];
        state
    }

    fn spooled() -> (tempfile::TempDir, SpooledComponent) {
        let dir = tempfile::tempdir().unwrap();
        let c = SpooledComponent::new(dir.path()).unwrap();
        (dir, c)
    }

    fn json(c: &mut SpooledComponent) -> Vec<u8> {
        let mut out = Vec::new();
        c.write_json(&mut out).unwrap();
        out
    }

    #[test]
    fn a_loaded_component_is_written_byte_for_byte_as_before() {
        for (n, with_rest) in [(0, false), (0, true), (1, false), (2000, true)] {
            let mut state = full_state(n);
            if !with_rest {
                state = ComponentState {
                    binaries: state.binaries,
                    ..Default::default()
                };
            }
            let (_dir, mut c) = spooled();
            c.load(state.clone()).unwrap();
            assert_eq!(
                String::from_utf8(json(&mut c)).unwrap(),
                serde_json::to_string(&state).unwrap(),
                "{n} binaries, rest {with_rest}"
            );
            assert_eq!(c.to_state().unwrap(), state);

            let (_dir, mut streamed) = spooled();
            let blob = serde_json::to_vec(&state).unwrap();
            streamed.load_json(&blob[..]).unwrap().unwrap();
            assert_eq!(json(&mut streamed), blob, "{n} binaries streamed");
        }
    }

    #[test]
    fn a_component_read_as_a_stream_reads_as_serde_reads_it() {
        let (_dir, mut c) = spooled();
        // Fields missing, unknown and in another order.
        let text = r#"{"future":[1,{"a":2}],"sources":[],"binaries":[]}"#;
        c.load_json(text.as_bytes()).unwrap().unwrap();
        let want: ComponentState = serde_json::from_str(text).unwrap();
        assert_eq!(c.to_state().unwrap(), want);
        // (The derived form also reads a struct from an array; component
        // blobs are written as objects only.)
        for bad in [
            "",
            r#"{"binaries":[{"package":"a"}]}"#,
            r#"{"binaries":[],"binaries":[]}"#,
            r#"{"binaries":[]} x"#,
        ] {
            let (_dir, mut c) = spooled();
            let reason = c.load_json(bad.as_bytes()).unwrap().unwrap_err();
            assert!(
                serde_json::from_str::<ComponentState>(bad).is_err(),
                "{bad}"
            );
            assert!(!reason.is_empty());
        }
        let (_dir, mut c) = spooled();
        let mut b = bin("a", "1", "amd64", 1);
        b.file.sha256 = "not a hash".into();
        let text = serde_json::to_string(&ComponentState {
            binaries: vec![b],
            ..Default::default()
        })
        .unwrap();
        assert!(c.load_json(text.as_bytes()).is_err());
    }

    #[test]
    fn a_component_read_in_windows_reads_as_one_pass_reads_it() {
        let mut state = full_state(600);
        // An entry boundary inside a stanza is escaped, never a cut.
        state.binaries[300]
            .stanza
            .push_str("X: },{\"package\":\"y\"}],\"sources\":[\n");
        let blob = serde_json::to_vec(&state).unwrap();
        for window in [1, 50, 700, 4096, blob.len() - 1, blob.len(), blob.len() + 1] {
            let (_dir, mut c) = spooled();
            c.load_json_in(&blob[..], window).unwrap().unwrap();
            assert_eq!(json(&mut c), blob, "window {window}");
            assert_eq!(c.to_state().unwrap(), state, "window {window}");
        }
        // Blobs in our layout changed every way that matters: each reads
        // as one pass reads it, refused or the same state.
        let text = String::from_utf8(blob.clone()).unwrap();
        let entry = text.find("{\"package\":\"pkg0020").unwrap();
        let mut variants: Vec<String> = [1, 2, blob.len() / 3, blob.len() / 2, blob.len() - 2]
            .iter()
            .map(|&n| text[..n].to_string())
            .collect();
        variants.push(format!(
            "{}{{\"size\":\"x\"}},{}",
            &text[..entry],
            &text[entry..]
        ));
        variants.push(text.replacen("\"size\":", "\"size\":-", 1));
        variants.push(text.replacen("\"sources\":", "\"binaries\":[],\"sources\":", 1));
        variants.push(format!("{text} x"));
        variants.push(format!("{text}}}"));
        // White space JSON allows: between entries, before the array's end.
        variants.push(text.replacen("},{\"package\"", "} ,\n{\"package\"", 1));
        variants.push(text.replace("},{\"package\"", "}, {\"package\""));
        variants.push(text.replacen("}],\"sources\"", "} ],\"sources\"", 1));
        variants.push(format!("{text}\n"));
        for variant in &variants {
            let one_pass = serde_json::from_str::<ComponentState>(variant);
            for window in [64, 4096, 1 << 20] {
                let (_dir, mut c) = spooled();
                let read = c.load_json_in(variant.as_bytes(), window).unwrap();
                let tail = &variant[variant.len().saturating_sub(60)..];
                match &one_pass {
                    Ok(want) => {
                        assert!(read.is_ok(), "window {window}: {read:?} ({tail})");
                        assert_eq!(&c.to_state().unwrap(), want, "window {window} ({tail})");
                    }
                    Err(_) => assert!(!read.unwrap_err().is_empty(), "window {window}"),
                }
            }
        }
        assert!(variants[..10]
            .iter()
            .all(|v| serde_json::from_str::<ComponentState>(v).is_err()));
        // Not our layout (fields in another order, no binaries): one pass.
        let other = format!(
            r#"{{"sources":[],"extra":"{}","binaries":[]}}"#,
            "x".repeat(5000)
        );
        let (_dir, mut c) = spooled();
        c.load_json_in(other.as_bytes(), 64).unwrap().unwrap();
        assert_eq!(c.to_state().unwrap(), ComponentState::default());
    }

    #[test]
    fn pushed_in_any_order_then_sorted_equals_the_component_state() {
        let state = full_state(700);
        for seed in 0..3u64 {
            // A fixed shuffle: the spool is then read out of order.
            let mut order: Vec<_> = state.binaries.clone();
            let len = order.len();
            for i in 0..len {
                let j = (i as u64 * 7919 + seed * 104_729) as usize % len;
                order.swap(i, j);
            }
            let mut plain = ComponentState::default();
            let mut index = plain.index();
            let (_dir, mut c) = spooled();
            for b in order.iter().chain(order.iter().take(5)) {
                let want = plain.push_binary(&mut index, b.clone());
                assert_eq!(c.push_binary(b.clone()).unwrap(), want.unwrap());
            }
            for s in &state.sources {
                plain.push_source(&mut index, s.clone()).unwrap();
                c.push_source(s.clone()).unwrap();
            }
            plain.sort();
            c.sort();
            assert_eq!(json(&mut c), serde_json::to_vec(&plain).unwrap());
        }
    }

    #[test]
    fn a_conflict_names_both_files_as_the_component_state_does() {
        let mut plain = ComponentState::default();
        let mut index = plain.index();
        let (_dir, mut c) = spooled();
        let first = bin("hello", "1.0", "amd64", 1);
        let mut other = bin("hello", "1.0", "amd64", 2);
        other.origin = "/elsewhere/hello.deb".into();
        plain.push_binary(&mut index, first.clone()).unwrap();
        c.push_binary(first).unwrap();
        let want = plain.push_binary(&mut index, other.clone()).unwrap_err();
        match c.push_binary(other) {
            Err(Error::Conflict(got)) => assert_eq!(got, want),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pool_paths_are_claimed_once_per_content_across_the_archive() {
        let (_dir, mut c) = spooled();
        let mut other = ComponentState::default();
        other.add_binary(bin("a", "1", "amd64", 1)).unwrap();
        c.add_paths_of(&other).unwrap();
        let path = &other.binaries[0].file.path;
        let taken = c
            .claim_path(path, &sha(2), "/new/a.deb")
            .unwrap()
            .unwrap_err();
        assert_eq!(
            taken,
            PathTaken {
                sha256: sha(1),
                origin: "/in/a_1_amd64.deb".into()
            }
        );
        // The same content is fine, and the latest claim is named after.
        c.claim_path(path, &sha(1), "/again/a.deb")
            .unwrap()
            .unwrap();
        let taken = c.claim_path(path, &sha(3), "/x.deb").unwrap().unwrap_err();
        assert_eq!(taken.origin, "/again/a.deb");
        c.claim_path("pool/main/b/b.deb", &sha(4), "/b.deb")
            .unwrap()
            .unwrap();
        assert!(c
            .claim_path("pool/main/b/b.deb", &sha(5), "/c.deb")
            .unwrap()
            .is_err());
        assert!(c.claim_path("pool/main/b/b.deb", "ABC", "/c.deb").is_err());
    }

    #[test]
    fn retention_drops_what_the_component_state_drops() {
        let state = full_state(300);
        for keep in [1, 2, 5] {
            let mut plain = state.clone();
            let want = crate::model::retention::retain_versions(&mut plain, keep);
            let (_dir, mut c) = spooled();
            c.load(state.clone()).unwrap();
            assert_eq!(c.retain_versions(keep), want, "keep {keep}");
            assert_eq!(json(&mut c), serde_json::to_vec(&plain).unwrap());
        }
    }
}
