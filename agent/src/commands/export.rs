//! `halo export`: a snapshot or channel as a plain APT tree on disk.

use std::process::ExitCode;

use anyhow::{Context, Result};
use repofs::Store;

use crate::cli::ExportArgs;
use crate::output::Output;

pub fn run(store: &Store, args: &ExportArgs, out: &Output) -> Result<ExitCode> {
    let id = match (&args.snapshot, &args.channel) {
        (Some(id), _) => id.clone(),
        (None, Some(channel)) => store.channel_target(channel)?,
        (None, None) => unreachable!("clap requires --snapshot or --channel"),
    };
    let spinner = out.spinner("exporting");
    let report = store
        .export(&id, &args.dir)
        .with_context(|| format!("exporting snapshot {id} to {}", args.dir.display()))?;
    spinner.finish_and_clear();
    out.line(format!(
        "exported snapshot {id} to {}: {} files, {} bytes ({} linked, {} copied)",
        args.dir.display(),
        report.files,
        report.bytes,
        report.linked,
        report.copied
    ))?;
    out.json(&serde_json::json!({"snapshot": id, "dir": args.dir, "report": report}))?;
    Ok(ExitCode::SUCCESS)
}
