//! The APT trees over HTTP: `/channels/<c>/…` and `/snapshots/<id>/…` are
//! the mount's paths, resolved by the mount's own namespace
//! ([`repofs::fs::view::View`]), so a served file is byte for byte what
//! the mount (and `halo export`) shows, and a channel's earlier by-hash
//! files still answer after a promotion: apt that read the old InRelease
//! fetches indexes by hash and never sees a mismatch.
//!
//! Caching: files are their blob, so the ETag is the content's SHA-256 and
//! Last-Modified the blob's time. A snapshot's files, pool files and
//! by-hash files never change under their URL: `immutable`, a year. A
//! channel's other index files (InRelease, Release, Packages…) move with
//! the channel: `no-cache`, so a proxy re-asks (and gets a 304 while the
//! channel has not moved).

use std::io::SeekFrom;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use repofs::fs::catalog::StoreCatalog;
use repofs::fs::dirtree::Blob;
use repofs::fs::errno::FsError;
use repofs::fs::inodes;
use repofs::fs::view::{Kind, View};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::state::AppState;

/// Files up to this size are read whole; larger ones stream.
const SMALL_FILE: u64 = 256 * 1024;
/// Read size of a streamed file.
const CHUNK: usize = 256 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels", get(serve))
        .route("/channels/", get(serve))
        .route("/channels/{*path}", get(serve))
        .route("/snapshots", get(serve))
        .route("/snapshots/", get(serve))
        .route("/snapshots/{*path}", get(serve))
}

/// What a path names.
enum Found {
    File { blob: Blob, mtime: SystemTime },
    Dir { names: Vec<(String, Kind)> },
    Link { target: String },
}

/// Percent-decoded path components; `None` for `..`, `.`, or a NUL.
fn components(path: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let decoded = percent_decode(part)?;
        if decoded == "." || decoded == ".." || decoded.contains(['\0', '/']) {
            return None;
        }
        out.push(decoded);
    }
    Some(out)
}

/// A segment percent-decoded; `None` when the bytes are not UTF-8 (no
/// store name is). A `%` not followed by two hex digits stays itself.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Walks `parts` from the mount's root, as the kernel would, and forgets
/// every lookup afterwards (the view's inode table counts them).
fn resolve(view: &View<StoreCatalog>, parts: &[String]) -> Result<Found, FsError> {
    resolve_within(view, parts, 0)
}

/// `link` (a symlink's text) seen from directory `dir`, as components;
/// `None` when it leaves the root.
fn follow(dir: &[String], link: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = if link.starts_with('/') {
        Vec::new()
    } else {
        dir.to_vec()
    };
    for part in link.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            out.pop()?;
        } else {
            out.push(part.to_string());
        }
    }
    Some(out)
}

/// Symlinks inside a path (`channels/<c>.snapshot/...`) are followed, as
/// a web server over the mount would; a few levels at most.
fn resolve_within(
    view: &View<StoreCatalog>,
    parts: &[String],
    depth: usize,
) -> Result<Found, FsError> {
    let now = SystemTime::now();
    let mut looked_up = Vec::with_capacity(parts.len());
    let mut redirected = None;
    let result = (|| {
        let mut ino = inodes::ROOT;
        let mut kind = Kind::Dir;
        let mut mtime = now;
        for (i, part) in parts.iter().enumerate() {
            if kind == Kind::Symlink && depth < 4 {
                let target =
                    follow(&parts[..i - 1], &view.readlink(ino)?).ok_or(FsError::NotFound)?;
                redirected = Some([target.as_slice(), &parts[i..]].concat());
                return Err(FsError::NotFound);
            }
            if kind != Kind::Dir {
                return Err(FsError::NotDir);
            }
            let entry = view.lookup(ino, part, now)?;
            looked_up.push(entry.ino);
            ino = entry.ino;
            kind = entry.attr.kind;
            mtime = entry.attr.mtime;
        }
        match kind {
            Kind::File => Ok(Found::File {
                blob: view.blob(ino)?,
                mtime,
            }),
            Kind::Symlink => Ok(Found::Link {
                target: view.readlink(ino)?,
            }),
            Kind::Dir => {
                let mut names: Vec<(String, Kind)> = view
                    .list(ino, now)?
                    .into_iter()
                    .map(|e| (e.name, e.kind))
                    .collect();
                names.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Found::Dir { names })
            }
        }
    })();
    for ino in looked_up {
        view.forget(ino, 1);
    }
    match redirected {
        Some(parts) => resolve_within(view, &parts, depth + 1),
        None => result,
    }
}

