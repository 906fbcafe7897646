//! Renders the index files of one component: `binary-<arch>/Packages` for
//! each architecture of the dist (arch `all` packages appear in every one),
//! `source/Sources` when the component has source packages, each with its
//! `.gz` and `.xz` variants.

use std::io;

use super::{blocks, compress};
use crate::hash::{self, Digests};
use crate::model::state_view::{Prepared, Stanza, StateView};

/// One rendered file, path relative to `dists/<dist>/`. Its bytes are a
/// `Vec` or whatever the caller rendered into (the store spools large
/// indices straight into their files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile<D = Vec<u8>> {
    pub path: String,
    pub data: D,
}

/// What rendered bytes can live in.
pub trait IndexData: std::ops::DerefMut<Target = [u8]> + From<Vec<u8>> + Send + Sync {}
impl<D: std::ops::DerefMut<Target = [u8]> + From<Vec<u8>> + Send + Sync> IndexData for D {}

/// Stanzas, each followed by a blank line, as dpkg-scanpackages writes them.
///
/// The buffer is sized exactly first: growing it by doubling copied the
/// index over and over and touched twice its size in fresh pages (slow on
/// a virtual machine, where a new page can cost a fault in the host too).
/// Large indices are measured and filled by every core, a group of stanzas
/// each; a stanza still in its JSON form is unescaped into its place.
fn join_stanzas<'s, 'd: 's, D, E>(
    stanzas: impl Iterator<Item = &'s Stanza<'d>>,
    buffer: impl FnOnce(usize) -> Result<D, E>,
) -> Result<D, E>
where
    D: std::ops::DerefMut<Target = [u8]>,
{
    use rayon::prelude::*;
    const GROUP: usize = 2048;
    let stanzas: Vec<&Stanza<'d>> = stanzas.collect();
    let groups: Vec<(Vec<Prepared<'_>>, usize)> = stanzas
        .par_chunks(GROUP)
        .map(|group| {
            let prepared: Vec<Prepared<'_>> = group.iter().map(|s| s.prepare()).collect();
            let len = prepared.iter().map(|p| p.len() + 1).sum();
            (prepared, len)
        })
        .collect();
    let fill = |group: &[Prepared<'_>], buf: &mut [u8]| {
        let mut at = 0;
        for p in group {
            p.write_into(&mut buf[at..at + p.len()]);
            at += p.len();
            buf[at] = b'\n';
            at += 1;
        }
    };
    let total = groups.iter().map(|(_, len)| len).sum();
    let mut out = buffer(total)?;
    let mut rest: &mut [u8] = &mut out;
    let mut jobs = Vec::with_capacity(groups.len());
    for (group, len) in &groups {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(*len);
        jobs.push((group, head));
        rest = tail;
    }
    jobs.into_par_iter()
        .for_each(|(group, buf)| fill(group, buf));
    Ok(out)
}

/// The plain indices of a component, uncompressed.
pub fn render_plain(component: &str, state: &StateView<'_>, archs: &[String]) -> Vec<RenderedFile> {
    let heap = |_: &str, len: usize| Ok::<_, std::convert::Infallible>(vec![0u8; len]);
    match render_plain_into(component, state, archs, heap) {
        Ok(files) => files,
        Err(never) => match never {},
    }
}

/// [`render_plain`], each index written into `buffer(path, length)`:
/// memory of exactly that length that the caller provides.
pub fn render_plain_into<D, E>(
    component: &str,
    state: &StateView<'_>,
    archs: &[String],
    mut buffer: impl FnMut(&str, usize) -> Result<D, E>,
) -> Result<Vec<RenderedFile<D>>, E>
where
    D: std::ops::DerefMut<Target = [u8]>,
{
    let mut out = Vec::new();
    let mut push = |path: String, stanzas: &mut dyn Iterator<Item = &Stanza<'_>>| {
        let data = join_stanzas(stanzas, |len| buffer(&path, len))?;
        out.push(RenderedFile { path, data });
        Ok(())
    };
    for arch in archs {
        push(
            format!("{component}/binary-{arch}/Packages"),
            &mut state.binaries_for(arch, false).map(|(_, b)| &b.stanza),
        )?;
        // The installer's packages have their own index, as in Debian's
        // archive; apt never sees them in the ordinary one.
        let mut udebs = state.binaries_for(arch, true).peekable();
        if udebs.peek().is_some() {
            push(
                format!("{component}/debian-installer/binary-{arch}/Packages"),
                &mut udebs.map(|(_, b)| &b.stanza),
            )?;
        }
    }
    if !state.sources().is_empty() {
        let sources: Vec<Stanza<'_>> = state
            .sources()
            .iter()
            .map(|s| Stanza::Text(s.stanza.as_str().into()))
            .collect();
        push(format!("{component}/source/Sources"), &mut sources.iter())?;
    }
    Ok(out)
}

