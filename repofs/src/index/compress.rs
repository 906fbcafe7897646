//! gzip and xz variants of index files.
//!
//! Output is deterministic for a given input (gzip header without a time or
//! name), so re-rendering an unchanged index gives the same blob. Large
//! indices use xz preset 0 in fixed 4 MiB blocks on every core: preset 6
//! costs ~30 s per 50 MB on these machines, preset 0 with two threads well
//! under a second, for a file about as small as gzip's. Fixed blocks keep
//! the output independent of the number of threads.
//!
//! Every failure is returned, never papered over: an index that is signed
//! must be exactly the compression of its plain form, and an empty buffer
//! in its place would be listed in a signed Release and break every client.

use std::io::{self, Write};

/// Above this size an index is compressed with the fast xz preset.
const XZ_FAST_ABOVE: usize = 1 << 20;

pub fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    gzip_into(data, Vec::new())
}

/// gzip into any writer; the writer's errors (and the encoder's) come back.
pub fn gzip_into<W: Write>(data: &[u8], sink: W) -> io::Result<W> {
    let level = if data.len() > XZ_FAST_ABOVE { 3 } else { 9 };
    let mut enc = flate2::GzBuilder::new().write(sink, flate2::Compression::new(level));
    enc.write_all(data)?;
    enc.finish()
}

pub fn xz(data: &[u8]) -> io::Result<Vec<u8>> {
    xz_into(data, Vec::new())
}

/// xz into any writer; the writer's errors (and liblzma's) come back.
pub fn xz_into<W: Write>(data: &[u8], sink: W) -> io::Result<W> {
    let mut enc = if data.len() > XZ_FAST_ABOVE {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let stream = liblzma::stream::MtStreamBuilder::new()
            .preset(0)
            .threads(threads)
            .block_size(4 << 20)
            .check(liblzma::stream::Check::Crc64)
            .encoder();
        match stream {
            Ok(s) => liblzma::write::XzEncoder::new_stream(sink, s),
            Err(e) => {
                // Still a valid .xz of the same data, only single-threaded.
                tracing::warn!(error = %e, "multi-threaded xz unavailable, compressing on one core");
                liblzma::write::XzEncoder::new_stream(sink, easy_encoder(0)?)
            }
        }
    } else {
        liblzma::write::XzEncoder::new_stream(sink, easy_encoder(6)?)
    };
    enc.write_all(data)?;
    enc.finish()
}

/// A single-threaded encoder at `preset`, or liblzma's refusal as an
/// error: `XzEncoder::new` unwraps it, and a process short of memory (an
/// address-space limit) must fail its snapshot, not panic.
fn easy_encoder(preset: u32) -> io::Result<liblzma::stream::Stream> {
    liblzma::stream::Stream::new_easy_encoder(preset, liblzma::stream::Check::Crc64)
        .map_err(|e| io::Error::other(format!("xz encoder (preset {preset}): {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn an_encoder_liblzma_refuses_is_an_error_not_a_panic() {
        // Preset 99 does not exist: liblzma refuses it as it refuses one
        // it has no memory for.
        let Err(e) = easy_encoder(99) else {
            panic!("liblzma took preset 99")
        };
        assert!(e.to_string().contains("preset 99"), "{e}");
        assert!(easy_encoder(6).is_ok());
    }

    /// Accepts `room` bytes, then fails like a full disk.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::other("no space left"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_sink_is_an_error_not_an_empty_index() {
        // Varied data, so the compressed form is larger than the room.
        let data: Vec<u8> = (0..5000u32)
            .flat_map(|i| format!("Package: p{}\n\n", i.wrapping_mul(2654435761)).into_bytes())
            .collect();
        for room in [0, 10, 100] {
            assert!(gzip_into(&data, Full { room }).is_err(), "gzip room {room}");
            assert!(xz_into(&data, Full { room }).is_err(), "xz room {room}");
        }
        let big = b"Package: y\nVersion: 1\n\n".repeat(60_000);
        assert!(
            xz_into(&big, Full { room: 10 }).is_err(),
            "multi-threaded xz"
        );
    }

    #[test]
    fn round_trip_and_deterministic() {
        let data = b"Package: x\n\n".repeat(1000);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&data).unwrap()[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        out.clear();
        liblzma::read::XzDecoder::new(&xz(&data).unwrap()[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(gzip(&data).unwrap(), gzip(&data).unwrap());
        // Large inputs take the multi-threaded path; still xz, still stable.
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("Package: p{i}\nVersion: {i}\n\n").into_bytes())
            .collect();
        let packed = xz(&big).unwrap();
        assert_eq!(packed, xz(&big).unwrap());
        out.clear();
        liblzma::read::XzDecoder::new_multi_decoder(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, big);
        assert_eq!(gzip(b"").unwrap().len(), gzip(b"").unwrap().len());
    }
}
