//! `halo build NAME...|--all|--path DIR` and `halo sources status`: the
//! arguments resolved into build jobs, the build workflow
//! (`crate::workflow::build`) called, its reports printed (stdout, stderr,
//! `--json`, `--junit`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use repofs::Store;
use serde::Serialize;

use super::{load_config, UserError};
use crate::build::git;
use crate::build::plan;
use crate::build::run::{BuildSpec, Origin};
use crate::cli::{BuildArgs, SourcesCommand};
use crate::config::VersionMode;
use crate::junit::render_junit;
use crate::output::Output;
use crate::repository::Repository;
use crate::workflow::build::{
    build_all, config_jobs, configured_roots, store_mount, BuildOptions, BuildReport, BuildStatus,
    Destination,
};

pub use crate::workflow::build::build_path;

pub fn run(
    store: &dyn Repository,
    config: Option<&Path>,
    args: &BuildArgs,
    out: &Output,
) -> Result<ExitCode> {
    // Builds publish snapshots: their Releases carry [publish] snapshots_url.
    let published = super::optional_config(store, config)
        .ok()
        .flatten()
        .map(|c| super::publishing_repository(store, Some(&c)));
    let store = published.as_deref().unwrap_or(store);
    let jobs: Vec<(BuildSpec, Destination)> = match &args.path {
        Some(dir) => vec![path_job(store, config, dir, args)?],
        None => {
            let (config, path) = load_config(store, config)?;
            let chosen =
                config_jobs(&config, &args.names, args.all, args.host).map_err(UserError)?;
            if chosen.is_empty() {
                return Err(
                    UserError(format!("{} configures no [[source]]", path.display())).into(),
                );
            }
            chosen
        }
    };
    for (_, dest) in &jobs {
        if let Some(c) = &dest.channel {
            store
                .load_channel(c)
                .with_context(|| format!("channel {c}"))?;
        }
    }
    let options = BuildOptions {
        force: args.force,
        retry: args.retry,
        no_publish: args.no_publish,
    };
    let mut printed = Ok(());
    let done = build_all(store, &jobs, options, &mut |report| {
        if printed.is_ok() {
            printed = print_report(report, out);
        }
    });
    printed?;
    if let Some(file) = &args.junit {
        fs_err::write(file, render_junit(&done.suites))
            .with_context(|| "writing the JUnit report")?;
    }
    out.json(&done.reports)?;
    let code = done
        .reports
        .iter()
        .map(BuildReport::exit_code)
        .max()
        .unwrap_or(0);
    Ok(ExitCode::from(code))
}

fn path_job(
    store: &dyn Repository,
    config: Option<&Path>,
    dir: &Path,
    args: &BuildArgs,
) -> Result<(BuildSpec, Destination)> {
    let (root, mount, configured, limits, keep_versions) = if args.root {
        let (config, path) = load_config(store, config)?;
        let root =
            config.build.root.clone().ok_or_else(|| {
                UserError(format!("--root: {} has no [build] root", path.display()))
            })?;
        let limits = config.build.limits();
        (
            Some(root),
            store_mount(&config),
            configured_roots(&config),
            limits,
            config.keep_versions(&args.archive),
        )
    } else {
        // Without --root a configuration is optional; its [build] bounds
        // still apply when there is one, as does the archive's retention.
        let (limits, keep) = match load_config(store, config) {
            Ok((config, _)) => (config.build.limits(), config.keep_versions(&args.archive)),
            Err(_)
                if config.is_none()
                    && !store
                        .local_store()
                        .is_some_and(|s| s.root().join("halo.toml").exists()) =>
            {
                (Default::default(), None)
            }
            Err(e) => return Err(e),
        };
        (None, None, Vec::new(), limits, keep)
    };
    let dir = std::path::absolute(dir)?;
    if !dir.join("debian/changelog").is_file() {
        return Err(UserError(format!(
            "{} has no debian/changelog: not a Debian source tree",
            dir.display()
        ))
        .into());
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| repofs::debian::name::check_segment("source", n).is_ok())
        .unwrap_or_else(|| "path".into());
    Ok((
        BuildSpec {
            name,
            origin: Origin::Path(dir),
            test: args.test.clone(),
            version: VersionMode::Changelog,
            build_profiles: Vec::new(),
            limits,
        },
        Destination {
            archive: args.archive.clone(),
            dist: args.dist.clone(),
            component: args.component.clone(),
            channel: args.channel.clone(),
            root,
            mount,
            configured_roots: configured,
            keep_versions,
        },
    ))
}

