//! The store's promises, through the real `halo` binary: snapshots never
//! change, promotion is a compare-and-swap, bad input is refused with one
//! line and changes nothing, sources and uploads are verified.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use fs_err as fs;
use halo_tests::{field, need_tool, ok, parse_stanzas, run, Deb, TestStore};

fn export_snapshot(t: &TestStore, id: &str, name: &str) -> std::path::PathBuf {
    let dir = t.root().join(name);
    t.ok(&["export", "--snapshot", id, dir.to_str().unwrap()]);
    dir
}

#[test]
fn a_snapshot_never_changes_after_later_imports() {
    let t = TestStore::new();
    t.import(
        "trusty",
        &[Deb::new("stable-pkg", "1.0").build(&t.path("in/1"))],
    );
    let first = t.snapshot();
    let manifest = fs::read(t.store().join(format!("snapshots/{first}.json"))).unwrap();
    let before = export_snapshot(&t, &first, "before");
    t.import(
        "trusty",
        &[Deb::new("stable-pkg", "2.0").build(&t.path("in/2"))],
    );
    t.import("xenial", &[Deb::new("other", "1").build(&t.path("in/3"))]);
    let second = t.snapshot();
    assert_ne!(first, second);
    assert!(first < second, "ids sort in creation order");
    let after = export_snapshot(&t, &first, "after");
    ok(Command::new("diff").arg("-r").arg(&before).arg(&after));
    assert_eq!(
        fs::read(t.store().join(format!("snapshots/{first}.json"))).unwrap(),
        manifest
    );
    let diff = t.ok(&["snapshot", "diff", &first, &second]);
    assert!(
        diff.contains("upgraded") && diff.contains("stable-pkg 1.0 -> 2.0"),
        "{diff}"
    );
    assert!(diff.contains("added") && diff.contains("xenial"), "{diff}");
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["snapshot", "diff", &second, &first, "--json"])).unwrap();
    let kinds: Vec<_> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["downgraded", "removed"], "{json}");
}

#[test]
fn snapshot_create_with_nothing_changed_returns_the_latest() {
    let t = TestStore::new();
    t.import("trusty", &[Deb::new("pkg-a", "1").build(&t.path("in"))]);
    let a = t.snapshot();
    let b = t.snapshot();
    assert_eq!(a, b);
    assert_eq!(t.ok(&["snapshot", "list"]).lines().count(), 1);
    // Re-importing the same file is a no-op and makes no snapshot either.
    let pkg = t.path("in").join("pkg-a_1_all.deb");
    let out = t.import("trusty", &[pkg.clone(), pkg]);
    assert_eq!(out.matches("unchanged").count(), 2, "{out}");
    assert_eq!(t.snapshot(), a);
}

#[test]
fn promotion_with_stale_expect_is_refused_and_changes_nothing() {
    let t = TestStore::new();
    t.import("trusty", &[Deb::new("pkg-a", "1").build(&t.path("in/1"))]);
    let a = t.snapshot();
    t.import("trusty", &[Deb::new("pkg-a", "2").build(&t.path("in/2"))]);
    let b = t.snapshot();
    t.ok(&[
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &a,
        "--expect",
        "none",
    ]);
    assert_eq!(t.channel("trusty"), a);
    let out = run(t.halo().args([
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &b,
        "--expect",
        &b,
    ]));
    // A lost compare-and-swap is a race, not the user's mistake: 2.
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&a), "{err}");
    assert_eq!(t.channel("trusty"), a);
    t.ok(&[
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &b,
        "--expect",
        &a,
        "--reason",
        "tested",
    ]);
    assert_eq!(t.channel("trusty"), b);
    let history: serde_json::Value =
        serde_json::from_str(&t.ok(&["channel", "history", "trusty", "--json"])).unwrap();
    let h = history.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1]["from"], a.as_str());
    assert_eq!(h[1]["to"], b.as_str());
    assert_eq!(h[1]["reason"], "tested");
    assert!(h[1]["who"].as_str().unwrap().contains('@'));
    // Rollback returns to where it was (a re-dated copy of it, so that
    // clients follow: tests/tests/rollback.rs), and is recorded.
    t.ok(&["channel", "rollback", "trusty"]);
    assert_eq!(t.channel_content("trusty"), a);
    t.ok(&["channel", "rollback", "trusty", "--to", &b]);
    assert_eq!(t.channel_content("trusty"), b);
    let b = t.channel("trusty");
    // --from follows another channel; unknown targets are refused.
    t.ok(&["promote", "--to", "trusty-testing", "--from", "trusty"]);
    assert_eq!(t.channel("trusty-testing"), b);
    for args in [
        vec![
            "promote",
            "--to",
            "trusty",
            "--snapshot",
            "20990101T000000.000Z",
        ],
        vec!["promote", "--to", "nonexistent", "--snapshot", &a],
        vec!["promote", "--to", "trusty", "--from", "trusty-unstable"],
        vec!["promote", "--to", "trusty", "--snapshot", "../../etc"],
    ] {
        let out = run(t.halo().args(&args));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).lines().count(),
            1,
            "{args:?}"
        );
    }
    assert_eq!(t.channel("trusty"), b);
    t.assert_sound();
}

