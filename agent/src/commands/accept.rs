//! `halo accept` and `halo gate`: the acceptance configuration resolved
//! (file, then command-line overrides), the workflow called
//! (`crate::workflow::accept`), its report printed and its JUnit written.
//! `halo accept --status` shows the lease on testing and the latest runs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use repofs::model::acceptance::Verdict;
use repofs::store::acceptance::RunEvent;
use repofs::Store;

use crate::repository::Repository;

use crate::cli::{AcceptArgs, GateArgs};
use crate::config::{AcceptanceConfig, Config};
use crate::output::Output;
use crate::workflow::accept::checks::write_junit;
use crate::workflow::accept::{self as workflow, AcceptReport, AcceptRequest};

/// The configuration file when there is one; defaults otherwise (a gate
/// can run on `--test` flags alone).
fn load_acceptance(store: &dyn Repository, given: Option<&Path>) -> Result<AcceptanceConfig> {
    let default = store.local_store().map(|s| s.root().join("halo.toml"));
    if given.is_none() && !default.is_some_and(|p| p.exists()) {
        return Ok(Config::default().acceptance);
    }
    let (config, _) = super::load_config(store, given)?;
    Ok(config.acceptance)
}

pub fn accept(
    store: &dyn Repository,
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
        let Some(store) = store.local_store() else {
            return Err(crate::workflow::exit::UserError(
                "accept --status reads the store: run it on the repository host (or see halo serve's page)".into(),
            )
            .into());
        };
        return status(store, &cfg, out);
    }
    if let Some(m) = args.lease_minutes {
        cfg.lease_minutes = m;
    }
    let report = workflow::accept(
        store,
        &AcceptRequest {
            cfg: &cfg,
            tests: &args.test,
            snapshot: args.snapshot.clone(),
            force: args.force,
            reason: args.reason.clone(),
        },
        out,
    )?;
    write_junit(args.test.junit.as_ref(), &report.suites)?;
    // For the server's page: each testcase and its output.
    crate::workflow::runs::save(
        store,
        &report.run,
        &report.snapshot,
        &report.stable,
        report.verdict,
        &report.suites,
    );
    out.json(&report)?;
    out.line(verdict_line(&report))?;
    if let Some(e) = &report.promote_error {
        out.error_line(format!("tests passed, but {e}"))?;
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// `accepted ID: N tests passed; trusty: A -> ID` or `rejected ID: ...`.
pub fn verdict_line(r: &AcceptReport) -> String {
    match (r.verdict, r.promoted) {
        (Verdict::Rejected, _) => format!(
            "rejected {}: {} of {} tests failed ({}); {} unchanged",
            r.snapshot,
            r.failed.len(),
            r.count,
            r.failed.join(", "),
            r.stable
        ),
        (Verdict::Passed, true) => format!(
            "accepted {}: {} tests passed; {}: {} -> {}",
            r.snapshot,
            r.count,
            r.stable,
            r.stable_before.as_deref().unwrap_or("-"),
            r.snapshot
        ),
        (Verdict::Passed, false) => format!(
            "accepted {}: {} tests passed; {} not moved: {}",
            r.snapshot,
            r.count,
            r.stable,
            r.not_moved.as_deref().unwrap_or("-")
        ),
    }
}

fn status(store: &Store, cfg: &AcceptanceConfig, out: &Output) -> Result<ExitCode> {
    let lease = store.load_lease(&cfg.testing)?;
    let now = jiff::Timestamp::now().as_millisecond();
    match &lease {
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
        "lease_live": lease.as_ref().is_some_and(|l| l.is_live(now)),
        "events": recent.into_iter().rev().collect::<Vec<_>>(),
    }))?;
    Ok(ExitCode::SUCCESS)
}

pub fn gate(
    store: &dyn Repository,
    config: Option<&Path>,
    args: &GateArgs,
    out: &Output,
) -> Result<ExitCode> {
    let cfg = load_acceptance(store, config)?;
    let report = workflow::gate(store, &cfg, &args.test, &args.channel, out)?;
    write_junit(args.test.junit.as_ref(), &report.suites)?;
    crate::workflow::runs::save(
        store,
        &format!("gate {} {}", report.channel, report.snapshot),
        &report.snapshot,
        &report.channel,
        report.verdict,
        &report.suites,
    );
    out.json(&report)?;
    match report.verdict {
        Verdict::Passed => {
            out.line(format!(
                "{} ({}): {} tests passed",
                report.channel, report.snapshot, report.count
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Rejected => {
            out.line(format!(
                "{} ({}): failed: {}",
                report.channel,
                report.snapshot,
                report.failed.join(", ")
            ))?;
            Ok(ExitCode::from(1))
        }
    }
}
