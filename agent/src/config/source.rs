//! `[[source]]`: a monitored source repository that `halo build` turns into
//! packages. PURE: schema and validation only.

use serde::{Deserialize, Serialize};

use super::build::RootConfig;
use super::ConfigError;

/// One `[[source]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique; the job name in Jenkins and the key of the build records.
    pub name: String,
    /// Any URL or local path `git fetch` understands.
    pub git: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The import archive the built packages go to (not a mirror's).
    pub archive: String,
    pub dist: String,
    pub component: String,
    /// Unit tests, run with `sh -c` in the checkout before the build (in
    /// the build root, after the build dependencies, when there is one).
    #[serde(default)]
    pub test: Option<String>,
    /// The channel a successful build moves to its snapshot.
    #[serde(default)]
    pub channel: Option<String>,
    /// How the built version is chosen (default: the changelog's, as is).
    #[serde(default)]
    pub version: VersionMode,
    /// Passed as `DEB_BUILD_PROFILES` (and `-P` to dpkg-checkbuilddeps).
    #[serde(default)]
    pub build_profiles: Vec<String>,
    /// The clean root this source builds in, instead of `[build] root`.
    #[serde(default)]
    pub root: Option<RootConfig>,
    /// Build on the host even when `[build] root` is set.
    #[serde(default)]
    pub host: bool,
}

fn default_branch() -> String {
    "master".into()
}

/// `version = "changelog"` (the default) or `version = "git"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionMode {
    /// The top `debian/changelog` entry's version, unchanged.
    #[default]
    Changelog,
    /// `<changelog version>+git<UTC YYYYMMDDhhmmss>.<short sha>`: every new
    /// commit builds a higher version without anyone editing the changelog.
    Git,
}

impl SourceConfig {
    /// The root this source builds in: its own, else `default`; none (the
    /// host) when it says `host = true`.
    pub fn build_root<'a>(&'a self, default: Option<&'a RootConfig>) -> Option<&'a RootConfig> {
        if self.host {
            None
        } else {
            self.root.as_ref().or(default)
        }
    }

    fn invalid(&self, key: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Source {
            source_name: self.name.clone(),
            key,
            reason: reason.into(),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let segment = |key: &'static str, v: &str| {
            repofs::debian::name::check_segment(key, v)
                .map_err(|e| self.invalid(key, e.to_string()))
        };
        segment("name", &self.name)?;
        segment("archive", &self.archive)?;
        segment("dist", &self.dist)?;
        segment("component", &self.component)?;
        if let Some(c) = &self.channel {
            segment("channel", c)?;
        }
        if self.git.trim().is_empty() {
            return Err(self.invalid("git", "is empty: give a git URL or a local path"));
        }
        if self.git.starts_with('-') || self.branch.starts_with('-') {
            return Err(self.invalid("git", "must not start with '-'"));
        }
        if self.branch.is_empty()
            || self
                .branch
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
        {
            return Err(self.invalid("branch", format!("{:?} is not a branch name", self.branch)));
        }
        if self.test.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(self.invalid("test", "is empty: drop it to run no unit tests"));
        }
        if let Some(r) = &self.root {
            if self.host {
                return Err(self.invalid("host", "cannot be combined with `root`: choose one"));
            }
            r.check().map_err(|e| self.invalid("root", e))?;
        }
        for p in &self.build_profiles {
            if p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.+".contains(c))
            {
                return Err(self.invalid("build_profiles", format!("{p:?} is not a profile name")));
            }
        }
        Ok(())
    }
}
