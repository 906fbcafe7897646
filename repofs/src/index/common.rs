//! The common prefix and suffix of two byte strings: how much of a new
//! index is the previous one's, byte for byte, at each end. The index
//! diffs skip it, and the block compressor copies the blocks inside it
//! without hashing them.

/// Compared a chunk at a time (`memcmp`), then byte by byte in the chunk
/// that differs: a byte loop over a 27 MB index was most of the diff.
const CHUNK: usize = 4096;

/// Length of the longest common prefix of `a` and `b`.
pub fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut at = 0;
    while at + CHUNK <= n && a[at..at + CHUNK] == b[at..at + CHUNK] {
        at += CHUNK;
    }
    at + a[at..n]
        .iter()
        .zip(&b[at..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Length of the longest common suffix of `a` and `b`.
pub fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut at = 0; // matched from the end
    while at + CHUNK <= n && a[n - at - CHUNK..n - at] == b[n - at - CHUNK..n - at] {
        at += CHUNK;
    }
    let (a, b) = (&a[..n - at], &b[..n - at]);
    at + a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_ends_by_chunks_agree_with_a_byte_loop() {
        let base: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        for cut in [0, 1, 4095, 4096, 4097, 9000, 19_999] {
            let mut other = base.clone();
            other[cut] ^= 1;
            let prefix = base.iter().zip(&other).take_while(|(a, b)| a == b).count();
            assert_eq!(common_prefix(&base, &other), prefix, "cut {cut}");
            let suffix = base
                .iter()
                .rev()
                .zip(other.iter().rev())
                .take_while(|(a, b)| a == b)
                .count();
            assert_eq!(common_suffix(&base, &other), suffix, "cut {cut}");
            // Different lengths.
            assert_eq!(common_prefix(&base[..cut], &base), cut);
            assert_eq!(common_suffix(&base[cut..], &base), base.len() - cut);
        }
    }
}
