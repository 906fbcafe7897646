//! `halo mirror update` against a real signed upstream (dpkg-deb,
//! apt-ftparchive, gpg) served over 127.0.0.1: mirrored, snapshotted,
//! exported and installed from with the real apt; an unchanged upstream
//! costs at most two requests; every refusal leaves the previous state and
//! a sound store; transient failures are retried and an interrupted update
//! resumes without fetching finished files again; filters keep exactly
//! the expected packages.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;
use halo_tests::upstream::{Gpg, Publish, Server, Upstream};
use halo_tests::{field, ok, parse_stanzas, run, Apt, Deb, TestStore};

const DIST: &str = "stable";

/// The packages of the test upstream: `app` needs `lib (>= 2)` and an MTA
/// (virtual, provided by `mta`), `lib` comes in two versions.
fn populate(up: &Upstream) -> Vec<String> {
    vec![
        up.add(
            "main",
            &Deb::new("app", "1.0")
                .arch("amd64")
                .fields("Depends: lib (>= 2), nonexistent | mail-transport-agent\n"),
        ),
        up.add("main", &Deb::new("lib", "1.0")),
        up.add("main", &Deb::new("lib", "2.0")),
        up.add(
            "main",
            &Deb::new("mta", "3.0").fields("Provides: mail-transport-agent\n"),
        ),
        up.add("main", &Deb::new("app-doc", "1.0").fields("Depends: app\n")),
        up.add("main", &Deb::new("unrelated", "0.1").arch("amd64")),
    ]
}

fn mirror_toml(name: &str, up: &Upstream, extra: &str) -> String {
    format!(
        "[fetch]\ndownload_concurrency = 3\nretries = 2\nretry_backoff_ms = 20\ntimeout_seconds = 10\n\n\
[[mirror]]\nname = \"{name}\"\nurl = \"{}\"\ndists = [\"{DIST}\"]\ncomponents = [\"main\"]\n\
architectures = [\"amd64\"]\nkeyring = \"{}\"\n{extra}\n",
        up.url(),
        up.keyring().display()
    )
}

/// A store with `halo.toml` (STORE/halo.toml: the default place).
fn store_with(up: &Upstream, extra: &str) -> TestStore {
    let t = TestStore::new();
    fs::write(t.store().join("halo.toml"), mirror_toml("up", up, extra)).unwrap();
    t
}

fn update(t: &TestStore) -> std::process::Output {
    run(t.halo().args(["mirror", "update", "up"]))
}

fn update_ok(t: &TestStore) -> String {
    let out = update(t);
    assert!(
        out.status.success(),
        "mirror update failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The mirror record's release URL for `DIST`.
fn recorded_release(t: &TestStore) -> String {
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(t.store().join("mirrors/up.json")).unwrap()).unwrap();
    record["dists"][DIST]["url"].as_str().unwrap().to_string()
}

/// The update fails with exit 1 and one stderr line naming `url_part` and
/// `reason`; the store is as it was and sound.
fn assert_refused(t: &TestStore, url_part: &str, reason: &str) {
    let before = t.fingerprint();
    let out = update(t);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("halo:")).collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    eprintln!("refused as expected: {}", lines[0]);
    assert!(
        lines[0].contains(url_part) && lines[0].contains(reason),
        "want {url_part:?} and {reason:?} in: {stderr}"
    );
    assert_eq!(t.fingerprint(), before, "state changed by a refused update");
    t.assert_sound();
}

/// Package names (name=version) in an exported Packages index.
fn exported_packages(dir: &Path, archive: &str) -> BTreeSet<String> {
    let text = fs::read_to_string(
        dir.join(archive)
            .join(format!("dists/{DIST}/main/binary-amd64/Packages")),
    )
    .unwrap();
    parse_stanzas(&text)
        .iter()
        .map(|s| {
            format!(
                "{}={}",
                field(s, "Package").unwrap(),
                field(s, "Version").unwrap()
            )
        })
        .collect()
}

fn export_snapshot(t: &TestStore, id: &str, name: &str) -> PathBuf {
    let dir = t.root().join(name);
    t.ok(&["export", "--snapshot", id, dir.to_str().unwrap()]);
    dir
}

fn pool_requests(up: &Upstream) -> Vec<String> {
    up.requests()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with("/pool/"))
        .collect()
}

