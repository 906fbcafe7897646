//! `halo import`: `.deb`, `.udeb`, `.dsc` (with the files it lists) and
//! `.changes` (every listed checksum verified) into one component of an
//! archive's working state.
//!
//! Load, decide, commit: every input is read and checked first, blobs go
//! into one pool batch, and the import becomes visible by one rename of
//! `state.json`. A refused input leaves the store exactly as it was.

use std::path::{Path, PathBuf};

use fs_err as fs;
use rayon::prelude::*;

use super::pool::{Batch, FinishedBlob, Pool};
use super::spooled::SpooledComponent;
use super::{Error, Result, Store};
use crate::deb822;
use crate::debian::{deb, name, BinaryControl, ChangesControl, ListedFile, SourceControl};
use crate::hash::{self, Digests};
use crate::index::stanza;
use crate::model::state::Added;
use crate::model::{BinaryEntry, PoolFile, SourceEntry};

/// The longest file name ext4, XFS and the FUSE view accept, in bytes.
const NAME_MAX: usize = 255;

/// Packages up to this size are read into memory once.
const IN_MEMORY_MAX: u64 = 32 << 20;

/// Inputs read ahead on every core, a window at a time, up to two windows
/// ahead. Reading, unpacking and hashing a package and writing its blob's
/// temp file are most of an import and need nothing from the session;
/// claiming pool paths and adding entries stay sequential, in input order,
/// so the first bad input is the one reported.
const READ_AHEAD: usize = 64;

/// Where the packages go.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub archive: &'a str,
    pub dist: &'a str,
    pub component: &'a str,
}

/// What an import did, package by package (`name_version_arch`).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    pub added: Vec<String>,
    pub unchanged: Vec<String>,
    /// Older versions the archive's `keep_versions` dropped from the
    /// working state (snapshots keep them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

/// A refused input, its reason an error with its causes.
fn import_failed(file: &Path, e: &dyn std::error::Error) -> Error {
    import_err(file, crate::error_chain(e))
}

