//! EDGE: builds acceptance systems from scratch and tests inside them
//! (`halo accept --systems`, docs/acceptance.md). Per system, three kinds
//! of step, each a JUnit testcase, each streamed with the system's name and
//! killed at the run's timeout:
//!
//! 1. `bootstrap`: mmdebstrap `--variant=apt` of the system's dist from the
//!    frozen snapshot's archives alone (`blueprint::plan_bootstrap`);
//! 2. `install`: apt, inside the system, reads the snapshot with the
//!    system's own sources and the store's key, and installs the packages;
//! 3. one per test: `sh -c COMMAND` inside the system (`chroot`).
//!
//! A step after a failed one is skipped; the tests all run even when one
//! fails. The root is removed afterwards, except a failed one with
//! `--keep`. Systems run side by side, `parallel` at a time, on threads:
//! nothing here touches the store, only its tree and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use repofs::model::Snapshot;

use super::run::{run_step, Step, TestResult};
use super::summary::summarize;
use crate::config::SystemConfig;
use crate::junit::Suite;
use crate::sysroot::blueprint::{
    self, Bootstrap, Variant, INSTALL_SCRIPT, KEYRING_IN_SYSTEM, REPO_IN_SYSTEM,
};
use crate::sysroot::chroot::{self, Mode};

/// What every system of a run shares.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    /// The snapshot's APT tree (a repofs mount's `snapshots/<id>`, or an
    /// export made for the run).
    pub repo: &'a Path,
    /// The store's public key.
    pub keyring: &'a Path,
    /// Where roots are made (`STORE/work`).
    pub work: &'a Path,
    /// Makes the run's directory names unique.
    pub tag: &'a str,
    /// Given to the tests inside (`HALO_SNAPSHOT`, `HALO_CHANNEL`,
    /// `HALO_RUN`); `HALO_SYSTEM` is added per system.
    pub env: &'a BTreeMap<String, String>,
    pub timeout: Duration,
    /// Keep a failed system's root.
    pub keep: bool,
    pub mode: Mode,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SystemResult {
    pub name: String,
    pub passed: bool,
    /// `bootstrap`, `install`, then the tests.
    pub steps: Vec<TestResult>,
    /// Where a failed system was kept (`--keep`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
    /// The root could not be removed (it is left behind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup_error: Option<String>,
}

impl SystemResult {
    /// `system/step` for each step that failed.
    pub fn failed(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.failed())
            .map(|s| format!("{}/{}", self.name, s.name))
            .collect()
    }

    /// The system's JUnit testsuite.
    pub fn to_suite(&self, run: &str, classname: &str, started: jiff::Timestamp) -> Suite {
        super::run::to_suite(
            &format!("{run}: system {}", self.name),
            &format!("{classname}.{}", self.name),
            started,
            &self.steps,
        )
    }
}

