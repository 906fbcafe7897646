//! Untrusted code stays in its box (issue 20): a source's unit tests and
//! `debian/rules` run in a sandbox (a user namespace over subordinate ids,
//! pivot_root, private /dev, loopback-only network), bounded in time, and
//! its output is never held whole. The probe of `halo_tests::probe` tries
//! the escapes a hostile-input probe found; each must run and be refused.
//! The same probe runs in a build root (tests/buildroot.rs) and in an
//! acceptance system's postinst (tests/systems.rs).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fs_err as fs;
use halo_tests::build::{build, copy_example};
use halo_tests::probe::Targets;
use halo_tests::{need_tool, TestStore};

fn example(t: &TestStore) -> std::path::PathBuf {
    need_tool("dpkg-buildpackage", "dpkg-dev");
    need_tool("dh", "debhelper");
    need_tool("fakeroot", "fakeroot");
    need_tool("newuidmap", "uidmap");
    let dir = t.root().join("src/halo-hello");
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    copy_example(&dir);
    dir
}

#[test]
fn a_hostile_unit_test_on_the_host_is_refused_every_escape() {
    let t = TestStore::new();
    let dir = example(&t);
    let targets = Targets::new(&t.store());
    fs::write(dir.join("probe.sh"), targets.script()).unwrap();
    // The unit test is the probe, then who it runs as and where.
    let test = "sh probe.sh && echo \"PROBE USER $(id -u) $(pwd)\" && make check";
    let (code, r, stderr) = build(
        &t,
        &["--path", dir.to_str().unwrap(), "--host", "--test", test],
    );
    assert_eq!(code, 0, "{r}\n{stderr}");
    targets.assert_refused(&stderr);
    // Not root, in the tree bound at /build/src; dpkg-buildpackage ran
    // under fakeroot and the package still built.
    assert!(stderr.contains("PROBE USER 1000 /build/src"), "{stderr}");
    assert_eq!(r["status"], "built", "{r}");
}

#[test]
fn debian_rules_runs_in_the_box_too() {
    let t = TestStore::new();
    let dir = example(&t);
    let targets = Targets::new(&t.store());
    fs::write(dir.join("probe.sh"), targets.script()).unwrap();
    let rules = fs::read_to_string(dir.join("debian/rules")).unwrap();
    let rules = rules.replacen(
        "%:\n",
        "override_dh_auto_configure:\n\tsh probe.sh\n\tdh_auto_configure\n\n%:\n",
        1,
    );
    assert!(rules.contains("sh probe.sh"), "{rules}");
    fs::write(dir.join("debian/rules"), rules).unwrap();
    let (code, r, stderr) = build(&t, &["--path", dir.to_str().unwrap(), "--host"]);
    assert_eq!(code, 0, "{r}\n{stderr}");
    targets.assert_refused(&stderr);
}

