//! The one way halo runs other programs: logs the argv, captures output,
//! and on failure returns an error carrying argv, exit status and the tail
//! of stderr, so the user sees why `dpkg-deb` (say) refused.

use std::ffi::OsStr;
use std::process::{Command, Output};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run {program}: {source} (is it installed?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{argv}` failed ({status}): {stderr_tail}")]
    Failed {
        argv: String,
        status: std::process::ExitStatus,
        stderr_tail: String,
    },
}

/// Runs `program args...` to completion.
pub fn run<I, S>(program: &str, args: I) -> Result<Output, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let argv = std::iter::once(program.to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    tracing::debug!(%argv, "running");
    let output = Command::new(program)
        .args(&args)
        .output()
        .map_err(|source| ProcessError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(ProcessError::Failed {
            argv,
            status: output.status,
            stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
        });
    }
    Ok(output)
}
