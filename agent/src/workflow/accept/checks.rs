//! The checks of an acceptance run or a gate, chosen before anything
//! moves and run against the frozen snapshot: the plain tests
//! (`accept::run`) and the systems (`accept::system`), each giving JUnit
//! suites and results for `super` to decide on. What a promoting run
//! checks is the configuration's: every configured system always runs
//! (`Purpose::Accept`), whoever started the run (the agent, a Jenkins job,
//! a person); only the gate, which promotes nothing, picks systems.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::repository::{Location, Repository};
use anyhow::{Context, Result};

use crate::accept::run::{run_tests, to_suite, TestResult};
use crate::accept::system::{run_systems, Context as SystemContext, SystemResult};
use crate::cli::TestArgs;
use crate::config::acceptance::parse_test_flag;
use crate::config::system::plan_parallel;
use crate::config::{AcceptanceConfig, SystemConfig, TestConfig};
use crate::junit::{render_junit, Suite};
use crate::output::Output;
use crate::sysroot::chroot::Mode;
use crate::sysroot::repo::Repo;
use crate::workflow::exit::{InfraError, UserError};

/// Who asks: a promoting run, or the gate (which moves nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `halo accept` and the agent: every configured system runs.
    Accept,
    /// `halo gate`: `--systems` or `--system NAME` picks systems.
    Gate,
}

/// What a run checks, chosen (or refused) before anything moves.
pub(super) struct Checks {
    /// See `plan_checks`.
    tests: Vec<TestConfig>,
    /// See `plan_checks`.
    systems: Vec<SystemConfig>,
    limit: Duration,
    parallel: usize,
    keep: bool,
}

/// The one rule of what a run checks. PURE.
///
/// - A promoting run (`accept`) runs at least every configured check:
///   every `[[acceptance.test]]` and every `[[acceptance.system]]`.
///   `--test` flags ADD tests (a flag named as a configured test is
///   refused: it would replace it); `--systems` adds nothing (every
///   configured system runs anyway) and `--system NAME` is refused. Whoever triggers a promotion
///   (the agent, a Jenkins job, a person) cannot make it pass on less
///   evidence than the configuration asks for.
/// - A gate moves nothing, so it checks what it is told: `--test` flags
///   replace the configured tests, systems run when asked for.
fn plan_checks(
    cfg: &AcceptanceConfig,
    flags: Vec<TestConfig>,
    args: &TestArgs,
    purpose: Purpose,
) -> Result<(Vec<TestConfig>, Vec<SystemConfig>)> {
    if args.systems && cfg.systems.is_empty() {
        return Err(
            InfraError("--systems: no [[acceptance.system]] in the configuration".into()).into(),
        );
    }
    if let (Purpose::Accept, Some(name)) = (purpose, args.system.first()) {
        return Err(UserError(format!(
            "--system {name}: halo accept runs every configured [[acceptance.system]] \
             (the configuration decides what acceptance runs); halo gate --system {name} \
             tests one without promoting"
        ))
        .into());
    }
    let picked = pick_systems(&cfg.systems, &args.system)?;
    match purpose {
        Purpose::Accept => {
            let mut tests = cfg.tests.clone();
            for t in flags {
                if tests.iter().any(|c| c.name == t.name) {
                    return Err(UserError(format!(
                        "--test {}: a configured [[acceptance.test]] has that name, and a promoting run always runs it; give yours another name",
                        t.name
                    ))
                    .into());
                }
                tests.push(t);
            }
            Ok((tests, cfg.systems.clone()))
        }
        Purpose::Gate => {
            let tests = if flags.is_empty() {
                cfg.tests.clone()
            } else {
                flags
            };
            let systems = if args.systems {
                cfg.systems.clone()
            } else {
                picked
            };
            Ok((tests, systems))
        }
    }
}

