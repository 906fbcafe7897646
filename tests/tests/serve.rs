//! `halo serve` through the real binary, judged by real clients: the real
//! `apt-get` installs from the served trees (and keeps updating while a
//! channel is promoted 200 times under it), `curl` checks the caching
//! headers, ranges, TLS and the API's refusals, and headless Chromium
//! renders the page whose DOM the test reads.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fs_err as fs;
use halo_tests::mount::{apt_ok, sandboxed};
use halo_tests::serve::{curl, Server};
use halo_tests::{bin_dir, files_under, need_tool, ok, run, Apt, TestStore};

#[test]
fn apt_installs_from_the_served_trees_byte_for_byte_what_export_writes() {
    let t = TestStore::new();
    t.import_pair("1.0");
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &id]);
    let server = Server::start(&t, &[]);
    let scratch = t.path("scratch/x").parent().unwrap().to_path_buf();

    // Every file of the export, served under the channel and the snapshot.
    let export = t.export_channel("trusty");
    let tree = files_under(&export);
    assert!(tree.len() > 10, "{tree:?}");
    for rel in &tree {
        let want = fs::read(export.join(rel)).unwrap();
        for base in ["/channels/trusty", &format!("/snapshots/{id}")] {
            let a = curl(
                &scratch,
                &[&server.url(&format!("{base}/{}", rel.display()))],
            );
            assert_eq!(a.status, 200, "{base}/{}", rel.display());
            assert!(
                a.body == want,
                "{base}/{} differs from the export",
                rel.display()
            );
        }
    }

    // The channel's link, followed inside a path as over the mount.
    let rel = "rustedhalo/dists/trusty/InRelease";
    let linked = curl(
        &scratch,
        &[&server.url(&format!("/channels/trusty.snapshot/{rel}"))],
    );
    assert_eq!(linked.status, 200);
    assert!(linked.body == fs::read(export.join(rel)).unwrap());
    let link = curl(&scratch, &[&server.url("/channels/trusty.snapshot")]);
    assert!((300..400).contains(&link.status), "{}", link.status);
    let listing = curl(&scratch, &["-L", &server.url("/channels/trusty.snapshot")]);
    assert!(listing.text().contains("rustedhalo/"), "{}", listing.text());

    // Caching: the ETag is the content, pool and by-hash files immutable,
    // InRelease re-asked; conditional requests and ranges.
    let deb_rel = tree
        .iter()
        .find(|p| p.to_string_lossy().ends_with("halo-app_1.0_amd64.deb"))
        .unwrap();
    let deb_url = server.url(&format!("/channels/trusty/{}", deb_rel.display()));
    let deb = fs::read(export.join(deb_rel)).unwrap();
    let a = curl(&scratch, &[&deb_url]);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&deb))
    };
    assert_eq!(a.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert!(a.header("cache-control").unwrap().contains("immutable"));
    assert!(a.header("last-modified").is_some());
    let in_release = curl(
        &scratch,
        &[&server.url("/channels/trusty/rustedhalo/dists/trusty/InRelease")],
    );
    assert_eq!(in_release.header("cache-control"), Some("no-cache"));
    let etag = in_release.header("etag").unwrap().to_string();
    let again = curl(
        &scratch,
        &[
            "-H",
            &format!("If-None-Match: {etag}"),
            &server.url("/channels/trusty/rustedhalo/dists/trusty/InRelease"),
        ],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let by_hash = tree
        .iter()
        .find(|p| p.to_string_lossy().contains("/by-hash/SHA256/"))
        .expect("by-hash files");
    let a = curl(
        &scratch,
        &[&server.url(&format!("/channels/trusty/{}", by_hash.display()))],
    );
    assert!(a.header("cache-control").unwrap().contains("immutable"));
    let part = curl(&scratch, &["-H", "Range: bytes=10-19", &deb_url]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, deb[10..20]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 10-19/{}", deb.len()).as_str())
    );
    let tail = curl(&scratch, &["-H", "Range: bytes=-5", &deb_url]);
    assert_eq!(tail.body, deb[deb.len() - 5..]);
    let bad = curl(&scratch, &["-H", "Range: bytes=99999999-", &deb_url]);
    assert_eq!(bad.status, 416);
    let head = curl(&scratch, &["-I", &deb_url]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(deb.len().to_string().as_str())
    );
    for missing in [
        "/channels/trusty/rustedhalo/dists/nope/InRelease",
        "/channels/nope/rustedhalo/",
        "/snapshots/20990101T000000.000Z/",
        "/channels/trusty/../../etc/passwd",
    ] {
        let a = curl(&scratch, &["--path-as-is", &server.url(missing)]);
        assert!(
            a.status == 404 || a.status == 400,
            "{missing}: {}",
            a.status
        );
    }

    // The real apt, sandboxed as _apt, installs from the channel and the
    // snapshot over HTTP; what it downloads is what was imported.
    for base in [
        server.url("/channels/trusty/rustedhalo"),
        server.url(&format!("/snapshots/{id}/rustedhalo")),
    ] {
        let apt = Apt::new(
            &t.root().join(format!("apt-{}", base.len())),
            &t.sources(&base),
        );
        apt_ok(&apt, "apt-get", &["update"]);
        assert_eq!(apt.candidate("halo-app").as_deref(), Some("1.0"));
        apt_ok(
            &apt,
            "apt-get",
            &["install", "--download-only", "-y", "halo-app"],
        );
        for name in ["halo-app_1.0_amd64.deb", "halo-lib_1.0_all.deb"] {
            let fetched = apt.dir.join("cache/archives").join(name);
            let original = t.root().join("in/1.0").join(name);
            assert_eq!(
                fs::read(&fetched).unwrap(),
                fs::read(&original).unwrap(),
                "{name}"
            );
        }
    }
    assert!(server.stop().success());
}

/// Update + download-only install rounds until `done`; every failure's
/// output, and how many rounds ran.
fn apt_loop(apt: &Apt, done: &AtomicBool, rounds: &AtomicUsize) -> Vec<String> {
    let mut failures = Vec::new();
    while !done.load(Ordering::Relaxed) {
        for args in [
            &["update"][..],
            &["install", "--download-only", "-y", "halo-app"],
        ] {
            let out = run(sandboxed(apt, "apt-get").args(args));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let bad = ["W:", "E:", "Err:", "Hash Sum mismatch", "Not Found"];
            if !out.status.success() || bad.iter().any(|b| text.contains(b)) {
                failures.push(text);
            }
        }
        rounds.fetch_add(1, Ordering::Relaxed);
    }
    failures
}

#[test]
fn apt_update_across_200_promotions_under_4_client_loops_sees_no_error() {
    let t = TestStore::new();
    t.import_pair("1.0");
    let first = t.snapshot();
    t.import_pair("1.1");
    let second = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &first]);
    let server = Server::start_with(&t, &[], &[]);
    let base = server.url("/channels/trusty/rustedhalo");
    let apts: Vec<_> = (0..4)
        .map(|i| Apt::new(&t.root().join(format!("apt-{i}")), &t.sources(&base)))
        .collect();
    let done = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    let failures = std::thread::scope(|s| {
        let loops: Vec<_> = apts
            .iter()
            .map(|apt| s.spawn(|| apt_loop(apt, &done, &rounds)))
            .collect();
        for i in 0..200 {
            let to = if i % 2 == 0 { &second } else { &first };
            t.ok(&["promote", "--to", "trusty", "--snapshot", to]);
        }
        done.store(true, Ordering::Relaxed);
        loops
            .into_iter()
            .flat_map(|l| l.join().unwrap())
            .collect::<Vec<String>>()
    });
    assert!(
        failures.is_empty(),
        "{} failures, the first:\n{}",
        failures.len(),
        failures[0]
    );
    // Counted: the loops must have run across promotions.
    let rounds = rounds.load(Ordering::Relaxed);
    assert!(
        rounds >= 8,
        "only {rounds} apt rounds during 200 promotions"
    );
    let log = server.log();
    assert!(!log.contains("ERROR"), "{log}");
}

