//! `halo build` in a clean root made from the store's own channel. The
//! upstream is real Debian: the packages `mmdebstrap --variant=buildd` and
//! the example's build dependencies need for this machine's release
//! (cached under the target directory), signed with a test key, served on
//! 127.0.0.1 and mirrored into the store. The example package builds in a
//! root bootstrapped from trusty-unstable (its build dependencies
//! installed there by apt, from the channel) and the real apt installs
//! the result; the next build reuses the cached root; a build dependency
//! the channel lacks fails in one line naming it, exit 2, nothing
//! published; a change to what the root reads makes a new root and
//! removes the old one.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use fs_err as fs;
use halo_tests::build::{build, commit, example_repo, find_file, git};
use halo_tests::debian::{buildd_debs, host_arch, host_codename};
use halo_tests::probe::Targets;
use halo_tests::upstream::{Publish, Upstream};
use halo_tests::{need_tool, ok, Apt, Deb, TestStore};

/// A store mirroring the Debian buildd base (archive `debian`), with
/// trusty-unstable at its snapshot and `[build] root` made from it. The
/// upstream is returned to keep it served. The source's unit test runs
/// the escape probe first (`halo_tests::probe`), whose targets are
/// returned to be checked and kept alive.
fn world() -> (TestStore, Upstream, PathBuf, Targets) {
    need_tool("mmdebstrap", "mmdebstrap");
    need_tool("unshare", "util-linux");
    need_tool("git", "git");
    let dist = host_codename();
    let up = Upstream::new();
    for deb in buildd_debs() {
        up.add_deb("main", &deb);
    }
    up.publish(
        &dist,
        &Publish {
            architectures: vec![host_arch()],
            ..Publish::default()
        },
    );
    let t = TestStore::new();
    let repo = example_repo(&t);
    let targets = Targets::new(&t.store());
    fs::write(repo.join("probe.sh"), targets.script()).unwrap();
    commit(&repo, "the escape probe", 1_764_900_050);
    let config = format!(
        "[[mirror]]\nname = \"debian\"\nurl = \"{}\"\ndists = [\"{dist}\"]\ncomponents = [\"main\"]\n\
         architectures = [\"{}\"]\nkeyring = \"{}\"\n\n\
         [build]\nroot = {{ channel = \"trusty-unstable\", suite = \"{dist}\", archives = [\"debian\"] }}\n\n\
         [[source]]\nname = \"halo-hello\"\ngit = \"{}\"\narchive = \"rustedhalo\"\ndist = \"trusty\"\n\
         component = \"main\"\nchannel = \"trusty-unstable\"\n\
         test = 'sh probe.sh && echo \"PROBE USER $(id -u)\" && make check && test \"$PWD\" = /build/src && test \"$(grep -c : /proc/net/dev)\" = 1'\n",
        up.url(),
        host_arch(),
        up.keyring().display(),
        repo.display()
    );
    fs::write(t.store().join("halo.toml"), config).unwrap();
    t.ok(&["mirror", "update", "debian"]);
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    (t, up, repo, targets)
}

