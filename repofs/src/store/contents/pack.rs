//! Contents packs: the path lists of many packages in one file.
//!
//! An import of 50,000 packages used to write 50,000 sidecars, each a new
//! inode, a temp name and a rename: as much file system work as the pool
//! blobs themselves. A pack holds the lists of a whole import (or mirror
//! update) in one file, and the same layout keeps the lists of one
//! component state (`contents/components/<hash>`) for the next snapshot.
//!
//! Layout, written in one pass (so an import streams it to disk):
//! - data: each package's paths, one per line, the lists back to back;
//! - index: 36 bytes per package, in the order of the data: the package's
//!   SHA-256 (32 bytes) and the length of its list in bytes (u32, little
//!   endian), so reading it is a copy, not a parse;
//! - trailer, the last line: `halo-contents-pack-1 <packages> <data bytes>
//!   <index bytes> <sha256 of the data> <sha256 of the index>`.
//!
//! A reader takes the trailer from the end, then the index, and reads the
//! data only when it needs a list from it; each part is checked against its
//! digest, so a pack torn by a crash or altered since reads as missing (a
//! pack is a cache: its lists can be made again from the pool).
//!
//! [`Lists`] holds what was read without an allocation per package or path:
//! the data of each pack read stays one buffer, and lists are slices of it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};
use std::ops::Range;

use sha2::{Digest, Sha256};

/// The first word of a pack's trailer: its format.
pub const MAGIC: &str = "halo-contents-pack-1";

/// Bytes of an index entry: the key and the list's length.
const ENTRY: usize = 36;

/// The longest trailer: the magic, three numbers of up to 20 digits, two
/// hashes, their separators and the newline.
const TRAILER_MAX: usize = MAGIC.len() + 3 * 21 + 2 * 65 + 1;

/// A package blob's SHA-256 as bytes: what a list is found by.
pub type Key = [u8; 32];

/// The key of a package blob named by its SHA-256 in hex (either case).
/// By table: a snapshot decodes one for each package of a component, and
/// `hex::decode_to_slice` took a quarter of the Contents thread's time.
pub fn key(sha256: &str) -> Option<Key> {
    let hex: &[u8; 64] = sha256.as_bytes().try_into().ok()?;
    let mut k = [0u8; 32];
    let mut bad = 0u8;
    for (byte, pair) in k.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
        bad |= (hi | lo) & 0xf0;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    (bad == 0).then_some(k)
}

/// Hex digit -> its value; 0xff for any other byte.
const NIBBLE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Writes a pack to `out`: lists are added one by one, then [`finish`]
/// writes the index and the trailer.
///
/// [`finish`]: PackWriter::finish
pub struct PackWriter<W: Write> {
    out: W,
    data: Sha256,
    data_len: u64,
    index: Vec<u8>,
    count: u64,
}

impl<W: Write> PackWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            data: Sha256::new(),
            data_len: 0,
            index: Vec::new(),
            count: 0,
        }
    }

    /// Adds the list of package `key`. A path with a newline cannot be a
    /// line of a list (nor of `Contents`): it is left out, as
    /// `deb::list_data` leaves it out.
    pub fn add<'a>(
        &mut self,
        key: &Key,
        paths: impl IntoIterator<Item = &'a str>,
    ) -> io::Result<()> {
        let mut body = String::new();
        for p in paths.into_iter().filter(|p| !p.contains('\n')) {
            body.push_str(p);
            body.push('\n');
        }
        self.add_body(key, &body)
    }

    /// Adds a list as [`Lists`] holds it: its lines, each ending in a
    /// newline.
    pub fn add_body(&mut self, key: &Key, body: &str) -> io::Result<()> {
        debug_assert!(body.is_empty() || body.ends_with('\n'));
        let len = u32::try_from(body.len())
            .map_err(|_| io::Error::other("a package's list of 4 GiB or more"))?;
        self.put(body.as_bytes())?;
        self.index.extend_from_slice(key);
        self.index.extend_from_slice(&len.to_le_bytes());
        self.count += 1;
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.data.update(bytes);
        self.data_len += bytes.len() as u64;
        Ok(())
    }

    /// Packages added so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Writes the index and the trailer; returns the writer and the pack's
    /// name: the SHA-256 of its trailer, which names both digests.
    pub fn finish(mut self) -> io::Result<(W, String)> {
        let data_sha = hex::encode(self.data.finalize_reset());
        let index_sha = crate::hash::sha256_hex(&self.index);
        self.out.write_all(&self.index)?;
        let trailer = format!(
            "{MAGIC} {} {} {} {data_sha} {index_sha}\n",
            self.count,
            self.data_len,
            self.index.len()
        );
        self.out.write_all(trailer.as_bytes())?;
        self.out.flush()?;
        Ok((self.out, crate::hash::sha256_hex(trailer.as_bytes())))
    }
}

