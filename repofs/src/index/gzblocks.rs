//! One gzip member made of independently compressed deflate pieces (what
//! pigz does), so that the pieces of an index that did not change between
//! snapshots can be copied from the previous snapshot's `.gz`.
//!
//! Each piece is raw deflate from a fresh compressor (it refers to no data
//! before it) ended with a full flush, which leaves it byte-aligned and not
//! final; the member ends with an empty final block, the CRC32 of the whole
//! plain text (combined from the pieces' CRCs, so an unchanged piece is
//! never read again) and its length. One member, not concatenated members:
//! every gzip reader handles it, including those that stop after the first
//! member.

use std::io;

use flate2::{Compress, Compression, FlushCompress, Status};

/// gzip level for large indices: level 3 is several times faster than 6
/// for a file a few per cent larger.
pub const LEVEL: u32 = 3;

/// The 10-byte header: deflate, no name, no time, unknown OS (what
/// flate2's `GzBuilder` writes), so the output depends only on the data.
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

/// How a full flush ends a piece: an empty stored block.
pub const FLUSH_MARK: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A final, empty, fixed-Huffman deflate block.
pub const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// One piece: raw deflate of `data`, full-flushed, and the CRC32 of `data`.
pub fn deflate_piece(data: &[u8]) -> io::Result<(Vec<u8>, u32)> {
    let mut c = Compress::new(Compression::new(LEVEL), false);
    let mut out = Vec::with_capacity(data.len() / 3 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Full)
            .map_err(|e| io::Error::other(format!("deflate: {e}")))
            .and_then(|s| match s {
                Status::Ok | Status::BufError => Ok(()),
                Status::StreamEnd => Err(io::Error::other("deflate ended a flushed piece")),
            })?;
        // The flush is complete once all input is taken and the
        // compressor left output room unused.
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            return Ok((out, crc32(data)));
        }
        out.reserve(out.capacity().max(4096));
    }
}

pub fn crc32(data: &[u8]) -> u32 {
    zlib_rs::crc32::crc32(0, data)
}

/// The CRC32 of `a` followed by `b`, from their CRCs and `b`'s length.
pub fn crc32_combine(a: u32, b: u32, b_len: u64) -> u32 {
    zlib_rs::crc32::crc32_combine(a, b, b_len)
}

/// The end of the member: final block, CRC32, length mod 2^32.
pub fn trailer(crc: u32, len: u64) -> [u8; 10] {
    let mut t = [0u8; 10];
    t[..2].copy_from_slice(&FINAL_BLOCK);
    t[2..6].copy_from_slice(&crc.to_le_bytes());
    t[6..].copy_from_slice(&(len as u32).to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_final_block_is_what_deflate_ends_with() {
        let mut c = Compress::new(Compression::new(LEVEL), false);
        let mut out = Vec::with_capacity(64);
        c.compress_vec(b"", &mut out, FlushCompress::Finish)
            .unwrap();
        assert_eq!(out, FINAL_BLOCK);
    }

    #[test]
    fn pieces_make_one_member() {
        let parts: Vec<Vec<u8>> = (0..4u32)
            .map(|i| {
                (0..3000u32)
                    .flat_map(|j| format!("Package: q{i}-{j}\n\n").into_bytes())
                    .collect()
            })
            .chain([Vec::new()])
            .collect();
        let mut gz = HEADER.to_vec();
        let (mut crc, mut len) = (0u32, 0u64);
        for p in &parts {
            let (bytes, c) = deflate_piece(p).unwrap();
            assert!(bytes.ends_with(&FLUSH_MARK));
            gz.extend_from_slice(&bytes);
            crc = crc32_combine(crc, c, p.len() as u64);
            len += p.len() as u64;
        }
        gz.extend_from_slice(&trailer(crc, len));
        let mut out = Vec::new();
        // The single-member decoder: the member must be whole.
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, parts.concat());
    }
}
