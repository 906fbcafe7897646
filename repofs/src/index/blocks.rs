//! Block-cached compression of large indices: the cost of a snapshot's
//! `.gz`/`.xz` follows what changed, not the size of the index.
//!
//! An index's plain text is cut into blocks at record boundaries (stanzas
//! of `Packages`/`Sources`, lines of `Contents`), content-defined: a block
//! ends after a record whose first line hashes to a cut point (with a
//! minimum and maximum block size), so a changed record changes only its
//! own block and the cuts after it do not shift. Each block is compressed
//! on its own (`gzblocks`, `xzblocks`), and the compressed files are the
//! blocks stitched into one gzip member and one xz stream.
//!
//! Beside each compressed index, the store keeps a [`BlockMap`]: every
//! block's plain length and digest, and the length of its piece in the
//! `.gz` and the `.xz`. The next snapshot reads the previous index's map
//! and blobs ([`Previous`]) and copies the pieces of blocks it finds there;
//! only new blocks are compressed, on all cores. A block's compressed bytes
//! depend only on its plain bytes, so the result is the same whether a
//! piece was copied or compressed: the output is a function of the index.

use std::collections::HashMap;
use std::io;
use std::ops::Range;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::common::{common_prefix, common_suffix};
use super::{gzblocks, xzblocks};

/// Indices at least this large are compressed in blocks; smaller ones are
/// compressed whole at stronger settings (they cost little either way).
pub const BLOCKS_FROM: usize = 1 << 20;

/// Block sizes: cut points are chosen so that a block averages about
/// `min + spread`. See docs/performance.md for sizes against block size.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub min: usize,
    pub spread: usize,
    pub max: usize,
}

/// The block sizes of indices (measured: docs/performance.md).
pub const SIZES: Sizes = Sizes {
    min: 32 << 10,
    spread: 96 << 10,
    max: 512 << 10,
};

/// How records are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    /// Stanzas ending in a blank line (`Packages`, `Sources`).
    Stanzas,
    /// Lines (`Contents`).
    Lines,
}

/// FNV-1a: a cheap, stable hash of a record's first line. Stability across
/// versions matters (cut points must not move with a new build), speed
/// matters (every record of every index), strength does not.
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Ends of records in `plain` (exclusive), in order; the last one is
/// `plain.len()` even if the text does not end with a delimiter.
fn record_ends(plain: &[u8], records: Records) -> impl Iterator<Item = usize> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= plain.len() {
            return None;
        }
        let end = match records {
            Records::Lines => memchr::memchr(b'\n', &plain[pos..]).map(|i| pos + i + 1),
            Records::Stanzas => memchr::memmem::find(&plain[pos..], b"\n\n").map(|i| pos + i + 2),
        }
        .unwrap_or(plain.len());
        pos = end;
        Some(end)
    })
}

/// Cuts `plain` into blocks at record boundaries.
pub fn split(plain: &[u8], records: Records, sizes: Sizes) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut rec_start = 0;
    for end in record_ends(plain, records) {
        let rec = &plain[rec_start..end];
        let first = &rec[..memchr::memchr(b'\n', rec).unwrap_or(rec.len())];
        let len = end - start;
        // The chance of a cut grows with the record's length, so the
        // average block size does not depend on record sizes.
        let cut = len >= sizes.max
            || (len >= sizes.min
                && (fnv1a(first) % sizes.spread.max(1) as u64) < (end - rec_start) as u64);
        rec_start = end;
        if cut {
            out.push(start..end);
            start = end;
        }
    }
    if start < plain.len() {
        out.push(start..plain.len());
    }
    out
}

/// What the map knows of one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    pub plain_len: u64,
    pub sha256: [u8; 32],
    pub crc32: u32,
    /// Length of its piece in the `.gz` (0 when there is no `.gz`).
    pub gz_len: u64,
    /// Length of its block in the `.xz` and its unpadded size (0 without).
    pub xz_len: u64,
    pub xz_unpadded: u64,
}

/// A compressed blob a map describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub sha256: String,
    pub size: u64,
}

/// The blocks of one plain index and where their compressed pieces sit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMap {
    pub gz: Option<BlobRef>,
    pub xz: Option<BlobRef>,
    pub blocks: Vec<BlockEntry>,
}

