//! The build workflow: one configured source (or a tree) fetched, built
//! (`crate::build::run`), imported, snapshotted, its channel moved by
//! compare-and-swap, and the build recorded. Every outcome is a
//! [`BuildReport`] with a typed [`BuildStatus`]; nothing here prints (the
//! build's own output streams to stderr through `run_build`'s log). Used by
//! `halo build`, the agent's cycle and the quickstart alike.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use repofs::model::channel::MoveRequest;
use repofs::model::PromoteError;
use repofs::model::{Action, Transition};
use repofs::store::builds::{BuildFailure, BuildRecord, BuildStatus as RecordStatus};
use repofs::store::import::Target;
use serde::{Deserialize, Serialize};

use super::exit::{EXIT_INFRA, EXIT_OK, EXIT_REJECTED};
use crate::build::git;
use crate::build::root::{RootInfo, RootSource};
use crate::build::run::{run_build, BuildSpec, Origin, Place, Stop, StopKind};
use crate::build::steps::{StepRecord, Steps};
use crate::config::{Config, RootConfig, SourceConfig, VersionMode};
use crate::junit::{Outcome, Suite};
use crate::repository::{Claim, Repository};
use crate::sysroot::chroot::Mode;
use crate::sysroot::repo::Repo;

/// A build's destination in the store.
#[derive(Debug, Clone)]
pub struct Destination {
    pub archive: String,
    pub dist: String,
    pub component: String,
    pub channel: Option<String>,
    /// The clean root to build in; none: on the host.
    pub root: Option<RootConfig>,
    /// A repofs mount of the store (`[acceptance] mount`), read by roots.
    pub mount: Option<PathBuf>,
    /// Every root the configuration names: cached roots of any other
    /// configuration are left over from an old one and removed.
    pub configured_roots: Vec<RootConfig>,
    /// The archive's `keep_versions` (local stores; a server uses its own).
    pub keep_versions: Option<usize>,
}

/// What became of one source. Stored nowhere as text: the agent's cycle
/// and `halo build` read the same enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildStatus {
    /// Built and published (or built only, with --no-publish).
    Built,
    /// This commit was built already.
    Skipped,
    /// Its tests or its build failed: the source's fault.
    Failed,
    /// It could not be built: git unreachable, a root, the store.
    Error,
}

impl BuildStatus {
    /// 0 built or skipped, 1 the source failed, 2 setup.
    pub fn exit_code(self) -> u8 {
        match self {
            BuildStatus::Built | BuildStatus::Skipped => EXIT_OK,
            BuildStatus::Failed => EXIT_REJECTED,
            BuildStatus::Error => EXIT_INFRA,
        }
    }
}

impl std::fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BuildStatus::Built => "built",
            BuildStatus::Skipped => "skipped",
            BuildStatus::Failed => "failed",
            BuildStatus::Error => "error",
        })
    }
}

/// What became of one source.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub source: String,
    pub status: BuildStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The channel was moved to `snapshot` by this build.
    pub moved: bool,
    pub packages: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The clean root it was built in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<RootInfo>,
    /// With --no-publish: where the built files are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<PathBuf>,
    /// Skipped because this commit failed before (not rebuilt until the
    /// branch moves, or `--retry`): the recorded failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_before: Option<BuildFailure>,
    pub steps: Vec<StepRecord>,
}

