//! `halo import`: packages into an archive's working state.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use repofs::store::import::{import, Target};
use repofs::Store;

use crate::cli::ImportArgs;
use crate::commands::UserError;
use crate::output::Output;

pub fn run(store: &Store, args: &ImportArgs, out: &Output) -> Result<ExitCode> {
    let target = Target {
        archive: &args.archive,
        dist: &args.dist,
        component: &args.component,
    };
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
    }
    let bar = out.progress(files.len() as u64, "importing");
    let report = import(store, &target, &files, &mut |_| bar.inc(1))?;
    bar.finish_and_clear();
    for key in &report.added {
        out.line(format!("added {key}"))?;
    }
    for key in &report.unchanged {
        out.line(format!("unchanged {key}"))?;
    }
    out.json(&report)?;
    Ok(ExitCode::SUCCESS)
}
