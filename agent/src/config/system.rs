//! `[[acceptance.system]]`: a system an acceptance run builds from scratch
//! out of the frozen snapshot (docs/acceptance.md): the dist to bootstrap,
//! the archives its apt may use, the packages to install and the tests to
//! run inside it. PURE: schema and validation; building a system is
//! `accept::system`'s job.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::acceptance::{parse_test_flag, TestConfig};
use super::ConfigError;

/// The testcases every system has before its own tests: a test may not
/// take these names, or the report could not tell them apart.
pub const STEPS: [&str; 3] = ["bootstrap", "boot", "install"];

/// What a system is (docs/acceptance.md): a root entered with a sandbox,
/// or a virtual machine with its own kernel, systemd and network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemKind {
    #[default]
    Chroot,
    Machine,
}

/// Which qemu accelerator a machine boots with: `auto` tries KVM and
/// falls back to TCG when a boot shows no sign of life (nested KVM that
/// makes no progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// The kernel a machine gets when `kernel` is not given (Debian's).
pub const DEFAULT_KERNEL: &str = "linux-image-cloud-amd64";
/// A machine's memory when `memory_mb` is not given.
pub const DEFAULT_MEMORY_MB: u32 = 1024;

/// One `[[acceptance.system]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// Unique; the JUnit testsuite and the output prefix.
    pub name: String,
    /// The dist bootstrapped, in every archive named below.
    pub suite: String,
    /// Archives of the snapshot the system's apt uses (its only sources).
    pub archives: Vec<String>,
    /// Installed with apt inside the system after the bootstrap; apt's
    /// syntax (`pkg=1.0`, `pkg/dist`) passes through.
    #[serde(default)]
    pub packages: Vec<String>,
    /// `NAME=COMMAND`, each run with `sh -c` inside the system.
    #[serde(default)]
    pub tests: Vec<String>,
    /// `chroot` (the default) or `machine`.
    #[serde(default)]
    pub kind: SystemKind,
    /// Machines: the kernel package of the snapshot the base disk gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Machines: memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// Machines of one run with the same network see each other by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Machines: `auto`, `kvm` or `tcg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<Accel>,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Acceptance {
        key,
        reason: reason.into(),
    }
}

impl SystemConfig {
    /// The system's tests, parsed (validation has checked they parse).
    pub fn parsed_tests(&self) -> Result<Vec<TestConfig>, String> {
        self.tests
            .iter()
            .map(|t| {
                parse_test_flag(t)
                    .map_err(|e| format!("system {:?}: {}", self.name, e.replace("--test ", "")))
            })
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let me = |reason: String| invalid("system", format!("{:?}: {reason}", self.name));
        repofs::debian::name::check_segment("system name", &self.name)
            .map_err(|e| me(e.to_string()))?;
        check_root_parts(&self.suite, &self.archives, &self.packages).map_err(me)?;
        self.check_kind().map_err(me)?;
        let tests = self.parsed_tests().map_err(|e| invalid("system", e))?;
        let mut names = BTreeSet::new();
        for t in &tests {
            if STEPS.contains(&t.name.as_str()) {
                return Err(me(format!(
                    "tests: {:?} is the name of a step; call the test something else",
                    t.name
                )));
            }
            if !names.insert(&t.name) {
                return Err(me(format!("tests: two are named {:?}", t.name)));
            }
        }
        Ok(())
    }
}

impl SystemConfig {
    /// The kernel package of a machine.
    pub fn kernel(&self) -> &str {
        self.kernel.as_deref().unwrap_or(DEFAULT_KERNEL)
    }

    /// The machine keys belong to machines; their values are sane.
    fn check_kind(&self) -> Result<(), String> {
        if self.kind == SystemKind::Chroot {
            for (key, set) in [
                ("kernel", self.kernel.is_some()),
                ("memory_mb", self.memory_mb.is_some()),
                ("network", self.network.is_some()),
                ("accel", self.accel.is_some()),
            ] {
                if set {
                    return Err(format!("{key}: only a kind = \"machine\" system has one"));
                }
            }
            return Ok(());
        }
        if let Some(k) = &self.kernel {
            repofs::debian::name::check_segment("kernel", k).map_err(|e| e.to_string())?;
        }
        if let Some(n) = &self.network {
            repofs::debian::name::check_segment("network", n).map_err(|e| e.to_string())?;
        }
        if self.memory_mb.is_some_and(|m| !(128..=65_536).contains(&m)) {
            return Err("memory_mb: must be between 128 and 65536".into());
        }
        Ok(())
    }
}

/// Checks what a system and a build root share: the suite, the archives
/// (at least one, each once) and the packages apt is given.
pub(super) fn check_root_parts(
    suite: &str,
    archives: &[String],
    packages: &[String],
) -> Result<(), String> {
    repofs::debian::name::check_segment("suite", suite).map_err(|e| e.to_string())?;
    if archives.is_empty() {
        return Err("archives: must name at least one".into());
    }
    let mut seen = BTreeSet::new();
    for a in archives {
        repofs::debian::name::check_segment("archive", a).map_err(|e| e.to_string())?;
        if !seen.insert(a) {
            return Err(format!("archives: {a:?} appears twice"));
        }
    }
    for p in packages {
        // Handed to apt as one argument each: no options, no blanks.
        if p.is_empty() || p.starts_with('-') || p.chars().any(char::is_whitespace) {
            return Err(format!("packages: {p:?} is not a package name"));
        }
    }
    Ok(())
}