#[test]
fn a_step_past_its_timeout_dies_with_the_daemon_it_forked() {
    let t = TestStore::new();
    let dir = example(&t);
    fs::write(
        t.store().join("halo.toml"),
        "[build]\ntimeout_minutes = 0.05\n",
    )
    .unwrap();
    // The daemon holds the output pipe; the step itself hangs for ever.
    let (code, r, stderr) = build(
        &t,
        &[
            "--path",
            dir.to_str().unwrap(),
            "--host",
            "--test",
            "sleep 3600 & echo started; sleep 3600",
        ],
    );
    assert_eq!(code, 1, "{r}\n{stderr}");
    assert_eq!(r["status"], "failed", "{r}");
    let message = r["message"].as_str().unwrap();
    assert!(message.contains("timed out after 3 s"), "{message}");
    assert!(stderr.contains("started"), "{stderr}");
    // Nothing the step started is left (the sleeps ran as the sandbox's
    // user, a subordinate id: look for any sleep 3600 at all).
    // (The kernel reaps the namespace just after halo returns.)
    let ps =
        || halo_tests::ok(std::process::Command::new("ps").args(["-eo", "pid,ppid,pgid,args"]));
    let alive = |ps: &str| ps.lines().any(|l| l.trim().ends_with(" sleep 3600"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(&ps()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let now = ps();
    assert!(!alive(&now), "the step's processes outlived it:\n{now}");

    // A daemon forked by a step that ends does not hold the build.
    fs::remove_file(t.store().join("halo.toml")).unwrap();
    let started = Instant::now();
    let (code, r, stderr) = build(
        &t,
        &[
            "--path",
            dir.to_str().unwrap(),
            "--host",
            "--test",
            "(sleep 90 &) ; make check",
        ],
    );
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(80),
        "the forked sleep held the build for {:?}",
        started.elapsed()
    );
}

#[test]
fn gigabytes_of_output_are_streamed_not_held() {
    let t = TestStore::new();
    let dir = example(&t);
    need_tool("prlimit", "util-linux");
    // 1 GiB without a newline, then lines: halo runs with an address
    // space limit (1.5 GiB) that holding it whole would break. Built, not
    // published: the limit is for the build's output, not for the
    // compressors of a snapshot.
    let test = "head -c 1073741824 /dev/zero | tr '\\0' x; echo; seq 1 100000; make check";
    let out = halo_tests::run(
        std::process::Command::new("prlimit")
            .arg("--as=1610612736")
            .arg(halo_tests::bin("halo"))
            .arg("--store")
            .arg(t.store())
            .args([
                "--json",
                "build",
                "--path",
                dir.to_str().unwrap(),
                "--host",
                "--no-publish",
                "--test",
                test,
            ])
            .stderr(std::fs::File::create(t.root().join("stderr")).unwrap()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail = halo_tests::ok(
        std::process::Command::new("tail")
            .args(["-c", "2000"])
            .arg(t.root().join("stderr")),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{tail}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r[0]["status"], "built", "{r}");
}

#[test]
fn a_killed_build_takes_its_step_with_it_and_leaves_work_that_gc_removes() {
    let t = TestStore::new();
    let dir = example(&t);
    let mut halo = t
        .halo()
        .args([
            "build",
            "--path",
            dir.to_str().unwrap(),
            "--host",
            "--test",
            "sleep 3599",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let work = t.store().join("work");
    let sleeping = || {
        let ps = halo_tests::ok(std::process::Command::new("ps").args(["-eo", "args"]));
        ps.lines().any(|l| l.trim() == "sleep 3599")
    };
    halo_tests::mount::wait_until("the unit test to start", Duration::from_secs(60), sleeping);
    halo.kill().unwrap();
    halo.wait().unwrap();
    // The sandbox went with halo: nothing of the step is left running.
    halo_tests::mount::wait_until("the step to die", Duration::from_secs(20), || !sleeping());

    // Its work directory is a leftover: reported, not damage; gc removes it.
    let dirs = || -> Vec<String> {
        fs::read_dir(&work)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".owner"))
            .collect()
    };
    assert_eq!(dirs().len(), 1, "{:?}", dirs());
    let out = halo_tests::run(t.halo().arg("fsck"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("LEFTOVER") && text.contains(&dirs()[0]),
        "{text}"
    );
    let removed = t.ok(&["gc"]);
    assert!(removed.contains("removed leftover"), "{removed}");
    let left: Vec<_> = fs::read_dir(&work).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    t.assert_sound();
}

/// Halo's configuration may carry credentials (a mirror's or a git URL's
/// password): a host build, which sees the host's `/etc`, reads it empty.
#[test]
fn a_host_build_cannot_read_halos_configuration() {
    let t = TestStore::new();
    let dir = example(&t);
    let etc = PathBuf::from(format!("/etc/halo-test-{}", std::process::id()));
    struct Gone(PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(etc.clone());
    fs::create_dir_all(&etc).unwrap();
    let config = etc.join("halo.toml");
    fs::write(
        &config,
        "# http://mirror:s3cret-in-config@example.org/\n[build]\ntimeout_minutes = 30\n",
    )
    .unwrap();
    halo_tests::set_mode(&config, 0o644);
    let test = format!(
        "echo \"CONFIG BYTES $(cat {0} | wc -c)\"; cat {0}; make check",
        config.display()
    );
    let out = halo_tests::run(t.halo().arg("--config").arg(&config).args([
        "--json",
        "build",
        "--path",
        dir.to_str().unwrap(),
        "--host",
        "--no-publish",
        "--test",
        &test,
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("CONFIG BYTES 0"), "{stderr}");
    assert!(!stderr.contains("s3cret-in-config"), "{stderr}");
}