fn import_err(file: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Import {
        file: file.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Imports `files` into `target`; `progress` is called once per input.
pub fn import(
    store: &Store,
    target: &Target<'_>,
    files: &[PathBuf],
    progress: &mut dyn FnMut(&Path),
) -> Result<ImportReport> {
    import_keeping(store, target, files, None, progress)
}

/// [`import`], then, with `keep_versions`, the target component keeps only
/// the newest N versions of each package (`model::retention`), in the same
/// commit.
pub fn import_keeping(
    store: &Store,
    target: &Target<'_>,
    files: &[PathBuf],
    keep_versions: Option<usize>,
    progress: &mut dyn FnMut(&Path),
) -> Result<ImportReport> {
    import_with(store, target, files, keep_versions, false, progress)
}

/// [`import_keeping`] of files the caller gives up (the upload area of
/// `halo serve`, on the store's file system, its files read-only and
/// written by nobody again): a package's blob is then a hard link to its
/// file instead of a second copy of its bytes. The pool's rules hold as for
/// a copy: the blob's name is the hash of the bytes read here, it is
/// read-only, and the batch's `syncfs` makes it durable before the state
/// refers to it. A file that cannot be linked is copied.
pub fn import_adopting(
    store: &Store,
    target: &Target<'_>,
    files: &[PathBuf],
    keep_versions: Option<usize>,
    progress: &mut dyn FnMut(&Path),
) -> Result<ImportReport> {
    import_with(store, target, files, keep_versions, true, progress)
}

fn import_with(
    store: &Store,
    target: &Target<'_>,
    files: &[PathBuf],
    keep_versions: Option<usize>,
    adopt: bool,
    progress: &mut dyn FnMut(&Path),
) -> Result<ImportReport> {
    name::check_segment("archive", target.archive)?;
    name::check_segment("dist", target.dist)?;
    name::check_segment("component", target.component)?;
    let lock = store.lock()?;
    let mut state = store.load_state()?;
    // The target component is held compactly, its stanzas spooled to disk
    // (`spooled`); of the archive's other components only their pool
    // paths are kept, one component loaded at a time.
    let mut component = SpooledComponent::new(&store.tmp_dir())?;
    let mut own = None;
    if let Some(dists) = state.get(target.archive) {
        for (dist, comps) in dists {
            for (comp, hash) in comps {
                if (dist.as_str(), comp.as_str()) == (target.dist, target.component) {
                    own = Some(hash.clone());
                } else {
                    component.add_paths_of(&store.load_component(hash)?)?;
                }
            }
        }
    }
    // The target's own paths are claimed last, as they were when one map
    // was built from every component.
    if let Some(hash) = own {
        let path = store.pool().path(&hash);
        let blob = std::io::BufReader::with_capacity(1 << 16, fs::File::open(&path)?);
        if let Err(reason) = component.load_json(blob)? {
            return Err(Error::Corrupt {
                path,
                reason: format!("component state: {reason}"),
            });
        }
    }
    component.reserve(files.len());
    let mut session = Session {
        target,
        component,
        pool: store.pool(),
        report: ImportReport::default(),
        adopt,
        contents: store.new_pack()?,
    };
    let pool = store.pool();
    let mut batch = pool.batch();
    // The thread pool reads the next window while this thread takes in the
    // last one: in turns, both cores had waited for this thread's share
    // (a sixth of a 50,000-package import).
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let reading = &pool;
        scope.spawn(move || {
            for window in files.chunks(READ_AHEAD) {
                let read: Vec<Result<Input>> = window
                    .par_iter()
                    .map(|file| read_input(reading, file, adopt))
                    .collect();
                // Gone when this thread stopped at a refused input: what
                // was read ahead is dropped with its temp files.
                if tx.send((window, read)).is_err() {
                    break;
                }
            }
        });
        for (window, read) in rx {
            for (file, input) in window.iter().zip(read) {
                session.import_input(&mut batch, file, input?)?;
                progress(file);
            }
        }
        Ok(())
    })?;
    if session.report.added.is_empty() {
        return Ok(session.report);
    }
    session.component.sort();
    if let Some(keep) = keep_versions {
        session.report.dropped = session.component.retain_versions(keep);
    }
    let component = &mut session.component;
    let component_hash = batch.add_with(|w| component.write_json(w))?;
    // The lists of the packages new to the pool, one pack for the import:
    // a cache, in place before the batch's syncfs makes it durable.
    store.finish_pack(session.contents)?;
    super::failpoint::hit("import:before-blobs");
    batch.commit()?;
    super::failpoint::hit("import:before-state");
    state
        .entry(target.archive.to_string())
        .or_default()
        .entry(target.dist.to_string())
        .or_default()
        .insert(target.component.to_string(), component_hash);
    store.save_state(&lock, &state)?;
    tracing::info!(
        archive = target.archive,
        dist = target.dist,
        component = target.component,
        added = session.report.added.len(),
        "import committed"
    );
    Ok(session.report)
}

struct Session<'a> {
    target: &'a Target<'a>,
    component: SpooledComponent,
    pool: super::Pool,
    report: ImportReport,
    /// The inputs are the caller's to give ([`import_adopting`]).
    adopt: bool,
    /// The Contents lists of the packages new to the pool.
    contents: super::contents::NewPack,
}

