//! The acceptance workflow (`halo accept`, the agent's cycle) and the
//! gate (`halo gate`). Load (channels, the snapshot), lease and freeze
//! testing, run the checks the configuration names (`checks`), then
//! commit the decision: stable moves to exactly the tested snapshot by a
//! compare-and-swap that also checks testing still holds it, or nothing
//! moves. Every step is recorded (channel histories,
//! `STORE/acceptance/runs.jsonl`, as `RunEventKind`s the gate reads).
//!
//! A rejection is a report (`Verdict::Rejected`), not an error: the
//! caller decides the exit code from it. An [`Error`] is a run that could
//! not be made or finished.

use std::time::Duration;

use repofs::model::acceptance::{Holder, Lease, Verdict};
use repofs::model::channel::MoveRequest;
use repofs::model::{Action, Transition};
use repofs::store::acceptance::{RunEvent, RunEventKind};
use serde::Serialize;

use super::exit::{classify, ExitStatus, EXIT_INFRA, EXIT_OK, EXIT_REJECTED};
use crate::accept::lease::LeaseGuard;
use crate::accept::run::TestResult;
use crate::accept::system::SystemResult;
use crate::cli::TestArgs;
use crate::config::AcceptanceConfig;
use crate::junit::Suite;
use crate::output::Output;
use crate::repository::Repository;
use checks::{choose_checks, report_systems, run_checks, Purpose, Target};

pub mod checks;

/// Why a run could not be made or finished.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong (`--lease-minutes 0`).
    #[error("{0}")]
    Usage(String),
    /// What to check could not be chosen or prepared (no tests, a missing
    /// tool, a system that is not configured).
    #[error(transparent)]
    Checks(anyhow::Error),
    /// A channel or the snapshot cannot be read.
    #[error("{what}")]
    Load {
        what: String,
        #[source]
        source: Box<repofs::Error>,
    },
    /// Another run holds testing.
    #[error("cannot start the run")]
    Lease(#[source] Box<repofs::Error>),
    #[error("freezing {channel}")]
    Freeze {
        channel: String,
        #[source]
        source: Box<repofs::Error>,
    },
    #[error("recording the run's {event} event")]
    Record {
        event: RunEventKind,
        #[source]
        source: Box<repofs::Error>,
    },
}

impl ExitStatus for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_REJECTED,
            Error::Checks(e) => e.chain().find_map(classify).unwrap_or(EXIT_INFRA),
            Error::Load { .. } | Error::Lease(_) | Error::Freeze { .. } | Error::Record { .. } => {
                EXIT_INFRA
            }
        }
    }
}

/// What a run is asked to do, resolved by the caller: the configuration
/// with any command-line overrides of `from`, `testing`, `stable` and
/// `lease_minutes` applied.
pub struct AcceptRequest<'a> {
    pub cfg: &'a AcceptanceConfig,
    /// `--test` flags, timeouts, `--keep` (the systems are the
    /// configuration's: a promoting run runs every one).
    pub tests: &'a TestArgs,
    /// This snapshot instead of what `cfg.from` points at.
    pub snapshot: Option<String>,
    /// Take testing's lease even from a live run.
    pub force: bool,
    pub reason: Option<String>,
}

/// One run: its verdict, what it ran and what became of stable.
#[derive(Debug, Serialize)]
pub struct AcceptReport {
    pub run: String,
    pub snapshot: String,
    pub testing: String,
    pub stable: String,
    pub verdict: Verdict,
    /// `verdict == Passed`, kept for readers of the older report.
    pub passed: bool,
    /// Stable was moved to `snapshot` by this run.
    pub promoted: bool,
    /// Exactly what ran: `tests smoke, x; systems web`.
    pub checks: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_before: Option<String>,
    /// Why stable did not move, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_moved: Option<String>,
    /// The testcases that failed: `smoke`, `web/install`.
    pub failed: Vec<String>,
    /// Every testcase, run or skipped.
    pub count: usize,
    pub tests: Vec<TestResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub systems: Vec<SystemResult>,
    /// The JUnit of what ran.
    #[serde(skip)]
    pub suites: Vec<Suite>,
    /// Tests passed but stable could not be moved (someone moved testing
    /// or stable under the run): the surroundings' fault, exit 2.
    #[serde(skip)]
    pub promote_error: Option<repofs::Error>,
}

impl AcceptReport {
    /// 0 passed and promoted, 1 rejected, 2 passed but not promoted.
    pub fn exit_code(&self) -> u8 {
        match (self.verdict, &self.promote_error) {
            (Verdict::Rejected, _) => EXIT_REJECTED,
            (Verdict::Passed, Some(_)) => EXIT_INFRA,
            (Verdict::Passed, None) => EXIT_OK,
        }
    }
}

/// The run's id: Jenkins' `BUILD_URL` names it for everyone who looks;
/// outside Jenkins, host, pid and time.
pub fn run_id() -> String {
    std::env::var("BUILD_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| {
            format!(
                "{}:{}:{}",
                crate::commands::whoami(),
                std::process::id(),
                jiff::Timestamp::now().as_millisecond()
            )
        })
}

