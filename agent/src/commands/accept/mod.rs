//! `halo accept` and `halo gate`: wires the acceptance step together.
//! Load (configuration, channels, the snapshot), lease and freeze testing,
//! run the tests, then commit the decision: stable moves to exactly the
//! tested snapshot by a compare-and-swap that also checks testing still
//! holds it, or nothing moves. Every step is recorded (channel histories,
//! `STORE/acceptance/runs.jsonl`). What a run checks (plain tests,
//! systems) is chosen and run by `checks`, the same for `halo gate`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use repofs::model::acceptance::{Holder, Lease};
use repofs::model::channel::MoveRequest;
use repofs::model::{Action, Transition};
use repofs::store::acceptance::RunEvent;
use repofs::Store;
use serde::Serialize;

use super::{InfraError, UserError};
use crate::accept::lease::LeaseGuard;
use crate::accept::run::TestResult;
use crate::accept::system::SystemResult;
use crate::cli::{AcceptArgs, GateArgs};
use crate::config::{AcceptanceConfig, Config};
use crate::output::Output;
use checks::{choose_checks, report_systems, run_checks, write_junit, Purpose, Target};

mod checks;

/// The configuration file when there is one; defaults otherwise (a gate
/// can run on `--test` flags alone).
fn load_acceptance(store: &Store, given: Option<&Path>) -> Result<AcceptanceConfig> {
    let path = given.map_or_else(|| store.root().join("halo.toml"), Path::to_path_buf);
    if given.is_none() && !path.exists() {
        return Ok(Config::default().acceptance);
    }
    let (config, _) = super::load_config(store, given)?;
    Ok(config.acceptance)
}

/// The run's id: Jenkins' `BUILD_URL` names it for everyone who looks;
/// outside Jenkins, host, pid and time.
fn run_id() -> String {
    std::env::var("BUILD_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| {
            format!(
                "{}:{}:{}",
                super::whoami(),
                std::process::id(),
                jiff::Timestamp::now().as_millisecond()
            )
        })
}

/// This process as a lease holder: host, pid, boot id and start time, so
/// that a run on this host can tell when it died (`kill -9`) and take the
/// lease over at once.
fn holder() -> Holder {
    let who = super::whoami();
    let user = who.split_once('@').map_or("unknown", |(u, _)| u);
    Holder {
        process: repofs::store::process::current(),
        user: user.to_string(),
        build_url: std::env::var("BUILD_URL").ok().filter(|u| !u.is_empty()),
    }
}

fn event(
    store: &Store,
    run: &str,
    event: &str,
    snapshot: &str,
    channel: &str,
    detail: Option<String>,
) -> Result<()> {
    store.record_run_event(&RunEvent {
        run: run.to_string(),
        event: event.to_string(),
        snapshot: snapshot.to_string(),
        channel: channel.to_string(),
        when: jiff::Timestamp::now().to_string(),
        who: super::whoami(),
        detail,
    })?;
    Ok(())
}

#[derive(Debug, Serialize)]
struct AcceptReport {
    run: String,
    snapshot: String,
    testing: String,
    stable: String,
    passed: bool,
    promoted: bool,
    /// Exactly what ran: `tests smoke, x; systems web`.
    checks: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stable_before: Option<String>,
    tests: Vec<TestResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    systems: Vec<SystemResult>,
}