/// Builds and tests every system, `parallel` at a time; results in the
/// order of `systems`.
pub fn run_systems(
    ctx: &Context<'_>,
    systems: &[SystemConfig],
    parallel: usize,
) -> Vec<SystemResult> {
    let next = AtomicUsize::new(0);
    let workers = parallel.clamp(1, systems.len().max(1));
    let mut done: Vec<(usize, SystemResult)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(system) = systems.get(i) else { break };
                        mine.push((i, run_system(ctx, system)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut slots: Vec<Option<SystemResult>> = systems.iter().map(|_| None).collect();
    for (i, r) in done.drain(..) {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .zip(systems)
        .map(|(r, system)| {
            // Only a panic in its thread leaves a slot empty.
            r.unwrap_or_else(|| SystemResult {
                name: system.name.clone(),
                passed: false,
                steps: vec![TestResult::refused(
                    "bootstrap",
                    "internal error: the system's thread panicked".into(),
                )],
                kept: None,
                cleanup_error: None,
            })
        })
        .collect()
}

/// The name of a system's directory under the work directory: the run
/// claims it there (`repofs::store::work`) before the system is made.
pub fn dir_name(tag: &str, system: &str) -> String {
    format!("system-{tag}-{system}")
}

fn run_system(ctx: &Context<'_>, system: &SystemConfig) -> SystemResult {
    let dir = ctx.work.join(dir_name(ctx.tag, &system.name));
    let root = dir.join("root");
    let mut env = ctx.env.clone();
    env.insert("HALO_SYSTEM".into(), system.name.clone());
    let prefix = format!("[{}] ", system.name);
    let step = |name: &str, what: &str, cmd: Command| {
        let title = format!("system {}: {name}", system.name);
        let mut r = run_step(
            &Step {
                name,
                title: &title,
                prefix: &prefix,
                what,
            },
            cmd,
            ctx.timeout,
        );
        explain(&mut r);
        r
    };

    let mut steps = vec![bootstrap(ctx, system, &dir, &root, &step)];
    if steps[0].passed {
        let mut argv = vec!["sh", "-c", INSTALL_SCRIPT, "install"];
        argv.extend(system.packages.iter().map(String::as_str));
        let what = if system.packages.is_empty() {
            "apt-get update".to_string()
        } else {
            format!(
                "apt-get update && apt-get install {}",
                system.packages.join(" ")
            )
        };
        steps.push(
            match chroot::command_in(ctx.mode, &root, ctx.repo, REPO_IN_SYSTEM, &argv, &env) {
                Ok(cmd) => step("install", &what, cmd),
                Err(e) => TestResult::refused("install", format!("sandbox: {e}")),
            },
        );
    } else {
        steps.push(TestResult::skipped("install", "bootstrap failed"));
    }
    let ready = steps.iter().all(|s| s.passed);
    let why = if steps[0].passed {
        "install failed"
    } else {
        "bootstrap failed"
    };
    // Validation made sure the tests parse.
    for t in system.parsed_tests().unwrap_or_default() {
        if ready {
            let argv = ["sh", "-c", t.command.as_str()];
            steps.push(
                match chroot::command_in(ctx.mode, &root, ctx.repo, REPO_IN_SYSTEM, &argv, &env) {
                    Ok(cmd) => step(&t.name, &t.command, cmd),
                    Err(e) => TestResult::refused(&t.name, format!("sandbox: {e}")),
                },
            );
        } else {
            steps.push(TestResult::skipped(&t.name, why));
        }
    }
    let passed = steps.iter().all(|s| s.passed);
    let mut result = SystemResult {
        name: system.name.clone(),
        passed,
        steps,
        kept: None,
        cleanup_error: None,
    };
    if !passed && ctx.keep && root.exists() {
        result.kept = Some(root);
    } else if let Err(e) = chroot::remove(ctx.mode, &dir) {
        tracing::warn!(
            "system {}: cannot remove {}: {e:#}",
            system.name,
            dir.display()
        );
        result.cleanup_error = Some(format!("{e:#}"));
    }
    result
}

/// The bootstrap step: plans from the manifest (a snapshot without the
/// system's archives or dist fails here, before anything runs), writes the
/// system's sources.list beside the root, runs mmdebstrap.
fn bootstrap(
    ctx: &Context<'_>,
    system: &SystemConfig,
    dir: &Path,
    root: &Path,
    step: &dyn Fn(&str, &str, Command) -> TestResult,
) -> TestResult {
    let planned = (|| -> anyhow::Result<Command> {
        let sources = blueprint::plan_sources(ctx.snapshot, &system.suite, &system.archives)?;
        let list = blueprint::render_sources_list(
            &sources,
            Path::new(REPO_IN_SYSTEM),
            Path::new(KEYRING_IN_SYSTEM),
        )?;
        if dir.exists() {
            chroot::remove(ctx.mode, dir)?;
        }
        fs_err::create_dir_all(dir)?;
        let system_sources = dir.join("sources.list");
        fs_err::write(&system_sources, list)?;
        // The sandbox's root writes the system (and mmdebstrap's
        // temporary files) in `dir`.
        chroot::give(ctx.mode, dir)?;
        let args = blueprint::plan_bootstrap(&Bootstrap {
            variant: Variant::Apt,
            include: &[],
            dist: &system.suite,
            sources: &sources,
            root,
            repo: ctx.repo,
            keyring: ctx.keyring,
            system_sources: &system_sources,
        })?;
        Ok(chroot::mmdebstrap(
            ctx.mode,
            &args,
            &[ctx.repo, ctx.keyring, &system_sources],
            dir,
        )?)
    })();
    match planned {
        Ok(cmd) => {
            let what = format!(
                "mmdebstrap --variant=apt {} from {}",
                system.suite,
                system.archives.join(", ")
            );
            step("bootstrap", &what, cmd)
        }
        Err(e) => {
            let _ = crate::output::error_line(&format!(
                "system {}: bootstrap: FAILED, {e:#}",
                system.name
            ));
            TestResult::refused("bootstrap", format!("{e:#}"))
        }
    }
}

/// A failed step's message says why in the words of whoever refused
/// (dpkg, apt, a maintainer script), not just its exit status.
fn explain(r: &mut TestResult) {
    let Some(failure) = &r.failure else { return };
    let lines: Vec<&str> = r.output.lines().collect();
    if let Some(why) = summarize(&lines) {
        r.failure = Some(format!("{failure}: {why}"));
    }
}