/// The first word of a map: its format. A new block layout or new
/// compressor settings need a new word, so old maps are not used.
const MAGIC: &str = "halo-blocks-1";

impl BlockMap {
    /// The text of the map, checksummed (`decode` refuses a torn one).
    pub fn encode(&self) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut body = String::new();
        for (name, r) in [("gz", &self.gz), ("xz", &self.xz)] {
            if let Some(r) = r {
                let _ = writeln!(body, "{name} {} {}", r.sha256, r.size);
            }
        }
        for b in &self.blocks {
            let _ = writeln!(
                body,
                "b {} {:08x} {} {} {} {}",
                b.plain_len,
                b.crc32,
                b.gz_len,
                b.xz_len,
                b.xz_unpadded,
                hex::encode(b.sha256)
            );
        }
        let mut out = format!("{MAGIC} {}\n", crate::hash::sha256_hex(body.as_bytes()));
        out.push_str(&body);
        out.into_bytes()
    }

    /// A map `encode` wrote, whole; `None` for anything else.
    pub fn decode(data: &[u8]) -> Option<BlockMap> {
        let text = std::str::from_utf8(data).ok()?;
        let (header, body) = text.split_once('\n')?;
        if header.strip_prefix(MAGIC)?.strip_prefix(' ')?
            != crate::hash::sha256_hex(body.as_bytes())
        {
            return None;
        }
        let mut map = BlockMap {
            gz: None,
            xz: None,
            blocks: Vec::new(),
        };
        for line in body.lines() {
            let mut w = line.split(' ');
            match w.next()? {
                kind @ ("gz" | "xz") => {
                    let r = BlobRef {
                        sha256: w.next()?.to_string(),
                        size: w.next()?.parse().ok()?,
                    };
                    if !crate::hash::is_sha256_hex(&r.sha256) {
                        return None;
                    }
                    if kind == "gz" {
                        map.gz = Some(r);
                    } else {
                        map.xz = Some(r);
                    }
                }
                "b" => {
                    let mut sha256 = [0u8; 32];
                    let plain_len = w.next()?.parse().ok()?;
                    let crc32 = u32::from_str_radix(w.next()?, 16).ok()?;
                    let gz_len = w.next()?.parse().ok()?;
                    let xz_len = w.next()?.parse().ok()?;
                    let xz_unpadded = w.next()?.parse().ok()?;
                    hex::decode_to_slice(w.next()?, &mut sha256).ok()?;
                    map.blocks.push(BlockEntry {
                        plain_len,
                        sha256,
                        crc32,
                        gz_len,
                        xz_len,
                        xz_unpadded,
                    });
                }
                _ => return None,
            }
            if w.next().is_some() {
                return None;
            }
        }
        Some(map)
    }
}

/// A previous index's map with its compressed blobs, checked to fit each
/// other: only then may its pieces be copied into a new index.
pub struct Previous {
    /// Block digest -> its index in the map.
    pieces: HashMap<[u8; 32], usize>,
    /// Each block's (gz piece, xz block) ranges in the blobs.
    spans: Vec<(Range<usize>, Range<usize>)>,
    /// (start, length) in the previous plain index -> the block's index.
    at: HashMap<(usize, usize), usize>,
    map: BlockMap,
    gz: Blob,
    xz: Blob,
    /// The previous plain index, when given (see [`Previous::with_plain`]).
    plain: Option<Blob>,
}

/// A previous blob's bytes: read, or mapped from the pool.
type Blob = Box<dyn std::ops::Deref<Target = [u8]> + Send + Sync>;

