//! One `.xz` stream made of independently compressed blocks, so that the
//! blocks of an index that did not change between snapshots can be copied
//! from the previous snapshot's `.xz` instead of compressed again.
//!
//! apt reads only the first stream of a `.xz` file, so the blocks cannot be
//! separate streams concatenated: they are blocks of ONE stream, and the
//! stream's index (the list of every block's sizes) and footer are written
//! anew each time. A block's bytes depend only on its plain text, so a
//! block is the same wherever it sits.
//!
//! The container (the .xz file format 1.2.1: stream header, block header,
//! padding, index, footer) is written here in safe Rust; the compressed
//! data inside each block comes from liblzma's raw LZMA2 encoder.
//! liblzma's own block and index encoders (`lzma_block_buffer_encode`,
//! `lzma_index_*`) are not in liblzma-sys's default bindings (only with
//! its `bindgen` feature, which needs libclang to build), and the format
//! is small enough to write and to test against liblzma's decoder and the
//! real `xz -t`. The integrity check is CRC32 (a check type every .xz
//! decoder supports), computed with zlib-rs, which the gzip side uses too.

use std::io;

use liblzma::stream::{Action, Filters, LzmaOptions, Status, Stream};

/// The LZMA2 dictionary: preset 0's. Larger gains little on index text
/// (which repeats field names, not long strings far apart).
const DICT_SIZE: u32 = 1 << 18;

/// The preset the block encoder starts from (the fast one: preset 6 costs
/// ~30 s per 50 MB on these machines).
const PRESET: u32 = 0;

const STREAM_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];
const FOOTER_MAGIC: [u8; 2] = [b'Y', b'Z'];
/// Stream flags: no reserved bits, check type 0x01 (CRC32).
const STREAM_FLAGS: [u8; 2] = [0x00, 0x01];
const FILTER_LZMA2: u64 = 0x21;
const CHECK_SIZE: u64 = 4;

/// One compressed block: its bytes as they sit in the stream (header,
/// data, padding, check), and its unpadded size for the stream's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XzBlock {
    pub bytes: Vec<u8>,
    pub unpadded: u64,
}

fn crc32(data: &[u8]) -> u32 {
    zlib_rs::crc32::crc32(0, data)
}

