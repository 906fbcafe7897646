//! EDGE: Jenkins' REST API over reqwest: basic auth with the API token,
//! a crumb and its session cookie only when the controller asks for one
//! (a POST refused with "No valid crumb"), retries with back-off when the
//! controller is down or answers 5xx, and one clear error per refusal
//! (401, 403 with the missing permission, 404). The token is only ever
//! in the Authorization header: never in a URL, a log line or an error.
//!
//! The controller's replies are data from outside, and bounded like any:
//! - The token goes only to the configured controller's origin (scheme,
//!   host, port). A queue item or build URL naming another origin is
//!   refused before anything is sent there: a hostile controller (or one
//!   whose "Jenkins URL" setting names another host) must not collect the
//!   credentials by handing out a URL.
//! - A reply's body is read in chunks up to a cap (16 MiB of JSON, 64 MiB
//!   of console per poll, 256 MiB for agent.jar); more is refused, not
//!   buffered.
//! - One exchange (connect, headers and the whole body) has a deadline, so
//!   a controller dripping a byte at a time cannot hold a call for ever;
//!   commands put their own deadline around everything they do.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode, Url};

use super::api::{self, ApiError, BuildInfo, ComputerInfo, NodeSpec, QueueItem};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Jenkins at {url} does not answer: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("Jenkins refused the credentials of user {user} (401): check [jenkins] user and the API token")]
    Unauthorized { user: String },
    #[error("Jenkins refused {what} (403){}", permission.as_ref().map(|p| format!(": user {user} lacks {p}")).unwrap_or_default())]
    Forbidden {
        what: String,
        user: String,
        permission: Option<String>,
    },
    #[error("Jenkins has no {what} (404)")]
    NotFound { what: String },
    #[error("Jenkins failed on {what} ({status}) after {tries} tries")]
    Server {
        what: String,
        status: u16,
        tries: u32,
    },
    #[error("Jenkins answered {what} with {status}: {detail}")]
    Unexpected {
        what: String,
        status: u16,
        detail: String,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Timeout(String),
    #[error("Jenkins at {root} handed out {url}, which is not on its origin: refused, nothing sent there (if the controller's \"Jenkins URL\" setting names it, make [jenkins] url the same)")]
    Foreign { root: String, url: String },
    #[error("Jenkins answered {what} with more than {limit} bytes: refused")]
    TooLarge { what: String, limit: u64 },
}

/// The most a JSON reply may hold.
pub const JSON_LIMIT: u64 = 16 << 20;
/// The most one poll of a build's console may return.
pub const CONSOLE_LIMIT: u64 = 64 << 20;
/// The most agent.jar may weigh (about 1.5 MiB in 2026).
pub const JAR_LIMIT: u64 = 256 << 20;
/// The longest one exchange may take, body included.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Why one exchange did not give a reply.
enum Failure {
    /// The connection or the transfer failed (retried).
    Http(reqwest::Error),
    /// The body is over the cap.
    TooLarge,
}

/// Reads `resp`'s body, refusing it once it passes `limit` bytes.
async fn read_capped(mut resp: reqwest::Response, limit: u64) -> Result<bytes::Bytes, Failure> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(Failure::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Failure::Http)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Failure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

/// Cookies and crumb of the web session a crumb belongs to.
#[derive(Debug, Default)]
struct Session {
    cookies: BTreeMap<String, String>,
    crumb: Option<(String, String)>,
}

pub struct Client {
    root: Url,
    user: String,
    token: String,
    http: reqwest::Client,
    session: Mutex<Session>,
    retries: u32,
    backoff: Duration,
    exchange_timeout: Duration,
}