/// This process as a lease holder: host, pid, boot id and start time, so
/// that a run on this host can tell when it died (`kill -9`) and take the
/// lease over at once.
fn holder() -> Holder {
    let who = crate::commands::whoami();
    let user = who.split_once('@').map_or("unknown", |(u, _)| u);
    Holder {
        process: repofs::store::process::current(),
        user: user.to_string(),
        build_url: std::env::var("BUILD_URL").ok().filter(|u| !u.is_empty()),
    }
}

/// Appends one event of `run` to the run log.
fn record(
    store: &dyn Repository,
    run: &str,
    event: RunEventKind,
    (snapshot, channel): (&str, &str),
    detail: Option<String>,
) -> Result<(), Error> {
    store
        .record_run_event(&RunEvent {
            run: run.to_string(),
            event,
            snapshot: snapshot.to_string(),
            channel: channel.to_string(),
            when: jiff::Timestamp::now().to_string(),
            who: crate::commands::whoami(),
            detail,
        })
        .map_err(|source| Error::Record {
            event,
            source: Box::new(source),
        })
}

fn load(what: impl Into<String>) -> impl FnOnce(repofs::Error) -> Error {
    let what = what.into();
    move |source| Error::Load {
        what,
        source: Box::new(source),
    }
}

/// Freeze, test, decide. `out` gets the run's progress lines (frozen at,
/// kept systems); the verdict line is the caller's.
pub fn accept(
    store: &dyn Repository,
    req: &AcceptRequest<'_>,
    out: &Output,
) -> Result<AcceptReport, Error> {
    let cfg = req.cfg;
    if !(0.001..=10_080.0).contains(&cfg.lease_minutes) {
        return Err(Error::Usage(
            "--lease-minutes must be between 0.001 and 10080".into(),
        ));
    }
    let checks = choose_checks(cfg, req.tests, Purpose::Accept).map_err(Error::Checks)?;
    for c in [&cfg.from, &cfg.testing, &cfg.stable] {
        store
            .load_channel(c)
            .map_err(load(format!("channel {c}")))?;
    }
    // A held testing or stable: the run could not land, so it does not
    // start (--force overrides the hold on both, and is recorded).
    if !req.force {
        for c in [&cfg.testing, &cfg.stable] {
            store
                .check_not_held(c)
                .map_err(|e| Error::Lease(Box::new(e)))?;
        }
    }
    let snapshot = match &req.snapshot {
        Some(id) => id.clone(),
        None => store
            .channel_target(&cfg.from)
            .map_err(load(format!("channel {}", cfg.from)))?,
    };
    store
        .load_snapshot(&snapshot)
        .map_err(load(format!("snapshot {snapshot}")))?;

    // Freeze: the lease first, so no one moves testing from here on.
    let run = run_id();
    let lease_len = Duration::from_secs_f64(cfg.lease_minutes * 60.0);
    let now = jiff::Timestamp::now().as_millisecond();
    let lease = Lease {
        run: run.clone(),
        holder: holder(),
        acquired_ms: now,
        expires_ms: now + i64::try_from(lease_len.as_millis()).unwrap_or(i64::MAX),
    };
    let previous = store
        .acquire_lease(&cfg.testing, lease, req.force)
        .map_err(|e| Error::Lease(Box::new(e)))?;
    let guard = LeaseGuard::hold(store, &cfg.testing, &run, lease_len);
    if let Some((p, reason)) = previous {
        let why = format!("lease of run {} ({}) taken over: {reason}", p.run, p.holder);
        out.line(format!("{}: {why}", cfg.testing))
            .map_err(|e| Error::Checks(e.into()))?;
        tracing::warn!("{why}");
        record(
            store,
            &run,
            RunEventKind::LeaseTakenOver,
            (&snapshot, &cfg.testing),
            Some(why),
        )?;
    }
    let freeze_reason = format!(
        "acceptance run {run}: frozen from {}",
        req.snapshot
            .as_ref()
            .map_or(cfg.from.as_str(), |_| "--snapshot")
    );
    let testing_before = store
        .load_channel(&cfg.testing)
        .map_err(load(format!("channel {}", cfg.testing)))?
        .snapshot;
    let who = crate::commands::whoami();
    let when = jiff::Timestamp::now().to_string();
    store
        .move_channel(&MoveRequest {
            channel: &cfg.testing,
            target: &snapshot,
            expect: Some(testing_before.as_deref().unwrap_or("none")),
            action: Action::Freeze,
            who: &who,
            when: &when,
            reason: Some(req.reason.as_deref().unwrap_or(&freeze_reason)),
            lease: Some(&run),
            force: req.force,
        })
        .map_err(|source| Error::Freeze {
            channel: cfg.testing.clone(),
            source: Box::new(source),
        })?;
    record(
        store,
        &run,
        RunEventKind::Freeze,
        (&snapshot, &cfg.testing),
        None,
    )?;
    print(out.line(format!(
        "{}: frozen at {snapshot} for run {run}",
        cfg.testing
    )));

    // Test.
    let target = Target {
        snapshot: &snapshot,
        channel: &cfg.testing,
        run: &run,
        suite: format!("halo accept {snapshot}"),
        classname: format!("halo.accept.{}", cfg.testing),
    };
    let verdict = run_checks(store, cfg, &checks, &target).map_err(Error::Checks)?;
    print(report_systems(out, &verdict));

    // Decide.
    let failed = verdict.failed();
    let count = verdict.count();
    let stable_before = store
        .load_channel(&cfg.stable)
        .map_err(load(format!("channel {}", cfg.stable)))?
        .snapshot;
    let mut report = AcceptReport {
        run: run.clone(),
        snapshot: snapshot.clone(),
        testing: cfg.testing.clone(),
        stable: cfg.stable.clone(),
        verdict: if failed.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Rejected
        },
        passed: failed.is_empty(),
        promoted: false,
        checks: checks.names(),
        stable_before: stable_before.clone(),
        not_moved: None,
        failed,
        count,
        tests: verdict.tests,
        systems: verdict.systems,
        suites: verdict.suites,
        promote_error: None,
    };
    if report.verdict == Verdict::Rejected {
        record(
            store,
            &run,
            RunEventKind::Fail,
            (&snapshot, &cfg.stable),
            Some(format!(
                "failed: {}; checks: {}",
                report.failed.join(", "),
                checks.names()
            )),
        )?;
        report.not_moved = Some(format!("acceptance rejected {snapshot}"));
        drop(guard);
        return Ok(report);
    }
    record(
        store,
        &run,
        RunEventKind::Pass,
        (&snapshot, &cfg.stable),
        Some(format!("checks: {}", checks.names())),
    )?;
    let when = jiff::Timestamp::now().to_string();
    let accept_reason = format!(
        "acceptance run {run} passed {count} tests ({})",
        checks.names()
    );
    let moved = store.move_channel_if(
        &MoveRequest {
            channel: &cfg.stable,
            target: &snapshot,
            expect: Some(stable_before.as_deref().unwrap_or("none")),
            action: Action::Accept,
            who: &who,
            when: &when,
            reason: Some(&accept_reason),
            lease: Some(&run),
            force: false,
        },
        &cfg.testing,
        &snapshot,
    );
    drop(guard);
    match moved {
        Ok(t) => {
            report.promoted = matches!(t, Transition::Move { .. });
            if !report.promoted {
                report.not_moved = Some(format!("{} is at {snapshot} already", cfg.stable));
            }
            record(
                store,
                &run,
                RunEventKind::Promote,
                (&snapshot, &cfg.stable),
                None,
            )?;
        }
        Err(e) => {
            report.not_moved = Some(format!("tests passed, but {e}"));
            report.promote_error = Some(e);
        }
    }
    Ok(report)
}