/// Whether the file at `parts` never changes under its URL.
fn immutable(parts: &[String]) -> bool {
    parts.first().is_some_and(|p| p == "snapshots")
        || parts.iter().any(|p| p == "by-hash" || p == "pool")
}

async fn serve(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let Some(parts) = components(&path) else {
        return plain(StatusCode::BAD_REQUEST, "bad path\n");
    };
    let view = state.view.clone();
    let lookup_parts = parts.clone();
    let found = match tokio::task::spawn_blocking(move || resolve(&view, &lookup_parts)).await {
        Ok(r) => r,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    };
    match found {
        Err(FsError::NotFound | FsError::NotDir | FsError::IsDir) => {
            plain(StatusCode::NOT_FOUND, "not found\n")
        }
        Err(e) => {
            tracing::error!(path, "serving: {e}");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store could not answer (see the server's log)\n",
            )
        }
        Ok(Found::Link { target }) => {
            // `channels/<c>.snapshot` -> `../snapshots/<id>`: the
            // browser resolves it against the link's own URL.
            Redirect::to(&format!("{target}/")).into_response()
        }
        Ok(Found::Dir { names }) => {
            if !path.ends_with('/') {
                return Redirect::permanent(&format!("{path}/")).into_response();
            }
            listing(&path, &names)
        }
        Ok(Found::File { blob, mtime }) => {
            let pool = state.store.pool();
            file_response(
                &pool.path(&blob.hex()),
                blob,
                mtime,
                immutable(&parts),
                &method,
                &headers,
            )
            .await
        }
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_string(),
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A directory as a plain HTML list (for people; apt never lists).
fn listing(path: &str, names: &[(String, Kind)]) -> Response {
    let mut body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{0}</title></head><body><h1>{0}</h1><ul>\n",
        html_escape(path)
    );
    if path != "/" {
        body.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, kind) in names {
        let slash = if *kind == Kind::File { "" } else { "/" };
        let name = html_escape(name);
        body.push_str(&format!(
            "<li><a href=\"{name}{slash}\">{name}{slash}</a></li>\n"
        ));
    }
    body.push_str("</ul></body></html>\n");
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// An HTTP date (IMF-fixdate) for `t`.
pub fn http_date(t: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn parse_http_date(s: &str) -> Option<SystemTime> {
    let t = jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S GMT", s.trim()).ok()?;
    let ts = t
        .to_datetime()
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp();
    Some(SystemTime::from(ts))
}

/// Whole seconds: HTTP dates have no fractions.
fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// A range outside the file: 416.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// The single byte range a `Range` header asks of a `size`-byte file:
/// `Ok(None)` for the whole file (no header, or one we do not serve
/// partially, as several ranges), `Err` when unsatisfiable.
pub fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 {
            return Err(Unsatisfiable);
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let end: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(size.saturating_sub(1))
        };
        if start > end {
            return Err(Unsatisfiable);
        }
        (start, end)
    };
    if size == 0 || range.0 >= size {
        return Err(Unsatisfiable);
    }
    Ok(Some(range))
}

async fn file_response(
    path: &std::path::Path,
    blob: Blob,
    mtime: SystemTime,
    immutable: bool,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let etag = format!("\"{}\"", blob.hex());
    let last_modified = http_date(mtime);
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut base = HeaderMap::new();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            base.insert(name, v);
        }
    };
    set(header::ETAG, &etag);
    set(header::LAST_MODIFIED, &last_modified);
    set(header::CACHE_CONTROL, cache);
    set(header::ACCEPT_RANGES, "bytes");

    // Conditional requests: If-None-Match wins over If-Modified-Since.
    let header_str = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let not_modified = match header_str(header::IF_NONE_MATCH) {
        Some(inm) => inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*"),
        None => header_str(header::IF_MODIFIED_SINCE)
            .and_then(parse_http_date)
            .is_some_and(|since| secs(mtime) <= secs(since)),
    };
    if not_modified {
        return (StatusCode::NOT_MODIFIED, base).into_response();
    }

    let size = blob.size;
    // If-Range: a range only of the representation the client has.
    let range_allowed = match header_str(header::IF_RANGE) {
        None => true,
        Some(v) if v.starts_with('"') || v.starts_with("W/") => v == etag,
        Some(v) => parse_http_date(v).is_some_and(|d| secs(mtime) <= secs(d)),
    };
    let range = match header_str(header::RANGE).filter(|_| range_allowed) {
        None => None,
        Some(v) => match parse_range(v, size) {
            Ok(r) => r,
            Err(Unsatisfiable) => {
                let mut h = base;
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
                return (StatusCode::RANGE_NOT_SATISFIABLE, h).into_response();
            }
        },
    };
    let (status, start, len) = match range {
        Some((a, b)) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")) {
                base.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        None => (StatusCode::OK, 0, size),
    };
    base.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    base.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if *method == Method::HEAD {
        return (status, base).into_response();
    }
    let body = match open_body(path, start, len).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(path = %path.display(), "reading a pool file: {e}");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store could not answer (see the server's log)\n",
            );
        }
    };
    (status, base, body).into_response()
}