/// What a pack's trailer says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Trailer {
    count: usize,
    data_len: u64,
    index_len: u64,
    data_sha: String,
    index_sha: String,
}

fn parse_trailer(line: &str) -> Option<Trailer> {
    let mut words = line.split(' ');
    if words.next()? != MAGIC {
        return None;
    }
    let t = Trailer {
        count: words.next()?.parse().ok()?,
        data_len: words.next()?.parse().ok()?,
        index_len: words.next()?.parse().ok()?,
        data_sha: words.next()?.to_string(),
        index_sha: words.next()?.to_string(),
    };
    words.next().is_none().then_some(t)
}

/// Positioned reads: a file, or bytes in memory (tests).
pub trait ReadAt {
    fn size(&self) -> io::Result<u64>;
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A pack's index: each package's key and where its list lies in the data.
#[derive(Debug)]
pub struct Index {
    trailer: Trailer,
    entries: Vec<(Key, Range<usize>)>,
}

impl Index {
    /// Every package of the pack with the place of its list in the data.
    pub fn entries(&self) -> &[(Key, Range<usize>)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The trailer and index of a pack; `None` when it is torn, altered or not
/// a pack. The data is not read.
pub fn read_index(pack: &(impl ReadAt + ?Sized)) -> Option<Index> {
    let size = pack.size().ok()?;
    let tail_len = size.min(TRAILER_MAX as u64) as usize;
    let mut tail = vec![0; tail_len];
    pack.read_exact_at(&mut tail, size - tail_len as u64).ok()?;
    let (&last, body) = tail.split_last()?;
    if last != b'\n' {
        return None;
    }
    // The index before it is binary: find the trailer by its first word.
    let start = memchr::memmem::rfind(body, MAGIC.as_bytes())?;
    let trailer = parse_trailer(std::str::from_utf8(&body[start..]).ok()?)?;
    let trailer_len = (tail_len - start) as u64;
    if trailer
        .data_len
        .checked_add(trailer.index_len)?
        .checked_add(trailer_len)?
        != size
    {
        return None;
    }
    let mut index = vec![0; usize::try_from(trailer.index_len).ok()?];
    pack.read_exact_at(&mut index, trailer.data_len).ok()?;
    if crate::hash::sha256_hex(&index) != trailer.index_sha {
        return None;
    }
    if index.len() != trailer.count.checked_mul(ENTRY)? {
        return None;
    }
    let mut entries = Vec::with_capacity(trailer.count);
    let mut at = 0usize;
    for e in index.chunks_exact(ENTRY) {
        let (k, len) = e.split_first_chunk::<32>()?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let end = at.checked_add(len)?;
        entries.push((*k, at..end));
        at = end;
    }
    if at as u64 != trailer.data_len {
        return None;
    }
    Some(Index { trailer, entries })
}

/// The lists of a pack whose index was read, as text; `None` when torn or
/// altered.
pub fn read_data(pack: &(impl ReadAt + ?Sized), index: &Index) -> Option<String> {
    let mut data = vec![0; usize::try_from(index.trailer.data_len).ok()?];
    pack.read_exact_at(&mut data, 0).ok()?;
    if crate::hash::sha256_hex(&data) != index.trailer.data_sha {
        return None;
    }
    String::from_utf8(data).ok()
}

/// Hashes a [`Key`], already uniform, by its first eight bytes.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        match bytes.first_chunk::<8>() {
            Some(first) => self.0 ^= u64::from_le_bytes(*first),
            None => {
                for &b in bytes {
                    self.0 = self.0.rotate_left(8) ^ u64::from(b);
                }
            }
        }
    }
}

/// A map keyed by package blob.
pub type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

/// Package lists held in a few buffers (the data of each pack read, and
/// one of lists from elsewhere), found by key.
#[derive(Default)]
pub struct Lists {
    bufs: Vec<String>,
    /// Key -> (buffer, range in it).
    map: KeyMap<(u32, Range<usize>)>,
    /// The buffer lists from elsewhere are appended to, once made.
    own: Option<u32>,
}

