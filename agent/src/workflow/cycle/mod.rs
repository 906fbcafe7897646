//! The agent's cycle, whoever starts it (`halo agent`'s schedule, `halo
//! agent --once` from cron or the Jenkins refresh job): update every
//! mirror, build every source whose head is new, make a snapshot when
//! anything changed, move unstable to it, then hand a snapshot not yet
//! judged to acceptance: the `[jenkins]` acceptance job, or the accept
//! workflow itself, with the checks the configuration names. Each stage
//! reports what it did in a typed [`CycleReport`]; a failing stage never
//! stops the ones after it that can still run.
//!
//! The steps are the workflows themselves, called in this process; each
//! takes the store's lock as it always does.

mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use repofs::model::acceptance::Verdict;
use repofs::model::channel::MoveRequest;
use repofs::model::{Action, Transition};

use super::accept::{self, AcceptRequest};
use super::build::{build_all, config_jobs, BuildOptions, BuildStatus};
use super::exit::{ExitStatus, EXIT_BUSY, EXIT_INFRA};
use super::record;
use crate::cli::TestArgs;
use crate::config::{Config, JenkinsConfig};
use crate::jenkins::client::Client;
use crate::junit::{Case, Outcome, Suite};
use crate::mirror::fetch::Fetcher;
use crate::mirror::update::Update;
use crate::output::Output;
use crate::redact::redact_urls;
use crate::repository::Repository;
pub use report::{
    summary_line, AcceptanceStage, BuildStage, CycleReport, MirrorOutcome, MirrorStage,
    SnapshotStage, StableStage,
};

/// Why a cycle did not run at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("a cycle is already running on this store: this one is skipped")]
    Busy,
    #[error("cannot take the cycle lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ExitStatus for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Busy => EXIT_BUSY,
            Error::Lock { .. } => EXIT_INFRA,
        }
    }
}

/// Everything a cycle needs, resolved by the caller.
pub struct Cycle<'a> {
    /// The store here, or `halo serve`'s (a remote agent: its mirrors
    /// are the repository host's, not updated here).
    pub store: &'a dyn Repository,
    pub config: &'a Config,
    /// Relative keyrings of mirrors are relative to it.
    pub config_path: &'a Path,
    /// The controller, when `[jenkins]` is set: acceptance is its job.
    pub jenkins: Option<(&'a JenkinsConfig, &'a Client)>,
    /// A multi-thread runtime (mirror updates need one).
    pub runtime: &'a tokio::runtime::Runtime,
}

/// An error and its causes on one line, passwords in URLs hidden.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    redact_urls(&repofs::error_chain(e)).replace('\n', " ")
}

