//! EDGE: one build in a work directory, from checkout to the `.changes`:
//! fetch (or copy) the tree, set the version, find the orig tarball, then
//! on the host (check the build dependencies, run the unit tests,
//! `dpkg-buildpackage -us -uc`) or in a clean root (`root`: unpack it,
//! install the build dependencies from the channel, run the unit tests and
//! `dpkg-buildpackage -us -uc` inside). Every process's output is streamed
//! line by line to `log` as it runs.
//! Publishing (import, snapshot, channel) is the caller's: this module
//! never touches the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;

use super::git;
use super::plan::{self, ChangelogTop, SourceFormat};
use super::root::{self, RootInfo, RootSource, Unpacked, BUILD_DEPS_SCRIPT, IN_TREE_SCRIPT};
use super::steps::Steps;
use crate::config::VersionMode;
use crate::junit::Outcome;
use crate::process;
use crate::sysroot::chroot::Mode;

/// Where the tree comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    Git { url: String, branch: String },
    Path(PathBuf),
}

/// Everything one build needs to know.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub name: String,
    pub origin: Origin,
    pub test: Option<String>,
    pub version: VersionMode,
    pub build_profiles: Vec<String>,
    pub limits: Limits,
}

/// The bounds of every step of a build (`[build] timeout_minutes`,
/// `memory_mb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: std::time::Duration,
    /// RLIMIT_AS of each process inside, in bytes.
    pub memory: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        crate::config::BuildConfig::default().limits()
    }
}

/// Where the build dependencies, the unit tests and the build run.
#[derive(Debug, Clone)]
pub enum Place<'a> {
    /// On this host, with what it has installed.
    Host,
    /// In a clean root made from a channel of the store.
    Root(RootSource<'a>),
}

/// Why a build stopped. The kind decides the exit code (and Jenkins'
/// verdict): a failed test or build is the commit's fault (1), a setup
/// problem is the installation's (2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    Failed,
    Setup,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Stop {
    pub kind: StopKind,
    /// One line.
    pub message: String,
    /// The tail of the failing step's output.
    pub detail: String,
}

impl Stop {
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            kind: StopKind::Failed,
            message: message.into(),
            detail: String::new(),
        }
    }

    pub fn setup(message: impl Into<String>) -> Self {
        Self {
            kind: StopKind::Setup,
            message: message.into(),
            detail: String::new(),
        }
    }
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub source: String,
    pub version: String,
    pub commit: Option<String>,
    pub changes: PathBuf,
    /// The clean root it was built in (none: on the host).
    pub root: Option<RootInfo>,
}

/// Prints one line of build output (to stderr: stdout is the report's).
pub type Log<'a> = &'a mut dyn FnMut(&str);

