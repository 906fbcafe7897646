//! Contents sidecars: `contents/<xx>/<sha256>`, the paths the `.deb` (or
//! `.udeb`) with that SHA-256 installs, read once from its data archive and
//! kept, so a `Contents-<arch>` index is rendered from small text files
//! instead of unpacking every package of a component at every snapshot.
//!
//! A sidecar is a cache: it is derived from a pool blob and can be made
//! again from it at any time. It is written without a fsync of its own
//! (imports and snapshots `syncfs` before their commit point), and carries
//! the SHA-256 of its body in its first line, so one torn by a crash reads
//! as missing and is made again. `fsck` compares every sidecar with its
//! package; `gc` removes those whose package left the pool.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use fs_err as fs;
use rayon::prelude::*;

use super::fsutil::TempFile;
use super::{Error, Result, Store};
use crate::debian::deb;

/// The first word of a sidecar: its format.
const MAGIC: &str = "halo-contents-1";

/// The text of a sidecar for `paths`.
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

/// The joined lists of a component: `<sha256> <n>` then its n paths, for
/// each package, after a first line `halo-contents-joined-1 <sha256 of the
/// rest>`.
/// In the map's order: a cache read back into a map needs no sorting.
fn encode_joined(listed: &HashMap<String, Vec<String>>) -> Vec<u8> {
    use std::io::Write as _;
    let mut body = Vec::with_capacity(listed.len() * 128);
    for (k, paths) in listed {
        body.extend_from_slice(k.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = writeln!(body, " {}", paths.len());
        for p in paths {
            body.extend_from_slice(p.as_bytes());
            body.push(b'\n');
        }
    }
    let mut out = format!("{JOINED} {}\n", crate::hash::sha256_hex(&body)).into_bytes();
    out.extend_from_slice(&body);
    out
}

fn decode_joined(data: &[u8]) -> Option<HashMap<String, Vec<String>>> {
    let nl = data.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&data[..nl]).ok()?;
    let sha = header.strip_prefix(JOINED)?.strip_prefix(' ')?;
    let body = &data[nl + 1..];
    if crate::hash::sha256_hex(body) != sha {
        return None;
    }
    let mut lines = std::str::from_utf8(body).ok()?.lines();
    let mut out = HashMap::new();
    while let Some(head) = lines.next() {
        let (k, n) = head.split_once(' ')?;
        let n: usize = n.parse().ok()?;
        let mut paths = Vec::with_capacity(n);
        for _ in 0..n {
            paths.push(lines.next()?.to_string());
        }
        out.insert(k.to_string(), paths);
    }
    Some(out)
}

