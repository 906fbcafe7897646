//! `[jenkins]`, `[jenkins.node]` and `[agent]`: the controller halo talks
//! to, the node it registers, and the agent's cycle. PURE.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JenkinsConfig {
    /// The controller's root URL.
    pub url: String,
    pub user: String,
    /// A file holding the user's API token; `HALO_JENKINS_TOKEN` overrides.
    /// Relative paths are relative to the configuration file.
    #[serde(default)]
    pub token_file: Option<String>,
    /// The job started with `SNAPSHOT=<id>` after each new snapshot.
    #[serde(default = "default_acceptance_job")]
    pub acceptance_job: String,
    #[serde(default)]
    pub node: NodeConfig,
}

fn default_acceptance_job() -> String {
    "halo-acceptance".into()
}

/// `[jenkins.node]`: this host as a Jenkins node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The node's name; default: the host name.
    pub name: Option<String>,
    pub labels: Vec<String>,
    pub executors: u32,
    /// The agent's work directory (workspaces, `remoting/`).
    pub remote_fs: String,
    /// The java that runs `agent.jar`.
    pub java: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            name: None,
            labels: vec![
                "halo-build".into(),
                "halo-snapshot".into(),
                "halo-acceptance".into(),
            ],
            executors: 2,
            remote_fs: "/var/lib/halo/jenkins".into(),
            java: "java".into(),
        }
    }
}

/// `[agent]`: the daemon's cycle.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Minutes between cycles (each start is jittered by up to a tenth).
    pub interval_minutes: f64,
    /// Where each cycle writes its JUnit XML (replaced each cycle); none:
    /// not written. `--junit` overrides.
    pub junit: Option<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            interval_minutes: 30.0,
            junit: None,
        }
    }
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Jenkins {
        key,
        reason: reason.into(),
    }
}

impl JenkinsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let rest = self
            .url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(invalid(
                "url",
                format!("{:?} is not an http:// or https:// URL", self.url),
            ));
        }
        if self.user.trim().is_empty() || self.user.contains(':') {
            return Err(invalid("user", "must be a Jenkins user name (no ':')"));
        }
        if self.acceptance_job.trim().is_empty() {
            return Err(invalid("acceptance_job", "is empty"));
        }
        let n = &self.node;
        if let Some(name) = &n.name {
            if name.is_empty()
                || name
                    .chars()
                    .any(|c| "?*/\\%!@#$^&|<>[]:;".contains(c) || c.is_control())
            {
                return Err(invalid(
                    "node.name",
                    format!("{name:?} is not a Jenkins node name"),
                ));
            }
        }
        if n.labels
            .iter()
            .any(|l| l.is_empty() || l.chars().any(char::is_whitespace))
        {
            return Err(invalid("node.labels", "labels are single words"));
        }
        if !(1..=64).contains(&n.executors) {
            return Err(invalid("node.executors", "must be between 1 and 64"));
        }
        if !n.remote_fs.starts_with('/') {
            return Err(invalid("node.remote_fs", "must be an absolute path"));
        }
        Ok(())
    }
}

impl AgentConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(0.01..=1440.0).contains(&self.interval_minutes) {
            return Err(ConfigError::Jenkins {
                key: "agent.interval_minutes",
                reason: "must be between 0.01 and 1440".into(),
            });
        }
        Ok(())
    }
}
