//! EDGE: the `git` command, for the few things a build needs from a
//! repository: the head of a branch (`ls-remote`, no checkout), a shallow
//! fetch of it, an upstream tag, the pristine-tar branch, and
//! `git archive` of a tag as a reproducible orig tarball.
//!
//! git never prompts (`GIT_TERMINAL_PROMPT=0`): an unreachable or
//! protected repository is an error at once, not a hung build. URLs are
//! printed with any password removed.
//!
//! Credentials never reach git's argv (which every user reads in
//! `/proc/PID/cmdline`, `ps`): the userinfo of `https://user:pw@host/r.git`
//! (or `https://TOKEN@host/r.git`) is taken out of the URL git is given,
//! and handed to git through its credential interface instead, by a helper
//! scoped to that URL's origin that prints a 0600 file halo writes and
//! removes when git is done (`Credentials`). A file, not an environment
//! variable: the environment of git and of every process it starts
//! (remote helpers, the build's own tools) would carry it, and a file
//! readable by root only, gone after the command, is the narrower door.
//! Nothing is written to the checkout's `.git/config` (git is given the
//! URL on the command line, without credentials, and no remote is added).

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
        .env_remove(CREDENTIALS_VAR)
        // A server that stalls must fail the build, not hang it.
        .args(["-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=60"]);
    c
}

/// The variable naming the credentials file, for the helper only.
const CREDENTIALS_VAR: &str = "HALO_GIT_CREDENTIALS";

/// A URL split into what git may see and the credentials it must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitUrl {
    /// The URL without userinfo.
    pub bare: String,
    /// `scheme://host[:port]`, what the helper is scoped to.
    pub origin: String,
    /// (user, password), percent-decoded; the password is empty for a
    /// token given as the user.
    pub credentials: Option<(String, String)>,
}

/// `scheme://[user[:password]@]host[:port]/path` taken apart. PURE.
/// Anything else (a local path, `git@host:path`) is returned as it is.
pub fn split_url(url: &str) -> SplitUrl {
    let plain = |url: &str| SplitUrl {
        bare: url.to_string(),
        origin: String::new(),
        credentials: None,
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return plain(url);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return SplitUrl {
            origin: format!("{scheme}://{authority}"),
            ..plain(url)
        };
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    SplitUrl {
        bare: format!("{scheme}://{host}{path}"),
        origin: format!("{scheme}://{host}"),
        credentials: Some((percent_decode(user), percent_decode(password))),
    }
}

/// `%40` -> `@`, as git decodes a URL's userinfo.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The credentials of one git command: a 0600 file in a 0700 directory
/// of its own, removed on drop, and the `-c` options that make git ask a
/// helper reading it (only for the URL's origin; every helper configured
/// elsewhere is reset first, so none stores the password either).
struct Credentials {
    _dir: tempfile::TempDir,
    file: PathBuf,
    origin: String,
}

impl Credentials {
    fn write(split: &SplitUrl) -> Result<Option<Self>, GitError> {
        let Some((user, password)) = &split.credentials else {
            return Ok(None);
        };
        let failed = |detail: String| GitError::Failed {
            what: "credentials".into(),
            detail,
        };
        if [user, password].iter().any(|v| v.contains(['\n', '\0'])) {
            return Err(failed(format!(
                "the credentials in {} hold a newline",
                redact_url(&split.bare)
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("halo-git-")
            .tempdir()
            .map_err(|e| failed(format!("a private directory: {e}")))?;
        let file = dir.path().join("credentials");
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .map_err(|e| failed(format!("{}: {e}", file.display())))?;
        f.write_all(format!("username={user}\npassword={password}\n").as_bytes())
            .map_err(|e| failed(format!("{}: {e}", file.display())))?;
        Ok(Some(Self {
            _dir: dir,
            file,
            origin: split.origin.clone(),
        }))
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env(CREDENTIALS_VAR, &self.file).args([
            "-c".to_string(),
            "credential.helper=".to_string(),
            "-c".to_string(),
            format!(
                "credential.{}.helper=!f() {{ if test \"$1\" = get; then cat \"${CREDENTIALS_VAR}\"; fi; }}; f",
                self.origin
            ),
        ]);
    }
}

/// A git command talking to `url`: the URL without credentials (what the
/// command is given), and the credentials kept for as long as it runs.
fn remote(
    url: &str,
    dir: Option<&Path>,
) -> Result<(Command, String, Option<Credentials>), GitError> {
    let split = split_url(url);
    let creds = Credentials::write(&split)?;
    let mut cmd = git(dir);
    if let Some(c) = &creds {
        c.apply(&mut cmd);
    }
    Ok((cmd, split.bare, creds))
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
    let (mut cmd, bare, _creds) = remote(url, None)?;
    cmd.args(["ls-remote", "--heads", "--", &bare])
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
    let (mut cmd, bare, _creds) = remote(url, None)?;
    cmd.args(["ls-remote", "--", &bare, name]);
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
    let (mut fetch, bare, creds) = remote(url, Some(dir))?;
    fetch
        .args(["fetch", "-q", "--depth", "1", "--no-tags", "--", &bare])
        .arg(format!("+refs/heads/{branch}:refs/remotes/origin/{branch}"));
    run(fetch, "fetch", Some(url))?;
    drop(creds);
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
    let (mut fetch, bare, _creds) = remote(url, Some(dir))?;
    fetch.args(["fetch", "-q", "--no-tags"]);
    if shallow {
        fetch.args(["--depth", "1"]);
    }
    fetch.args(["--", &bare]).arg(format!("+{name}:{name}"));
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

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        let s = split_url("https://u:p%40ss@git.example.org:8443/r.git");
        assert_eq!(s.bare, "https://git.example.org:8443/r.git");
        assert_eq!(s.origin, "https://git.example.org:8443");
        assert_eq!(s.credentials, Some(("u".into(), "p@ss".into())));
        let s = split_url("https://ghp_TOKEN@github.com/o/r");
        assert_eq!(s.bare, "https://github.com/o/r");
        assert_eq!(s.credentials, Some(("ghp_TOKEN".into(), String::new())));
        for plain in ["https://h/r.git", "/srv/git/r", "git@host:r.git"] {
            let s = split_url(plain);
            assert_eq!((s.bare.as_str(), s.credentials), (plain, None));
        }
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn the_helper_is_scoped_and_argv_holds_no_secret() {
        let (cmd, bare, creds) = remote("http://u:s3cret@127.0.0.1:8080/r.git", None).unwrap();
        let creds = creds.unwrap();
        let argv: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(!argv.join(" ").contains("s3cret") && !bare.contains("s3cret"));
        assert!(
            argv.iter()
                .any(|a| a.starts_with("credential.http://127.0.0.1:8080.helper=!")),
            "{argv:?}"
        );
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&creds.file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let file = creds.file.clone();
        drop(creds);
        assert!(!file.exists(), "removed when the command is done");
    }
}
