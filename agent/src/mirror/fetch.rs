//! EDGE: HTTP downloads from upstream repositories (tokio + reqwest,
//! rustls with the `ring` provider).
//!
//! - Every transfer is checked against what the verified Release or index
//!   promised: size first (a body longer than promised is cut off at once),
//!   then SHA-256.
//! - Transient failures (HTTP 5xx, 408, 429, connection errors, timeouts, a
//!   connection dropped mid-body) are retried with exponential backoff;
//!   anything else (404, a wrong hash or size) fails at once: retrying
//!   cannot fix it, and apt would refuse it too.
//! - Pool files stream into the pool's temp files while hashed (the file
//!   write and hashing run on tokio's blocking pool); memory stays bounded
//!   by the concurrency, not by package sizes.
//! - Release files are fetched conditionally (`If-None-Match`,
//!   `If-Modified-Since`), so an unchanged upstream costs one request.
//!
//! It does not decide what to fetch (that is `plan`) or commit anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use repofs::store::pool::{FinishedBlob, Pool};
use reqwest::header::{HeaderMap, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::StatusCode;

use crate::config::FetchConfig;

/// Why one URL failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchErrorKind {
    #[error("not found (HTTP 404)")]
    NotFound,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("transfer failed")]
    Transport(#[source] reqwest::Error),
    #[error("truncated download: {got} bytes, expected {expected}")]
    Truncated { got: u64, expected: u64 },
    #[error("size mismatch: more than the {expected} bytes expected")]
    TooLong { expected: u64 },
    #[error("SHA256 mismatch: got {got}, expected {expected}")]
    HashMismatch { got: String, expected: String },
    #[error("cannot write into the store")]
    Store(#[source] std::io::Error),
}

/// One URL that failed, and why: the URL is the line's subject, the kind
/// its cause (printed after it by the error chain).
#[derive(Debug, thiserror::Error)]
#[error("{url}")]
pub struct FetchError {
    pub url: String,
    #[source]
    pub kind: FetchErrorKind,
}

impl FetchError {
    /// Worth another attempt.
    fn is_transient(&self) -> bool {
        match &self.kind {
            FetchErrorKind::Status(s) => *s >= 500 || *s == 408 || *s == 429,
            FetchErrorKind::Transport(_) => true,
            _ => false,
        }
    }

    /// The upstream (or the network to it) is at fault, not this machine.
    pub fn is_upstream(&self) -> bool {
        !matches!(self.kind, FetchErrorKind::Store(_))
    }
}

/// What a download must turn out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub size: u64,
    pub sha256: String,
}

/// Validators of a previous fetch, for a conditional request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The result of a conditional fetch.
#[derive(Debug)]
pub enum Conditional {
    NotModified,
    NotFound,
    Body {
        data: Vec<u8>,
        validators: Validators,
    },
}

/// Largest release file (InRelease, Release, Release.gpg) accepted.
const RELEASE_MAX: u64 = 64 << 20;