impl BuildReport {
    pub fn new(source: &str) -> Self {
        Self {
            source: source.to_string(),
            status: BuildStatus::Built,
            commit: None,
            version: None,
            snapshot: None,
            channel: None,
            moved: false,
            packages: Vec::new(),
            message: None,
            root: None,
            work_dir: None,
            failed_before: None,
            steps: Vec::new(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.status.exit_code()
    }
}

/// The sources chosen, each built in turn; `each` sees every report as it
/// is made (to print it), the suites are the JUnit of the steps.
pub struct BuildRun {
    pub reports: Vec<BuildReport>,
    pub suites: Vec<Suite>,
}

/// What `build_all` is asked to do besides the jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Build even a commit that was built already.
    pub force: bool,
    /// Build again a commit whose build failed.
    pub retry: bool,
    pub no_publish: bool,
}

/// Builds every job in turn; a failing source never stops the others.
pub fn build_all(
    store: &dyn Repository,
    jobs: &[(BuildSpec, Destination)],
    options: BuildOptions,
    each: &mut dyn FnMut(&BuildReport),
) -> BuildRun {
    let mut run = BuildRun {
        reports: Vec::new(),
        suites: Vec::new(),
    };
    for (spec, dest) in jobs {
        let mut steps = Steps::new(&spec.name);
        let mut report = build_one(store, spec, dest, options, &mut steps);
        report.steps = steps.done.clone();
        each(&report);
        run.suites.push(steps.to_suite());
        run.reports.push(report);
    }
    run
}

/// Every configured source chosen by name (or all), as build jobs.
pub fn config_jobs(
    config: &Config,
    names: &[String],
    all: bool,
    host: bool,
) -> Result<Vec<(BuildSpec, Destination)>, String> {
    Ok(config
        .select_sources(names, all)?
        .into_iter()
        .map(|s| config_job(config, s, host))
        .collect())
}

/// Builds the tree in `dir` and publishes it to `rustedhalo/trusty/main`
/// (and `channel`): what the quickstart shows. Returns (version, snapshot).
pub fn build_path(
    store: &dyn Repository,
    dir: &Path,
    channel: Option<&str>,
) -> Result<(String, String)> {
    let dest = Destination {
        archive: "rustedhalo".into(),
        dist: "trusty".into(),
        component: "main".into(),
        channel: channel.map(str::to_string),
        root: None,
        mount: None,
        configured_roots: Vec::new(),
        keep_versions: None,
    };
    let spec = BuildSpec {
        name: "halo-hello".into(),
        origin: Origin::Path(dir.to_path_buf()),
        test: None,
        version: VersionMode::Changelog,
        build_profiles: Vec::new(),
        limits: Default::default(),
    };
    let mut steps = Steps::new(&spec.name);
    let report = build_one(store, &spec, &dest, BuildOptions::default(), &mut steps);
    match (report.status, report.version, report.snapshot) {
        (BuildStatus::Built, Some(v), Some(s)) => Ok((v, s)),
        _ => Err(anyhow::anyhow!(
            "building {}: {}",
            dir.display(),
            report.message.unwrap_or_else(|| "failed".into())
        )),
    }
}

/// `[acceptance] mount`: the repofs mount of this store, if any.
/// `[build] root` and every source's own root.
pub fn configured_roots(config: &Config) -> Vec<RootConfig> {
    config
        .build
        .root
        .iter()
        .chain(config.sources.iter().filter_map(|s| s.root.as_ref()))
        .cloned()
        .collect()
}

pub fn store_mount(config: &Config) -> Option<PathBuf> {
    config.acceptance.mount.as_ref().map(PathBuf::from)
}

pub fn config_job(config: &Config, s: &SourceConfig, host: bool) -> (BuildSpec, Destination) {
    let root = if host {
        None
    } else {
        s.build_root(config.build.root.as_ref()).cloned()
    };
    (
        BuildSpec {
            name: s.name.clone(),
            origin: Origin::Git {
                url: s.git.clone(),
                branch: s.branch.clone(),
            },
            test: s.test.clone(),
            version: s.version,
            build_profiles: s.build_profiles.clone(),
            limits: config.build.limits(),
        },
        Destination {
            archive: s.archive.clone(),
            dist: s.dist.clone(),
            component: s.component.clone(),
            channel: s.channel.clone(),
            root,
            mount: store_mount(config),
            configured_roots: configured_roots(config),
            keep_versions: config.keep_versions(&s.archive),
        },
    )
}

/// Builds and publishes one source, never failing: every outcome is a report.
pub fn build_one(
    store: &dyn Repository,
    spec: &BuildSpec,
    dest: &Destination,
    options: BuildOptions,
    steps: &mut Steps,
) -> BuildReport {
    let (force, no_publish) = (options.force, options.no_publish);
    let mut report = BuildReport::new(&spec.name);
    report.channel = dest.channel.clone();
    // The channel's position before anything is built: the move at the
    // end is a compare-and-swap against it.
    let before = match &dest.channel {
        // A held channel does not take the build: refused before anything
        // is built, naming the hold (not the commit's failure: not recorded).
        Some(c) => match store.load_channel(c) {
            Ok(repofs::model::ChannelPointer {
                hold: Some(hold), ..
            }) if !no_publish => {
                let held = repofs::model::acceptance::GateError::Held {
                    channel: c.clone(),
                    hold,
                };
                return stopped(report, steps, "checkout", Stop::setup(held.to_string()));
            }
            Ok(p) => p.snapshot,
            Err(e) => {
                return stopped(
                    report,
                    steps,
                    "checkout",
                    Stop::setup(format!("channel {c}: {e}")),
                )
            }
        },
        None => None,
    };
    // The branch head, to skip a commit built (or failed) before, and to
    // record a failure against.
    let mut head = None;
    if let Origin::Git { url, branch } = &spec.origin {
        steps.start("checkout");
        let h = match git::load_head(url, branch) {
            Ok(h) => h,
            Err(e) => return stopped_current(report, steps, Stop::setup(e.to_string())),
        };
        report.commit = Some(h.clone());
        if !force {
            match skip_known(store, &spec.name, &h, options.retry, &mut report) {
                Ok(Some(why)) => {
                    steps.finish(Outcome::Skipped { message: why }, String::new());
                    return report;
                }
                Ok(None) => {}
                Err(e) => return stopped_current(report, steps, Stop::setup(e.to_string())),
            }
        }
        head = Some(h);
        // Not done: the real checkout step follows and is timed on its own.
        steps.done.clear();
    }
    let work = match WorkDir::create(store, &spec.name) {
        Ok(w) => w,
        Err(e) => {
            return stopped(
                report,
                steps,
                "checkout",
                Stop::setup(format!("work directory: {e:#}")),
            )
        }
    };
    let mut log = |line: &str| crate::output::stderr_line(line);
    let built = match &dest.root {
        None => run_build(spec, work.path(), &Place::Host, steps, &mut log),
        Some(root) => match RootTree::provide(store, root, dest.mount.as_deref(), &spec.name) {
            Ok(tree) => {
                let cache = store.state_dir().join("buildroots");
                let place = Place::Root(RootSource {
                    config: root,
                    snapshot: &tree.snapshot,
                    repo: &tree.repo.path,
                    keyring: &tree.keyring,
                    cache: &cache,
                    configured: &dest.configured_roots,
                    mode: Mode::detect(),
                });
                run_build(spec, work.path(), &place, steps, &mut log)
            }
            Err(e) => {
                let why = format!("build root from channel {}: {e:#}", root.channel);
                return stopped(report, steps, "root", Stop::setup(why));
            }
        },
    };
    let built = match built {
        Ok(b) => b,
        Err(stop) => {
            record_failure(store, spec, dest, head.as_deref(), &stop, steps);
            return failed(report, stop);
        }
    };
    report.root = built.root.clone();
    report.commit = built.commit.clone();
    report.version = Some(built.version.clone());
    if no_publish {
        steps.skip("publish", "--no-publish");
        report.work_dir = Some(work.keep());
        return report;
    }
    steps.start("publish");
    match publish(
        store,
        spec,
        dest,
        &built.changes,
        before.as_deref(),
        &built.commit,
        &built.version,
        &mut report,
    ) {
        Ok(text) => steps.pass(text),
        Err(stop) => {
            steps.finish(
                Outcome::Error {
                    message: stop.message.clone(),
                    detail: String::new(),
                },
                String::new(),
            );
            record_failure(store, spec, dest, head.as_deref(), &stop, steps);
            return failed(report, stop);
        }
    }
    report
}

/// Whether the branch head `head` needs no build: published already, or
/// failed before (unless `retry`). Returns why, having filled the report.
fn skip_known(
    store: &dyn Repository,
    source: &str,
    head: &str,
    retry: bool,
    report: &mut BuildReport,
) -> Result<Option<String>, repofs::Error> {
    if let Some(done) = store.find_build(source, head)? {
        let why = format!(
            "commit {head} was built already as {} (snapshot {})",
            done.version.as_deref().unwrap_or("?"),
            done.snapshot.as_deref().unwrap_or("?")
        );
        report.status = BuildStatus::Skipped;
        report.version = done.version;
        report.snapshot = done.snapshot;
        report.message = Some(why.clone());
        return Ok(Some(why));
    }
    if retry {
        return Ok(None);
    }
    match store.last_attempt(source, head)? {
        Some(r) if r.is_failed() => {
            let failure = r.failure.unwrap_or(BuildFailure {
                step: "?".into(),
                reason: "failed".into(),
            });
            let why = format!(
                "failed at {head} ({} step: {}): not rebuilt until the branch moves (or halo build --retry {source})",
                failure.step, failure.reason
            );
            report.status = BuildStatus::Skipped;
            report.version = r.version;
            report.message = Some(why.clone());
            report.failed_before = Some(failure);
            Ok(Some(why))
        }
        _ => Ok(None),
    }
}

/// Records a build that failed through the commit's fault (its build or
/// tests failed), so it is not built again every cycle. A failing
/// surrounding (a missing tool, the network, the store) is not recorded:
/// the next run tries again. A tree built with `--path` has no commit and
/// is not recorded.
fn record_failure(
    store: &dyn Repository,
    spec: &BuildSpec,
    dest: &Destination,
    head: Option<&str>,
    stop: &Stop,
    steps: &Steps,
) {
    let (StopKind::Failed, Some(commit)) = (&stop.kind, head) else {
        return;
    };
    let step = steps.done.last().map_or("build", |s| s.name);
    let record = BuildRecord {
        source: spec.name.clone(),
        commit: Some(commit.to_string()),
        status: RecordStatus::Failed,
        version: None,
        archive: dest.archive.clone(),
        dist: dest.dist.clone(),
        component: dest.component.clone(),
        snapshot: None,
        channel: dest.channel.clone(),
        failure: Some(BuildFailure {
            step: step.to_string(),
            reason: stop.message.clone(),
        }),
        when: jiff::Timestamp::now().to_string(),
        who: crate::commands::whoami(),
    };
    if let Err(e) = store.record_build(&record) {
        tracing::error!(source = spec.name, "cannot record the failed build: {e}");
    }
}

fn failed(mut report: BuildReport, stop: Stop) -> BuildReport {
    report.status = match stop.kind {
        StopKind::Failed => BuildStatus::Failed,
        StopKind::Setup => BuildStatus::Error,
    };
    report.message = Some(stop.message);
    report
}

fn stopped(report: BuildReport, steps: &mut Steps, step: &'static str, stop: Stop) -> BuildReport {
    steps.start(step);
    stopped_current(report, steps, stop)
}

fn stopped_current(report: BuildReport, steps: &mut Steps, stop: Stop) -> BuildReport {
    steps.finish(
        Outcome::Error {
            message: stop.message.clone(),
            detail: String::new(),
        },
        String::new(),
    );
    failed(report, stop)
}

/// Import, snapshot, channel move, record. Returns what it did, as text.
#[allow(clippy::too_many_arguments)]
fn publish(
    store: &dyn Repository,
    spec: &BuildSpec,
    dest: &Destination,
    changes: &Path,
    before: Option<&str>,
    commit: &Option<String>,
    version: &str,
    report: &mut BuildReport,
) -> Result<String, Stop> {
    let target = Target {
        archive: &dest.archive,
        dist: &dest.dist,
        component: &dest.component,
    };
    let imported = store
        .import(&target, &[changes.to_path_buf()], dest.keep_versions)
        .map_err(|e| {
            let kind = if e.is_user_error() {
                StopKind::Failed
            } else {
                StopKind::Setup
            };
            Stop {
                kind,
                message: format!("import: {e}"),
                detail: String::new(),
            }
        })?;
    report.packages = imported
        .added
        .iter()
        .chain(&imported.unchanged)
        .cloned()
        .collect();
    let created = store
        .create_snapshot()
        .map_err(|e| Stop::setup(format!("snapshot: {e}")))?;
    report.snapshot = Some(created.id.clone());
    let mut text = format!(
        "imported {} into {}/{}/{}; snapshot {}",
        report.packages.join(", "),
        dest.archive,
        dest.dist,
        dest.component,
        created.id
    );
    if let Some(channel) = &dest.channel {
        let (moved, note) = move_channel(store, channel, &created.id, before, &spec.name, version)
            .map_err(|e| Stop::setup(format!("channel {channel}: {e}")))?;
        report.moved = moved;
        text.push_str(&format!("; {note}"));
    }
    store
        .record_build(&BuildRecord {
            source: spec.name.clone(),
            commit: commit.clone(),
            status: RecordStatus::Published,
            version: Some(version.to_string()),
            archive: dest.archive.clone(),
            dist: dest.dist.clone(),
            component: dest.component.clone(),
            snapshot: Some(created.id.clone()),
            channel: dest.channel.clone(),
            failure: None,
            when: jiff::Timestamp::now().to_string(),
            who: crate::commands::whoami(),
        })
        .map_err(|e| Stop::setup(format!("recording the build: {e}")))?;
    Ok(text)
}

/// Moves `channel` to `snapshot` by compare-and-swap against `before`.
/// When someone moved it meanwhile: a newer snapshot than ours already
/// holds this build (snapshots freeze everything imported before them), so
/// it stays; an older one is replaced, again by compare-and-swap.
fn move_channel(
    store: &dyn Repository,
    channel: &str,
    snapshot: &str,
    before: Option<&str>,
    source: &str,
    version: &str,
) -> Result<(bool, String), repofs::Error> {
    let who = crate::commands::whoami();
    let reason = format!("halo build {source} {version}");
    let mut expect = before.map_or_else(|| "none".to_string(), str::to_string);
    for _ in 0..5 {
        let when = jiff::Timestamp::now().to_string();
        let req = MoveRequest {
            channel,
            target: snapshot,
            expect: Some(&expect),
            action: Action::Promote,
            who: &who,
            when: &when,
            reason: Some(&reason),
            lease: None,
            force: false,
        };
        match store.move_channel(&req) {
            Ok(Transition::Unchanged) => {
                return Ok((false, format!("{channel} already at {snapshot}")))
            }
            Ok(Transition::Move { .. }) => {
                return Ok((
                    true,
                    format!("{channel}: {} -> {snapshot}", before.unwrap_or("-")),
                ))
            }
            Err(repofs::Error::Promote(PromoteError::Stale { actual, .. })) => match actual {
                Some(a) if a.as_str() >= snapshot => {
                    return Ok((
                        false,
                        format!("{channel} moved meanwhile to {a}, which holds this build"),
                    ))
                }
                other => expect = other.unwrap_or_else(|| "none".into()),
            },
            Err(e) => return Err(e),
        }
    }
    Err(repofs::Error::Usage(format!(
        "{channel} kept moving under the build: not moved to {snapshot}"
    )))
}

/// What a build root reads: the channel's snapshot, its APT tree (an
/// export is removed when this is dropped) and the store's key.
pub(crate) struct RootTree {
    snapshot: repofs::model::Snapshot,
    repo: Repo,
    keyring: PathBuf,
}

impl RootTree {
    fn provide(
        store: &dyn Repository,
        root: &RootConfig,
        mount: Option<&Path>,
        source: &str,
    ) -> Result<Self> {
        let id = store
            .channel_target(&root.channel)
            .with_context(|| format!("channel {}", root.channel))?;
        let snapshot = store.load_snapshot(&id)?;
        let keyring = store.keyring()?;
        let name = format!("buildroot-{source}-{}", std::process::id());
        let repo = Repo::provide(store, &id, mount, &name)?;
        Ok(Self {
            snapshot,
            repo,
            keyring,
        })
    }
}

/// A fresh directory under the work directory (`STORE/work/`), removed
/// when dropped unless kept.
/// It and its build root (`<dir>.root`) are claimed in the store first
/// (`Store::claim_work`): a build killed outright leaves both behind, and
/// `halo fsck` reports them and `halo gc` removes them.
pub(crate) struct WorkDir {
    path: PathBuf,
    keep: bool,
    /// Dropped after the directories are removed (fields drop after
    /// `drop`), or with `keep`: a kept directory is the operator's.
    claims: Vec<Claim>,
}

impl WorkDir {
    fn create(store: &dyn Repository, name: &str) -> anyhow::Result<Self> {
        let base = store.work_dir();
        fs_err::create_dir_all(&base)?;
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S");
        let dir = format!("{name}-{stamp}-{}", std::process::id());
        let run = format!("build of {name}");
        let claims = vec![
            store.claim_work(&dir, Some(&run))?,
            store.claim_work(&format!("{dir}.root"), Some(&run))?,
        ];
        let path = base.join(&dir);
        fs_err::create_dir(&path)?;
        Ok(Self {
            path,
            keep: false,
            claims,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = fs_err::remove_dir_all(&self.path) {
                tracing::warn!("cannot remove the work directory: {e}");
                // Its claim stays: gc removes it once this process is gone.
                for c in &mut self.claims {
                    c.leave_for_gc();
                }
            }
        }
    }
}