impl Session<'_> {
    fn import_file(&mut self, batch: &mut Batch<'_>, file: &Path) -> Result<()> {
        let input = read_input(&self.pool, file, self.adopt)?;
        self.import_input(batch, file, input)
    }

    fn import_input(&mut self, batch: &mut Batch<'_>, file: &Path, input: Input) -> Result<()> {
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        match input {
            Input::Deb(read) => self.add_deb(batch, file, ext, *read),
            Input::Dsc => self.import_dsc(batch, file),
            Input::Changes => self.import_changes(batch, file),
        }
    }

    fn claim_pool_path(&mut self, file: &Path, path: &str, sha256: &str) -> Result<()> {
        // A name no file system can hold would fail half-way through an
        // export, long after the import was accepted.
        if let Some(long) = path.split('/').find(|seg| seg.len() > NAME_MAX) {
            return Err(import_err(
                file,
                format!(
                    "pool name of {} bytes is longer than {NAME_MAX}: {long}",
                    long.len()
                ),
            ));
        }
        let origin = display_name(file);
        match self.component.claim_path(path, sha256, &origin)? {
            Err(taken) => Err(import_err(
                file,
                format!("{path} is already in the archive from {} with different content (sha256 {}); this file has sha256 {sha256}: bump the version instead", taken.origin, taken.sha256),
            )),
            Ok(()) => Ok(()),
        }
    }

    fn add_deb(
        &mut self,
        batch: &mut Batch<'_>,
        file: &Path,
        ext: &str,
        read: ReadDeb,
    ) -> Result<()> {
        let ReadDeb {
            control,
            digests,
            blob,
            listed,
        } = read;
        if let Some(blob) = blob {
            // `read_deb` found it missing from the pool a moment ago.
            batch.add_missing(blob)?;
        }
        if let Some(paths) = listed {
            self.contents.add(&digests.sha256, &paths)?;
        }
        let path = format!(
            "{}/{}",
            name::pool_dir(self.target.component, &control.source),
            control.file_name(ext)
        );
        self.claim_pool_path(file, &path, &digests.sha256)?;
        let key = format!("{}_{}_{}", control.package, control.version, control.arch);
        let entry = BinaryEntry {
            package: control.package.clone(),
            version: control.version.to_string(),
            arch: control.arch.clone(),
            stanza: stanza::render_binary_stanza(&control.paragraph, &path, &digests),
            file: PoolFile {
                path,
                sha256: digests.sha256,
                size: digests.size,
            },
            origin: display_name(file),
        };
        match self.component.push_binary(entry)? {
            Added::New => self.report.added.push(key),
            Added::Unchanged => self.report.unchanged.push(key),
        }
        Ok(())
    }

    fn import_dsc(&mut self, batch: &mut Batch<'_>, file: &Path) -> Result<()> {
        let raw = fs::read(file).map_err(|e| import_failed(file, &e))?;
        let text = std::str::from_utf8(&raw).map_err(|_| import_err(file, "not UTF-8 text"))?;
        let body = deb822::strip_cleartext_signature(text).map_err(|e| import_failed(file, &e))?;
        let para = deb822::parse_single(&body).map_err(|e| import_failed(file, &e))?;
        let dsc = SourceControl::from_paragraph(para).map_err(|e| import_failed(file, &e))?;
        let dir = name::pool_dir(self.target.component, &dsc.source);
        let dsc_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| import_err(file, "file name is not UTF-8"))?;
        name::check_file_name(dsc_name)?;
        let dsc_digests = batch.add_bytes(&raw)?;
        let dsc_listed = listed(dsc_name, &dsc_digests);
        let mut files = vec![PoolFile {
            path: format!("{dir}/{dsc_name}"),
            sha256: dsc_digests.sha256.clone(),
            size: dsc_digests.size,
        }];
        let base = file.parent().unwrap_or(Path::new("."));
        let mut listed_files = Vec::new();
        for lf in &dsc.files {
            let digests = add_verified(batch, base, lf, file)?;
            files.push(PoolFile {
                path: format!("{dir}/{}", lf.name),
                sha256: digests.sha256.clone(),
                size: digests.size,
            });
            listed_files.push(listed(&lf.name, &digests));
        }
        for f in &files {
            self.claim_pool_path(file, &f.path, &f.sha256)?;
        }
        let key = format!("{}_{}_source", dsc.source, dsc.version);
        let entry = SourceEntry {
            package: dsc.source.clone(),
            version: dsc.version.to_string(),
            stanza: stanza::render_source_stanza(&dsc.paragraph, &dir, &dsc_listed, &listed_files),
            files,
            origin: display_name(file),
        };
        match self.component.push_source(entry)? {
            Added::New => self.report.added.push(key),
            Added::Unchanged => self.report.unchanged.push(key),
        }
        Ok(())
    }

    fn import_changes(&mut self, batch: &mut Batch<'_>, file: &Path) -> Result<()> {
        let raw = fs::read_to_string(file).map_err(|e| import_failed(file, &e))?;
        let body = deb822::strip_cleartext_signature(&raw).map_err(|e| import_failed(file, &e))?;
        let para = deb822::parse_single(&body).map_err(|e| import_failed(file, &e))?;
        let changes = ChangesControl::from_paragraph(para).map_err(|e| import_failed(file, &e))?;
        let base = file.parent().unwrap_or(Path::new("."));
        // Verify every listed file before importing any of them.
        for lf in &changes.files {
            verify_listed(&self.pool, base, lf, file)?;
        }
        for lf in &changes.files {
            let path = base.join(&lf.name);
            // Other listed files (.buildinfo, tarballs) come in through their .dsc or not at all.
            if let Some("deb" | "udeb" | "dsc") = path.extension().and_then(|e| e.to_str()) {
                self.import_file(batch, &path)?;
            }
        }
        Ok(())
    }
}