/// Runs an import that must be refused: exit 1, one line on stderr, and
/// the store exactly as before.
fn refused(t: &TestStore, files: &[std::path::PathBuf], expect_in_error: &str) {
    let before = t.fingerprint();
    let out = run(t
        .halo()
        .args([
            "import",
            "--archive",
            "rustedhalo",
            "--dist",
            "trusty",
            "--component",
            "main",
        ])
        .args(files));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{files:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("halo: "), "{err}");
    assert!(
        err.contains(expect_in_error),
        "expected {expect_in_error:?} in {err}"
    );
    assert_eq!(t.fingerprint(), before, "store changed by a refused import");
    assert_eq!(t.temp_files(), 0, "temp files left");
    t.assert_sound();
}

#[test]
fn bad_packages_are_refused_with_one_line_and_change_nothing() {
    let t = TestStore::new();
    let good = Deb::new("good", "1.0").build(&t.path("in/good"));
    t.import("trusty", std::slice::from_ref(&good));
    t.snapshot();
    let dir = t.path("bad/x").parent().unwrap().to_path_buf();

    let full = fs::read(&good).unwrap();
    let truncated = dir.join("truncated_1_all.deb");
    fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    refused(&t, &[truncated], "truncated");

    let garbage = dir.join("garbage_1_all.deb");
    fs::write(&garbage, b"this is not a package\n").unwrap();
    refused(&t, &[garbage], "not a Debian binary package");

    // An ar archive without control.tar (built with the real ar).
    need_tool("ar", "binutils");
    let nocontrol = dir.join("nocontrol_1_all.deb");
    fs::write(dir.join("debian-binary"), "2.0\n").unwrap();
    fs::write(dir.join("data.tar"), b"").unwrap();
    ok(Command::new("ar").current_dir(&dir).args([
        "rc",
        "nocontrol_1_all.deb",
        "debian-binary",
        "data.tar",
    ]));
    refused(&t, &[nocontrol], "no control.tar");

    // A good file plus a bad one: all or nothing.
    let other = Deb::new("other", "1").build(&t.path("in/other"));
    refused(
        &t,
        &[other, dir.join("garbage_1_all.deb")],
        "garbage_1_all.deb",
    );

    // Inputs are read two windows ahead of the ones taken in: the first
    // bad input is still the one named, and what was read ahead of it
    // leaves no temp file.
    let mut many: Vec<_> = (0..150)
        .map(|i| Deb::new(&format!("many{i}"), "1").build(&t.path(&format!("in/many{i}"))))
        .collect();
    many.insert(70, dir.join("garbage_1_all.deb"));
    many.push(dir.join("missing.deb"));
    refused(&t, &many, "garbage_1_all.deb");

    // A conflicting rebuild of the same version names both files.
    let rebuild = Deb::new("good", "1.0")
        .payload("different")
        .build(&t.path("in/rebuild"));
    refused(&t, std::slice::from_ref(&rebuild), good.to_str().unwrap());
    refused(
        &t,
        std::slice::from_ref(&rebuild),
        rebuild.to_str().unwrap(),
    );

    // A package name that would escape the pool.
    let escape = Deb::new("x", "1")
        .fields("Source: ../../../etc\n")
        .build(&t.path("in/escape"));
    refused(&t, &[escape], "not valid");

    let missing = dir.join("missing.deb");
    refused(&t, &[missing], "missing.deb");
    let txt = dir.join("readme.txt");
    fs::write(&txt, "x").unwrap();
    refused(&t, &[txt], "not a .deb");

    // Names given on the command line are checked too.
    let out = run(t
        .halo()
        .args([
            "import",
            "--archive",
            "../x",
            "--dist",
            "trusty",
            "--component",
            "main",
        ])
        .arg(&good));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn changes_and_dsc_import_with_sources_index_matching_dpkg_scansources() {
    need_tool("dpkg-scansources", "dpkg-dev");
    let t = TestStore::new();
    let dir = halo_tests::build_source_package(&t, "halo-src", "1.0");
    let changes = dir.join("halo-src_1.0_amd64.changes");
    let out = t.import("trusty", &[changes]);
    assert!(
        out.contains("halo-src_1.0_all") && out.contains("halo-src_1.0_source"),
        "{out}"
    );
    let id = t.snapshot();
    let exp = export_snapshot(&t, &id, "exp");
    let archive = exp.join("rustedhalo");
    let ours = fs::read_to_string(archive.join("dists/trusty/main/source/Sources")).unwrap();
    let theirs = ok(Command::new("dpkg-scansources")
        .args(["pool", "/dev/null"])
        .current_dir(&archive));
    let (ours, theirs) = (parse_stanzas(&ours), parse_stanzas(&theirs));
    assert_eq!(ours.len(), 1);
    assert_eq!(theirs.len(), 1);
    let mut a = ours[0].clone();
    let mut b = theirs[0].clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "Sources stanza differs from dpkg-scansources");
    assert_eq!(field(&ours[0], "Directory"), Some("pool/main/h/halo-src"));
    assert!(archive
        .join("pool/main/h/halo-src/halo-src_1.0.tar.xz")
        .exists());
    assert!(archive
        .join("pool/main/h/halo-src/halo-src_1.0_all.deb")
        .exists());
    t.assert_sound();
}

