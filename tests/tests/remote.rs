//! Remote mode (issue 19): `halo --server URL build|accept` on a host that
//! has no store, talking only to `halo serve`'s API, and the write API
//! itself: uploads, snapshots and compare-and-swap moves from several
//! clients at once, a server killed in the middle of an upload, and
//! writes refused for a missing or wrong token or too small a role. The
//! server runs on 127.0.0.1; the client is the real `halo` or `curl`.
//! No token appears in any output.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fs_err as fs;
use halo_tests::build::copy_example;
use halo_tests::debian::{debs, host_arch, host_codename};
use halo_tests::serve::{curl, Answer, Server};
use halo_tests::upstream::{Publish, Upstream};
use halo_tests::{bin, need_tool, parse_stanzas, run, Deb, TestStore};
use sha2::{Digest, Sha256};

/// A token of `role` made on the store's host, handed over in a file in
/// `dir`: (file, token).
fn token_in(t: &TestStore, dir: &Path, name: &str, role: &str) -> (PathBuf, String) {
    let file = dir.join(format!("{name}.token"));
    t.ok(&[
        "token",
        "add",
        name,
        "--role",
        role,
        "--output",
        file.to_str().unwrap(),
    ]);
    let text = fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(text.starts_with("halo_"), "{text}");
    (file, text)
}

