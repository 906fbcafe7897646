//! The configuration file (`halo --config FILE`, else `$HALO_CONFIG`, else
//! `STORE/halo.toml`): its TOML schema and validation. PURE: it parses text
//! handed to it; reading the file is the caller's job.
//!
//! Unknown keys are errors (a typo must not silently mean "default"), and
//! every validation error names the mirror and the key. `docs/config.md`
//! holds the full example, which a test below parses.

pub mod acceptance;
pub mod build;
pub mod jenkins;
pub mod publish;
pub mod source;
pub mod system;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use acceptance::{AcceptanceConfig, TestConfig};
pub use build::{BuildConfig, RootConfig};
pub use jenkins::{AgentConfig, JenkinsConfig, NodeConfig};
pub use publish::{ArchiveConfig, PublishConfig};
pub use source::{SourceConfig, VersionMode};
pub use system::SystemConfig;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How downloads behave, for every mirror.
    #[serde(default)]
    pub fetch: FetchConfig,
    /// `[[mirror]]` tables, one per upstream repository.
    #[serde(default, rename = "mirror")]
    pub mirrors: Vec<MirrorConfig>,
    /// `[[source]]` tables, one per monitored source repository.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// `[build]`: where sources are built by default.
    #[serde(default)]
    pub build: BuildConfig,
    /// `[acceptance]`: the gate's channels, lease, timeouts and tests.
    #[serde(default)]
    pub acceptance: AcceptanceConfig,
    /// `[jenkins]`: without it, `halo agent` runs `halo accept` itself.
    #[serde(default)]
    pub jenkins: Option<JenkinsConfig>,
    /// `[agent]`: the daemon's cycle.
    #[serde(default)]
    pub agent: AgentConfig,
    /// `[[archive]]` tables: settings of archives imports write.
    #[serde(default, rename = "archive")]
    pub archives: Vec<ArchiveConfig>,
    /// `[publish]`: what Releases say about where snapshots are served.
    #[serde(default)]
    pub publish: PublishConfig,
    /// `[pdiff]`: index diffs between snapshots.
    #[serde(default)]
    pub pdiff: PdiffConfig,
}

impl Config {
    /// The `keep_versions` of archive `name` (a mirror's or an `[[archive]]`'s).
    pub fn keep_versions(&self, name: &str) -> Option<usize> {
        self.mirrors
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.keep_versions)
            .or_else(|| {
                self.archives
                    .iter()
                    .find(|a| a.name == name)
                    .and_then(|a| a.keep_versions)
            })
    }
}

/// `[pdiff]`: the index diffs (`Packages.diff/`) each snapshot serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PdiffConfig {
    /// Diffs kept per index: how many snapshots back a client can be and
    /// still download only the change. 0 makes none.
    pub history: usize,
}

impl Default for PdiffConfig {
    fn default() -> Self {
        Self {
            history: repofs::store::DEFAULT_PDIFF_HISTORY,
        }
    }
}

/// apt merges every patch it needs in one run of rred; beyond this a full
/// download is cheaper than the chain.
const PDIFF_HISTORY_MAX: usize = 100;

/// `[fetch]`: download behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Pool files downloaded at once (per mirror).
    pub download_concurrency: usize,
    /// Further attempts after a transient failure (HTTP 5xx/408/429,
    /// connection errors, timeouts, a connection dropped mid-file).
    pub retries: u32,
    /// Wait before the first retry; doubles with each further one.
    pub retry_backoff_ms: u64,
    /// A request fails when the server sends nothing for this long.
    pub timeout_seconds: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            download_concurrency: 8,
            retries: 3,
            retry_backoff_ms: 500,
            timeout_seconds: 60,
        }
    }
}

