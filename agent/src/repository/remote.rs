//! EDGE: the client of `halo serve` (`halo --server URL ...`): every
//! [`Repository`] operation is one request to the repository host's API,
//! which runs it on its store under the store's own locks and
//! compare-and-swap. Answers that are errors become the `repofs::Error`
//! the store would have returned there (`wire::ErrorBody`), so a remote
//! workflow decides and exits as a local one does.
//!
//! The token travels only in the `Authorization` header: it is in no URL,
//! no error and no `Debug` output.
//!
//! What is this host's (scratch, roots, records) lives under the agent's
//! work directory (`--work-dir`); a snapshot's APT tree is downloaded from
//! the served tree into it, each file checked against its SHA-256 and kept
//! in a content-addressed cache so the next run fetches only what changed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use repofs::model::acceptance::{Lease, Verdict};
use repofs::model::channel::MoveRequest;
use repofs::model::{ChannelPointer, PromoteError, Snapshot, Transition};
use repofs::store::acceptance::RunEvent;
use repofs::store::builds::BuildRecord;
use repofs::store::import::{ImportReport, Target};
use repofs::store::snapshots::Created;
use repofs::store::{Error, Result};

use super::wire::{
    BatchReceived, Done, ErrorBody, ImportBody, Imported, LeaseBody, LeaseTaken, MoveBody, Moved,
    RenewBody, SnapshotMade, TreeEntry, UploadCreated, VerdictAnswer, BATCH_MANIFEST,
};
use super::{Claim, Location, Repository};

/// A client of one `halo serve`. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Remote {
    inner: Arc<Inner>,
}

struct Inner {
    /// The server's root URL, ending in `/`.
    base: Url,
    token: Option<String>,
    http: Client,
    work: PathBuf,
    /// The keyring once downloaded, for this process.
    keyring: Mutex<Option<PathBuf>>,
}

/// Never the token.
impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("server", &self.inner.base.as_str())
            .field("work", &self.inner.work)
            .finish_non_exhaustive()
    }
}

/// A transport failure: not the request's fault (exit 2).
fn transport(base: &Url, e: &reqwest::Error) -> Error {
    Error::Io(std::io::Error::other(format!(
        "halo serve at {base}: {}",
        repofs::error_chain(e)
    )))
}

/// The store's error for an error answer. `missing` names what a 404
/// means for this request (an unknown channel or snapshot).
fn answer_error(status: StatusCode, body: &[u8], missing: Option<&dyn Fn() -> Error>) -> Error {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_else(|_| ErrorBody {
        error: format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
        ),
        ..ErrorBody::default()
    });
    let message = format!("halo serve: {}", parsed.error);
    if parsed.kind.as_deref() == Some("stale") {
        return Error::Promote(PromoteError::Stale {
            channel: parsed.channel.unwrap_or_default(),
            expected: parsed.expected.unwrap_or_default(),
            actual: parsed.actual,
        });
    }
    if status == StatusCode::NOT_FOUND {
        if let Some(m) = missing {
            return m();
        }
    }
    let user = parsed.user.unwrap_or(status.is_client_error())
        && !matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::CONFLICT
        );
    if user {
        Error::Usage(message)
    } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        Error::Io(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            message,
        ))
    } else {
        Error::Io(std::io::Error::other(message))
    }
}

impl Remote {
    /// A client of the server at `url`; `work` is this host's directory for
    /// scratch, roots and records (made if missing); `ca` is PEM text of
    /// certificates to trust besides the system's.
    pub fn new(
        url: &str,
        token: Option<String>,
        ca: Option<&str>,
        work: &Path,
    ) -> anyhow::Result<Self> {
        let mut base =
            Url::parse(url).map_err(|e| anyhow::anyhow!("--server {url}: not a URL ({e})"))?;
        if !matches!(base.scheme(), "http" | "https") {
            anyhow::bail!("--server {url}: not an http or https URL");
        }
        if !base.username().is_empty() || base.password().is_some() {
            anyhow::bail!("--server: put the token in --token-file or HALO_TOKEN, not in the URL");
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        // A process-wide provider for rustls; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut http = Client::builder();
        if let Some(pem) = ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| anyhow::anyhow!("--ca-cert: not PEM certificates ({e})"))?;
            if certs.is_empty() {
                anyhow::bail!("--ca-cert: no certificate in the file");
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .connect_timeout(Duration::from_secs(30))
            // Uploads and tree downloads take as long as they take; a dead
            // server is noticed by the connection.
            .timeout(None::<Duration>)
            .user_agent(concat!("halo/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let work = std::path::absolute(work)?;
        fs_err::create_dir_all(work.join("tmp"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                token: token
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty()),
                http,
                work,
                keyring: Mutex::new(None),
            }),
        })
    }