/// The checks of a run for `purpose` (`plan_checks`), refused before
/// anything moves when a tool they need is missing or nothing would run.
pub(super) fn choose_checks(
    cfg: &AcceptanceConfig,
    args: &TestArgs,
    purpose: Purpose,
) -> Result<Checks> {
    let flags: Vec<TestConfig> = args
        .tests
        .iter()
        .map(|t| parse_test_flag(t).map_err(UserError))
        .collect::<Result<_, _>>()?;
    let (tests, systems) = plan_checks(cfg, flags, args, purpose)?;
    if !systems.is_empty() {
        let mut tools = vec![("mmdebstrap", "mmdebstrap"), ("unshare", "util-linux")];
        if systems
            .iter()
            .any(|s| s.kind == crate::config::system::SystemKind::Machine)
        {
            tools.extend(crate::accept::driver::machine::TOOLS);
        }
        for (tool, package) in tools {
            if !on_path(tool) {
                return Err(InfraError(format!(
                    "{tool} is missing: apt-get install {package} (systems are built with it)"
                ))
                .into());
            }
        }
    } else if !cfg.systems.is_empty() && purpose == Purpose::Gate {
        tracing::warn!(
            "{} systems configured but not selected: --systems builds them",
            cfg.systems.len()
        );
    }
    if tests.is_empty() && systems.is_empty() {
        return Err(InfraError("no acceptance tests: give --test NAME=COMMAND, or [[acceptance.test]] or [[acceptance.system]] in the configuration".into()).into());
    }
    Ok(Checks {
        tests,
        systems,
        limit: timeout(cfg, args)?,
        parallel: plan_parallel(
            cfg.parallel,
            std::thread::available_parallelism().map_or(1, usize::from),
        ),
        keep: args.keep,
    })
}

impl Checks {
    /// Exactly what runs, for the history: `tests smoke, x; systems web`.
    pub(super) fn names(&self) -> String {
        let list = |names: Vec<&str>| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        format!(
            "tests {}; systems {}",
            list(self.tests.iter().map(|t| t.name.as_str()).collect()),
            list(self.systems.iter().map(|s| s.name.as_str()).collect())
        )
    }
}

fn pick_systems(all: &[SystemConfig], names: &[String]) -> Result<Vec<SystemConfig>> {
    names
        .iter()
        .map(|n| {
            all.iter().find(|s| &s.name == n).cloned().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
                InfraError(format!(
                    "--system {n}: no such [[acceptance.system]] (configured: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
                .into()
            })
        })
        .collect()
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

fn timeout(cfg: &AcceptanceConfig, args: &TestArgs) -> Result<Duration> {
    let minutes = args.timeout_minutes.unwrap_or(cfg.timeout_minutes);
    if !(0.001..=10_080.0).contains(&minutes) {
        return Err(UserError("--timeout-minutes must be between 0.001 and 10080".into()).into());
    }
    Ok(Duration::from_secs_f64(minutes * 60.0))
}

/// A path segment for the run's work directory.
pub(super) fn run_tag(run: &str) -> String {
    let tag: String = run
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!(
        "{}-{}",
        std::process::id(),
        &tag[tag.len().saturating_sub(40)..]
    )
}

fn test_env(
    store: &dyn Repository,
    snapshot: &str,
    channel: &str,
    repo: &Path,
    run: &str,
) -> repofs::store::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    env.insert("HALO_SNAPSHOT".into(), snapshot.to_string());
    env.insert("HALO_CHANNEL".into(), channel.to_string());
    env.insert("HALO_REPO".into(), repo.display().to_string());
    // A remote run names the server instead of a store it cannot read.
    let keyring = match store.location() {
        Location::Store(root) => {
            env.insert("HALO_STORE".into(), root.display().to_string());
            root.join("keys/repo.gpg")
        }
        Location::Server(url) => {
            env.insert("HALO_SERVER".into(), url);
            store.keyring()?
        }
    };
    env.insert("HALO_KEYRING".into(), keyring.display().to_string());
    env.insert("HALO_RUN".into(), run.to_string());
    Ok(env)
}

