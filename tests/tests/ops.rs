//! What an operator does in the first week (issue 12, item 2): take a bad
//! package out (`halo remove`), move packages between archives
//! (`halo copy`, with their dependencies), and find where a package is
//! (`halo list`, `halo show`), checked with the real apt: the next snapshot
//! reflects a removal, earlier snapshots keep their packages, a copy
//! installs, and every refusal is one line, exit 1, the store unchanged.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use fs_err as fs;
use halo_tests::upstream::{Publish, Upstream};
use halo_tests::{build_source_package, ok, run, Apt, Deb, TestStore};

fn export_snapshot(t: &TestStore, id: &str) -> PathBuf {
    let dir = t.root().join(format!("export-{id}"));
    if !dir.exists() {
        t.ok(&["export", "--snapshot", id, dir.to_str().unwrap()]);
    }
    dir
}

/// An isolated apt reading `archive`'s `dist` of an exported tree (its
/// sources too, when the dist has a `Sources` index).
fn apt_for(t: &TestStore, export: &Path, archive: &str, dist: &str, name: &str) -> Apt {
    let keyring = t.store().join("keys/repo.gpg");
    let tree = export.join(archive);
    let mut sources = format!(
        "deb [signed-by={}] file:{} {dist} main\n",
        keyring.display(),
        tree.display()
    );
    if tree
        .join(format!("dists/{dist}/main/source/Sources"))
        .exists()
    {
        sources.push_str(&sources.replacen("deb ", "deb-src ", 1));
    }
    let apt = Apt::new(&t.root().join(format!("apt-{name}")), &sources);
    apt.update();
    apt
}

/// The source versions apt knows of `package` (`apt-cache showsrc`).
fn showsrc(apt: &Apt, package: &str) -> Vec<String> {
    let out = run(apt.command("apt-cache").args(["showsrc", package]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Version: "))
        .map(str::to_string)
        .collect()
}

/// The versions apt knows of `package` (`apt-cache madison`).
fn madison(apt: &Apt, package: &str) -> Vec<String> {
    let out = ok(apt.command("apt-cache").args(["madison", package]));
    out.lines()
        .filter(|l| l.contains("Packages"))
        .map(|l| l.split('|').nth(1).unwrap().trim().to_string())
        .collect()
}

/// `halo ARGS` must be refused: exit 1, one line on stderr naming
/// `expect`, and the store exactly as before and sound.
fn refused(t: &TestStore, args: &[&str], expect: &[&str]) {
    let before = t.fingerprint();
    let out = run(t.halo().args(args));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("halo: "), "{err}");
    for e in expect {
        assert!(err.contains(e), "{args:?}: expected {e:?} in {err}");
    }
    assert_eq!(t.fingerprint(), before, "{args:?} changed the store");
    assert_eq!(t.temp_files(), 0, "{args:?} left temp files");
    t.assert_sound();
}

#[test]
fn a_removed_version_leaves_the_next_snapshot_and_old_snapshots_keep_it() {
    let t = TestStore::new();
    let debs = [
        Deb::new("hello", "1.0").build(&t.path("in/1")),
        Deb::new("hello", "2.0").build(&t.path("in/2")),
        Deb::new("other", "1").build(&t.path("in/3")),
    ];
    t.import("trusty", &debs);
    let before = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &before]);

    let out = t.ok(&[
        "remove",
        "--archive",
        "rustedhalo",
        "--dist",
        "trusty",
        "hello=2.0",
    ]);
    assert_eq!(out.trim(), "removed hello_2.0_all (main)");
    let listed = t.ok(&["list", "--archive", "rustedhalo", "--dist", "trusty"]);
    assert_eq!(
        listed, "trusty/main hello 1.0 all\ntrusty/main other 1 all\n",
        "{listed}"
    );
    let after = t.snapshot();
    assert_ne!(after, before);
    t.assert_sound();

    let apt = apt_for(
        &t,
        &export_snapshot(&t, &after),
        "rustedhalo",
        "trusty",
        "after",
    );
    assert_eq!(apt.candidate("hello").as_deref(), Some("1.0"));
    assert_eq!(madison(&apt, "hello"), ["1.0"]);
    assert_eq!(madison(&apt, "other"), ["1"]);
    // The snapshot made before the removal still has both, for apt too.
    let apt = apt_for(
        &t,
        &export_snapshot(&t, &before),
        "rustedhalo",
        "trusty",
        "before",
    );
    assert_eq!(apt.candidate("hello").as_deref(), Some("2.0"));
    assert_eq!(madison(&apt, "hello"), ["2.0", "1.0"]);

    // show: 2.0 is only in the old snapshot, which trusty points at.
    let shown: serde_json::Value =
        serde_json::from_str(&t.ok(&["show", "hello", "--json"])).unwrap();
    let summary: Vec<String> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            format!(
                "{}/{}/{} {} {} working={} snapshots={} channels={}",
                h["archive"].as_str().unwrap(),
                h["dist"].as_str().unwrap(),
                h["component"].as_str().unwrap(),
                h["version"].as_str().unwrap(),
                h["arch"].as_str().unwrap(),
                h["working"],
                h["snapshots"],
                h["channels"]
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            format!("rustedhalo/trusty/main 1.0 all working=true snapshots=[\"{before}\",\"{after}\"] channels=[\"trusty\"]"),
            format!("rustedhalo/trusty/main 2.0 all working=false snapshots=[\"{before}\"] channels=[\"trusty\"]"),
        ]
    );
    let text = t.ok(&["show", "hello"]);
    assert!(
        text.contains(&format!(
            "rustedhalo/trusty/main hello 2.0 all: snapshots {before}; channels trusty"
        )),
        "{text}"
    );
    // Every version and arch at once; then the archive's dist is empty.
    t.ok(&[
        "remove",
        "--archive",
        "rustedhalo",
        "--dist",
        "trusty",
        "--component",
        "main",
        "hello",
        "other/all",
    ]);
    assert_eq!(t.ok(&["list", "--archive", "rustedhalo"]), "");
    let empty = t.snapshot();
    let apt = apt_for(
        &t,
        &export_snapshot(&t, &empty),
        "rustedhalo",
        "trusty",
        "empty",
    );
    assert_eq!(apt.candidate("hello"), None);
    t.assert_sound();
}