pub fn accept(
    store: &Store,
    config: Option<&Path>,
    args: &AcceptArgs,
    out: &Output,
) -> Result<ExitCode> {
    let mut cfg = load_acceptance(store, config)?;
    if let Some(v) = &args.from {
        cfg.from = v.clone();
    }
    if let Some(v) = &args.testing {
        cfg.testing = v.clone();
    }
    if let Some(v) = &args.stable {
        cfg.stable = v.clone();
    }
    if args.status {
        return status(store, &cfg, out);
    }
    if let Some(m) = args.lease_minutes {
        cfg.lease_minutes = m;
    }
    if !(0.001..=10_080.0).contains(&cfg.lease_minutes) {
        return Err(UserError("--lease-minutes must be between 0.001 and 10080".into()).into());
    }
    let checks = choose_checks(&cfg, &args.test, Purpose::Promote)?;
    for c in [&cfg.from, &cfg.testing, &cfg.stable] {
        store
            .load_channel(c)
            .map_err(|e| InfraError(e.to_string()))?;
    }
    // A held testing or stable: the run could not land, so it does not
    // start (--force overrides the hold on both, and is recorded).
    if !args.force {
        for c in [&cfg.testing, &cfg.stable] {
            store.check_not_held(c)?;
        }
    }
    let snapshot = match &args.snapshot {
        Some(id) => id.clone(),
        None => store
            .channel_target(&cfg.from)
            .map_err(|e| InfraError(e.to_string()))?,
    };
    store
        .load_snapshot(&snapshot)
        .map_err(|e| InfraError(e.to_string()))?;

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
        .acquire_lease(&cfg.testing, lease, now, args.force)
        .map_err(|e| InfraError(format!("cannot start the run: {e}")))?;
    let guard = LeaseGuard::hold(store, &cfg.testing, &run, lease_len);
    if let Some((p, reason)) = previous {
        let why = format!("lease of run {} ({}) taken over: {reason}", p.run, p.holder);
        out.line(format!("{}: {why}", cfg.testing))?;
        tracing::warn!("{why}");
        event(
            store,
            &run,
            "lease-taken-over",
            &snapshot,
            &cfg.testing,
            Some(why),
        )?;
    }
    let who = super::whoami();
    let freeze_reason = format!(
        "acceptance run {run}: frozen from {}",
        args.snapshot
            .as_ref()
            .map_or(cfg.from.as_str(), |_| "--snapshot")
    );
    let testing_before = store.load_channel(&cfg.testing)?.snapshot;
    let when = jiff::Timestamp::now().to_string();
    store
        .move_channel(&MoveRequest {
            channel: &cfg.testing,
            target: &snapshot,
            expect: Some(testing_before.as_deref().unwrap_or("none")),
            action: Action::Freeze,
            who: &who,
            when: &when,
            reason: Some(args.reason.as_deref().unwrap_or(&freeze_reason)),
            lease: Some(&run),
            force: args.force,
        })
        .map_err(|e| InfraError(format!("freezing {}: {e}", cfg.testing)))?;
    event(store, &run, "freeze", &snapshot, &cfg.testing, None)?;
    out.line(format!(
        "{}: frozen at {snapshot} for run {run}",
        cfg.testing
    ))?;

    // Test.
    let verdict = run_checks(
        store,
        &cfg,
        &checks,
        &Target {
            snapshot: &snapshot,
            channel: &cfg.testing,
            run: &run,
            suite: format!("halo accept {snapshot}"),
            classname: format!("halo.accept.{}", cfg.testing),
        },
    );
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => {
            drop(guard);
            return Err(e);
        }
    };
    write_junit(args.test.junit.as_ref(), &verdict.suites)?;
    report_systems(out, &verdict)?;

    // Decide.
    let failed = verdict.failed();
    let count = verdict.count();
    let stable_before = store.load_channel(&cfg.stable)?.snapshot;
    let mut report = AcceptReport {
        run: run.clone(),
        snapshot: snapshot.clone(),
        testing: cfg.testing.clone(),
        stable: cfg.stable.clone(),
        passed: failed.is_empty(),
        promoted: false,
        checks: checks.names(),
        stable_before: stable_before.clone(),
        tests: verdict.tests,
        systems: verdict.systems,
    };
    if !failed.is_empty() {
        event(
            store,
            &run,
            "fail",
            &snapshot,
            &cfg.stable,
            Some(format!(
                "failed: {}; checks: {}",
                failed.join(", "),
                checks.names()
            )),
        )?;
        drop(guard);
        out.json(&report)?;
        out.line(format!(
            "rejected {snapshot}: {} of {count} tests failed ({}); {} unchanged",
            failed.len(),
            failed.join(", "),
            cfg.stable
        ))?;
        return Ok(ExitCode::from(1));
    }
    event(
        store,
        &run,
        "pass",
        &snapshot,
        &cfg.stable,
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
            event(store, &run, "promote", &snapshot, &cfg.stable, None)?;
            out.json(&report)?;
            out.line(format!(
                "accepted {snapshot}: {count} tests passed; {}: {} -> {snapshot}",
                cfg.stable,
                stable_before.as_deref().unwrap_or("-")
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.json(&report)?;
            Err(InfraError(format!("tests passed, but {e}")).into())
        }
    }
}