/// The .xz variable-length integer (7 bits a byte, least significant first).
fn put_vli(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The LZMA2 properties byte for a dictionary of `size` bytes: the
/// smallest encoded size that holds it.
fn dict_prop(size: u32) -> u8 {
    (0u8..40)
        .find(|&p| {
            let decoded = (2u64 | u64::from(p & 1)) << (p / 2 + 11);
            decoded >= u64::from(size)
        })
        .unwrap_or(40)
}

/// Raw LZMA2 of `data` (no container).
fn lzma2(data: &[u8]) -> io::Result<Vec<u8>> {
    let lz = |e: liblzma::stream::Error| io::Error::other(format!("xz block encoder: {e}"));
    let mut opts = LzmaOptions::new_preset(PRESET).map_err(lz)?;
    opts.dict_size(DICT_SIZE);
    let mut filters = Filters::new();
    filters.lzma2(&opts);
    let mut stream = Stream::new_raw_encoder(&filters).map_err(lz)?;
    let mut out = Vec::with_capacity(data.len() / 4 + 4096);
    loop {
        let consumed = stream.total_in() as usize;
        let status = stream
            .process_vec(&data[consumed..], &mut out, Action::Finish)
            .map_err(lz)?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        out.reserve(out.capacity().max(4096));
    }
}

/// Compresses `data` into one complete block.
pub fn encode_block(data: &[u8]) -> io::Result<XzBlock> {
    let compressed = lzma2(data)?;
    let mut header = vec![0u8, 0xC0]; // size (filled below); flags: both sizes, one filter
    put_vli(&mut header, compressed.len() as u64);
    put_vli(&mut header, data.len() as u64);
    put_vli(&mut header, FILTER_LZMA2);
    put_vli(&mut header, 1);
    header.push(dict_prop(DICT_SIZE));
    // Padding so that header + CRC32 is a multiple of four.
    while !(header.len() + 4).is_multiple_of(4) {
        header.push(0);
    }
    header[0] = ((header.len() + 4) / 4 - 1) as u8;
    let crc = crc32(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    let unpadded = (header.len() + compressed.len()) as u64 + CHECK_SIZE;
    let mut bytes = header;
    bytes.extend_from_slice(&compressed);
    pad4(&mut bytes);
    bytes.extend_from_slice(&crc32(data).to_le_bytes());
    Ok(XzBlock { bytes, unpadded })
}

fn get_vli(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..63).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// True when `bytes` is one block as `encode_block` writes it, of
/// `plain_len` plain bytes and `unpadded` unpadded size: the header's CRC
/// and sizes agree. A cheap check of a cached block before it is copied.
pub fn check_block(bytes: &[u8], plain_len: u64, unpadded: u64) -> bool {
    let Some(&size_byte) = bytes.first() else {
        return false;
    };
    let header_len = (usize::from(size_byte) + 1) * 4;
    let Some(header) = bytes.get(..header_len) else {
        return false;
    };
    let (body, crc) = header.split_at(header_len - 4);
    if crc32(body).to_le_bytes() != crc || body.get(1) != Some(&0xC0) {
        return false;
    }
    let mut pos = 2;
    let (Some(compressed), Some(uncompressed)) = (get_vli(body, &mut pos), get_vli(body, &mut pos))
    else {
        return false;
    };
    let padded = (header_len as u64 + compressed).div_ceil(4) * 4;
    uncompressed == plain_len
        && unpadded == header_len as u64 + compressed + CHECK_SIZE
        && bytes.len() as u64 == padded + CHECK_SIZE
}

/// The 12-byte stream header.
pub fn stream_header() -> Vec<u8> {
    let mut out = STREAM_MAGIC.to_vec();
    out.extend_from_slice(&STREAM_FLAGS);
    out.extend_from_slice(&crc32(&STREAM_FLAGS).to_le_bytes());
    out
}

/// The stream's index and footer for blocks of (unpadded size,
/// uncompressed size), in order.
pub fn stream_tail(blocks: &[(u64, u64)]) -> Vec<u8> {
    let mut index = vec![0u8]; // index indicator
    put_vli(&mut index, blocks.len() as u64);
    for &(unpadded, uncompressed) in blocks {
        put_vli(&mut index, unpadded);
        put_vli(&mut index, uncompressed);
    }
    pad4(&mut index);
    let crc = crc32(&index);
    index.extend_from_slice(&crc.to_le_bytes());
    let backward = (index.len() / 4 - 1) as u32;
    let mut tail = index;
    let mut footer = backward.to_le_bytes().to_vec();
    footer.extend_from_slice(&STREAM_FLAGS);
    tail.extend_from_slice(&crc32(&footer).to_le_bytes());
    tail.extend_from_slice(&footer);
    tail.extend_from_slice(&FOOTER_MAGIC);
    tail
}

/// A whole stream of the given blocks.
pub fn stream(blocks: &[XzBlock], plain_lens: &[u64]) -> Vec<u8> {
    let mut out = stream_header();
    for b in blocks {
        out.extend_from_slice(&b.bytes);
    }
    let sizes: Vec<(u64, u64)> = blocks
        .iter()
        .zip(plain_lens)
        .map(|(b, &n)| (b.unpadded, n))
        .collect();
    out.extend_from_slice(&stream_tail(&sizes));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn unxz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // The single-stream decoder: what apt reads (one stream only).
        liblzma::read::XzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn dictionary_property_matches_liblzma() {
        assert_eq!(dict_prop(1 << 18), 12);
        assert_eq!(dict_prop(3 << 17), 13);
        assert_eq!(dict_prop(1 << 12), 0);
    }

    #[test]
    fn blocks_make_one_stream_that_decodes_whole() {
        let parts: Vec<Vec<u8>> = (0..5u32)
            .map(|i| {
                (0..2000u32)
                    .flat_map(|j| format!("Package: p{i}-{j}\nVersion: {j}\n\n").into_bytes())
                    .collect()
            })
            .chain([Vec::new(), b"x".to_vec()])
            .collect();
        let blocks: Vec<XzBlock> = parts.iter().map(|p| encode_block(p).unwrap()).collect();
        let lens: Vec<u64> = parts.iter().map(|p| p.len() as u64).collect();
        let xz = stream(&blocks, &lens);
        assert_eq!(unxz(&xz), parts.concat());
        // A block is the same bytes wherever it sits.
        assert_eq!(encode_block(&parts[2]).unwrap(), blocks[2]);
        for (b, n) in blocks.iter().zip(&lens) {
            assert!(check_block(&b.bytes, *n, b.unpadded));
            assert!(!check_block(&b.bytes, *n + 1, b.unpadded));
            assert!(!check_block(&b.bytes[1..], *n, b.unpadded));
            assert!(!check_block(&b.bytes[..b.bytes.len() - 1], *n, b.unpadded));
        }
        // No blocks: still a valid (empty) stream.
        assert!(unxz(&stream(&[], &[])).is_empty());
    }
}
