//! The drivers of acceptance systems: a system's steps (`bootstrap`,
//! `boot` for machines, `install`, one per test) come from whichever
//! driver its `kind` names, into the same JUnit suite. `accept::system`
//! runs every driver through [`drive`] and does not know which one ran.
//!
//! - [`chroot`]: a root made by mmdebstrap and entered with a sandbox
//!   (no kernel, no init, the host's kernel);
//! - [`machine`]: a qemu virtual machine booted from a base disk made by
//!   mmdebstrap from the same snapshot, with its own kernel, systemd and
//!   network.

use std::path::PathBuf;
use std::sync::Barrier;

use super::run::TestResult;
use super::summary::summarize;
use super::system::SystemResult;
use crate::config::SystemConfig;

pub mod chroot;
pub mod machine;

/// What a driver leaves when it is done with a system.
#[derive(Debug, Default)]
pub struct Finished {
    /// Where a failed system was kept (`--keep`).
    pub kept: Option<PathBuf>,
    /// Its directory could not be removed.
    pub cleanup_error: Option<String>,
    /// A machine's whole console log, for the report.
    pub console: Option<String>,
}

/// One kind of acceptance system.
pub trait Driver {
    /// Makes the system from the snapshot (a root, a machine's disk).
    fn bootstrap(&mut self) -> TestResult;
    /// Whether the system has a `boot` step.
    fn boots(&self) -> bool {
        false
    }
    /// Starts the system (machines only).
    fn boot(&mut self) -> TestResult {
        TestResult::refused("boot", "this kind of system does not boot".into())
    }
    /// `apt-get update` and `apt-get install` of the system's packages,
    /// inside it.
    fn install(&mut self) -> TestResult;
    /// One test, `sh -c COMMAND` inside, as root.
    fn test(&mut self, name: &str, command: &str) -> TestResult;
    /// Stops and removes the system (keeps a failed one with `--keep`).
    fn finish(&mut self, passed: bool) -> Finished;
}

/// Runs a system's steps with `driver`. A step after a failed one is
/// skipped; the tests all run even when one fails. With `ready` (the
/// machines of one network), every member waits there before its tests,
/// so no test runs before every machine of its network is installed.
pub fn drive(
    driver: &mut dyn Driver,
    system: &SystemConfig,
    ready: Option<&Barrier>,
) -> SystemResult {
    let mut steps = vec![driver.bootstrap()];
    let mut why: Option<String> = None;
    let note = |steps: &[TestResult], why: &mut Option<String>| {
        if why.is_none() {
            if let Some(failed) = steps.iter().find(|s| !s.passed) {
                *why = Some(format!("{} failed", failed.name));
            }
        }
    };
    note(&steps, &mut why);
    if driver.boots() {
        steps.push(match &why {
            None => driver.boot(),
            Some(w) => TestResult::skipped("boot", w),
        });
        note(&steps, &mut why);
    }
    steps.push(match &why {
        None => driver.install(),
        Some(w) => TestResult::skipped("install", w),
    });
    note(&steps, &mut why);
    if let Some(b) = ready {
        b.wait();
    }
    // Validation made sure the tests parse.
    for t in system.parsed_tests().unwrap_or_default() {
        steps.push(match &why {
            None => driver.test(&t.name, &t.command),
            Some(w) => TestResult::skipped(&t.name, w),
        });
    }
    let passed = steps.iter().all(|s| s.passed);
    let finished = driver.finish(passed);
    if let (Some(console), Some(boot)) = (
        finished.console,
        steps
            .iter_mut()
            .find(|s| s.name == "boot" && s.skipped.is_none()),
    ) {
        boot.output = format!("{console}\n{}", boot.output);
    }
    SystemResult {
        name: system.name.clone(),
        passed,
        steps,
        kept: finished.kept,
        cleanup_error: finished.cleanup_error,
    }
}

/// A failed step's message says why in the words of whoever refused
/// (dpkg, apt, a maintainer script), not just its exit status.
pub fn explain(r: &mut TestResult) {
    let Some(failure) = &r.failure else { return };
    let lines: Vec<&str> = r.output.lines().collect();
    if let Some(why) = summarize(&lines) {
        r.failure = Some(format!("{failure}: {why}"));
    }
}
