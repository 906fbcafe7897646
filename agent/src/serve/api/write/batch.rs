//! Batched uploads: many files of an upload area in one streamed request,
//! `PUT /uploads/{id}` with a tar stream (`application/x-tar`). One file
//! per request cost a round trip, a request's parsing and a task each;
//! a thousand small packages spent more time on that than on their bytes.
//!
//! The stream's first member is a manifest, `.halo-sha256sums`, in
//! `sha256sum`'s format (`HEX  NAME` per line): the digest of every file
//! that follows. Each member is written under a temporary name while
//! hashed and named only when it is a regular file with a plain file name
//! that the manifest lists, whole, and of the declared digest. Anything
//! else (a path, `..`, a link, a device, a directory, a digest that
//! differs, a file the manifest does not list or one it lists that never
//! came, a cut stream) refuses the whole request: every file it named is
//! removed again, the area is as it was, and nothing is imported.
//!
//! Memory is bounded: the body is read as the tar reader asks for it (a
//! blocking thread over the body stream), each member copied in 64 KiB
//! pieces; only the manifest (at most [`MANIFEST_MAX`]) is held whole.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};

use super::uploads::area_dir;
use super::{blocking, require, WriteError, WriteResult};
use crate::repository::wire::{BatchReceived, FileReceived};
use crate::serve::auth::Caller;
use crate::serve::tokens::Role;

/// The first member of a batch: the digests of the files that follow.
const MANIFEST: &str = crate::repository::wire::BATCH_MANIFEST;

/// A manifest larger than this is refused (a line is ~330 bytes at most:
/// tens of thousands of files fit).
const MANIFEST_MAX: u64 = 16 << 20;

/// Receives a tar stream of files into area `id`: all of them, or none.
pub async fn receive(
    caller: Caller,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> WriteResult<Json<BatchReceived>> {
    require(&caller, Role::Writer)?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/x-tar") {
        return Err(WriteError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a batch upload is a tar stream: Content-Type: application/x-tar",
        ));
    }
    let dir = area_dir(&caller, &id)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    // Made here, on the runtime: the blocking thread reads the body
    // through it as the tar reader asks.
    // Buffered: the tar reader asks for 512-byte headers, and each read of
    // the bridge is a trip to the runtime.
    let reader = std::io::BufReader::with_capacity(
        1 << 18,
        tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream)),
    );
    blocking(move || {
        let files = unpack(&dir, reader).map_err(WriteError::bad_request)?;
        Ok(Json(BatchReceived { files }))
    })
    .await
}

/// The manifest's digests by file name. Refused: a line that is not
/// `HEX  NAME` (or `HEX *NAME`), a name that is not a plain file name, a
/// name listed twice.
pub fn parse_manifest(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let bad = || format!("{MANIFEST} line {}: not `SHA256  NAME`", i + 1);
        let (hex, rest) = line.split_at_checked(64).ok_or_else(bad)?;
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(bad)?;
        if !repofs::hash::is_sha256_hex(hex) {
            return Err(bad());
        }
        repofs::debian::name::check_file_name(name)
            .map_err(|e| format!("{MANIFEST} line {}: {e}", i + 1))?;
        if out
            .insert(name.to_string(), hex.to_ascii_lowercase())
            .is_some()
        {
            return Err(format!("{MANIFEST} lists {name} twice"));
        }
    }
    Ok(out)
}

/// Files named by one request, removed again unless the request succeeds.
struct Named {
    paths: Vec<PathBuf>,
    part: Option<PathBuf>,
    done: bool,
}