/// `halo token add` with `--output`, and on stdout: the token.
fn add_token(t: &TestStore, name: &str, role: &str) -> (String, String) {
    let file = t.root().join(format!("{name}.token"));
    let out = t.ok(&[
        "token",
        "add",
        name,
        "--role",
        role,
        "--output",
        file.to_str().unwrap(),
    ]);
    let token = fs::read_to_string(&file).unwrap().trim().to_string();
    (token, out)
}

#[test]
fn requests_without_or_with_a_wrong_token_change_nothing_and_no_token_is_ever_printed() {
    let t = TestStore::gated();
    t.import_pair("1.0");
    let (admin, admin_out) = add_token(&t, "ops", "admin");
    let (writer, writer_out) = add_token(&t, "ci", "writer");
    assert!(admin.starts_with("halo_") && admin.len() == 69, "{admin}");
    let file_mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(t.root().join("ops.token"))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(file_mode & 0o777, 0o600);
    // On stdout when no file is named: the one place it is printed.
    let shown = t.ok(&["token", "add", "shown", "--role", "writer"]);
    let shown = shown.trim().to_string();
    assert!(shown.starts_with("halo_") && shown.len() == 69, "{shown}");
    let tokens_file = t.store().join("serve/tokens.json");
    let stored = fs::read_to_string(&tokens_file).unwrap();
    for tok in [&admin, &writer, &shown] {
        assert!(!stored.contains(tok.as_str()), "a token stored in clear");
    }
    // A second token of the same name is refused: exit 1, one line.
    let dup = run(t.halo().args(["token", "add", "ci", "--role", "admin"]));
    assert_eq!(dup.status.code(), Some(1));

    let server = Server::start(&t, &[]);
    let scratch = t.path("scratch/x").parent().unwrap().to_path_buf();
    let before = fs::read(&tokens_file).unwrap();
    let channels_before = t.ok(&["--json", "channel", "list"]);
    let url = server.url("/api/v1/tokens");
    let body = r#"{"name": "intruder", "role": "admin"}"#;
    let wrong = format!("halo_{}", "0".repeat(64));
    for (auth, status, kind) in [
        (None, 401, "unauthorized"),
        (Some(format!("Bearer {wrong}")), 401, "unauthorized"),
        (Some("Bearer nonsense".to_string()), 401, "unauthorized"),
        (Some(format!("Basic {admin}")), 401, "unauthorized"),
        (Some(format!("Bearer {writer}")), 403, "forbidden"),
    ] {
        let mut args = vec![
            "-X".to_string(),
            "POST".to_string(),
            "-H".to_string(),
            "Content-Type: application/json".to_string(),
            "-d".to_string(),
            body.to_string(),
        ];
        if let Some(a) = &auth {
            args.push("-H".into());
            args.push(format!("Authorization: {a}"));
        }
        args.push(url.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let a = curl(&scratch, &args);
        assert_eq!(a.status, status, "{auth:?}: {}", a.text());
        let json = a.json();
        assert_eq!(json["kind"], kind, "{json}");
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(
            fs::read(&tokens_file).unwrap(),
            before,
            "{auth:?} changed the tokens"
        );
        let del = curl(
            &scratch,
            &[
                "-X",
                "DELETE",
                "-H",
                &format!("Authorization: {}", auth.as_deref().unwrap_or("")),
                &server.url("/api/v1/tokens/ci"),
            ],
        );
        assert!(del.status == 401 || del.status == 403, "{}", del.status);
        assert_eq!(fs::read(&tokens_file).unwrap(), before);
    }
    assert_eq!(t.ok(&["--json", "channel", "list"]), channels_before);
    // The write API (remote mode's): a snapshot without or with a wrong
    // token, a forced move of the gated stable channel by a writer.
    let snapshots_before = t.ok(&["snapshot", "list"]);
    for auth in ["", &format!("Authorization: Bearer {wrong}")] {
        let a = curl(
            &scratch,
            &["-X", "POST", "-H", auth, &server.url("/api/v1/snapshots")],
        );
        assert_eq!(a.status, 401, "{}", a.text());
    }
    assert_eq!(t.ok(&["snapshot", "list"]), snapshots_before);
    let id = t.snapshot();
    let history_before = t.ok(&["channel", "history", "trusty"]);
    let a = curl(
        &scratch,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            &format!("Authorization: Bearer {writer}"),
            "-d",
            &format!(r#"{{"target": "{id}", "action": "promote", "force": true, "reason": "x"}}"#),
            &server.url("/api/v1/channels/trusty/move"),
        ],
    );
    assert_eq!(a.status, 403, "{}", a.text());
    assert_eq!(t.ok(&["channel", "history", "trusty"]), history_before);
    assert_eq!(t.channel("trusty"), "-");
    // Bad JSON with a good token: 4xx, nothing changed.
    let a = curl(
        &scratch,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            &format!("Authorization: Bearer {admin}"),
            "-d",
            "{\"name\": 3}",
            &url,
        ],
    );
    assert!((400..500).contains(&a.status), "{}", a.status);
    assert_eq!(fs::read(&tokens_file).unwrap(), before);
    // The admin's request works: the new token is in that answer only.
    let a = curl(
        &scratch,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            &format!("Authorization: Bearer {admin}"),
            "-d",
            r#"{"name": "agent-1", "role": "stable"}"#,
            &url,
        ],
    );
    assert_eq!(a.status, 201, "{}", a.text());
    let made = a.json()["token"].as_str().unwrap().to_string();
    let listed = curl(
        &scratch,
        &["-H", &format!("Authorization: Bearer {made}"), &url],
    );
    assert_eq!(listed.status, 403, "a stable token cannot list tokens");
    let listed = curl(
        &scratch,
        &["-H", &format!("Authorization: Bearer {admin}"), &url],
    );
    let names: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["ops", "ci", "shown", "agent-1"]);
    // A token in a URL of a request (someone pasting it) reaches no log.
    curl(
        &scratch,
        &[&server.url(&format!("/channels/x?token={admin}"))],
    );
    curl(&scratch, &[&server.url(&format!("/api/v1/nope/{admin}"))]);
    let removed = curl(
        &scratch,
        &[
            "-X",
            "DELETE",
            "-H",
            &format!("Authorization: Bearer {admin}"),
            &server.url("/api/v1/tokens/agent-1"),
        ],
    );
    assert_eq!(removed.status, 204);
    let refused = curl(
        &scratch,
        &["-H", &format!("Authorization: Bearer {made}"), &url],
    );
    assert_eq!(refused.status, 401, "a removed token still works");

    let list_out = t.ok(&["token", "list"]);
    let list_json = t.ok(&["--json", "token", "list"]);
    assert!(
        list_out.contains("ops\tadmin") && list_out.contains("ci\twriter"),
        "{list_out}"
    );
    let stdout = server.stdout.clone();
    let log = server.log();
    assert!(server.stop().success());
    let outputs = [
        ("token add ops", admin_out),
        ("token add ci", writer_out),
        ("token list", list_out),
        ("token list --json", list_json),
        ("server stdout", stdout),
        ("server log (-vv)", log),
    ];
    for (what, text) in &outputs {
        for tok in [&admin, &writer, &shown, &made] {
            assert!(!text.contains(tok.as_str()), "a token in {what}:\n{text}");
        }
    }
}

