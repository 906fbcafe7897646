//! `halo accept` and `halo gate`: wires the acceptance step together.
//! Load (configuration, channels, the snapshot), lease and freeze testing,
//! run the tests, then commit the decision: stable moves to exactly the
//! tested snapshot by a compare-and-swap that also checks testing still
//! holds it, or nothing moves. Every step is recorded (channel histories,
//! `STORE/acceptance/runs.jsonl`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use repofs::model::acceptance::{Holder, Lease};
use repofs::model::channel::MoveRequest;
use repofs::model::{Action, Transition};
use repofs::store::acceptance::RunEvent;
use repofs::Store;
use serde::Serialize;

use super::{InfraError, UserError};
use crate::accept::chroot::Mode;
use crate::accept::lease::LeaseGuard;
use crate::accept::repo::Repo;
use crate::accept::run::{run_tests, to_suite, TestResult};
use crate::accept::system::{run_systems, Context as SystemContext, SystemResult};
use crate::cli::{AcceptArgs, GateArgs, TestArgs};
use crate::config::acceptance::parse_test_flag;
use crate::config::system::plan_parallel;
use crate::config::{AcceptanceConfig, Config, SystemConfig, TestConfig};
use crate::junit::{render_junit, Suite};
use crate::output::Output;

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

/// What a run checks, chosen (or refused) before anything moves.
struct Checks {
    /// `--test` flags, else `[[acceptance.test]]`.
    tests: Vec<TestConfig>,
    /// `--systems` (all) or `--system NAME`.
    systems: Vec<SystemConfig>,
    limit: Duration,
    parallel: usize,
    keep: bool,
}