#[test]
fn mirror_snapshot_export_and_install_with_apt_then_a_noop_update() {
    let up = Upstream::new();
    let debs = populate(&up);
    up.publish(DIST, &Publish::default());
    let t = store_with(&up, "");
    let out = update_ok(&t);
    assert!(
        out.contains("mirror up: 6 files") && out.contains("state updated"),
        "{out}"
    );
    // Indices came by hash, as the upstream offered.
    assert!(
        up.requests()
            .iter()
            .any(|(p, s)| p.contains("/by-hash/SHA256/") && *s == 200),
        "{:?}",
        up.requests()
    );
    t.assert_sound();
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    assert_eq!(
        exported_packages(&export, "up"),
        BTreeSet::from([
            "app=1.0".into(),
            "app-doc=1.0".into(),
            "lib=1.0".into(),
            "lib=2.0".into(),
            "mta=3.0".into(),
            "unrelated=0.1".into(),
        ])
    );
    // Pool paths are the upstream's, files byte for byte.
    for rel in &debs {
        assert_eq!(
            fs::read(export.join("up").join(rel)).unwrap(),
            fs::read(up.repo().join(rel)).unwrap()
        );
    }
    // The real apt installs from it, trusting the store's key (re-signed).
    let sources = format!(
        "deb [signed-by={}] copy:{}/up {DIST} main\n",
        t.store().join("keys/repo.gpg").display(),
        export.display()
    );
    let apt = Apt::new(&t.root().join("apt"), &sources);
    apt.update();
    let plan = apt.simulate_install(&["app"]);
    let names: BTreeSet<_> = plan.iter().map(|(n, v)| format!("{n}={v}")).collect();
    assert_eq!(
        names,
        BTreeSet::from(["app=1.0".into(), "lib=2.0".into(), "mta=3.0".into()])
    );
    ok(apt
        .command("apt-get")
        .args(["install", "--download-only", "-y", "app"]));
    assert_eq!(
        fs::read(apt.dir.join("cache/archives/app_1.0_amd64.deb")).unwrap(),
        fs::read(up.repo().join(&debs[0])).unwrap()
    );

    // Nothing new upstream: at most two requests, nothing downloaded, no new snapshot.
    up.clear_requests();
    let state = fs::read(t.store().join("state.json")).unwrap();
    let out = update_ok(&t);
    let requests = up.requests();
    assert!(requests.len() <= 2, "{requests:?}");
    assert!(
        requests.iter().all(|(p, _)| p.ends_with("InRelease")),
        "{requests:?}"
    );
    assert!(
        out.contains("0 files") && out.contains("unchanged"),
        "{out}"
    );
    assert_eq!(fs::read(t.store().join("state.json")).unwrap(), state);
    assert_eq!(t.snapshot(), id);

    // A new upstream version: only the new file is downloaded.
    up.add("main", &Deb::new("lib", "3.0"));
    up.publish(DIST, &Publish::default());
    up.clear_requests();
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["mirror", "update", "--all", "--json"])).unwrap();
    assert_eq!(json[0]["files"], 1, "{json}");
    assert_eq!(json[0]["changed"], true, "{json}");
    assert_eq!(pool_requests(&up), ["/pool/main/l/lib/lib_3.0_all.deb"]);
    let id2 = t.snapshot();
    assert_ne!(id, id2);
    let diff = t.ok(&["snapshot", "diff", &id, &id2]);
    assert!(diff.contains("lib"), "{diff}");
    t.assert_sound();
}

#[test]
fn verbatim_mirror_serves_the_upstream_signed_files_unchanged() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    let t = store_with(&up, "verbatim = true");
    update_ok(&t);
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    let dists = export.join("up/dists").join(DIST);
    for f in [
        "InRelease",
        "Release",
        "Release.gpg",
        "main/binary-amd64/Packages.xz",
        "main/binary-amd64/Packages",
    ] {
        assert_eq!(
            fs::read(dists.join(f)).unwrap(),
            fs::read(up.dist_file(DIST, f)).unwrap(),
            "{f} differs from the upstream's"
        );
    }
    // gpgv agrees that the upstream key signed it.
    ok(Command::new("gpgv")
        .arg("--keyring")
        .arg(up.keyring())
        .arg(dists.join("InRelease")));
    t.assert_sound();
    // apt, over HTTP from the exported tree, trusts the upstream key, not the store's.
    let http = Server::start(&export, &t.root().join("http-control"));
    let sources = format!(
        "deb [signed-by={}] {}up {DIST} main\n",
        up.keyring().display(),
        http.url()
    );
    let apt = Apt::new(&t.root().join("apt"), &sources);
    apt.update();
    ok(apt
        .command("apt-get")
        .args(["install", "--download-only", "-y", "app"]));
    assert!(apt.dir.join("cache/archives/app_1.0_amd64.deb").exists());
    // The upstream lists SHA512 and says Acquire-By-Hash: apt asks for
    // by-hash/SHA512 (the tree has SHA256 names only) and falls back to the
    // plain name; the index it reads is the one the signed Release lists.
    let requests = http.requests();
    eprintln!("apt's requests: {requests:?}");
    assert!(
        requests
            .iter()
            .any(|(p, s)| p.contains("binary-amd64/") && *s == 200),
        "{requests:?}"
    );
    let with_store_key = format!(
        "deb [signed-by={}] copy:{}/up {DIST} main\n",
        t.store().join("keys/repo.gpg").display(),
        export.display()
    );
    let apt = Apt::new(&t.root().join("apt-storekey"), &with_store_key);
    let out = run(apt.command("apt-get").arg("update"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("NO_PUBKEY") || text.contains("not signed") || !out.status.success(),
        "apt accepted the upstream's InRelease with the store key: {text}"
    );
}

