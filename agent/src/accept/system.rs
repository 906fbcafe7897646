//! EDGE: builds acceptance systems from scratch and tests inside them
//! (`halo accept --systems`, docs/acceptance.md). Each system's steps
//! (`bootstrap`, `boot` for machines, `install`, one per test) come from
//! its driver (`super::driver`: a chroot or a qemu machine), each a JUnit
//! testcase, streamed with the system's name and killed at the run's
//! timeout.
//!
//! Systems run side by side, `parallel` at a time, on threads; the
//! machines of one network run together, as one unit, so that they can
//! reach each other. Nothing here touches the store, only its tree, its
//! key and its cache of machine disks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Duration;

use repofs::model::Snapshot;

use super::driver::chroot::Chroot;
use super::driver::{drive, machine};
use super::run::TestResult;
use crate::config::system::SystemKind;
use crate::config::SystemConfig;
use crate::junit::Suite;
use crate::sysroot::chroot::Mode;

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
    /// Where machines' base disks are cached (`STORE/machines`).
    pub machines: &'a Path,
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

/// Builds and tests every system, `parallel` units at a time (a system,
/// or every machine of one network, which run side by side); results in
/// the order of `systems`.
pub fn run_systems(
    ctx: &Context<'_>,
    systems: &[SystemConfig],
    parallel: usize,
) -> Vec<SystemResult> {
    let nets = machine::Networks::plan(systems);
    let units = plan_units(systems);
    let next = AtomicUsize::new(0);
    let workers = parallel.clamp(1, units.len().max(1));
    let mut done: Vec<(usize, SystemResult)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(unit) = units.get(i) else { break };
                        mine.extend(run_unit(ctx, systems, unit, &nets));
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

/// What runs together: each system alone, except the machines of one
/// network, which must be up at the same time to test each other. PURE.
pub fn plan_units(systems: &[SystemConfig]) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut by_net: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in systems.iter().enumerate() {
        match (&s.kind, &s.network) {
            (SystemKind::Machine, Some(n)) => match by_net.get(n.as_str()) {
                Some(&u) => units[u].push(i),
                None => {
                    by_net.insert(n, units.len());
                    units.push(vec![i]);
                }
            },
            _ => units.push(vec![i]),
        }
    }
    units
}

/// Runs one unit's systems, each on its own thread when there are several.
fn run_unit(
    ctx: &Context<'_>,
    systems: &[SystemConfig],
    unit: &[usize],
    nets: &machine::Networks,
) -> Vec<(usize, SystemResult)> {
    if let [one] = unit {
        return vec![(*one, run_system(ctx, &systems[*one], nets, None))];
    }
    let ready = Barrier::new(unit.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = unit
            .iter()
            .map(|&i| {
                let ready = &ready;
                (
                    i,
                    scope.spawn(move || run_system(ctx, &systems[i], nets, Some(ready))),
                )
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(i, h)| h.join().ok().map(|r| (i, r)))
            .collect()
    })
}

/// The name of a system's directory under the work directory: the run
/// claims it there (`repofs::store::work`) before the system is made.
pub fn dir_name(tag: &str, system: &str) -> String {
    format!("system-{tag}-{system}")
}

fn run_system(
    ctx: &Context<'_>,
    system: &SystemConfig,
    nets: &machine::Networks,
    ready: Option<&Barrier>,
) -> SystemResult {
    let dir = ctx.work.join(dir_name(ctx.tag, &system.name));
    match system.kind {
        SystemKind::Chroot => drive(&mut Chroot::new(ctx, system, dir), system, ready),
        SystemKind::Machine => drive(
            &mut machine::Machine::new(ctx, system, dir, nets),
            system,
            ready,
        ),
    }
}