impl Previous {
    /// `gz` and `xz` are the whole blobs the map names (empty when the map
    /// names none). `None` when they do not match the map (sizes, digests,
    /// framing): the caller then compresses everything.
    pub fn new<B>(map: BlockMap, gz: B, xz: B) -> Option<Previous>
    where
        B: std::ops::Deref<Target = [u8]> + Send + Sync + 'static,
    {
        let (gz, xz): (Blob, Blob) = (Box::new(gz), Box::new(xz));
        let check = |r: &Option<BlobRef>, data: &[u8], framing: usize, pieces: u64| match r {
            None => data.is_empty(),
            Some(r) => {
                r.size == data.len() as u64
                    && framing as u64 + pieces == r.size
                    && crate::hash::sha256_hex(data) == r.sha256
            }
        };
        let gz_pieces: u64 = map.blocks.iter().map(|b| b.gz_len).sum();
        let xz_pieces: u64 = map.blocks.iter().map(|b| b.xz_len).sum();
        let xz_framing = match &map.xz {
            Some(_) => {
                let sizes: Vec<(u64, u64)> = map
                    .blocks
                    .iter()
                    .map(|b| (b.xz_unpadded, b.plain_len))
                    .collect();
                xzblocks::stream_header().len() + xzblocks::stream_tail(&sizes).len()
            }
            None => 0,
        };
        if !check(&map.gz, &gz, gzblocks::HEADER.len() + 10, gz_pieces)
            || !check(&map.xz, &xz, xz_framing, xz_pieces)
        {
            return None;
        }
        let (mut pieces, mut spans, mut at) = (HashMap::new(), Vec::new(), HashMap::new());
        let mut start = 0;
        let (mut g, mut x) = (gzblocks::HEADER.len(), xzblocks::stream_header().len());
        for (i, b) in map.blocks.iter().enumerate() {
            let (gl, xl) = (b.gz_len as usize, b.xz_len as usize);
            // Each piece where the map says: a gz piece ends with the full
            // flush's marker, an xz block's header states its sizes.
            if map.gz.is_some() && !gz[g..g + gl].ends_with(&gzblocks::FLUSH_MARK) {
                return None;
            }
            if map.xz.is_some()
                && !xzblocks::check_block(&xz[x..x + xl], b.plain_len, b.xz_unpadded)
            {
                return None;
            }
            pieces.insert(b.sha256, i);
            spans.push((g..g + gl, x..x + xl));
            at.insert((start, b.plain_len as usize), i);
            start += b.plain_len as usize;
            g += gl;
            x += xl;
        }
        Some(Previous {
            pieces,
            spans,
            at,
            map,
            gz,
            xz,
            plain: None,
        })
    }

    /// Adds the previous plain index (the blob the map is named by), whose
    /// bytes the new index is compared with: a block inside the part both
    /// share at the start or the end is found by its place, with no digest
    /// of its bytes; only the blocks in between are hashed. Not used when
    /// its length is not the map's.
    pub fn with_plain<B>(mut self, plain: B) -> Previous
    where
        B: std::ops::Deref<Target = [u8]> + Send + Sync + 'static,
    {
        let len: u64 = self.map.blocks.iter().map(|b| b.plain_len).sum();
        if plain.len() as u64 == len {
            self.plain = Some(Box::new(plain));
        }
        self
    }

    pub fn map(&self) -> &BlockMap {
        &self.map
    }
}

/// Which compressed forms to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forms {
    pub gz: bool,
    pub xz: bool,
}

/// The compressed forms of one index and the map of its blocks (the map's
/// blob references are left for the caller, who hashes the blobs).
pub struct Compressed {
    pub gz: Option<Vec<u8>>,
    pub xz: Option<Vec<u8>>,
    pub blocks: Vec<BlockEntry>,
    /// Blocks copied from the previous index / compressed here.
    pub reused: usize,
    pub compressed: usize,
}

/// One block's pieces: copied from `prev` or compressed here.
struct Piece<'a> {
    entry: BlockEntry,
    gz: std::borrow::Cow<'a, [u8]>,
    xz: std::borrow::Cow<'a, [u8]>,
    reused: bool,
}

/// Compresses `plain` in blocks, copying the pieces of blocks `prev` has.
pub fn compress(
    plain: &[u8],
    records: Records,
    forms: Forms,
    prev: Option<&Previous>,
) -> io::Result<Compressed> {
    compress_sized(plain, records, forms, prev, SIZES)
}

pub fn compress_sized(
    plain: &[u8],
    records: Records,
    forms: Forms,
    prev: Option<&Previous>,
    sizes: Sizes,
) -> io::Result<Compressed> {
    let pieces = pieces_sized(plain, records, forms, prev, sizes)?;
    let assemble = |len: usize, write: &dyn Fn(&mut [u8])| {
        let mut out = vec![0; len];
        write(&mut out);
        out
    };
    let gz = forms
        .gz
        .then(|| assemble(pieces.gz_len(), &|out| pieces.write_gz(out)));
    let xz = forms
        .xz
        .then(|| assemble(pieces.xz_len(), &|out| pieces.write_xz(out)));
    Ok(Compressed {
        gz,
        xz,
        compressed: pieces.compressed(),
        reused: pieces.reused(),
        blocks: pieces.entries(),
    })
}

