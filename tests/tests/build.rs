//! `halo build` from local git repositories made in the test, with the real
//! git, dpkg-buildpackage, debhelper and apt: the example package builds
//! and installs from trusty-unstable, a `3.0 (quilt)` package gets its orig
//! tarball from its upstream tag and its patch applied, failures publish
//! nothing, an unchanged commit is not rebuilt, `version = "git"` gives each
//! commit a higher version that apt prefers.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;
use halo_tests::build::{build, commit, example_repo, find_file, git};
use halo_tests::{need_tool, ok, run, Apt, TestStore};

fn write_config(t: &TestStore, sources: &str) {
    fs::write(t.store().join("halo.toml"), sources).unwrap();
}

fn source(name: &str, repo: &Path, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\ngit = \"{}\"\narchive = \"rustedhalo\"\ndist = \"trusty\"\ncomponent = \"main\"\n{extra}\n",
        repo.display()
    )
}

fn snapshots(t: &TestStore) -> String {
    t.ok(&["snapshot", "list"])
}

/// apt, reading the channel from an export with the store's key.
fn apt_for(t: &TestStore, channel: &str, name: &str) -> (Apt, PathBuf) {
    let export = t.root().join(format!("export-{name}"));
    t.ok(&["export", "--channel", channel, export.to_str().unwrap()]);
    let apt = Apt::new(
        &t.root().join(format!("apt-{name}")),
        &format!(
            "deb [signed-by={}] file:{}/rustedhalo trusty main\n",
            t.store().join("keys/repo.gpg").display(),
            export.display()
        ),
    );
    apt.update();
    (apt, export)
}

/// The last `halo:` line of stderr: the one-line error.
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("halo: "))
        .unwrap_or("")
}