    fn url(&self, path: &str) -> Url {
        // Paths are ours, their segments checked names: join cannot fail.
        self.inner
            .base
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.inner.base.clone())
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.inner.http.request(method, self.url(path));
        match &self.inner.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends; an error answer becomes the store's error.
    fn send(&self, req: RequestBuilder, missing: Option<&dyn Fn() -> Error>) -> Result<Response> {
        let resp = req.send().map_err(|e| transport(&self.inner.base, &e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.bytes().unwrap_or_default();
        Err(answer_error(status, &body, missing))
    }

    fn json<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        missing: Option<&dyn Fn() -> Error>,
    ) -> Result<T> {
        let resp = self.send(req, missing)?;
        let url = resp.url().clone();
        let body = resp.bytes().map_err(|e| transport(&self.inner.base, &e))?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::Io(std::io::Error::other(format!(
                "halo serve: {}: unexpected answer: {e}",
                url.path()
            )))
        })
    }

    fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        missing: Option<&dyn Fn() -> Error>,
    ) -> Result<T> {
        self.json(self.request(Method::GET, path), missing)
    }

    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.json(self.request(Method::POST, path).json(body), None)
    }

    /// Uploads `files` (and what each .changes or .dsc lists) into one
    /// upload area and imports them there: all or nothing on the server.
    fn upload_and_import(&self, target: &Target<'_>, files: &[PathBuf]) -> Result<ImportReport> {
        let set = upload_set(files)?;
        let created: UploadCreated = self.post("api/v1/uploads", &serde_json::json!({}))?;
        let area = created.upload;
        let result = (|| {
            self.upload_files(&area, &set)?;
            let names = files
                .iter()
                .map(|f| file_name(f).map(str::to_string))
                .collect::<Result<Vec<_>>>()?;
            let done: Imported = self.post(
                &format!("api/v1/uploads/{area}/import"),
                &ImportBody {
                    archive: target.archive.to_string(),
                    dist: target.dist.to_string(),
                    component: target.component.to_string(),
                    files: names,
                },
            )?;
            Ok(ImportReport {
                added: done.added,
                unchanged: done.unchanged,
                dropped: done.dropped,
            })
        })();
        if result.is_err() {
            // The import removes its area itself; a failed upload's is
            // removed here (the server removes it anyway when it restarts).
            let _ = self.send(
                self.request(Method::DELETE, &format!("api/v1/uploads/{area}")),
                None,
            );
        }
        result
    }

    /// Puts every file of `set` into upload area `area` as tar streams
    /// (`PUT /uploads/{id}`), a few at once, each of a bounded part of the
    /// files: one request per file cost a round trip, a request and a task
    /// on the server each, more than their bytes for small packages; and
    /// while one stream hashes its files (the manifest goes first), another
    /// sends.
    fn upload_files(&self, area: &str, set: &BTreeMap<String, PathBuf>) -> Result<()> {
        let parts = parts(set)?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..UPLOAD_STREAMS.min(parts.len()))
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        use std::sync::atomic::Ordering::Relaxed;
                        while !failed.load(Relaxed) {
                            let Some(part) = parts.get(next.fetch_add(1, Relaxed)) else {
                                break;
                            };
                            if let Err(e) = self.upload_batch(area, part) {
                                failed.store(true, Relaxed);
                                return Err(e);
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            // The first error in the order the streams were started.
            let mut result = Ok(());
            for w in workers {
                let r = w.join().unwrap_or_else(|_| {
                    Err(Error::Io(std::io::Error::other(
                        "an upload thread panicked",
                    )))
                });
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }

    /// One tar stream of `files` into area `area`: their digests first
    /// (the manifest the server checks every file against), then the files;
    /// the server's answer is compared with the manifest. A part of small
    /// files (at most [`PART_BYTES`]) is read once and sent as one body of
    /// known length; a larger file is hashed, then streamed from disk.
    fn upload_batch(&self, area: &str, files: &[(String, PathBuf)]) -> Result<()> {
        let mut digests = BTreeMap::new();
        let mut manifest = String::new();
        let mut sizes = 0u64;
        for (_, path) in files {
            sizes += fs_err::metadata(path)?.len();
        }
        let in_memory = sizes <= PART_BYTES;
        let mut contents = Vec::with_capacity(if in_memory { files.len() } else { 0 });
        for (name, path) in files {
            let sha256 = if in_memory {
                let data = fs_err::read(path)?;
                let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
                contents.push(data);
                sha
            } else {
                file_sha256(path)?
            };
            manifest.push_str(&format!("{sha256}  {name}\n"));
            digests.insert(name.as_str(), sha256);
        }
        let req = self
            .request(Method::PUT, &format!("api/v1/uploads/{area}"))
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar");
        let got: BatchReceived = if in_memory {
            let mut tar = tar::Builder::new(Vec::with_capacity(
                usize::try_from(sizes).unwrap_or(0) + 1024 * (files.len() + 2),
            ));
            append(&mut tar, BATCH_MANIFEST, manifest.as_bytes())?;
            for ((name, _), data) in files.iter().zip(&contents) {
                append(&mut tar, name, data)?;
            }
            self.json(req.body(tar.into_inner()?), None)?
        } else {
            self.stream_batch(req, &manifest, files)?
        };
        let same = got.files.len() == digests.len()
            && got
                .files
                .iter()
                .all(|f| digests.get(f.name.as_str()) == Some(&f.sha256));
        if !same {
            return Err(Error::Io(std::io::Error::other(
                "halo serve received other files than the ones sent",
            )));
        }
        Ok(())
    }

    /// Sends a batch of large files, the tar stream made on a thread as
    /// the request reads it.
    fn stream_batch(
        &self,
        req: RequestBuilder,
        manifest: &str,
        files: &[(String, PathBuf)],
    ) -> Result<BatchReceived> {
        let (reader, writer) = std::io::pipe()?;
        std::thread::scope(|scope| {
            let producer = scope.spawn(move || write_batch(writer, manifest, files));
            let answer: Result<BatchReceived> =
                self.json(req.body(reqwest::blocking::Body::new(reader)), None);
            let produced = producer
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the upload's tar thread panicked")));
            match (answer, produced) {
                // A file that could not be read is this host's problem,
                // whatever the server made of the stream cut short; a
                // broken pipe is the server's answer arriving first.
                (_, Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io(e)),
                (answer, _) => answer,
            }
        })
    }

    /// Downloads the served tree of `id` into `dir`, each file checked and
    /// linked from the cache when it was fetched before.
    fn download_tree(&self, id: &str, dir: &Path) -> Result<()> {
        let files: Vec<TreeEntry> = self.get(
            &format!("api/v1/snapshots/{id}/files"),
            Some(&|| Error::UnknownSnapshot(id.to_string())),
        )?;
        let cache = self.inner.work.join("cache");
        fs_err::create_dir_all(&cache)?;
        fs_err::create_dir_all(dir)?;
        for f in &files {
            if !repofs::hash::is_sha256_hex(&f.sha256)
                || f.path
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == "..")
            {
                return Err(Error::Io(std::io::Error::other(format!(
                    "halo serve listed a file it should not: {}",
                    f.path
                ))));
            }
            let cached = cache.join(&f.sha256);
            if !cached.exists() {
                let path = f
                    .path
                    .split('/')
                    .map(encode_segment)
                    .collect::<Vec<_>>()
                    .join("/");
                self.fetch_blob(&format!("snapshots/{id}/{path}"), f, &cached)?;
            }
            let dest = dir.join(&f.path);
            if let Some(parent) = dest.parent() {
                fs_err::create_dir_all(parent)?;
            }
            if fs_err::hard_link(&cached, &dest).is_err() {
                fs_err::copy(&cached, &dest)?;
            }
        }
        Ok(())
    }

    /// One file of a tree into the cache, renamed there only when whole
    /// and of the digest the listing gave.
    fn fetch_blob(&self, path: &str, f: &TreeEntry, cached: &Path) -> Result<()> {
        let mut resp = self
            .send(self.inner.http.get(self.url(path)), None)
            .map_err(|e| Error::Io(std::io::Error::other(format!("{path}: {e}"))))?;
        let tmp =
            self.inner
                .work
                .join("tmp")
                .join(format!("{}.{}.tmp", std::process::id(), f.sha256));
        let mut out = repofs::hash::HashingWriter::new(fs_err::File::create(&tmp)?);
        std::io::copy(&mut resp, &mut out)?;
        let (file, digests) = out.finish();
        drop(file);
        if digests.sha256 != f.sha256 || digests.size != f.size {
            let _ = fs_err::remove_file(&tmp);
            return Err(Error::Io(std::io::Error::other(format!(
                "halo serve: {path} does not match its listing (SHA-256 {}, {} bytes)",
                digests.sha256, digests.size
            ))));
        }
        fs_err::rename(&tmp, cached)?;
        Ok(())
    }
}

