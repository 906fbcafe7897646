//! `halo remove`: packages out of an archive's working state.

use std::process::ExitCode;

use anyhow::Result;
use repofs::model::edit::PackageSpec;
use repofs::store::edit::{remove, DistTarget};
use repofs::Store;

use crate::cli::RemoveArgs;
use crate::output::Output;

pub fn run(store: &Store, args: &RemoveArgs, out: &Output) -> Result<ExitCode> {
    let specs = parse_specs(&args.packages)?;
    let target = DistTarget {
        archive: &args.archive,
        dist: &args.dist,
        component: args.component.as_deref(),
    };
    let report = remove(store, &target, &specs)?;
    for r in &report.removed {
        out.line(format!("removed {r}"))?;
    }
    out.json(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// `PKG[=VERSION][/ARCH]` arguments; a malformed one is the user's mistake.
pub fn parse_specs(texts: &[String]) -> Result<Vec<PackageSpec>> {
    texts
        .iter()
        .map(|t| PackageSpec::parse(t).map_err(|e| repofs::Error::from(e).into()))
        .collect()
}