/// An index's blocks, each copied from the previous index or compressed,
/// not yet stitched: the caller writes each form where it will be kept
/// (a large index's `.gz` and `.xz` go straight into their files).
pub struct Pieces<'a> {
    pieces: Vec<Piece<'a>>,
    forms: Forms,
}

/// [`compress`], stopping before the pieces are stitched.
pub fn pieces<'a>(
    plain: &'a [u8],
    records: Records,
    forms: Forms,
    prev: Option<&'a Previous>,
) -> io::Result<Pieces<'a>> {
    pieces_sized(plain, records, forms, prev, SIZES)
}

fn pieces_sized<'a>(
    plain: &'a [u8],
    records: Records,
    forms: Forms,
    prev: Option<&'a Previous>,
    sizes: Sizes,
) -> io::Result<Pieces<'a>> {
    let ranges = split(plain, records, sizes);
    let shared = prev
        .filter(|p| p.plain.is_some())
        .map(|p| Shared::of(p, plain));
    let pieces: Vec<Piece<'_>> = ranges
        .par_iter()
        .map(|r| {
            let by_place = prev.zip(shared.as_ref()).and_then(|(p, shared)| {
                let i = shared.block_at(p, r)?;
                p.reuse(i, forms)
            });
            match by_place {
                Some(piece) => Ok(piece),
                None => piece(&plain[r.clone()], forms, prev),
            }
        })
        .collect::<io::Result<_>>()?;
    Ok(Pieces { pieces, forms })
}

/// How much of the new plain index is byte for byte the previous one's:
/// a common prefix and a common suffix, not overlapping.
struct Shared {
    prefix: usize,
    suffix: usize,
    new_len: usize,
    old_len: usize,
}

impl Shared {
    fn of(prev: &Previous, new: &[u8]) -> Shared {
        let old: &[u8] = prev.plain.as_deref().map_or(&[], |p| &p[..]);
        let prefix = common_prefix(old, new);
        let room = old.len().min(new.len()) - prefix;
        let suffix = common_suffix(&old[old.len() - room..], &new[new.len() - room..]);
        Shared {
            prefix,
            suffix,
            new_len: new.len(),
            old_len: old.len(),
        }
    }

    /// The previous block holding exactly the bytes of new block `r`, when
    /// `r` lies inside the shared prefix or suffix and a previous block
    /// has the same place (cuts depend only on content, so past a change
    /// they fall in the same places again).
    fn block_at(&self, prev: &Previous, r: &Range<usize>) -> Option<usize> {
        let len = r.end - r.start;
        let start = if r.end <= self.prefix {
            r.start
        } else if r.start >= self.new_len - self.suffix {
            r.start + self.old_len - self.new_len
        } else {
            return None;
        };
        prev.at.get(&(start, len)).copied()
    }
}

impl Pieces<'_> {
    /// The length of the `.gz`: one member, the pieces between its header
    /// and trailer (0 when the form was not made).
    pub fn gz_len(&self) -> usize {
        if !self.forms.gz {
            return 0;
        }
        let pieces: usize = self.pieces.iter().map(|p| p.gz.len()).sum();
        gzblocks::HEADER.len() + pieces + gzblocks::trailer(0, 0).len()
    }

    /// Writes the `.gz` into `out`, exactly [`Pieces::gz_len`] long.
    pub fn write_gz(&self, out: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&gzblocks::HEADER);
        let (mut crc, mut len) = (0u32, 0u64);
        for p in &self.pieces {
            put(&p.gz);
            crc = gzblocks::crc32_combine(crc, p.entry.crc32, p.entry.plain_len);
            len += p.entry.plain_len;
        }
        put(&gzblocks::trailer(crc, len));
    }

    fn xz_tail(&self) -> Vec<u8> {
        let sizes: Vec<(u64, u64)> = self
            .pieces
            .iter()
            .map(|p| (p.entry.xz_unpadded, p.entry.plain_len))
            .collect();
        xzblocks::stream_tail(&sizes)
    }

    /// The length of the `.xz`: one stream (0 when the form was not made).
    pub fn xz_len(&self) -> usize {
        if !self.forms.xz {
            return 0;
        }
        let pieces: usize = self.pieces.iter().map(|p| p.xz.len()).sum();
        xzblocks::stream_header().len() + pieces + self.xz_tail().len()
    }

    /// Writes the `.xz` into `out`, exactly [`Pieces::xz_len`] long.
    pub fn write_xz(&self, out: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&xzblocks::stream_header());
        for p in &self.pieces {
            put(&p.xz);
        }
        put(&self.xz_tail());
    }

    /// Each block's entry, for the index's [`BlockMap`].
    pub fn entries(&self) -> Vec<BlockEntry> {
        self.pieces.iter().map(|p| p.entry.clone()).collect()
    }

    pub fn reused(&self) -> usize {
        self.pieces.iter().filter(|p| p.reused).count()
    }

    pub fn compressed(&self) -> usize {
        self.pieces.len() - self.reused()
    }
}