/// An index file with its digests, computed beside the compressors.
pub struct HashedFile<D = Vec<u8>> {
    pub file: RenderedFile<D>,
    pub digests: Digests,
}

/// Adds the `.gz` and `.xz` variant of every plain index, compressing on
/// all cores (xz dominates snapshot time for large indices). The digests
/// are computed on the gzip thread, which finishes long before xz: hashing
/// 37 MB of indices one after the other added a sixth to a large snapshot.
///
/// Any compressor error is returned and a compressor thread's panic is
/// raised again here: nothing that follows (storing, signing) may run on a
/// partial result.
pub fn render_compressed(plain: Vec<RenderedFile>) -> io::Result<Vec<HashedFile>> {
    Ok(render_compressed_cached(plain, &|_: &str| None, &|_: &str, len| Ok(vec![0; len]))?.files)
}

/// Where the previous snapshot's compressed blocks of an index are, by the
/// index's path (`None`: compress every block).
pub type PreviousBlocks<'a> = dyn Fn(&str) -> Option<blocks::Previous> + Sync + 'a;

/// Memory of exactly `len` bytes for the file at `path` (the store spools
/// a large one into its pool file, as for plain indices).
pub type Buffer<'a, D> = dyn Fn(&str, usize) -> io::Result<D> + Sync + 'a;

/// What [`render_compressed_cached`] made.
pub struct Compressed<D = Vec<u8>> {
    pub files: Vec<HashedFile<D>>,
    /// The block map of each index compressed in blocks, by the SHA-256
    /// of its plain form, for the store to keep beside the blobs.
    pub maps: Vec<(String, blocks::BlockMap)>,
    /// Blocks copied from the previous snapshot's blobs / compressed.
    pub reused: usize,
    pub compressed: usize,
}

/// [`render_compressed`], where indices of at least `blocks::BLOCKS_FROM`
/// bytes are compressed in blocks, copying the blocks `previous` has
/// (`index::blocks`): the cost follows the change, not the index. Their
/// `.gz` and `.xz` are stitched straight into memory from `buffer`.
pub fn render_compressed_cached<D: IndexData>(
    plain: Vec<RenderedFile<D>>,
    previous: &PreviousBlocks<'_>,
    buffer: &Buffer<'_, D>,
) -> io::Result<Compressed<D>> {
    compress_with(plain, compress::gzip, compress::xz, previous, buffer)
}

type Compressor = fn(&[u8]) -> io::Result<Vec<u8>>;

fn compress_with<D: IndexData>(
    plain: Vec<RenderedFile<D>>,
    gzip: Compressor,
    xz: Compressor,
    previous: &PreviousBlocks<'_>,
    buffer: &Buffer<'_, D>,
) -> io::Result<Compressed<D>> {
    let (large, small): (Vec<RenderedFile<D>>, Vec<RenderedFile<D>>) = plain
        .into_iter()
        .partition(|f| f.data.len() >= blocks::BLOCKS_FROM);
    let mut out = compress_whole(small, gzip, xz)?;
    let mut done = Compressed {
        files: Vec::new(),
        maps: Vec::new(),
        reused: 0,
        compressed: 0,
    };
    for f in large {
        let (gz_path, xz_path) = (format!("{}.gz", f.path), format!("{}.xz", f.path));
        // The plain index's MD5 (one core, the slowest digest) runs beside
        // reading the previous blocks, compressing the new ones and writing
        // and hashing each compressed form into its own file.
        let (plain_d, made) = rayon::join(
            || hash::release_digest(&f.data),
            || -> io::Result<_> {
                let prev = previous(&f.path);
                let forms = blocks::Forms { gz: true, xz: true };
                let pieces =
                    blocks::pieces(&f.data, blocks::Records::Stanzas, forms, prev.as_ref())?;
                let form = |path: &str, len: usize, write: &(dyn Fn(&mut [u8]) + Sync)| {
                    let mut data = buffer(path, len)?;
                    write(&mut data);
                    let digests = hash::release_digest(&data);
                    Ok::<_, io::Error>((data, digests))
                };
                let (gz, xz) = rayon::join(
                    || form(&gz_path, pieces.gz_len(), &|out| pieces.write_gz(out)),
                    || form(&xz_path, pieces.xz_len(), &|out| pieces.write_xz(out)),
                );
                let counts = (pieces.reused(), pieces.compressed());
                Ok((gz?, xz?, pieces.entries(), counts))
            },
        );
        let ((gz, gz_d), (xz, xz_d), entries, (reused, compressed)) = made?;
        let r = |d: &Digests| blocks::BlobRef {
            sha256: d.sha256.clone(),
            size: d.size,
        };
        let map = blocks::BlockMap {
            gz: Some(r(&gz_d)),
            xz: Some(r(&xz_d)),
            blocks: entries,
        };
        done.maps.push((plain_d.sha256.clone(), map));
        done.reused += reused;
        done.compressed += compressed;
        let hashed = |path: String, data, digests| HashedFile {
            file: RenderedFile { path, data },
            digests,
        };
        out.push(hashed(gz_path, gz, gz_d));
        out.push(hashed(xz_path, xz, xz_d));
        out.push(hashed(f.path, f.data, plain_d));
    }
    out.sort_by(|a, b| a.file.path.cmp(&b.file.path));
    done.files = out;
    Ok(done)
}