#[test]
fn tls_serves_the_same_bytes_with_the_configured_certificate() {
    need_tool("openssl", "openssl");
    let t = TestStore::new();
    t.import_pair("1.0");
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &id]);
    let cert = t.root().join("cert.pem");
    let key = t.root().join("key.pem");
    ok(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // An end-entity certificate, so that a client may trust it alone.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    let server = Server::start(
        &t,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let scratch = t.path("scratch/x").parent().unwrap().to_path_buf();
    let path = "/channels/trusty/rustedhalo/dists/trusty/InRelease";
    let a = curl(
        &scratch,
        &["--cacert", cert.to_str().unwrap(), &server.url(path)],
    );
    assert_eq!(a.status, 200);
    let export = t.export_channel("trusty");
    assert_eq!(
        a.body,
        fs::read(export.join("rustedhalo/dists/trusty/InRelease")).unwrap()
    );
    // Without trusting the certificate, curl refuses: it is really TLS.
    let out = run(Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-o", "/dev/null"])
        .arg(server.url(path)));
    assert!(!out.status.success());
    // The real client trusts the server through --ca-cert, and without it
    // refuses in one line.
    let (_, _) = add_token(&t, "tls", "writer");
    let deb = halo_tests::Deb::new("halo-tls", "1.0").build(&t.path("tls-in"));
    let remote_import = |ca: Option<&std::path::Path>| {
        let mut cmd = t.halo();
        cmd.args(["--server", &server.url, "--token-file"])
            .arg(t.root().join("tls.token"))
            .arg("--work-dir")
            .arg(t.root().join("tls-work"));
        if let Some(ca) = ca {
            cmd.arg("--ca-cert").arg(ca);
        }
        cmd.args(["import", "--archive", "rustedhalo", "--dist", "trusty"])
            .args(["--component", "main"])
            .arg(&deb)
            .env_remove("HALO_STORE");
        run(&mut cmd)
    };
    let out = remote_import(None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("certificate"), "{err}");
    let out = remote_import(Some(&cert));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("added halo-tls_1.0_all"), "{said}");
    // A key that does not fit: one line, exit 1.
    let other = t.root().join("other.pem");
    ok(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&other));
    let out = run(t.halo().args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        other.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The page, rendered by headless Chromium: `--dump-dom` after its
/// scripts ran, and a screenshot kept under the target directory.
fn chromium(url: &str, extra: &[&str]) -> String {
    need_tool("chromium", "chromium");
    let profile = tempfile::tempdir().unwrap();
    let out = run(Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .env_remove("http_proxy")
        .env_remove("https_proxy"));
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The element with `marker` in its opening tag, up to the end of the
/// tag named `tag` after it: the text between, tags stripped.
fn element_text(dom: &str, marker: &str, tag: &str) -> Option<String> {
    let start = dom.find(marker)?;
    let open = dom[..start].rfind('<')?;
    let end = dom[start..].find(&format!("</{tag}>"))? + start;
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[open..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[test]
fn chromium_renders_the_channels_a_failing_testcase_and_the_next_promotion() {
    let t = TestStore::gated();
    t.import_pair("1.0");
    let first = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &first]);
    // A run that freezes testing at 1.0 and fails one testcase.
    let out = run(t.halo().args([
        "accept",
        "--test",
        "ok=true",
        "--test",
        "smoke=echo 'dpkg: error processing package halo-app'; exit 4",
    ]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // Unstable moves on: the next promotion brings 1.1.
    t.import_pair("1.1");
    let second = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &second]);

    let server = Server::start(&t, &[]);
    let scratch = t.path("scratch/x").parent().unwrap().to_path_buf();
    // The API the page reads, first.
    let runs = curl(&scratch, &[&server.url("/api/v1/runs")]).json();
    assert_eq!(runs[0]["verdict"], "rejected", "{runs}");
    assert_eq!(runs[0]["failed"], serde_json::json!(["smoke"]), "{runs}");
    let run_id = runs[0]["id"].as_str().unwrap();
    let report = curl(&scratch, &[&server.url(&format!("/api/v1/runs/{run_id}"))]).json();
    let smoke = report["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["name"] == "smoke")
        .unwrap();
    let output = curl(
        &scratch,
        &[&server.url(&format!(
            "/api/v1/runs/{run_id}/output?suite=0&case={smoke}"
        ))],
    );
    assert!(
        output
            .text()
            .contains("dpkg: error processing package halo-app"),
        "{}",
        output.text()
    );
    let diff = curl(
        &scratch,
        &[&server.url("/api/v1/diff?from=trusty-testing&to=trusty-unstable")],
    )
    .json();
    let changes = diff["changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|c| c["package"] == "halo-app"
            && c["kind"] == "upgraded"
            && c["from"] == "1.0"
            && c["to"] == "1.1"),
        "{diff}"
    );

    let page = server.url("/");
    let dom = chromium(&page, &["--dump-dom"]);
    assert!(
        dom.contains("data-loaded=\"1\""),
        "the page's scripts did not run:\n{dom}"
    );
    // The channel table.
    for (channel, snapshot) in [
        ("trusty-unstable", second.as_str()),
        ("trusty-testing", first.as_str()),
        ("trusty", "–"),
    ] {
        let row = element_text(&dom, &format!("data-channel=\"{channel}\""), "tr")
            .unwrap_or_else(|| panic!("no row for {channel}:\n{dom}"));
        assert!(row.starts_with(channel) && row.contains(snapshot), "{row}");
    }
    let trusty = element_text(&dom, "data-channel=\"trusty\"", "tr").unwrap();
    assert!(trusty.contains("gated"), "{trusty}");
    // The failing testcase, with a link to its output.
    let case = element_text(&dom, "class=\"case failed\" data-case=\"smoke\"", "li")
        .unwrap_or_else(|| panic!("no failing testcase:\n{dom}"));
    assert!(
        case.contains("failed") && case.contains("smoke") && case.contains("output"),
        "{case}"
    );
    assert!(
        dom.contains(&format!("runs/{run_id}/output?suite=0&amp;case={smoke}")),
        "{dom}"
    );
    let passed = element_text(&dom, "class=\"case passed\" data-case=\"ok\"", "li");
    assert!(passed.is_some(), "{dom}");
    // The next promotion: testing <- unstable brings halo-app 1.1.
    let change = element_text(&dom, "class=\"change upgraded\"", "tr")
        .unwrap_or_else(|| panic!("no diff row:\n{dom}"));
    assert!(
        change.contains("upgraded") && change.contains("halo-") && change.contains("1.0 → 1.1"),
        "{change}"
    );

    // The screenshot, kept for CI's artefacts.
    let dir = bin_dir().join("artefacts");
    fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("serve-page.png");
    let _ = fs::remove_file(&shot);
    chromium(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000",
        ],
    );
    let png = fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