impl Previous {
    /// Block `i`'s pieces, if the previous index had every form wanted now.
    fn reuse(&self, i: usize, forms: Forms) -> Option<Piece<'_>> {
        let old = &self.map.blocks[i];
        let (g, x) = &self.spans[i];
        let has = |want: bool, len: u64| !want || len > 0;
        if !has(forms.gz, old.gz_len) || !has(forms.xz, old.xz_len) {
            return None;
        }
        let (gz, xz) = (
            if forms.gz {
                &self.gz[g.clone()]
            } else {
                &[][..]
            },
            if forms.xz {
                &self.xz[x.clone()]
            } else {
                &[][..]
            },
        );
        Some(Piece {
            entry: BlockEntry {
                gz_len: gz.len() as u64,
                xz_len: xz.len() as u64,
                xz_unpadded: if forms.xz { old.xz_unpadded } else { 0 },
                ..old.clone()
            },
            gz: gz.into(),
            xz: xz.into(),
            reused: true,
        })
    }
}

fn piece<'a>(block: &[u8], forms: Forms, prev: Option<&'a Previous>) -> io::Result<Piece<'a>> {
    let sha256: [u8; 32] = Sha256::digest(block).into();
    if let Some(p) = prev {
        if let Some(&i) = p.pieces.get(&sha256) {
            if p.map.blocks[i].plain_len == block.len() as u64 {
                if let Some(piece) = p.reuse(i, forms) {
                    return Ok(piece);
                }
            }
        }
    }
    let (gz, crc32) = if forms.gz {
        gzblocks::deflate_piece(block)?
    } else {
        (Vec::new(), gzblocks::crc32(block))
    };
    let (xz, xz_unpadded) = if forms.xz {
        let b = xzblocks::encode_block(block)?;
        (b.bytes, b.unpadded)
    } else {
        (Vec::new(), 0)
    };
    Ok(Piece {
        entry: BlockEntry {
            plain_len: block.len() as u64,
            sha256,
            crc32,
            gz_len: gz.len() as u64,
            xz_len: xz.len() as u64,
            xz_unpadded,
        },
        gz: gz.into(),
        xz: xz.into(),
        reused: false,
    })
}