#[test]
fn refused_bad_signature() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    let t = store_with(&up, "");
    update_ok(&t);
    up.add("main", &Deb::new("new", "1"));
    up.publish(DIST, &Publish::default());
    let inrelease = up.dist_file(DIST, "InRelease");
    let text = fs::read_to_string(&inrelease).unwrap();
    fs::write(
        &inrelease,
        text.replace("Origin: Upstream", "Origin: Upstreaa"),
    )
    .unwrap();
    assert_refused(&t, "/dists/stable/InRelease", "bad signature");
}

#[test]
fn refused_unknown_key() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    let t = store_with(&up, "");
    update_ok(&t);
    up.add("main", &Deb::new("new", "1"));
    up.publish(DIST, &Publish::default());
    Gpg::new("Intruder <evil@example.org>").sign_release(&up.dist_file(DIST, ""));
    assert_refused(&t, "/dists/stable/InRelease", "unknown key");
}

#[test]
fn refused_expired_valid_until() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    let t = store_with(&up, "");
    update_ok(&t);
    let expired = Publish {
        valid_until: Some("Mon, 01 Jan 2001 00:00:00 UTC".into()),
        ..Publish::default()
    };
    up.add("main", &Deb::new("new", "1"));
    up.publish(DIST, &expired);
    assert_refused(&t, "/dists/stable/InRelease", "expired");
}