#[test]
fn removing_a_source_keeps_its_binaries_until_they_are_named() {
    let t = TestStore::new();
    for name in ["srcpkg", "keeper"] {
        let dir = build_source_package(&t, name, "1.0");
        let changes = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "changes"))
            .unwrap();
        t.import("trusty", &[changes]);
    }
    let before = t.snapshot();
    let apt = apt_for(
        &t,
        &export_snapshot(&t, &before),
        "rustedhalo",
        "trusty",
        "src1",
    );
    assert_eq!(showsrc(&apt, "srcpkg"), ["1.0"]);

    let out = t.ok(&[
        "remove",
        "--archive",
        "rustedhalo",
        "--dist",
        "trusty",
        "srcpkg=1.0/source",
    ]);
    assert_eq!(out.trim(), "removed srcpkg_1.0_source (main)");
    let listed = t.ok(&["list", "--archive", "rustedhalo", "src*"]);
    assert_eq!(listed, "trusty/main srcpkg 1.0 all\n");
    let id = t.snapshot();
    let apt = apt_for(
        &t,
        &export_snapshot(&t, &id),
        "rustedhalo",
        "trusty",
        "src2",
    );
    assert_eq!(apt.candidate("srcpkg").as_deref(), Some("1.0"));
    assert_eq!(showsrc(&apt, "srcpkg"), Vec::<String>::new());
    assert_eq!(showsrc(&apt, "keeper"), ["1.0"]);
    refused(
        &t,
        &[
            "remove",
            "--archive",
            "rustedhalo",
            "--dist",
            "trusty",
            "srcpkg/source",
        ],
        &["srcpkg/source matches no package in rustedhalo/trusty"],
    );
    // The name alone: the binary and (had it still been there) the source.
    let out = t.ok(&[
        "remove",
        "--archive",
        "rustedhalo",
        "--dist",
        "trusty",
        "srcpkg",
        "keeper",
    ]);
    assert_eq!(
        out,
        "removed keeper_1.0_all (main)\nremoved srcpkg_1.0_all (main)\nremoved keeper_1.0_source (main)\n"
    );
    assert_eq!(t.ok(&["list", "--archive", "rustedhalo"]), "");
    t.assert_sound();
}

/// `app` (amd64) needs `libfoo (>= 2)` and the host's libc6; `libfoo` comes
/// in two versions; `unrelated` is needed by nothing.
fn dependency_debs(t: &TestStore) -> Vec<PathBuf> {
    vec![
        Deb::new("app", "1.0")
            .arch("amd64")
            .fields("Depends: libfoo (>= 2), libc6\n")
            .build(&t.path("in/app")),
        Deb::new("libfoo", "1.0").build(&t.path("in/libfoo1")),
        Deb::new("libfoo", "2.0")
            .fields("Pre-Depends: foo-base\n")
            .build(&t.path("in/libfoo2")),
        Deb::new("foo-base", "1").build(&t.path("in/base")),
        Deb::new("unrelated", "1").build(&t.path("in/unrelated")),
    ]
}