fn print_report(r: &BuildReport, out: &Output) -> Result<()> {
    let version = r.version.as_deref().unwrap_or("?");
    match r.status {
        BuildStatus::Built => {
            let mut line = format!("built {} {version}", r.source);
            if let Some(c) = &r.commit {
                line.push_str(&format!(" (commit {})", &c[..c.len().min(12)]));
            }
            if let Some(s) = &r.snapshot {
                line.push_str(&format!(" -> snapshot {s}"));
            }
            if let (Some(c), true) = (&r.channel, r.moved) {
                line.push_str(&format!(", {c} moved"));
            }
            if let Some(w) = &r.work_dir {
                line.push_str(&format!(" (not published; files in {})", w.display()));
            }
            out.line(line)?;
        }
        BuildStatus::Skipped => out.line(format!(
            "skipped {}: {}",
            r.source,
            r.message.as_deref().unwrap_or("")
        ))?,
        BuildStatus::Failed | BuildStatus::Error => out.error_line(format!(
            "build {}: {}",
            r.source,
            r.message.as_deref().unwrap_or("failed")
        ))?,
    }
    Ok(())
}

/// One line of `halo sources status`.
#[derive(Debug, Serialize)]
struct SourceStatus {
    source: String,
    git: String,
    branch: String,
    head: Option<String>,
    last_commit: Option<String>,
    last_version: Option<String>,
    last_snapshot: Option<String>,
    /// Whether `halo build --all` (and the agent) would build it now.
    due: bool,
    /// The branch head failed to build (or its tests failed): not rebuilt
    /// until the branch moves, or `halo build --retry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<FailedAt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct FailedAt {
    commit: String,
    step: String,
    reason: String,
    when: String,
}

pub fn sources(
    store: &Store,
    config: Option<&Path>,
    cmd: &SourcesCommand,
    out: &Output,
) -> Result<ExitCode> {
    let SourcesCommand::Status = cmd;
    let (config, _) = load_config(store, config)?;
    let mut rows = Vec::new();
    for s in &config.sources {
        let records = store.load_builds(&s.name)?;
        let (head, error) = match git::load_head(&s.git, &s.branch) {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let standing = plan::plan_standing(&records, head.as_deref());
        let last = standing.last;
        let failed = standing.failed.map(|r| FailedAt {
            commit: r.commit.clone().unwrap_or_default(),
            step: r.failure.as_ref().map_or("?".into(), |f| f.step.clone()),
            reason: r
                .failure
                .as_ref()
                .map_or("failed".into(), |f| f.reason.clone()),
            when: r.when.clone(),
        });
        let due = standing.due;
        rows.push(SourceStatus {
            source: s.name.clone(),
            git: git::redact_url(&s.git),
            branch: s.branch.clone(),
            head,
            last_commit: last.and_then(|r| r.commit.clone()),
            last_version: last.and_then(|r| r.version.clone()),
            last_snapshot: last.and_then(|r| r.snapshot.clone()),
            due,
            failed,
            error,
        });
    }
    let short = |c: &Option<String>| {
        c.as_deref()
            .map_or("-".to_string(), |c| c[..c.len().min(12)].to_string())
    };
    for r in &rows {
        out.line(format!(
            "{}\t{}\thead {}\tbuilt {} {}\t{}",
            r.source,
            r.branch,
            short(&r.head),
            short(&r.last_commit),
            r.last_version.as_deref().unwrap_or("-"),
            match (&r.error, &r.failed, r.due) {
                (Some(e), _, _) => format!("error: {e}"),
                (None, Some(f), _) => format!(
                    "failed at {} ({}): {}",
                    short(&Some(f.commit.clone())),
                    f.step,
                    f.reason
                ),
                (None, None, true) => "due".into(),
                (None, None, false) => "up to date".into(),
            }
        ))?;
    }
    out.json(&rows)?;
    let unreachable = rows.iter().filter(|r| r.error.is_some()).count();
    if unreachable > 0 {
        out.error_line(format!("{unreachable} source(s) did not answer"))?;
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
