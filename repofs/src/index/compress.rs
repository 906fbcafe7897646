//! gzip and xz variants of index files.
//!
//! Output is deterministic for a given input (gzip header without a time or
//! name), so re-rendering an unchanged index gives the same blob. xz uses a
//! low preset for large indices: preset 6 costs ~30 s per 50 MB on these
//! machines, preset 1 a small fraction of that for a slightly larger file.

use std::io::Write;

/// Above this size an index is compressed with the fast xz preset.
const XZ_FAST_ABOVE: usize = 1 << 20;

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let level = if data.len() > XZ_FAST_ABOVE { 3 } else { 9 };
    let mut enc = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(level));
    // invariant: writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let preset = if data.len() > XZ_FAST_ABOVE { 1 } else { 6 };
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), preset);
    // invariant: writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn round_trip_and_deterministic() {
        let data = b"Package: x\n\n".repeat(1000);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&data)[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        out.clear();
        liblzma::read::XzDecoder::new(&xz(&data)[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(gzip(&data), gzip(&data));
        assert_eq!(gzip(b"").len(), gzip(b"").len());
    }
}