pub fn write_junit(file: Option<&PathBuf>, suites: &[Suite]) -> Result<()> {
    if let Some(f) = file {
        fs_err::write(f, render_junit(suites)).context("writing the JUnit report")?;
    }
    Ok(())
}

/// What the checks found: plain tests and systems.
pub(super) struct Verdict {
    pub(super) suites: Vec<Suite>,
    pub(super) tests: Vec<TestResult>,
    pub(super) systems: Vec<SystemResult>,
}

impl Verdict {
    /// The testcases that failed: `smoke`, `web/install`.
    pub(super) fn failed(&self) -> Vec<String> {
        self.tests
            .iter()
            .filter(|t| t.failed())
            .map(|t| t.name.clone())
            .chain(self.systems.iter().flat_map(SystemResult::failed))
            .collect()
    }

    /// Every testcase, run or skipped.
    pub(super) fn count(&self) -> usize {
        self.tests.len() + self.systems.iter().map(|s| s.steps.len()).sum::<usize>()
    }
}

/// Where and as what a run's checks run.
pub(super) struct Target<'a> {
    pub(super) snapshot: &'a str,
    /// `HALO_CHANNEL`: testing for a run, the channel for a gate.
    pub(super) channel: &'a str,
    pub(super) run: &'a str,
    /// The JUnit suite of the plain tests, prefix of the systems' suites.
    pub(super) suite: String,
    pub(super) classname: String,
}

