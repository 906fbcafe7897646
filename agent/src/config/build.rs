//! `[build]` and a `[[source]]`'s `root`: the clean root a source is
//! built in, made from a channel of the store (docs/config.md). It reads
//! like an `[[acceptance.system]]` (a suite, the archives apt may use,
//! extra packages) because it is one: a root bootstrapped from a snapshot
//! alone. PURE: schema and validation; making the root is `build::root`'s
//! job.

use serde::{Deserialize, Serialize};

use super::system::check_root_parts;

/// `[build]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// The root every source builds in unless it says otherwise; without
    /// it (and without the source's own), builds run on the host.
    #[serde(default)]
    pub root: Option<RootConfig>,
    /// Each step of a build (bootstrapping its root, installing the build
    /// dependencies, the unit tests, dpkg-buildpackage) is killed, with
    /// everything it started, after this many minutes.
    #[serde(default = "default_timeout")]
    pub timeout_minutes: f64,
    /// Address space of each process of a build step, in MiB (RLIMIT_AS);
    /// none: unbounded.
    #[serde(default)]
    pub memory_mb: Option<u64>,
}

fn default_timeout() -> f64 {
    120.0
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            root: None,
            timeout_minutes: default_timeout(),
            memory_mb: None,
        }
    }
}

impl BuildConfig {
    /// The bounds every build step runs within.
    pub fn limits(&self) -> crate::build::run::Limits {
        crate::build::run::Limits {
            timeout: std::time::Duration::from_secs_f64(self.timeout_minutes * 60.0),
            memory: self.memory_mb.map(|m| m.saturating_mul(1 << 20)),
        }
    }
}

/// `root = { channel, suite, archives, packages }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// The channel whose snapshot the root is made from, and whose
    /// snapshot the build dependencies are installed from.
    pub channel: String,
    /// The dist bootstrapped, in every archive named below.
    pub suite: String,
    /// Archives of the snapshot the root's apt uses (its only sources).
    pub archives: Vec<String>,
    /// Installed into the cached root beyond build-essential (say,
    /// `debhelper`), so builds need not install them each time.
    #[serde(default)]
    pub packages: Vec<String>,
}

impl RootConfig {
    /// Why the root is invalid, in words that name the key.
    pub(super) fn check(&self) -> Result<(), String> {
        repofs::debian::name::check_segment("channel", &self.channel).map_err(|e| e.to_string())?;
        check_root_parts(&self.suite, &self.archives, &self.packages)
    }
}

impl BuildConfig {
    pub(super) fn validate(&self) -> Result<(), super::ConfigError> {
        if !(0.01..=10_080.0).contains(&self.timeout_minutes) {
            return Err(super::ConfigError::Build {
                key: "timeout_minutes",
                reason: format!(
                    "{} is not between 0.01 and 10080 (a week)",
                    self.timeout_minutes
                ),
            });
        }
        if self.memory_mb.is_some_and(|m| !(64..=1 << 30).contains(&m)) {
            return Err(super::ConfigError::Build {
                key: "memory_mb",
                reason: "must be at least 64".into(),
            });
        }
        match &self.root {
            Some(r) => r.check().map_err(|reason| super::ConfigError::Build {
                key: "root",
                reason,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse_config;

    const BUILD: &str = r#"
[build]
root = { channel = "trusty-unstable", suite = "trusty", archives = ["ubuntu", "rustedhalo"], packages = ["debhelper"] }

[[source]]
name = "puppet-rjil"
git = "https://git.example.org/puppet-rjil.git"
archive = "rustedhalo"
dist = "trusty"
component = "main"

[[source]]
name = "legacy"
git = "/srv/git/legacy.git"
archive = "rustedhalo"
dist = "trusty"
component = "main"
host = true

[[source]]
name = "xenial-tool"
git = "/srv/git/tool.git"
archive = "rustedhalo"
dist = "xenial"
component = "main"
root = { channel = "xenial-unstable", suite = "xenial", archives = ["ubuntu"] }
"#;

    #[test]
    fn a_source_builds_in_its_own_root_the_default_one_or_on_the_host() {
        let c = parse_config(BUILD).unwrap();
        let default = c.build.root.as_ref().unwrap();
        assert_eq!(default.packages, ["debhelper"]);
        assert_eq!(
            c.sources[0].build_root(c.build.root.as_ref()),
            Some(default)
        );
        assert_eq!(c.sources[1].build_root(c.build.root.as_ref()), None);
        let own = c.sources[2].build_root(c.build.root.as_ref()).unwrap();
        assert_eq!(own.channel, "xenial-unstable");
        assert!(own.packages.is_empty());
        let bare = parse_config("").unwrap();
        assert_eq!(bare.build.root, None);
    }

    #[test]
    fn invalid_roots_are_refused_naming_the_key() {
        for (from, to, want) in [
            ("\"trusty-unstable\"", "\"a/b\"", "build: root: channel"),
            ("suite = \"trusty\"", "suite = \"..\"", "build: root: suite"),
            (
                "[\"ubuntu\", \"rustedhalo\"]",
                "[]",
                "archives: must name at least one",
            ),
            ("[\"debhelper\"]", "[\"-o\"]", "packages: \"-o\""),
            (
                "archives = [\"ubuntu\"] }",
                "archives = [] }",
                "source \"xenial-tool\": root: archives",
            ),
            (
                "host = true",
                "host = true\nroot = { channel = \"c\", suite = \"s\", archives = [\"a\"] }",
                "source \"legacy\": host: ",
            ),
        ] {
            let text = BUILD.replacen(from, to, 1);
            assert_ne!(text, BUILD, "{from}");
            let e = parse_config(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{to}: {e}");
        }
    }
}
