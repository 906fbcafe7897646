//! Step 1 of a mirror update: fetch a dist's `InRelease`, else `Release`
//! and `Release.gpg`, conditionally, and verify it with the mirror's
//! keyring; or find it unchanged since the last committed update (HTTP 304,
//! or the same bytes), in which case nothing else of the dist is fetched.
//!
//! An unchanged release is still refused once its `Valid-Until` has passed:
//! a frozen upstream must not stay trusted for ever.
//!
//! The files come through [`ReleaseSource`], not HTTP itself, so that every
//! path through here (signed InRelease, Release with Release.gpg, unsigned,
//! `trusted = true`, an upstream switching between the two) is tested
//! against a fake in memory.

use std::time::SystemTime;

use repofs::hash::sha256_hex;
use repofs::index::read::plan::Wanted;
use repofs::index::read::release::{self, Release};
use repofs::sign::Keyring;
use repofs::store::mirrors::FetchedRelease;

use super::fetch::{Conditional, FetchError, Fetcher, Validators};
use super::Error;

/// Where release files come from: HTTP in production, a map in tests.
pub(super) trait ReleaseSource {
    /// The file at `url`, conditionally when `previous` validators are known.
    async fn fetch_conditional(
        &self,
        url: &str,
        previous: Option<&Validators>,
    ) -> Result<Conditional, FetchError>;
}

impl ReleaseSource for Fetcher {
    async fn fetch_conditional(
        &self,
        url: &str,
        previous: Option<&Validators>,
    ) -> Result<Conditional, FetchError> {
        Fetcher::fetch_conditional(self, url, previous).await
    }
}

/// A release fetched and verified.
pub(super) struct FreshRelease {
    pub(super) release: Release,
    /// The upstream's signed files as fetched (for verbatim mirrors).
    pub(super) files: Vec<(String, Vec<u8>)>,
    pub(super) record: FetchedRelease,
}

pub(super) enum ReleaseOutcome {
    Unchanged,
    Fresh(Box<FreshRelease>),
}

/// What verifying a dist's release needs to know of the mirror.
pub(super) struct ReleaseCheck<'a> {
    /// The repository's URL, ending with `/`.
    pub(super) base_url: String,
    /// The mirror's name, for the log.
    pub(super) mirror: &'a str,
    /// Keep `Release` and `Release.gpg` beside `InRelease`, to serve them.
    pub(super) verbatim: bool,
    pub(super) wanted: Wanted<'a>,
    /// `None` for `trusted = true`: nothing is verified.
    pub(super) keyring: Option<&'a Keyring>,
    pub(super) now: jiff::Timestamp,
}

