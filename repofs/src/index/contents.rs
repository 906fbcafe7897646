//! `Contents-<arch>` indices: which package installs each path, the file
//! `apt-file` searches. Pure: the caller hands in each package's paths (read
//! once per pool file and cached, `store::contents`).
//!
//! The layout is apt-ftparchive's (`apt-ftparchive contents`), byte for
//! byte: no header, one line per path sorted bytewise, the path padded
//! with tabs to column 56 and then four spaces (or, for a longer path,
//! spaces to column 60, at least one), then the packages installing it,
//! sorted and joined by commas. apt-file reads the last column and takes
//! what follows the last `/` as the package, so it reads dak's
//! `section/package` and this alike.

/// One package of the index and the paths its `.deb` installs.
pub struct Owner<'a> {
    pub package: &'a str,
    /// One path a line, as the store keeps them (`store::contents`): the
    /// lists are slices of a few large buffers, not a string per path.
    pub paths: &'a str,
}

/// The plain `Contents` text of `owners` (several versions of one package
/// name it once per path).
pub fn render<'a>(owners: impl Iterator<Item = Owner<'a>>) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for o in owners {
        pairs.extend(o.paths.lines().map(|p| (p, o.package)));
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut out = Vec::with_capacity(pairs.len() * 64);
    let mut i = 0;
    while i < pairs.len() {
        let path = pairs[i].0;
        out.extend_from_slice(path.as_bytes());
        pad(&mut out, path.len());
        let mut first = true;
        while i < pairs.len() && pairs[i].0 == path {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(pairs[i].1.as_bytes());
            first = false;
            i += 1;
        }
        out.push(b'\n');
    }
    out
}

/// apt-ftparchive's padding after a path of `len` bytes.
fn pad(out: &mut Vec<u8>, len: usize) {
    if len < 56 {
        let tabs = (56 - len).div_ceil(8);
        out.extend(std::iter::repeat_n(b'\t', tabs));
        out.extend_from_slice(b"    ");
    } else {
        let spaces = 60usize.saturating_sub(len).max(1);
        out.extend(std::iter::repeat_n(b' ', spaces));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_sorted_padded_and_merged() {
        let p = "usr/bin/foo\nusr/bin/bar\n";
        let q = "usr/bin/foo\n";
        let long = format!("{}/x\n{}/x\n", "a".repeat(55), "b".repeat(60));
        let text = render(
            [
                Owner {
                    package: "q",
                    paths: q,
                },
                Owner {
                    package: "p",
                    paths: p,
                },
                Owner {
                    package: "p",
                    paths: p,
                },
                Owner {
                    package: "r",
                    paths: &long,
                },
            ]
            .into_iter(),
        );
        // As apt-ftparchive 2.6 printed these paths.
        let want = format!(
            "{}/x   r\n{}/x r\nusr/bin/bar\t\t\t\t\t\t    p\nusr/bin/foo\t\t\t\t\t\t    p,q\n",
            "a".repeat(55),
            "b".repeat(60)
        );
        assert_eq!(String::from_utf8(text).unwrap(), want);
    }

    #[test]
    fn short_paths_take_tabs_to_column_56() {
        let mut out = Vec::new();
        pad(&mut out, 3);
        assert_eq!(out, b"\t\t\t\t\t\t\t    ");
        out.clear();
        pad(&mut out, 48);
        assert_eq!(out, b"\t    ");
    }
}
