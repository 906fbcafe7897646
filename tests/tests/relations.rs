//! Relationship fields and Multi-Arch: what dpkg refuses, the store
//! refuses (issue 20, item 6). Each value is put in a hand-made `.deb`
//! (`dpkg-deb --nocheck`, as a broken upload would be); the oracle is the
//! real dpkg, twice: `dpkg --dry-run -i` (will dpkg install it?) against an
//! empty database of its own, and `dpkg-deb --build` with its checks (will
//! dpkg build it?). `halo import` must take exactly what dpkg takes,
//! refuse the rest in one line naming the field, exit 1 and leave the store
//! as it was; and everything it takes, the real apt reads.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;
use halo_tests::{need_tool, ok, run, TestStore};

/// Whether the real apt can read a Packages stanza with `field: value`.
fn apt_reads(dir: &Path, field: &str, value: &str, arch: &str) -> bool {
    let repo = dir.join("repo");
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(repo.join("dists/s/main/binary-amd64")).unwrap();
    fs::write(
        repo.join("dists/s/main/binary-amd64/Packages"),
        format!(
            "Package: p\nVersion: 1\nArchitecture: {arch}\n{field}: {value}\nFilename: pool/p.deb\nSize: 1\n\
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
    // A warning about the stanza counts against it; the test Release has
    // no Suite, which apt notes too.
    out.status.success()
        && !text.contains("E:")
        && !text
            .lines()
            .any(|l| l.starts_with("W:") && !l.contains("Conflicting distribution"))
}

/// A package tree whose control says `field: value`, version `version`.
fn package_root(dir: &Path, version: usize, field: &str, value: &str, arch: &str) -> PathBuf {
    let root = dir.join("root");
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        format!("Package: pp\nVersion: {version}\nArchitecture: {arch}\nMaintainer: t <t@example.org>\n{field}: {value}\nDescription: x\n y\n"),
    )
    .unwrap();
    root
}

/// The `.deb` as a broken upload would be: built without dpkg-deb's checks.
fn unchecked_deb(dir: &Path, root: &Path, version: usize, arch: &str) -> PathBuf {
    let deb = dir.join(format!("pp_{version}_{arch}.deb"));
    ok(Command::new("dpkg-deb")
        .args(["--nocheck", "--root-owner-group", "-b"])
        .arg(root)
        .arg(&deb));
    deb
}

/// Whether dpkg-deb builds the tree with its checks on.
fn dpkg_deb_builds(dir: &Path, root: &Path) -> bool {
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .arg(root)
        .arg(dir.join("checked.deb")))
    .status
    .success()
}

/// Whether `dpkg --dry-run -i` takes the `.deb`, with a database of its own
/// (so the system's dpkg is neither read nor locked); unmet dependencies are
/// not the question here (`--force-depends`), parsing is.
fn dpkg_installs(dir: &Path, deb: &Path) -> bool {
    let admin = dir.join("dpkg-admin");
    fs::create_dir_all(admin.join("updates")).unwrap();
    fs::create_dir_all(admin.join("info")).unwrap();
    fs::write(admin.join("status"), "").unwrap();
    fs::write(admin.join("available"), "").unwrap();
    run(Command::new("dpkg")
        .arg(format!("--admindir={}", admin.display()))
        .args(["--force-not-root", "--force-depends", "--dry-run", "-i"])
        .arg(deb))
    .status
    .success()
}

/// `halo import` of the `.deb`: whether it took it, and stderr. A refusal
/// must be one line, exit 1, and change nothing.
fn halo_imports(t: &TestStore, deb: &Path, what: &str) -> (bool, String) {
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
        .arg(deb));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
        assert_eq!(
            t.fingerprint(),
            before,
            "{what}: a refused import changed the store"
        );
    }
    (out.status.success(), stderr)
}