#[test]
fn copy_with_deps_into_another_archive_installs_with_apt() {
    let t = TestStore::new();
    t.import("trusty", &dependency_debs(&t));
    let out = t.ok(&[
        "copy",
        "--from",
        "rustedhalo/trusty",
        "--to",
        "extra/trusty",
        "--with-deps",
        "app",
    ]);
    let mut copied: Vec<&str> = out.lines().collect();
    copied.sort();
    assert_eq!(
        copied,
        [
            "copied app_1.0_amd64 (main)",
            "copied foo-base_1_all (main)",
            "copied libfoo_2.0_all (main)"
        ]
    );
    // The pool files are shared: the copy added entries, not blobs.
    let blobs = |t: &TestStore| {
        walk(&t.store().join("pool"))
            .into_iter()
            .filter(|p| {
                let head = fs::read(p).unwrap();
                head.starts_with(b"!<arch>")
            })
            .count()
    };
    assert_eq!(blobs(&t), 5, "one blob per .deb, however many archives");

    // Copying again changes nothing.
    let before = t.fingerprint();
    let again = t.ok(&[
        "copy",
        "--from",
        "rustedhalo/trusty",
        "--to",
        "extra/trusty",
        "--with-deps",
        "app",
    ]);
    assert!(
        again.lines().all(|l| l.starts_with("unchanged ")),
        "{again}"
    );
    assert_eq!(t.fingerprint(), before);

    let id = t.snapshot();
    let export = export_snapshot(&t, &id);
    let apt = apt_for(&t, &export, "extra", "trusty", "extra");
    assert_eq!(apt.candidate("libfoo").as_deref(), Some("2.0"));
    assert_eq!(apt.candidate("unrelated"), None);
    // The host's packages count as installed, so libc6 resolves.
    fs::copy("/var/lib/dpkg/status", apt.dir.join("status")).unwrap();
    let mut plan = apt.simulate_install(&["app"]);
    plan.sort();
    assert_eq!(
        plan,
        [
            ("app".to_string(), "1.0".to_string()),
            ("foo-base".to_string(), "1".to_string()),
            ("libfoo".to_string(), "2.0".to_string())
        ]
    );
    // apt fetches and checks them (a file: source is read in place).
    ok(apt
        .command("apt-get")
        .args(["install", "--download-only", "-y", "app"]));
    let uris = ok(apt
        .command("apt-get")
        .args(["install", "--print-uris", "-y", "-qq", "app"]));
    let mut fetched: Vec<&str> = uris
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    fetched.sort();
    assert_eq!(
        fetched,
        [
            "app_1.0_amd64.deb",
            "foo-base_1_all.deb",
            "libfoo_2.0_all.deb"
        ],
        "{uris}"
    );
    // Without --with-deps, exactly what is named (a version, here).
    t.ok(&[
        "copy",
        "--from",
        "rustedhalo/trusty",
        "--to",
        "extra/xenial",
        "libfoo=1.0",
    ]);
    assert_eq!(
        t.ok(&["list", "--archive", "extra", "--dist", "xenial"]),
        "xenial/main libfoo 1.0 all\n"
    );
    t.assert_sound();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn refusals_are_one_line_exit_1_and_change_nothing() {
    let up = Upstream::new();
    up.add("main", &Deb::new("upkg", "1.0").arch("amd64"));
    up.publish("stable", &Publish::default());
    let t = TestStore::new();
    let config = format!(
        "[[mirror]]\nname = \"up\"\nurl = \"{}\"\ndists = [\"stable\"]\ncomponents = [\"main\"]\n\
         architectures = [\"amd64\"]\nkeyring = \"{}\"\n",
        up.url(),
        up.keyring().display()
    );
    fs::write(t.store().join("halo.toml"), config).unwrap();
    t.ok(&["mirror", "update", "up"]);
    t.import("trusty", &dependency_debs(&t));
    // A different build of hello 1.0 in one archive, the original in another.
    t.import(
        "trusty",
        &[Deb::new("hello", "1.0").build(&t.path("in/h1"))],
    );
    ok(t.halo()
        .args([
            "import",
            "--archive",
            "extra",
            "--dist",
            "trusty",
            "--component",
            "main",
        ])
        .arg(
            Deb::new("hello", "1.0")
                .payload("rebuilt")
                .build(&t.path("in/h2")),
        ));
    t.snapshot();

    let remove = |spec: &'static str| -> Vec<&'static str> {
        vec![
            "remove",
            "--archive",
            "rustedhalo",
            "--dist",
            "trusty",
            spec,
        ]
    };
    refused(
        &t,
        &remove("nope"),
        &["nope matches no package in rustedhalo/trusty"],
    );
    refused(&t, &remove("app=9"), &["app=9 matches no package"]);
    refused(&t, &remove("app/i386"), &["app/i386 matches no package"]);
    refused(&t, &remove("Bad_Name"), &["Bad_Name"]);
    refused(&t, &remove("app=1.0=2"), &["app=1.0=2"]);
    refused(
        &t,
        &[
            "remove",
            "--archive",
            "rustedhalo",
            "--dist",
            "trusty",
            "app",
            "nope",
        ],
        &["nope matches no package"],
    );
    refused(
        &t,
        &[
            "remove",
            "--archive",
            "rustedhalo",
            "--dist",
            "xenial",
            "app",
        ],
        &["rustedhalo/xenial does not exist"],
    );
    refused(
        &t,
        &["remove", "--archive", "up", "--dist", "stable", "upkg"],
        &[
            "mirror up",
            "comes back on the next `halo mirror update`",
            "packages",
        ],
    );
    let copy = |from: &'static str, to: &'static str, spec: &'static str| {
        vec!["copy", "--from", from, "--to", to, spec]
    };
    refused(
        &t,
        &copy("rustedhalo/trusty", "extra/trusty", "nope"),
        &["nope matches no package in rustedhalo/trusty"],
    );
    refused(
        &t,
        &copy("rustedhalo/trusty", "up/stable", "app"),
        &["mirror up", "copy into an archive of your own"],
    );
    refused(
        &t,
        &copy("rustedhalo/trusty", "extra/trusty", "hello"),
        &[
            "copy into extra/trusty",
            "hello_1.0_all",
            "different content",
        ],
    );
    refused(
        &t,
        &copy("rustedhalo", "extra/trusty", "app"),
        &["--from \"rustedhalo\": write ARCHIVE/DIST"],
    );
    refused(&t, &["show", "nope"], &["no package \"nope\""]);
    refused(&t, &["list", "--archive", "nope"], &["nope does not exist"]);

    // Copying out of a mirror is what copies are for.
    t.ok(&[
        "copy",
        "--from",
        "up/stable",
        "--to",
        "rustedhalo/trusty",
        "upkg",
    ]);
    let listed = t.ok(&["list", "--archive", "rustedhalo", "upkg"]);
    assert_eq!(listed, "trusty/main upkg 1.0 amd64\n");
    t.snapshot();
    t.assert_sound();
}