/// One `[[mirror]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The archive name in snapshots and on the mount.
    pub name: String,
    /// The repository root: `<url>/dists/<dist>/InRelease`, `<url>/pool/...`.
    pub url: String,
    pub dists: Vec<String>,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    /// OpenPGP keyring (binary or armored) that must have signed the
    /// upstream's InRelease or Release.gpg. Relative paths are relative to
    /// the configuration file.
    #[serde(default)]
    pub keyring: Option<String>,
    /// Keep only these binary packages (every version the upstream lists).
    #[serde(default)]
    pub packages: Option<Vec<String>>,
    /// With `packages`: also keep their dependency closure within the mirror.
    #[serde(default)]
    pub with_deps: bool,
    /// Mirror source packages (`Sources`) too.
    #[serde(default)]
    pub sources: bool,
    /// Serve the upstream's own signed InRelease and indices unchanged.
    #[serde(default)]
    pub verbatim: bool,
    /// Accept an unsigned upstream (warns on every update).
    #[serde(default)]
    pub trusted: bool,
    /// Keep the upstream's Origin, Label, Suite and Codename in the Release
    /// we sign (the default), so unattended-upgrades' Allowed-Origins and
    /// origin pins written for the upstream keep matching.
    #[serde(default = "yes")]
    pub keep_identity: bool,
    /// Languages whose `i18n/Translation-<lang>` (apt show's long
    /// descriptions) is mirrored when the upstream lists it.
    #[serde(default = "english")]
    pub translations: Vec<String>,
    /// Mirror the installer's packages (`<comp>/debian-installer/binary-<arch>`).
    #[serde(default)]
    pub udebs: bool,
    /// Keep only the newest N versions of each package (per architecture)
    /// the upstream lists; snapshots keep what they froze.
    #[serde(default)]
    pub keep_versions: Option<usize>,
}