/// `--test` flags replace the configured tests; systems run when asked
/// for; nothing to run at all is an error.
fn choose_checks(cfg: &AcceptanceConfig, args: &TestArgs) -> Result<Checks> {
    let tests: Vec<TestConfig> = if args.tests.is_empty() {
        cfg.tests.clone()
    } else {
        args.tests
            .iter()
            .map(|t| parse_test_flag(t).map_err(UserError))
            .collect::<Result<_, _>>()?
    };
    let systems: Vec<SystemConfig> = if args.systems {
        if cfg.systems.is_empty() {
            return Err(InfraError(
                "--systems: no [[acceptance.system]] in the configuration".into(),
            )
            .into());
        }
        cfg.systems.clone()
    } else {
        let names: Vec<String> = args.system.clone();
        pick_systems(&cfg.systems, &names)?
    };
    if !systems.is_empty() {
        for (tool, package) in [("mmdebstrap", "mmdebstrap"), ("unshare", "util-linux")] {
            if !on_path(tool) {
                return Err(InfraError(format!(
                    "{tool} is missing: apt-get install {package} (systems are built with it)"
                ))
                .into());
            }
        }
    } else if !cfg.systems.is_empty() {
        tracing::warn!(
            "{} systems configured but not selected: --systems builds them",
            cfg.systems.len()
        );
    }
    if tests.is_empty() && systems.is_empty() {
        return Err(InfraError("no acceptance tests: give --test NAME=COMMAND or [[acceptance.test]] in the configuration, or --systems with [[acceptance.system]]".into()).into());
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

fn holder() -> Holder {
    let who = super::whoami();
    let (user, host) = who.split_once('@').unwrap_or(("unknown", who.as_str()));
    Holder {
        host: host.to_string(),
        pid: std::process::id(),
        user: user.to_string(),
        build_url: std::env::var("BUILD_URL").ok().filter(|u| !u.is_empty()),
    }
}

/// A path segment for the run's work directory.
fn run_tag(run: &str) -> String {
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

fn test_env(
    store: &Store,
    snapshot: &str,
    channel: &str,
    repo: &Path,
    run: &str,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("HALO_SNAPSHOT".into(), snapshot.to_string());
    env.insert("HALO_CHANNEL".into(), channel.to_string());
    env.insert("HALO_STORE".into(), store.root().display().to_string());
    env.insert("HALO_REPO".into(), repo.display().to_string());
    env.insert(
        "HALO_KEYRING".into(),
        store.keys_dir().join("repo.gpg").display().to_string(),
    );
    env.insert("HALO_RUN".into(), run.to_string());
    env
}

fn write_junit(file: Option<&PathBuf>, suites: &[Suite]) -> Result<()> {
    if let Some(f) = file {
        fs_err::write(f, render_junit(suites)).context("writing the JUnit report")?;
    }
    Ok(())
}

/// What the checks found: plain tests and systems.
struct Verdict {
    suites: Vec<Suite>,
    tests: Vec<TestResult>,
    systems: Vec<SystemResult>,
}

impl Verdict {
    /// The testcases that failed: `smoke`, `web/install`.
    fn failed(&self) -> Vec<String> {
        self.tests
            .iter()
            .filter(|t| t.failed())
            .map(|t| t.name.clone())
            .chain(self.systems.iter().flat_map(SystemResult::failed))
            .collect()
    }

    /// Every testcase, run or skipped.
    fn count(&self) -> usize {
        self.tests.len() + self.systems.iter().map(|s| s.steps.len()).sum::<usize>()
    }
}

/// Where and as what a run's checks run.
struct Target<'a> {
    snapshot: &'a str,
    /// `HALO_CHANNEL`: testing for a run, the channel for a gate.
    channel: &'a str,
    run: &'a str,
    /// The JUnit suite of the plain tests, prefix of the systems' suites.
    suite: String,
    classname: String,
}

/// Provides the snapshot's tree, runs the plain tests, then the systems.
fn run_checks(
    store: &Store,
    cfg: &AcceptanceConfig,
    checks: &Checks,
    target: &Target<'_>,
) -> Result<Verdict> {
    let started = jiff::Timestamp::now();
    let mount = cfg.mount.as_deref().map(Path::new);
    let manifest = store
        .load_snapshot(target.snapshot)
        .map_err(|e| InfraError(e.to_string()))?;
    let repo = Repo::provide(store, target.snapshot, mount, &run_tag(target.run))
        .map_err(|e| InfraError(format!("{e:#}")))?;
    let env = test_env(
        store,
        target.snapshot,
        target.channel,
        &repo.path,
        target.run,
    );
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
        let work = store.root().join("work");
        fs_err::create_dir_all(&work)?;
        let work = fs_err::canonicalize(&work)?;
        let keyring = fs_err::canonicalize(store.keys_dir().join("repo.gpg"))?;
        let repo_path = fs_err::canonicalize(&repo.path)?;
        let tag = run_tag(target.run);
        let ctx = SystemContext {
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
        let started = jiff::Timestamp::now();
        let results = run_systems(&ctx, &checks.systems, checks.parallel);
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
fn report_systems(out: &Output, verdict: &Verdict) -> Result<()> {
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

#[derive(Debug, Serialize)]
struct AcceptReport {
    run: String,
    snapshot: String,
    testing: String,
    stable: String,
    passed: bool,
    promoted: bool,
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
    let checks = choose_checks(&cfg, &args.test)?;
    for c in [&cfg.from, &cfg.testing, &cfg.stable] {
        store
            .load_channel(c)
            .map_err(|e| InfraError(e.to_string()))?;
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
    if let Some(p) = previous {
        let why = format!("lease of run {} ({}) taken over", p.run, p.holder);
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
            Some(format!("failed: {}", failed.join(", "))),
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
    event(store, &run, "pass", &snapshot, &cfg.stable, None)?;
    let when = jiff::Timestamp::now().to_string();
    let accept_reason = format!("acceptance run {run} passed {count} tests");
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
    store: &Store,
    config: Option<&Path>,
    args: &GateArgs,
    out: &Output,
) -> Result<ExitCode> {
    let cfg = load_acceptance(store, config)?;
    let checks = choose_checks(&cfg, &args.test)?;
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