/// Tar streams of one upload sent at once: two keep both ends busy, one
/// hashing its files while the other sends.
const UPLOAD_STREAMS: usize = 2;

/// A tar stream carries at most this many files or bytes (whichever comes
/// first, and at least one file): small enough that hashing the next part
/// overlaps sending this one, large enough that requests are few.
const PART_FILES: usize = 128;
const PART_BYTES: u64 = 4 << 20;

/// `set` cut into the parts of an upload, in name order.
fn parts(set: &BTreeMap<String, PathBuf>) -> Result<Vec<Vec<(String, PathBuf)>>> {
    let mut out: Vec<Vec<(String, PathBuf)>> = Vec::new();
    let mut bytes = 0u64;
    for (name, path) in set {
        let size = fs_err::metadata(path)?.len();
        match out.last_mut() {
            Some(part) if part.len() < PART_FILES && bytes + size <= PART_BYTES => {
                bytes += size;
                part.push((name.clone(), path.clone()));
            }
            _ => {
                bytes = size;
                out.push(vec![(name.clone(), path.clone())]);
            }
        }
    }
    Ok(out)
}

/// A regular member of a batch, from memory.
fn append<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    tar.append_data(&mut member(data.len() as u64), name, data)
}

/// A tar header of a regular file (`append_data` sets name, size and sum).
fn member(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    h
}