/// Runs the build of `spec` in `work` (an empty directory). `checkout`,
/// when given, is the commit the caller already fetched into `work/src`.
pub fn run_build(
    spec: &BuildSpec,
    work: &Path,
    place: &Place<'_>,
    steps: &mut Steps,
    log: Log<'_>,
) -> Result<Built, Stop> {
    let src = work.join("src");
    steps.start("checkout");
    let prepared = checkout(spec, work, &src, log);
    let (commit, top) = match prepared {
        Ok(p) => {
            steps.pass(p.notes);
            (p.commit, p.top)
        }
        Err(stop) => return Err(fail_step(steps, stop)),
    };
    let mut unpacked = None;
    let runner = match place {
        Place::Host => {
            steps.skip("root", "building on the host");
            Runner::Host {
                work,
                mode: Mode::detect(),
                limits: spec.limits,
            }
        }
        Place::Root(src) => {
            steps.start("root");
            // Beside the work directory, not in it: the work directory is
            // bound inside the root.
            let dir = PathBuf::from(format!("{}.root", work.display()));
            match root::prepare(src, &dir, spec.limits, log) {
                Ok(u) => {
                    steps.pass(String::new());
                    Runner::Root {
                        src,
                        root: unpacked.insert(u),
                        work,
                        limits: spec.limits,
                    }
                }
                Err(stop) => return Err(fail_step(steps, stop)),
            }
        }
    };
    // From here on the work directory is the sandbox's to write in.
    if let Err(stop) = runner.give_work() {
        return Err(fail_step(steps, stop));
    }
    steps.start("build-deps");
    match runner.build_deps(spec, log) {
        Ok(output) => steps.pass(output),
        Err(stop) => return Err(fail_step(steps, stop)),
    }
    match &spec.test {
        None => steps.skip("test", "no `test` configured"),
        Some(cmd) => {
            steps.start("test");
            let r = runner
                .command(&["sh", "-c", cmd], &BTreeMap::new())
                .and_then(|c| stream_step(c, spec.limits, log))
                .and_then(|o| o.check(&format!("unit tests `{cmd}`"), StopKind::Failed));
            match r {
                Ok(output) => steps.pass(output),
                Err(stop) => return Err(fail_step(steps, stop)),
            }
        }
    }
    steps.start("build");
    match dpkg_buildpackage(spec, &runner, log) {
        Ok(output) => steps.pass(output),
        Err(stop) => return Err(fail_step(steps, stop)),
    }
    let changes = find_changes(work, &top.source, &top.version).map_err(Stop::failed)?;
    Ok(Built {
        source: top.source,
        version: top.version,
        commit,
        changes,
        root: unpacked.map(|u| u.info.clone()),
    })
}

/// Runs the steps after the checkout where the build happens: always in
/// a sandbox (`crate::sandbox`), the work directory bound read-write at
/// [`root::WORK_IN_ROOT`] and nothing else of the store.
enum Runner<'a> {
    /// The host's own programs, read-only, as an unprivileged user
    /// ([`HOST_BUILD_UID`]): dpkg-buildpackage uses fakeroot.
    Host {
        work: &'a Path,
        mode: Mode,
        limits: Limits,
    },
    Root {
        src: &'a RootSource<'a>,
        root: &'a Unpacked,
        work: &'a Path,
        limits: Limits,
    },
}

/// The user a host build runs as inside its sandbox (a subordinate id
/// outside): never root, never the store's owner.
pub const HOST_BUILD_UID: u32 = 1000;

impl Runner<'_> {
    /// Gives the work directory to the user the steps run as.
    fn give_work(&self) -> Result<(), Stop> {
        let (work, mode, uid) = match self {
            Self::Host { work, mode, .. } => (*work, *mode, HOST_BUILD_UID),
            Self::Root { src, work, .. } => (*work, src.mode, 0),
        };
        let home = work.join("home");
        fs::create_dir_all(&home).map_err(|e| Stop::setup(format!("work directory: {e}")))?;
        let ids = mode
            .ids()
            .map_err(|e| Stop::setup(format!("sandbox: {e}")))?;
        crate::sandbox::chown_tree(work, ids, uid, uid)
            .map_err(|e| Stop::setup(format!("sandbox: {e}")))
    }

    /// `argv` in the tree (`/build/src` inside), with `env`.
    fn command(&self, argv: &[&str], env: &BTreeMap<String, String>) -> Result<Command, Stop> {
        let sandbox = |e: crate::sandbox::SandboxError| Stop::setup(format!("sandbox: {e}"));
        match self {
            Self::Host { work, mode, limits } => {
                // The store holds the work directory; hidden should it lie
                // below a directory of the host's programs.
                let store = work.parent().and_then(Path::parent);
                let mut sb =
                    crate::sandbox::Sandbox::host_tools(store).bind(work, root::WORK_IN_ROOT, true);
                sb.uid = HOST_BUILD_UID;
                sb.gid = HOST_BUILD_UID;
                sb.cwd = format!("{}/src", root::WORK_IN_ROOT);
                sb.env = crate::sandbox::spec::base_env(&format!("{}/home", root::WORK_IN_ROOT));
                sb.env
                    .extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
                sb.memory = limits.memory;
                sb.command(mode.ids().map_err(sandbox)?, argv)
                    .map_err(sandbox)
            }
            Self::Root {
                src: source,
                root,
                work,
                limits,
            } => {
                let mut inner = vec!["sh", "-c", IN_TREE_SCRIPT, "in-tree"];
                inner.extend_from_slice(argv);
                root::command(source, root, work, &inner, env, limits.memory).map_err(sandbox)
            }
        }
    }

    fn limits(&self) -> Limits {
        match self {
            Self::Host { limits, .. } | Self::Root { limits, .. } => *limits,
        }
    }

    fn build_deps(&self, spec: &BuildSpec, log: Log<'_>) -> Result<String, Stop> {
        match self {
            Self::Host { .. } => {
                let mut argv = vec!["dpkg-checkbuilddeps"];
                let profiles = profile_args(spec);
                argv.extend(profiles.iter().map(String::as_str));
                check_build_deps(self.command(&argv, &BTreeMap::new())?, self.limits(), log)
            }
            Self::Root {
                src: source,
                root,
                work,
                limits,
            } => {
                let profiles = profile_args(spec);
                let mut argv = vec!["sh", "-c", BUILD_DEPS_SCRIPT, "build-deps"];
                argv.extend(profiles.iter().map(String::as_str));
                let cmd = root::command(source, root, work, &argv, &BTreeMap::new(), limits.memory)
                    .map_err(|e| Stop::setup(format!("sandbox: {e}")))?;
                install_build_deps(cmd, source, *limits, log)
            }
        }
    }
}