fn token(t: &TestStore, name: &str, role: &str) -> (PathBuf, String) {
    token_in(t, t.root(), name, role)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// No token in anything a test saw.
fn assert_no_token(outputs: &[&str], tokens: &[&str]) {
    for o in outputs {
        for t in tokens {
            assert!(!o.contains(t), "a token was shown: {o}");
        }
    }
}

/// `curl` with the token as a bearer header (on the command line of a
/// test's own child only).
fn api(scratch: &Path, method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    let mut args: Vec<String> = vec!["-X".into(), method.into()];
    if let Some(t) = token {
        args.extend(["-H".into(), format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        args.extend([
            "-H".into(),
            "Content-Type: application/json".into(),
            "--data-binary".into(),
            b.into(),
        ]);
    }
    args.push(url.into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(scratch, &refs)
}

/// `POST /api/v1/uploads/{id}/import` of `files` into rustedhalo/trusty/main.
fn import_upload(s: &Server, scratch: &Path, token: &str, id: &str, files: &[&str]) -> Answer {
    let body = serde_json::json!({
        "archive": "rustedhalo", "dist": "trusty", "component": "main", "files": files,
    });
    api(
        scratch,
        "POST",
        &s.url(&format!("/api/v1/uploads/{id}/import")),
        Some(token),
        Some(&body.to_string()),
    )
}

/// Uploads `files` into a new area and imports them into
/// rustedhalo/trusty/main: the import's answer.
fn upload_and_import(s: &Server, scratch: &Path, token: &str, files: &[PathBuf]) -> Answer {
    let area = api(
        scratch,
        "POST",
        &s.url("/api/v1/uploads"),
        Some(token),
        Some("{}"),
    );
    assert_eq!(area.status, 201, "{}", area.text());
    let id = area.json()["upload"].as_str().unwrap().to_string();
    let mut names = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let sha = hex::encode(Sha256::digest(fs::read(f).unwrap()));
        let put = curl(
            scratch,
            &[
                "-X",
                "PUT",
                "-H",
                &format!("Authorization: Bearer {token}"),
                "-H",
                &format!("X-Halo-Sha256: {sha}"),
                "--data-binary",
                &format!("@{}", f.display()),
                &s.url(&format!("/api/v1/uploads/{id}/{name}")),
            ],
        );
        assert_eq!(put.status, 200, "{}", put.text());
        names.push(name);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    import_upload(s, scratch, token, &id, &names)
}

/// The binary packages of `channel`'s rustedhalo/trusty/main, as its
/// exported Packages index lists them.
fn packages(t: &TestStore, channel: &str) -> Vec<String> {
    let dir = t.export_channel(channel);
    let index = dir.join(format!(
        "rustedhalo/dists/trusty/main/binary-{}/Packages",
        host_arch()
    ));
    let mut names: Vec<String> = parse_stanzas(&fs::read_to_string(index).unwrap_or_default())
        .iter()
        .filter_map(|s| halo_tests::field(s, "Package").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// A remote `halo` in its own mount namespace where the store's directory
/// does not exist: a tmpfs is mounted over the store's parent first, and
/// the command refuses to start if the store is still visible.
fn remote_halo(t: &TestStore, server: &Server, args: &[&str], envs: &[(&str, &str)]) -> Output {
    need_tool("unshare", "util-linux");
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none "$1" && test ! -e "$2" && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(t.root())
        .arg(t.store())
        .arg(bin("halo"))
        .args(["--server", &server.url])
        .args(args)
        .env_remove("HALO_STORE")
        .env_remove("HALO_CONFIG")
        .env_remove("HALO_TOKEN")
        .env_remove("RUST_LOG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

#[test]
fn a_remote_agent_without_the_store_builds_publishes_and_accepts_with_a_system() {
    need_tool("mmdebstrap", "mmdebstrap");
    need_tool("dpkg-buildpackage", "dpkg-dev");
    let dist = host_codename();
    // The repository host: a gated store mirroring the Debian base.
    let up = Upstream::new();
    for deb in debs(&[]) {
        up.add_deb("main", &deb);
    }
    up.publish(
        &dist,
        &Publish {
            architectures: vec![host_arch()],
            ..Publish::default()
        },
    );
    let t = TestStore::gated();
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[[mirror]]\nname = \"debian\"\nurl = \"{}\"\ndists = [\"{dist}\"]\ncomponents = [\"main\"]\n\
             architectures = [\"{}\"]\nkeyring = \"{}\"\n",
            up.url(),
            host_arch(),
            up.keyring().display()
        ),
    )
    .unwrap();
    t.ok(&["mirror", "update", "debian"]);
    let server = Server::start(&t, &[]);

    // The agent's host: its own configuration, work directory, tree and
    // token files.
    let agent = tempfile::Builder::new()
        .prefix("halo-agent-")
        .tempdir()
        .unwrap();
    let a = agent.path();
    halo_tests::set_mode(a, 0o755);
    // The writer's token travels in HALO_TOKEN, the acceptor's in a file
    // (moving the gated stable channel needs role stable: a writer's
    // refusal is `writes_without_a_token_...`'s).
    let (_, writer) = token_in(&t, a, "builder", "writer");
    let (stable_file, stable) = token_in(&t, a, "acceptor", "stable");
    let tree = a.join("halo-hello");
    copy_example(&tree);
    let config = a.join("agent.toml");
    fs::write(
        &config,
        format!(
            "[acceptance]\n\n[[acceptance.system]]\nname = \"app\"\nsuite = \"{dist}\"\n\
             archives = [\"debian\", \"rustedhalo\"]\npackages = [\"halo-hello\"]\n\
             tests = [\"hello=halo-hello | grep -x 'Hello, world!'\"]\n"
        ),
    )
    .unwrap();
    let work = a.join("work");
    let common = [
        "--config",
        config.to_str().unwrap(),
        "--work-dir",
        work.to_str().unwrap(),
    ];

    // Build and publish, the token in HALO_TOKEN.
    let mut args = common.to_vec();
    args.extend([
        "build",
        "--path",
        tree.to_str().unwrap(),
        "--dist",
        &dist,
        "--channel",
        "trusty-unstable",
    ]);
    let built = remote_halo(&t, &server, &args, &[("HALO_TOKEN", &writer)]);
    let built_text = text(&built);
    assert_eq!(built.status.code(), Some(0), "{built_text}");
    let id = t.channel("trusty-unstable");
    assert!(
        built_text.contains(&format!(
            "built halo-hello 1.0 -> snapshot {id}, trusty-unstable moved"
        )),
        "{built_text}"
    );
    let history = t.ok(&["channel", "history", "trusty-unstable"]);
    assert!(history.contains("token:builder"), "{history}");

    // The acceptor: the system installs the package from the snapshot the
    // agent downloaded from the served tree, and stable moves to it.
    let mut args = common.to_vec();
    args.extend(["--token-file", stable_file.to_str().unwrap(), "accept"]);
    let accepted = remote_halo(&t, &server, &args, &[]);
    let accepted_text = text(&accepted);
    assert_eq!(accepted.status.code(), Some(0), "{accepted_text}");
    assert!(
        accepted_text.contains(&format!("accepted {id}: 3 tests passed; trusty: - -> {id}")),
        "{accepted_text}"
    );
    assert!(
        accepted_text.contains("[app] Hello, world!"),
        "{accepted_text}"
    );
    assert_eq!(t.channel("trusty"), id);
    assert_eq!(t.channel("trusty-testing"), id);
    let history = t.ok(&["channel", "history", "trusty"]);
    assert!(history.contains("token:acceptor"), "{history}");
    // The run's testcases are kept for the page.
    let runs = curl(a, &[&server.url("/api/v1/runs")]).json();
    let run = runs[0]["id"].as_str().unwrap_or_else(|| panic!("{runs}"));
    let report = curl(a, &[&server.url(&format!("/api/v1/runs/{run}"))]).text();
    assert!(report.contains("\"hello\""), "{report}");
    t.assert_sound();
    assert_no_token(
        &[&built_text, &accepted_text, &server.log()],
        &[&writer, &stable],
    );
}

#[test]
fn four_uploaders_and_compare_and_swap_promotions_lose_no_update() {
    let t = TestStore::new();
    let (_, writer) = token(&t, "ci", "writer");
    let server = Server::start(&t, &[]);
    let rounds = 3;
    std::thread::scope(|scope| {
        for i in 0..4 {
            let (t, server, writer) = (&t, &server, &writer);
            scope.spawn(move || {
                let scratch = t.path(&format!("uploader-{i}/x")).parent().unwrap().to_path_buf();
                for r in 0..rounds {
                    let deb = Deb::new(&format!("pkg-{i}-{r}"), "1.0").build(&scratch);
                    let imported = upload_and_import(server, &scratch, writer, &[deb]);
                    assert_eq!(imported.status, 200, "{}", imported.text());
                    let snap = api(&scratch, "POST", &server.url("/api/v1/snapshots"), Some(writer), Some("{}"));
                    assert_eq!(snap.status, 200, "{}", snap.text());
                    let id = snap.json()["id"].as_str().unwrap().to_string();
                    // Compare-and-swap until the channel holds this snapshot
                    // or a newer one (which holds this import too).
                    let mut moved = false;
                    for _ in 0..50 {
                        let cur = api(&scratch, "GET", &server.url("/api/v1/channels/trusty-unstable"), None, None);
                        let expect = cur.json()["snapshot"].as_str().unwrap_or("none").to_string();
                        if expect != "none" && expect >= id {
                            moved = true;
                            break;
                        }
                        let body = serde_json::json!({
                            "target": id, "expect": expect, "action": "promote", "reason": format!("uploader {i}"),
                        });
                        let m = api(
                            &scratch,
                            "POST",
                            &server.url("/api/v1/channels/trusty-unstable/move"),
                            Some(writer),
                            Some(&body.to_string()),
                        );
                        match m.status {
                            200 => {
                                moved = true;
                                break;
                            }
                            409 => {
                                let e = m.json();
                                assert_eq!(e["kind"], "stale", "{e}");
                                assert_eq!(e["expected"], expect.as_str(), "{e}");
                            }
                            s => panic!("move answered {s}: {}", m.text()),
                        }
                    }
                    assert!(moved, "uploader {i} never moved the channel");
                }
            });
        }
    });
    let expected: Vec<String> = {
        let mut v: Vec<String> = (0..4)
            .flat_map(|i| (0..rounds).map(move |r| format!("pkg-{i}-{r}")))
            .collect();
        v.sort();
        v
    };
    assert_eq!(packages(&t, "trusty-unstable"), expected);
    // Every move was a compare-and-swap against the one before it.
    let out = run(t
        .halo()
        .args(["--json", "channel", "history", "trusty-unstable"]));
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = history
        .as_array()
        .or_else(|| history["entries"].as_array())
        .unwrap_or_else(|| panic!("{history}"));
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["from"], pair[0]["to"], "{history}");
    }
    t.assert_sound();
    assert_no_token(&[&server.log()], &[&writer]);
}

#[test]
fn a_server_killed_mid_upload_imports_nothing_and_the_store_stays_sound() {
    let t = TestStore::new();
    let (_, writer) = token(&t, "ci", "writer");
    let scratch = t.path("scratch/x").parent().unwrap().to_path_buf();
    let before = t.fingerprint();
    let server = Server::start(&t, &[]);

    // A digest that does not match is refused and imports nothing.
    let good = Deb::new("halo-good", "1.0").build(&scratch);
    let good_name = good.file_name().unwrap().to_str().unwrap().to_string();
    let area = api(
        &scratch,
        "POST",
        &server.url("/api/v1/uploads"),
        Some(&writer),
        Some("{}"),
    );
    let id = area.json()["upload"].as_str().unwrap().to_string();
    let bad = curl(
        &scratch,
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Authorization: Bearer {writer}"),
            "-H",
            &format!("X-Halo-Sha256: {}", "0".repeat(64)),
            "--data-binary",
            &format!("@{}", good.display()),
            &server.url(&format!("/api/v1/uploads/{id}/{good_name}")),
        ],
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(
        bad.json()["error"].as_str().unwrap().contains("not 000"),
        "{}",
        bad.text()
    );
    let import = import_upload(&server, &scratch, &writer, &id, &[&good_name]);
    assert_eq!(import.status, 400, "{}", import.text());
    assert_eq!(
        t.fingerprint(),
        before,
        "a refused upload changed the store"
    );

    // A large upload, slowly; the server is killed while it streams.
    let big = scratch.join("big_1.0_all.deb");
    fs::write(&big, vec![7u8; 32 << 20]).unwrap();
    let area = api(
        &scratch,
        "POST",
        &server.url("/api/v1/uploads"),
        Some(&writer),
        Some("{}"),
    );
    let id = area.json()["upload"].as_str().unwrap().to_string();
    let sha = hex::encode(Sha256::digest(fs::read(&big).unwrap()));
    let mut upload = Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "--limit-rate",
            "2M",
            "-X",
            "PUT",
            "-H",
        ])
        .arg(format!("Authorization: Bearer {writer}"))
        .arg("-H")
        .arg(format!("X-Halo-Sha256: {sha}"))
        .arg("--data-binary")
        .arg(format!("@{}", big.display()))
        .arg(server.url(&format!("/api/v1/uploads/{id}/big_1.0_all.deb")))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let area_dir = t.store().join(format!("work/upload-{id}"));
    let partial: u64 = fs::read_dir(&area_dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        partial > 0 && partial < 32 << 20,
        "mid-upload: {partial} bytes"
    );
    halo_tests::mount::send_signal(server.pid(), libc::SIGKILL);
    let _ = upload.wait();
    let log = server.log();
    drop(server);
    // Nothing imported; the area is a leftover of a dead process that fsck
    // names without calling the store unsound, and gc removes.
    assert_eq!(t.fingerprint(), before, "a killed upload changed the store");
    let fsck = run(t.halo().args(["--json", "fsck"]));
    assert!(fsck.status.success(), "{}", text(&fsck));
    let report: serde_json::Value = serde_json::from_slice(&fsck.stdout).unwrap();
    assert_eq!(
        report["leftovers"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    t.ok(&["gc"]);
    assert!(!area_dir.exists());
    t.assert_sound();

    // The server again: a whole upload imports.
    let server = Server::start(&t, &[]);
    let imported = upload_and_import(&server, &scratch, &writer, &[good]);
    assert_eq!(imported.status, 200, "{}", imported.text());
    assert_eq!(imported.json()["added"].as_array().map(Vec::len), Some(1));
    assert!(!t.store().join("work").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("upload-")));
    t.assert_sound();
    assert_no_token(&[&log, &server.log()], &[&writer]);
}

#[test]
fn writes_without_a_token_with_a_wrong_one_or_a_weak_role_change_nothing() {
    let t = TestStore::gated();
    let deb = Deb::new("halo-one", "1.0").build(t.path("debs/x").parent().unwrap());
    t.import("trusty", &[deb]);
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    let (_, writer) = token(&t, "ci", "writer");
    let server = Server::start(&t, &[]);
    let scratch = t.path("scratch/x").parent().unwrap().to_path_buf();
    let before = t.fingerprint();
    let wrong = format!("halo_{}", "ab".repeat(32));
    let to_stable = format!(r#"{{"target":"{id}","expect":"none","action":"promote"}}"#);
    let to_unstable = format!(
        r#"{{"target":"{id}","expect":"{id}","action":"promote","force":true,"reason":"x"}}"#
    );
    // (method, path, token, body, status)
    type Case<'a> = (&'a str, String, Option<&'a str>, Option<String>, u16);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/api/v1/snapshots".into(),
            None,
            Some("{}".into()),
            401,
        ),
        (
            "POST",
            "/api/v1/snapshots".into(),
            Some(&wrong),
            Some("{}".into()),
            401,
        ),
        (
            "POST",
            "/api/v1/uploads".into(),
            None,
            Some("{}".into()),
            401,
        ),
        (
            "POST",
            "/api/v1/channels/trusty/move".into(),
            Some(&writer),
            Some(to_stable.clone()),
            403,
        ),
        (
            "POST",
            "/api/v1/channels/trusty-unstable/move".into(),
            Some(&writer),
            Some(to_unstable),
            403,
        ),
        (
            "POST",
            "/api/v1/channels/trusty/move".into(),
            None,
            Some(to_stable),
            401,
        ),
        (
            "POST",
            "/api/v1/leases/trusty-testing".into(),
            Some(&wrong),
            Some("{}".into()),
            401,
        ),
        (
            "POST",
            "/api/v1/builds".into(),
            None,
            Some("{}".into()),
            401,
        ),
        (
            "POST",
            "/api/v1/runs/events".into(),
            Some(&writer),
            Some("not json".into()),
            400,
        ),
    ];
    let mut seen = Vec::new();
    for (method, path, tok, body, status) in &cases {
        let a = api(&scratch, method, &server.url(path), *tok, body.as_deref());
        assert_eq!(a.status, *status, "{method} {path}: {}", a.text());
        let e = a.json();
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
        seen.push(a.text());
    }
    assert_eq!(t.fingerprint(), before, "a refused write changed the store");
    // The remote halo with a wrong token: one line, exit 2, nothing moved.
    let out = run(Command::new(bin("halo"))
        .args(["--server", &server.url, "--work-dir"])
        .arg(t.root().join("agent-work"))
        .args(["accept", "--test", "ok=true"])
        .env("HALO_TOKEN", &wrong)
        .env_remove("HALO_STORE")
        .env_remove("HALO_CONFIG"));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("unknown token"), "{said}");
    assert_eq!(t.fingerprint(), before, "a refused run changed the store");
    seen.push(said);
    seen.push(server.log());
    let seen: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_no_token(&seen, &[&writer, &wrong]);
}

/// A batch upload's tar stream made by GNU tar in `dir`: the manifest
/// (`sha256sum`'s lines for `digests`, or `manifest` as given), then
/// `members` (tar's own options first in `opts`).
fn gnu_tar(dir: &Path, out: &str, manifest: &str, opts: &[&str], members: &[&str]) -> PathBuf {
    need_tool("tar", "tar");
    fs::write(dir.join(".halo-sha256sums"), manifest).unwrap();
    let tar = dir.join(out);
    halo_tests::ok(
        Command::new("tar")
            .current_dir(dir)
            .args(["--format=gnu", "-cf"])
            .arg(&tar)
            .args(opts)
            .arg(".halo-sha256sums")
            .args(members),
    );
    tar
}

/// `sha256sum`'s lines for `files` in `dir` (the real tool).
fn sha256sums(dir: &Path, files: &[&str]) -> String {
    need_tool("sha256sum", "coreutils");
    halo_tests::ok(Command::new("sha256sum").current_dir(dir).args(files))
}

fn put_tar(s: &Server, scratch: &Path, token: &str, id: &str, tar: &Path) -> Answer {
    curl(
        scratch,
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/x-tar",
            "--data-binary",
            &format!("@{}", tar.display()),
            &s.url(&format!("/api/v1/uploads/{id}")),
        ],
    )
}