/// `len` bytes of the file from `start`: read whole when small, streamed
/// otherwise (a pool download of hundreds of megabytes holds a chunk).
async fn open_body(path: &std::path::Path, start: u64, len: u64) -> std::io::Result<Body> {
    if len <= SMALL_FILE {
        // One trip to a blocking thread: open and read at the offset.
        let path = path.to_path_buf();
        let buf = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let file = std::fs::File::open(&path)?;
            let mut buf = vec![0; usize::try_from(len).unwrap_or(0)];
            file.read_exact_at(&mut buf, start)?;
            Ok::<_, std::io::Error>(buf)
        })
        .await
        .map_err(std::io::Error::other)??;
        return Ok(Body::from(buf));
    }
    let mut file = tokio::fs::File::open(path).await?;
    if start > 0 {
        file.seek(SeekFrom::Start(start)).await?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), CHUNK);
    Ok(Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_followed_within_the_root() {
        let dir = vec!["channels".to_string()];
        assert_eq!(
            follow(&dir, "../snapshots/S"),
            Some(vec!["snapshots".to_string(), "S".to_string()])
        );
        assert_eq!(follow(&dir, "../../x"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=5-1", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
    }

    #[test]
    fn paths_are_checked_and_decoded() {
        assert_eq!(
            components("/channels/a%2Bb/x"),
            Some(vec!["channels".into(), "a+b".into(), "x".into()])
        );
        assert_eq!(components("/channels/../x"), None);
        assert_eq!(components("/channels/%2e%2e/x"), None);
        assert_eq!(components("/channels/a%2Fb"), None);
        assert_eq!(components("/channels/a%00b"), None);
        assert_eq!(components("/channels/%ff"), None);
        assert_eq!(
            components("/pool/bsdutils_1%253a2.38_amd64.deb"),
            Some(vec!["pool".into(), "bsdutils_1%3a2.38_amd64.deb".into()])
        );
    }

    #[test]
    fn dates_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let s = http_date(t);
        assert_eq!(s, "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(parse_http_date(&s), Some(t));
    }

    #[test]
    fn what_never_changes() {
        let p = |s: &str| components(s).unwrap_or_default();
        assert!(immutable(&p("/snapshots/x/a/dists/t/InRelease")));
        assert!(immutable(&p("/channels/t/a/pool/main/h/hello/h.deb")));
        assert!(immutable(&p(
            "/channels/t/a/dists/t/main/binary-amd64/by-hash/SHA256/ab"
        )));
        assert!(!immutable(&p("/channels/t/a/dists/t/InRelease")));
    }
}