/// Validates the systems and `parallel` of `[acceptance]`.
pub(super) fn validate_systems(
    systems: &[SystemConfig],
    parallel: Option<usize>,
) -> Result<(), ConfigError> {
    let mut names = BTreeSet::new();
    for s in systems {
        s.validate()?;
        if !names.insert(&s.name) {
            return Err(invalid(
                "system",
                format!("two systems are named {:?}", s.name),
            ));
        }
    }
    if parallel.is_some_and(|p| !(1..=64).contains(&p)) {
        return Err(invalid("parallel", "must be between 1 and 64"));
    }
    Ok(())
}

/// How many systems run at once: `[acceptance] parallel`, else one per two
/// cores (a bootstrap keeps about two cores busy: apt and dpkg, xz).
pub fn plan_parallel(parallel: Option<usize>, cores: usize) -> usize {
    parallel.unwrap_or(cores / 2).max(1)
}

#[cfg(test)]
mod tests {
    use crate::config::parse_config;

    const SYSTEM: &str = r#"
[[acceptance.system]]
name = "controller"
suite = "trusty"
archives = ["ubuntu", "rustedhalo"]
packages = ["puppet-jiocloud", "python-jiocloud=1.0"]
tests = ["smoke=/usr/bin/jiocloud-smoke", "version=dpkg -s puppet-jiocloud | grep -q '^Status: install ok'"]
"#;

    fn err(text: &str) -> String {
        parse_config(text).unwrap_err().to_string()
    }

    #[test]
    fn a_system_parses_with_its_tests() {
        let c = parse_config(SYSTEM).unwrap();
        let s = &c.acceptance.systems[0];
        assert_eq!(s.name, "controller");
        assert_eq!(s.archives, ["ubuntu", "rustedhalo"]);
        let tests = s.parsed_tests().unwrap();
        assert_eq!(tests[0].name, "smoke");
        assert_eq!(
            tests[1].command,
            "dpkg -s puppet-jiocloud | grep -q '^Status: install ok'"
        );
        assert_eq!(c.acceptance.parallel, None);
        let bare = "[[acceptance.system]]\nname = \"b\"\nsuite = \"s\"\narchives = [\"a\"]\n";
        let c = parse_config(bare).unwrap();
        assert!(c.acceptance.systems[0].packages.is_empty());
        assert!(c.acceptance.systems[0].tests.is_empty());
    }

    #[test]
    fn invalid_systems_are_refused_naming_the_system_and_the_key() {
        for (from, to, want) in [
            ("name = \"controller\"", "name = \"a b\"", "system name"),
            ("\"trusty\"", "\"../x\"", "suite"),
            (
                "[\"ubuntu\", \"rustedhalo\"]",
                "[]",
                "archives: must name at least one",
            ),
            (
                "[\"ubuntu\", \"rustedhalo\"]",
                "[\"ubuntu\", \"ubuntu\"]",
                "appears twice",
            ),
            ("\"python-jiocloud=1.0\"", "\"-o\"", "packages: \"-o\""),
            ("\"python-jiocloud=1.0\"", "\"a b\"", "packages:"),
            ("\"smoke=/usr", "\"smoke /usr", "expected NAME=COMMAND"),
            ("\"smoke=/usr", "\"install=/usr", "name of a step"),
            ("\"version=", "\"smoke=", "two are named \"smoke\""),
            (
                "\"smoke=/usr/bin/jiocloud-smoke\"",
                "\"smoke= \"",
                "empty command",
            ),
        ] {
            let text = SYSTEM.replacen(from, to, 1);
            assert_ne!(text, SYSTEM, "{from}");
            let e = err(&text);
            assert!(
                e.starts_with("acceptance: system: ") && e.contains(want),
                "{to}: {e}"
            );
            if want != "expected NAME=COMMAND" && want != "empty command" {
                assert!(e.contains("\"controller\"") || to.contains("a b"), "{e}");
            }
        }
        let e = err(&format!("{SYSTEM}{SYSTEM}"));
        assert!(e.contains("two systems are named \"controller\""), "{e}");
        let e = err(&format!("[acceptance]\nparallel = 0\n{SYSTEM}"));
        assert!(e.contains("acceptance: parallel"), "{e}");
        let e = err(&SYSTEM.replace("suite", "dist"));
        assert!(e.contains("dist"), "{e}");
    }

    #[test]
    fn parallel_defaults_to_one_per_two_cores() {
        use super::plan_parallel;
        assert_eq!(plan_parallel(None, 2), 1);
        assert_eq!(plan_parallel(None, 1), 1);
        assert_eq!(plan_parallel(None, 16), 8);
        assert_eq!(plan_parallel(Some(3), 2), 3);
    }
}
