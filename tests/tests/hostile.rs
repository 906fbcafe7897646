//! Inputs a user or an upstream can get wrong (issue 13): each is refused
//! with one line on stderr and exit 1, and the store is exactly as it was.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use fs_err as fs;
use halo_tests::{ok, run, Deb, TestStore};

/// `halo ARGS` must fail with exit 1, one stderr line containing `want`,
/// and leave the store as it was.
fn refused(t: &TestStore, args: &[&str], want: &str) -> String {
    let before = t.fingerprint();
    let out = run(t.halo().args(args));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    assert!(stderr.contains(want), "{args:?}: want {want:?} in {stderr}");
    assert_no_repeated_cause(&stderr);
    assert_eq!(t.fingerprint(), before, "{args:?} changed the store");
    stderr
}

/// An error line must not say its cause twice (`x: y: y`).
fn assert_no_repeated_cause(line: &str) {
    let parts: Vec<&str> = line.trim().split(": ").collect();
    for w in parts.windows(2) {
        assert_ne!(w[0], w[1], "a cause printed twice: {line}");
    }
    for (i, p) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].iter().any(|q| q.len() > 8 && q == p),
            "a cause printed twice: {line}"
        );
    }
}

#[test]
fn damaged_packages_say_why_once() {
    let t = TestStore::new();
    let good = Deb::new("cut", "1").build(&t.path("in"));
    let data = fs::read(&good).unwrap();
    let cut = t.root().join("in/cut_1_all.deb");
    fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let args = import_args(cut.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&t, &args, "cut_1_all.deb");
    let junk = t.root().join("in/junk_1_all.deb");
    fs::write(&junk, b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\ncontrol.tar.gz  0           0     0     100644  10        `\nnotgzipped").unwrap();
    let args = import_args(junk.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&t, &args, "control archive control.tar.gz is damaged: ");
}

fn import_args(file: &str) -> Vec<String> {
    [
        "import",
        "--archive",
        "rustedhalo",
        "--dist",
        "trusty",
        "--component",
        "main",
        file,
    ]
    .map(str::to_string)
    .to_vec()
}

#[test]
fn inputs_that_are_not_regular_files_are_refused_at_once() {
    let t = TestStore::new();
    let fifo = t.root().join("pkg_1_all.deb");
    ok(Command::new("mkfifo").arg(&fifo));
    let zero = t.root().join("zero_1_all.deb");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let dir = t.root().join("dir_1_all.deb");
    fs::create_dir(&dir).unwrap();
    for f in [&fifo, &zero, &dir] {
        let args = import_args(f.to_str().unwrap());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&t, &args, "not a regular file");
    }
    t.assert_sound();
}

#[test]
fn a_files_from_list_that_cannot_be_read_is_the_users_mistake() {
    let t = TestStore::new();
    let latin1 = t.root().join("list-latin1");
    fs::write(&latin1, b"caf\xe9_1_all.deb\n").unwrap();
    let dir = t.root().join("list-dir");
    fs::create_dir(&dir).unwrap();
    let missing = t.root().join("list-missing");
    for (list, want) in [
        (&latin1, "valid UTF-8"),
        (&dir, "directory"),
        (&missing, "No such file"),
    ] {
        let list = list.to_str().unwrap();
        let mut args = import_args("--files-from");
        args.push(list.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let said = refused(&t, &args, &format!("--files-from {list}: "));
        assert!(said.contains(want), "{said}");
    }
    t.assert_sound();
}

#[test]
fn a_pool_name_longer_than_255_bytes_is_refused_at_import() {
    let t = TestStore::new();
    // The input file has a short name; the pool name would be
    // long-version_1.000..._all.deb, 267 bytes.
    let long = format!("1.{}", "0".repeat(250));
    let root = t
        .path("in/root/DEBIAN/x")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    fs::write(
        root.join("DEBIAN/control"),
        format!("Package: long-version\nVersion: {long}\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: x\n y\n"),
    )
    .unwrap();
    let deb = t.root().join("in/short.deb");
    ok(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb));
    let args = import_args(deb.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&t, &args, "longer than 255");
    t.assert_sound();
}

#[test]
fn control_characters_never_reach_the_terminal() {
    let t = TestStore::new();
    // A file name with an escape sequence: the error shows it escaped.
    let evil = t.root().join("evil\u{1b}[31mred_1_all.deb");
    fs::write(&evil, b"not a deb").unwrap();
    let args = import_args(evil.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = refused(&t, &args, "evil");
    assert!(!line.contains('\u{1b}'), "{line:?}");
    assert!(line.contains("\\u{1b}"), "{line:?}");
    // A --reason with a newline would break the one-line history.
    t.import("trusty", &[Deb::new("pkg", "1").build(&t.path("in"))]);
    let id = t.snapshot();
    let before = t.channel("trusty");
    let out = run(t.halo().args([
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &id,
        "--reason",
        "two\nlines",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(t.channel("trusty"), before);
}

#[test]
fn configuration_values_out_of_range_are_refused() {
    let t = TestStore::new();
    for (text, want) in [
        (
            "[fetch]\nretries = 4294967295\n",
            "fetch: retries: must be between",
        ),
        (
            "[fetch]\nretry_backoff_ms = 18446744073709551615\n",
            "fetch: retry_backoff_ms",
        ),
        (
            "[acceptance]\nlease_minutes = 0\n",
            "acceptance: lease_minutes",
        ),
        ("[agent]\ninterval_minutes = 0\n", "agent.interval_minutes"),
    ] {
        fs::write(t.store().join("halo.toml"), text).unwrap();
        refused(&t, &["sources", "status"], want);
    }
}

#[test]
fn init_never_adopts_someone_elses_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("thesis.tex"), "precious").unwrap();
    let out = run(Command::new(halo_tests::bin("halo"))
        .arg("--store")
        .arg(&data)
        .arg("init"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty and not a store"));
    assert_eq!(
        fs::read_dir(&data).unwrap().count(),
        1,
        "init wrote into it"
    );
    // A file where the store should be; a key that is not a key.
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let out = run(Command::new(halo_tests::bin("halo"))
        .arg("--store")
        .arg(&file)
        .arg("init"));
    assert_eq!(out.status.code(), Some(1));
    // Text, and binary that looks like an OpenPGP packet header (0xa8, a
    // marker packet, whose parser complains at length through its logger).
    for (name, bytes) in [
        ("key.asc", b"garbage".to_vec()),
        ("key.gpg", vec![0xa8, 0x03, 0xf0, 0x5a, 0x9b, 0x00, 0x01]),
    ] {
        let garbage = dir.path().join(name);
        fs::write(&garbage, bytes).unwrap();
        let out = run(Command::new(halo_tests::bin("halo"))
            .arg("--store")
            .arg(dir.path().join("new"))
            .args(["init", "--key"])
            .arg(&garbage)
            .env_remove("RUST_LOG"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(
            stderr.contains("not a usable OpenPGP secret key"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_password_in_a_mirror_url_is_never_printed() {
    let t = TestStore::new();
    fs::write(
        t.store().join("halo.toml"),
        "[fetch]\nretries = 1\nretry_backoff_ms = 10\n\n[[mirror]]\nname = \"m\"\nurl = \"http://mirror:s3cret@127.0.0.1:9/debian\"\n\
dists = [\"stable\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\ntrusted = true\n",
    )
    .unwrap();
    let out = run(t.halo().args(["-v", "mirror", "update", "--all"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("mirror:***@127.0.0.1:9"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn mistakes_about_paths_and_history_are_the_users() {
    let t = TestStore::new();
    t.import("trusty", &[Deb::new("pathy", "1").build(&t.path("in"))]);
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    refused(
        &t,
        &["channel", "rollback", "trusty-unstable"],
        "channel trusty-unstable has no history to roll back to",
    );
    let file = t.root().join("a-file");
    fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    refused(
        &t,
        &["export", "--channel", "trusty-unstable", f],
        "is not a directory",
    );
    let out = run(Command::new(halo_tests::bin("halo"))
        .args(["--store", f, "snapshot", "list"])
        .env_remove("RUST_LOG"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a rustedhalo store"), "{stderr}");
    let dir = t.root().join("a-dir");
    fs::create_dir(&dir).unwrap();
    let latin1 = t.root().join("latin1.toml");
    fs::write(&latin1, b"[fetch]\nretries = 1 # caf\xe9\n").unwrap();
    for (config, want) in [
        (&dir, "a directory, not a regular file"),
        (&latin1, "not UTF-8 text"),
    ] {
        let c = config.to_str().unwrap();
        refused(
            &t,
            &["--config", c, "mirror", "update", "--all"],
            &format!("configuration {c}: {want}"),
        );
    }
}

/// Unmounts a test's tmpfs however the test ends.
struct Unmount<'a>(&'a std::path::Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

/// An export that fails half-way (here: a full disk) leaves no archive
/// whose InRelease lists files that are not there.
#[test]
fn a_failed_export_leaves_no_partial_tree() {
    let t = TestStore::new();
    let big = "incompressible? no, but large: ".repeat(20_000);
    t.import(
        "trusty",
        &[Deb::new("big", "1")
            .compression("none")
            .payload(&big)
            .build(&t.path("in"))],
    );
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    // A small tmpfs: another file system (copies, not hard links) with
    // room for the indices but not for the package.
    let small = t.root().join("small");
    fs::create_dir(&small).unwrap();
    ok(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&small));
    let _guard = Unmount(&small);
    let out_dir = small.join("apt");
    let out = run(t
        .halo()
        .args(["export", "--channel", "trusty-unstable"])
        .arg(&out_dir));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a full disk: {stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    let left: Vec<_> = fs::read_dir(&out_dir)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a failed export left {left:?}");
    t.assert_sound();
}

/// A snapshot whose large index finds no room fails with one line and
/// changes nothing. The index is rendered straight into its pool file
/// through a mapping; the space is reserved first, so a full disk is an
/// error here, not a SIGBUS while the mapping is written.
#[test]
fn a_full_disk_fails_the_snapshot_cleanly() {
    let t = TestStore::new();
    // One stanza of 1.5 MB: the index is large enough to be spooled.
    let big = format!("X-Big: {}\n", "x".repeat(1_500_000));
    let a = Deb::new("big", "1").fields(&big).build(&t.path("in"));
    t.import("trusty", &[a]);
    let first = t.snapshot();
    let b = Deb::new("big", "2").fields(&big).build(&t.path("in"));
    t.import("trusty", &[b]);
    // The store's temp area on a tmpfs with room for small files only.
    let tmp = t.store().join("tmp");
    ok(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&tmp));
    let guard = Unmount(&tmp);
    let out = run(t.halo().args(["snapshot", "create"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a full disk: {stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    drop(guard);
    let listed = t.ok(&["snapshot", "list", "--json"]);
    let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&listed)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [first], "no snapshot may be left by the failed one");
    t.assert_sound();
    // With room again, the same snapshot succeeds.
    assert_ne!(t.snapshot(), ids[0]);
}
