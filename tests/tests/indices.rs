//! Index files against Debian's own tools: stanzas field by field against
//! `dpkg-scanpackages`/`dpkg-scansources`, signatures with `gpgv`, and the
//! real `apt-get` resolving and downloading from `halo export` trees.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

use fs_err as fs;
use halo_tests::{field, need_tool, ok, parse_stanzas, Apt, Deb, TestStore};

type Stanza = Vec<(String, String)>;

fn by_key(stanzas: Vec<Stanza>) -> BTreeMap<String, Stanza> {
    stanzas
        .into_iter()
        .map(|s| {
            let key = format!(
                "{}_{}_{}",
                field(&s, "Package").unwrap_or_default(),
                field(&s, "Version").unwrap_or_default(),
                field(&s, "Architecture").unwrap_or_default()
            );
            (key, s)
        })
        .collect()
}

#[test]
fn packages_stanzas_match_dpkg_scanpackages_field_by_field() {
    need_tool("dpkg-scanpackages", "dpkg-dev");
    let t = TestStore::new();
    let debs = vec![
        Deb::new("plain-gz", "1.0-1").compression("gzip").build(&t.path("in/a")),
        Deb::new("with-zstd", "2:3.4~rc1-0ubuntu1")
            .arch("amd64")
            .compression("zstd")
            .fields("Depends: plain-gz (>= 1.0), libc6 | libc6.1\nMulti-Arch: foreign\nSection: admin\nPriority: optional\nHomepage: https://example.org\nX-Custom-Field: kept\nInstalled-Size: 42\n")
            .build(&t.path("in/b")),
        Deb::new("no-compress", "0.1").compression("none").fields("Source: srcpkg (0.1-1)\nProvides: virtual-thing\n").build(&t.path("in/c")),
        Deb::new("libxyz1", "5.0").arch("amd64").fields("Source: xyz\nPre-Depends: dpkg (>= 1.15)\nBreaks: old\nReplaces: old\n").build(&t.path("in/d")),
    ];
    t.import("trusty", &debs);
    let id = t.snapshot();
    let export = t.root().join("exp");
    t.ok(&["export", "--snapshot", &id, export.to_str().unwrap()]);
    let archive = export.join("rustedhalo");
    let ours = fs::read_to_string(archive.join("dists/trusty/main/binary-amd64/Packages")).unwrap();
    let theirs = ok(Command::new("dpkg-scanpackages")
        .args(["-m", "pool", "/dev/null"])
        .current_dir(&archive));
    let (ours, theirs) = (by_key(parse_stanzas(&ours)), by_key(parse_stanzas(&theirs)));
    assert_eq!(ours.len(), 4);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (key, theirs) in &theirs {
        let ours = &ours[key];
        // Same fields with the same values, in the same order.
        assert_eq!(ours, theirs, "stanza of {key} differs");
    }
    // Pool paths as Debian lays them out.
    let files: Vec<_> = ours
        .values()
        .map(|s| field(s, "Filename").unwrap().to_string())
        .collect();
    assert!(
        files.contains(&"pool/main/x/xyz/libxyz1_5.0_amd64.deb".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"pool/main/s/srcpkg/no-compress_0.1_all.deb".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"pool/main/w/with-zstd/with-zstd_3.4~rc1-0ubuntu1_amd64.deb".to_string()),
        "{files:?}"
    );
}

#[test]
fn compressed_indices_and_release_hashes_agree() {
    let t = TestStore::new();
    t.import("trusty", &[Deb::new("pkg-a", "1").build(&t.path("in"))]);
    let exp = t.root().join("exp");
    let id = t.snapshot();
    t.ok(&["export", "--snapshot", &id, exp.to_str().unwrap()]);
    let dist = exp.join("rustedhalo/dists/trusty");
    let plain = fs::read(dist.join("main/binary-amd64/Packages")).unwrap();
    let gz = ok(Command::new("gzip")
        .arg("-dc")
        .arg(dist.join("main/binary-amd64/Packages.gz")));
    let xz = ok(Command::new("xz")
        .arg("-dc")
        .arg(dist.join("main/binary-amd64/Packages.xz")));
    assert_eq!(gz.as_bytes(), &plain[..]);
    assert_eq!(xz.as_bytes(), &plain[..]);
    let release = fs::read_to_string(dist.join("Release")).unwrap();
    let stanza = &parse_stanzas(&release)[0];
    for f in [
        "Origin",
        "Label",
        "Suite",
        "Codename",
        "Date",
        "Architectures",
        "Components",
    ] {
        assert!(field(stanza, f).is_some(), "Release lacks {f}:\n{release}");
    }
    assert_eq!(field(stanza, "Acquire-By-Hash"), Some("yes"));
    let sha256 = field(stanza, "SHA256").unwrap();
    let mut listed = 0;
    for line in sha256.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parts: Vec<_> = line.split_whitespace().collect();
        let path = dist.join(parts[2]);
        let sum = ok(Command::new("sha256sum").arg(&path));
        assert_eq!(
            sum.split_whitespace().next(),
            Some(parts[0]),
            "{}",
            parts[2]
        );
        assert_eq!(fs::metadata(&path).unwrap().len().to_string(), parts[1]);
        // by-hash serves the same bytes.
        let dir = path.parent().unwrap();
        let by_hash = dir.join("by-hash/SHA256").join(parts[0]);
        assert_eq!(fs::read(&by_hash).unwrap(), fs::read(&path).unwrap());
        listed += 1;
    }
    // Packages, .gz, .xz; Contents-amd64 and its .gz (tests/tests/contents.rs).
    assert_eq!(listed, 5);
    assert!(field(stanza, "MD5Sum").is_some());
    assert!(field(stanza, "SHA1").is_none() && field(stanza, "SHA512").is_none());
}