fn fail_step(steps: &mut Steps, stop: Stop) -> Stop {
    let (message, detail) = (stop.message.clone(), stop.detail.clone());
    let outcome = match stop.kind {
        StopKind::Failed => Outcome::Failed { message, detail },
        StopKind::Setup => Outcome::Error { message, detail },
    };
    steps.finish(outcome, stop.detail.clone());
    stop
}

/// How many lines of a failing step's output a report carries.
const TAIL_LINES: usize = 40;

/// A finished process's output and verdict.
struct StepOutput {
    streamed: process::Streamed,
    timeout: std::time::Duration,
}

impl StepOutput {
    /// The output when it succeeded; else a stop of `kind` naming `what`,
    /// with the last lines of its output.
    fn check(self, what: &str, kind: StopKind) -> Result<String, Stop> {
        if self.streamed.success() {
            return Ok(self.streamed.output.text());
        }
        Err(Stop {
            kind,
            message: format!(
                "{what} failed ({})",
                self.streamed.describe(Some(self.timeout))
            ),
            detail: self.streamed.output.tail(TAIL_LINES),
        })
    }
}

fn stream_step(cmd: Command, limits: Limits, log: Log<'_>) -> Result<StepOutput, Stop> {
    process::stream(cmd, Some(limits.timeout), log)
        .map(|streamed| StepOutput {
            streamed,
            timeout: limits.timeout,
        })
        .map_err(|e| Stop::setup(repofs::error_chain(&e)))
}

/// A checked-out tree, ready to build.
struct Prepared {
    commit: Option<String>,
    /// The top changelog entry, after any version change.
    top: ChangelogTop,
    /// What halo itself logged.
    notes: String,
}