/// Writes a batch's tar stream: the manifest, then each file.
fn write_batch(
    writer: impl std::io::Write,
    manifest: &str,
    files: &[(String, PathBuf)],
) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 18, writer));
    tar.append_data(
        &mut member(manifest.len() as u64),
        BATCH_MANIFEST,
        manifest.as_bytes(),
    )?;
    for (name, path) in files {
        let file = fs_err::File::open(path)?;
        let len = file.metadata()?.len();
        // Exactly the length announced, even if the file grows meanwhile.
        tar.append_data(&mut member(len), name, file.take(len))?;
    }
    std::io::Write::flush(&mut tar.into_inner()?)
}

/// A path segment as a URL carries it: pool names hold `%3a` for an
/// epoch's colon, which must reach the server as those three characters.
fn encode_segment(segment: &str) -> String {
    /// What stays itself: RFC 3986's unreserved characters, and `+`
    /// (Debian versions are full of it; servers take it literally in paths).
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'+');
    percent_encoding::utf8_percent_encode(segment, KEEP).to_string()
}

fn file_name(path: &Path) -> Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("{}: no file name", path.display())))
}

/// The SHA-256 alone (not the import's three digests): the manifest's.
fn file_sha256(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = fs_err::File::open(path)?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Every file an import of `files` reads: each file, and what each
/// .changes or .dsc lists beside it (a .changes's .dsc brings its own).
fn upload_set(files: &[PathBuf]) -> Result<BTreeMap<String, PathBuf>> {
    let mut set = BTreeMap::new();
    let mut todo: Vec<PathBuf> = files.to_vec();
    while let Some(path) = todo.pop() {
        let name = file_name(&path)?.to_string();
        if set.contains_key(&name) {
            continue;
        }
        let listing = match path.extension().and_then(|e| e.to_str()) {
            Some("changes" | "dsc") => Some(listed_files(&path)?),
            _ => None,
        };
        set.insert(name, path.clone());
        let base = path.parent().unwrap_or(Path::new("."));
        for listed in listing.into_iter().flatten() {
            todo.push(base.join(listed));
        }
    }
    Ok(set)
}

/// The names a .changes or .dsc lists.
fn listed_files(path: &Path) -> Result<Vec<String>> {
    let bad = |why: String| Error::Import {
        file: path.to_path_buf(),
        reason: why,
    };
    let text = fs_err::read_to_string(path)?;
    let body = repofs::deb822::strip_cleartext_signature(&text).map_err(|e| bad(e.to_string()))?;
    let para = repofs::deb822::parse_single(&body).map_err(|e| bad(e.to_string()))?;
    let files = repofs::debian::control::parse_file_lists(&para).map_err(|e| bad(e.to_string()))?;
    Ok(files.into_iter().map(|f| f.name).collect())
}

/// A `MoveRequest` as the API takes it.
fn move_body(req: &MoveRequest<'_>, only_if: Option<(&str, &str)>) -> MoveBody {
    MoveBody {
        target: req.target.to_string(),
        expect: req.expect.map(str::to_string),
        action: req.action,
        reason: req.reason.map(str::to_string),
        lease: req.lease.map(str::to_string),
        force: req.force,
        if_channel: only_if.map(|(c, _)| c.to_string()),
        if_snapshot: only_if.map(|(_, s)| s.to_string()),
        client: Some(req.who.to_string()),
    }
}

fn transition(m: Moved) -> Transition {
    match (m.moved, m.pointer, m.entry) {
        (true, Some(pointer), Some(entry)) => Transition::Move { pointer, entry },
        _ => Transition::Unchanged,
    }
}

impl Remote {
    fn move_to(&self, req: &MoveRequest<'_>, only_if: Option<(&str, &str)>) -> Result<Transition> {
        check(req.channel)?;
        let moved: Moved = self.json(
            self.request(
                Method::POST,
                &format!("api/v1/channels/{}/move", req.channel),
            )
            .json(&move_body(req, only_if)),
            Some(&|| Error::UnknownChannel(req.channel.to_string())),
        )?;
        Ok(transition(moved))
    }
}

/// A name that becomes a URL path segment: the store's own name rule,
/// checked before it is sent.
fn check(name: &str) -> Result<()> {
    repofs::debian::name::check_segment("name", name)?;
    Ok(())
}

impl Repository for Remote {
    fn location(&self) -> Location {
        Location::Server(self.inner.base.to_string())
    }

    fn local_store(&self) -> Option<&repofs::Store> {
        None
    }

    fn boxed(&self) -> Box<dyn Repository> {
        Box::new(self.clone())
    }

    fn load_channel(&self, name: &str) -> Result<ChannelPointer> {
        check(name)?;
        self.get(
            &format!("api/v1/channels/{name}"),
            Some(&|| Error::UnknownChannel(name.to_string())),
        )
    }

    fn load_snapshot(&self, id: &str) -> Result<Snapshot> {
        check(id)?;
        self.get(
            &format!("api/v1/snapshots/{id}"),
            Some(&|| Error::UnknownSnapshot(id.to_string())),
        )
    }

    fn load_builds(&self, source: &str) -> Result<Vec<BuildRecord>> {
        check(source)?;
        self.get(&format!("api/v1/builds/{source}"), None)
    }

    fn load_verdict(&self, channel: &str, snapshot: &str) -> Result<Option<Verdict>> {
        check(channel)?;
        check(snapshot)?;
        let v: VerdictAnswer = self.get(
            &format!("api/v1/verdicts/{channel}/{snapshot}"),
            Some(&|| Error::UnknownChannel(channel.to_string())),
        )?;
        Ok(v.verdict)
    }

    fn import(
        &self,
        target: &Target<'_>,
        files: &[PathBuf],
        // The server's configuration decides retention.
        _keep: Option<usize>,
    ) -> Result<ImportReport> {
        self.upload_and_import(target, files)
    }

    fn create_snapshot(&self) -> Result<Created> {
        let made: SnapshotMade = self.post("api/v1/snapshots", &serde_json::json!({}))?;
        Ok(Created {
            id: made.id,
            new: made.new,
        })
    }

    fn move_channel(&self, req: &MoveRequest<'_>) -> Result<Transition> {
        self.move_to(req, None)
    }

    fn move_channel_if(
        &self,
        req: &MoveRequest<'_>,
        testing: &str,
        tested: &str,
    ) -> Result<Transition> {
        self.move_to(req, Some((testing, tested)))
    }

    fn acquire_lease(
        &self,
        channel: &str,
        wanted: Lease,
        force: bool,
    ) -> Result<Option<(Lease, String)>> {
        check(channel)?;
        let taken: LeaseTaken = self.json(
            self.request(Method::POST, &format!("api/v1/leases/{channel}"))
                .json(&LeaseBody {
                    lease: wanted,
                    force,
                }),
            Some(&|| Error::UnknownChannel(channel.to_string())),
        )?;
        Ok(taken
            .previous
            .map(|p| (p, taken.reason.unwrap_or_default())))
    }

    fn renew_lease(&self, channel: &str, run: &str, length: Duration) -> Result<()> {
        check(channel)?;
        let _: Done = self.json(
            self.request(Method::PUT, &format!("api/v1/leases/{channel}"))
                .query(&[("run", run)])
                .json(&RenewBody {
                    length_ms: u64::try_from(length.as_millis()).unwrap_or(u64::MAX),
                }),
            None,
        )?;
        Ok(())
    }

    fn release_lease(&self, channel: &str, run: &str) -> Result<()> {
        check(channel)?;
        let _: Done = self.json(
            self.request(Method::DELETE, &format!("api/v1/leases/{channel}"))
                .query(&[("run", run)]),
            None,
        )?;
        Ok(())
    }

    fn record_run_event(&self, event: &RunEvent) -> Result<()> {
        let _: Done = self.post("api/v1/runs/events", event)?;
        Ok(())
    }

    fn record_build(&self, record: &BuildRecord) -> Result<()> {
        let _: Done = self.post("api/v1/builds", record)?;
        Ok(())
    }

    fn save_run_report(&self, report: &crate::workflow::runs::RunReport) -> Result<()> {
        let _: Done = self.post("api/v1/runs/reports", report)?;
        Ok(())
    }

    fn state_dir(&self) -> PathBuf {
        self.inner.work.clone()
    }

    /// A remote agent's scratch is its own: nothing to claim in a store.
    fn claim_work(&self, name: &str, _run: Option<&str>) -> Result<Claim> {
        repofs::debian::name::check_segment("work directory", name)?;
        fs_err::create_dir_all(self.work_dir())?;
        Ok(Claim(None))
    }

    fn keyring(&self) -> Result<PathBuf> {
        let mut known = self
            .inner
            .keyring
            .lock()
            .map_err(|_| Error::Io(std::io::Error::other("keyring lock poisoned")))?;
        if let Some(k) = &*known {
            return Ok(k.clone());
        }
        let resp = self.send(self.inner.http.get(self.url("api/v1/keyring")), None)?;
        let bytes = resp.bytes().map_err(|e| transport(&self.inner.base, &e))?;
        let path = self.inner.work.join("repo.gpg");
        repofs::store::fsutil::write_atomic(&self.inner.work.join("tmp"), &path, &bytes)?;
        *known = Some(path.clone());
        Ok(path)
    }

    fn export(&self, id: &str, dir: &Path) -> Result<()> {
        check(id)?;
        self.download_tree(id, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_compare_and_swap_comes_back_as_the_stores() {
        let body = serde_json::to_vec(&ErrorBody {
            error: "stale".into(),
            kind: Some("stale".into()),
            channel: Some("unstable".into()),
            expected: Some("a".into()),
            actual: Some("b".into()),
            ..ErrorBody::default()
        })
        .unwrap_or_default();
        let e = answer_error(StatusCode::CONFLICT, &body, None);
        assert!(
            matches!(&e, Error::Promote(PromoteError::Stale { actual: Some(a), .. }) if a == "b"),
            "{e:?}"
        );
        assert!(!e.is_user_error());
    }

    #[test]
    fn errors_keep_whose_fault_they_are() {
        let body = br#"{"error": "no such thing"}"#;
        let e = answer_error(
            StatusCode::NOT_FOUND,
            body,
            Some(&|| Error::UnknownChannel("x".into())),
        );
        assert!(matches!(e, Error::UnknownChannel(_)), "{e:?}");
        assert!(answer_error(StatusCode::BAD_REQUEST, body, None).is_user_error());
        for s in [
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::CONFLICT,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            assert!(!answer_error(s, body, None).is_user_error(), "{s}");
        }
        // Not JSON (a proxy's page): its status and a bounded excerpt.
        let e = answer_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", None);
        assert!(e.to_string().contains("502"), "{e}");
    }

    #[test]
    fn pool_names_keep_their_percent_signs() {
        assert_eq!(
            encode_segment("bsdutils_1%3a2.38+deb12u3_amd64.deb"),
            "bsdutils_1%253a2.38+deb12u3_amd64.deb"
        );
    }

    #[test]
    fn no_token_in_debug() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = Remote::new(
            "http://127.0.0.1:1/",
            Some("halo_secret".into()),
            None,
            dir.path(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{r:?}").contains("halo_secret"));
        assert!(Remote::new("http://u:p@host/", None, None, dir.path()).is_err());
        assert!(Remote::new("ftp://host/", None, None, dir.path()).is_err());
        let Err(err) = Remote::new("https://host/", None, Some("not pem"), dir.path()) else {
            panic!("text without a certificate was taken");
        };
        assert!(err.to_string().contains("--ca-cert"), "{err}");
    }
}