#[test]
fn example_builds_from_git_installs_from_unstable_and_each_commit_builds_higher() {
    let t = TestStore::new();
    let repo = example_repo(&t);
    write_config(
        &t,
        &source(
            "halo-hello",
            &repo,
            "test = \"make check\"\nchannel = \"trusty-unstable\"\nversion = \"git\"",
        ),
    );
    let junit = t.root().join("junit.xml");
    let (code, r, stderr) = build(&t, &["halo-hello", "--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_eq!(r["status"], "built", "{r}");
    // The unit tests' and dpkg-buildpackage's output streamed to stderr.
    assert!(
        stderr.contains("0 failures") && stderr.contains("dpkg-buildpackage"),
        "{stderr}"
    );
    let v1 = r["version"].as_str().unwrap().to_string();
    assert!(v1.starts_with("1.0+git20251205"), "{v1}");
    let snap1 = r["snapshot"].as_str().unwrap().to_string();
    assert_eq!(t.channel("trusty-unstable"), snap1);
    let xml = fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 6, "{xml}");
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );

    let (apt, export) = apt_for(&t, "trusty-unstable", "1");
    assert_eq!(apt.candidate("halo-hello").as_deref(), Some(v1.as_str()));
    // The host's packages count as installed, so the shared libraries the
    // program depends on (libc6) resolve as they would on a real client.
    fs::copy("/var/lib/dpkg/status", apt.dir.join("status")).unwrap();
    ok(apt
        .command("apt-get")
        .args(["install", "--download-only", "-y", "halo-hello"]));
    // The program apt would install runs and greets.
    let deb = find_file(&export, ".deb");
    let root = t.root().join("unpacked");
    ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let greeting = ok(Command::new(root.join("usr/bin/halo-hello")).arg("halo"));
    assert_eq!(greeting.trim(), "Hello, halo!");

    // The same commit again: skipped, no snapshot, nothing moves.
    let before = snapshots(&t);
    let (code, r, _) = build(&t, &["halo-hello"]);
    assert_eq!((code, r["status"].as_str()), (0, Some("skipped")), "{r}");
    assert_eq!(snapshots(&t), before);
    let status = t.ok(&["--json", "sources", "status"]);
    assert!(status.contains("\"due\": false"), "{status}");

    // A new commit: a higher version, which apt prefers.
    fs::write(repo.join("NEWS"), "second commit\n").unwrap();
    commit(&repo, "news", 1_764_900_600);
    let status = t.ok(&["--json", "sources", "status"]);
    assert!(status.contains("\"due\": true"), "{status}");
    let (code, r, stderr) = build(&t, &["--all"]);
    assert_eq!(code, 0, "{r}\n{stderr}");
    let v2 = r["version"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    assert!(
        ok(Command::new("dpkg").args(["--compare-versions", &v2, "gt", &v1])).is_empty(),
        "{v2} > {v1}"
    );
    let (apt, _) = apt_for(&t, "trusty-unstable", "2");
    assert_eq!(apt.candidate("halo-hello").as_deref(), Some(v2.as_str()));
    t.assert_sound();
}

#[test]
fn quilt_package_takes_its_orig_tarball_from_the_upstream_tag_and_applies_its_patch() {
    let t = TestStore::new();
    need_tool("git", "git");
    need_tool("dh", "debhelper");
    let repo = t.root().join("git/greeter");
    fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "master"]);
    fs::write(
        repo.join("greeter.sh"),
        "#!/bin/sh\necho \"upstream greeting\"\n",
    )
    .unwrap();
    commit(&repo, "upstream 2.0~rc1", 1_764_800_000);
    // DEP-14: `~` in the version is `_` in the tag.
    git(&repo, &["tag", "upstream/2.0_rc1"]);
    let d = repo.join("debian");
    fs::create_dir_all(d.join("source")).unwrap();
    fs::create_dir_all(d.join("patches")).unwrap();
    fs::write(d.join("source/format"), "3.0 (quilt)\n").unwrap();
    fs::write(d.join("changelog"), "greeter (2.0~rc1-1) trusty; urgency=medium\n\n  * Packaged.\n\n -- Test <t@example.org>  Sat, 05 Dec 2026 12:00:00 +0000\n").unwrap();
    fs::write(d.join("control"), "Source: greeter\nSection: misc\nPriority: optional\nMaintainer: Test <t@example.org>\nBuild-Depends: debhelper-compat (= 13)\nStandards-Version: 4.6.2\nRules-Requires-Root: no\n\nPackage: greeter\nArchitecture: all\nDepends: ${misc:Depends}\nDescription: greets\n A quilt test package.\n").unwrap();
    fs::write(d.join("rules"), "#!/usr/bin/make -f\n%:\n\tdh $@\n").unwrap();
    halo_tests::set_mode(&d.join("rules"), 0o755);
    fs::write(d.join("install"), "greeter.sh usr/bin\n").unwrap();
    fs::write(d.join("patches/series"), "greeting.patch\n").unwrap();
    fs::write(
        d.join("patches/greeting.patch"),
        "Description: a Debian greeting\n--- a/greeter.sh\n+++ b/greeter.sh\n@@ -1,2 +1,2 @@\n #!/bin/sh\n-echo \"upstream greeting\"\n+echo \"patched greeting\"\n",
    )
    .unwrap();
    commit(&repo, "debian packaging", 1_764_800_100);
    write_config(&t, &source("greeter", &repo, ""));
    let (code, r, stderr) = build(&t, &["greeter"]);
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert!(
        stderr.contains("greeter_2.0~rc1.orig.tar.gz from tag upstream/2.0_rc1"),
        "{stderr}"
    );
    // The source package holds the orig tarball, and the binary the patch.
    let export = t.root().join("export");
    t.ok(&[
        "export",
        "--snapshot",
        r["snapshot"].as_str().unwrap(),
        export.to_str().unwrap(),
    ]);
    let orig = find_file(&export, ".orig.tar.gz");
    let listing = ok(Command::new("tar").arg("tzf").arg(&orig));
    assert!(listing.contains("greeter-2.0~rc1/greeter.sh"), "{listing}");
    assert!(!listing.contains("debian/"), "{listing}");
    let deb = find_file(&export, ".deb");
    let root = t.root().join("unpacked");
    ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let script = fs::read_to_string(root.join("usr/bin/greeter.sh")).unwrap();
    assert!(script.contains("patched greeting"), "{script}");
    // Patches stay unapplied in git: the tree halo built from is untouched.
    let in_git = git(&repo, &["show", "HEAD:greeter.sh"]);
    assert!(in_git.contains("upstream greeting"));

    // Without the tag, the error names every place that was tried.
    git(&repo, &["tag", "-d", "upstream/2.0_rc1"]);
    let (code, r, stderr) = build(&t, &["greeter", "--force"]);
    assert_eq!(code, 2, "{r}");
    let line = error_line(&stderr);
    assert!(
        line.contains("no orig tarball for greeter 2.0~rc1")
            && line.contains("pristine-tar branch (absent)")
            && line.contains("tag upstream/2.0_rc1 (absent)"),
        "{line}"
    );
}