#[test]
fn broken_uploads_are_refused() {
    let t = TestStore::new();
    let dir = halo_tests::build_source_package(&t, "broken", "1.0");
    t.import("trusty", &[Deb::new("seed", "1").build(&t.path("in"))]);
    t.snapshot();

    // A .changes whose checksum does not match its file.
    let changes = dir.join("broken_1.0_amd64.changes");
    let text = fs::read_to_string(&changes).unwrap();
    let tar = dir.join("broken_1.0.tar.xz");
    let original = fs::read(&tar).unwrap();
    let mut modified = original.clone();
    modified[original.len() / 2] ^= 0xff;
    fs::write(&tar, &modified).unwrap();
    refused(&t, std::slice::from_ref(&changes), "broken_1.0.tar.xz");
    // The .dsc alone is refused too.
    refused(&t, &[dir.join("broken_1.0.dsc")], "broken_1.0.tar.xz");
    fs::write(&tar, &original).unwrap();

    // A .dsc missing a file it lists.
    fs::rename(&tar, dir.join("moved")).unwrap();
    refused(&t, &[dir.join("broken_1.0.dsc")], "missing");
    fs::rename(dir.join("moved"), &tar).unwrap();

    // A .changes listing a file outside its directory.
    let evil = text.replace(" broken_1.0.tar.xz", " ../../broken_1.0.tar.xz");
    let evil_path = dir.join("evil.changes");
    fs::write(&evil_path, evil).unwrap();
    refused(&t, &[evil_path], "escape");

    // Intact, it imports.
    t.import("trusty", &[changes]);
    t.assert_sound();
}