/// An input as read ahead: a package ready to be added, or a `.dsc` or
/// `.changes` to import in order (they name other files).
enum Input {
    Deb(Box<ReadDeb>),
    Dsc,
    Changes,
}

/// A package read, its control file checked, its blob hashed and written.
struct ReadDeb {
    control: BinaryControl,
    digests: Digests,
    /// The blob's temp file; `None` when the pool holds it already.
    blob: Option<FinishedBlob>,
    /// The paths it installs, for Contents: read once per pool file, so
    /// `None` when the pool holds it already (its lists were kept when it
    /// came; a snapshot lists any it finds nowhere).
    listed: Option<Vec<String>>,
}

fn read_input(pool: &Pool, file: &Path, adopt: bool) -> Result<Input> {
    // An input that cannot be read is the user's mistake, not ours.
    let size = match std::fs::metadata(file) {
        // A FIFO would block for ever and a device (a link to /dev/zero)
        // never ends: only regular files are packages, and nothing else is
        // even opened (opening some devices does something).
        Ok(m) if !m.is_file() => return Err(import_err(file, "not a regular file")),
        Ok(m) => m.len(),
        Err(e) => return Err(import_failed(file, &e)),
    };
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "deb" | "udeb" => Ok(Input::Deb(Box::new(read_deb(pool, file, size, adopt)?))),
        "dsc" => Ok(Input::Dsc),
        "changes" => Ok(Input::Changes),
        _ => Err(import_err(file, "not a .deb, .udeb, .dsc or .changes file")),
    }
}

/// The whole of an input whose size `metadata` gave: no `fstat` or
/// `lseek` to size the buffer, as `fs::read` asks (three system calls of
/// the dozen a package took), and a file that grew since is still read to
/// its end.
fn read_whole(file: &Path, size: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut input = std::fs::File::open(file)?;
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    input
        .by_ref()
        .take(size.saturating_add(1))
        .read_to_end(&mut data)?;
    if data.len() as u64 > size {
        input.read_to_end(&mut data)?;
    }
    Ok(data)
}

