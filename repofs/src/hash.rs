//! The checksums APT indices carry (MD5sum, SHA1, SHA256) computed in one
//! pass, plus a writer adapter that hashes while copying so a file is read
//! once on its way into the pool.

use std::io::{self, Write};

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Size and the three hex digests of one file.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Digests {
    pub size: u64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
}

/// Accumulates all three digests.
#[derive(Default, Clone)]
pub struct Hasher {
    size: u64,
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        self.md5.update(data);
        self.sha1.update(data);
        self.sha256.update(data);
    }

    pub fn finish(self) -> Digests {
        Digests {
            size: self.size,
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
        }
    }
}

pub fn digest(data: &[u8]) -> Digests {
    let mut h = Hasher::new();
    h.update(data);
    h.finish()
}

/// The digests a Release lists (MD5 and SHA-256, not SHA-1), the two
/// computed on two cores: for the large indices of a snapshot, where
/// hashing tens of megabytes one algorithm after the other was a phase of
/// its own once compression followed the change.
pub fn release_digest(data: &[u8]) -> Digests {
    let (md5, sha256) = rayon::join(
        || hex::encode(Md5::digest(data)),
        || hex::encode(Sha256::digest(data)),
    );
    Digests {
        size: data.len() as u64,
        md5,
        sha1: String::new(),
        sha256,
    }
}

/// SHA-256 only: what the pool is addressed by.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// True when `s` looks like a SHA-256 hex digest (lower case), the only
/// form blob names take.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A writer that hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
        }
    }

    pub fn finish(self) -> (W, Digests) {
        (self.inner, self.hasher.finish())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer adapter that computes the SHA-256 alone: a blob's pool name,
/// for blobs no index lists (component states).
pub struct Sha256Writer<W> {
    inner: W,
    sha256: Sha256,
    size: u64,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            sha256: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the hex SHA-256 and the size of what was written.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.sha256.finalize()), self.size)
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha256.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_empty_input() {
        let d = digest(b"");
        assert_eq!(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            d.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_sha256_hex(&d.sha256));
        assert!(!is_sha256_hex("../etc"));
    }

    #[test]
    fn release_digests_are_the_full_digests_without_sha1() {
        let data = b"Package: a\n\n".repeat(1000);
        let (full, rel) = (digest(&data), release_digest(&data));
        assert_eq!(
            (rel.size, &rel.md5, &rel.sha256),
            (full.size, &full.md5, &full.sha256)
        );
        assert!(rel.sha1.is_empty());
    }

    #[test]
    fn writer_hashes_what_it_writes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello").unwrap();
        let (inner, d) = w.finish();
        assert_eq!(inner, b"hello");
        assert_eq!(d, digest(b"hello"));
        assert_eq!(d.size, 5);
    }

    #[test]
    fn sha256_writer_names_what_it_writes() {
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"hel").unwrap();
        w.write_all(b"lo").unwrap();
        let (inner, sha256, size) = w.finish();
        assert_eq!(inner, b"hello");
        assert_eq!(sha256, digest(b"hello").sha256);
        assert_eq!(size, 5);
    }
}