#[test]
fn release_signatures_pass_gpgv() {
    need_tool("gpgv", "gpgv");
    let t = TestStore::new();
    t.import("trusty", &[Deb::new("pkg-a", "1").build(&t.path("in"))]);
    let id = t.snapshot();
    let exp = t.root().join("exp");
    t.ok(&["export", "--snapshot", &id, exp.to_str().unwrap()]);
    let dist = exp.join("rustedhalo/dists/trusty");
    let keyring = t.store().join("keys/repo.gpg");
    ok(Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg(dist.join("InRelease")));
    ok(Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg(dist.join("Release.gpg"))
        .arg(dist.join("Release")));
    // A tampered Release fails the detached signature.
    let tampered = t.path("tampered/Release");
    let mut text = fs::read_to_string(dist.join("Release")).unwrap();
    text = text.replace("Origin: rustedhalo", "Origin: evil");
    fs::write(&tampered, text).unwrap();
    let out = halo_tests::run(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg(dist.join("Release.gpg"))
            .arg(&tampered),
    );
    assert!(!out.status.success(), "gpgv accepted a tampered Release");
    // The armored public key carries the same key.
    let asc = fs::read_to_string(t.store().join("keys/repo.asc")).unwrap();
    assert!(asc.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
}

fn sources_line(t: &TestStore, export: &std::path::Path) -> String {
    format!(
        "deb [signed-by={}] file:{}/rustedhalo trusty main\n",
        t.store().join("keys/repo.gpg").display(),
        export.display()
    )
}

#[test]
fn apt_installs_from_each_channel_and_new_versions_reach_testing_only_by_promotion() {
    let t = TestStore::new();
    let v1 = vec![
        Deb::new("halo-lib", "1.0").build(&t.path("in/1")),
        Deb::new("halo-app", "1.0")
            .arch("amd64")
            .fields("Depends: halo-lib (>= 1.0)\n")
            .build(&t.path("in/1")),
    ];
    t.import("trusty", &v1);
    let first = t.snapshot();
    for ch in ["trusty-unstable", "trusty-testing", "trusty"] {
        t.ok(&["promote", "--to", ch, "--snapshot", &first]);
    }
    let v2 = vec![
        Deb::new("halo-lib", "1.1").build(&t.path("in/2")),
        Deb::new("halo-app", "1.1")
            .arch("amd64")
            .fields("Depends: halo-lib (>= 1.1)\n")
            .build(&t.path("in/2")),
    ];
    t.import("trusty", &v2);
    let second = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &second]);

    for (ch, want) in [
        ("trusty-unstable", "1.1"),
        ("trusty-testing", "1.0"),
        ("trusty", "1.0"),
    ] {
        let export = t.export_channel(ch);
        let apt = Apt::new(
            &t.root().join(format!("apt-{ch}")),
            &sources_line(&t, &export),
        );
        apt.update();
        assert_eq!(apt.candidate("halo-app").as_deref(), Some(want), "{ch}");
        let plan = apt.simulate_install(&["halo-app"]);
        assert!(
            plan.contains(&("halo-lib".to_string(), want.to_string())),
            "{ch}: {plan:?}"
        );
        ok(apt
            .command("apt-get")
            .args(["install", "--download-only", "-y", "halo-app"]));
    }

    // Testing gets 1.1 only when unstable's snapshot is promoted.
    t.ok(&[
        "promote",
        "--to",
        "trusty-testing",
        "--from",
        "trusty-unstable",
    ]);
    let export = t.export_channel("trusty-testing");
    let apt = Apt::new(&t.root().join("apt-testing-2"), &sources_line(&t, &export));
    apt.update();
    assert_eq!(apt.candidate("halo-app").as_deref(), Some("1.1"));
    // Fetch the .debs for real (copy: makes apt copy them) and compare bytes.
    let copy = sources_line(&t, &export).replace("file:", "copy:");
    let apt = Apt::new(&t.root().join("apt-copy"), &copy);
    apt.update();
    ok(apt
        .command("apt-get")
        .args(["install", "--download-only", "-y", "halo-app"]));
    let fetched = apt.dir.join("cache/archives/halo-app_1.1_amd64.deb");
    assert_eq!(fs::read(fetched).unwrap(), fs::read(&v2[1]).unwrap());
}