fn checkout(spec: &BuildSpec, work: &Path, src: &Path, log: Log<'_>) -> Result<Prepared, Stop> {
    let mut notes = Vec::new();
    let mut note = |line: String, log: &mut dyn FnMut(&str)| {
        log(&line);
        notes.push(line);
    };
    let (commit, time) = match &spec.origin {
        Origin::Git { url, branch } => {
            let c = git::fetch_branch(url, branch, src).map_err(|e| Stop::setup(e.to_string()))?;
            note(
                format!(
                    "halo: checked out {} ({branch} of {})",
                    c.commit,
                    git::redact_url(url)
                ),
                log,
            );
            (Some(c.commit), c.time)
        }
        Origin::Path(dir) => {
            copy_tree(dir, src)?;
            note(format!("halo: copied {}", dir.display()), log);
            (None, jiff::Timestamp::now())
        }
    };
    let changelog = match tree_file(src, "debian/changelog")? {
        Some(text) => text,
        None => {
            return Err(Stop::failed(
                "no debian/changelog in the tree: not a Debian source package",
            ))
        }
    };
    let mut top = load_changelog(&changelog, work)?;
    let format_text = tree_file(src, "debian/source/format")?;
    // dpkg-checkbuilddeps reads debian/control on the host: it too must be
    // the tree's own file (absent is dpkg's to report).
    tree_file(src, "debian/control")?;
    let format = plan::parse_source_format(format_text.as_deref())
        .map_err(|e| Stop::failed(e.to_string()))?;
    if let (VersionMode::Git, Some(sha)) = (spec.version, &commit) {
        let version = plan::plan_git_version(&top.version, time, sha);
        let branch = match &spec.origin {
            Origin::Git { branch, .. } => branch.as_str(),
            Origin::Path(_) => "",
        };
        let entry = plan::render_changelog_entry(&top, &version, sha, branch, time);
        let path = src.join("debian/changelog");
        fs::write(&path, format!("{entry}{changelog}")).map_err(|e| Stop::setup(e.to_string()))?;
        note(
            format!("halo: version {version} (from {})", top.version),
            log,
        );
        top.version = version;
    }
    plan::check_version_format(&top.version, format).map_err(|e| Stop::failed(e.to_string()))?;
    if format == SourceFormat::Quilt {
        let found = super::orig::fetch_orig(spec, &top, src, work).map_err(Stop::setup)?;
        note(format!("halo: orig tarball {found}"), log);
    }
    Ok(Prepared {
        commit,
        top,
        notes: notes.join("\n"),
    })
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), Stop> {
    if !from.is_dir() {
        return Err(Stop::setup(format!(
            "{} is not a directory",
            from.display()
        )));
    }
    fs::create_dir_all(to).map_err(|e| Stop::setup(e.to_string()))?;
    let mut cmd = Command::new("cp");
    cmd.arg("-a").arg(format!("{}/.", from.display())).arg(to);
    let out = process::stream(cmd, None, &mut |_| {})
        .map_err(|e| Stop::setup(repofs::error_chain(&e)))?;
    if !out.success() {
        return Err(Stop::setup(format!(
            "copying {}: {}",
            from.display(),
            out.output.tail(3)
        )));
    }
    Ok(())
}

