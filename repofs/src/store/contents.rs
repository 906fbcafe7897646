//! Contents lists: the paths each `.deb` (or `.udeb`) of the pool
//! installs, read once from its data archive and kept, so a
//! `Contents-<arch>` index is rendered from kept text instead of unpacking
//! every package of a component at every snapshot.
//!
//! Where lists are kept (all caches, derivable again from the pool):
//! - packs, `contents/packs/<name>` ([`pack`]): the lists of every package
//!   one import or mirror update brought, in one file;
//! - component lists, `contents/components/<component state>`, in the same
//!   layout: the lists of one component state's packages, which the next
//!   snapshot of that component starts from;
//! - sidecars, `contents/<xx>/<sha256>`, one file per package: what stores
//!   made before packs hold; still read, checked and collected.
//!
//! None is written with a fsync of its own (imports and snapshots `syncfs`
//! before their commit point); each is checked against its digests when
//! read, so one torn by a crash reads as missing and is made again. `fsck`
//! compares every kept list with its package; `gc` removes (or rewrites)
//! what lists packages that left the pool.

pub mod pack;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use fs_err as fs;
use rayon::prelude::*;

use self::pack::{Key, KeyMap, Lists, PackWriter};
use super::fsutil::TempFile;
use super::{Error, Result, Store};
use crate::debian::deb;

/// The first word of a sidecar: its format.
const MAGIC: &str = "halo-contents-1";

/// The first word of a component's lists file: the packs that hold the
/// lists of a component state's packages.
const COMPONENT: &str = "halo-contents-component-1";

/// A component's lists spread over more packs than this are gathered into
/// one pack.
const MAX_PACKS: usize = 8;

/// A set of package blobs.
type KeySet = HashSet<Key, std::hash::BuildHasherDefault<pack::KeyHasher>>;

/// Packages listed from the pool at once when a mirror update or a
/// snapshot lists many: only a chunk's lists are held before they go into
/// the pack.
const LIST_CHUNK: usize = 256;

