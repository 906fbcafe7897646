//! Renders the index files of one component: `binary-<arch>/Packages` for
//! each architecture of the dist (arch `all` packages appear in every one),
//! `source/Sources` when the component has source packages, each with its
//! `.gz` and `.xz` variants.

use super::compress;
use crate::model::ComponentState;

/// One rendered file, path relative to `dists/<dist>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub data: Vec<u8>,
}

/// Stanzas, each followed by a blank line, as dpkg-scanpackages writes them.
fn join_stanzas<'a>(stanzas: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for s in stanzas {
        out.extend_from_slice(s.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The plain indices of a component, uncompressed.
pub fn render_plain(
    component: &str,
    state: &ComponentState,
    archs: &[String],
) -> Vec<RenderedFile> {
    let mut out = Vec::new();
    for arch in archs {
        let data = join_stanzas(
            state
                .binaries
                .iter()
                .filter(|b| b.arch == *arch || b.arch == "all")
                .map(|b| b.stanza.as_str()),
        );
        out.push(RenderedFile {
            path: format!("{component}/binary-{arch}/Packages"),
            data,
        });
    }
    if !state.sources.is_empty() {
        out.push(RenderedFile {
            path: format!("{component}/source/Sources"),
            data: join_stanzas(state.sources.iter().map(|s| s.stanza.as_str())),
        });
    }
    out
}

/// Adds the `.gz` and `.xz` variant of every plain index, compressing on
/// all cores (xz dominates snapshot time for large indices).
pub fn render_compressed(plain: Vec<RenderedFile>) -> Vec<RenderedFile> {
    let compressed: Vec<[RenderedFile; 2]> = std::thread::scope(|scope| {
        let jobs: Vec<_> = plain
            .iter()
            .map(|f| {
                let gz = scope.spawn(|| compress::gzip(&f.data));
                let xz = scope.spawn(|| compress::xz(&f.data));
                (f, gz, xz)
            })
            .collect();
        jobs.into_iter()
            .map(|(f, gz, xz)| {
                [
                    RenderedFile {
                        path: format!("{}.gz", f.path),
                        // invariant: the compressors do not panic.
                        data: gz.join().unwrap_or_default(),
                    },
                    RenderedFile {
                        path: format!("{}.xz", f.path),
                        data: xz.join().unwrap_or_default(),
                    },
                ]
            })
            .collect()
    });
    let mut out = plain;
    out.extend(compressed.into_iter().flatten());
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BinaryEntry, PoolFile};

    fn entry(name: &str, arch: &str) -> BinaryEntry {
        BinaryEntry {
            package: name.into(),
            version: "1".into(),
            arch: arch.into(),
            stanza: format!("Package: {name}\nArchitecture: {arch}\n"),
            file: PoolFile {
                path: String::new(),
                sha256: String::new(),
                size: 0,
            },
            origin: String::new(),
        }
    }

    #[test]
    fn arch_all_goes_into_every_arch() {
        let state = ComponentState {
            binaries: vec![
                entry("aa", "all"),
                entry("bb", "amd64"),
                entry("cc", "arm64"),
            ],
            sources: vec![],
            upstream: None,
        };
        let files = render_plain("main", &state, &["amd64".into(), "arm64".into()]);
        assert_eq!(files.len(), 2);
        assert_eq!(
            String::from_utf8(files[0].data.clone()).unwrap(),
            "Package: aa\nArchitecture: all\n\nPackage: bb\nArchitecture: amd64\n\n"
        );
        let all = render_compressed(files);
        let paths: Vec<_> = all.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "main/binary-amd64/Packages",
                "main/binary-amd64/Packages.gz",
                "main/binary-amd64/Packages.xz",
                "main/binary-arm64/Packages",
                "main/binary-arm64/Packages.gz",
                "main/binary-arm64/Packages.xz"
            ]
        );
    }
}
