//! `halo import`: packages into an archive's working state.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use repofs::store::import::{import_keeping, ImportReport, Target};
use repofs::Store;

use crate::cli::ImportArgs;
use crate::commands::UserError;
use crate::output::Output;
use crate::repository::Repository;

pub fn run(
    store: &Store,
    config: Option<&std::path::Path>,
    args: &ImportArgs,
    out: &Output,
) -> Result<ExitCode> {
    let keep = crate::commands::optional_config(store, config)?
        .and_then(|c| c.keep_versions(&args.archive));
    let target = target(args);
    let files = inputs(args)?;
    let bar = out.progress(files.len() as u64, "importing");
    let report = import_keeping(store, &target, &files, keep, &mut |_| bar.inc(1))?;
    bar.finish_and_clear();
    print(&report, out)
}

/// `halo --server URL import`: the files uploaded to `halo serve` and
/// imported there, all or nothing; the server's configuration decides
/// `keep_versions`.
pub fn run_remote(repo: &dyn Repository, args: &ImportArgs, out: &Output) -> Result<ExitCode> {
    let files = inputs(args)?;
    let report = repo.import(&target(args), &files, None)?;
    print(&report, out)
}

fn target(args: &ImportArgs) -> Target<'_> {
    Target {
        archive: &args.archive,
        dist: &args.dist,
        component: &args.component,
    }
}

/// The files given, then those `--files-from` lists.
fn inputs(args: &ImportArgs) -> Result<Vec<PathBuf>> {
    let mut files = args.files.clone();
    if let Some(list) = &args.files_from {
        // The list is the user's input like the files it names: missing,
        // a directory, not UTF-8 are their mistakes (exit 1), said once.
        let text = if list.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(list)
        }
        .map_err(|e| UserError(format!("--files-from {}: {e}", list.display())))?;
        files.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(PathBuf::from),
        );
        // The list is held once, as paths, through the import.
        drop(text);
        files.shrink_to_fit();
    }
    Ok(files)
}

fn print(report: &ImportReport, out: &Output) -> Result<ExitCode> {
    for key in &report.added {
        out.line(format!("added {key}"))?;
    }
    for key in &report.unchanged {
        out.line(format!("unchanged {key}"))?;
    }
    for key in &report.dropped {
        out.line(format!("dropped {key} (keep_versions)"))?;
    }
    out.json(report)?;
    Ok(ExitCode::SUCCESS)
}