#[test]
fn halo_refuses_exactly_what_dpkg_refuses() {
    need_tool("dpkg", "dpkg");
    need_tool("apt-ftparchive", "apt-utils");
    let t = TestStore::new();
    // (field, value, architecture)
    let cases = [
        // The probe's three (issue 20).
        ("Depends", "foo (=> 1.0)", "all"),
        ("Provides", "%%%", "all"),
        ("Multi-Arch", "sometimes", "amd64"),
        // Valid relations: qualifiers, versions, alternatives.
        ("Depends", "libc6 (>= 2.34)", "all"),
        ("Depends", "a | b (<< 2:1.0~rc1-1), c:any, d:amd64", "all"),
        ("Depends", "python3:any (>= 3.11~) | python3-old", "all"),
        ("Pre-Depends", "dpkg (>= 1.17.5)", "all"),
        ("Recommends", "a | b, c", "all"),
        ("Suggests", "x (>> 1)", "all"),
        ("Enhances", "a | b", "all"),
        ("Breaks", "old (<< 2)", "all"),
        ("Conflicts", "other", "all"),
        ("Replaces", "old (<< 2)", "all"),
        ("Provides", "virtual (= 1.0), other:any", "all"),
        ("Depends", "foo (1.0)", "all"),
        ("Depends", "perl (< 5)", "all"),
        ("Multi-Arch", "same", "amd64"),
        ("Multi-Arch", "foreign", "all"),
        ("Multi-Arch", "allowed", "amd64"),
        ("Multi-Arch", "no", "amd64"),
        // What dpkg refuses.
        ("Depends", "-a", "all"),
        ("Depends", "a:", "all"),
        ("Depends", "trailing,", "all"),
        ("Depends", "foo :| bar", "all"),
        ("Depends", "foo (>= 1.0", "all"),
        ("Depends", "foo (>= )", "all"),
        ("Depends", "a, , b", "all"),
        ("Depends", "a | | b", "all"),
        ("Depends", "d [amd64]", "all"),
        ("Depends", "d <!nocheck>", "all"),
        ("Depends", "a b", "all"),
        ("Depends", "a (>< 1)", "all"),
        ("Depends", "a (>= abc)", "all"),
        ("Depends", "a:b_c", "all"),
        ("Breaks", "a | b", "all"),
        ("Provides", "a | b", "all"),
        ("Multi-Arch", "same", "all"),
        ("Multi-Arch", "foreign x", "amd64"),
    ];
    let mut refused = 0;
    for (i, (field, value, arch)) in cases.iter().enumerate() {
        let what = format!("{field}: {value} (Architecture: {arch})");
        let dir = t.root().join(format!("case{i}"));
        fs::create_dir_all(&dir).unwrap();
        let version = i + 1;
        let root = package_root(&dir, version, field, value, arch);
        let deb = unchecked_deb(&dir, &root, version, arch);
        let dpkg = dpkg_installs(&dir, &deb);
        assert_eq!(
            dpkg_deb_builds(&dir, &root),
            dpkg,
            "{what}: dpkg-deb --build and dpkg -i disagree"
        );
        let (halo, stderr) = halo_imports(&t, &deb, &what);
        assert_eq!(
            halo, dpkg,
            "{what}: dpkg takes it: {dpkg}, halo imports it: {halo} ({stderr})"
        );
        if halo {
            assert!(
                apt_reads(&dir.join("apt-side"), field, value, arch),
                "{what}: halo took it but apt cannot read it"
            );
        } else {
            assert!(
                stderr.contains(&format!("field {field}:")),
                "{what}: the line names the field: {stderr}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 21, "the cases exercise refusals");
    t.assert_sound();
}

#[test]
fn the_probes_three_packages_are_refused_in_one_line_each() {
    let t = TestStore::new();
    for (i, (field, value, arch, want)) in [
        (
            "Depends",
            "foo (=> 1.0)",
            "all",
            "field Depends: reference to \"foo\": version contains ' ' in \"foo (=> 1.0)\"",
        ),
        (
            "Provides",
            "%%%",
            "all",
            "field Provides: package name \"%%%\" must start with an alphanumeric character",
        ),
        (
            "Multi-Arch",
            "sometimes",
            "amd64",
            "field Multi-Arch: not one of no, same, foreign, allowed in \"sometimes\"",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = t.root().join(format!("probe{i}"));
        fs::create_dir_all(&dir).unwrap();
        let root = package_root(&dir, i + 1, field, value, arch);
        let deb = unchecked_deb(&dir, &root, i + 1, arch);
        let (took, stderr) = halo_imports(&t, &deb, value);
        assert!(!took, "{field}: {value} imported");
        assert!(stderr.contains(want), "{stderr}");
        assert!(
            stderr.contains(deb.file_name().unwrap().to_str().unwrap()),
            "{stderr}"
        );
    }
    t.assert_sound();
}

/// Every stanza dpkg itself installed on this machine passes: real
/// relations in bulk, from the dpkg database and apt's lists.
#[test]
fn every_relation_dpkg_and_apt_hold_here_passes() {
    let mut files = vec![PathBuf::from("/var/lib/dpkg/status")];
    if let Ok(lists) = std::fs::read_dir("/var/lib/apt/lists") {
        files.extend(
            lists
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with("_Packages")),
        );
    }
    let mut stanzas = 0;
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
            let p = repofs::deb822::parse_single(stanza)
                .unwrap_or_else(|e| panic!("{}: {e}\n{stanza}", file.display()));
            repofs::debian::relation::check_relations(
                p.fields()
                    .iter()
                    .map(|f| (f.name.as_str(), f.value.as_str())),
            )
            .unwrap_or_else(|e| panic!("{}: {e}\n{stanza}", file.display()));
            stanzas += 1;
        }
    }
    assert!(stanzas > 100, "{stanzas} stanzas");
}

/// A native source package whose `.dsc` says `Build-Depends: value`: built
/// by `dpkg-source -b` when it takes the value (the oracle), else built
/// with a plain value and the `.dsc` edited, as a hand-made upload would be.
fn source_package(dir: &Path, version: usize, value: &str) -> (bool, PathBuf) {
    let name = format!("ss-{version}");
    let src = dir.join(&name);
    fs::create_dir_all(src.join("debian/source")).unwrap();
    fs::write(src.join("debian/source/format"), "3.0 (native)\n").unwrap();
    fs::write(src.join("README"), "x\n").unwrap();
    let control = |bd: &str| {
        format!("Source: ss\nMaintainer: T <t@example.org>\nBuild-Depends: {bd}\nStandards-Version: 4.6.2\n\nPackage: ss\nArchitecture: all\nDescription: t\n t\n")
    };
    fs::write(
        src.join("debian/changelog"),
        format!("ss ({version}) stable; urgency=medium\n\n  * T.\n\n -- T <t@example.org>  Fri, 27 Nov 2026 00:00:00 +0000\n"),
    )
    .unwrap();
    fs::write(src.join("debian/rules"), "#!/usr/bin/make -f\n").unwrap();
    let build = || {
        run(Command::new("dpkg-source")
            .arg("-b")
            .arg(&name)
            .current_dir(dir))
        .status
        .success()
    };
    fs::write(src.join("debian/control"), control(value)).unwrap();
    let takes = build();
    let dsc = dir.join(format!("ss_{version}.dsc"));
    if !takes {
        fs::write(src.join("debian/control"), control("make")).unwrap();
        assert!(build(), "dpkg-source -b with Build-Depends: make");
        let text = fs::read_to_string(&dsc).unwrap();
        fs::write(
            &dsc,
            text.replace(
                "Build-Depends: make\n",
                &format!("Build-Depends: {value}\n"),
            ),
        )
        .unwrap();
    }
    (takes, dsc)
}

#[test]
fn build_relations_are_taken_as_dpkg_source_takes_them() {
    need_tool("dpkg-source", "dpkg-dev");
    let t = TestStore::new();
    let cases = [
        "make, d:amd64 [amd64 !i386] <!nocheck> <stage1 cross>, e (>= 1) [linux-any] | f",
        "debhelper-compat (= 13), python3:any, libfoo-dev (>= 1.2~) <!nocheck>",
        "a,",
        "foo (=> 1.0)",
        "a (1.0)",
        "-a",
        "a [amd64",
        "a:",
        "a_b",
    ];
    let mut refused = 0;
    for (i, value) in cases.iter().enumerate() {
        let dir = t.root().join(format!("src{i}"));
        fs::create_dir_all(&dir).unwrap();
        let (dpkg, dsc) = source_package(&dir, i + 1, value);
        let what = format!("Build-Depends: {value}");
        let (halo, stderr) = halo_imports(&t, &dsc, &what);
        assert_eq!(
            halo, dpkg,
            "{what}: dpkg-source takes it: {dpkg}, halo imports it: {halo} ({stderr})"
        );
        if !halo {
            assert!(stderr.contains("field Build-Depends:"), "{what}: {stderr}");
            refused += 1;
        }
    }
    assert_eq!(refused, 6);
    t.assert_sound();
}

/// A mirror refuses an upstream index holding a stanza dpkg would refuse:
/// the update fails in one line naming the field, and nothing of it is
/// committed (docs/operations.md says why it is not dropped instead).
#[test]
fn a_mirror_refuses_an_index_with_a_stanza_dpkg_refuses() {
    use halo_tests::upstream::{Publish, Upstream};
    let up = Upstream::new();
    up.add("main", &halo_tests::Deb::new("good", "1.0"));
    let dir = up.debs().join("bad");
    fs::create_dir_all(&dir).unwrap();
    let root = package_root(&dir, 1, "Multi-Arch", "sometimes", "amd64");
    let deb = unchecked_deb(&dir, &root, 1, "amd64");
    up.add_deb("main", &deb);
    up.publish("stable", &Publish::default());
    let t = TestStore::new();
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[fetch]\nretries = 0\n\n[[mirror]]\nname = \"up\"\nurl = \"{}\"\ndists = [\"stable\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"{}\"\n",
            up.url(),
            up.keyring().display()
        ),
    )
    .unwrap();
    let before = t.fingerprint();
    let out = run(t.halo().args(["mirror", "update", "up"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("halo:")).collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(
        lines[0].contains("/dists/stable/main/binary-amd64/")
            && lines[0].contains("stanza at line ")
            && lines[0].contains(
                "field Multi-Arch: not one of no, same, foreign, allowed in \"sometimes\""
            ),
        "{stderr}"
    );
    assert_eq!(
        t.fingerprint(),
        before,
        "a refused update changed the store"
    );
    t.assert_sound();
}
