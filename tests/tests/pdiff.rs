//! Index diffs (`Packages.diff/`) judged by the real apt: over HTTP from a
//! web server serving the mount, with `Acquire::PDiffs=true`, a client that
//! updated before a promotion fetches the patches (one, or the chain of two
//! when it missed a move) and ends with the very index a fresh client
//! downloads whole; after a rollback there is no patch for it and apt
//! downloads the full index instead. Each patch also passes apt's own
//! `rred`, and the export serves the same diff files as the mount.
//!
//! One store and one mount for the whole story: building packages and
//! mounting are the expensive parts.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fs_err as fs;
use halo_tests::mount::{apt_ok, need_fuse, HttpServer, Mount};
use halo_tests::{need_tool, ok, run, Apt, Deb, TestStore};

const PACKAGES: usize = 30;

fn deb(t: &TestStore, i: usize, version: &str) -> PathBuf {
    let dir = t.path(&format!("in/{version}"));
    Deb::new(&format!("pd-{i:02}"), version)
        .fields(&format!(
            "Homepage: https://example.org/packages/pd-{i:02}/with/a/long/address\n"
        ))
        .build(&dir)
}

/// The `Packages` apt keeps in its lists, decompressed by apt itself (as
/// text: a failed comparison then shows stanzas, not bytes).
fn listed_packages(apt: &Apt) -> String {
    let lists = apt.dir.join("lists");
    let file = fs::read_dir(&lists)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            // Not the `..._Packages.diff_Index` apt keeps beside it.
            name.contains("_main_binary-amd64_Packages") && !name.contains(".diff")
        })
        .unwrap_or_else(|| panic!("no Packages list in {}", lists.display()));
    need_tool("/usr/lib/apt/apt-helper", "apt");
    let out = run(Command::new("/usr/lib/apt/apt-helper")
        .arg("cat-file")
        .arg(&file));
    assert!(
        out.status.success(),
        "apt-helper cat-file {}",
        file.display()
    );
    String::from_utf8(out.stdout).unwrap()
}

fn text(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

fn pdiff_update(apt: &Apt) -> String {
    apt_ok(
        apt,
        "apt-get",
        &[
            "update",
            "-o",
            "Acquire::PDiffs=true",
            "-o",
            "Debug::pkgAcquire::Diffs=true",
        ],
    )
}

/// Patches apt fetched (its `Debug::pkgAcquire::Diffs` lines name each
/// download once: `pkgAcqIndexMergeDiffs: <url>/Packages.diff/<name>.gz`).
fn fetched_patches(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("pkgAcqIndexMergeDiffs: "))
        .filter_map(|url| url.strip_suffix(".gz"))
        .filter_map(|url| url.rsplit_once("/Packages.diff/"))
        .map(|(_, name)| name.to_string())
        .collect()
}

/// Lets a second pass: the web server's `Last-Modified` has whole seconds,
/// and a Release re-made within the second of the last one would be
/// answered `304 Not Modified` (real snapshots are minutes apart).
fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

fn copy_dir(from: &Path, to: &Path) {
    ok(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// Applies `patch` (gzip) to `old` with apt's rred.
fn rred(old: &[u8], patch_gz: &[u8]) -> Vec<u8> {
    need_tool("/usr/lib/apt/methods/rred", "apt");
    need_tool("gzip", "gzip");
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("patch.gz");
    fs::write(&gz, patch_gz).unwrap();
    ok(Command::new("gzip").arg("-d").arg(&gz));
    let p = dir.path().join("patch");
    let mut child = Command::new("/usr/lib/apt/methods/rred")
        .arg("-f")
        .arg(&p)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let old = old.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &old));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "rred failed");
    out.stdout
}

#[test]
fn apt_fetches_the_patches_and_ends_with_the_full_index() {
    need_fuse();
    let t = TestStore::new();
    let first: Vec<PathBuf> = (0..PACKAGES).map(|i| deb(&t, i, "1.0")).collect();
    t.import("trusty", &first);
    let s1 = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &s1]);
    let m = Mount::start(&t.store(), &t.root().join("mnt"), "allow_other");
    let web = HttpServer::start(&m.dir);
    let sources = format!(
        "deb [signed-by={}] {}/channels/trusty/rustedhalo trusty main\n",
        t.store().join("keys/repo.gpg").display(),
        web.url()
    );
    let served = m
        .dir
        .join("channels/trusty/rustedhalo/dists/trusty/main/binary-amd64");

    // The first snapshot has nothing to diff from.
    assert!(!served.join("Packages.diff").exists());
    let client = Apt::new(&t.root().join("apt-client"), &sources);
    pdiff_update(&client);
    let at_s1 = t.root().join("apt-at-s1");
    copy_dir(&client.dir, &at_s1);
    let old_packages = fs::read(served.join("Packages")).unwrap();

    // One package moves: the Release lists the diff Index, apt fetches
    // the patch and has exactly what a fresh client downloads whole.
    t.import("trusty", &[deb(&t, 7, "1.1")]);
    next_second();
    let s2 = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &s2]);
    let release = fs::read_to_string(served.join("../../Release")).unwrap();
    assert!(
        release.contains(" main/binary-amd64/Packages.diff/Index\n"),
        "{release}"
    );
    let index = fs::read_to_string(served.join("Packages.diff/Index")).unwrap();
    assert!(index.contains(&format!(" {s2}.gz\n")), "{index}");
    let new_packages = text(&served.join("Packages"));
    let patch = fs::read(served.join(format!("Packages.diff/{s2}.gz"))).unwrap();
    assert_eq!(
        String::from_utf8(rred(&old_packages, &patch)).unwrap(),
        new_packages,
        "rred of the patch"
    );
    assert!(patch.len() * 4 < new_packages.len(), "the patch is small");

    let out = pdiff_update(&client);
    assert_eq!(fetched_patches(&out), std::slice::from_ref(&s2), "{out}");
    assert_eq!(listed_packages(&client), new_packages);
    let fresh = Apt::new(&t.root().join("apt-fresh"), &sources);
    pdiff_update(&fresh);
    assert_eq!(listed_packages(&fresh), listed_packages(&client));
    assert_eq!(fresh.candidate("pd-07").as_deref(), Some("1.1"));

    // A client two moves behind applies the chain of both patches.
    t.import("trusty", &[deb(&t, 20, "1.1")]);
    next_second();
    let s3 = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &s3]);
    let behind = Apt::new(&at_s1, &sources);
    let out = pdiff_update(&behind);
    assert_eq!(fetched_patches(&out), [s2.clone(), s3.clone()], "{out}");
    let at_s3 = text(&served.join("Packages"));
    assert_eq!(listed_packages(&behind), at_s3);

    // The export serves the same diff files as the mount.
    let export = t.export_channel("trusty");
    let diff = run(Command::new("diff")
        .arg("-r")
        .arg(m.dir.join("channels/trusty/rustedhalo/dists"))
        .arg(export.join("rustedhalo/dists")));
    assert!(
        diff.status.success(),
        "{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );

    // Back to s2's content: no patch leads there from s3, apt downloads
    // the full index and has what the channel serves.
    pdiff_update(&client);
    next_second();
    t.ok(&["channel", "rollback", "trusty"]);
    let out = pdiff_update(&client);
    assert!(fetched_patches(&out).is_empty(), "{out}");
    assert_eq!(listed_packages(&client), new_packages);
    assert_eq!(client.candidate("pd-20").as_deref(), Some("1.0"));
    t.assert_sound();
}