/// A component large enough that a snapshot views its state in pieces on
/// every core (`repofs::model::state_view`, from 4 MiB of state): each of
/// its indices holds what `dpkg-scanpackages` says of each package, in the
/// index of its architecture (`all` in every one), udebs in the
/// installer's, and text JSON has to escape comes out as it went in.
#[test]
fn a_large_components_indices_match_dpkg_scanpackages() {
    use std::path::{Path, PathBuf};
    need_tool("dpkg-scanpackages", "dpkg-dev");
    let t = TestStore::new();
    // The bulk from the benchmark's generator: dpkg-deb would take a minute.
    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/gen_debs.py");
    let listed = ok(Command::new("python3")
        .arg(&generator)
        .arg(t.path("bulk"))
        .args(["6000", "1.0", "0"]));
    let mut inputs: Vec<PathBuf> = listed.lines().map(PathBuf::from).collect();
    let special = t.path("special");
    let escaped = "X-Note: say \"hi\" \\ and\ttab, caf\u{e9}\n and a \"second\" line \\\\\n";
    let quoted = Deb::new("quoted", "1.0")
        .arch("amd64")
        .fields(escaped)
        .build(&special);
    let both = Deb::new("everywhere", "2.0").build(&special); // arch all
    let i386 = Deb::new("only-i386", "3.0").arch("i386").build(&special);
    let udeb_deb = Deb::new("installer-bit", "4.0")
        .arch("amd64")
        .build(&t.path("udeb"));
    let udeb = special.join("installer-bit_4.0_amd64.udeb");
    fs::copy(&udeb_deb, &udeb).unwrap();
    // Three of the bulk, for dpkg-scanpackages to describe too.
    for n in [0, 2999, 5999] {
        let from = &inputs[n];
        fs::copy(from, special.join(from.file_name().unwrap())).unwrap();
    }
    inputs.extend([quoted, both, i386, udeb]);
    t.import("trusty", &inputs);
    // The state is large enough to be cut in pieces.
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(t.store().join("state.json")).unwrap()).unwrap();
    let hash = state["rustedhalo"]["trusty"]["main"].as_str().unwrap();
    let blob = t.store().join("pool").join(&hash[..2]).join(hash);
    assert!(fs::metadata(&blob).unwrap().len() > 4 << 20);

    let id = t.snapshot();
    let export = t.root().join("exp");
    t.ok(&["export", "--snapshot", &id, export.to_str().unwrap()]);
    let dist = export.join("rustedhalo/dists/trusty/main");
    let index = |path: &str| by_key(parse_stanzas(&fs::read_to_string(dist.join(path)).unwrap()));
    let amd64 = index("binary-amd64/Packages");
    let i386s = index("binary-i386/Packages");
    let udebs = index("debian-installer/binary-amd64/Packages");
    assert_eq!(amd64.len(), 6000 + 2, "the bulk, quoted and everywhere");
    assert!(amd64.contains_key("quoted_1.0_amd64") && amd64.contains_key("everywhere_2.0_all"));
    assert_eq!(
        i386s.keys().collect::<Vec<_>>(),
        ["everywhere_2.0_all", "only-i386_3.0_i386"]
    );
    assert_eq!(
        udebs.keys().collect::<Vec<_>>(),
        ["installer-bit_4.0_amd64"]
    );
    assert!(!dist.join("debian-installer/binary-i386/Packages").exists());

    // Field by field against dpkg-scanpackages (all but where the file is).
    let scan = |kind: &str| {
        let out = ok(Command::new("dpkg-scanpackages")
            .args(["-t", kind, "-m"])
            .arg(&special)
            .arg("/dev/null"));
        let without_filename = parse_stanzas(&out)
            .into_iter()
            .map(|s| s.into_iter().filter(|(k, _)| k != "Filename").collect())
            .collect();
        by_key(without_filename)
    };
    let theirs: BTreeMap<String, Stanza> = scan("deb").into_iter().chain(scan("udeb")).collect();
    assert_eq!(theirs.len(), 7);
    for (key, theirs) in &theirs {
        let ours = [&amd64, &i386s, &udebs]
            .iter()
            .find_map(|index| index.get(key))
            .unwrap_or_else(|| panic!("{key} is in no index"));
        let ours: Stanza = ours
            .iter()
            .filter(|(k, _)| k != "Filename")
            .cloned()
            .collect();
        assert_eq!(&ours, theirs, "stanza of {key} differs");
    }
    let note = field(&amd64["quoted_1.0_amd64"], "X-Note").unwrap();
    assert!(
        note.contains("say \"hi\" \\ and\ttab, caf\u{e9}"),
        "{note:?}"
    );
    assert!(note.contains("a \"second\" line \\\\"), "{note:?}");
}