impl Drop for Named {
    fn drop(&mut self) {
        if let Some(p) = &self.part {
            let _ = std::fs::remove_file(p);
        }
        if !self.done {
            for p in &self.paths {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// What a member is, for a refusal.
fn kind(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Symlink => "a symbolic link",
        tar::EntryType::Link => "a hard link",
        tar::EntryType::Char | tar::EntryType::Block => "a device",
        tar::EntryType::Directory => "a directory",
        tar::EntryType::Fifo => "a FIFO",
        _ => "not a regular file",
    }
}

/// The longest long-name or pax header read: a file name is 255 bytes at
/// most, and the tar reader would otherwise hold any size in memory.
const EXTENSION_MAX: u64 = 64 << 10;

/// The members of a tar stream as (name, entry), GNU long names and pax
/// `path` records applied here (bounded), since the tar crate's own
/// handling reads them whole whatever their size.
struct Members<'a, R: Read> {
    entries: tar::Entries<'a, R>,
}

impl<'a, R: Read> Members<'a, R> {
    fn next(&mut self) -> Option<Result<(String, tar::Entry<'a, R>), String>> {
        let mut long_name: Option<Vec<u8>> = None;
        loop {
            let mut entry = match self.entries.next()? {
                Ok(e) => e,
                Err(e) => return Some(Err(cut(e))),
            };
            let t = entry.header().entry_type();
            let extension =
                t.is_gnu_longname() || t.is_pax_local_extensions() || t.is_pax_global_extensions();
            if !extension {
                let raw = long_name.unwrap_or_else(|| entry.path_bytes().into_owned());
                return Some(Ok((String::from_utf8_lossy(&raw).into_owned(), entry)));
            }
            if entry.size() > EXTENSION_MAX {
                return Some(Err(format!(
                    "a tar extension header of {} bytes: refused",
                    entry.size()
                )));
            }
            let mut data = Vec::new();
            if let Err(e) = entry.read_to_end(&mut data) {
                return Some(Err(cut(e)));
            }
            if t.is_gnu_longname() {
                while data.last() == Some(&0) {
                    data.pop();
                }
                long_name = Some(data);
            } else if t.is_pax_local_extensions() {
                for ext in tar::PaxExtensions::new(&data).flatten() {
                    if ext.key_bytes() == b"path" {
                        long_name = Some(ext.value_bytes().to_vec());
                    }
                }
            }
        }
    }
}

fn cut(e: std::io::Error) -> String {
    format!("upload cut or not a tar stream: {e}")
}

/// `name` when the member is a regular file with a plain file name.
fn regular<R: Read>(name: &str, entry: &tar::Entry<'_, R>) -> Result<(), String> {
    let t = entry.header().entry_type();
    if !t.is_file() {
        return Err(format!("member {name:?}: {}: refused", kind(t)));
    }
    repofs::debian::name::check_file_name(name)
        .map_err(|e| format!("member {name:?}: {e}: refused"))
}

/// Unpacks a batch into `dir`; on any refusal nothing it named stays.
fn unpack(dir: &Path, reader: impl Read) -> Result<Vec<FileReceived>, String> {
    static PART: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut archive = tar::Archive::new(reader);
    let mut members = Members {
        entries: archive.entries().map_err(cut)?.raw(true),
    };
    let mut manifest = match members.next() {
        Some(member) => {
            let (name, mut entry) = member?;
            if name != MANIFEST || !entry.header().entry_type().is_file() {
                return Err(format!("the first member must be the file {MANIFEST}"));
            }
            if entry.size() > MANIFEST_MAX {
                return Err(format!("{MANIFEST} is larger than {MANIFEST_MAX} bytes"));
            }
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("{MANIFEST}: {e}"))?;
            parse_manifest(&text)?
        }
        None => {
            return Err(format!(
                "an empty stream: the first member must be {MANIFEST}"
            ))
        }
    };
    let mut named = Named {
        paths: Vec::with_capacity(manifest.len()),
        part: None,
        done: false,
    };
    let mut received = Vec::with_capacity(manifest.len());
    let mut buf = vec![0u8; 1 << 16];
    while let Some(member) = members.next() {
        let (name, mut entry) = member?;
        regular(&name, &entry)?;
        let Some(wanted) = manifest.remove(&name) else {
            return Err(format!(
                "member {name}: not in {MANIFEST}, or sent twice: refused"
            ));
        };
        let declared = entry.size();
        let n = PART.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let part = dir.join(format!(".batch-{}-{n}.part", std::process::id()));
        named.part = Some(part.clone());
        // Born read-only: the import may adopt it into the pool.
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&part)
                .map_err(|e| format!("{name}: {e}"))?
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(cut)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| format!("{name}: {e}"))?;
            size += n as u64;
        }
        drop(file);
        if size != declared {
            return Err(format!(
                "upload cut: {name} has {size} of its {declared} bytes"
            ));
        }
        let got = hex::encode(hasher.finalize());
        if got != wanted {
            return Err(format!(
                "{name}: received {size} bytes with SHA-256 {got}, not {wanted}: refused"
            ));
        }
        // A link, not a rename: a name already in the area (another
        // request's) is refused, never replaced.
        let dest = dir.join(&name);
        match std::fs::hard_link(&part, &dest) {
            Ok(()) => named.paths.push(dest),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(format!("{name} is already in this upload area: refused"))
            }
            Err(e) => return Err(format!("{name}: {e}")),
        }
        let _ = std::fs::remove_file(&part);
        named.part = None;
        received.push(FileReceived {
            name,
            size,
            sha256: got,
        });
    }
    if let Some((first, _)) = manifest.iter().next() {
        return Err(format!(
            "upload cut: the stream ended without {first} ({} of the files {MANIFEST} lists missing)",
            manifest.len()
        ));
    }
    named.done = true;
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_sha256sum_lines_of_plain_names() {
        let h = "ab".repeat(32);
        let m = parse_manifest(&format!("{h}  a_1_all.deb\n{h} *b.dsc\n")).unwrap_or_default();
        assert_eq!(m.len(), 2);
        for bad in [
            format!("{h}  ../x"),
            format!("{h}  a/b"),
            format!("{h} a"),
            format!("{}  a", "zz".repeat(32)),
            format!("{h}  a\n{h}  a"),
            "short  a".to_string(),
        ] {
            assert!(parse_manifest(&bad).is_err(), "{bad}");
        }
    }
}
