//! `[acceptance]` and `[[acceptance.test]]`: the channels an acceptance run
//! moves, its lease and timeouts, and the tests it runs. PURE. Systems
//! (`[[acceptance.system]]`) have their own module, `config::system`.

use serde::{Deserialize, Serialize};

use super::system::{validate_systems, SystemConfig};
use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcceptanceConfig {
    /// The channel whose snapshot a run freezes into `testing`.
    pub from: String,
    pub testing: String,
    /// The channel a passing run moves to the tested snapshot.
    pub stable: String,
    /// How long a run's lease on `testing` lasts without renewal: a run
    /// whose host died is taken over after this. Renewed while it runs.
    pub lease_minutes: f64,
    /// A test running longer is killed with its process group and fails.
    pub timeout_minutes: f64,
    /// A repofs mount of this store: tests read the frozen snapshot from
    /// it instead of an export made for the run.
    pub mount: Option<String>,
    /// `[[acceptance.test]]`.
    #[serde(rename = "test")]
    pub tests: Vec<TestConfig>,
    /// How many systems are built at once (default: one per two cores).
    pub parallel: Option<usize>,
    /// `[[acceptance.system]]`: built from scratch by `--systems`.
    #[serde(rename = "system")]
    pub systems: Vec<SystemConfig>,
}

impl Default for AcceptanceConfig {
    fn default() -> Self {
        Self {
            from: "trusty-unstable".into(),
            testing: "trusty-testing".into(),
            stable: "trusty".into(),
            lease_minutes: 120.0,
            timeout_minutes: 60.0,
            mount: None,
            tests: Vec::new(),
            parallel: None,
            systems: Vec::new(),
        }
    }
}

/// One `[[acceptance.test]]`: a command run with `sh -c`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestConfig {
    pub name: String,
    pub command: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Acceptance {
        key,
        reason: reason.into(),
    }
}

/// Parses `NAME=COMMAND` (the `--test` flag).
pub fn parse_test_flag(text: &str) -> Result<TestConfig, String> {
    let (name, command) = text
        .split_once('=')
        .ok_or_else(|| format!("--test {text:?}: expected NAME=COMMAND"))?;
    let t = TestConfig {
        name: name.trim().to_string(),
        command: command.to_string(),
    };
    check_test(&t).map_err(|e| format!("--test {text:?}: {e}"))?;
    Ok(t)
}

fn check_test(t: &TestConfig) -> Result<(), String> {
    if t.name.is_empty()
        || !t
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "test name {:?}: letters, digits, - _ . only",
            t.name
        ));
    }
    if t.command.trim().is_empty() {
        return Err(format!("test {:?}: empty command", t.name));
    }
    Ok(())
}

impl AcceptanceConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("from", &self.from),
            ("testing", &self.testing),
            ("stable", &self.stable),
        ] {
            repofs::debian::name::check_segment("channel", v)
                .map_err(|e| invalid(key, e.to_string()))?;
        }
        if self.testing == self.stable || self.testing == self.from || self.from == self.stable {
            return Err(invalid(
                "testing",
                "from, testing and stable must be three different channels",
            ));
        }
        // Bounded: a lease of u64::MAX minutes would never expire.
        if !(0.01..=10_080.0).contains(&self.lease_minutes) {
            return Err(invalid(
                "lease_minutes",
                "must be between 0.01 and 10080 (a week)",
            ));
        }
        if !(0.01..=10_080.0).contains(&self.timeout_minutes) {
            return Err(invalid(
                "timeout_minutes",
                "must be between 0.01 and 10080 (a week)",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for t in &self.tests {
            check_test(t).map_err(|e| invalid("test", e))?;
            if !names.insert(&t.name) {
                return Err(invalid("test", format!("two tests are named {:?}", t.name)));
            }
        }
        validate_systems(&self.systems, self.parallel)
    }
}
