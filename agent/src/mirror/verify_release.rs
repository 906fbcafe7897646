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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use repofs::sign::SigningKey;

    use super::*;

    const BASE: &str = "http://up.example/debian/";

    fn url(path: &str) -> String {
        format!("{BASE}dists/stable/{path}")
    }

    /// An upstream in memory: files by URL, answering conditional requests
    /// by ETag (the content's hash), and the URLs asked for, in order.
    #[derive(Default)]
    struct Fake {
        files: BTreeMap<String, Vec<u8>>,
        asked: RefCell<Vec<String>>,
    }

    impl Fake {
        fn with(mut self, path: &str, data: impl Into<Vec<u8>>) -> Self {
            self.files.insert(url(path), data.into());
            self
        }

        fn asked(&self) -> Vec<String> {
            let asked = self.asked.borrow();
            asked
                .iter()
                .map(|u| u.trim_start_matches(&url("")).to_string())
                .collect()
        }
    }

    impl ReleaseSource for Fake {
        async fn fetch_conditional(
            &self,
            url: &str,
            previous: Option<&Validators>,
        ) -> Result<Conditional, FetchError> {
            self.asked.borrow_mut().push(url.to_string());
            let Some(data) = self.files.get(url) else {
                return Ok(Conditional::NotFound);
            };
            let etag = sha256_hex(data);
            if previous.and_then(|v| v.etag.as_deref()) == Some(etag.as_str()) {
                return Ok(Conditional::NotModified);
            }
            Ok(Conditional::Body {
                data: data.clone(),
                validators: Validators {
                    etag: Some(etag),
                    last_modified: None,
                },
            })
        }
    }

    /// Runs a future that never waits (the fake answers at once).
    fn now_or_never<T>(f: impl Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the fake upstream never waits"),
        }
    }

    const RELEASE: &str = "Origin: Up\nSuite: stable\nArchitectures: amd64\nComponents: main\n\
SHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages\n";

    struct Upstream {
        key: SigningKey,
        keyring: Keyring,
    }

    impl Upstream {
        fn new() -> Self {
            let key = SigningKey::generate("Upstream <up@example.org>").unwrap();
            let keyring = Keyring::from_bytes(&key.public_key_binary().unwrap()).unwrap();
            Self { key, keyring }
        }

        fn inrelease(&self, text: &str) -> Vec<u8> {
            self.key.clearsign(text).unwrap().into_bytes()
        }

        fn detached(&self, text: &str) -> Vec<u8> {
            self.key
                .sign_detached(text.as_bytes())
                .unwrap()
                .into_bytes()
        }
    }

    struct Check {
        components: Vec<String>,
        architectures: Vec<String>,
        verbatim: bool,
    }

    impl Check {
        fn new() -> Self {
            Self {
                components: vec!["main".into()],
                architectures: vec!["amd64".into()],
                verbatim: false,
            }
        }

        fn with<'a>(&'a self, keyring: Option<&'a Keyring>) -> ReleaseCheck<'a> {
            ReleaseCheck {
                base_url: BASE.to_string(),
                mirror: "up",
                verbatim: self.verbatim,
                wanted: Wanted {
                    components: &self.components,
                    architectures: &self.architectures,
                    sources: false,
                    translations: &[],
                    udebs: false,
                },
                keyring,
                now: jiff::Timestamp::now(),
            }
        }
    }

    fn fresh(outcome: Result<ReleaseOutcome, Error>) -> FreshRelease {
        match outcome {
            Ok(ReleaseOutcome::Fresh(r)) => *r,
            Ok(ReleaseOutcome::Unchanged) => panic!("unchanged, expected fresh"),
            Err(e) => panic!("refused: {}", repofs::error_chain(&e)),
        }
    }

    fn names(r: &FreshRelease) -> Vec<&str> {
        r.files.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_signed_inrelease_is_enough() {
        let up = Upstream::new();
        let src = Fake::default().with("InRelease", up.inrelease(RELEASE));
        let check = Check::new();
        let r = fresh(now_or_never(
            check
                .with(Some(&up.keyring))
                .fetch_release(&src, "stable", None),
        ));
        assert_eq!(r.release.origin.as_deref(), Some("Up"));
        assert_eq!(names(&r), ["InRelease"]);
        assert_eq!(r.record.url, url("InRelease"));
        assert_eq!(r.record.sha256, sha256_hex(&src.files[&url("InRelease")]));
        assert_eq!(src.asked(), ["InRelease"]);
    }

    #[test]
    fn release_and_release_gpg_only() {
        let up = Upstream::new();
        let src = Fake::default()
            .with("Release", RELEASE)
            .with("Release.gpg", up.detached(RELEASE));
        let check = Check::new();
        let r = fresh(now_or_never(
            check
                .with(Some(&up.keyring))
                .fetch_release(&src, "stable", None),
        ));
        assert_eq!(names(&r), ["Release.gpg", "Release"]);
        assert_eq!(r.record.url, url("Release"));
        assert_eq!(r.record.sha256, sha256_hex(RELEASE.as_bytes()));
        assert_eq!(src.asked(), ["InRelease", "Release", "Release.gpg"]);

        // A signature over other bytes is refused, naming Release.gpg.
        let src = Fake::default()
            .with("Release", RELEASE.replace("Up", "Evil"))
            .with("Release.gpg", up.detached(RELEASE));
        let e = now_or_never(
            check
                .with(Some(&up.keyring))
                .fetch_release(&src, "stable", None),
        )
        .err()
        .unwrap();
        assert!(
            matches!(&e, Error::Signature { url: u, .. } if *u == url("Release.gpg")),
            "{e:?}"
        );
    }

    #[test]
    fn an_unsigned_release_is_refused_unless_trusted() {
        let src = Fake::default().with("Release", RELEASE);
        let up = Upstream::new();
        let check = Check::new();
        let e = now_or_never(
            check
                .with(Some(&up.keyring))
                .fetch_release(&src, "stable", None),
        )
        .err()
        .unwrap();
        assert!(
            matches!(&e, Error::Unsigned { url: u } if *u == url("Release.gpg")),
            "{e:?}"
        );
        assert!(e.is_user_error());

        // trusted = true: no keyring, nothing verified, nothing refused.
        let r = fresh(now_or_never(
            check.with(None).fetch_release(&src, "stable", None),
        ));
        assert_eq!(names(&r), ["Release"]);
    }

    #[test]
    fn trusted_takes_an_inrelease_whatever_signed_it() {
        let stranger = Upstream::new();
        let src = Fake::default().with("InRelease", stranger.inrelease(RELEASE));
        let check = Check::new();
        let r = fresh(now_or_never(
            check.with(None).fetch_release(&src, "stable", None),
        ));
        assert_eq!(r.release.suite.as_deref(), Some("stable"));
        // ... which a keyring refuses.
        let up = Upstream::new();
        let e = now_or_never(
            check
                .with(Some(&up.keyring))
                .fetch_release(&src, "stable", None),
        )
        .err()
        .unwrap();
        assert!(matches!(e, Error::Signature { .. }), "{e:?}");
    }

    #[test]
    fn no_release_at_all_names_the_dist() {
        let check = Check::new();
        let e = now_or_never(
            check
                .with(None)
                .fetch_release(&Fake::default(), "stable", None),
        )
        .err()
        .unwrap();
        assert!(
            matches!(&e, Error::NoRelease { dist, .. } if dist == "stable"),
            "{e:?}"
        );
    }

    #[test]
    fn the_upstream_switching_to_inrelease_is_followed() {
        let up = Upstream::new();
        let check = Check::new();
        let keyring = Some(&up.keyring);
        // Last time the upstream had only Release + Release.gpg.
        let old = Fake::default()
            .with("Release", RELEASE)
            .with("Release.gpg", up.detached(RELEASE));
        let prev = fresh(now_or_never(
            check.with(keyring).fetch_release(&old, "stable", None),
        ))
        .record;
        // Now it has only InRelease: Release is asked first (the file it
        // had), then InRelease.
        let new = Fake::default().with("InRelease", up.inrelease(RELEASE));
        let r = fresh(now_or_never(check.with(keyring).fetch_release(
            &new,
            "stable",
            Some(&prev),
        )));
        assert_eq!(r.record.url, url("InRelease"));
        assert_eq!(new.asked(), ["Release", "InRelease"]);
        // And back: InRelease gone, Release + Release.gpg again.
        let r = fresh(now_or_never(check.with(keyring).fetch_release(
            &old,
            "stable",
            Some(&r.record),
        )));
        assert_eq!(r.record.url, url("Release"));
    }

    #[test]
    fn an_unchanged_release_costs_one_request_until_it_expires() {
        let up = Upstream::new();
        let check = Check::new();
        let keyring = Some(&up.keyring);
        let src = Fake::default().with("InRelease", up.inrelease(RELEASE));
        let mut prev = fresh(now_or_never(
            check.with(keyring).fetch_release(&src, "stable", None),
        ))
        .record;
        src.asked.borrow_mut().clear();
        let again = now_or_never(
            check
                .with(keyring)
                .fetch_release(&src, "stable", Some(&prev)),
        );
        assert!(matches!(again, Ok(ReleaseOutcome::Unchanged)));
        assert_eq!(src.asked(), ["InRelease"]);
        // The same bytes without a 304 (no validators kept) are unchanged too.
        prev.etag = None;
        let again = now_or_never(
            check
                .with(keyring)
                .fetch_release(&src, "stable", Some(&prev)),
        );
        assert!(matches!(again, Ok(ReleaseOutcome::Unchanged)));
        // Past its Valid-Until, unchanged is not good enough.
        prev.valid_until = Some("2001-01-01T00:00:00Z".into());
        let e = now_or_never(
            check
                .with(keyring)
                .fetch_release(&src, "stable", Some(&prev)),
        )
        .err()
        .unwrap();
        assert!(
            repofs::error_chain(&e).contains("expired"),
            "{}",
            repofs::error_chain(&e)
        );
    }

    #[test]
    fn a_verbatim_mirror_keeps_release_and_release_gpg_beside_inrelease() {
        let up = Upstream::new();
        let mut check = Check::new();
        check.verbatim = true;
        let src = Fake::default()
            .with("InRelease", up.inrelease(RELEASE))
            .with("Release", RELEASE)
            .with("Release.gpg", up.detached(RELEASE));
        let r = fresh(now_or_never(
            check
                .with(Some(&up.keyring))
                .fetch_release(&src, "stable", None),
        ));
        assert_eq!(names(&r), ["InRelease", "Release", "Release.gpg"]);
        assert_eq!(r.record.url, url("InRelease"));
    }

    #[test]
    fn a_release_missing_a_wanted_component_is_refused() {
        let up = Upstream::new();
        let mut check = Check::new();
        check.components.push("contrib".into());
        let src = Fake::default().with("InRelease", up.inrelease(RELEASE));
        let e = now_or_never(
            check
                .with(Some(&up.keyring))
                .fetch_release(&src, "stable", None),
        )
        .err()
        .unwrap();
        assert!(
            matches!(&e, Error::Release { url: u, .. } if *u == url("InRelease")),
            "{e:?}"
        );
        assert!(repofs::error_chain(&e).contains("lists no component contrib"));
    }
}