/// Small packages (nearly all) are read once; large ones are streamed twice
/// (three times when new to the pool: listing its files is a third pass).
/// With `adopt`, the file is linked into the pool before its bytes are
/// read and hashed, not written again.
/// A package new to the pool whose data archive cannot be listed (for
/// Contents, here where it is read anyway and in parallel, so no snapshot
/// has to unpack it) is refused.
fn read_deb(pool: &Pool, file: &Path, size: u64, adopt: bool) -> Result<ReadDeb> {
    let checked = |control: std::result::Result<deb822::Paragraph, deb::DebError>| {
        let control = control.map_err(|e| import_failed(file, &e))?;
        BinaryControl::from_paragraph(control).map_err(|e| import_failed(file, &e))
    };
    let list =
        |data: &mut dyn std::io::Read| deb::list_data(data).map_err(|e| import_failed(file, &e));
    let list_file = || -> Result<Vec<String>> {
        let f = fs::File::open(file).map_err(|e| import_failed(file, &e))?;
        list(&mut std::io::BufReader::new(f))
    };
    let adopted = if adopt { pool.adopt(file)? } else { None };
    if size <= IN_MEMORY_MAX {
        let data = read_whole(file, size).map_err(|e| import_failed(file, &e))?;
        let control = checked(deb::read_control(&data[..]))?;
        let digests = hash::digest(&data);
        let blob = if pool.has(&digests.sha256, digests.size) {
            None
        } else if let Some(adopted) = adopted {
            Some(adopted.finish(digests.clone()))
        } else {
            Some(pool.write_blob(&data, digests.clone())?)
        };
        let listed = match blob {
            Some(_) => Some(list(&mut &data[..])?),
            None => None,
        };
        return Ok(ReadDeb {
            control,
            digests,
            blob,
            listed,
        });
    }
    let control = checked(deb::read_control(std::io::BufReader::new(fs::File::open(
        file,
    )?)))?;
    if let Some(adopted) = adopted {
        let mut w = crate::hash::HashingWriter::new(std::io::sink());
        std::io::copy(&mut fs::File::open(file)?, &mut w)?;
        let digests = w.finish().1;
        let blob =
            (!pool.has(&digests.sha256, digests.size)).then(|| adopted.finish(digests.clone()));
        return Ok(ReadDeb {
            control,
            listed: blob.as_ref().map(|_| list_file()).transpose()?,
            blob,
            digests,
        });
    }
    let mut writer = pool.blob_writer()?;
    std::io::copy(&mut fs::File::open(file)?, &mut writer)?;
    let blob = writer.finish()?;
    let digests = blob.digests().clone();
    let missing = !pool.has(&digests.sha256, digests.size);
    Ok(ReadDeb {
        control,
        listed: missing.then(list_file).transpose()?,
        digests,
        blob: missing.then_some(blob),
    })
}

fn display_name(file: &Path) -> String {
    file.display().to_string()
}

fn listed(name: &str, d: &Digests) -> ListedFile {
    ListedFile {
        name: name.to_string(),
        size: d.size,
        md5: Some(d.md5.clone()),
        sha1: Some(d.sha1.clone()),
        sha256: Some(d.sha256.clone()),
    }
}

/// Checks `actual` against every checksum `lf` gives.
fn check_digests(lf: &ListedFile, actual: &Digests, listing: &Path) -> Result<()> {
    let mismatch = |what: &str, want: &str, got: &str| {
        import_err(
            listing,
            format!("{} has {what} {got}, but the listing says {want}", lf.name),
        )
    };
    if lf.size != actual.size {
        return Err(mismatch(
            "size",
            &lf.size.to_string(),
            &actual.size.to_string(),
        ));
    }
    for (what, want, got) in [
        ("MD5", &lf.md5, &actual.md5),
        ("SHA1", &lf.sha1, &actual.sha1),
        ("SHA256", &lf.sha256, &actual.sha256),
    ] {
        if let Some(want) = want {
            if want != got {
                return Err(mismatch(what, want, got));
            }
        }
    }
    Ok(())
}

fn open_listed(base: &Path, lf: &ListedFile, listing: &Path) -> Result<fs::File> {
    let path = base.join(&lf.name);
    if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
        return Err(import_err(
            listing,
            format!("lists {} but that is not a regular file", lf.name),
        ));
    }
    fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            import_err(
                listing,
                format!("lists {} but that file is missing", lf.name),
            )
        } else {
            e.into()
        }
    })
}

/// Adds a listed file to the batch, refusing it unless every checksum matches.
fn add_verified(
    batch: &mut Batch<'_>,
    base: &Path,
    lf: &ListedFile,
    listing: &Path,
) -> Result<Digests> {
    let f = open_listed(base, lf, listing)?;
    let digests = batch.add_reader(f)?;
    check_digests(lf, &digests, listing)?;
    Ok(digests)
}

/// Hashes a listed file without storing it.
fn verify_listed(_pool: &super::Pool, base: &Path, lf: &ListedFile, listing: &Path) -> Result<()> {
    let mut f = open_listed(base, lf, listing)?;
    let mut w = crate::hash::HashingWriter::new(std::io::sink());
    std::io::copy(&mut f, &mut w)?;
    check_digests(lf, &w.finish().1, listing)
}