impl ReleaseCheck<'_> {
    fn dist_url(&self, dist: &str, path: &str) -> String {
        format!("{}dists/{dist}/{path}", self.base_url)
    }

    /// Fetches and verifies the release of `dist`, or finds it unchanged
    /// since `prev` (the last committed fetch).
    pub(super) async fn fetch_release(
        &self,
        src: &impl ReleaseSource,
        dist: &str,
        prev: Option<&FetchedRelease>,
    ) -> Result<ReleaseOutcome, Error> {
        let inrelease_url = self.dist_url(dist, "InRelease");
        let release_url = self.dist_url(dist, "Release");
        // Ask first for the file the upstream had last time.
        let release_first = prev.is_some_and(|p| p.url == release_url);
        if !release_first {
            let validators = prev.filter(|p| p.url == inrelease_url).map(validators_of);
            match src
                .fetch_conditional(&inrelease_url, validators.as_ref())
                .await?
            {
                Conditional::NotModified => return self.unchanged(prev, &inrelease_url),
                Conditional::Body { data, validators } => {
                    if prev.is_some_and(|p| p.url == inrelease_url && p.sha256 == sha256_hex(&data))
                    {
                        return self.unchanged(prev, &inrelease_url);
                    }
                    return self.verify_inrelease(src, dist, data, validators).await;
                }
                Conditional::NotFound => {}
            }
        }
        let validators = prev.filter(|p| p.url == release_url).map(validators_of);
        match src
            .fetch_conditional(&release_url, validators.as_ref())
            .await?
        {
            Conditional::NotModified => self.unchanged(prev, &release_url),
            Conditional::Body { data, validators } => {
                if prev.is_some_and(|p| p.url == release_url && p.sha256 == sha256_hex(&data)) {
                    return self.unchanged(prev, &release_url);
                }
                self.verify_release(src, dist, data, validators).await
            }
            Conditional::NotFound if release_first => {
                // The upstream switched to InRelease.
                Box::pin(self.fetch_release(src, dist, None)).await
            }
            Conditional::NotFound => Err(Error::NoRelease {
                url: inrelease_url,
                dist: dist.to_string(),
            }),
        }
    }

    /// An unchanged release is still refused once its Valid-Until passed.
    fn unchanged(&self, prev: Option<&FetchedRelease>, url: &str) -> Result<ReleaseOutcome, Error> {
        let valid_until = prev
            .and_then(|p| p.valid_until.as_deref())
            .and_then(|v| v.parse::<jiff::Timestamp>().ok());
        release::check_valid_until(valid_until, self.now).map_err(|source| Error::Release {
            url: url.to_string(),
            source,
        })?;
        Ok(ReleaseOutcome::Unchanged)
    }

    fn now_system(&self) -> SystemTime {
        SystemTime::from(self.now)
    }

    async fn verify_inrelease(
        &self,
        src: &impl ReleaseSource,
        dist: &str,
        data: Vec<u8>,
        validators: Validators,
    ) -> Result<ReleaseOutcome, Error> {
        let url = self.dist_url(dist, "InRelease");
        let text = match self.keyring {
            Some(k) => {
                let v = k
                    .verify_cleartext(&data, self.now_system())
                    .map_err(|e| signature_error(url.clone(), e))?;
                String::from_utf8(v.text).map_err(|_| not_utf8(&url))?
            }
            None => {
                tracing::warn!(mirror = %self.mirror, url = %crate::redact::redact_urls(&url), "trusted = true: the release is NOT verified");
                let text = std::str::from_utf8(&data).map_err(|_| not_utf8(&url))?;
                repofs::deb822::strip_cleartext_signature(text).map_err(|e| Error::Release {
                    url: url.clone(),
                    source: e.into(),
                })?
            }
        };
        let mut files = vec![("InRelease".to_string(), data)];
        if self.verbatim {
            // Serve Release and Release.gpg too when the upstream has them,
            // for clients that do not read InRelease.
            let rel_url = self.dist_url(dist, "Release");
            let gpg_url = self.dist_url(dist, "Release.gpg");
            if let Conditional::Body { data: rel, .. } =
                src.fetch_conditional(&rel_url, None).await?
            {
                if let Conditional::Body { data: sig, .. } =
                    src.fetch_conditional(&gpg_url, None).await?
                {
                    if let Some(k) = self.keyring {
                        k.verify_detached(&rel, &sig, self.now_system())
                            .map_err(|e| signature_error(gpg_url, e))?;
                    }
                    files.push(("Release".to_string(), rel));
                    files.push(("Release.gpg".to_string(), sig));
                }
            }
        }
        self.accept_release(url, &text, files, validators)
    }

    async fn verify_release(
        &self,
        src: &impl ReleaseSource,
        dist: &str,
        data: Vec<u8>,
        validators: Validators,
    ) -> Result<ReleaseOutcome, Error> {
        let url = self.dist_url(dist, "Release");
        let gpg_url = self.dist_url(dist, "Release.gpg");
        let mut files = Vec::new();
        match src.fetch_conditional(&gpg_url, None).await? {
            Conditional::Body { data: sig, .. } => {
                if let Some(k) = self.keyring {
                    k.verify_detached(&data, &sig, self.now_system())
                        .map_err(|e| signature_error(gpg_url.clone(), e))?;
                }
                files.push(("Release.gpg".to_string(), sig));
            }
            _ if self.keyring.is_none() => {}
            _ => return Err(Error::Unsigned { url: gpg_url }),
        }
        if self.keyring.is_none() {
            tracing::warn!(mirror = %self.mirror, url = %crate::redact::redact_urls(&url), "trusted = true: the release is NOT verified");
        }
        let text = String::from_utf8(data.clone()).map_err(|_| not_utf8(&url))?;
        files.push(("Release".to_string(), data));
        self.accept_release(url, &text, files, validators)
    }

    fn accept_release(
        &self,
        url: String,
        text: &str,
        files: Vec<(String, Vec<u8>)>,
        validators: Validators,
    ) -> Result<ReleaseOutcome, Error> {
        let err = |source| Error::Release {
            url: url.clone(),
            source,
        };
        let release = release::parse_release(text).map_err(err)?;
        release::check_release(&release, &self.wanted, self.now).map_err(err)?;
        // The signed file as fetched: what the next update compares against.
        let signed = files
            .iter()
            .find(|(n, _)| url.ends_with(&format!("/{n}")))
            .map(|(_, d)| sha256_hex(d))
            .unwrap_or_default();
        let record = FetchedRelease {
            url: url.clone(),
            sha256: signed,
            etag: validators.etag,
            last_modified: validators.last_modified,
            valid_until: release.valid_until.map(|v| v.to_string()),
        };
        Ok(ReleaseOutcome::Fresh(Box::new(FreshRelease {
            release,
            files,
            record,
        })))
    }
}

fn signature_error(url: impl Into<String>, e: repofs::sign::Error) -> Error {
    Error::Signature {
        url: url.into(),
        source: Box::new(e),
    }
}

fn validators_of(p: &FetchedRelease) -> Validators {
    Validators {
        etag: p.etag.clone(),
        last_modified: p.last_modified.clone(),
    }
}

fn not_utf8(url: &str) -> Error {
    Error::Release {
        url: url.to_string(),
        source: release::ReleaseError::NotUtf8,
    }
}
