//! Files halo reads but did not write are what they claim (issue 20,
//! item 3): a source tree's `debian/changelog` and `debian/source/format`
//! are regular files inside the tree, the store's key, a mirror's keyring
//! and the Jenkins token file are regular files of bounded size. Each
//! hostile case fails at once (the commands run under a deadline: the old
//! behaviour hung or read /dev/zero for ever), in one line naming the file,
//! and what a link points at never appears anywhere.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fs_err as fs;
use halo_tests::build::{commit, example_repo};
use halo_tests::{ok, TestStore};

/// What a command did within `secs`: exit code, stdout, stderr. A command
/// still running at the deadline is killed and fails the test: it hung.
fn within(cmd: &mut Command, secs: u64) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still ran after {secs} s: it hangs on the file");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code().unwrap_or(-1),
        fs::read_to_string(&out).unwrap(),
        fs::read_to_string(&err).unwrap(),
    )
}

/// One line on stderr, containing `want`; the exit code is not 0.
fn one_line(what: &str, (code, _, stderr): &(i32, String, String), want: &str) {
    assert_ne!(*code, 0, "{what} succeeded: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
    assert!(stderr.contains(want), "{what}: want {want:?} in {stderr}");
}

fn mkfifo(path: &Path) {
    ok(Command::new("mkfifo").args(["-m", "600"]).arg(path));
}

fn source_config(t: &TestStore, repo: &Path) {
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[[source]]\nname = \"halo-hello\"\ngit = \"{}\"\narchive = \"rustedhalo\"\ndist = \"trusty\"\ncomponent = \"main\"\n",
            repo.display()
        ),
    )
    .unwrap();
}

#[test]
fn a_changelog_linked_to_etc_shadow_is_refused_and_never_shown() {
    let shadow = fs::read_to_string("/etc/shadow").expect("the test runs as root");
    let first = shadow.lines().next().unwrap().to_string();
    let t = TestStore::new();
    let repo = example_repo(&t);
    fs::remove_file(repo.join("debian/changelog")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", repo.join("debian/changelog")).unwrap();
    commit(&repo, "changelog is shadow", 1_764_900_100);
    source_config(&t, &repo);
    let junit = t.root().join("junit.xml");
    let snaps = t.ok(&["snapshot", "list"]);
    let (code, stdout, stderr) = within(
        t.halo()
            .args(["build", "halo-hello", "--junit"])
            .arg(&junit),
        120,
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("debian/changelog is a symbolic link, not a regular file"),
        "{stderr}"
    );
    let xml = fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("debian/changelog is a symbolic link"), "{xml}");
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr), ("JUnit", &xml)] {
        assert!(
            !text.contains(&first) && !text.contains("root:"),
            "/etc/shadow's content in {what}: {text}"
        );
    }
    assert_eq!(t.ok(&["snapshot", "list"]), snaps, "nothing published");
}

#[test]
fn a_format_linked_to_dev_zero_is_refused_at_once() {
    let t = TestStore::new();
    let repo = example_repo(&t);
    let format = repo.join("debian/source/format");
    let _ = fs::remove_file(&format);
    fs::create_dir_all(format.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &format).unwrap();
    commit(&repo, "format is /dev/zero", 1_764_900_100);
    source_config(&t, &repo);
    let out = within(t.halo().args(["build", "halo-hello"]), 120);
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(
        out.2
            .contains("debian/source/format is a symbolic link, not a regular file"),
        "{}",
        out.2
    );
}

#[test]
fn a_control_file_linked_out_of_the_tree_is_refused() {
    let t = TestStore::new();
    let repo = example_repo(&t);
    let control = repo.join("debian/control");
    fs::remove_file(&control).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &control).unwrap();
    commit(&repo, "control is shadow", 1_764_900_100);
    source_config(&t, &repo);
    let out = within(t.halo().args(["build", "halo-hello"]), 120);
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(
        out.2
            .contains("debian/control is a symbolic link, not a regular file"),
        "{}",
        out.2
    );
}

#[test]
fn a_secret_key_that_is_a_fifo_fails_snapshot_create_and_fsck_at_once() {
    let t = TestStore::new();
    let secret = t.store().join("keys/secret.asc");
    fs::remove_file(&secret).unwrap();
    mkfifo(&secret);
    let before = t.ok(&["snapshot", "list"]);
    let want = "keys/secret.asc is a FIFO, not a regular file";
    one_line(
        "snapshot create",
        &within(t.halo().args(["snapshot", "create"]), 30),
        want,
    );
    assert_eq!(t.ok(&["snapshot", "list"]), before);
    let fsck = within(t.halo().args(["fsck"]), 30);
    assert_ne!(fsck.0, 0, "fsck passed a FIFO key: {}{}", fsck.1, fsck.2);
    let said = format!("{}{}", fsck.1, fsck.2);
    assert_eq!(
        said.lines().filter(|l| l.contains(want)).count(),
        1,
        "fsck names the key once: {said}"
    );
    // A key bigger than any key is refused too, without reading it all.
    fs::remove_file(&secret).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &secret).unwrap();
    one_line(
        "snapshot create",
        &within(t.halo().args(["snapshot", "create"]), 30),
        "keys/secret.asc is a symbolic link, not a regular file",
    );
}

#[test]
fn a_mirror_keyring_at_dev_zero_or_a_fifo_is_refused_at_once() {
    let t = TestStore::new();
    let fifo = t.root().join("keyring.fifo");
    mkfifo(&fifo);
    for (keyring, want) in [
        (
            Path::new("/dev/zero"),
            "a character device, not a regular file",
        ),
        (fifo.as_path(), "a FIFO, not a regular file"),
    ] {
        fs::write(
            t.store().join("halo.toml"),
            format!(
                "[[mirror]]\nname = \"up\"\nurl = \"http://127.0.0.1:9/\"\ndists = [\"trusty\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"{}\"\n",
                keyring.display()
            ),
        )
        .unwrap();
        let out = within(t.halo().args(["mirror", "update", "--all"]), 60);
        one_line("mirror update", &out, want);
        assert!(out.2.contains(&keyring.display().to_string()), "{}", out.2);
    }
}

#[test]
fn a_token_file_that_is_a_directory_or_a_fifo_is_refused_at_once() {
    let t = TestStore::new();
    let dir = t.root().join("token.d");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let fifo = t.root().join("token.fifo");
    mkfifo(&fifo);
    for (token, want) in [
        (&dir, "a directory, not a regular file"),
        (&fifo, "a FIFO, not a regular file"),
    ] {
        fs::write(
            t.store().join("halo.toml"),
            format!(
                "[jenkins]\nurl = \"http://127.0.0.1:9/\"\nuser = \"halo\"\ntoken_file = \"{}\"\n",
                token.display()
            ),
        )
        .unwrap();
        let out = within(
            t.halo()
                .args(["jenkins", "status"])
                .env_remove("HALO_JENKINS_TOKEN"),
            30,
        );
        one_line("jenkins status", &out, want);
        assert!(out.2.contains("token_file"), "{}", out.2);
    }
}