#[test]
fn every_command_has_help_and_usage_errors_exit_1() {
    let t = TestStore::new();
    for args in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["import", "--help"],
        vec!["snapshot", "--help"],
        vec!["snapshot", "create", "--help"],
        vec!["snapshot", "list", "--help"],
        vec!["snapshot", "show", "--help"],
        vec!["snapshot", "diff", "--help"],
        vec!["promote", "--help"],
        vec!["channel", "--help"],
        vec!["channel", "list", "--help"],
        vec!["channel", "history", "--help"],
        vec!["channel", "rollback", "--help"],
        vec!["export", "--help"],
        vec!["fsck", "--help"],
        vec!["gc", "--help"],
        vec!["quickstart", "--help"],
        vec!["mirror", "update", "--help"],
        vec!["build", "--help"],
        vec!["sources", "--help"],
        vec!["sources", "status", "--help"],
        vec!["remove", "--help"],
        vec!["copy", "--help"],
        vec!["list", "--help"],
        vec!["show", "--help"],
        vec!["key", "--help"],
        vec!["key", "list", "--help"],
        vec!["key", "rotate", "--help"],
        vec!["key", "retire", "--help"],
    ] {
        let out = ok(t.halo().args(&args));
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
    let out = run(t.halo().args(["promote", "--to", "trusty"]));
    assert_eq!(out.status.code(), Some(1));
    let out = run(Command::new(halo_tests::bin("halo"))
        .args(["snapshot", "list"])
        .env_remove("HALO_STORE"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--store"));
    let out = run(Command::new(halo_tests::bin("halo")).args([
        "--store",
        "/nonexistent-store",
        "snapshot",
        "list",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("halo init"));
    let out = run(t.halo().arg("init"));
    assert_eq!(out.status.code(), Some(1), "second init must be refused");
}

/// A store with four snapshots, pkg-a 1.0 to 4.0, oldest first.
fn four_snapshots() -> (TestStore, Vec<String>) {
    let t = TestStore::new();
    let ids = (1..=4)
        .map(|v| {
            let deb = Deb::new("pkg-a", &format!("{v}.0")).build(&t.path(&format!("in/{v}")));
            t.import("trusty", &[deb]);
            t.snapshot()
        })
        .collect();
    (t, ids)
}

#[test]
fn gc_keeps_what_channels_and_kept_snapshots_need() {
    let (t, ids) = four_snapshots();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &ids[0]]);
    let before = export_snapshot(&t, &ids[0], "before");
    fs::write(t.store().join("tmp/999999999.0.tmp"), b"left by a crash").unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&t.ok(&["gc", "--keep-snapshots", "1", "--json"])).unwrap();
    assert_eq!(report["temp_files"], 1);
    assert_eq!(report["snapshots"].as_array().unwrap().len(), 2, "{report}");
    let list = t.ok(&["snapshot", "list"]);
    assert!(list.contains(&ids[0]) && list.contains(&ids[3]));
    assert!(!list.contains(&ids[1]) && !list.contains(&ids[2]));
    t.assert_sound();
    let after = export_snapshot(&t, &ids[0], "after");
    ok(Command::new("diff").arg("-r").arg(&before).arg(&after));
    // fsck notices damage.
    let victim = fs::read_dir(t.store().join("pool"))
        .unwrap()
        .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
        .next()
        .unwrap()
        .unwrap()
        .path();
    halo_tests::set_mode(&victim, 0o644);
    fs::write(&victim, b"corrupted").unwrap();
    // Damage is exit 2, as every command reports it (docs/architecture.md).
    let out = run(t.halo().arg("fsck"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("PROBLEM"));
}

#[test]
fn gc_keeps_the_snapshots_a_channel_left_recently() {
    let (t, ids) = four_snapshots();
    for id in &ids[..3] {
        t.ok(&["promote", "--to", "trusty", "--snapshot", id]);
    }
    let kept = |t: &TestStore| t.ok(&["snapshot", "list"]);
    // trusty moved ids[0] -> ids[1] -> ids[2]: with one previous move kept,
    // ids[1] stays beside the target and the newest; ids[0] goes.
    t.ok(&["gc", "--keep-snapshots", "1", "--keep-previous", "1"]);
    let list = kept(&t);
    assert!(!list.contains(&ids[0]), "{list}");
    assert!(list.contains(&ids[1]) && list.contains(&ids[2]) && list.contains(&ids[3]));
    t.assert_sound();
    // The rollback target is still whole.
    t.ok(&["channel", "rollback", "trusty"]);
    assert_eq!(t.channel_content("trusty"), ids[1]);
    t.assert_sound();
    let target = t.channel("trusty");
    t.ok(&["gc", "--keep-snapshots", "0", "--keep-previous", "0"]);
    let list = kept(&t);
    assert!(list.contains(&target), "the target stays: {list}");
    assert!(!list.contains(&ids[2]) && !list.contains(&ids[3]), "{list}");
    t.assert_sound();
}

/// The README's first command, end to end: its `sources.list` lines work
/// with the real apt, and the channels hold what it says they hold.
#[test]
fn quickstart_channels_install_with_apt() {
    let t = TestStore::new();
    let dir = t.root().join("qs");
    let out = ok(Command::new(halo_tests::bin("halo"))
        .args(["quickstart", "--dir"])
        .arg(&dir));
    let line = |channel: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(channel).filter(|r| r.starts_with(' ')))
            .unwrap_or_else(|| panic!("no {channel} line in:\n{out}"))
            .trim()
            .to_string()
    };
    assert!(out.contains("built from source"), "{out}");
    for (channel, hello) in [("trusty", "1.0"), ("trusty-unstable", "1.1")] {
        let apt = halo_tests::Apt::new(
            &t.root().join(format!("apt-{channel}")),
            &format!("{}\n", line(channel)),
        );
        apt.update();
        assert_eq!(
            apt.candidate("halo-hello").as_deref(),
            Some(hello),
            "{channel}"
        );
        assert_eq!(apt.candidate("halo-greeting").as_deref(), Some("1.0-1"));
        // The host's packages count as installed (libc6 for the program).
        fs::copy("/var/lib/dpkg/status", apt.dir.join("status")).unwrap();
        let install =
            ok(apt
                .command("apt-get")
                .args(["install", "--download-only", "-y", "halo-hello"]));
        assert!(install.contains("halo-hello"), "{install}");
    }
    // Running it again replaces the previous quickstart.
    ok(Command::new(halo_tests::bin("halo"))
        .args(["quickstart", "--dir"])
        .arg(&dir));
}

#[test]
fn the_secret_key_is_private_and_fsck_flags_it_when_not() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestStore::new();
    let key = t.store().join("keys/secret.asc");
    let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "init wrote the secret key {mode:o}");
    t.ok(&["fsck"]);
    fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(t.halo().arg("fsck"));
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("secret.asc") && stdout.contains("readable by others"),
        "{stdout}"
    );
}