impl Lists {
    /// The list of `key`: its paths, each line ending in a newline.
    pub fn get(&self, key: &Key) -> Option<&str> {
        let (buf, range) = self.map.get(key)?;
        self.bufs.get(*buf as usize)?.get(range.clone())
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Takes the lists of pack `index` (its data read as `data`) that
    /// `want` and that are not held yet; returns how many.
    pub fn take(
        &mut self,
        index: &Index,
        data: String,
        mut want: impl FnMut(&Key) -> bool,
    ) -> usize {
        let buf = self.bufs.len() as u32;
        self.map.reserve(index.len());
        let mut n = 0;
        for (k, range) in index.entries() {
            if !self.map.contains_key(k) && want(k) {
                self.map.insert(*k, (buf, range.clone()));
                n += 1;
            }
        }
        if n > 0 {
            self.bufs.push(data);
        }
        n
    }

    /// A list from elsewhere (a sidecar, a package listed now).
    pub fn insert<'a>(&mut self, key: Key, paths: impl IntoIterator<Item = &'a str>) {
        let own = *self.own.get_or_insert_with(|| {
            self.bufs.push(String::new());
            (self.bufs.len() - 1) as u32
        });
        let buf = &mut self.bufs[own as usize];
        let start = buf.len();
        for p in paths.into_iter().filter(|p| !p.contains('\n')) {
            buf.push_str(p);
            buf.push('\n');
        }
        let end = buf.len();
        self.map.insert(key, (own, start..end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(lists: &[(Key, &[&str])]) -> (Vec<u8>, String) {
        let mut w = PackWriter::new(Vec::new());
        for (k, paths) in lists {
            w.add(k, paths.iter().copied()).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn lists_round_trip_through_a_pack() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let (bytes, name) = pack(&[
            (a, &["usr/bin/a", "usr/share/doc/a/README"]),
            (b, &[]),
            (c, &["etc/c\nbroken", "etc/c"]),
        ]);
        assert_eq!(name.len(), 64);
        let index = read_index(&bytes[..]).unwrap();
        assert_eq!(index.len(), 3);
        let data = read_data(&bytes[..], &index).unwrap();
        let mut lists = Lists::default();
        assert_eq!(lists.take(&index, data, |k| *k != b), 2);
        assert_eq!(lists.get(&a), Some("usr/bin/a\nusr/share/doc/a/README\n"));
        assert_eq!(lists.get(&b), None);
        assert_eq!(lists.get(&c), Some("etc/c\n"));
        lists.insert(b, ["x", "y"]);
        lists.insert([4u8; 32], []);
        assert_eq!(lists.get(&b), Some("x\ny\n"));
        assert_eq!(lists.get(&[4u8; 32]), Some(""));
        assert_eq!(lists.get(&a), Some("usr/bin/a\nusr/share/doc/a/README\n"));
        // An empty pack is a pack.
        let (empty, _) = pack(&[]);
        assert!(read_index(&empty[..]).unwrap().is_empty());
    }

    #[test]
    fn a_torn_or_altered_pack_reads_as_missing() {
        let (bytes, _) = pack(&[([7u8; 32], &["usr/bin/x"]), ([8u8; 32], &["usr/bin/y"])]);
        // Torn anywhere: no trailer, or one that does not add up.
        for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(read_index(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        // A path altered: the index reads, the data does not.
        let mut lying = bytes.clone();
        lying[4] = b'X';
        let index = read_index(&lying[..]).unwrap();
        assert!(read_data(&lying[..], &index).is_none());
        // An index altered.
        let mut lying = bytes.clone();
        let at = "usr/bin/x\nusr/bin/y\n".len() + 3;
        lying[at] ^= 1;
        assert!(read_index(&lying[..]).is_none());
        // A list's length altered and the index's digest made to match:
        // the lengths no longer add up to the data.
        let data_len = "usr/bin/x\nusr/bin/y\n".len();
        let mut forged = bytes[..data_len + 2 * ENTRY].to_vec();
        forged[data_len + 32] += 1;
        let trailer = String::from_utf8(bytes[data_len + 2 * ENTRY..].to_vec()).unwrap();
        let old_sha = trailer.trim_end().rsplit(' ').next().unwrap().to_string();
        let new_sha = crate::hash::sha256_hex(&forged[data_len..]);
        forged.extend_from_slice(trailer.replace(&old_sha, &new_sha).as_bytes());
        assert!(read_index(&forged[..]).is_none());
        // Garbage, and an old joined file, are not packs.
        assert!(read_index(&b"halo-contents-joined-1 00\nab 1\nx\n"[..]).is_none());
        assert!(read_index(&b"\n"[..]).is_none());
    }

    #[test]
    fn keys_are_sha256_hex() {
        assert_eq!(key(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(key(&"AB".repeat(32)), Some([0xab; 32]));
        let sha = crate::hash::sha256_hex(b"x");
        assert_eq!(key(&sha).map(hex::encode), Some(sha.clone()));
        for bad in ["g", "/", ":", "@", "G", " ", "\u{e9}"] {
            let s = format!("{bad}{}", &sha[bad.len()..]);
            assert_eq!(key(&s), None, "{s}");
        }
        assert_eq!(key("ab"), None);
        assert_eq!(key(&"zz".repeat(32)), None);
    }
}
