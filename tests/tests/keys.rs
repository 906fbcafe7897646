//! Signing keys for old and new clients (issue 12, item 6): an RSA store's
//! InRelease and Release.gpg verify with GnuPG 1.4's gpgv (Debian's
//! `gpgv1`, the gpgv of trusty and xenial), with gpgv 2 and with the real
//! apt, also set up the trusty way (`apt-key add`, no `signed-by`); a key
//! rotation signs with both keys, so a client with either keyring verifies,
//! until `halo key retire` ends it; fsck is clean throughout.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;
use halo_tests::{need_tool, ok, run, Apt, Deb, TestStore};

/// `tool --status-fd 1 --keyring KEYRING FILES...`: exit code and status lines.
fn gpgv(tool: &str, keyring: &Path, files: &[PathBuf]) -> (i32, String) {
    need_tool(tool, if tool == "gpgv1" { "gpgv1" } else { "gpgv" });
    let out = run(Command::new(tool)
        .args(["--status-fd", "1", "--keyring"])
        .arg(keyring)
        .args(files));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The signed files of `dist` in an exported tree: [InRelease] and
/// [Release.gpg, Release].
fn signed_files(export: &Path, dist: &str) -> [Vec<PathBuf>; 2] {
    let d = export.join("rustedhalo/dists").join(dist);
    [
        vec![d.join("InRelease")],
        vec![d.join("Release.gpg"), d.join("Release")],
    ]
}

/// Both signed files verify with `tool` and `keyring` alone, with exit 0.
fn verifies(tool: &str, keyring: &Path, export: &Path) {
    for files in signed_files(export, "trusty") {
        let (code, status) = gpgv(tool, keyring, &files);
        assert_eq!(code, 0, "{tool} {files:?}:\n{status}");
        assert!(status.contains("GOODSIG"), "{status}");
    }
}

/// Both signed files carry a good signature by `fingerprint`, none bad,
/// and one by `other` that this keyring cannot check: gpgv exits 2 for
/// that one, apt accepts the file (a good signature and none bad).
fn verifies_one_of_two(keyring: &Path, export: &Path, fingerprint: &str, other: &str) {
    for files in signed_files(export, "trusty") {
        let (code, status) = gpgv("gpgv", keyring, &files);
        assert!(
            status.contains(&format!("VALIDSIG {fingerprint}")),
            "{files:?}:\n{status}"
        );
        assert!(
            status.contains(&format!("NO_PUBKEY {}", &other[24..])),
            "{status}"
        );
        assert!(!status.contains("BADSIG"), "{status}");
        assert_eq!(code, 2, "gpgv's exit for a signature it has no key for");
    }
}

/// An apt reading the exported `trusty` with `keyring` (`signed-by`), its
/// signatures checked by `gpgv` (the default) or `gpgv1`.
fn apt_update(t: &TestStore, export: &Path, keyring: &Path, gpgv: &str, name: &str) -> String {
    let line = format!(
        "deb [signed-by={}] file:{} trusty main\n",
        keyring.display(),
        export.join("rustedhalo").display()
    );
    let apt = Apt::new(&t.root().join(format!("apt-{name}")), &line);
    let out = run(apt.command("apt-get").args([
        "-o",
        &format!("APT::Key::gpgvcommand={gpgv}"),
        "update",
    ]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && !text.contains("W:") && !text.contains("E:") {
        assert_eq!(apt.candidate("hello").as_deref(), Some("1.0"), "{name}");
    }
    text
}

fn apt_accepts(t: &TestStore, export: &Path, keyring: &Path, gpgv: &str, name: &str) {
    let text = apt_update(t, export, keyring, gpgv, name);
    assert!(
        !text.contains("W:") && !text.contains("E:"),
        "apt with {gpgv} and {}:\n{text}",
        keyring.display()
    );
}

fn store_with_hello(init: &[&str]) -> TestStore {
    let t = TestStore::with_init(init);
    t.import("trusty", &[Deb::new("hello", "1.0").build(&t.path("in"))]);
    t
}

fn export_snapshot(t: &TestStore, id: &str) -> PathBuf {
    let dir = t.root().join(format!("export-{id}"));
    t.ok(&["export", "--snapshot", id, dir.to_str().unwrap()]);
    dir
}

fn keys(t: &TestStore) -> Vec<(String, String)> {
    let list: serde_json::Value = serde_json::from_str(&t.ok(&["key", "list", "--json"])).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["fingerprint"].as_str().unwrap().to_string(),
                k["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_rsa_store_verifies_with_gnupg_1_4_gpgv_and_apt_as_trusty_has_them() {
    let t = store_with_hello(&["--key-algorithm", "rsa4096"]);
    let listed = t.ok(&["key", "list"]);
    assert!(listed.contains(" signing rsa4096 "), "{listed}");
    let id = t.snapshot();
    let export = export_snapshot(&t, &id);
    let keyring = t.store().join("keys/repo.gpg");
    verifies("gpgv", &keyring, &export);
    verifies("gpgv1", &keyring, &export);
    apt_accepts(&t, &export, &keyring, "gpgv", "rsa-gpgv2");
    apt_accepts(&t, &export, &keyring, "gpgv1", "rsa-gpgv1");

    // trusty's apt has no signed-by: the key goes into its trusted keyring
    // with `apt-key add repo.asc`, and the sources line names no key.
    need_tool("apt-key", "apt");
    need_tool("gpg", "gnupg");
    let trusted = t.root().join("trusty-trusted.gpg");
    ok(Command::new("apt-key")
        .arg("--keyring")
        .arg(&trusted)
        .arg("add")
        .arg(t.store().join("keys/repo.asc")));
    let parts = t.root().join("trusty-trusted.gpg.d");
    fs::create_dir_all(&parts).unwrap();
    let line = format!(
        "deb file:{} trusty main\n",
        export.join("rustedhalo").display()
    );
    let apt = Apt::new(&t.root().join("apt-trusty"), &line);
    ok(apt.command("apt-get").args([
        "-o",
        &format!("Dir::Etc::Trusted={}", trusted.display()),
        "-o",
        &format!("Dir::Etc::TrustedParts={}", parts.display()),
        "-o",
        "APT::Key::gpgvcommand=gpgv1",
        "update",
    ]));
    assert_eq!(apt.candidate("hello").as_deref(), Some("1.0"));
    t.assert_sound();

    // What the RSA key is for: GnuPG 1.4 cannot check an Ed25519 store.
    let ed = store_with_hello(&[]);
    let id = ed.snapshot();
    let export = export_snapshot(&ed, &id);
    let keyring = ed.store().join("keys/repo.gpg");
    verifies("gpgv", &keyring, &export);
    let (code, status) = gpgv("gpgv1", &keyring, &signed_files(&export, "trusty")[0]);
    assert_ne!(code, 0, "{status}");
    assert!(status.contains("ERRSIG"), "{status}");
    let text = apt_update(&ed, &export, &keyring, "gpgv1", "ed-gpgv1");
    assert!(
        text.contains("W:") || text.contains("E:"),
        "apt through gpgv 1.4 cannot accept an Ed25519 signature:\n{text}"
    );
}

#[test]
fn a_rotation_signs_with_both_keys_until_the_old_one_is_retired() {
    let t = store_with_hello(&[]);
    let a = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &a]);
    let old_keyring = t.root().join("old.gpg");
    fs::copy(t.store().join("keys/repo.gpg"), &old_keyring).unwrap();
    let old = keys(&t)[0].0.clone();

    let out = t.ok(&["key", "rotate", "--key-algorithm", "rsa4096"]);
    assert!(out.contains("added signing key rsa4096"), "{out}");
    let listed = keys(&t);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let new = listed[1].0.clone();
    assert_eq!(listed[0], (old.clone(), "signing".to_string()));
    assert_eq!(listed[1], (new.clone(), "signing".to_string()));
    t.assert_sound();

    // Nothing changed but the keys: the next snapshot is signed by both.
    let b = t.snapshot();
    assert_ne!(a, b, "a snapshot signed by the new key too");
    let export = export_snapshot(&t, &b);
    let both = t.store().join("keys/repo.gpg");
    verifies("gpgv", &both, &export);
    verifies_one_of_two(&old_keyring, &export, &old, &new);
    apt_accepts(&t, &export, &both, "gpgv", "both");
    apt_accepts(&t, &export, &old_keyring, "gpgv", "old-only");

    // Retiring is refused while a channel serves what only the old key signed.
    let secret = fs::read(t.store().join("keys/secret.asc")).unwrap();
    let before = t.fingerprint();
    let refused = run(t.halo().args(["key", "retire", &old]));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("trusty-unstable") && err.contains(&a) && err.contains("promote"),
        "{err}"
    );
    assert_eq!(t.fingerprint(), before);
    assert_eq!(fs::read(t.store().join("keys/secret.asc")).unwrap(), secret);
    assert_eq!(keys(&t).len(), 2);

    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &b]);
    let out = t.ok(&["key", "retire", &old[24..]]);
    assert!(
        out.contains(&format!("retired signing key ed25519 {old}")),
        "{out}"
    );
    assert_eq!(
        keys(&t),
        [
            (new.clone(), "signing".to_string()),
            (old.clone(), "retired".to_string())
        ]
    );
    // The keyring clients get now holds the new key alone, and it verifies
    // what both signed: with gpgv 2, with GnuPG 1.4 (trusty), with apt.
    let new_keyring = t.root().join("new.gpg");
    fs::copy(t.store().join("keys/repo.gpg"), &new_keyring).unwrap();
    verifies_one_of_two(&new_keyring, &export, &new, &old);
    let (_, status) = gpgv("gpgv1", &new_keyring, &signed_files(&export, "trusty")[0]);
    assert!(
        status.contains("GOODSIG") && !status.contains("BADSIG"),
        "{status}"
    );
    apt_accepts(&t, &export, &new_keyring, "gpgv", "new-only");
    apt_accepts(&t, &export, &new_keyring, "gpgv1", "new-only-gpgv1");
    t.assert_sound();

    // From now on the new key alone signs.
    let c = t.snapshot();
    assert_ne!(c, b);
    let export = export_snapshot(&t, &c);
    verifies("gpgv", &new_keyring, &export);
    verifies("gpgv1", &new_keyring, &export);
    let (code, _) = gpgv("gpgv", &old_keyring, &signed_files(&export, "trusty")[0]);
    assert_ne!(code, 0, "the retired key signs no more");
    assert_eq!(t.snapshot(), c, "and nothing is signed anew again");

    // A channel pointed at a snapshot only the retired key signed: fsck
    // says its clients cannot check it; moving the channel on fixes that.
    t.ok(&["promote", "--to", "trusty-testing", "--snapshot", &a]);
    let fsck = run(t.halo().arg("fsck"));
    let report = String::from_utf8_lossy(&fsck.stdout);
    assert!(!fsck.status.success(), "{report}");
    assert!(report.contains("signed only by retired keys"), "{report}");
    t.ok(&["promote", "--to", "trusty-testing", "--snapshot", &c]);
    t.assert_sound();

    let last = run(t.halo().args(["key", "retire", &new]));
    assert_eq!(last.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&last.stderr).contains("only signing key"));
    let unknown = run(t.halo().args(["key", "retire", "0123456789ABCDEF"]));
    assert_eq!(unknown.status.code(), Some(1));
    t.assert_sound();
}

#[test]
fn a_rotation_aborted_before_its_commit_leaves_a_sound_store() {
    let t = store_with_hello(&[]);
    t.snapshot();
    let secret = fs::read(t.store().join("keys/secret.asc")).unwrap();
    let out = run(t
        .halo()
        .args(["key", "rotate"])
        .env("HALO_FAILPOINT", "key:before-secret"));
    assert!(!out.status.success(), "failpoint not hit");
    assert_eq!(fs::read(t.store().join("keys/secret.asc")).unwrap(), secret);
    t.assert_sound();
    t.ok(&["key", "rotate"]);
    assert_eq!(keys(&t).len(), 2);
    t.snapshot();
    t.assert_sound();
}