#[test]
fn a_failing_unit_test_publishes_nothing() {
    let t = TestStore::new();
    let repo = example_repo(&t);
    write_config(
        &t,
        &source(
            "halo-hello",
            &repo,
            "test = \"echo 'FAIL: greet() said hullo'; exit 3\"\nchannel = \"trusty-unstable\"",
        ),
    );
    let (channels, snaps) = (t.ok(&["channel", "list"]), snapshots(&t));
    let junit = t.root().join("junit.xml");
    let (code, r, stderr) = build(&t, &["halo-hello", "--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 1, "{r}\n{stderr}");
    assert_eq!(r["status"], "failed");
    let line = error_line(&stderr);
    assert!(
        line.contains("build halo-hello: unit tests") && line.contains("exit status 3"),
        "{line}"
    );
    assert!(
        stderr.contains("FAIL: greet() said hullo"),
        "streamed: {stderr}"
    );
    assert_eq!(t.ok(&["channel", "list"]), channels);
    assert_eq!(snapshots(&t), snaps);
    let xml = fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure message=\"unit tests"), "{xml}");
    assert!(xml.contains("FAIL: greet() said hullo"), "{xml}");
    // Recorded as the commit's failure: sources status says so, and the
    // commit is not built again until the branch moves (issue 18).
    let head = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "sources", "status"])).unwrap();
    assert_eq!(status[0]["due"], false, "{status}");
    assert_eq!(status[0]["failed"]["commit"], head.as_str(), "{status}");
    assert_eq!(status[0]["failed"]["step"], "test", "{status}");
    let text = t.ok(&["sources", "status"]);
    assert!(
        text.contains(&format!("failed at {} (test): unit tests", &head[..12])),
        "{text}"
    );
    let (code, r, stderr) = build(&t, &["--all"]);
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_eq!(r["status"], "skipped", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains(&format!("failed at {head}"))
            && r["failed_before"]["step"] == "test",
        "{r}"
    );
    assert!(!stderr.contains("FAIL: greet()"), "not run again: {stderr}");
    // --retry builds it again (and it fails again).
    let (code, r, stderr) = build(&t, &["halo-hello", "--retry"]);
    assert_eq!(code, 1, "{r}");
    assert!(stderr.contains("FAIL: greet() said hullo"), "{stderr}");
    // A new commit is due and built.
    fs::write(repo.join("NEWS"), "fixed\n").unwrap();
    commit(&repo, "fix", 1_764_900_700);
    let status = t.ok(&["--json", "sources", "status"]);
    assert!(status.contains("\"due\": true"), "{status}");
    write_config(
        &t,
        &source("halo-hello", &repo, "channel = \"trusty-unstable\""),
    );
    let (code, r, stderr) = build(&t, &["--all"]);
    assert_eq!(
        (code, r["status"].as_str()),
        (0, Some("built")),
        "{r}\n{stderr}"
    );
    t.assert_sound();
}

