//! Shared by the `halo build` tests (tests/build.rs, tests/buildroot.rs):
//! git repositories holding the example package, and the build report.

use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;

use crate::{need_tool, ok, run, TestStore};

/// `examples/halo-hello` of the workspace.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/halo-hello")
}

/// `git -C DIR ARGS` as a fixed test identity; stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    ok(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=t@example.org"])
        .args(args))
}

/// Commits everything in `dir` with the given commit time (seconds since
/// the epoch), so versions built from commits sort as the commits do.
pub fn commit(dir: &Path, message: &str, time: u64) -> String {
    git(dir, &["add", "-A"]);
    let date = format!("@{time} +0000");
    ok(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=t@example.org"])
        .args(["commit", "-q", "-m", message])
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date));
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

/// The example's source tree at `to`, without build products a developer
/// may have left in the workspace.
pub fn copy_example(to: &Path) {
    ok(Command::new("cp").arg("-a").arg(example_dir()).arg(to));
    for junk in ["halo-hello", "test_greet"] {
        let _ = fs::remove_file(to.join(junk));
    }
}

/// A git repository holding the example package, on branch master, one
/// commit.
pub fn example_repo(t: &TestStore) -> PathBuf {
    need_tool("git", "git");
    need_tool("dpkg-buildpackage", "dpkg-dev");
    need_tool("dh", "debhelper");
    let repo = t.root().join("git/halo-hello");
    fs::create_dir_all(repo.parent().expect("parent")).expect("mkdir");
    copy_example(&repo);
    git(&repo, &["init", "-q", "-b", "master"]);
    commit(&repo, "halo-hello 1.0", 1_764_900_000);
    repo
}

/// `halo --json build ARGS`: (exit code, the report of the first source,
/// stderr).
pub fn build(t: &TestStore, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = run(t.halo().args(["--json", "build"]).args(args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reports: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        reports[0].clone(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first file under `dir` whose name ends in `suffix`.
pub fn find_file(dir: &Path, suffix: &str) -> PathBuf {
    let out = ok(Command::new("find")
        .arg(dir)
        .args(["-name", &format!("*{suffix}")]));
    PathBuf::from(
        out.lines()
            .next()
            .unwrap_or_else(|| panic!("no *{suffix} in {}", dir.display())),
    )
}

/// The repositories under a directory, served over git's smart HTTP
/// protocol behind basic auth (`tests/git_http_server.py` and the real
/// git-http-backend), stopped on drop.
pub struct GitHttp {
    child: std::process::Child,
    pub port: u16,
    pub log: PathBuf,
}

impl GitHttp {
    /// Serves `root`, accepting `users` (`USER:PASSWORD`, `USER:*` for a
    /// token as the user); the request log goes to `log`.
    pub fn start(root: &Path, log: &Path, users: &[&str]) -> Self {
        need_tool("python3", "python3");
        need_tool("git", "git");
        assert!(
            Path::new("/usr/lib/git-core/git-http-backend").exists(),
            "git-http-backend is missing (apt-get install git)"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/git_http_server.py");
        let users_file = log.with_extension("users");
        fs::write(&users_file, users.join("\n")).expect("users file");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(root)
            .arg(log)
            .arg(&users_file)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the git HTTP server");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("server stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("server port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("git HTTP server printed {line:?} instead of its port")
        });
        Self {
            child,
            port,
            log: log.to_path_buf(),
        }
    }

    /// Each request: `METHOD PATH STATUS USER`.
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
