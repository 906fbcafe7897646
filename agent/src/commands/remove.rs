//! `halo remove`: packages out of an archive's working state.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use repofs::model::edit::{MirrorFilter, PackageSpec};
use repofs::store::edit::{remove, DistTarget};
use repofs::Store;

use crate::cli::RemoveArgs;
use crate::output::Output;

pub fn run(
    store: &Store,
    config: Option<&Path>,
    args: &RemoveArgs,
    out: &Output,
) -> Result<ExitCode> {
    let specs = parse_specs(&args.packages)?;
    let target = DistTarget {
        archive: &args.archive,
        dist: &args.dist,
        component: args.component.as_deref(),
    };
    // A mirror's archive: its `packages` filter decides (without one, or
    // without a configuration naming the mirror, the store refuses).
    let mirror = match store.load_mirror_record(&args.archive)? {
        Some(_) => super::load_config(store, config)
            .ok()
            .and_then(|(c, _)| c.mirrors.into_iter().find(|m| m.name == args.archive)),
        None => None,
    };
    let filter = mirror.as_ref().and_then(|m| {
        m.packages.as_deref().map(|packages| MirrorFilter {
            packages,
            with_deps: m.with_deps,
        })
    });
    let report = remove(store, &target, &specs, filter.as_ref())?;
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