#[test]
fn the_package_test_suite_fails_the_build_unless_nocheck() {
    let t = TestStore::new();
    let repo = example_repo(&t);
    let test = repo.join("src/test_greet.c");
    let broken = fs::read_to_string(&test)
        .unwrap()
        .replace("\"Hello, halo!\"", "\"Hello, HALO!\"");
    fs::write(&test, broken).unwrap();
    commit(&repo, "break the test", 1_764_900_100);
    write_config(
        &t,
        &source("halo-hello", &repo, "channel = \"trusty-unstable\""),
    );
    let (code, r, stderr) = build(&t, &["halo-hello"]);
    assert_eq!(code, 1, "{r}");
    assert!(
        error_line(&stderr).contains("dpkg-buildpackage failed"),
        "{stderr}"
    );
    assert!(stderr.contains("FAIL: got \"Hello, halo!\""), "{stderr}");
    assert_eq!(t.channel("trusty-unstable"), "-");
    write_config(
        &t,
        &source(
            "halo-hello",
            &repo,
            "channel = \"trusty-unstable\"\nbuild_profiles = [\"nocheck\"]",
        ),
    );
    // The failed commit is remembered: not built again by itself...
    let (code, r, _) = build(&t, &["halo-hello"]);
    assert_eq!((code, r["status"].as_str()), (0, Some("skipped")), "{r}");
    assert_eq!(t.channel("trusty-unstable"), "-");
    // ... until asked to retry it.
    let (code, r, stderr) = build(&t, &["halo-hello", "--retry"]);
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_ne!(t.channel("trusty-unstable"), "-");
}

#[test]
fn missing_build_dependencies_are_one_line_and_exit_2() {
    let t = TestStore::new();
    let repo = example_repo(&t);
    let control = repo.join("debian/control");
    let text = fs::read_to_string(&control).unwrap().replace(
        "debhelper-compat (= 13)",
        "debhelper-compat (= 13), halo-no-such-package (>= 9)",
    );
    fs::write(&control, text).unwrap();
    commit(&repo, "needs more", 1_764_900_200);
    write_config(&t, &source("halo-hello", &repo, ""));
    let snaps = snapshots(&t);
    let (code, r, stderr) = build(&t, &["halo-hello"]);
    assert_eq!(code, 2, "{r}");
    let line = error_line(&stderr);
    assert!(
        line.contains("missing build dependencies: halo-no-such-package (>= 9)"),
        "{line}"
    );
    assert_eq!(snapshots(&t), snaps);
    // Not the commit's failure (exit 2): not recorded, tried again.
    let (code, r, _) = build(&t, &["halo-hello"]);
    assert_eq!((code, r["status"].as_str()), (2, Some("error")), "{r}");
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "sources", "status"])).unwrap();
    assert_eq!(status[0]["due"], true, "{status}");
    assert!(status[0]["failed"].is_null(), "{status}");
}

