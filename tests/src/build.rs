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