/// A metadata file of the checked-out tree as text: a regular file inside
/// the tree of bounded size (`repofs::bounded`), `None` when absent. A
/// changelog linked to /etc/shadow or a format linked to /dev/zero is the
/// source's fault, named without its content.
fn tree_file(src: &Path, rel: &str) -> Result<Option<String>, Stop> {
    match repofs::bounded::read_in_tree(src, rel, repofs::bounded::TREE_FILE_LIMIT) {
        Ok(data) => String::from_utf8(data)
            .map(Some)
            .map_err(|_| Stop::failed(format!("{rel} is not UTF-8 text"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Stop::failed(e.to_string())),
    }
}

/// The top entry of `changelog` (the tree's, already read): dpkg-parsechangelog
/// reads a copy in `work`, never a path the tree could have redirected.
fn load_changelog(changelog: &str, work: &Path) -> Result<ChangelogTop, Stop> {
    let copy = work.join(".halo-changelog");
    fs::write(&copy, changelog).map_err(|e| Stop::setup(e.to_string()))?;
    let out = process::run("dpkg-parsechangelog", ["-l".as_ref(), copy.as_os_str()]);
    let _ = fs::remove_file(&copy);
    let out = out.map_err(|e| Stop::failed(format!("debian/changelog: {e}")))?;
    plan::parse_changelog_fields(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| Stop::failed("debian/changelog: dpkg-parsechangelog gave no Source, Version, Distribution or Maintainer"))
}

fn profile_args(spec: &BuildSpec) -> Vec<String> {
    if spec.build_profiles.is_empty() {
        Vec::new()
    } else {
        vec![format!("-P{}", spec.build_profiles.join(","))]
    }
}

fn check_build_deps(cmd: Command, limits: Limits, log: Log<'_>) -> Result<String, Stop> {
    let out = stream_step(cmd, limits, log)?;
    if out.streamed.success() {
        return Ok(out.streamed.output.text());
    }
    let text = out.streamed.output.text();
    let message = match plan::parse_unmet_build_deps(&text) {
        Some(missing) => format!(
            "missing build dependencies: {missing} (install them on the build host: `apt-get build-dep ./` in the tree)"
        ),
        None => format!(
            "dpkg-checkbuilddeps failed ({})",
            out.streamed.describe(Some(limits.timeout))
        ),
    };
    Err(Stop {
        kind: StopKind::Setup,
        message,
        detail: out.streamed.output.tail(TAIL_LINES),
    })
}

/// apt-get build-dep in the root: what it cannot find in the snapshot is
/// named in one line, as a setup error (the channel lacks it; the commit
/// is not at fault).
fn install_build_deps(
    cmd: Command,
    src: &RootSource<'_>,
    limits: Limits,
    log: Log<'_>,
) -> Result<String, Stop> {
    let out = stream_step(cmd, limits, log)?;
    if out.streamed.success() {
        return Ok(out.streamed.output.text());
    }
    let text = out.streamed.output.text();
    let message = match plan::parse_apt_unmet_build_deps(&text) {
        Some(missing) => format!(
            "missing build dependencies: {missing} (not in channel {} at snapshot {}, archives {} of {})",
            src.config.channel,
            src.snapshot.id,
            src.config.archives.join(", "),
            src.config.suite
        ),
        None => {
            let why = text
                .lines()
                .rev()
                .find(|l| l.starts_with("E: "))
                .map(|l| format!(": {l}"))
                .unwrap_or_default();
            format!(
                "apt-get build-dep failed ({}){why}",
                out.streamed.describe(Some(limits.timeout))
            )
        }
    };
    Err(Stop {
        kind: StopKind::Setup,
        message,
        detail: out.streamed.output.tail(TAIL_LINES),
    })
}

fn dpkg_buildpackage(spec: &BuildSpec, runner: &Runner<'_>, log: Log<'_>) -> Result<String, Stop> {
    let mut options: Vec<String> = std::env::var("DEB_BUILD_OPTIONS")
        .map(|o| o.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    // Debug symbol packages belong in a separate debug archive, not next
    // to the program in the component.
    options.push("noautodbgsym".into());
    if spec.build_profiles.iter().any(|p| p == "nocheck") {
        options.push("nocheck".into());
    }
    let mut env = BTreeMap::from([("DEB_BUILD_OPTIONS".to_string(), options.join(" "))]);
    if !spec.build_profiles.is_empty() {
        env.insert(
            "DEB_BUILD_PROFILES".to_string(),
            spec.build_profiles.join(" "),
        );
    }
    let profiles = profile_args(spec);
    let mut argv = vec!["dpkg-buildpackage", "-us", "-uc"];
    argv.extend(profiles.iter().map(String::as_str));
    let cmd = runner.command(&argv, &env)?;
    stream_step(cmd, runner.limits(), log)?.check("dpkg-buildpackage", StopKind::Failed)
}

/// The `.changes` dpkg-buildpackage wrote beside the tree.
fn find_changes(work: &Path, source: &str, version: &str) -> Result<PathBuf, String> {
    let no_epoch = version.split_once(':').map_or(version, |(_, v)| v);
    let prefix = format!("{source}_{no_epoch}_");
    let entries = fs::read_dir(work).map_err(|e| e.to_string())?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".changes"))
        })
        .collect();
    found.sort();
    found
        .pop()
        .ok_or_else(|| format!("dpkg-buildpackage left no {prefix}*.changes"))
}