/// The first word of a component's joined lists.
const JOINED: &str = "halo-contents-joined-1";

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
    /// read from one file kept for it (`contents/components/<hash>`), and
    /// only the packages new since then from their sidecars, so a snapshot
    /// after a small change does not open every sidecar again.
    ///
    /// It needs no pool batch: the files come back as bytes for the caller
    /// to add, so that the snapshot renders them on one core while it
    /// renders, compresses and diffs `Packages` on the other.
    pub(crate) fn render_contents(
        &self,
        comp: &str,
        (hash, prev): (&str, Option<&str>),
        state: &crate::model::ComponentState,
        archs: &[String],
        previous: &crate::index::dist::PreviousBlocks<'_>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let started = std::time::Instant::now();
        let mut listed = prev
            .and_then(|p| self.component_contents(p))
            .unwrap_or_default();
        // Only the packages still in the component (a set: 50,000 entries).
        let wanted: std::collections::HashSet<&str> = state
            .binaries
            .iter()
            .map(|b| b.file.sha256.as_str())
            .collect();
        listed.retain(|sha, _| wanted.contains(sha.as_str()));
        let missing: Vec<&str> = state
            .binaries
            .iter()
            .map(|b| b.file.sha256.as_str())
            .filter(|sha| !listed.contains_key(*sha))
            .collect();
        let read = missing.len();
        listed.extend(self.load_contents(missing)?);
        if !self.component_contents_path(hash).exists() {
            self.write_component_contents(hash, &listed)?;
        }
        let loaded_ms = started.elapsed().as_millis() as u64;
        let mut out = Vec::new();
        for arch in archs {
            for udeb in [false, true] {
                let mut owners = state
                    .binaries
                    .iter()
                    .filter(|b| b.arch == *arch || b.arch == "all")
                    .filter(|b| b.file.path.ends_with(".udeb") == udeb)
                    .map(|b| crate::index::contents::Owner {
                        package: &b.package,
                        paths: &listed[b.file.sha256.as_str()],
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
            packages = listed.len(),
            read_sidecars = read,
            loaded_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "Contents rendered"
        );
        Ok(out)
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

    /// Where the sidecar of the package blob `sha256` lives.
    pub fn contents_path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("__");
        self.contents_dir().join(prefix).join(sha256)
    }

    /// The cached paths of package blob `sha256`, if a whole sidecar exists.
    pub fn cached_contents(&self, sha256: &str) -> Option<Vec<String>> {
        decode(&std::fs::read(self.contents_path(sha256)).ok()?)
    }

    /// Writes the sidecar of `sha256` (atomically by rename, unsynced: see
    /// the module's comment).
    pub fn write_contents(&self, sha256: &str, paths: &[String]) -> Result<()> {
        let dest = self.contents_path(sha256);
        let dir = dest.parent().unwrap_or(&dest).to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir)?;
        }
        let mut tmp = TempFile::new(&self.tmp_dir())?;
        tmp.file().write_all(&encode(paths))?;
        tmp.close()?.rename_to(&dest)?;
        Ok(())
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

    /// The paths of each package blob in `blobs`, from its sidecar, or read
    /// from the package and cached when it has none (a package a mirror
    /// fetched, or one imported before Contents existed). In parallel.
    pub fn load_contents<'a>(
        &self,
        blobs: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, Vec<String>>> {
        let mut unique: Vec<&str> = blobs.into_iter().collect();
        unique.sort_unstable();
        unique.dedup();
        unique
            .par_iter()
            .map(|sha| {
                let paths = match self.cached_contents(sha) {
                    Some(p) => p,
                    None => {
                        let p = self.list_package(sha)?;
                        self.write_contents(sha, &p)?;
                        p
                    }
                };
                Ok((sha.to_string(), paths))
            })
            .collect()
    }

    /// Makes the missing sidecars of `blobs` (their contents are not kept in
    /// memory): what an import or a mirror update calls for the packages it
    /// brought, so that the next snapshot finds them ready.
    pub fn ensure_contents<'a>(&self, blobs: impl IntoIterator<Item = &'a str>) -> Result<usize> {
        let mut unique: Vec<&str> = blobs.into_iter().collect();
        unique.sort_unstable();
        unique.dedup();
        let made: Vec<bool> = unique
            .par_iter()
            .map(|sha| {
                // Existence only: a torn sidecar is made again by the
                // snapshot that reads it.
                if self.contents_path(sha).exists() {
                    return Ok(false);
                }
                let p = self.list_package(sha)?;
                self.write_contents(sha, &p)?;
                Ok(true)
            })
            .collect::<Result<_>>()?;
        Ok(made.into_iter().filter(|m| *m).count())
    }

    /// Where the joined lists of a component state's packages are kept.
    pub fn component_contents_path(&self, hash: &str) -> PathBuf {
        self.contents_dir().join("components").join(hash)
    }

    /// The lists kept for component state `hash`, if whole.
    fn component_contents(&self, hash: &str) -> Option<HashMap<String, Vec<String>>> {
        let data = std::fs::read(self.component_contents_path(hash)).ok()?;
        decode_joined(&data)
    }

    /// Keeps the lists of component state `hash` (by rename, unsynced: a
    /// cache like the sidecars, checked when read).
    fn write_component_contents(
        &self,
        hash: &str,
        listed: &HashMap<String, Vec<String>>,
    ) -> Result<()> {
        let dest = self.component_contents_path(hash);
        if let Some(dir) = dest.parent() {
            if !dir.is_dir() {
                fs::create_dir_all(dir)?;
            }
        }
        let mut tmp = TempFile::new(&self.tmp_dir())?;
        tmp.file().write_all(&encode_joined(listed))?;
        tmp.close()?.rename_to(&dest)?;
        Ok(())
    }

    /// Joined lists of component states no snapshot nor the working state
    /// names any more (gc).
    pub(crate) fn remove_stale_component_contents(
        &self,
        live: &std::collections::HashSet<String>,
    ) -> Result<u64> {
        let dir = self.contents_dir().join("components");
        let mut n = 0;
        if dir.is_dir() {
            for e in fs::read_dir(&dir)? {
                let name = e?.file_name().to_string_lossy().into_owned();
                if !live.contains(&name) {
                    super::fsutil::remove_file(&dir.join(&name))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Every sidecar name present (`<sha256>`), for fsck and gc.
    pub fn list_contents(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let dir = self.contents_dir();
        if !dir.is_dir() {
            return Ok(out);
        }
        for prefix in fs::read_dir(&dir)? {
            let prefix = prefix?;
            // `components/` holds joined lists, not sidecars.
            if !prefix.file_type()?.is_dir() || prefix.file_name() == "components" {
                continue;
            }
            for f in fs::read_dir(prefix.path())? {
                out.push(f?.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(out)
    }
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

    #[test]
    fn joined_lists_round_trip_and_a_torn_file_reads_as_missing() {
        let mut m = HashMap::new();
        m.insert("aa".to_string(), vec!["usr/bin/a".to_string()]);
        m.insert("bb".to_string(), vec![]);
        let data = encode_joined(&m);
        assert_eq!(decode_joined(&data), Some(m));
        assert_eq!(decode_joined(&data[..data.len() - 2]), None);
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release -p repofs --lib timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn joined_lists_of_50k() {
        let mut m = HashMap::new();
        for i in 0..50_000 {
            m.insert(
                format!("{:064x}", i),
                vec![format!("usr/share/doc/bench-pkg{i:06}/README")],
            );
        }
        let t = std::time::Instant::now();
        let data = encode_joined(&m);
        eprintln!("encode {:?} ({} bytes)", t.elapsed(), data.len());
        let t = std::time::Instant::now();
        let back = decode_joined(&data).unwrap();
        eprintln!("decode {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let owners = back.iter().map(|(k, v)| crate::index::contents::Owner {
            package: k,
            paths: v,
        });
        let text = crate::index::contents::render(owners);
        eprintln!("render {:?} ({} bytes)", t.elapsed(), text.len());
        let t = std::time::Instant::now();
        let gz = crate::index::compress::gzip(&text).unwrap();
        eprintln!("gzip {:?} ({} bytes)", t.elapsed(), gz.len());
    }
}
