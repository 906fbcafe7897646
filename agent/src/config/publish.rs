//! `[[archive]]` (per-archive retention) and `[publish]` (what each
//! snapshot's Release tells clients about where snapshots are served).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// One `[[archive]]`: settings of an archive that imports, copies and
/// builds write (a mirror's archive is configured in its `[[mirror]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    pub name: String,
    /// Keep the newest N versions of each package (per architecture) in the
    /// working state; older ones leave at the next import (snapshots keep
    /// them until gc removes the snapshots).
    #[serde(default)]
    pub keep_versions: Option<usize>,
}

/// `[publish]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// Where clients reach the mount's (or an export's) root, e.g.
    /// `https://apt.example.org` or `file:/srv/halo`: each new Release gets
    /// `Snapshots: <snapshots_url>/snapshots/@SNAPSHOTID@/<archive>/`, which
    /// apt 3.0's `--snapshot ID` follows.
    pub snapshots_url: Option<String>,
}

/// `keep_versions`, where given, is at least 1 (0 would empty the archive).
pub fn check_keep_versions(
    keep: Option<usize>,
    fail: impl FnOnce(String) -> ConfigError,
) -> Result<(), ConfigError> {
    match keep {
        Some(0) => Err(fail(
            "must be at least 1 (leave it out to keep every version)".into(),
        )),
        _ => Ok(()),
    }
}

impl ArchiveConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |reason| ConfigError::Archive {
            archive: self.name.clone(),
            key: "keep_versions",
            reason,
        };
        if let Err(e) = repofs::debian::name::check_segment("name", &self.name) {
            return Err(ConfigError::Archive {
                archive: self.name.clone(),
                key: "name",
                reason: e.to_string(),
            });
        }
        check_keep_versions(self.keep_versions, fail)
    }
}

impl PublishConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.snapshots_url {
            let scheme = url.split_once(':').map(|(s, _)| s);
            if !matches!(scheme, Some("http" | "https" | "file"))
                || url.chars().any(char::is_whitespace)
            {
                return Err(ConfigError::Publish {
                    key: "snapshots_url",
                    reason: format!("{url:?} is not an http:, https: or file: URL"),
                });
            }
        }
        Ok(())
    }
}