/// The HTTP client of a `halo mirror update` run, shared by every mirror
/// and download task. It counts requests and body bytes so that the
/// summary (and the tests) can show that a no-op update fetched nothing.
pub struct Fetcher {
    client: reqwest::Client,
    retries: u32,
    backoff: Duration,
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Self, reqwest::Error> {
        // A process-wide provider for rustls; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("rustedhalo/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(config.timeout_seconds.min(30)))
            .read_timeout(Duration::from_secs(config.timeout_seconds))
            .build()?;
        Ok(Self {
            client,
            retries: config.retries,
            backoff: Duration::from_millis(config.retry_backoff_ms),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Runs `attempt` until it succeeds, fails for good, or retries run out.
    async fn with_retries<T, F, Fut>(&self, url: &str, mut attempt: F) -> Result<T, FetchError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, FetchError>>,
    {
        let mut n = 0;
        loop {
            match attempt().await {
                Err(e) if e.is_transient() && n < self.retries => {
                    let wait = self.backoff * 2u32.saturating_pow(n);
                    tracing::warn!(url = %crate::redact::redact_urls(url), attempt = n + 1, error = %crate::redact::redact_urls(&crate::mirror::chain(&e)), "transient failure, retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    async fn send(&self, url: &str, headers: HeaderMap) -> Result<reqwest::Response, FetchError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let err = |kind| FetchError {
            url: url.to_string(),
            kind,
        };
        let resp = self
            .client
            .get(url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| err(FetchErrorKind::Transport(e)))?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_MODIFIED => Ok(resp),
            StatusCode::NOT_FOUND | StatusCode::GONE => Err(err(FetchErrorKind::NotFound)),
            s => Err(err(FetchErrorKind::Status(s.as_u16()))),
        }
    }

    /// Reads a body into memory, refusing more than `max` bytes.
    async fn read_body(
        &self,
        url: &str,
        resp: reqwest::Response,
        max: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let mut data = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError {
                url: url.to_string(),
                kind: FetchErrorKind::Transport(e),
            })?;
            self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if data.len() as u64 + chunk.len() as u64 > max {
                return Err(FetchError {
                    url: url.to_string(),
                    kind: FetchErrorKind::TooLong { expected: max },
                });
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data)
    }

    /// A release file, conditionally when `previous` validators are known.
    pub async fn fetch_conditional(
        &self,
        url: &str,
        previous: Option<&Validators>,
    ) -> Result<Conditional, FetchError> {
        self.with_retries(url, || async {
            let mut headers = HeaderMap::new();
            if let Some(v) = previous {
                if let Some(Ok(etag)) = v.etag.as_deref().map(str::parse) {
                    headers.insert(IF_NONE_MATCH, etag);
                }
                if let Some(Ok(lm)) = v.last_modified.as_deref().map(str::parse) {
                    headers.insert(IF_MODIFIED_SINCE, lm);
                }
            }
            let resp = match self.send(url, headers).await {
                Err(FetchError {
                    kind: FetchErrorKind::NotFound,
                    ..
                }) => return Ok(Conditional::NotFound),
                other => other?,
            };
            if resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(Conditional::NotModified);
            }
            let header = |name| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let validators = Validators {
                etag: header(ETAG),
                last_modified: header(LAST_MODIFIED),
            };
            let data = self.read_body(url, resp, RELEASE_MAX).await?;
            Ok(Conditional::Body { data, validators })
        })
        .await
    }

    /// A file into memory, checked against `expected` (indices).
    pub async fn fetch_verified(
        &self,
        url: &str,
        expected: &Expected,
    ) -> Result<Vec<u8>, FetchError> {
        self.with_retries(url, || async {
            let resp = self.send(url, HeaderMap::new()).await?;
            let data = self.read_body(url, resp, expected.size).await?;
            check(
                url,
                data.len() as u64,
                &repofs::hash::sha256_hex(&data),
                expected,
            )?;
            Ok(data)
        })
        .await
    }

    /// A pool file, streamed into a pool temp file while hashed; returned
    /// verified, ready for a pool batch.
    pub async fn fetch_blob(
        &self,
        pool: &Pool,
        url: &str,
        expected: &Expected,
    ) -> Result<FinishedBlob, FetchError> {
        self.with_retries(url, || self.fetch_blob_once(pool, url, expected))
            .await
    }

    async fn fetch_blob_once(
        &self,
        pool: &Pool,
        url: &str,
        expected: &Expected,
    ) -> Result<FinishedBlob, FetchError> {
        let store_err = |e| FetchError {
            url: url.to_string(),
            kind: FetchErrorKind::Store(e),
        };
        let resp = self.send(url, HeaderMap::new()).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
        let writer_pool = pool.clone();
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<FinishedBlob> {
            use std::io::Write;
            let mut w = writer_pool.blob_writer()?;
            while let Some(chunk) = rx.blocking_recv() {
                w.write_all(&chunk)?;
            }
            w.finish()
        });
        let mut got = 0u64;
        let mut stream = resp.bytes_stream();
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => {
                    got += c.len() as u64;
                    self.bytes.fetch_add(c.len() as u64, Ordering::Relaxed);
                    if got > expected.size {
                        failure = Some(FetchErrorKind::TooLong {
                            expected: expected.size,
                        });
                        break;
                    }
                    if tx.send(c).await.is_err() {
                        break; // the writer failed: its error is reported below
                    }
                }
                Err(e) => {
                    failure = Some(FetchErrorKind::Transport(e));
                    break;
                }
            }
        }
        drop(tx);
        let blob = writer
            .await
            .map_err(|e| store_err(std::io::Error::other(e)))?
            .map_err(store_err)?;
        if let Some(kind) = failure {
            return Err(FetchError {
                url: url.to_string(),
                kind,
            });
        }
        let d = blob.digests();
        check(url, d.size, &d.sha256, expected)?;
        Ok(blob)
    }
}

/// Size, then SHA-256.
fn check(url: &str, size: u64, sha256: &str, expected: &Expected) -> Result<(), FetchError> {
    let kind = if size < expected.size {
        FetchErrorKind::Truncated {
            got: size,
            expected: expected.size,
        }
    } else if size > expected.size {
        FetchErrorKind::TooLong {
            expected: expected.size,
        }
    } else if sha256 != expected.sha256 {
        FetchErrorKind::HashMismatch {
            got: sha256.to_string(),
            expected: expected.sha256.clone(),
        }
    } else {
        return Ok(());
    };
    Err(FetchError {
        url: url.to_string(),
        kind,
    })
}
