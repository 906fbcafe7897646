//! apt's `Snapshots:` field (issue 22): with `[publish] snapshots_url`, a
//! channel's Release names where every snapshot is served, and the real apt
//! that reads it (trixie's apt 3.0, in a trixie system made by mmdebstrap
//! from Debian's archive) installs with `--snapshot ID` from a snapshot
//! older than the one the channel points at.
//!
//! The trixie system is bootstrapped once and kept as a tarball under the
//! target directory (`halo-test-trixie/`), so CI downloads it once. One
//! test: the bootstrap is the cost.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;
use halo_tests::mount::Mount;
use halo_tests::{bin_dir, need_tool, ok, run, Deb, TestStore};

/// Where the client's system sees the mount (and what the Releases say).
const INSIDE: &str = "/srv/halo";

/// A tarball of `mmdebstrap --variant=apt trixie`, made once.
fn trixie_tarball() -> PathBuf {
    let dir = bin_dir().parent().unwrap().join("halo-test-trixie");
    fs::create_dir_all(&dir).unwrap();
    let tar = dir.join("trixie-apt.tar");
    if !tar.is_file() {
        need_tool("mmdebstrap", "mmdebstrap");
        let tmp = dir.join(format!("trixie-apt.{}.tar", std::process::id()));
        ok(Command::new("mmdebstrap")
            .args(["--variant=apt", "--mode=root", "--format=tar", "--quiet"])
            .arg("trixie")
            .arg(&tmp)
            .arg("http://deb.debian.org/debian"));
        fs::rename(&tmp, &tar).unwrap();
    }
    tar
}

/// Runs `script` as root in `root`, with the mount bound at `INSIDE` and
/// /proc mounted, in a mount namespace of its own (nothing outlives it).
fn in_system(root: &Path, mnt: &Path, script: &str) -> (bool, String) {
    need_tool("unshare", "util-linux");
    need_tool("chroot", "coreutils");
    let outer = format!(
        "set -e; mount --bind '{mnt}' '{root}{INSIDE}'; mount -t proc proc '{root}/proc'; \
         exec chroot '{root}' /bin/sh -ec \"$1\"",
        mnt = mnt.display(),
        root = root.display(),
    );
    let out = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(outer)
        .arg("sh")
        .arg(script)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn apt_3_installs_with_snapshot_from_a_snapshot_older_than_the_channel() {
    let tar = trixie_tarball();
    let t = TestStore::new();
    fs::write(
        t.store().join("halo.toml"),
        format!("[publish]\nsnapshots_url = \"file:{INSIDE}/\"\n"),
    )
    .unwrap();
    let mut ids = Vec::new();
    for v in ["1.0", "2.0"] {
        let deb = Deb::new("halo-snap", v).build(&t.path(&format!("in/{v}")));
        t.import("trusty", &[deb]);
        let id = t.snapshot();
        t.ok(&["promote", "--to", "trusty", "--snapshot", &id]);
        ids.push(id);
    }
    let (old, current) = (&ids[0], &ids[1]);
    assert_eq!(&t.channel("trusty"), current);

    let root = t.root().join("trixie");
    fs::create_dir_all(&root).unwrap();
    ok(Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&root));
    fs::create_dir_all(root.join(INSIDE.trim_start_matches('/'))).unwrap();
    fs::create_dir_all(root.join("etc/apt/keyrings")).unwrap();
    fs::copy(
        t.store().join("keys/repo.gpg"),
        root.join("etc/apt/keyrings/halo.gpg"),
    )
    .unwrap();
    // Only our channel: the client never reaches Debian's archive.
    let _ = fs::remove_file(root.join("etc/apt/sources.list"));
    let _ = fs::remove_dir_all(root.join("etc/apt/sources.list.d"));
    fs::create_dir_all(root.join("etc/apt/sources.list.d")).unwrap();
    fs::write(
        root.join("etc/apt/sources.list.d/halo.sources"),
        format!(
            "Types: deb\nURIs: file:{INSIDE}/channels/trusty/rustedhalo\nSuites: trusty\n\
             Components: main\nSigned-By: /etc/apt/keyrings/halo.gpg\n"
        ),
    )
    .unwrap();

    let m = Mount::start(&t.store(), &t.root().join("mnt"), "allow_other");
    let release = fs::read_to_string(
        m.dir
            .join("channels/trusty/rustedhalo/dists/trusty/InRelease"),
    )
    .unwrap();
    let field = format!("Snapshots: file:{INSIDE}/snapshots/@SNAPSHOTID@/rustedhalo/");
    assert!(release.contains(&field), "{release}");

    let script = format!(
        "apt --version | head -1; apt-get update -q; \
         apt-cache policy halo-snap | grep Candidate; \
         apt-get -q --snapshot {old} update; \
         apt-get -q -y --snapshot {old} install halo-snap; \
         dpkg-query -W -f '${{Package}}=${{Version}}\\n' halo-snap"
    );
    let (good, text) = in_system(&root, &m.dir, &script);
    assert!(good, "apt in trixie failed:\n{text}");
    assert!(text.contains("apt 3."), "not apt 3:\n{text}");
    assert!(
        text.contains("Candidate: 2.0"),
        "the channel serves 2.0:\n{text}"
    );
    assert!(
        text.lines().any(|l| l == "halo-snap=1.0"),
        "--snapshot {old} did not install 1.0:\n{text}"
    );
    assert!(
        text.contains(&format!("snapshots/{old}/rustedhalo")),
        "apt did not fetch from the snapshot's tree:\n{text}"
    );
}