/// Small indices, each compressed whole (gzip -9, xz -6: they cost little).
fn compress_whole<D: IndexData>(
    plain: Vec<RenderedFile<D>>,
    gzip: Compressor,
    xz: Compressor,
) -> io::Result<Vec<HashedFile<D>>> {
    // Per plain file: (gzip, plain digests, gzip digests), (xz, xz digests).
    type Gz = io::Result<(Vec<u8>, Digests, Digests)>;
    type Xz = io::Result<(Vec<u8>, Digests)>;
    let done: Vec<(Gz, Xz)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = plain
            .iter()
            .map(|f| {
                let gz = scope.spawn(move || -> Gz {
                    let gz = gzip(&f.data)?;
                    let (plain_d, gz_d) = (hash::digest(&f.data), hash::digest(&gz));
                    Ok((gz, plain_d, gz_d))
                });
                let xz = scope.spawn(move || -> Xz {
                    let xz = xz(&f.data)?;
                    let d = hash::digest(&xz);
                    Ok((xz, d))
                });
                (gz, xz)
            })
            .collect();
        jobs.into_iter()
            .map(|(gz, xz)| (join(gz), join(xz)))
            .collect()
    });
    let mut out = Vec::with_capacity(plain.len() * 3);
    for (f, (gz, xz)) in plain.into_iter().zip(done) {
        let ((gz, plain_d, gz_d), (xz, xz_d)) = (gz?, xz?);
        let hashed = |path: String, data, digests| HashedFile {
            file: RenderedFile { path, data },
            digests,
        };
        out.push(hashed(format!("{}.gz", f.path), D::from(gz), gz_d));
        out.push(hashed(format!("{}.xz", f.path), D::from(xz), xz_d));
        out.push(hashed(f.path, f.data, plain_d));
    }
    Ok(out)
}

/// Joins a scoped thread, re-raising its panic in the caller.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BinaryEntry, ComponentState, PoolFile};

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
            identity: None,
            extra_files: Vec::new(),
        };
        let files = render_plain(
            "main",
            &StateView::of(&state),
            &["amd64".into(), "arm64".into()],
        );
        assert_eq!(files.len(), 2);
        assert_eq!(
            String::from_utf8(files[0].data.clone()).unwrap(),
            "Package: aa\nArchitecture: all\n\nPackage: bb\nArchitecture: amd64\n\n"
        );
        let all = render_compressed(files).unwrap();
        let paths: Vec<_> = all.iter().map(|f| f.file.path.as_str()).collect();
        // The digests computed beside the compressors are the files'.
        for f in &all {
            assert_eq!(
                f.digests,
                crate::hash::digest(&f.file.data),
                "{}",
                f.file.path
            );
        }
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

    fn heap(_: &str, len: usize) -> io::Result<Vec<u8>> {
        Ok(vec![0; len])
    }

    fn one_index() -> Vec<RenderedFile> {
        vec![RenderedFile {
            path: "main/binary-amd64/Packages".into(),
            data: b"Package: aa\n\n".to_vec(),
        }]
    }

    #[test]
    fn a_compressor_error_fails_the_render() {
        fn broken(_: &[u8]) -> io::Result<Vec<u8>> {
            Err(io::Error::other("liblzma: out of memory"))
        }
        let err = compress_with(one_index(), compress::gzip, broken, &|_: &str| None, &heap)
            .err()
            .expect("a failed xz must fail the render");
        assert!(err.to_string().contains("out of memory"), "{err}");
        assert!(compress_with(one_index(), broken, compress::xz, &|_: &str| None, &heap).is_err());
    }

    #[test]
    #[should_panic(expected = "compressor bug")]
    fn a_compressor_panic_is_raised_again() {
        fn panics(_: &[u8]) -> io::Result<Vec<u8>> {
            panic!("compressor bug")
        }
        let _ = compress_with(one_index(), compress::gzip, panics, &|_: &str| None, &heap);
    }
}