fn status(store: &Store, cfg: &AcceptanceConfig, out: &Output) -> Result<ExitCode> {
    let lease = store.load_lease(&cfg.testing)?;
    let now = jiff::Timestamp::now().as_millisecond();
    // A lease whose holder this host sees gone holds nothing any more.
    let gone = lease.as_ref().is_some_and(|l| {
        repofs::store::process::liveness(&l.holder.process)
            == repofs::model::process::Liveness::Gone
    });
    let live = lease.as_ref().is_some_and(|l| l.is_live(now)) && !gone;
    match &lease {
        Some(l) if gone => out.line(format!(
            "{}: lease of run {} ({}) is void: its holder is gone (the next run takes it over)",
            cfg.testing, l.run, l.holder
        ))?,
        Some(l) if l.is_live(now) => out.line(format!(
            "{}: held by run {} ({}) until {}",
            cfg.testing,
            l.run,
            l.holder,
            jiff::Timestamp::from_millisecond(l.expires_ms)
                .map_or_else(|_| "?".into(), |t| t.to_string())
        ))?,
        Some(l) => out.line(format!(
            "{}: lease of run {} expired (its holder stopped)",
            cfg.testing, l.run
        ))?,
        None => out.line(format!("{}: no run holds it", cfg.testing))?,
    }
    let events = store.load_run_events()?;
    let recent: Vec<&RunEvent> = events.iter().rev().take(20).collect();
    for e in recent.iter().rev() {
        out.line(format!(
            "{}\t{}\t{}\t{}\t{}",
            e.when, e.event, e.snapshot, e.channel, e.run
        ))?;
    }
    out.json(&serde_json::json!({
        "testing": cfg.testing,
        "lease": lease,
        "lease_live": live,
        "holder_gone": gone,
        "events": recent.into_iter().rev().collect::<Vec<_>>(),
    }))?;
    Ok(ExitCode::SUCCESS)
}

pub fn gate(
    store: &Store,
    config: Option<&Path>,
    args: &GateArgs,
    out: &Output,
) -> Result<ExitCode> {
    let cfg = load_acceptance(store, config)?;
    let checks = choose_checks(&cfg, &args.test, Purpose::Gate)?;
    let snapshot = store
        .channel_target(&args.channel)
        .map_err(|e| InfraError(e.to_string()))?;
    let run = run_id();
    let verdict = run_checks(
        store,
        &cfg,
        &checks,
        &Target {
            snapshot: &snapshot,
            channel: &args.channel,
            run: &run,
            suite: format!("halo gate {} {snapshot}", args.channel),
            classname: format!("halo.gate.{}", args.channel),
        },
    )?;
    write_junit(args.test.junit.as_ref(), &verdict.suites)?;
    report_systems(out, &verdict)?;
    let failed = verdict.failed();
    let count = verdict.count();
    out.json(&serde_json::json!({
        "channel": args.channel, "snapshot": snapshot, "passed": failed.is_empty(),
        "tests": verdict.tests, "systems": verdict.systems,
    }))?;
    if failed.is_empty() {
        out.line(format!(
            "{} ({snapshot}): {count} tests passed",
            args.channel
        ))?;
        Ok(ExitCode::SUCCESS)
    } else {
        out.line(format!(
            "{} ({snapshot}): failed: {}",
            args.channel,
            failed.join(", ")
        ))?;
        Ok(ExitCode::from(1))
    }
}
