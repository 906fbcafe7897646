//! `keep_versions` (issue 22): an archive's working state keeps the newest
//! N versions of each package, for `halo import` (`[[archive]]`) and for a
//! mirror (`[[mirror]]`); snapshots keep what they froze until gc removes
//! the snapshots, and then the dropped versions' bytes go too.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use fs_err as fs;
use halo_tests::upstream::{Publish, Upstream};
use halo_tests::{ok, run, Deb, TestStore};

/// `name_version` of every binary of `archive`/`dist` in the working state
/// (`halo list`), sorted.
fn listed(t: &TestStore, archive: &str, dist: &str) -> Vec<String> {
    let out = t.ok(&["list", "--archive", archive, "--dist", dist, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("halo list --json: {out}"))
        .iter()
        .map(|p| {
            format!(
                "{}_{}",
                p["package"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    names
}

fn sha256(path: &std::path::Path) -> String {
    let out = ok(Command::new("sha256sum").arg(path));
    out.split_whitespace().next().unwrap().to_string()
}

#[test]
fn keep_versions_2_keeps_two_and_old_snapshots_keep_theirs_until_gc() {
    let t = TestStore::new();
    fs::write(
        t.store().join("halo.toml"),
        "[[archive]]\nname = \"rustedhalo\"\nkeep_versions = 2\n",
    )
    .unwrap();
    let mut debs = Vec::new();
    let mut first = String::new();
    for v in ["1.0", "1.1", "1.10", "1.2"] {
        let deb = Deb::new("kept", v).build(&t.path(&format!("in/{v}")));
        let out = t.import("trusty", std::slice::from_ref(&deb));
        if v == "1.10" {
            // dpkg order: 1.10 > 1.2 > 1.1 > 1.0.
            assert!(out.contains("dropped kept_1.0_all"), "{out}");
        }
        debs.push(deb);
        let id = t.snapshot();
        if v == "1.0" {
            first = id;
        }
    }
    assert_eq!(
        listed(&t, "rustedhalo", "trusty"),
        ["kept_1.10", "kept_1.2"]
    );
    // The first snapshot still serves 1.0.
    let show = t.ok(&["snapshot", "show", &first]);
    assert!(show.contains("1.0"), "{show}");
    let pool = |deb: &std::path::Path| {
        let sha = sha256(deb);
        t.store().join("pool").join(&sha[..2]).join(sha)
    };
    assert!(pool(&debs[0]).is_file());
    t.assert_sound();
    // Once gc drops the snapshots that held 1.0 and 1.1, their bytes go.
    t.ok(&["gc", "--keep-snapshots", "1", "--keep-previous", "0"]);
    assert!(!pool(&debs[0]).exists(), "1.0 left the pool");
    assert!(!pool(&debs[1]).exists(), "1.1 left the pool");
    assert!(pool(&debs[2]).is_file() && pool(&debs[3]).is_file());
    t.assert_sound();

    // keep_versions = 0 is refused, naming the archive and the key.
    fs::write(
        t.store().join("halo.toml"),
        "[[archive]]\nname = \"rustedhalo\"\nkeep_versions = 0\n",
    )
    .unwrap();
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
        .arg(&debs[3]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("archive \"rustedhalo\": keep_versions: must be at least 1"),
        "{stderr}"
    );
}

/// `halo build` publishes through the same retention as `halo import`.
#[test]
fn a_build_keeps_only_the_archives_keep_versions() {
    halo_tests::need_tool("dpkg-buildpackage", "dpkg-dev");
    let t = TestStore::new();
    fs::write(
        t.store().join("halo.toml"),
        "[[archive]]\nname = \"rustedhalo\"\nkeep_versions = 1\n",
    )
    .unwrap();
    let tree = t.root().join("hello");
    halo_tests::build::copy_example(&tree);
    let build = |t: &TestStore| t.ok(&["build", "--path", tree.to_str().unwrap()]);
    build(&t);
    // The binary and its source.
    let both = |v: &str| vec![format!("halo-hello_{v}"); 2];
    assert_eq!(listed(&t, "rustedhalo", "trusty"), both("1.0"));
    let changelog = tree.join("debian/changelog");
    let old = fs::read_to_string(&changelog).unwrap();
    fs::write(
        &changelog,
        format!(
            "halo-hello (1.1) trusty; urgency=medium\n\n  * Next.\n\n \
             -- rustedhalo <halo@example.org>  Sun, 06 Dec 2026 12:00:00 +0000\n\n{old}"
        ),
    )
    .unwrap();
    build(&t);
    assert_eq!(listed(&t, "rustedhalo", "trusty"), both("1.1"));
    t.assert_sound();
}

#[test]
fn a_mirror_with_keep_versions_2_keeps_the_newest_two_the_upstream_lists() {
    let up = Upstream::new();
    for v in ["1", "2", "3"] {
        up.add("main", &Deb::new("many", v));
    }
    up.add("main", &Deb::new("single", "1"));
    up.publish("stable", &Publish::default());
    let t = TestStore::new();
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[[mirror]]\nname = \"up\"\nurl = \"{}\"\ndists = [\"stable\"]\ncomponents = [\"main\"]\n\
architectures = [\"amd64\"]\nkeyring = \"{}\"\nkeep_versions = 2\n",
            up.url(),
            up.keyring().display()
        ),
    )
    .unwrap();
    ok(t.halo().args(["mirror", "update", "up"]));
    assert_eq!(listed(&t, "up", "stable"), ["many_2", "many_3", "single_1"]);
    // The dropped version was never downloaded.
    let fetched: Vec<String> = up.requests().into_iter().map(|(p, _)| p).collect();
    assert!(
        !fetched.iter().any(|p| p.contains("many_1_")),
        "{fetched:?}"
    );
    t.assert_sound();
}