/// The text of a sidecar for `paths`.
#[cfg(test)]
pub fn encode(paths: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in paths {
        body.extend_from_slice(p.as_bytes());
        body.push(b'\n');
    }
    let mut out = format!("{MAGIC} {}\n", crate::hash::sha256_hex(&body)).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The paths of a whole sidecar; `None` for one that is torn or not ours.
pub fn decode(data: &[u8]) -> Option<Vec<String>> {
    let nl = data.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&data[..nl]).ok()?;
    let sha = header.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    let body = &data[nl + 1..];
    if crate::hash::sha256_hex(body) != sha {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

/// A pack being written to a temp file; see [`Store::new_pack`]. Dropped
/// unfinished, the temp file goes.
pub struct NewPack {
    tmp: TempFile,
    writer: PackWriter<std::io::BufWriter<fs::File>>,
    seen: KeySet,
}

impl NewPack {
    /// Adds the list of package blob `sha256` (once: a second list of the
    /// same package is ignored).
    pub fn add(&mut self, sha256: &str, paths: &[String]) -> Result<()> {
        let key = pack::key(sha256).ok_or_else(|| {
            Error::Io(std::io::Error::other(format!(
                "{sha256:?} is not a SHA-256"
            )))
        })?;
        if self.seen.insert(key) {
            self.writer.add(&key, paths.iter().map(String::as_str))?;
        }
        Ok(())
    }

    fn add_body(&mut self, key: &Key, body: &str) -> Result<()> {
        if self.seen.insert(*key) {
            self.writer.add_body(key, body)?;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.writer.is_empty()
    }

    /// Packages in the pack so far.
    pub fn len(&self) -> u64 {
        self.writer.len()
    }

    /// Renames the pack to `dest(name)` (unsynced: see the module's
    /// comment); an empty pack is dropped. Returns where it went.
    fn finish_to(self, dest: impl FnOnce(&str) -> PathBuf) -> Result<Option<PathBuf>> {
        if self.writer.is_empty() {
            return Ok(None);
        }
        let (buf, name) = self.writer.finish()?;
        drop(buf.into_inner().map_err(|e| e.into_error())?);
        let dest = dest(&name);
        if let Some(dir) = dest.parent() {
            if !dir.is_dir() {
                fs::create_dir_all(dir)?;
            }
        }
        self.tmp.close()?.rename_to(&dest)?;
        Ok(Some(dest))
    }
}

/// Where the lists of a snapshot's component came from.
#[derive(Debug, Default)]
struct Found {
    /// The packs that gave lists: what the component's file names.
    packs: Vec<String>,
    packs_read: usize,
    from_packs: usize,
    sidecars: usize,
    listed: usize,
}

impl Store {
    /// Renders and stores `<comp>/Contents-<arch>.gz` for every
    /// architecture of the dist (arch `all` packages in each), and
    /// `<comp>/Contents-udeb-<arch>.gz` where the component has udebs for it,
    /// each with its uncompressed form: apt (2.6) fetches an index target
    /// only when the Release lists its uncompressed name (Debian's Release
    /// lists it too), and serving what is listed keeps every listed name
    /// fetchable.
    ///
    /// `hash` is the component state's blob, `prev` the one the previous
    /// snapshot rendered for this component: the lists of its packages are
    /// read from the one file kept for it (`contents/components/<hash>`),
    /// and only those of packages new since then from the packs (newest
    /// first: the import that brought them), so a snapshot after a small
    /// change reads one file and the last import's pack.
    ///
    /// It needs no pool batch: the files come back as bytes for the caller
    /// to add, so that the snapshot renders them on one core while it
    /// renders, compresses and diffs `Packages` on the other.
    pub(crate) fn render_contents(
        &self,
        comp: &str,
        (hash, prev): (&str, Option<&str>),
        state: &crate::model::state_view::StateView<'_>,
        archs: &[String],
        previous: &crate::index::dist::PreviousBlocks<'_>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let started = std::time::Instant::now();
        let cpu_started = thread_cpu_ns();
        let keys = state
            .binaries()
            .map(|b| {
                pack::key(&b.file.sha256).ok_or_else(|| Error::Corrupt {
                    path: self.pool().path(hash),
                    reason: format!("component state: {:?} is not a SHA-256", b.file.sha256),
                })
            })
            .collect::<Result<Vec<Key>>>()?;
        let mut lists = Lists::default();
        let mut found = Found::default();
        // The packs named for this state (rendered before), else those of
        // the previous snapshot's state: all their lists are taken (one no
        // longer wanted costs nothing but its slot).
        let own = self.component_packs(hash);
        let is_own = own.is_some();
        let named = own
            .or_else(|| {
                prev.filter(|p| *p != hash)
                    .and_then(|p| self.component_packs(p))
            })
            .unwrap_or_default();
        for name in named {
            if let Some(n) = read_pack_into(&self.packs_dir().join(&name), &mut lists, None) {
                found.packs_read += 1;
                found.from_packs += n;
                if n > 0 {
                    found.packs.push(name);
                }
            }
        }
        let missing: KeySet = keys
            .iter()
            .filter(|k| !lists.contains(k))
            .copied()
            .collect();
        if !missing.is_empty() || !is_own {
            self.find_lists(&mut lists, missing, &mut found)?;
            // Gathered into one pack when spread over many, holding many
            // lists this state does not need, or some only a sidecar has.
            if found.sidecars > 0
                || found.packs.len() > MAX_PACKS
                || lists.len() > 2 * keys.len() + 1000
            {
                let mut kept = self.new_pack()?;
                for k in &keys {
                    if let Some(body) = lists.get(k) {
                        kept.add_body(k, body)?;
                    }
                }
                found.packs = self.finish_pack(kept)?.into_iter().collect();
            }
            self.write_component_packs(hash, &found.packs)?;
        }
        // Each package's list, found once for every index it goes into.
        let bodies: Vec<&str> = keys
            .iter()
            .map(|k| lists.get(k).unwrap_or_default())
            .collect();
        let loaded_ms = started.elapsed().as_millis() as u64;
        let mut out = Vec::new();
        for arch in archs {
            for udeb in [false, true] {
                let mut owners = state
                    .binaries_for(arch, udeb)
                    .map(|(i, b)| crate::index::contents::Owner {
                        package: &b.package,
                        paths: bodies[i],
                    })
                    .peekable();
                if udeb && owners.peek().is_none() {
                    continue;
                }
                let plain = crate::index::contents::render(owners);
                let kind = if udeb { "udeb-" } else { "" };
                let path = format!("{comp}/Contents-{kind}{arch}");
                let gz = self.contents_gz(&path, &plain, previous)?;
                out.push((format!("{path}.gz"), gz));
                out.push((path, plain));
            }
        }
        tracing::debug!(
            component = comp,
            packages = keys.len(),
            packs_read = found.packs_read,
            from_packs = found.from_packs,
            read_sidecars = found.sidecars,
            listed = found.listed,
            loaded_ms,
            total_ms = started.elapsed().as_millis() as u64,
            cpu_ms = thread_cpu_ns()
                .zip(cpu_started)
                .map(|(end, start)| end.saturating_sub(start) / 1_000_000),
            "Contents rendered"
        );
        Ok(out)
    }

    /// The lists of `missing` into `lists`: from the packs, newest first,
    /// then from sidecars (stores made before packs), and what neither
    /// holds (a package a mirror fetched without listing it, a pack torn by
    /// a crash) listed from the pool and kept in a new pack.
    fn find_lists(&self, lists: &mut Lists, mut missing: KeySet, found: &mut Found) -> Result<()> {
        if missing.is_empty() {
            return Ok(());
        }
        for path in self.packs_newest_first()? {
            if missing.is_empty() {
                return Ok(());
            }
            if let Some(n) = read_pack_into(&path, lists, Some(&mut missing)) {
                found.packs_read += 1;
                found.from_packs += n;
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if n > 0 && !found.packs.iter().any(|p| *p == name) {
                    found.packs.push(name.into_owned());
                }
            }
        }
        let mut rest: Vec<Key> = missing.into_iter().collect();
        rest.sort_unstable();
        let sidecars: Vec<Option<Vec<String>>> = rest
            .par_iter()
            .map(|k| self.cached_contents(&hex::encode(k)))
            .collect();
        let mut unlisted = Vec::new();
        for (k, paths) in rest.into_iter().zip(sidecars) {
            match paths {
                Some(p) => {
                    lists.insert(k, p.iter().map(String::as_str));
                    found.sidecars += 1;
                }
                None => unlisted.push(k),
            }
        }
        if unlisted.is_empty() {
            return Ok(());
        }
        let mut kept = self.new_pack()?;
        for chunk in unlisted.chunks(LIST_CHUNK) {
            let listed = chunk
                .par_iter()
                .map(|k| self.list_package(&hex::encode(k)))
                .collect::<Result<Vec<_>>>()?;
            for (k, paths) in chunk.iter().zip(listed) {
                lists.insert(*k, paths.iter().map(String::as_str));
                kept.add_body(k, lists.get(k).unwrap_or_default())?;
                found.listed += 1;
            }
        }
        found.packs.extend(self.finish_pack(kept)?);
        Ok(())
    }

    /// The `.gz` of Contents index `path`: in blocks of lines when large,
    /// copying the blocks of the previous snapshot's (`index::blocks`); the
    /// block map is kept for the next snapshot.
    fn contents_gz(
        &self,
        path: &str,
        plain: &[u8],
        previous: &crate::index::dist::PreviousBlocks<'_>,
    ) -> Result<Vec<u8>> {
        use crate::index::blocks;
        if plain.len() < blocks::BLOCKS_FROM {
            return Ok(crate::index::compress::gzip(plain)?);
        }
        let prev = previous(path);
        let forms = blocks::Forms {
            gz: true,
            xz: false,
        };
        let c = blocks::compress(plain, blocks::Records::Lines, forms, prev.as_ref())?;
        let Some(gz) = c.gz.as_ref() else {
            return Err(std::io::Error::other("block compressor made no .gz").into());
        };
        let plain_sha = crate::hash::sha256_hex(plain);
        let gz_ref = blocks::BlobRef {
            sha256: crate::hash::sha256_hex(gz),
            size: gz.len() as u64,
        };
        self.write_block_map(&plain_sha, &blocks::map_of(&c, Some(gz_ref), None))?;
        tracing::debug!(
            index = path,
            blocks_reused = c.reused,
            blocks_compressed = c.compressed,
            "Contents compressed"
        );
        Ok(c.gz.unwrap_or_default())
    }

    pub fn contents_dir(&self) -> PathBuf {
        self.root().join("contents")
    }

    /// Where the sidecar of the package blob `sha256` lives (stores made
    /// before packs).
    pub fn contents_path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("__");
        self.contents_dir().join(prefix).join(sha256)
    }

    /// The directory of the packs.
    pub fn packs_dir(&self) -> PathBuf {
        self.contents_dir().join("packs")
    }

    /// The cached paths of package blob `sha256`, if a whole sidecar exists.
    pub fn cached_contents(&self, sha256: &str) -> Option<Vec<String>> {
        decode(&std::fs::read(self.contents_path(sha256)).ok()?)
    }

    /// A pack to fill, written in `tmp/` until [`Store::finish_pack`].
    pub fn new_pack(&self) -> Result<NewPack> {
        let tmp_dir = self.tmp_dir();
        let mut tmp = match TempFile::new(&tmp_dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&tmp_dir)?;
                TempFile::new(&tmp_dir)?
            }
            other => other?,
        };
        let file = tmp.file().try_clone()?;
        Ok(NewPack {
            tmp,
            writer: PackWriter::new(std::io::BufWriter::with_capacity(1 << 16, file)),
            seen: Default::default(),
        })
    }

    /// Puts a filled pack into `contents/packs/` (by rename, unsynced: the
    /// caller's `syncfs` makes it durable, and a torn one reads as
    /// missing). An empty pack is dropped. Returns its name.
    pub fn finish_pack(&self, pack: NewPack) -> Result<Option<String>> {
        let dir = self.packs_dir();
        let path = pack.finish_to(|name| dir.join(name))?;
        Ok(path.map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        }))
    }

    /// The packs named for component state `hash`, if its file is whole.
    fn component_packs(&self, hash: &str) -> Option<Vec<String>> {
        let data = std::fs::read(self.component_contents_path(hash)).ok()?;
        let text = std::str::from_utf8(&data).ok()?;
        let (head, body) = text.split_once('\n')?;
        let sha = head.strip_prefix(COMPONENT)?.strip_prefix(' ')?;
        if crate::hash::sha256_hex(body.as_bytes()) != sha {
            return None;
        }
        let names: Vec<String> = body.lines().map(str::to_string).collect();
        names
            .iter()
            .all(|n| crate::hash::is_sha256_hex(n))
            .then_some(names)
    }

    /// Names the packs that hold the lists of component state `hash` (by
    /// rename, unsynced: a cache, checked when read).
    fn write_component_packs(&self, hash: &str, packs: &[String]) -> Result<()> {
        let mut body = String::new();
        for p in packs {
            body.push_str(p);
            body.push('\n');
        }
        let text = format!(
            "{COMPONENT} {}\n{body}",
            crate::hash::sha256_hex(body.as_bytes())
        );
        let dest = self.component_contents_path(hash);
        if let Some(dir) = dest.parent() {
            if !dir.is_dir() {
                fs::create_dir_all(dir)?;
            }
        }
        let mut tmp = TempFile::new(&self.tmp_dir())?;
        std::io::Write::write_all(tmp.file(), text.as_bytes())?;
        tmp.close()?.rename_to(&dest)?;
        Ok(())
    }

    /// Every pack, the newest first (by modification time): a snapshot
    /// looks for the packages new since the last one in the last import's.
    fn packs_newest_first(&self) -> Result<Vec<PathBuf>> {
        let mut packs = Vec::new();
        for e in read_dir_if_any(&self.packs_dir())? {
            let e = e?;
            let modified = e.metadata().and_then(|m| m.modified()).ok();
            packs.push((modified, e.path()));
        }
        packs.sort_by_key(|p| std::cmp::Reverse(p.0));
        Ok(packs.into_iter().map(|(_, p)| p).collect())
    }

    /// Every pack's path (fsck, gc).
    pub fn list_packs(&self) -> Result<Vec<PathBuf>> {
        read_dir_if_any(&self.packs_dir())?
            .map(|e| Ok(e?.path()))
            .collect()
    }

    /// Every component lists file's path (fsck).
    pub fn list_component_contents(&self) -> Result<Vec<PathBuf>> {
        read_dir_if_any(&self.contents_dir().join("components"))?
            .map(|e| Ok(e?.path()))
            .collect()
    }

    /// Lists package blob `sha256` from the pool (no cache).
    pub fn list_package(&self, sha256: &str) -> Result<Vec<String>> {
        let path = self.pool().path(sha256);
        let file = fs::File::open(&path)?;
        deb::list_data(std::io::BufReader::new(file)).map_err(|e| Error::Import {
            file: path,
            reason: format!(
                "cannot list its files for Contents: {}",
                crate::error_chain(&e)
            ),
        })
    }

    /// Lists the packages of `blobs` that no pack nor sidecar lists, from
    /// the pool, into one new pack: what a mirror update calls for the
    /// packages it brought, so that the next snapshot finds them ready.
    /// Reads the index of every pack (about 70 bytes a package), not their
    /// lists. Returns how many it listed.
    pub fn ensure_contents<'a>(&self, blobs: impl IntoIterator<Item = &'a str>) -> Result<usize> {
        let mut missing: KeyMap<()> = KeyMap::default();
        for sha in blobs {
            if let Some(k) = pack::key(sha) {
                missing.insert(k, ());
            }
        }
        for path in self.list_packs()? {
            if missing.is_empty() {
                break;
            }
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            if let Some(index) = pack::read_index(&file) {
                for (k, _) in index.entries() {
                    missing.remove(k);
                }
            }
        }
        let mut rest: Vec<Key> = missing.into_keys().collect();
        rest.sort_unstable();
        // Existence only: a torn sidecar is listed again by the snapshot
        // that reads it.
        rest.retain(|k| !self.contents_path(&hex::encode(k)).exists());
        let mut kept = self.new_pack()?;
        for chunk in rest.chunks(LIST_CHUNK) {
            let listed = chunk
                .par_iter()
                .map(|k| {
                    let sha = hex::encode(k);
                    Ok((self.list_package(&sha)?, sha))
                })
                .collect::<Result<Vec<_>>>()?;
            for (paths, sha) in listed {
                kept.add(&sha, &paths)?;
            }
        }
        let n = kept.len() as usize;
        self.finish_pack(kept)?;
        Ok(n)
    }

    /// Where the lists of a component state's packages are kept.
    pub fn component_contents_path(&self, hash: &str) -> PathBuf {
        self.contents_dir().join("components").join(hash)
    }

    /// Component lists of component states no snapshot nor the working
    /// state names any more (gc).
    pub(crate) fn remove_stale_component_contents(&self, live: &HashSet<String>) -> Result<u64> {
        let mut n = 0;
        for path in self.list_component_contents()? {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if !live.contains(name.as_ref()) {
                super::fsutil::remove_file(&path)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Packs that list packages no longer live (gc): a pack none of whose
    /// packages is live goes, one with some goes after a pack of the live
    /// ones is written (so a gc killed half-way leaves both, never
    /// neither); a torn pack goes. Returns (removed, rewritten).
    pub(crate) fn collect_packs(&self, live: &HashSet<String>) -> Result<(u64, u64)> {
        let (mut removed, mut rewritten) = (0, 0);
        for path in self.list_packs()? {
            let file = fs::File::open(&path)?;
            let index = pack::read_index(file.file());
            let data = index.as_ref().and_then(|i| {
                let keeps = i
                    .entries()
                    .iter()
                    .any(|(k, _)| live.contains(&hex::encode(k)));
                let drops = i
                    .entries()
                    .iter()
                    .any(|(k, _)| !live.contains(&hex::encode(k)));
                match (keeps, drops) {
                    (true, false) => Some(None),
                    (true, true) => pack::read_data(file.file(), i).map(Some),
                    (false, _) => None,
                }
            });
            drop(file);
            match (index, data) {
                (_, Some(None)) => {}
                (Some(index), Some(Some(data))) => {
                    let mut kept = self.new_pack()?;
                    for (k, range) in index.entries() {
                        if live.contains(&hex::encode(k)) {
                            kept.add_body(k, data.get(range.clone()).unwrap_or_default())?;
                        }
                    }
                    let new = self.finish_pack(kept)?.map(|n| self.packs_dir().join(n));
                    if new.as_deref() != Some(path.as_path()) {
                        super::fsutil::remove_file(&path)?;
                    }
                    rewritten += 1;
                }
                _ => {
                    super::fsutil::remove_file(&path)?;
                    removed += 1;
                }
            }
        }
        Ok((removed, rewritten))
    }

    /// Every sidecar name present (`<sha256>`), for fsck and gc.
    pub fn list_contents(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for prefix in read_dir_if_any(&self.contents_dir())? {
            let prefix = prefix?;
            // `components/` and `packs/` hold many lists, not sidecars.
            if !prefix.file_type()?.is_dir()
                || prefix.file_name() == "components"
                || prefix.file_name() == "packs"
            {
                continue;
            }
            for f in fs::read_dir(prefix.path())? {
                out.push(f?.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(out)
    }
}

/// The CPU time of the calling thread in nanoseconds (the first field of
/// `/proc/thread-self/schedstat`), read only when debug logging is on: on
/// a machine shared with other work, the Contents thread's wall time says
/// more about the other work than about the thread.
fn thread_cpu_ns() -> Option<u64> {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return None;
    }
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// The entries of `dir`, none when it does not exist.
fn read_dir_if_any(dir: &Path) -> Result<Box<dyn Iterator<Item = std::io::Result<fs::DirEntry>>>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e.into()),
    }
}

/// Takes from the pack at `path` the lists of `missing` (removing them
/// from it), or all with `None`, reading its data only when it holds one;
/// `None` when it is missing, torn or altered (a cache: the caller finds
/// the lists elsewhere).
fn read_pack_into(path: &Path, lists: &mut Lists, missing: Option<&mut KeySet>) -> Option<usize> {
    let file = std::fs::File::open(path).ok()?;
    let Some(index) = pack::read_index(&file) else {
        tracing::warn!(
            "{}: Contents lists torn or altered; ignored",
            path.display()
        );
        return None;
    };
    if let Some(m) = &missing {
        if !index.entries().iter().any(|(k, _)| m.contains(k)) {
            return Some(0);
        }
    }
    let Some(data) = pack::read_data(&file, &index) else {
        tracing::warn!(
            "{}: Contents lists torn or altered; ignored",
            path.display()
        );
        return None;
    };
    Some(match missing {
        Some(m) => lists.take(&index, data, |k| m.remove(k)),
        None => lists.take(&index, data, |_| true),
    })
}

/// The digest of a list as [`Lists`] holds it (fsck compares kept lists
/// with the package by it).
pub(crate) fn body_digest<'a>(paths: impl IntoIterator<Item = &'a str>) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in paths {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_sidecar_reads_as_missing() {
        let paths = vec![
            "usr/bin/hi".to_string(),
            "usr/share/doc/hi/README".to_string(),
        ];
        let data = encode(&paths);
        assert_eq!(decode(&data), Some(paths));
        assert_eq!(decode(&data[..data.len() - 3]), None);
        assert_eq!(decode(b""), None);
        assert_eq!(decode(&encode(&[])), Some(vec![]));
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release -p repofs --lib timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn component_lists_of_50k() {
        let mut w = PackWriter::new(Vec::new());
        let keys: Vec<Key> = (0..50_000u32)
            .map(|i| {
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.to_le_bytes());
                k[31] = 1;
                k
            })
            .collect();
        let t = std::time::Instant::now();
        for (i, k) in keys.iter().enumerate() {
            let p = format!("usr/share/doc/bench-pkg{i:06}/README");
            w.add(k, [p.as_str()]).unwrap();
        }
        let (data, _) = w.finish().unwrap();
        eprintln!("encode {:?} ({} bytes)", t.elapsed(), data.len());
        let t = std::time::Instant::now();
        let index = pack::read_index(&data[..]).unwrap();
        let body = pack::read_data(&data[..], &index).unwrap();
        let mut lists = Lists::default();
        lists.take(&index, body, |_| true);
        eprintln!("decode {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let names: Vec<String> = (0..50_000).map(|i| format!("bench-pkg{i:06}")).collect();
        let owners = keys
            .iter()
            .zip(&names)
            .map(|(k, n)| crate::index::contents::Owner {
                package: n,
                paths: lists.get(k).unwrap(),
            });
        let text = crate::index::contents::render(owners);
        eprintln!("render {:?} ({} bytes)", t.elapsed(), text.len());
    }
}