/// The cached roots: `STORE/buildroots/*.tar`.
fn cached_roots(t: &TestStore) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(t.store().join("buildroots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_example_builds_in_a_clean_root_from_the_channel_and_the_root_is_cached() {
    let (t, up, repo, targets) = world();
    let base = t.channel("trusty-unstable");
    let junit = t.root().join("junit.xml");

    // Cold: the root is bootstrapped from the channel's snapshot.
    let (code, r, stderr) = build(&t, &["halo-hello", "--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_eq!(r["status"], "built", "{r}");
    assert_eq!(r["root"]["reused"], false, "{r}");
    assert_eq!(r["root"]["made_from"], base.as_str(), "{r}");
    assert_eq!(r["root"]["channel"], "trusty-unstable", "{r}");
    // apt installed debhelper inside (the host has it: a host build would
    // not), the unit tests and the build ran there: in /build/src, with no
    // network but a loopback (/proc/net/dev lists only `lo`).
    assert!(stderr.contains("Unpacking debhelper"), "{stderr}");
    // The unit test began with the escape probe: every escape ran and was
    // refused, as the sandbox's root (a subordinate id outside).
    targets.assert_refused(&stderr);
    assert!(stderr.contains("PROBE USER 0"), "{stderr}");
    assert!(stderr.contains("0 failures"), "{stderr}");
    assert!(stderr.contains("dpkg-buildpackage"), "{stderr}");
    let xml = fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 6, "{xml}");
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
    let roots = cached_roots(&t);
    assert_eq!(roots.len(), 1, "{roots:?}");
    // Nothing of the build is left but the cache.
    assert!(fs::read_dir(t.store().join("work"))
        .unwrap()
        .next()
        .is_none());

    // The real apt finds the built package in the channel and installs it.
    let snap1 = r["snapshot"].as_str().unwrap().to_string();
    assert_eq!(t.channel("trusty-unstable"), snap1);
    let export = t.root().join("export");
    t.ok(&[
        "export",
        "--channel",
        "trusty-unstable",
        export.to_str().unwrap(),
    ]);
    let apt = Apt::new(
        &t.root().join("apt"),
        &format!(
            "deb [signed-by={}] file:{}/rustedhalo trusty main\n",
            t.store().join("keys/repo.gpg").display(),
            export.display()
        ),
    );
    apt.update();
    let version = r["version"].as_str().unwrap();
    assert_eq!(apt.candidate("halo-hello").as_deref(), Some(version));
    fs::copy("/var/lib/dpkg/status", apt.dir.join("status")).unwrap();
    ok(apt
        .command("apt-get")
        .args(["install", "--download-only", "-y", "halo-hello"]));
    let deb = find_file(&export.join("rustedhalo"), ".deb");
    let unpacked = t.root().join("unpacked");
    ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    let greeting = ok(Command::new(unpacked.join("usr/bin/halo-hello")).arg("halo"));
    assert_eq!(greeting.trim(), "Hello, halo!");

    // Warm: the channel moved (our build landed in rustedhalo/trusty), but
    // what the root reads did not change: the cached root is reused.
    let (code, r, stderr) = build(&t, &["halo-hello", "--force"]);
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_eq!(r["root"]["reused"], true, "{r}");
    assert_eq!(r["root"]["made_from"], base.as_str(), "{r}");
    assert_eq!(r["root"]["snapshot"], snap1.as_str(), "{r}");
    assert!(stderr.contains("reused (made from snapshot"), "{stderr}");
    assert!(!stderr.contains("bootstrapping build root"), "{stderr}");
    assert_eq!(cached_roots(&t), roots);

    // A build dependency the channel lacks: one line naming it, exit 2,
    // nothing published.
    let control = repo.join("debian/control");
    let text = fs::read_to_string(&control).unwrap().replace(
        "debhelper-compat (= 13)",
        "debhelper-compat (= 13), halo-no-such-package (>= 9)",
    );
    fs::write(&control, text).unwrap();
    git(&repo, &["commit", "-q", "-a", "-m", "needs more"]);
    let (snaps, channels) = (t.ok(&["snapshot", "list"]), t.ok(&["channel", "list"]));
    let (code, r, stderr) = build(&t, &["halo-hello"]);
    assert_eq!(code, 2, "{r}\n{stderr}");
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("halo: "))
        .unwrap_or("");
    assert!(
        line.contains("missing build dependencies: halo-no-such-package (>= 9) (not in channel trusty-unstable"),
        "{line}"
    );
    assert_eq!(t.ok(&["snapshot", "list"]), snaps);
    assert_eq!(t.ok(&["channel", "list"]), channels);
    git(&repo, &["revert", "--no-edit", "HEAD"]);

    // What the root reads changes (the distribution gains a package): the
    // next build bootstraps a new root and removes the old one.
    up.add(
        "main",
        &Deb::new("halo-extra", "1.0").file("/usr/share/halo-extra", "x\n", 0o644),
    );
    up.publish(
        &host_codename(),
        &Publish {
            architectures: vec![host_arch()],
            ..Publish::default()
        },
    );
    t.ok(&["mirror", "update", "debian"]);
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    // A root of a configuration since changed (another suite): no
    // configured root asks for its family, so it goes too. Files that are
    // not roots stay.
    let cache = t.store().join("buildroots");
    let orphan = "trixie-amd64-0badc0de-0123456789abcdef";
    fs::write(cache.join(format!("{orphan}.tar")), "old root").unwrap();
    fs::write(cache.join(format!("{orphan}.json")), "{}").unwrap();
    fs::write(cache.join("README"), "operator's notes").unwrap();
    let (code, r, stderr) = build(&t, &["halo-hello"]);
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_eq!(r["root"]["reused"], false, "{r}");
    assert_eq!(r["root"]["made_from"], id.as_str(), "{r}");
    let old = roots[0].trim_end_matches(".tar");
    let mut removed: Vec<String> = serde_json::from_value(r["root"]["removed"].clone()).unwrap();
    removed.sort();
    assert_eq!(removed, [old, orphan], "{r}");
    assert!(!cache.join(format!("{orphan}.json")).exists());
    assert!(cache.join("README").exists());
    let now = cached_roots(&t);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, roots);
    t.assert_sound();
}
