//! `halo copy`: packages from one archive/dist into another.

use std::process::ExitCode;

use anyhow::Result;
use repofs::store::edit::{copy, DistTarget};
use repofs::Store;

use super::remove::parse_specs;
use super::UserError;
use crate::cli::CopyArgs;
use crate::output::Output;

/// `ARCHIVE/DIST` of `--from` and `--to`.
fn split_place<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str)> {
    match text.split_once('/') {
        Some((a, d)) if !a.is_empty() && !d.is_empty() && !d.contains('/') => Ok((a, d)),
        _ => Err(UserError(format!("{flag} {text:?}: write ARCHIVE/DIST")).into()),
    }
}

pub fn run(store: &Store, args: &CopyArgs, out: &Output) -> Result<ExitCode> {
    let specs = parse_specs(&args.packages)?;
    let (from_archive, from_dist) = split_place("--from", &args.from)?;
    let (to_archive, to_dist) = split_place("--to", &args.to)?;
    let from = DistTarget {
        archive: from_archive,
        dist: from_dist,
        component: args.component.as_deref(),
    };
    let to = DistTarget {
        archive: to_archive,
        dist: to_dist,
        component: None,
    };
    let report = copy(store, &from, &to, &specs, args.with_deps)?;
    for r in &report.copied {
        out.line(format!("copied {r}"))?;
    }
    for r in &report.unchanged {
        out.line(format!("unchanged {r}"))?;
    }
    out.json(&report)?;
    Ok(ExitCode::SUCCESS)
}
