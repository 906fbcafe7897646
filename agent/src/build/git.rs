//! EDGE: the `git` command, for the few things a build needs from a
//! repository: the head of a branch (`ls-remote`, no checkout), a shallow
//! fetch of it, an upstream tag, the pristine-tar branch, and
//! `git archive` of a tag as a reproducible orig tarball.
//!
//! git never prompts (`GIT_TERMINAL_PROMPT=0`): an unreachable or
//! protected repository is an error at once, not a hung build. URLs are
//! printed with any password removed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{self, ProcessError};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git repository {url} does not answer or refused: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("git repository {url} has no branch {branch}")]
    NoBranch { url: String, branch: String },
    #[error("git {what}: {detail}")]
    Failed { what: String, detail: String },
}

/// `url` with the password of `scheme://user:password@host` removed.
pub fn redact_url(url: &str) -> String {
    crate::redact::redact_urls(url)
}

fn git(dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        // A server that stalls must fail the build, not hang it.
        .args(["-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=60"]);
    c
}

fn run(mut cmd: Command, what: &str, url: Option<&str>) -> Result<String, GitError> {
    let output = cmd.output().map_err(|e| GitError::Failed {
        what: what.to_string(),
        detail: format!("cannot run git: {e} (apt-get install git)"),
    })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    // git's first `fatal:` line says what went wrong; the lines after it
    // are generic advice.
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let detail = lines
        .iter()
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
        .or(lines.last())
        .map_or("no message", |l| l)
        .to_string();
    Err(match url {
        Some(u) => GitError::Unreachable {
            url: redact_url(u),
            detail: redact_in(&detail, u),
        },
        None => GitError::Failed {
            what: what.to_string(),
            detail,
        },
    })
}

/// git repeats the URL in its messages: never let a password through.
fn redact_in(text: &str, url: &str) -> String {
    text.replace(url, &redact_url(url))
}

/// The commit `branch` points at in `url`, without fetching anything.
pub fn load_head(url: &str, branch: &str) -> Result<String, GitError> {
    let mut cmd = git(None);
    cmd.args(["ls-remote", "--heads", "--", url])
        .arg(format!("refs/heads/{branch}"));
    let out = run(cmd, "ls-remote", Some(url))?;
    out.lines()
        .find_map(|l| l.split_whitespace().next().map(str::to_string))
        .ok_or_else(|| GitError::NoBranch {
            url: redact_url(url),
            branch: branch.to_string(),
        })
}

/// Whether `url` has the ref `name` (`refs/tags/...`, `refs/heads/...`).
pub fn has_ref(url: &str, name: &str) -> Result<bool, GitError> {
    let mut cmd = git(None);
    cmd.args(["ls-remote", "--", url, name]);
    Ok(!run(cmd, "ls-remote", Some(url))?.trim().is_empty())
}

/// A checked-out commit.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub dir: PathBuf,
    pub commit: String,
    pub time: jiff::Timestamp,
}

/// Fetches the head of `branch` (depth 1) into a new repository at `dir`
/// and checks it out.
pub fn fetch_branch(url: &str, branch: &str, dir: &Path) -> Result<Checkout, GitError> {
    let mut init = git(None);
    init.args(["init", "-q"]).arg(dir);
    run(init, "init", None)?;
    let mut fetch = git(Some(dir));
    fetch
        .args(["fetch", "-q", "--depth", "1", "--no-tags", "--", url])
        .arg(format!("+refs/heads/{branch}:refs/remotes/origin/{branch}"));
    run(fetch, "fetch", Some(url))?;
    let mut co = git(Some(dir));
    co.args(["checkout", "-q", "--detach"])
        .arg(format!("refs/remotes/origin/{branch}"));
    run(co, "checkout", None)?;
    let mut log = git(Some(dir));
    log.args(["log", "-1", "--format=%H %ct"]);
    let out = run(log, "log", None)?;
    let mut words = out.split_whitespace();
    let (Some(commit), Some(secs)) = (words.next(), words.next()) else {
        return Err(GitError::Failed {
            what: "log".into(),
            detail: format!("unexpected output {out:?}"),
        });
    };
    let time = secs
        .parse::<i64>()
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .ok_or_else(|| GitError::Failed {
            what: "log".into(),
            detail: format!("bad commit time {secs:?}"),
        })?;
    Ok(Checkout {
        dir: dir.to_path_buf(),
        commit: commit.to_string(),
        time,
    })
}

/// Fetches one ref of `url` into the repository at `dir` under the same
/// name; `shallow` fetches only its tip.
pub fn fetch_ref(url: &str, dir: &Path, name: &str, shallow: bool) -> Result<(), GitError> {
    let mut fetch = git(Some(dir));
    fetch.args(["fetch", "-q", "--no-tags"]);
    if shallow {
        fetch.args(["--depth", "1"]);
    }
    fetch.args(["--", url]).arg(format!("+{name}:{name}"));
    run(fetch, "fetch", Some(url)).map(drop)
}

/// Writes `treeish` as `<prefix>/...` into a gzip tarball at `out`. git
/// stamps every entry with the commit's time and gzips without a name or
/// time, so the same tag always gives the same bytes.
pub fn archive(dir: &Path, treeish: &str, prefix: &str, out: &Path) -> Result<(), GitError> {
    let mut cmd = git(Some(dir));
    cmd.args(["archive", "--format=tar.gz"])
        .arg(format!("--prefix={prefix}/"))
        .arg("-o")
        .arg(out)
        .arg(treeish);
    run(cmd, "archive", None).map(drop)
}

/// The tarballs the pristine-tar branch of the repository at `dir` holds.
pub fn pristine_tar_list(dir: &Path) -> Result<Vec<String>, ProcessError> {
    let mut cmd = Command::new("pristine-tar");
    cmd.current_dir(dir).arg("list");
    let out = process::stream(cmd, None, &mut |_| {})?;
    if !out.success() {
        return Err(ProcessError::Failed {
            argv: "pristine-tar list".into(),
            status: out.status,
            stderr_tail: out.output.tail(3),
        });
    }
    Ok(out
        .output
        .text()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Regenerates `tarball` from the pristine-tar branch into `out_dir`.
pub fn pristine_tar_checkout(
    dir: &Path,
    tarball: &str,
    out_dir: &Path,
) -> Result<(), ProcessError> {
    let mut cmd = Command::new("pristine-tar");
    cmd.current_dir(dir)
        .arg("checkout")
        .arg(out_dir.join(tarball));
    let out = process::stream(cmd, None, &mut |_| {})?;
    if out.success() {
        Ok(())
    } else {
        Err(ProcessError::Failed {
            argv: format!("pristine-tar checkout {tarball}"),
            status: out.status,
            stderr_tail: out.output.tail(3),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("https://u:secret@git.example.org/r.git"),
            "https://u:***@git.example.org/r.git"
        );
        assert_eq!(
            redact_url("https://git.example.org/r.git"),
            "https://git.example.org/r.git"
        );
        assert_eq!(redact_url("/srv/git/r"), "/srv/git/r");
        assert_eq!(
            redact_in(
                "fatal: could not read from https://u:pw@h/r",
                "https://u:pw@h/r"
            ),
            "fatal: could not read from https://u:***@h/r"
        );
    }
}
