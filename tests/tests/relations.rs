//! Relationship fields: halo refuses exactly the values the real apt cannot
//! parse (a `Packages` stanza apt cannot read breaks `apt-get update` for
//! every client of the dist), and accepts what apt reads. Each value is
//! put in a hand-made `.deb` (`dpkg-deb --nocheck`, as a broken upload
//! would be) for `halo import`, and in a one-stanza repository for apt.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use fs_err as fs;
use halo_tests::{need_tool, ok, run, TestStore};

/// Whether the real apt can read a Packages stanza with `Depends: value`.
fn apt_reads(dir: &Path, value: &str) -> bool {
    let repo = dir.join("repo");
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(repo.join("dists/s/main/binary-amd64")).unwrap();
    fs::write(
        repo.join("dists/s/main/binary-amd64/Packages"),
        format!(
            "Package: p\nVersion: 1\nArchitecture: all\nDepends: {value}\nFilename: pool/p.deb\nSize: 1\n\
SHA256: 0000000000000000000000000000000000000000000000000000000000000000\nDescription: x\n\n"
        ),
    )
    .unwrap();
    let release = ok(Command::new("apt-ftparchive")
        .arg("release")
        .arg(".")
        .current_dir(repo.join("dists/s")));
    fs::write(repo.join("dists/s/Release"), release).unwrap();
    let apt = halo_tests::Apt::new(
        &dir.join("apt"),
        &format!("deb [trusted=yes] file:{} s main\n", repo.display()),
    );
    let out = run(apt.command("apt-get").arg("update"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    out.status.success() && !text.contains("E:")
}

/// Whether `halo import` takes a `.deb` whose control says `Depends: value`.
fn halo_imports(t: &TestStore, dir: &Path, version: usize, value: &str) -> (bool, String) {
    let root = dir.join("root");
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        format!("Package: pp\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.org>\nDepends: {value}\nDescription: x\n y\n"),
    )
    .unwrap();
    let deb = dir.join(format!("pp_{version}_all.deb"));
    ok(Command::new("dpkg-deb")
        .args(["--nocheck", "--root-owner-group", "-b"])
        .arg(&root)
        .arg(&deb));
    let before = t.fingerprint();
    let out = run(t
        .halo()
        .args([
            "import",
            "--archive",
            "rel",
            "--dist",
            "s",
            "--component",
            "main",
        ])
        .arg(&deb));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(1), "{value:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{value:?}: {stderr}");
        assert_eq!(
            t.fingerprint(),
            before,
            "{value:?}: a refused import changed the store"
        );
    }
    (out.status.success(), stderr)
}

#[test]
fn halo_refuses_exactly_the_relations_apt_cannot_parse() {
    need_tool("apt-ftparchive", "apt-utils");
    let t = TestStore::new();
    let cases = [
        "libc6 (>= 2.34)",
        "a | b (<< 2:1.0~rc1-1), c:any, d:amd64",
        "d [amd64]",
        "d <!nocheck>",
        "foo (1.0)",
        "-a",
        "a:",
        "trailing,",
        "foo :| bar",
        "foo (>= 1.0",
        "foo (>= )",
        "a, , b",
        "a | | b",
        "a [amd64",
        "a <nocheck",
        "a b",
    ];
    let mut refused = 0;
    for (i, value) in cases.iter().enumerate() {
        let dir = t.root().join(format!("case{i}"));
        let apt = apt_reads(&dir.join("apt-side"), value);
        let (halo, stderr) = halo_imports(&t, &dir, i + 1, value);
        assert_eq!(
            halo, apt,
            "{value:?}: apt reads it: {apt}, halo imports it: {halo} ({stderr})"
        );
        if !halo {
            // The error names the field and the offending part of the value.
            let quoted = stderr
                .rsplit_once(" in \"")
                .map(|(_, q)| q.trim_end().trim_end_matches('"'))
                .unwrap_or("");
            assert!(
                stderr.contains("field Depends:") && !quoted.is_empty() && value.contains(quoted),
                "{stderr}"
            );
            refused += 1;
        }
    }
    assert!(refused >= 7, "the cases exercise refusals: {refused}");
    t.assert_sound();
}