/// The map of `c`, naming the blobs its compressed forms were stored as.
pub fn map_of(c: &Compressed, gz: Option<BlobRef>, xz: Option<BlobRef>) -> BlockMap {
    BlockMap {
        gz,
        xz,
        blocks: c.blocks.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const BOTH: Forms = Forms { gz: true, xz: true };
    const SMALL: Sizes = Sizes {
        min: 2 << 10,
        spread: 6 << 10,
        max: 32 << 10,
    };

    fn packages(names: impl Iterator<Item = u32>, version: &str) -> Vec<u8> {
        names
            .flat_map(|i| {
                format!(
                    "Package: pkg{i:06}\nVersion: {version}\nArchitecture: amd64\n\
                     Description: package {i}\n\n"
                )
                .into_bytes()
            })
            .collect()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn unxz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Compresses `plain` after `prev` (plain text), checking everything
    /// the snapshot relies on; returns (reused, compressed) block counts.
    fn previous(p: &[u8]) -> Previous {
        let c = compress_sized(p, Records::Stanzas, BOTH, None, SMALL).unwrap();
        let (gz, xz) = (c.gz.clone().unwrap(), c.xz.clone().unwrap());
        let r = |d: &[u8]| BlobRef {
            sha256: crate::hash::sha256_hex(d),
            size: d.len() as u64,
        };
        let map = map_of(&c, Some(r(&gz)), Some(r(&xz)));
        assert_eq!(BlockMap::decode(&map.encode()), Some(map.clone()));
        Previous::new(map, gz, xz).expect("a map fits its own blobs")
    }

    /// Compresses `plain` with the blocks of `prev` found by digest, and
    /// found by place too (the previous plain given): both are the fresh
    /// result byte for byte and copy the same blocks.
    fn round(prev: Option<&[u8]>, plain: &[u8]) -> (usize, usize) {
        let fresh = compress_sized(plain, Records::Stanzas, BOTH, None, SMALL).unwrap();
        let mut counts = Vec::new();
        for by_place in [false, true] {
            let prev = prev.map(|p| match by_place {
                false => previous(p),
                true => previous(p).with_plain(p.to_vec()),
            });
            let c = compress_sized(plain, Records::Stanzas, BOTH, prev.as_ref(), SMALL).unwrap();
            assert_eq!(gunzip(c.gz.as_ref().unwrap()), plain);
            assert_eq!(unxz(c.xz.as_ref().unwrap()), plain);
            // Copied or compressed, the same bytes.
            assert_eq!(c.gz, fresh.gz);
            assert_eq!(c.xz, fresh.xz);
            assert_eq!(c.blocks, fresh.blocks);
            counts.push((c.reused, c.compressed));
        }
        assert_eq!(counts[0], counts[1]);
        counts[0]
    }

    #[test]
    fn blocks_in_the_shared_ends_are_found_by_place() {
        let base = packages(0..4000, "1");
        // A change in the middle, the text around it shifted by its growth.
        let changed: Vec<u8> = packages(0..2000, "1")
            .into_iter()
            .chain(packages(2000..2050, "22"))
            .chain(packages(2050..4000, "1"))
            .collect();
        let prev = previous(&base).with_plain(base.clone());
        let shared = Shared::of(&prev, &changed);
        assert!(shared.prefix > 0 && shared.suffix > 0);
        let ranges = split(&changed, Records::Stanzas, SMALL);
        let placed: Vec<Option<usize>> = ranges.iter().map(|r| shared.block_at(&prev, r)).collect();
        let (head, tail) = (placed.first().unwrap(), placed.last().unwrap());
        assert_eq!(*head, Some(0));
        assert_eq!(*tail, Some(prev.map.blocks.len() - 1));
        // Those found by place hold exactly the bytes of the previous block.
        let mut starts = vec![0];
        for b in &prev.map.blocks {
            starts.push(starts.last().unwrap() + b.plain_len as usize);
        }
        for (r, i) in ranges.iter().zip(&placed) {
            if let Some(i) = i {
                assert_eq!(&changed[r.clone()], &base[starts[*i]..starts[*i + 1]]);
            }
        }
        assert!(
            placed.iter().any(Option::is_none),
            "the changed block is not"
        );
        // A plain that is not the map's is not used.
        let wrong = previous(&base).with_plain(b"short".to_vec());
        assert!(wrong.plain.is_none());
    }

    #[test]
    fn cuts_are_at_records_and_do_not_shift() {
        let a = packages(0..3000, "1");
        let blocks = split(&a, Records::Stanzas, SMALL);
        assert!(blocks.len() > 10, "{}", blocks.len());
        let mut at = 0;
        for b in &blocks {
            assert_eq!(b.start, at);
            assert!(a[..b.end].ends_with(b"\n\n"));
            assert!(b.len() <= SMALL.max + 200);
            at = b.end;
        }
        assert_eq!(at, a.len());
        // One stanza changed in the middle: the cuts after its block stay.
        let b = packages(0..1500, "1")
            .into_iter()
            .chain(packages(1500..1501, "2"))
            .chain(packages(1501..3000, "1"))
            .collect::<Vec<_>>();
        let cuts_a: std::collections::BTreeSet<usize> = blocks.iter().map(|r| r.end).collect();
        let cuts_b: std::collections::BTreeSet<usize> = split(&b, Records::Stanzas, SMALL)
            .iter()
            .map(|r| r.end)
            .collect();
        let before = cuts_a.iter().filter(|c| **c < a.len() / 2).count();
        let same = cuts_a.intersection(&cuts_b).count();
        assert!(same + 2 >= cuts_a.len(), "{same} of {}", cuts_a.len());
        assert!(before > 0);
    }

    #[test]
    fn changed_unchanged_added_and_removed_blocks_stitch_exactly() {
        let base = packages(0..4000, "1");
        // Unchanged: every block copied.
        let (reused, compressed) = round(Some(&base), &base);
        assert_eq!(compressed, 0);
        assert!(reused > 10);
        // Changed: a few stanzas get a new version.
        let changed: Vec<u8> = packages(0..100, "2")
            .into_iter()
            .chain(packages(100..4000, "1"))
            .collect();
        let (reused, compressed) = round(Some(&base), &changed);
        assert!((1..=3).contains(&compressed), "{compressed}");
        assert!(reused > compressed * 5);
        // Added at the end and in the middle, removed at the start.
        let grown: Vec<u8> = packages(50..2000, "1")
            .into_iter()
            .chain(packages(10_000..10_300, "1"))
            .chain(packages(2000..4000, "1"))
            .chain(packages(20_000..20_500, "1"))
            .collect();
        let (reused, compressed) = round(Some(&base), &grown);
        assert!(reused > compressed, "{reused} {compressed}");
        // From nothing and to nothing.
        round(None, &base);
        round(Some(&base), b"");
        round(Some(b""), &base);
        // A text not ending in a blank line.
        round(Some(&base), b"Package: a\n\nPackage: b\n");
    }

    #[test]
    fn a_map_that_does_not_fit_its_blobs_is_not_used() {
        let base = packages(0..2000, "1");
        let c = compress_sized(&base, Records::Stanzas, BOTH, None, SMALL).unwrap();
        let (gz, xz) = (c.gz.clone().unwrap(), c.xz.clone().unwrap());
        let r = |d: &[u8]| BlobRef {
            sha256: crate::hash::sha256_hex(d),
            size: d.len() as u64,
        };
        let map = map_of(&c, Some(r(&gz)), Some(r(&xz)));
        assert!(Previous::new(map.clone(), gz.clone(), xz.clone()).is_some());
        // A blob whose bytes changed (same size).
        let mut bad = xz.clone();
        bad[100] ^= 1;
        assert!(Previous::new(map.clone(), gz.clone(), bad).is_none());
        // Blobs the map does not name.
        assert!(Previous::new(map.clone(), xz.clone(), gz.clone()).is_none());
        // A map whose block lengths lie (re-hashed, so it decodes).
        let mut lying = map.clone();
        lying.blocks[0].gz_len += 1;
        lying.blocks[1].gz_len -= 1;
        assert!(BlockMap::decode(&lying.encode()).is_some());
        let p = Previous::new(lying, gz, xz);
        assert!(p.is_none(), "the sums fit, the pieces' ends do not");
        // A torn or altered map does not decode.
        let text = map.encode();
        assert!(BlockMap::decode(&text[..text.len() - 5]).is_none());
        let mut altered = text.clone();
        let n = altered.len() - 3;
        altered[n] = if altered[n] == b'0' { b'1' } else { b'0' };
        assert!(BlockMap::decode(&altered).is_none());
        assert!(BlockMap::decode(b"").is_none());
    }

    #[test]
    fn lines_for_contents_and_gz_only() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("usr/share/doc/p{i}/README misc/p{i}\n").into_bytes())
            .collect();
        let gz_only = Forms {
            gz: true,
            xz: false,
        };
        let c = compress_sized(&text, Records::Lines, gz_only, None, SMALL).unwrap();
        assert!(c.xz.is_none());
        let gz = c.gz.clone().unwrap();
        assert_eq!(gunzip(&gz), text);
        let map = map_of(
            &c,
            Some(BlobRef {
                sha256: crate::hash::sha256_hex(&gz),
                size: gz.len() as u64,
            }),
            None,
        );
        let prev = Previous::new(map, gz.clone(), Vec::new()).unwrap();
        let again = compress_sized(&text, Records::Lines, gz_only, Some(&prev), SMALL).unwrap();
        assert_eq!(again.gz, Some(gz));
        assert_eq!(again.compressed, 0);
        // A map without xz cannot give xz pieces: those blocks are compressed.
        let both = compress_sized(&text, Records::Lines, BOTH, Some(&prev), SMALL).unwrap();
        assert_eq!(both.reused, 0);
        assert_eq!(unxz(both.xz.as_ref().unwrap()), text);
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// A `Packages` like bench/store.py's at `n` packages (hashes differ
    /// per package, as real ones do).
    fn bench_packages(n: u32, churned: &dyn Fn(u32) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let v = if churned(i) { "1.1" } else { "1.0" };
            let h = crate::hash::digest(format!("{i} {v}").as_bytes());
            out.extend_from_slice(
                format!(
                    "Package: bench-pkg{i:06}\nVersion: {v}\nArchitecture: amd64\n\
                     Maintainer: Bench <bench@example.org>\nInstalled-Size: 1\n\
                     Depends: libc6 (>= 2.17)\n\
                     Filename: pool/main/b/bench-pkg{i:06}/bench-pkg{i:06}_{v}_amd64.deb\n\
                     Size: {}\nMD5sum: {}\nSHA1: {}\nSHA256: {}\nSection: misc\n\
                     Priority: optional\nDescription: synthetic benchmark package \
                     bench-pkg{i:06}\n Generated by rustedhalo's bench/gen_debs.py to \
                     measure the store.\n\n",
                    700 + i % 300,
                    h.md5,
                    h.sha1,
                    h.sha256
                )
                .as_bytes(),
            );
        }
        out
    }

    /// Sizes and times against block size:
    /// `cargo test --release -p repofs --lib blocks::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn sizes_and_times_by_block_size() {
        let n = 50_000;
        let base = bench_packages(n, &|_| false);
        let t = std::time::Instant::now();
        let whole_gz = crate::index::compress::gzip(&base).unwrap();
        let gz_t = t.elapsed();
        let t = std::time::Instant::now();
        let whole_xz = crate::index::compress::xz(&base).unwrap();
        eprintln!(
            "plain {} B; whole: gz {} B ({gz_t:?}), xz MT 4 MiB {} B ({:?})",
            base.len(),
            whole_gz.len(),
            whole_xz.len(),
            t.elapsed()
        );
        let clustered = bench_packages(n, &|i| i < n / 100);
        let random = bench_packages(n, &|i| (i.wrapping_mul(2_654_435_761) >> 7) % 100 == 0);
        for avg_kib in [64usize, 128, 256, 512, 1024] {
            let sizes = Sizes {
                min: (avg_kib << 10) / 4,
                spread: (avg_kib << 10) * 3 / 4,
                max: (avg_kib << 10) * 4,
            };
            let both = Forms { gz: true, xz: true };
            let t = std::time::Instant::now();
            let c = compress_sized(&base, Records::Stanzas, both, None, sizes).unwrap();
            let full_t = t.elapsed();
            let (gz, xz) = (c.gz.clone().unwrap(), c.xz.clone().unwrap());
            let r = |d: &[u8]| BlobRef {
                sha256: crate::hash::sha256_hex(d),
                size: d.len() as u64,
            };
            let map = map_of(&c, Some(r(&gz)), Some(r(&xz)));
            let prev = Previous::new(map, gz.clone(), xz.clone()).unwrap();
            let mut line = format!(
                "avg {avg_kib} KiB: {} blocks, gz {} B ({:+.1}%), xz {} B ({:+.1}%), all {full_t:?}",
                c.blocks.len(),
                gz.len(),
                100.0 * (gz.len() as f64 / whole_gz.len() as f64 - 1.0),
                xz.len(),
                100.0 * (xz.len() as f64 / whole_xz.len() as f64 - 1.0)
            );
            for (name, text) in [("clustered", &clustered), ("random", &random)] {
                let t = std::time::Instant::now();
                let c = compress_sized(text, Records::Stanzas, both, Some(&prev), sizes).unwrap();
                line.push_str(&format!(
                    "; {name} 1%: {} of {} compressed, {:?}",
                    c.compressed,
                    c.blocks.len(),
                    t.elapsed()
                ));
            }
            eprintln!("{line}");
        }
    }
}