/// Provides the snapshot's tree, runs the plain tests, then the systems.
pub(super) fn run_checks(
    store: &dyn Repository,
    cfg: &AcceptanceConfig,
    checks: &Checks,
    target: &Target<'_>,
) -> Result<Verdict> {
    let started = jiff::Timestamp::now();
    let mount = cfg.mount.as_deref().map(Path::new);
    let manifest = store
        .load_snapshot(target.snapshot)
        .map_err(|e| InfraError(e.to_string()))?;
    let repo = Repo::provide(
        store,
        target.snapshot,
        mount,
        &format!("accept-{}", run_tag(target.run)),
    )
    .map_err(|e| InfraError(format!("{e:#}")))?;
    let env = test_env(
        store,
        target.snapshot,
        target.channel,
        &repo.path,
        target.run,
    )
    .map_err(|e| InfraError(e.to_string()))?;
    let tests = run_tests(&checks.tests, &env, checks.limit);
    let mut suites = Vec::new();
    if !checks.tests.is_empty() {
        suites.push(to_suite(&target.suite, &target.classname, started, &tests));
    }
    let systems = if checks.systems.is_empty() {
        Vec::new()
    } else {
        let inside: BTreeMap<String, String> = env
            .iter()
            .filter(|(k, _)| ["HALO_SNAPSHOT", "HALO_CHANNEL", "HALO_RUN"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Absolute: apt's sources and mmdebstrap's hooks take no relative paths.
        let work = store.work_dir();
        fs_err::create_dir_all(&work)?;
        let work = fs_err::canonicalize(&work)?;
        let keyring = store.keyring().map_err(|e| InfraError(e.to_string()))?;
        let repo_path = fs_err::canonicalize(&repo.path)?;
        let tag = run_tag(target.run);
        // Base disks are cached on this host (a remote agent: its work directory).
        let machines = store.state_dir().join("machines");
        let ctx = SystemContext {
            machines: &machines,
            snapshot: &manifest,
            repo: &repo_path,
            keyring: &keyring,
            work: &work,
            tag: &tag,
            env: &inside,
            timeout: checks.limit,
            keep: checks.keep,
            mode: Mode::detect(),
        };
        // Each system's directory is claimed first: a run killed outright
        // leaves roots that `halo fsck` reports and `halo gc` removes.
        let mut claims = checks
            .systems
            .iter()
            .map(|s| {
                store.claim_work(
                    &crate::accept::system::dir_name(&tag, &s.name),
                    Some(target.run),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InfraError(format!("claiming the systems' directories: {e}")))?;
        let started = jiff::Timestamp::now();
        let results = run_systems(&ctx, &checks.systems, checks.parallel);
        for (claim, r) in claims.iter_mut().zip(&results) {
            if r.cleanup_error.is_some() {
                claim.leave_for_gc();
            }
        }
        drop(claims);
        suites.extend(
            results
                .iter()
                .map(|r| r.to_suite(&target.suite, &target.classname, started)),
        );
        results
    };
    drop(repo);
    Ok(Verdict {
        suites,
        tests,
        systems,
    })
}

/// Where kept systems are, and roots that could not be removed.
pub(super) fn report_systems(out: &Output, verdict: &Verdict) -> Result<()> {
    for s in &verdict.systems {
        if let Some(path) = &s.kept {
            out.line(format!(
                "system {} failed; kept at {}",
                s.name,
                path.display()
            ))?;
        }
        if let Some(e) = &s.cleanup_error {
            out.line(format!("system {}: not removed: {e}", s.name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AcceptanceConfig {
        crate::config::parse_config(
            "[[acceptance.test]]\nname = \"real\"\ncommand = \"false\"\n\n\
[[acceptance.system]]\nname = \"web\"\nsuite = \"bookworm\"\narchives = [\"rustedhalo\"]\n\n\
[[acceptance.system]]\nname = \"db\"\nsuite = \"bookworm\"\narchives = [\"rustedhalo\"]\n",
        )
        .unwrap()
        .acceptance
    }

    fn args(tests: &[&str], systems: bool, system: &[&str]) -> TestArgs {
        TestArgs {
            tests: tests.iter().map(|t| t.to_string()).collect(),
            junit: None,
            timeout_minutes: None,
            systems,
            system: system.iter().map(|s| s.to_string()).collect(),
            keep: false,
        }
    }

    fn plan(tests: &[&str], systems: bool, system: &[&str], p: Purpose) -> (String, String) {
        let a = args(tests, systems, system);
        let flags = a
            .tests
            .iter()
            .map(|t| parse_test_flag(t).unwrap())
            .collect();
        let (t, s) = plan_checks(&cfg(), flags, &a, p).unwrap();
        let names = |v: Vec<String>| v.join(",");
        (
            names(t.into_iter().map(|t| t.name).collect()),
            names(s.into_iter().map(|s| s.name).collect()),
        )
    }

    #[test]
    fn a_promoting_run_never_runs_less_than_configured() {
        use Purpose::Accept as Promote;
        assert_eq!(
            plan(&[], false, &[], Promote),
            ("real".into(), "web,db".into())
        );
        assert_eq!(
            plan(&["x=true"], false, &[], Promote),
            ("real,x".into(), "web,db".into())
        );
        assert_eq!(
            plan(&["x=true"], true, &[], Promote),
            ("real,x".into(), "web,db".into())
        );
        // Narrowing to one system is the gate's: refused here.
        let a = args(&[], false, &["web"]);
        let e = plan_checks(&cfg(), Vec::new(), &a, Promote).unwrap_err();
        assert!(e.to_string().contains("halo gate --system web"), "{e}");
        let a = args(&["real=true"], false, &[]);
        let flags = vec![parse_test_flag("real=true").unwrap()];
        let e = plan_checks(&cfg(), flags, &a, Promote).unwrap_err();
        assert!(e.to_string().contains("a configured"), "{e}");
    }

    #[test]
    fn a_gate_checks_what_it_is_told() {
        use Purpose::Gate;
        assert_eq!(plan(&[], false, &[], Gate), ("real".into(), String::new()));
        assert_eq!(
            plan(&["x=true"], false, &[], Gate),
            ("x".into(), String::new())
        );
        assert_eq!(
            plan(&[], false, &["db"], Gate),
            ("real".into(), "db".into())
        );
        assert_eq!(plan(&[], true, &[], Gate), ("real".into(), "web,db".into()));
    }
}