#[test]
fn remove_and_copy_aborted_before_their_commit_change_nothing() {
    let t = TestStore::new();
    t.import("trusty", &dependency_debs(&t));
    t.snapshot();
    for args in [
        vec![
            "remove",
            "--archive",
            "rustedhalo",
            "--dist",
            "trusty",
            "unrelated",
        ],
        vec![
            "copy",
            "--from",
            "rustedhalo/trusty",
            "--to",
            "extra/trusty",
            "--with-deps",
            "app",
        ],
    ] {
        let before = t.fingerprint();
        let out = run(t
            .halo()
            .args(&args)
            .env("HALO_FAILPOINT", "edit:before-state"));
        assert!(!out.status.success(), "{args:?}: failpoint not hit");
        assert_eq!(t.fingerprint(), before, "{args:?}: state changed");
        t.assert_sound();
        t.ok(&args);
        assert_ne!(t.fingerprint(), before, "{args:?} did nothing");
    }
    t.ok(&["gc"]);
    assert_eq!(t.temp_files(), 0);
    t.assert_sound();
}

#[test]
fn removing_from_a_mirror_needs_its_filter_to_leave_the_package_out() {
    let up = Upstream::new();
    up.add("main", &Deb::new("upkg", "1.0").arch("amd64"));
    up.add("main", &Deb::new("extra", "1.0").arch("amd64"));
    up.publish("stable", &Publish::default());
    let t = TestStore::new();
    let configure = |packages: &str| {
        let config = format!(
            "[[mirror]]\nname = \"up\"\nurl = \"{}\"\ndists = [\"stable\"]\ncomponents = [\"main\"]\n\
             architectures = [\"amd64\"]\nkeyring = \"{}\"\npackages = [{packages}]\n",
            up.url(),
            up.keyring().display()
        );
        fs::write(t.store().join("halo.toml"), config).unwrap();
    };
    configure("\"upkg\", \"extra\"");
    t.ok(&["mirror", "update", "up"]);
    let remove = ["remove", "--archive", "up", "--dist", "stable", "extra"];
    refused(
        &t,
        &remove,
        &[
            "mirror up keeps extra_1.0_amd64",
            "leave it out of the mirror's `packages`",
        ],
    );
    // The configuration leaves it out now: the next update would drop it,
    // so it may go at once.
    configure("\"upkg\"");
    assert_eq!(t.ok(&remove).trim(), "removed extra_1.0_amd64 (main)");
    let listed = t.ok(&["list", "--archive", "up"]);
    assert_eq!(listed, "stable/main upkg 1.0 amd64\n");
    t.ok(&["mirror", "update", "up"]);
    assert_eq!(t.ok(&["list", "--archive", "up"]), listed, "it stays out");
    t.snapshot();
    t.assert_sound();
}