#[test]
fn an_unreachable_repository_exits_2_without_showing_its_password() {
    let t = TestStore::new();
    write_config(
        &t,
        &source(
            "gone",
            Path::new("http://builder:s3cret@127.0.0.1:9/gone.git"),
            "",
        ),
    );
    let (code, r, stderr) = build(&t, &["gone"]);
    assert_eq!(code, 2, "{r}");
    let line = error_line(&stderr);
    assert!(
        line.contains("git repository http://builder:***@127.0.0.1:9/gone.git does not answer"),
        "{line}"
    );
    assert!(
        !stderr.contains("s3cret") && !r.to_string().contains("s3cret"),
        "{stderr}"
    );
    let status = run(t.halo().args(["sources", "status"]));
    assert_eq!(status.status.code(), Some(2));
    // Bad configuration and unknown names are refused before anything runs.
    let out = run(t.halo().args(["build", "nope"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no source \"nope\""));
}

/// Every process's argv (`/proc/*/cmdline`, what `ps` shows), polled until
/// `stop`: the lines holding `needle` and how many named `seen` (proof the
/// poll ran while git did).
fn watch_argv(
    needles: Vec<String>,
    seen: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(Vec<String>, usize)> {
    std::thread::spawn(move || {
        let (mut leaks, mut hits) = (Vec::new(), 0);
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            for entry in fs::read_dir("/proc").unwrap().flatten() {
                let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                    continue;
                };
                let argv = String::from_utf8_lossy(&raw).replace('\0', " ");
                if needles.iter().any(|n| argv.contains(n.as_str())) && !leaks.contains(&argv) {
                    leaks.push(argv.clone());
                }
                if argv.contains(&seen) && argv.contains("git") {
                    hits += 1;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        (leaks, hits)
    })
}

/// Issue 20 item 4: a repository that needs credentials is cloned with
/// them, and they are never in any process's argv while halo talks to it
/// (they reach git through its credential interface), nor left in the
/// store; a token used as the URL's user works the same and is redacted
/// in stderr and JUnit.
#[test]
fn credentials_reach_git_without_ever_being_in_argv() {
    let t = TestStore::new();
    let repo = example_repo(&t);
    let served = t.root().join("served");
    fs::create_dir_all(&served).unwrap();
    ok(Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&repo)
        .arg(served.join("halo-hello.git")));
    let server = halo_tests::build::GitHttp::start(
        &served,
        &t.root().join("git-http.log"),
        &["builder:S3cretPW", "t0kenABC987:*"],
    );
    let base = format!("127.0.0.1:{}", server.port);
    write_config(
        &t,
        &format!(
            "{}{}",
            source(
                "halo-hello",
                Path::new(&format!("http://builder:S3cretPW@{base}/halo-hello.git")),
                "",
            ),
            source(
                "tok",
                Path::new(&format!("http://t0kenABC987@{base}/halo-hello.git")),
                "branch = \"nope\"",
            ),
        ),
    );
    let secrets = vec!["S3cretPW".to_string(), "t0kenABC987".to_string()];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = watch_argv(secrets.clone(), base.clone(), stop.clone());
    let (code, r, stderr) = build(&t, &["halo-hello"]);
    let status = run(t.halo().args(["--json", "sources", "status"]));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (leaks, hits) = watcher.join().unwrap();
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_eq!(r["status"], "built", "{r}");
    assert!(leaks.is_empty(), "credentials in argv: {leaks:?}");
    assert!(hits > 0, "the poll never saw git talking to {base}");
    // The server saw them: git asked the helper after the 401.
    let requests = server.requests();
    assert!(
        requests.iter().any(|l| l.ends_with(" 200 builder")),
        "{requests:?}"
    );
    assert!(requests.iter().any(|l| l.contains(" 401 ")), "{requests:?}");
    // The token works as the user too (ls-remote of sources status).
    let status_out = String::from_utf8_lossy(&status.stdout);
    assert!(
        requests.iter().any(|l| l.ends_with(" 200 t0kenABC987")),
        "{requests:?}\n{status_out}"
    );
    for s in &secrets {
        assert!(!status_out.contains(s.as_str()), "{status_out}");
        assert!(!stderr.contains(s.as_str()), "{stderr}");
    }
    // Nothing in the store holds them but the configuration itself.
    let grep = run(Command::new("grep")
        .args([
            "-rlF",
            "--exclude=halo.toml",
            "-e",
            "S3cretPW",
            "-e",
            "t0kenABC987",
        ])
        .arg(t.store())
        .arg(t.root().join("git")));
    let files = String::from_utf8_lossy(&grep.stdout);
    assert_eq!(grep.status.code(), Some(1), "files hold them: {files}");
    // The token's source fails (no such branch): redacted in stderr and JUnit.
    let junit = t.root().join("tok.xml");
    let (code, r, stderr) = build(&t, &["tok", "--junit", junit.to_str().unwrap()]);
    assert_ne!(code, 0, "{r}");
    let xml = fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(&format!("***@{base}")), "{xml}");
    assert!(stderr.contains(&format!("***@{base}")), "{stderr}");
    for text in [&xml, &stderr, &r.to_string()] {
        assert!(!text.contains("t0kenABC987"), "{text}");
    }
}
