//! `halo fsck` and `halo gc`.

use std::process::ExitCode;

use anyhow::Result;
use repofs::Store;

use crate::cli::GcArgs;
use crate::output::Output;

pub fn fsck(store: &Store, out: &Output) -> Result<ExitCode> {
    let bar = out.progress(0, "checking");
    let report = store.fsck(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    for p in &report.problems {
        out.line(format!("PROBLEM {}: {}", p.path.display(), p.what))?;
    }
    // Not damage: what a dead run left behind, for gc.
    for l in &report.leftovers {
        out.line(format!("LEFTOVER {l} (gc removes it)"))?;
    }
    out.line(format!(
        "{} blobs, {} snapshots, {} channels checked; {} temp files, {} leftover work directories (gc removes them); {}",
        report.blobs,
        report.snapshots,
        report.channels,
        report.temp_files,
        report.leftovers.len(),
        if report.is_sound() {
            "store is sound".to_string()
        } else {
            format!("{} problems", report.problems.len())
        }
    ))?;
    out.json(&report)?;
    if report.is_sound() {
        Ok(ExitCode::SUCCESS)
    } else {
        // A damaged store is a failing system, not a user's mistake: 2, as
        // every other command reports damage.
        out.error_line(format!(
            "store is damaged: {} problems",
            report.problems.len()
        ))?;
        Ok(ExitCode::from(2))
    }
}

pub fn gc(store: &Store, args: &GcArgs, out: &Output) -> Result<ExitCode> {
    let report = store.gc(args.keep_snapshots, args.keep_previous)?;
    for l in &report.leftovers {
        out.line(format!("removed leftover {}", l.display()))?;
    }
    out.line(format!(
        "removed {} blobs ({} bytes), {} snapshots, {} temp files, {} leftover work directories ({} bytes)",
        report.blobs,
        report.bytes,
        report.snapshots.len(),
        report.temp_files,
        report.leftovers.len(),
        report.leftover_bytes
    ))?;
    out.json(&report)?;
    if !report.leftovers_kept.is_empty() {
        for k in &report.leftovers_kept {
            out.error_line(format!("leftover not removed: {k}"))?;
        }
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