fn english() -> Vec<String> {
    vec!["en".into()]
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("mirror {mirror:?}: {key}: {reason}")]
    Invalid {
        mirror: String,
        key: &'static str,
        reason: String,
    },
    #[error("fetch: {key}: {reason}")]
    Fetch { key: &'static str, reason: String },
    #[error("two mirrors are named {0:?}: names must be unique")]
    DuplicateName(String),
    #[error("source {source_name:?}: {key}: {reason}")]
    Source {
        source_name: String,
        key: &'static str,
        reason: String,
    },
    #[error("two sources are named {0:?}: names must be unique")]
    DuplicateSource(String),
    #[error("build: {key}: {reason}")]
    Build { key: &'static str, reason: String },
    #[error("acceptance: {key}: {reason}")]
    Acceptance { key: &'static str, reason: String },
    #[error("jenkins: {key}: {reason}")]
    Jenkins { key: &'static str, reason: String },
    #[error("archive {archive:?}: {key}: {reason}")]
    Archive {
        archive: String,
        key: &'static str,
        reason: String,
    },
    #[error("two [[archive]] tables are named {0:?}: names must be unique")]
    DuplicateArchive(String),
    #[error("publish: {key}: {reason}")]
    Publish { key: &'static str, reason: String },
    #[error("pdiff: history: must be between 0 and {PDIFF_HISTORY_MAX}, not {0}")]
    PdiffHistory(usize),
}

/// Parses and validates a configuration file's text.
pub fn parse_config(text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text)?;
    validate(&config)?;
    Ok(config)
}

fn validate(config: &Config) -> Result<(), ConfigError> {
    if config.pdiff.history > PDIFF_HISTORY_MAX {
        return Err(ConfigError::PdiffHistory(config.pdiff.history));
    }
    let f = &config.fetch;
    if f.download_concurrency == 0 || f.download_concurrency > 256 {
        return Err(ConfigError::Fetch {
            key: "download_concurrency",
            reason: "must be between 1 and 256".into(),
        });
    }
    // Bounded: a mirror update holds the store's writer lock while it
    // waits, and u64::MAX milliseconds is for ever.
    for (key, value, max) in [
        ("timeout_seconds", f.timeout_seconds, 3600),
        ("retries", u64::from(f.retries), 20),
        ("retry_backoff_ms", f.retry_backoff_ms, 600_000),
    ] {
        if value > max || (key == "timeout_seconds" && value == 0) {
            return Err(ConfigError::Fetch {
                key,
                reason: format!(
                    "must be between {} and {max}",
                    u64::from(key == "timeout_seconds")
                ),
            });
        }
    }
    let mut names = BTreeSet::new();
    for m in &config.mirrors {
        m.validate()?;
        if !names.insert(m.name.as_str()) {
            return Err(ConfigError::DuplicateName(m.name.clone()));
        }
    }
    let mut names = BTreeSet::new();
    for s in &config.sources {
        s.validate()?;
        if !names.insert(s.name.as_str()) {
            return Err(ConfigError::DuplicateSource(s.name.clone()));
        }
    }
    config.build.validate()?;
    config.acceptance.validate()?;
    if let Some(j) = &config.jenkins {
        j.validate()?;
    }
    config.agent.validate()?;
    let mut names = BTreeSet::new();
    for a in &config.archives {
        a.validate()?;
        if !names.insert(a.name.as_str()) {
            return Err(ConfigError::DuplicateArchive(a.name.clone()));
        }
    }
    config.publish.validate()?;
    Ok(())
}

/// A name that becomes one path segment (`dists/<dist>`, `<component>/`).
fn check_segment(value: &str) -> Result<(), String> {
    repofs::debian::name::check_segment("name", value).map_err(|e| e.to_string())
}

impl MirrorConfig {
    fn invalid(&self, key: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            mirror: self.name.clone(),
            key,
            reason: reason.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        publish::check_keep_versions(self.keep_versions, |r| self.invalid("keep_versions", r))?;
        check_segment(&self.name).map_err(|r| self.invalid("name", r))?;
        let url = self.url.as_str();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(self.invalid("url", format!("{url:?} is not an http:// or https:// URL")));
        }
        for (key, list) in [
            ("dists", &self.dists),
            ("components", &self.components),
            ("architectures", &self.architectures),
        ] {
            if list.is_empty() {
                return Err(self.invalid(key, "must name at least one"));
            }
            let mut seen = BTreeSet::new();
            for v in list {
                check_segment(v).map_err(|r| self.invalid(key, format!("{v:?}: {r}")))?;
                if !seen.insert(v) {
                    return Err(self.invalid(key, format!("{v:?} appears twice")));
                }
            }
        }
        if self
            .architectures
            .iter()
            .any(|a| a == "all" || a == "source")
        {
            return Err(self.invalid(
                "architectures",
                "name concrete architectures: `all` packages come with them, sources with `sources = true`",
            ));
        }
        match (&self.keyring, self.trusted) {
            (None, false) => {
                return Err(self.invalid(
                    "keyring",
                    "required: the upstream's signature is checked against it (or set trusted = true to accept an unsigned upstream)",
                ))
            }
            (Some(k), _) if k.trim().is_empty() => return Err(self.invalid("keyring", "is empty")),
            _ => {}
        }
        if let Some(p) = &self.packages {
            if p.is_empty() {
                return Err(self.invalid("packages", "is empty: drop it to keep every package"));
            }
        } else if self.with_deps {
            return Err(self.invalid("with_deps", "needs `packages`"));
        }
        if self.verbatim && self.packages.is_some() {
            return Err(self.invalid(
                "verbatim",
                "cannot be combined with `packages`: the upstream's signed indices list every package",
            ));
        }
        if self.verbatim && self.trusted {
            return Err(self.invalid(
                "verbatim",
                "needs a signed upstream: clients verify the upstream's own signature",
            ));
        }
        Ok(())
    }

    /// `<url>/` with exactly one trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}/", self.url.trim_end_matches('/'))
    }

    /// A stable digest of everything that decides what an update produces:
    /// a change means the next update cannot reuse the previous one.
    pub fn fingerprint(&self, keyring: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        // invariant: serialising a plain struct to JSON cannot fail.
        h.update(serde_json::to_vec(self).unwrap_or_default());
        h.update(keyring);
        hex::encode(h.finalize())
    }
}

impl Config {
    /// The mirrors an update names (`names`), or all of them.
    pub fn select(&self, names: &[String], all: bool) -> Result<Vec<&MirrorConfig>, String> {
        pick(&self.mirrors, names, all, "mirror", |m| &m.name)
    }

    /// The sources a build names (`names`), or all of them.
    pub fn select_sources(
        &self,
        names: &[String],
        all: bool,
    ) -> Result<Vec<&SourceConfig>, String> {
        pick(&self.sources, names, all, "source", |s| &s.name)
    }
}

fn pick<'a, T>(
    items: &'a [T],
    names: &[String],
    all: bool,
    kind: &str,
    name_of: impl Fn(&T) -> &str,
) -> Result<Vec<&'a T>, String> {
    if all {
        return Ok(items.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            items.iter().find(|m| name_of(m) == n).ok_or_else(|| {
                let known: Vec<&str> = items.iter().map(&name_of).collect();
                format!(
                    "no {kind} {n:?} in the configuration (it has: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[mirror]]
name = "ceph"
url = "http://download.ceph.com/debian-reef"
dists = ["bookworm"]
components = ["main"]
architectures = ["amd64"]
keyring = "ceph.asc"
"#;

    fn with(extra: &str) -> String {
        format!("{MINIMAL}{extra}\n")
    }

    fn err(text: &str) -> String {
        parse_config(text).unwrap_err().to_string()
    }

    #[test]
    fn pdiff_history_defaults_to_14_and_is_bounded() {
        assert_eq!(parse_config(&with("")).unwrap().pdiff.history, 14);
        let none = parse_config(&with("[pdiff]\nhistory = 0")).unwrap();
        assert_eq!(none.pdiff.history, 0);
        assert!(err(&with("[pdiff]\nhistory = 101")).contains("pdiff: history"));
        assert!(err(&with("[pdiff]\nkeep = 3")).contains("unknown field"));
    }

    #[test]
    fn docs_example_parses_and_validates() {
        let doc = include_str!("../../../docs/config.md");
        let start = doc
            .find("```toml\n")
            .expect("docs/config.md has a toml example")
            + 8;
        let end = start + doc[start..].find("```").unwrap();
        let config = parse_config(&doc[start..end]).unwrap();
        assert_eq!(config.mirrors.len(), 4);
        let ubuntu = &config.mirrors[1];
        assert_eq!(ubuntu.name, "ubuntu");
        assert_eq!(ubuntu.dists, ["trusty", "trusty-updates"]);
        assert!(config.mirrors.iter().any(|m| m.verbatim));
        assert!(config.mirrors.iter().any(|m| m.with_deps));
        assert_eq!(config.fetch.download_concurrency, 8);
        assert_eq!(config.sources[0].version, VersionMode::Git);
        assert_eq!(config.acceptance.tests.len(), 2);
        assert_eq!(
            config.acceptance.systems[0].archives,
            ["debian", "rustedhalo"]
        );
        assert_eq!(config.acceptance.systems[0].suite, "bookworm");
        assert_eq!(config.acceptance.parallel, Some(2));
        assert_eq!(config.acceptance.mount.as_deref(), Some("/srv/apt"));
        let j = config.jenkins.as_ref().unwrap();
        assert_eq!(j.node.labels.len(), 3);
        assert_eq!(config.agent.interval_minutes, 30.0);
        assert_eq!(
            config.agent.junit.as_deref(),
            Some("/var/lib/halo/cycle-junit.xml")
        );
    }

    #[test]
    fn defaults_apply() {
        let c = parse_config(MINIMAL).unwrap();
        assert_eq!(c.fetch, FetchConfig::default());
        let m = &c.mirrors[0];
        assert!(!m.sources && !m.verbatim && !m.trusted && !m.with_deps);
        assert_eq!(m.base_url(), "http://download.ceph.com/debian-reef/");
        assert_eq!(parse_config("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let e = err(&with("verbatum = true"));
        assert!(e.contains("verbatum"), "{e}");
        let e = err("[fetch]\nconcurrency = 3\n");
        assert!(e.contains("concurrency"), "{e}");
        let e = err("[jenkins_]\n");
        assert!(e.contains("jenkins_"), "{e}");
        let e = err("[acceptance]\nlease_minutes = 0\n");
        assert!(e.contains("acceptance: lease_minutes"), "{e}");
        let e = err("[acceptance]\ntesting = \"trusty\"\n");
        assert!(e.contains("three different channels"), "{e}");
    }

    #[test]
    fn validation_names_mirror_and_key() {
        for (extra, want) in [
            ("with_deps = true", "with_deps: needs `packages`"),
            ("packages = []", "packages: is empty"),
            (
                "packages = [\"a\"]\nverbatim = true",
                "verbatim: cannot be combined",
            ),
            (
                "trusted = true\nverbatim = true",
                "verbatim: needs a signed upstream",
            ),
        ] {
            let e = err(&with(extra));
            assert!(
                e.contains("mirror \"ceph\"") && e.contains(want),
                "{extra}: {e}"
            );
        }
        let e = err(&MINIMAL.replace("keyring = \"ceph.asc\"", ""));
        assert!(e.contains("keyring: required"), "{e}");
        assert!(parse_config(&MINIMAL.replace("keyring = \"ceph.asc\"", "trusted = true")).is_ok());
        let e = err(&MINIMAL.replace("http://download", "ftp://download"));
        assert!(e.contains("url:"), "{e}");
        let e = err(&MINIMAL.replace("[\"bookworm\"]", "[\"a/b\"]"));
        assert!(e.contains("dists:"), "{e}");
        let e = err(&MINIMAL.replace("[\"bookworm\"]", "[]"));
        assert!(e.contains("dists: must name at least one"), "{e}");
        let e = err(&MINIMAL.replace("[\"amd64\"]", "[\"all\"]"));
        assert!(e.contains("architectures"), "{e}");
        let e = err(&format!("{MINIMAL}{MINIMAL}"));
        assert!(e.contains("two mirrors are named \"ceph\""), "{e}");
        let e = err(&format!("[fetch]\ndownload_concurrency = 0\n{MINIMAL}"));
        assert!(e.contains("download_concurrency"), "{e}");
        for bad in [
            "retries = 4294967295",
            "retry_backoff_ms = 18446744073709551615",
            "timeout_seconds = 0",
            "timeout_seconds = 86400",
        ] {
            let e = err(&format!("[fetch]\n{bad}\n{MINIMAL}"));
            assert!(
                e.contains(bad.split(' ').next().unwrap()) && e.contains("must be between"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn select_by_name_or_all() {
        let c = parse_config(MINIMAL).unwrap();
        assert_eq!(c.select(&[], true).unwrap().len(), 1);
        assert_eq!(c.select(&["ceph".into()], false).unwrap()[0].name, "ceph");
        let e = c.select(&["nope".into()], false).unwrap_err();
        assert!(e.contains("nope") && e.contains("ceph"), "{e}");
    }

    #[test]
    fn fingerprint_changes_with_config_and_keyring() {
        let c = parse_config(MINIMAL).unwrap();
        let m = &c.mirrors[0];
        let mut other = m.clone();
        other.sources = true;
        assert_ne!(m.fingerprint(b"k"), other.fingerprint(b"k"));
        assert_ne!(m.fingerprint(b"k"), m.fingerprint(b"k2"));
        assert_eq!(m.fingerprint(b"k"), m.clone().fingerprint(b"k"));
    }

    const SOURCE: &str = r#"
[[source]]
name = "puppet-rjil"
git = "https://git.example.org/puppet-rjil.git"
archive = "rustedhalo"
dist = "trusty"
component = "main"
"#;

    #[test]
    fn sources_parse_with_defaults_and_validate() {
        let c = parse_config(SOURCE).unwrap();
        let s = &c.sources[0];
        assert_eq!(s.branch, "master");
        assert_eq!(s.version, VersionMode::Changelog);
        assert!(s.test.is_none() && s.channel.is_none() && s.build_profiles.is_empty());
        let git = parse_config(&format!("{SOURCE}version = \"git\"\n")).unwrap();
        assert_eq!(git.sources[0].version, VersionMode::Git);
        for (extra, want) in [
            ("version = \"svn\"", "unknown variant"),
            ("test = \" \"", "test: is empty"),
            ("channel = \"a/b\"", "channel:"),
            ("branch = \"a b\"", "branch:"),
            ("build_profiles = [\"no check\"]", "build_profiles:"),
        ] {
            let e = err(&format!("{SOURCE}{extra}\n"));
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = err(&SOURCE.replace("\"trusty\"", "\"../x\""));
        assert!(e.contains("source \"puppet-rjil\": dist"), "{e}");
        let e = err(&format!("{SOURCE}{SOURCE}"));
        assert!(e.contains("two sources are named"), "{e}");
        assert_eq!(c.select_sources(&[], true).unwrap().len(), 1);
        assert!(c
            .select_sources(&["x".into()], false)
            .unwrap_err()
            .contains("no source \"x\""));
    }
}