/// A progress line that cannot be printed (a closed stdout) must not
/// abandon a run holding a lease: it is logged instead.
fn print<E: std::fmt::Display>(result: Result<(), E>) {
    if let Err(e) = result {
        tracing::warn!("cannot print a progress line: {e}");
    }
}

/// What `halo gate` found: the checks against a channel, nothing moved.
#[derive(Debug, Serialize)]
pub struct GateReport {
    pub channel: String,
    pub snapshot: String,
    pub verdict: Verdict,
    pub passed: bool,
    pub failed: Vec<String>,
    pub count: usize,
    pub tests: Vec<TestResult>,
    pub systems: Vec<SystemResult>,
    #[serde(skip)]
    pub suites: Vec<Suite>,
}

/// The same checks as a run (or those `--system` names), against what
/// `channel` points at now: no lease, no freeze, no promotion.
pub fn gate(
    store: &dyn Repository,
    cfg: &AcceptanceConfig,
    tests: &TestArgs,
    channel: &str,
    out: &Output,
) -> Result<GateReport, Error> {
    let checks = choose_checks(cfg, tests, Purpose::Gate).map_err(Error::Checks)?;
    let snapshot = store
        .channel_target(channel)
        .map_err(load(format!("channel {channel}")))?;
    let run = run_id();
    let verdict = run_checks(
        store,
        cfg,
        &checks,
        &Target {
            snapshot: &snapshot,
            channel,
            run: &run,
            suite: format!("halo gate {channel} {snapshot}"),
            classname: format!("halo.gate.{channel}"),
        },
    )
    .map_err(Error::Checks)?;
    print(report_systems(out, &verdict));
    let failed = verdict.failed();
    Ok(GateReport {
        channel: channel.to_string(),
        snapshot,
        verdict: if failed.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Rejected
        },
        passed: failed.is_empty(),
        count: verdict.count(),
        failed,
        tests: verdict.tests,
        systems: verdict.systems,
        suites: verdict.suites,
    })
}