#[test]
fn batched_uploads_import_whole_and_refuse_bad_members_digests_and_cut_streams_cleanly() {
    let t = TestStore::new();
    let (token_file, writer) = token(&t, "ci", "writer");
    let scratch = t.path("scratch/x").parent().unwrap().to_path_buf();
    let dir = t.path("batch/x").parent().unwrap().to_path_buf();
    let one = Deb::new("halo-one", "1.0").build(&dir);
    let two = Deb::new("halo-two", "1.0").build(&dir);
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
    let (one_n, two_n) = (name(&one), name(&two));
    fs::write(dir.join("big_1.0_all.deb"), vec![7u8; 1 << 20]).unwrap();
    std::os::unix::fs::symlink(&one_n, dir.join("link_1.0_all.deb")).unwrap();
    let server = Server::start(&t, &[]);
    let before = t.fingerprint();
    let area = api(
        &scratch,
        "POST",
        &server.url("/api/v1/uploads"),
        Some(&writer),
        Some("{}"),
    );
    let id = area.json()["upload"].as_str().unwrap().to_string();
    let area_dir = t.store().join(format!("work/upload-{id}"));

    // Refused, each whole: the good member sent before the bad one is
    // removed again, and the area stays empty.
    let sums = sha256sums(&dir, &[&one_n, &two_n, "big_1.0_all.deb"]);
    let full = gnu_tar(
        &dir,
        "full.tar",
        &sums,
        &[],
        &[&one_n, &two_n, "big_1.0_all.deb"],
    );
    let mut cut_bytes = fs::read(&full).unwrap();
    cut_bytes.truncate(cut_bytes.len() - (600 << 10));
    let cut = dir.join("cut.tar");
    fs::write(&cut, cut_bytes).unwrap();
    let wrong = sums.replace(&sums[..64], &"0".repeat(64));
    let link_sums = format!("{sums}{}  link_1.0_all.deb\n", &sums[..64]);
    let cases = [
        (
            gnu_tar(
                &dir,
                "dotdot.tar",
                &sums,
                &["-P", "--transform", &format!("s,^{two_n}$,../{two_n},")],
                &[&one_n, &two_n],
            ),
            "would escape its directory",
        ),
        (
            gnu_tar(
                &dir,
                "link.tar",
                &link_sums,
                &[],
                &[&one_n, "link_1.0_all.deb"],
            ),
            "a symbolic link",
        ),
        (
            gnu_tar(&dir, "digest.tar", &wrong, &[], &[&two_n, &one_n]),
            "not 0000",
        ),
        (cut, "upload cut"),
        (
            gnu_tar(&dir, "missing.tar", &sums, &[], &[&one_n, &two_n]),
            "the stream ended without big_1.0_all.deb",
        ),
    ];
    for (tar, why) in &cases {
        let a = put_tar(&server, &scratch, &writer, &id, tar);
        assert_eq!(a.status, 400, "{}: {}", tar.display(), a.text());
        let e = a.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            e.contains(why) && !e.contains('\n'),
            "{}: {e}",
            tar.display()
        );
        let left: Vec<_> = fs::read_dir(&area_dir).unwrap().collect();
        assert!(left.is_empty(), "{}: {left:?} left", tar.display());
    }
    let import = import_upload(&server, &scratch, &writer, &id, &[&one_n]);
    assert_eq!(import.status, 400, "{}", import.text());
    assert_eq!(t.fingerprint(), before, "a refused batch changed the store");

    // Whole, from GNU tar: every file named, then imported (adopted into
    // the pool: the blob is the uploaded file itself, not a copy).
    let area = api(
        &scratch,
        "POST",
        &server.url("/api/v1/uploads"),
        Some(&writer),
        Some("{}"),
    );
    let id = area.json()["upload"].as_str().unwrap().to_string();
    let sums = sha256sums(&dir, &[&one_n]);
    let a = put_tar(
        &server,
        &scratch,
        &writer,
        &id,
        &gnu_tar(&dir, "good.tar", &sums, &[], &[&one_n]),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["files"][0]["sha256"].as_str(), Some(&sums[..64]));
    let uploaded = t.store().join(format!("work/upload-{id}/{one_n}"));
    let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&uploaded).unwrap());
    let import = import_upload(&server, &scratch, &writer, &id, &[&one_n]);
    assert_eq!(import.status, 200, "{}", import.text());
    let blob = t
        .store()
        .join(format!("pool/{}/{}", &sums[..2], &sums[..64]));
    let meta = fs::metadata(&blob).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&meta), inode);
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o777, 0o444);

    // The real client: `halo --server URL import` sends tar streams, a
    // part of small files from memory and a package larger than a part
    // streamed from disk, at once.
    let big = Deb::new("halo-big", "1.0")
        .compression("none")
        .file("/usr/share/halo-big/data", &"x".repeat(5 << 20), 0o644)
        .build(&dir);
    let out = run(Command::new(bin("halo"))
        .args(["--server", &server.url, "--token-file"])
        .arg(&token_file)
        .arg("--work-dir")
        .arg(t.root().join("agent-work"))
        .args(["import", "--archive", "rustedhalo", "--dist", "trusty"])
        .args(["--component", "main"])
        .arg(&two)
        .arg(&big)
        .env_remove("HALO_STORE")
        .env_remove("HALO_CONFIG"));
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("added halo-two_1.0_"), "{said}");
    assert!(said.contains("added halo-big_1.0_all"), "{said}");
    assert!(!t.store().join("work").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("upload-")));
    t.assert_sound();
    assert_no_token(&[&said, &server.log()], &[&writer]);
}