impl Cycle<'_> {
    /// Runs a cycle unless another process is running one on this store.
    pub fn run_locked(&self) -> Result<CycleReport, Error> {
        let path = record::cycle_lock_path(self.store);
        let lock = fs_err::create_dir_all(self.store.state_dir().join("agent"))
            .and_then(|()| {
                fs_err::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
            })
            .map_err(|source| Error::Lock {
                path: path.clone(),
                source,
            })?;
        if lock.file().try_lock().is_err() {
            return Err(Error::Busy);
        }
        let report = self.run();
        record::save_last_cycle(self.store, &report);
        Ok(report)
    }

    fn run(&self) -> CycleReport {
        let started = Instant::now();
        let mut r = CycleReport::new();
        let mut cycle_suite = Suite {
            name: "halo agent cycle".into(),
            timestamp: Some(r.started.clone()),
            cases: Vec::new(),
        };
        self.mirrors(&mut r, &mut cycle_suite);
        self.builds(&mut r);
        let changed = self.snapshot(&mut r, &mut cycle_suite);
        self.unstable(&mut r, changed);
        self.acceptance(&mut r);
        if !cycle_suite.cases.is_empty() {
            r.suites.insert(0, cycle_suite);
        }
        r.seconds = started.elapsed().as_secs_f64();
        r.line = summary_line(&r);
        r
    }

    fn mirrors(&self, r: &mut CycleReport, suite: &mut Suite) {
        if self.config.mirrors.is_empty() {
            return;
        }
        // Mirrors are updated where the store is: a remote agent's cycle
        // leaves them to the repository host's own agent.
        let Some(store) = self.store.local_store() else {
            tracing::info!("mirrors: updated on the repository host, not by a remote agent");
            return;
        };
        let fetcher = match Fetcher::new(&self.config.fetch) {
            Ok(f) => f,
            Err(e) => {
                r.error(format!("mirrors: cannot set up the HTTP client: {e}"));
                return;
            }
        };
        for mirror in &self.config.mirrors {
            record::save_progress(self.store, "mirror", Some(&mirror.name));
            let started = Instant::now();
            let progress = LogProgress::new(&mirror.name);
            let result = crate::commands::mirror::load_keyring(mirror, self.config_path).and_then(
                |keyring| {
                    self.runtime.block_on(
                        Update {
                            store,
                            mirror,
                            keyring: keyring.as_deref(),
                            fetcher: &fetcher,
                            concurrency: self.config.fetch.download_concurrency,
                            now: jiff::Timestamp::now(),
                            progress: &progress,
                        }
                        .run(),
                    )
                },
            );
            let stage = match result {
                Ok(u) => MirrorStage {
                    mirror: mirror.name.clone(),
                    outcome: if u.changed {
                        MirrorOutcome::Changed
                    } else {
                        MirrorOutcome::Unchanged
                    },
                    error: None,
                },
                Err(e) => {
                    let error = one_line(&e);
                    tracing::error!("mirror {}: {error}", mirror.name);
                    r.raise(EXIT_INFRA);
                    MirrorStage {
                        mirror: mirror.name.clone(),
                        outcome: MirrorOutcome::Failed,
                        error: Some(error),
                    }
                }
            };
            record::save_mirror_outcome(self.store, &mirror.name, stage.error.clone());
            suite.cases.push(Case {
                name: format!("mirror {}", mirror.name),
                classname: "halo.agent.mirror".into(),
                time: started.elapsed().as_secs_f64(),
                outcome: match &stage.error {
                    Some(e) => Outcome::Error {
                        message: e.clone(),
                        detail: String::new(),
                    },
                    None => Outcome::Passed,
                },
                system_out: String::new(),
            });
            r.mirrors.push(stage);
        }
    }

    fn builds(&self, r: &mut CycleReport) {
        if self.config.sources.is_empty() {
            return;
        }
        let jobs = match config_jobs(self.config, &[], true, false) {
            Ok(j) => j,
            Err(e) => {
                r.error(format!("builds: {e}"));
                return;
            }
        };
        for job in &jobs {
            record::save_progress(self.store, "build", Some(&job.0.name));
            let done = build_all(
                self.store,
                std::slice::from_ref(job),
                BuildOptions::default(),
                &mut |b| tracing::info!(source = b.source, status = %b.status, "build"),
            );
            for b in done.reports {
                r.raise(b.exit_code());
                r.builds.push(BuildStage {
                    source: b.source,
                    status: b.status,
                    version: b.version,
                    commit: b.commit,
                    reason: b.message.map(|m| redact_urls(&m)),
                });
            }
            r.suites.extend(done.suites);
        }
    }

    /// Makes a snapshot; true when the store changed since the last one
    /// (or something was built or mirrored, which the next move needs).
    fn snapshot(&self, r: &mut CycleReport, suite: &mut Suite) -> bool {
        record::save_progress(self.store, "snapshot", None);
        let started = Instant::now();
        let outcome = match self.store.create_snapshot() {
            Ok(c) => {
                r.snapshot.why_not =
                    (!c.new).then(|| format!("nothing changed since snapshot {}", c.id));
                r.snapshot.id = Some(c.id);
                r.snapshot.new = c.new;
                Outcome::Passed
            }
            Err(e) => {
                let error = one_line(&e);
                r.snapshot.why_not = Some(format!("snapshot failed: {error}"));
                r.error(format!("snapshot: {error}"));
                Outcome::Error {
                    message: error,
                    detail: String::new(),
                }
            }
        };
        suite.cases.push(Case {
            name: "snapshot".into(),
            classname: "halo.agent".into(),
            time: started.elapsed().as_secs_f64(),
            outcome,
            system_out: String::new(),
        });
        r.snapshot.new
            || r.builds.iter().any(|b| b.status == BuildStatus::Built)
            || r.mirrors
                .iter()
                .any(|m| m.outcome == MirrorOutcome::Changed)
    }

    /// Moves unstable to the cycle's snapshot (compare-and-swap) when
    /// anything changed.
    fn unstable(&self, r: &mut CycleReport, changed: bool) {
        let unstable = &self.config.acceptance.from;
        r.unstable = unstable.clone();
        let (before, hold) = match self.store.load_channel(unstable) {
            Ok(p) => (p.snapshot, p.hold),
            Err(e) => {
                r.error(format!("channel {unstable}: {}", one_line(&e)));
                return;
            }
        };
        r.unstable_at = before.clone();
        let Some(id) = r.snapshot.id.clone().filter(|_| changed) else {
            return;
        };
        if let Some(h) = hold {
            // A held channel is never moved by the agent.
            tracing::warn!("{unstable} is {h}: {id} not promoted to it");
            return;
        }
        let who = crate::commands::whoami();
        let when = jiff::Timestamp::now().to_string();
        let moved = self.store.move_channel(&MoveRequest {
            channel: unstable,
            target: &id,
            expect: Some(before.as_deref().unwrap_or("none")),
            action: Action::Promote,
            who: &who,
            when: &when,
            reason: Some("halo agent: refresh cycle"),
            lease: None,
            force: false,
        });
        match moved {
            Ok(t) => {
                r.unstable_moved = matches!(t, Transition::Move { .. });
                r.unstable_at = Some(id);
            }
            Err(e) => r.error(format!("moving {unstable} to {id}: {}", one_line(&e))),
        }
    }

    fn acceptance(&self, r: &mut CycleReport) {
        let acc = &self.config.acceptance;
        let stable_at = match self.store.load_channel(&acc.stable) {
            Ok(p) => p.snapshot,
            Err(e) => {
                r.error(format!("channel {}: {}", acc.stable, one_line(&e)));
                return;
            }
        };
        r.stable = StableStage {
            channel: acc.stable.clone(),
            moved: false,
            from: stable_at.clone(),
            to: stable_at.clone(),
            why: String::new(),
        };
        for c in [&acc.testing, &acc.stable] {
            match self.store.load_channel(c) {
                Ok(p) => {
                    if let Some(h) = p.hold {
                        r.stable.why = format!("{c} is {h}: acceptance not run");
                        r.acceptance = Some(AcceptanceStage::NothingToJudge {
                            why: r.stable.why.clone(),
                            verdict: None,
                        });
                        return;
                    }
                }
                Err(e) => {
                    r.error(format!("channel {c}: {}", one_line(&e)));
                    return;
                }
            }
        }
        let Some(target) = r.unstable_at.clone() else {
            r.stable.why = format!("{} points at no snapshot", acc.from);
            r.acceptance = Some(AcceptanceStage::NothingToJudge {
                why: r.stable.why.clone(),
                verdict: None,
            });
            return;
        };
        if let Some(stage) = self.judged(&target, stable_at.as_deref(), r) {
            r.acceptance = Some(stage);
            return;
        }
        let stage = match self.jenkins {
            Some((j, client)) => self.trigger(j, client, &target, r),
            None => self.accept_here(&target, r),
        };
        r.acceptance = Some(stage);
    }

    /// A snapshot stable holds, or that a run judged, or that was handed
    /// to the acceptance job already, is not handed over again.
    fn judged(
        &self,
        target: &str,
        stable_at: Option<&str>,
        r: &mut CycleReport,
    ) -> Option<AcceptanceStage> {
        let stable = &self.config.acceptance.stable;
        if stable_at == Some(target) {
            r.stable.why = format!("{stable} is at {target} already");
            return Some(AcceptanceStage::NothingToJudge {
                why: r.stable.why.clone(),
                verdict: None,
            });
        }
        let verdict = match self.store.load_verdict(stable, target) {
            Ok(v) => v,
            Err(e) => {
                r.error(format!("reading the acceptance runs: {}", one_line(&e)));
                return Some(AcceptanceStage::Failed {
                    snapshot: target.to_string(),
                    error: "the acceptance runs cannot be read".into(),
                });
            }
        };
        if let Some(v) = verdict {
            r.stable.why = match v {
                Verdict::Rejected => format!("acceptance rejected {target} before"),
                Verdict::Passed => format!("{target} passed before; {stable} was moved since"),
            };
            return Some(AcceptanceStage::NothingToJudge {
                why: format!("{target} was judged before: {v}"),
                verdict: Some(v),
            });
        }
        if self.jenkins.is_some()
            && record::load_state(self.store).handed.as_deref() == Some(target)
        {
            r.stable.why = format!("waiting for the acceptance job's verdict on {target}");
            return Some(AcceptanceStage::NothingToJudge {
                why: format!("{target} was handed to the acceptance job already"),
                verdict: None,
            });
        }
        None
    }

    fn trigger(
        &self,
        j: &JenkinsConfig,
        client: &Client,
        target: &str,
        r: &mut CycleReport,
    ) -> AcceptanceStage {
        record::save_progress(self.store, "trigger", Some(&j.acceptance_job));
        let params = [("SNAPSHOT".to_string(), target.to_string())];
        let result = self
            .runtime
            .block_on(client.trigger(&j.acceptance_job, &params));
        let mut status = record::ControllerStatus {
            url: redact_urls(client.root().as_str()),
            reachable: true,
            checked: jiff::Timestamp::now().to_string(),
            attempt: "trigger".into(),
            error: None,
        };
        let stage = match result {
            Ok((_, queue)) => {
                let state = record::AgentState {
                    handed: Some(target.to_string()),
                };
                if let Err(e) = record::save_state(self.store, &state) {
                    r.error(format!("STORE/agent/state.json: {e}"));
                }
                r.stable.why = format!("waiting for the acceptance job's verdict on {target}");
                AcceptanceStage::Triggered {
                    snapshot: target.to_string(),
                    queue,
                }
            }
            Err(e) => {
                let error = format!(
                    "triggering {} for {target} (the next cycle tries again): {}",
                    j.acceptance_job,
                    one_line(&e)
                );
                status.reachable = false;
                status.error = Some(one_line(&e));
                r.error(error.clone());
                r.stable.why = format!("{target} could not be handed to acceptance");
                AcceptanceStage::Failed {
                    snapshot: target.to_string(),
                    error,
                }
            }
        };
        record::save_controller(self.store, &status);
        stage
    }

    fn accept_here(&self, target: &str, r: &mut CycleReport) -> AcceptanceStage {
        let acc = &self.config.acceptance;
        if acc.tests.is_empty() && acc.systems.is_empty() {
            // Nothing to test with: stable must not move, and that is the
            // configuration's state, not a failing cycle.
            let why = format!(
                "no [[acceptance.test]] or [[acceptance.system]] and no [jenkins]: \
                 {target} stays in {}, {} is not moved",
                acc.from, acc.stable
            );
            tracing::warn!("{why}");
            r.stable.why = "nothing is configured to test with".into();
            return AcceptanceStage::NotConfigured { why };
        }
        record::save_progress(self.store, "accept", Some(target));
        let tests = TestArgs::default();
        let req = AcceptRequest {
            cfg: acc,
            tests: &tests,
            snapshot: Some(target.to_string()),
            force: false,
            reason: None,
        };
        match accept::accept(self.store, &req, &Output::quiet()) {
            Ok(report) => {
                r.raise(report.exit_code());
                r.verdict = Some(report.verdict);
                r.stable.moved = report.promoted;
                if report.promoted {
                    r.stable.to = Some(report.snapshot.clone());
                    r.stable.why = format!("acceptance passed {}", report.snapshot);
                } else {
                    r.stable.why = report.not_moved.clone().unwrap_or_default();
                }
                if let Some(e) = &report.promote_error {
                    r.errors.push(format!("tests passed, but {}", one_line(e)));
                }
                let stage = AcceptanceStage::Ran {
                    run: report.run.clone(),
                    testing: report.snapshot.clone(),
                    verdict: report.verdict,
                    failed: report.failed.clone(),
                    count: report.count,
                };
                r.suites.extend(report.suites);
                stage
            }
            Err(e) => {
                r.raise(e.exit_code());
                let error = one_line(&e);
                tracing::error!("acceptance of {target}: {error}");
                r.errors.push(format!("acceptance of {target}: {error}"));
                r.stable.why = format!("{target} could not be judged: {error}");
                AcceptanceStage::Failed {
                    snapshot: target.to_string(),
                    error,
                }
            }
        }
    }
}

/// Mirror progress for logs: a line at most every half minute, so a long
/// first download shows it is alive without flooding the journal.
struct LogProgress {
    name: String,
    state: std::sync::Mutex<(Instant, u64, u64)>,
}

const LOG_EVERY: Duration = Duration::from_secs(30);

impl LogProgress {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            state: std::sync::Mutex::new((Instant::now(), 0, 0)),
        }
    }
}

impl crate::mirror::Progress for LogProgress {
    fn stage(&self, text: &str) {
        tracing::debug!(mirror = self.name, "{text}");
    }

    fn start_downloads(&self, files: u64, bytes: u64) {
        tracing::info!(mirror = self.name, files, bytes, "downloading");
        if let Ok(mut s) = self.state.lock() {
            *s = (Instant::now(), 0, bytes);
        }
    }

    fn downloaded(&self, bytes: u64) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        s.1 += bytes;
        if s.0.elapsed() >= LOG_EVERY {
            s.0 = Instant::now();
            tracing::info!(mirror = self.name, "downloaded {} of {} bytes", s.1, s.2);
        }
    }
}