/// Publishes a new package, then breaks `path` with `kind`; the update
/// must be refused naming `path` and `reason`.
fn refused_with_fault(kind: &str, on_index: bool, reason: &str) {
    let up = Upstream::new();
    populate(&up);
    up.publish(
        DIST,
        &Publish {
            by_hash: false,
            ..Publish::default()
        },
    );
    let t = store_with(&up, "");
    update_ok(&t);
    let rel = up.add("main", &Deb::new("new", "1"));
    up.publish(
        DIST,
        &Publish {
            by_hash: false,
            ..Publish::default()
        },
    );
    let path = if on_index {
        format!("/dists/{DIST}/main/binary-amd64/Packages.xz")
    } else {
        format!("/{rel}")
    };
    // An index is refused only when every form the Release lists fails
    // (apt falls back across them too): fault all three.
    let faults: Vec<String> = if on_index {
        ["Packages.xz", "Packages.gz", "Packages"]
            .iter()
            .map(|f| {
                format!(r#"{{"path": "/dists/{DIST}/main/binary-amd64/{f}", "kind": "{kind}"}}"#)
            })
            .collect()
    } else {
        vec![format!(r#"{{"path": "{path}", "kind": "{kind}"}}"#)]
    };
    up.faults(&format!("[{}]", faults.join(", ")));
    assert_refused(&t, &path, reason);
}

#[test]
fn refused_pool_file_with_wrong_hash() {
    refused_with_fault("corrupt", false, "SHA256 mismatch");
}

#[test]
fn refused_index_with_wrong_hash() {
    refused_with_fault("corrupt", true, "SHA256 mismatch");
}

#[test]
fn refused_truncated_download() {
    refused_with_fault("truncate", false, "truncated");
}

#[test]
fn refused_missing_pool_file() {
    refused_with_fault("404", false, "404");
}

#[test]
fn refused_missing_dist_and_component() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    let t = TestStore::new();
    let config = t.path("conf/mirrors.toml");
    fs::write(
        &config,
        mirror_toml("up", &up, "").replace("[\"stable\"]", "[\"oldstable\"]"),
    )
    .unwrap();
    let out = run(t
        .halo()
        .arg("--config")
        .arg(&config)
        .args(["mirror", "update", "--all"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/dists/oldstable/InRelease") && stderr.contains("oldstable"),
        "{stderr}"
    );
    fs::write(
        &config,
        mirror_toml("up", &up, "").replace("[\"main\"]", "[\"main\", \"contrib\"]"),
    )
    .unwrap();
    let out = run(t
        .halo()
        .env("HALO_CONFIG", &config)
        .args(["mirror", "update", "up"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lists no component contrib"), "{stderr}");
    assert!(!t.store().join("state.json").exists());
}

#[test]
fn release_and_release_gpg_only_then_the_upstream_switches_to_inrelease() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    let inrelease = format!("/dists/{DIST}/InRelease");
    let (release, gpg) = (
        format!("/dists/{DIST}/Release"),
        format!("/dists/{DIST}/Release.gpg"),
    );
    up.faults(&format!(r#"[{{"path": "{inrelease}", "kind": "404"}}]"#));
    let t = store_with(&up, "");
    let out = update_ok(&t);
    assert!(out.contains("mirror up: 6 files"), "{out}");
    assert!(recorded_release(&t).ends_with(&release));
    assert_eq!((up.count(&release), up.count(&gpg)), (1, 1));
    t.assert_sound();
    let state = fs::read(t.store().join("state.json")).unwrap();

    // Unchanged: Release is asked for (conditionally) first, and alone.
    up.clear_requests();
    let out = update_ok(&t);
    assert!(out.contains("unchanged"), "{out}");
    let requests: Vec<_> = up.requests().into_iter().map(|(p, _)| p).collect();
    assert_eq!(requests, std::slice::from_ref(&release));

    // The upstream drops Release for InRelease: followed, nothing fetched
    // again but the indices, the same state.
    up.faults(&format!(
        r#"[{{"path": "{release}", "kind": "404"}}, {{"path": "{gpg}", "kind": "404"}}]"#
    ));
    up.clear_requests();
    update_ok(&t);
    let requests: Vec<_> = up.requests().into_iter().map(|(p, _)| p).collect();
    assert_eq!(requests[..2], [release.clone(), inrelease.clone()]);
    assert!(pool_requests(&up).is_empty(), "{requests:?}");
    assert!(recorded_release(&t).ends_with(&inrelease));
    assert_eq!(fs::read(t.store().join("state.json")).unwrap(), state);
    t.assert_sound();
}

#[test]
fn an_unsigned_upstream_is_refused_unless_trusted() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    up.faults(&format!(
        r#"[{{"path": "/dists/{DIST}/InRelease", "kind": "404"}}, {{"path": "/dists/{DIST}/Release.gpg", "kind": "404"}}]"#
    ));
    let t = store_with(&up, "");
    assert_refused(&t, &format!("/dists/{DIST}/Release.gpg"), "unsigned");

    // trusted = true (and no keyring): taken, with a warning.
    let toml = mirror_toml("up", &up, "trusted = true")
        .lines()
        .filter(|l| !l.starts_with("keyring"))
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(t.store().join("halo.toml"), toml).unwrap();
    let out = update(&t);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NOT verified"), "{stderr}");
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    assert_eq!(exported_packages(&export, "up").len(), 6);
    t.assert_sound();
}

#[test]
fn a_500_then_success_is_retried() {
    let up = Upstream::new();
    let debs = populate(&up);
    up.publish(DIST, &Publish::default());
    let t = store_with(&up, "");
    let pool = format!("/{}", debs[1]);
    up.faults(&format!(
        r#"[{{"path": "{pool}", "kind": "500", "times": 1}},
            {{"path": "/dists/{DIST}/InRelease", "kind": "500", "times": 1}}]"#
    ));
    update_ok(&t);
    assert_eq!(up.count(&pool), 2);
    assert_eq!(up.count(&format!("/dists/{DIST}/InRelease")), 2);
    t.assert_sound();
}

#[test]
fn a_connection_dropped_mid_file_is_retried_and_an_interrupted_update_resumes() {
    let up = Upstream::new();
    let debs = populate(&up);
    up.publish(DIST, &Publish::default());
    let t = store_with(&up, "");
    // Dropped once: the retry fetches it.
    let once = format!("/{}", debs[0]);
    up.faults(&format!(
        r#"[{{"path": "{once}", "kind": "drop", "times": 1}}]"#
    ));
    update_ok(&t);
    assert_eq!(up.count(&once), 2);

    // Dropped every time: the update fails and keeps the previous state...
    let before = t.fingerprint();
    up.add(
        "main",
        &Deb::new("big", "1")
            .payload(&"x".repeat(200_000))
            .compression("none"),
    );
    up.add("main", &Deb::new("other", "1"));
    up.add("main", &Deb::new("third", "1"));
    up.publish(DIST, &Publish::default());
    up.clear_requests();
    let big = "/pool/main/b/big/big_1_all.deb";
    up.faults(&format!(r#"[{{"path": "{big}", "kind": "drop"}}]"#));
    let out = update(&t);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(big), "{stderr}");
    assert_eq!(t.fingerprint(), before);
    t.assert_sound();
    // ...gc does not throw the finished downloads away...
    t.ok(&["gc"]);
    // ...and the next update fetches only what did not finish.
    up.faults("[]");
    update_ok(&t);
    for f in [
        "/pool/main/o/other/other_1_all.deb",
        "/pool/main/t/third/third_1_all.deb",
    ] {
        assert_eq!(
            up.count(f),
            1,
            "{f} fetched again: {:?}",
            pool_requests(&up)
        );
    }
    assert_eq!(up.count(big), 3 + 1, "{:?}", pool_requests(&up));
    t.assert_sound();
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    assert!(exported_packages(&export, "up").contains("big=1"));
}

#[test]
fn packages_filter_without_and_with_deps() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    let t = TestStore::new();
    let config = t.path("halo.toml");
    fs::write(
        &config,
        format!(
            "{}{}",
            mirror_toml("only", &up, "packages = [\"app\"]"),
            mirror_toml("closure", &up, "packages = [\"app\"]\nwith_deps = true")
                .split_once("[[mirror]]")
                .map(|(_, m)| format!("[[mirror]]{m}"))
                .unwrap()
        ),
    )
    .unwrap();
    ok(t.halo()
        .arg("--config")
        .arg(&config)
        .args(["mirror", "update", "--all"]));
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    assert_eq!(
        exported_packages(&export, "only"),
        BTreeSet::from(["app=1.0".to_string()])
    );
    assert_eq!(
        exported_packages(&export, "closure"),
        BTreeSet::from([
            "app=1.0".to_string(),
            "lib=2.0".to_string(),
            "mta=3.0".to_string()
        ])
    );
    // Only the kept files were downloaded (app once: both mirrors share the blob).
    let mut fetched = pool_requests(&up);
    fetched.sort();
    assert_eq!(
        fetched,
        [
            "/pool/main/a/app/app_1.0_amd64.deb",
            "/pool/main/l/lib/lib_2.0_all.deb",
            "/pool/main/m/mta/mta_3.0_all.deb"
        ]
    );
    // A package in no dist is a configuration error.
    fs::write(&config, mirror_toml("x", &up, "packages = [\"nope\"]")).unwrap();
    let out = run(t
        .halo()
        .arg("--config")
        .arg(&config)
        .args(["mirror", "update", "x"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn configuration_errors_are_one_line_and_exit_1() {
    let t = TestStore::new();
    let out = run(t.halo().args(["mirror", "update", "--all"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("halo.toml does not exist"), "{stderr}");
    fs::write(
        t.store().join("halo.toml"),
        "[[mirror]]\nname = \"x\"\nurl = 3\n",
    )
    .unwrap();
    let out = run(t.halo().args(["mirror", "update", "--all"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("halo.toml"), "{stderr}");
    let out = run(t.halo().args(["mirror", "update"]));
    assert_ne!(out.status.code(), Some(0));
    // A mirror may not take over an archive imports made.
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    fs::write(
        t.store().join("halo.toml"),
        mirror_toml("rustedhalo", &up, ""),
    )
    .unwrap();
    t.import("trusty", &[Deb::new("local", "1").build(&t.path("in"))]);
    let before = t.fingerprint();
    let out = run(t.halo().args(["mirror", "update", "rustedhalo"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no mirror made"), "{stderr}");
    assert_eq!(t.fingerprint(), before);
}

#[test]
fn sources_are_mirrored_with_their_binaries() {
    let up = Upstream::new();
    populate(&up);
    let app_src = up.add_source("main", "app", "1.0");
    up.add_source("main", "unrelated", "0.1");
    let publish = Publish {
        sources: true,
        ..Publish::default()
    };
    up.publish(DIST, &publish);
    let t = store_with(&up, "packages = [\"app\"]\nsources = true");
    update_ok(&t);
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    let sources =
        fs::read_to_string(export.join(format!("up/dists/{DIST}/main/source/Sources"))).unwrap();
    let names: Vec<_> = parse_stanzas(&sources)
        .iter()
        .map(|s| field(s, "Package").unwrap().to_string())
        .collect();
    assert_eq!(names, ["app"]);
    assert_eq!(app_src.len(), 2, "{app_src:?}");
    for rel in &app_src {
        assert_eq!(
            fs::read(export.join("up").join(rel)).unwrap(),
            fs::read(up.repo().join(rel)).unwrap(),
            "{rel}"
        );
    }
    assert!(!export.join("up/pool/main/u/unrelated").exists());
    t.assert_sound();
}

/// Issue 12, item 4: a mirror mid-sync (no by-hash/), or a partial one (only
/// the uncompressed Packages although the Release lists .xz and .gz), is
/// mirrored the way apt reads it: by-hash, then the canonical name, then
/// each other form; the update fails only when no form verifies.
#[test]
fn missing_index_forms_fall_back_as_apt_does() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    let dir = up.dist_file(DIST, "main/binary-amd64");
    // Mid-sync: the by-hash names are gone.
    fs::remove_dir_all(dir.join("by-hash")).unwrap();
    let t = store_with(&up, "");
    let out = update_ok(&t);
    assert!(out.contains("mirror up: 6 files"), "{out}");
    let reqs = up.requests();
    let xz = format!("/dists/{DIST}/main/binary-amd64/Packages.xz");
    assert!(
        reqs.iter()
            .any(|(p, s)| p.contains("/by-hash/SHA256/") && *s == 404),
        "{reqs:?}"
    );
    assert!(reqs.iter().any(|(p, s)| *p == xz && *s == 200), "{reqs:?}");
    t.assert_sound();

    // Partial: only the uncompressed file, though .xz and .gz are listed.
    let up2 = Upstream::new();
    populate(&up2);
    up2.add("main", &Deb::new("newer", "1.0"));
    up2.publish(DIST, &Publish::default());
    let dir = up2.dist_file(DIST, "main/binary-amd64");
    fs::remove_dir_all(dir.join("by-hash")).unwrap();
    fs::remove_file(dir.join("Packages.xz")).unwrap();
    fs::remove_file(dir.join("Packages.gz")).unwrap();
    let t2 = store_with(&up2, "");
    let out = update_ok(&t2);
    assert!(out.contains("mirror up: 7 files"), "{out}");
    let id = t2.snapshot();
    let export = export_snapshot(&t2, &id, "export");
    assert!(exported_packages(&export, "up").contains("newer=1.0"));

    // A new release whose every form is gone or wrong: refused, state as
    // it was.
    up2.add("main", &Deb::new("newest", "1.0"));
    up2.publish(DIST, &Publish::default());
    fs::remove_dir_all(dir.join("by-hash")).unwrap();
    fs::remove_file(dir.join("Packages.xz")).unwrap();
    fs::remove_file(dir.join("Packages.gz")).unwrap();
    fs::write(dir.join("Packages"), "Package: tampered\n").unwrap();
    let before = t2.fingerprint();
    let out = update(&t2);
    assert!(!out.status.success());
    assert_eq!(t2.fingerprint(), before);
}

/// Issue 12, item 5: a re-signed mirror keeps the upstream's Origin,
/// Label, Suite and Codename (so unattended-upgrades' Allowed-Origins and
/// origin pins keep matching), unless `keep_identity = false`; the real
/// apt-cache policy applies a pin written for the upstream's origin.
#[test]
fn a_mirror_keeps_the_upstreams_identity_and_its_pins_apply() {
    let up = Upstream::new();
    populate(&up);
    up.publish(DIST, &Publish::default());
    let t = store_with(&up, "");
    update_ok(&t);
    t.import("trusty", &[Deb::new("ours", "1").build(&t.path("in"))]);
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    let release = |archive: &str, dist: &str| {
        let text =
            fs::read_to_string(export.join(archive).join(format!("dists/{dist}/Release"))).unwrap();
        parse_stanzas(&text).remove(0)
    };
    let up_rel = release("up", DIST);
    assert_eq!(field(&up_rel, "Origin"), Some("Upstream"));
    assert_eq!(field(&up_rel, "Label"), Some("Upstream"));
    assert_eq!(field(&up_rel, "Suite"), Some(DIST));
    assert_eq!(
        field(&release("rustedhalo", "trusty"), "Origin"),
        Some("rustedhalo")
    );
    // A pin for the upstream's origin, as an operator writes it.
    let apt = Apt::new(
        &t.root().join("apt"),
        &format!(
            "deb [signed-by={key}] file:{e}/up {DIST} main\ndeb [signed-by={key}] file:{e}/rustedhalo trusty main\n",
            key = t.store().join("keys/repo.gpg").display(),
            e = export.display()
        ),
    );
    fs::write(
        apt.dir.join("etc/preferences"),
        "Package: *\nPin: release o=Upstream\nPin-Priority: 990\n",
    )
    .unwrap();
    apt.update();
    let policy = ok(apt.command("apt-cache").args(["policy", "lib", "ours"]));
    let lib = policy.split("ours:").next().unwrap();
    assert!(
        lib.contains(" 990 file:"),
        "the pin applies to the mirror:\n{policy}"
    );
    let ours = policy.split("ours:").nth(1).unwrap();
    assert!(
        ours.contains(" 500 file:") && !ours.contains(" 990 "),
        "and not to our archive:\n{policy}"
    );
    // Without it, the store's identity.
    fs::write(
        t.store().join("halo.toml"),
        mirror_toml("up", &up, "keep_identity = false"),
    )
    .unwrap();
    update_ok(&t);
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export2");
    let text = fs::read_to_string(export.join(format!("up/dists/{DIST}/Release"))).unwrap();
    assert!(text.starts_with("Origin: rustedhalo\n"), "{text}");
    t.assert_sound();
}

/// Issue 12, item 4: `i18n/Translation-en` (apt show's long descriptions)
/// is mirrored as the upstream published it, served byte for byte (by
/// name and by hash) and listed in the Release the store signs, which
/// gpgv verifies.
#[test]
fn translations_are_mirrored_and_listed_in_the_signed_release() {
    let up = Upstream::new();
    populate(&up);
    up.publish(
        DIST,
        &Publish {
            translations: true,
            ..Publish::default()
        },
    );
    let t = store_with(&up, "");
    update_ok(&t);
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    let dist = export.join(format!("up/dists/{DIST}"));
    let upstream = fs::read(up.dist_file(DIST, "main/i18n/Translation-en.bz2")).unwrap();
    let served = fs::read(dist.join("main/i18n/Translation-en.bz2")).unwrap();
    assert_eq!(served, upstream, "byte for byte");
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&served))
    };
    assert_eq!(
        fs::read(dist.join(format!("main/i18n/by-hash/SHA256/{sha}"))).unwrap(),
        upstream
    );
    let release = fs::read_to_string(dist.join("Release")).unwrap();
    assert!(
        release
            .lines()
            .any(|l| l.contains(&sha) && l.ends_with(" main/i18n/Translation-en.bz2")),
        "{release}"
    );
    ok(Command::new("gpgv")
        .arg("--keyring")
        .arg(t.store().join("keys/repo.gpg"))
        .arg(dist.join("InRelease")));
    // Nothing asked for, nothing mirrored.
    let t2 = store_with(&up, "translations = []");
    update_ok(&t2);
    let id = t2.snapshot();
    let export = export_snapshot(&t2, &id, "export");
    assert!(!export.join(format!("up/dists/{DIST}/main/i18n")).exists());
    t.assert_sound();
}

/// Issue 12, item 4: installer packages. An imported `.udeb` is indexed
/// under `debian-installer/binary-<arch>` (never in the ordinary Packages,
/// as in Debian's archive), and a mirror asked for `udebs` brings the
/// upstream's installer index along.
#[test]
fn udebs_have_their_own_index_imported_or_mirrored() {
    let up = Upstream::new();
    populate(&up);
    up.add_udeb("main", &Deb::new("di-helper", "1.0").arch("amd64"));
    up.publish(
        DIST,
        &Publish {
            udebs: true,
            ..Publish::default()
        },
    );
    let t = store_with(&up, "udebs = true");
    update_ok(&t);
    // An import of our own .udeb beside a .deb.
    let dir = t.path("in/x");
    let dir = dir.parent().unwrap();
    let built = Deb::new("our-udeb", "2").arch("amd64").build(dir);
    let udeb = built.with_extension("udeb");
    fs::rename(&built, &udeb).unwrap();
    t.import("trusty", &[udeb, Deb::new("our-deb", "2").build(dir)]);
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    let names = |archive: &str, dist: &str, index: &str| -> BTreeSet<String> {
        let text = fs::read_to_string(
            export
                .join(archive)
                .join(format!("dists/{dist}/main/{index}/Packages")),
        )
        .unwrap_or_default();
        parse_stanzas(&text)
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    field(s, "Package").unwrap(),
                    field(s, "Filename").unwrap()
                )
            })
            .collect()
    };
    let ours = names("rustedhalo", "trusty", "debian-installer/binary-amd64");
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(
        ours.iter()
            .all(|n| n.starts_with("our-udeb ") && n.ends_with(".udeb")),
        "{ours:?}"
    );
    assert!(!names("rustedhalo", "trusty", "binary-amd64")
        .iter()
        .any(|n| n.contains("udeb")));
    let mirrored = names("up", DIST, "debian-installer/binary-amd64");
    assert!(
        mirrored
            .iter()
            .any(|n| n.starts_with("di-helper ") && n.ends_with(".udeb")),
        "{mirrored:?}"
    );
    assert!(!names("up", DIST, "binary-amd64")
        .iter()
        .any(|n| n.contains("udeb")));
    let release = fs::read_to_string(export.join("rustedhalo/dists/trusty/Release")).unwrap();
    assert!(
        release.contains("main/debian-installer/binary-amd64/Packages.xz"),
        "{release}"
    );
    // The pool file is there for the installer to fetch.
    let pool = ours
        .iter()
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(export.join("rustedhalo").join(pool).is_file());
    t.assert_sound();
}

/// Issue 18 item 7, issue 20 item 4: credentials in mirror URLs (a
/// password, and a token used as the user) are printed nowhere when
/// several mirrors fail: not in the error line of each, not in the log
/// lines of `-vv` (retries), not in `--json`; the hosts stay visible.
#[test]
fn credentials_of_failing_mirrors_are_printed_nowhere() {
    let t = TestStore::new();
    let mirror = |name: &str, url: &str| {
        format!(
            "[[mirror]]\nname = \"{name}\"\nurl = \"{url}\"\ndists = [\"{DIST}\"]\n\
components = [\"main\"]\narchitectures = [\"amd64\"]\ntrusted = true\n\n"
        )
    };
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[fetch]\nretries = 1\nretry_backoff_ms = 10\ntimeout_seconds = 5\n\n{}{}{}",
            mirror("m1", "http://mirror:s3cret@127.0.0.1:9/debian"),
            mirror("m2", "http://t0kenXYZ42@127.0.0.1:9/debian"),
            mirror("m3", "http://other:pa55word@127.0.0.1:9/debian"),
        ),
    )
    .unwrap();
    for flags in [&[][..], &["-vv"][..], &["--json"][..]] {
        let out = run(t.halo().args(flags).args(["mirror", "update", "--all"]));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{flags:?}: {stderr}");
        for secret in ["s3cret", "t0kenXYZ42", "pa55word"] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{flags:?} printed {secret}:\n{stdout}{stderr}"
            );
        }
        for m in ["mirror m1", "mirror m2", "mirror m3"] {
            assert!(stderr.contains(m), "{flags:?}: {m} not reported: {stderr}");
        }
        assert!(
            stderr.contains("***@127.0.0.1:9") && stderr.contains("mirror:***@127.0.0.1:9"),
            "{flags:?}: the host stays visible: {stderr}"
        );
        if flags == ["-vv"] {
            assert!(stderr.contains("retrying"), "the log lines ran: {stderr}");
        }
    }
}

/// Issue 18 item 8: a partial upstream that lists `i18n/Translation-en`
/// in its Release but does not serve it (every form 404) is mirrored
/// anyway, as apt reads it: one warning naming the file, the packages
/// mirrored, and the Release halo signs lists only what the snapshot
/// serves (each listed file exists with its listed hash; gpgv and apt
/// read it without a warning).
#[test]
fn a_translation_listed_but_not_served_is_left_out_with_a_warning() {
    let up = Upstream::new();
    populate(&up);
    up.publish(
        DIST,
        &Publish {
            translations: true,
            ..Publish::default()
        },
    );
    let listed = fs::read_to_string(up.dist_file(DIST, "Release")).unwrap();
    assert!(listed.contains("main/i18n/Translation-en.bz2"), "{listed}");
    fs::remove_dir_all(up.dist_file(DIST, "main/i18n")).unwrap();
    let t = store_with(&up, "");
    let out = update(&t);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("main/i18n/Translation-en") && stderr.contains("not served"),
        "one warning names the file: {stderr}"
    );
    assert!(
        up.requests()
            .iter()
            .any(|(p, s)| p.contains("/i18n/") && *s == 404),
        "halo asked for it: {:?}",
        up.requests()
    );
    let id = t.snapshot();
    let export = export_snapshot(&t, &id, "export");
    assert_eq!(
        exported_packages(&export, "up"),
        BTreeSet::from([
            "app=1.0".into(),
            "app-doc=1.0".into(),
            "lib=1.0".into(),
            "lib=2.0".into(),
            "mta=3.0".into(),
            "unrelated=0.1".into(),
        ])
    );
    let dist = export.join(format!("up/dists/{DIST}"));
    let release = fs::read_to_string(dist.join("Release")).unwrap();
    assert!(!release.contains("i18n"), "{release}");
    // Every file the Release lists is served, with the listed hash.
    let mut in_sha256 = false;
    let mut walked = 0;
    for line in release.lines() {
        if !line.starts_with(' ') {
            in_sha256 = line == "SHA256:";
            continue;
        }
        if !in_sha256 {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let data = fs::read(dist.join(w[2])).unwrap();
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&data)), w[0], "{}", w[2]);
        assert_eq!(data.len().to_string(), w[1], "{}", w[2]);
        walked += 1;
    }
    assert!(walked > 0, "{release}");
    ok(Command::new("gpgv")
        .arg("--keyring")
        .arg(t.store().join("keys/repo.gpg"))
        .arg(dist.join("InRelease")));
    let sources = format!(
        "deb [signed-by={}] copy:{}/up {DIST} main\n",
        t.store().join("keys/repo.gpg").display(),
        export.display()
    );
    Apt::new(&t.root().join("apt"), &sources).update();
    t.assert_sound();
}
