//! Contents indices (issue 22): Debian's `apt-file` finds a file of ours
//! through a channel of the real mount, the index is byte for byte what
//! `apt-ftparchive contents` prints for the same packages, a new version
//! with other files changes it (even when the pack of its import is torn),
//! and the packs of lists are checked by `fsck` (torn, lying) and collected
//! or rewritten by `gc`.
//!
//! One store, one mount: the setup (dpkg-deb, repofs, apt) is the cost.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;
use halo_tests::mount::{apt_ok, Mount};
use halo_tests::{need_tool, ok, run, Apt, Deb, TestStore};

fn zcat(path: &Path) -> String {
    ok(Command::new("gzip").arg("-dc").arg(path))
}

/// `apt-ftparchive contents DIR` over copies of `debs`.
fn ftparchive(t: &TestStore, name: &str, debs: &[&PathBuf]) -> String {
    need_tool("apt-ftparchive", "apt-utils");
    let dir = t
        .path(&format!("ftp-{name}/x"))
        .parent()
        .unwrap()
        .to_path_buf();
    for d in debs {
        fs::copy(d, dir.join(d.file_name().unwrap())).unwrap();
    }
    ok(Command::new("apt-ftparchive").arg("contents").arg(&dir))
}

#[test]
fn apt_file_finds_our_files_through_the_mount_and_the_index_is_apt_ftparchives() {
    need_tool("apt-file", "apt-file");
    let t = TestStore::new();
    let dir = t.path("in/1");
    let tool = Deb::new("halo-tool", "1.0")
        .arch("amd64")
        .file("/usr/bin/halo-contents-probe", "#!/bin/sh\n", 0o755)
        .file(
            "/usr/lib/halo/a-path-long-enough-to-need-spaces-not-tabs.so",
            "x",
            0o644,
        )
        .build(&dir);
    let common = Deb::new("halo-common", "1.0")
        .file("/usr/bin/halo-contents-probe", "#!/bin/sh\n", 0o755)
        .compression("zstd")
        .build(&dir);
    // An installer package: its own index, Contents-udeb-<arch>.
    let udeb_deb = Deb::new("halo-udeb", "1.0")
        .arch("amd64")
        .file("/lib/halo-installer", "x", 0o644)
        .build(&t.path("in/udeb"));
    let udeb = dir.join("halo-udeb_1.0_amd64.udeb");
    fs::copy(&udeb_deb, &udeb).unwrap();
    t.import("trusty", &[tool.clone(), common.clone(), udeb.clone()]);
    let first = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &first]);

    // The format: what apt-ftparchive prints for the same packages.
    let export = t.export_channel("trusty");
    let dists = export.join("rustedhalo/dists/trusty");
    let ours = zcat(&dists.join("main/Contents-amd64.gz"));
    assert_eq!(ours, ftparchive(&t, "deb", &[&tool, &common]));
    assert!(ours.contains("usr/bin/halo-contents-probe"), "{ours}");
    let udebs = zcat(&dists.join("main/Contents-udeb-amd64.gz"));
    assert_eq!(udebs, ftparchive(&t, "udeb", &[&udeb_deb]));
    let release = fs::read_to_string(dists.join("Release")).unwrap();
    for listed in ["main/Contents-amd64.gz", "main/Contents-udeb-amd64.gz"] {
        assert!(
            release.contains(listed),
            "{listed} not in Release:\n{release}"
        );
    }

    // apt-file, through the mount, sandboxed as _apt.
    let m = Mount::start(&t.store(), &t.root().join("mnt"), "allow_other");
    let base = format!("file:{}/channels/trusty/rustedhalo", m.dir.display());
    let apt = Apt::new(
        &t.root().join("apt"),
        &format!(
            "deb [signed-by={}] {base} trusty main\n",
            t.store().join("keys/repo.gpg").display()
        ),
    );
    fs::copy(
        "/etc/apt/apt.conf.d/50apt-file.conf",
        apt.dir.join("etc/apt.conf.d/50apt-file.conf"),
    )
    .unwrap();
    apt_ok(&apt, "apt-get", &["update"]);
    let lists: Vec<String> = fs::read_dir(apt.dir.join("lists"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        lists.iter().any(|n| n.contains("Contents-amd64")),
        "apt-get update fetched no Contents: {lists:?}"
    );
    let search = |pattern: &str| -> String {
        let out = run(apt.command("apt-file").args(["search", pattern]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let found = search("/usr/bin/halo-contents-probe");
    assert_eq!(
        found,
        "halo-common: /usr/bin/halo-contents-probe\nhalo-tool: /usr/bin/halo-contents-probe\n"
    );

    // A new version with another file: the next snapshot's index follows,
    // and apt-file after an update finds the new path, not the old. The
    // pack of that import is torn first: it reads as missing, the snapshot
    // lists the package from the pool, and the index is still right.
    let tool2 = Deb::new("halo-tool", "2.0")
        .arch("amd64")
        .file("/usr/bin/halo-contents-probe2", "#!/bin/sh\n", 0o755)
        .build(&t.path("in/2"));
    let before = packs(&t);
    t.import("trusty", std::slice::from_ref(&tool2));
    let new: Vec<PathBuf> = packs(&t)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "one pack for the import: {new:?}");
    assert!(pack_lists(&new[0], &sha256(&tool2)));
    let whole = fs::read(&new[0]).unwrap();
    fs::write(&new[0], &whole[..whole.len() / 2]).unwrap();
    t.ok(&[
        "remove",
        "--archive",
        "rustedhalo",
        "--dist",
        "trusty",
        "halo-tool=1.0",
    ]);
    let second = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &second]);
    apt_ok(&apt, "apt-get", &["update"]);
    assert_eq!(
        search("/usr/bin/halo-contents-probe2"),
        "halo-tool: /usr/bin/halo-contents-probe2\n"
    );
    assert_eq!(
        search("/usr/lib/halo/a-path-long-enough-to-need-spaces-not-tabs.so"),
        ""
    );
    drop(m);

    // Packs, not one file per package: no sidecar was written.
    let sidecars: Vec<String> = fs::read_dir(t.store().join("contents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "packs" && n != "components")
        .collect();
    assert!(sidecars.is_empty(), "sidecars written: {sidecars:?}");
    // fsck names a torn pack (a cache: gc removes it)...
    let fsck = |want: Option<&str>| {
        let out = run(t.halo().arg("fsck"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        match want {
            Some(w) => {
                assert_eq!(out.status.code(), Some(2), "fsck said {text}");
                assert!(text.contains(w), "{text}");
            }
            None => assert!(out.status.success(), "fsck said {text}"),
        }
    };
    // The snapshot listed halo-tool 2.0 from the pool into a pack of the
    // same content as the torn one: the same name, whole again.
    assert!(pack_lists(&new[0], &sha256(&tool2)));
    let whole = fs::read(&new[0]).unwrap();
    fs::write(&new[0], &whole[..whole.len() - 1]).unwrap();
    fsck(Some("Contents lists torn or altered"));
    fs::write(&new[0], &whole).unwrap();
    t.assert_sound();
    // ...and a whole pack that lies about a package: its digests agree,
    // its list does not agree with the package.
    let lying = t.store().join("contents/packs").join("lying");
    let mut w = repofs::store::contents::pack::PackWriter::new(Vec::new());
    let key = repofs::store::contents::pack::key(&sha256(&common)).unwrap();
    w.add(&key, ["usr/bin/not-in-the-package"]).unwrap();
    fs::write(&lying, w.finish().unwrap().0).unwrap();
    fsck(Some("disagrees with the package"));
    fs::remove_file(&lying).unwrap();
    // A sidecar of a store made before packs is still checked.
    let sidecar = |deb: &Path| -> PathBuf {
        let sha = sha256(deb);
        t.store().join("contents").join(&sha[..2]).join(sha)
    };
    fs::create_dir_all(sidecar(&common).parent().unwrap()).unwrap();
    fs::write(sidecar(&common), b"halo-contents-1 0000\nusr/bin/x\n").unwrap();
    fsck(Some("Contents sidecar disagrees"));
    fs::remove_file(sidecar(&common)).unwrap();
    t.assert_sound();

    // gc: once no snapshot names halo-tool 1.0, no pack lists it; the
    // first import's pack is rewritten with the lists still needed.
    assert!(packs(&t).iter().any(|p| pack_lists(p, &sha256(&tool))));
    t.ok(&["gc", "--keep-snapshots", "0", "--keep-previous", "0"]);
    let left = packs(&t);
    assert!(
        !left.iter().any(|p| pack_lists(p, &sha256(&tool))),
        "{left:?}"
    );
    for kept in [&common, &udeb] {
        assert!(
            left.iter().any(|p| pack_lists(p, &sha256(kept))),
            "{left:?}"
        );
    }
    t.assert_sound();
    // The lists gc kept render the index again: with the component lists
    // gone, the next snapshot reads every list from the packs.
    let extra = Deb::new("halo-extra", "1.0")
        .arch("amd64")
        .file("/usr/bin/halo-extra", "x", 0o755)
        .build(&t.path("in/3"));
    t.import("trusty", std::slice::from_ref(&extra));
    fs::remove_dir_all(t.store().join("contents/components")).unwrap();
    let third = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &third]);
    let export = t.export_channel("trusty");
    let ours = zcat(&export.join("rustedhalo/dists/trusty/main/Contents-amd64.gz"));
    assert_eq!(ours, ftparchive(&t, "gc", &[&common, &tool2, &extra]));
    t.assert_sound();
}

fn sha256(file: &Path) -> String {
    let out = ok(Command::new("sha256sum").arg(file));
    out.split_whitespace().next().unwrap().to_string()
}

/// The Contents packs of the store.
fn packs(t: &TestStore) -> Vec<PathBuf> {
    match fs::read_dir(t.store().join("contents/packs")) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether the pack at `path` lists package `sha256` (its index names it).
fn pack_lists(path: &Path, sha256: &str) -> bool {
    let file = std::fs::File::open(path).unwrap();
    let key = repofs::store::contents::pack::key(sha256).unwrap();
    repofs::store::contents::pack::read_index(&file)
        .unwrap_or_else(|| panic!("{} is not a whole pack", path.display()))
        .entries()
        .iter()
        .any(|(k, _)| *k == key)
}