/// A response: status, headers, body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn new(url: &str, user: &str, token: &str) -> Result<Self, Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut root = Url::parse(url).map_err(|e| Error::Unreachable {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("rustedhalo/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Unreachable {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            root,
            user: user.to_string(),
            token: token.to_string(),
            http,
            session: Mutex::new(Session::default()),
            retries: 4,
            backoff: Duration::from_millis(500),
            exchange_timeout: EXCHANGE_TIMEOUT,
        })
    }

    /// Fewer or faster retries (tests).
    pub fn with_retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    /// `url` if it is on the controller's origin; refused otherwise.
    fn own(&self, url: Url) -> Result<Url, Error> {
        if url.origin() == self.root.origin() {
            Ok(url)
        } else {
            Err(Error::Foreign {
                root: self.root.to_string(),
                url: url.to_string(),
            })
        }
    }

    /// `root` + path segments (each encoded), with a trailing slash when
    /// `dir` (Jenkins' object URLs end in one).
    pub fn url(&self, segments: &[&str], dir: bool) -> Url {
        let mut u = self.root.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty().extend(segments);
            if dir {
                p.push("");
            }
        }
        u
    }

    fn job_url(&self, job: &str, tail: &[&str], dir: bool) -> Result<Url, Error> {
        let segs = api::job_segments(job)?;
        let mut all: Vec<&str> = segs.iter().map(String::as_str).collect();
        all.extend_from_slice(tail);
        Ok(self.url(&all, dir))
    }

    /// Sends a request whose reply is JSON-sized (`JSON_LIMIT`).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        what: &str,
        body: Option<(&'static str, Vec<u8>)>,
        headers: &[(&str, String)],
    ) -> Result<Reply, Error> {
        self.send_capped(method, url, what, body, headers, JSON_LIMIT)
            .await
    }

    /// Sends a request to the controller's origin (only), with retries for
    /// a controller that is down or failing, and a crumb when a POST is
    /// refused for lack of one; a body over `limit` bytes, or an exchange
    /// over its deadline, is an error.
    pub async fn send_capped(
        &self,
        method: Method,
        url: Url,
        what: &str,
        body: Option<(&'static str, Vec<u8>)>,
        headers: &[(&str, String)],
        limit: u64,
    ) -> Result<Reply, Error> {
        let url = self.own(url)?;
        let mut crumb_tried = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .basic_auth(&self.user, Some(&self.token));
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            {
                let s = self.session.lock().unwrap_or_else(|e| e.into_inner());
                if !s.cookies.is_empty() {
                    let c: Vec<String> =
                        s.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    req = req.header(reqwest::header::COOKIE, c.join("; "));
                }
                if let Some((field, value)) = &s.crumb {
                    req = req.header(field.as_str(), value);
                }
            }
            if let Some((ctype, data)) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, *ctype)
                    .body(data.clone());
            }
            let exchange = async {
                let resp = req.send().await.map_err(Failure::Http)?;
                let status = resp.status();
                self.keep_cookies(resp.headers());
                let headers = resp.headers().clone();
                let body = read_capped(resp, limit).await?;
                Ok(Reply {
                    status,
                    headers,
                    body,
                })
            };
            let reply = match tokio::time::timeout(self.exchange_timeout, exchange).await {
                Ok(Ok(r)) => r,
                Err(_) => {
                    return Err(Error::Timeout(format!(
                        "Jenkins at {} did not finish answering {what} within {} s",
                        self.root,
                        self.exchange_timeout.as_secs()
                    )))
                }
                Ok(Err(Failure::TooLarge)) => {
                    return Err(Error::TooLarge {
                        what: what.to_string(),
                        limit,
                    })
                }
                Ok(Err(Failure::Http(e))) if attempt <= self.retries => {
                    tracing::warn!(%what, attempt, "Jenkins does not answer ({e}); retrying");
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                    continue;
                }
                Ok(Err(Failure::Http(e))) => {
                    return Err(Error::Unreachable {
                        url: self.root.to_string(),
                        detail: one_line(&e),
                    })
                }
            };
            let status = reply.status;
            if status.is_server_error() {
                if attempt <= self.retries {
                    tracing::warn!(%what, attempt, status = status.as_u16(), "Jenkins failed; retrying");
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                    continue;
                }
                return Err(Error::Server {
                    what: what.to_string(),
                    status: status.as_u16(),
                    tries: attempt,
                });
            }
            if status == StatusCode::FORBIDDEN
                && method == Method::POST
                && !crumb_tried
                && reply.text().contains("No valid crumb")
            {
                crumb_tried = true;
                self.fetch_crumb().await?;
                attempt -= 1;
                continue;
            }
            return self.check(reply, what);
        }
    }

    fn keep_cookies(&self, headers: &HeaderMap) {
        let mut s = self.session.lock().unwrap_or_else(|e| e.into_inner());
        for v in headers.get_all(SET_COOKIE) {
            if let Some((name, value)) = v
                .to_str()
                .ok()
                .and_then(|c| c.split(';').next())
                .and_then(|kv| kv.split_once('='))
            {
                s.cookies
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    /// `crumbIssuer/api/json`: the crumb and (through keep_cookies) the
    /// session it belongs to.
    async fn fetch_crumb(&self) -> Result<(), Error> {
        let url = self.url(&["crumbIssuer", "api", "json"], false);
        let reply = Box::pin(self.send(Method::GET, url, "the crumb issuer", None, &[])).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&reply.body).map_err(|e| Error::Unexpected {
                what: "the crumb issuer".into(),
                status: reply.status.as_u16(),
                detail: e.to_string(),
            })?;
        let field = v["crumbRequestField"]
            .as_str()
            .unwrap_or("Jenkins-Crumb")
            .to_string();
        let crumb = v["crumb"].as_str().unwrap_or_default().to_string();
        tracing::debug!("using a crumb for POSTs");
        self.session.lock().unwrap_or_else(|e| e.into_inner()).crumb = Some((field, crumb));
        Ok(())
    }

    fn check(&self, reply: Reply, what: &str) -> Result<Reply, Error> {
        let status = reply.status;
        if status.is_success() || status.is_redirection() || status == StatusCode::NOT_MODIFIED {
            return Ok(reply);
        }
        Err(match status {
            StatusCode::UNAUTHORIZED => Error::Unauthorized {
                user: self.user.clone(),
            },
            StatusCode::FORBIDDEN => Error::Forbidden {
                what: what.to_string(),
                user: self.user.clone(),
                permission: reply
                    .headers
                    .get("X-Required-Permission")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            },
            StatusCode::NOT_FOUND => Error::NotFound {
                what: what.to_string(),
            },
            _ => Error::Unexpected {
                what: what.to_string(),
                status: status.as_u16(),
                detail: reply
                    .text()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect(),
            },
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        what: &str,
    ) -> Result<T, Error> {
        let reply = self.send(Method::GET, url, what, None, &[]).await?;
        serde_json::from_slice(&reply.body).map_err(|e| Error::Unexpected {
            what: what.to_string(),
            status: reply.status.as_u16(),
            detail: format!("not the JSON expected: {e}"),
        })
    }

    /// The controller's version (`X-Jenkins`), from an authenticated call.
    pub async fn version(&self) -> Result<String, Error> {
        let reply = self
            .send(
                Method::GET,
                self.url(&["api", "json"], false),
                "the controller's API",
                None,
                &[],
            )
            .await?;
        Ok(reply
            .headers
            .get("X-Jenkins")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .to_string())
    }

    /// Queues `job` with `params`; returns the queue item's id and URL.
    pub async fn trigger(
        &self,
        job: &str,
        params: &[(String, String)],
    ) -> Result<(u64, String), Error> {
        let what = format!("job {job}");
        let mut url = self.job_url(
            job,
            &[if params.is_empty() {
                "build"
            } else {
                "buildWithParameters"
            }],
            false,
        )?;
        if !params.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let reply = self.send(Method::POST, url, &what, None, &[]).await?;
        let location = reply
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        // Where the controller says the item is: followed by no one, but
        // printed and handed on, so it must be the controller's own.
        if let Ok(u) = self.root.join(&location) {
            self.own(u)?;
        }
        match (reply.status.as_u16(), api::parse_queue_location(&location)) {
            (201 | 303, Some(id)) => Ok((id, location)),
            (status, _) => Err(Error::Unexpected {
                what,
                status,
                detail: format!("no queue item in Location {location:?}"),
            }),
        }
    }

    pub async fn queue_item(&self, id: u64) -> Result<QueueItem, Error> {
        let idtext = id.to_string();
        let url = self.url(&["queue", "item", &idtext, "api", "json"], false);
        self.get_json(url, &format!("queue item {id}")).await
    }

    /// Waits for a queue item to become a build.
    pub async fn wait_for_build(
        &self,
        id: u64,
        deadline: tokio::time::Instant,
    ) -> Result<api::Executable, Error> {
        loop {
            let item = self.queue_item(id).await?;
            if item.cancelled == Some(true) {
                return Err(Error::Timeout(format!("queue item {id} was cancelled")));
            }
            if let Some(e) = item.executable {
                return Ok(e);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "queue item {id} still waiting: {}",
                    item.why.unwrap_or_default()
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn build_url(&self, url: &str, tail: &[&str]) -> Result<Url, Error> {
        let mut u = Url::parse(url).map_err(|e| Error::Unexpected {
            what: "a build URL".into(),
            status: 0,
            detail: e.to_string(),
        })?;
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty().extend(tail);
        }
        Ok(u)
    }

    pub async fn build_info(&self, build_url: &str) -> Result<BuildInfo, Error> {
        let url = self.build_url(build_url, &["api", "json"])?;
        self.get_json(url, &format!("build {build_url}")).await
    }

    /// The console from byte `start`: (text, next start, more to come).
    pub async fn progressive_log(
        &self,
        build_url: &str,
        start: u64,
    ) -> Result<(String, u64, bool), Error> {
        let mut url = self.build_url(build_url, &["logText", "progressiveText"])?;
        url.query_pairs_mut()
            .append_pair("start", &start.to_string());
        let reply = self
            .send_capped(
                Method::GET,
                url,
                "the build's console",
                None,
                &[],
                CONSOLE_LIMIT,
            )
            .await?;
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let next = header("X-Text-Size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(start);
        let more = header("X-More-Data").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok((reply.text(), next, more))
    }

    /// The latest build of a job, if it has one.
    pub async fn last_build(&self, job: &str) -> Result<Option<BuildInfo>, Error> {
        let url = self.job_url(job, &["lastBuild", "api", "json"], false)?;
        match self.get_json(url, &format!("job {job}")).await {
            Ok(b) => Ok(Some(b)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn computer(&self, name: &str) -> Result<Option<ComputerInfo>, Error> {
        let url = self.url(&["computer", name, "api", "json"], false);
        match self.get_json(url, &format!("node {name}")).await {
            Ok(c) => Ok(Some(c)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the node (`computer/doCreateItem`, the form every Jenkins
    /// version takes).
    pub async fn create_node(&self, spec: &NodeSpec) -> Result<(), Error> {
        let json = api::render_create_node_json(spec).to_string();
        let form: String = Url::parse("http://x/")
            .map(|mut u| {
                u.query_pairs_mut()
                    .append_pair("name", &spec.name)
                    .append_pair("type", "hudson.slaves.DumbSlave$DescriptorImpl")
                    .append_pair("json", &json);
                u.query().unwrap_or_default().to_string()
            })
            .unwrap_or_default();
        let url = self.url(&["computer", "doCreateItem"], false);
        self.send(
            Method::POST,
            url,
            &format!("creating node {}", spec.name),
            Some(("application/x-www-form-urlencoded", form.into_bytes())),
            &[],
        )
        .await
        .map(drop)
    }

    pub async fn node_config(&self, name: &str) -> Result<String, Error> {
        let url = self.url(&["computer", name, "config.xml"], false);
        Ok(self
            .send(
                Method::GET,
                url,
                &format!("node {name}'s config.xml"),
                None,
                &[],
            )
            .await?
            .text())
    }

    pub async fn update_node(&self, spec: &NodeSpec) -> Result<(), Error> {
        let url = self.url(&["computer", &spec.name, "config.xml"], false);
        let xml = api::render_node_config(spec);
        self.send(
            Method::POST,
            url,
            &format!("updating node {}", spec.name),
            Some(("application/xml; charset=utf-8", xml.into_bytes())),
            &[],
        )
        .await
        .map(drop)
    }

    /// The node's agent secret, from its JNLP file.
    pub async fn node_secret(&self, name: &str) -> Result<String, Error> {
        let url = self.url(&["computer", name, "jenkins-agent.jnlp"], false);
        let reply = self
            .send(
                Method::GET,
                url,
                &format!("node {name}'s JNLP file"),
                None,
                &[],
            )
            .await?;
        Ok(api::parse_jnlp_secret(name, &reply.text())?)
    }

    /// `jnlpJars/agent.jar`, unless it is not newer than `since`
    /// (`Last-Modified` of the copy we have): (bytes, Last-Modified).
    pub async fn agent_jar(
        &self,
        since: Option<&str>,
    ) -> Result<Option<(bytes::Bytes, Option<String>)>, Error> {
        let url = self.url(&["jnlpJars", "agent.jar"], false);
        let headers: Vec<(&str, String)> = since
            .map(|s| ("If-Modified-Since", s.to_string()))
            .into_iter()
            .collect();
        let reply = self
            .send_capped(Method::GET, url, "agent.jar", None, &headers, JAR_LIMIT)
            .await?;
        if reply.status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let modified = reply
            .headers
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Some((reply.body, modified)))
    }
}

/// reqwest's error with its causes, on one line.
fn one_line(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        src = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_controllers_origin_gets_requests() {
        let c = Client::new("http://j:8080/ci", "u", "t").unwrap();
        assert!(c
            .own(Url::parse("http://j:8080/ci/job/x/1/").unwrap())
            .is_ok());
        assert!(c.own(Url::parse("http://J:8080/other").unwrap()).is_ok());
        for other in [
            "http://k:8080/ci/job/x/1/",
            "https://j:8080/ci/",
            "http://j:8081/ci/",
            "http://j/ci/",
            "http://u:t@evil:8080/",
        ] {
            let e = c.own(Url::parse(other).unwrap()).unwrap_err();
            assert!(e.to_string().contains("not on its origin"), "{other}: {e}");
        }
        let https = Client::new("https://j/", "u", "t").unwrap();
        assert!(https.own(Url::parse("https://j:443/x").unwrap()).is_ok());
    }
}
