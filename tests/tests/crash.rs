//! Crash safety: writers killed with SIGKILL at random instants, and
//! aborted at every failpoint between two durable steps (imports,
//! snapshots, promotions, mirror updates). After each crash `fsck` passes,
//! every channel still exports, channels point where they pointed, a
//! mirror is wholly old or wholly new, and the interrupted command run
//! again succeeds.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use halo_tests::{ok, run, Deb, TestStore};

/// A small deterministic generator (the seed is printed on failure).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn channels(t: &TestStore) -> String {
    t.ok(&["channel", "list"])
}

/// fsck passes and every channel with a snapshot exports.
fn check_after_crash(t: &TestStore, what: &str) {
    let out = run(t.halo().arg("fsck"));
    assert!(
        out.status.success(),
        "fsck after crash in {what}:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for line in channels(t).lines() {
        let mut w = line.split_whitespace();
        let (name, id) = (w.next().unwrap(), w.next().unwrap());
        if id != "-" {
            t.export_channel(name);
        }
    }
}

/// Runs `args`, killing it with SIGKILL after `delay`; true if it was killed.
fn kill_after(t: &TestStore, args: &[String], delay: Duration) -> bool {
    let mut child = t
        .halo()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    killed
}

fn import_args(files: &[std::path::PathBuf]) -> Vec<String> {
    let mut args: Vec<String> = [
        "import",
        "--archive",
        "rustedhalo",
        "--dist",
        "trusty",
        "--component",
        "main",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(files.iter().map(|f| f.display().to_string()));
    args
}

/// Measures how long a command takes uninterrupted, to pick kill instants
/// that land inside it.
fn duration_of(t: &TestStore, args: &[String]) -> Duration {
    let start = Instant::now();
    ok(t.halo().args(args));
    start.elapsed()
}

#[test]
fn writers_killed_at_random_instants_leave_a_sound_store() {
    // HALO_CRASH_SEED=<seed> replays a run's kill delays (the instants are
    // as reproducible as the machine's timing allows).
    let seed = std::env::var("HALO_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (replay: HALO_CRASH_SEED={seed})");
    let mut rng = Lcg(seed);
    let t = TestStore::new();
    let debs: Vec<_> = (0..120)
        .map(|i| Deb::new(&format!("crash-pkg{i}"), "1.0").build(&t.path("in/batch")))
        .collect();
    t.import("trusty", &debs[..10]);
    let base = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &base]);

    // Import: a batch of packages; each round uses new versions.
    let mut killed = 0;
    for round in 0..12 {
        let files: Vec<_> = (0..40)
            .map(|i| {
                Deb::new(&format!("crash-pkg{i}"), &format!("2.{round}"))
                    .build(&t.path(&format!("in/r{round}")))
            })
            .collect();
        let args = import_args(&files);
        let probe = duration_of(&TestStore::new(), &import_args(&files));
        let delay = Duration::from_micros(rng.below(probe.as_micros() as u64 + 1));
        let before = channels(&t);
        killed += kill_after(&t, &args, delay) as u32;
        check_after_crash(&t, "import");
        assert_eq!(channels(&t), before, "a killed import moved a channel");
        ok(t.halo().args(&args));

        // Snapshot create.
        let args: Vec<String> = vec!["snapshot".into(), "create".into()];
        let delay = Duration::from_micros(rng.below(40_000));
        killed += kill_after(&t, &args, delay) as u32;
        check_after_crash(&t, "snapshot create");
        let id = ok(t.halo().args(&args))
            .split_whitespace()
            .last()
            .unwrap()
            .to_string();

        // Promote.
        let args: Vec<String> = ["promote", "--to", "trusty-testing", "--snapshot", &id]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let delay = Duration::from_micros(rng.below(8_000));
        killed += kill_after(&t, &args, delay) as u32;
        check_after_crash(&t, "promote");
        let now = t.channel("trusty-testing");
        ok(t.halo().args(&args));
        assert_eq!(t.channel("trusty-testing"), id, "was {now}");
        assert_eq!(t.channel("trusty"), base);
    }
    eprintln!("{killed} of 36 runs were killed mid-way");
    assert!(
        killed > 0,
        "no run was interrupted: the test proved nothing"
    );
}

#[test]
fn writers_aborted_at_every_failpoint_leave_a_sound_store() {
    let t = TestStore::new();
    t.import("trusty", &[Deb::new("fp-base", "1").build(&t.path("in/0"))]);
    let base = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &base]);
    let mut n = 0;
    for point in ["import:before-blobs", "import:before-state"] {
        n += 1;
        let deb = Deb::new("fp-pkg", &format!("{n}")).build(&t.path(&format!("in/{n}")));
        let args = import_args(std::slice::from_ref(&deb));
        let before = t.fingerprint();
        let out = run(t.halo().args(&args).env("HALO_FAILPOINT", point));
        assert!(!out.status.success(), "{point} not hit");
        assert_eq!(t.fingerprint(), before, "{point}: state changed");
        check_after_crash(&t, point);
        ok(t.halo().args(&args));
    }
    for point in ["snapshot:before-blobs", "snapshot:before-manifest"] {
        let before = t.ok(&["snapshot", "list"]);
        let out = run(t
            .halo()
            .args(["snapshot", "create"])
            .env("HALO_FAILPOINT", point));
        assert!(!out.status.success(), "{point} not hit");
        assert_eq!(t.ok(&["snapshot", "list"]), before, "{point}");
        check_after_crash(&t, point);
    }
    let id = t.snapshot();
    let out = run(t
        .halo()
        .args(["promote", "--to", "trusty", "--snapshot", &id])
        .env("HALO_FAILPOINT", "promote:before-pointer"));
    assert!(!out.status.success());
    assert_eq!(
        t.channel("trusty"),
        base,
        "pointer moved without its commit"
    );
    assert_eq!(
        t.ok(&["channel", "history", "trusty"]).lines().count(),
        1,
        "uncommitted history shown"
    );
    check_after_crash(&t, "promote:before-pointer");
    t.ok(&[
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &id,
        "--expect",
        &base,
    ]);
    assert_eq!(t.channel("trusty"), id);
    let history: serde_json::Value =
        serde_json::from_str(&t.ok(&["channel", "history", "trusty", "--json"])).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    assert_eq!(history[1]["seq"], 2);
    // gc clears the temp files the aborted writers left.
    t.ok(&["gc"]);
    assert_eq!(t.temp_files(), 0);
}

/// The mirror's part of the working state (`null` before its first update).
fn mirror_state(t: &TestStore, name: &str) -> serde_json::Value {
    let state: serde_json::Value =
        serde_json::from_slice(&fs_err::read(t.store().join("state.json")).unwrap()).unwrap();
    state[name].clone()
}

#[test]
fn mirror_update_aborted_at_every_failpoint_is_wholly_old_or_new_and_resumes() {
    use halo_tests::upstream::{Publish, Upstream};
    use std::os::unix::process::ExitStatusExt;

    let up = Upstream::new();
    up.add("main", &Deb::new("mirrored", "0"));
    up.publish("stable", &Publish::default());
    let t = TestStore::new();
    fs_err::write(
        t.store().join("halo.toml"),
        format!(
            "[[mirror]]\nname = \"up\"\nurl = \"{}\"\ndists = [\"stable\"]\n\
components = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"{}\"\n",
            up.url(),
            up.keyring().display()
        ),
    )
    .unwrap();
    t.ok(&["mirror", "update", "up"]);
    let points = [
        // After the pending record names the files, before any download.
        ("mirror:after-pending", false),
        // Files downloaded into the pool, nothing committed.
        ("mirror:before-commit", false),
        // Under the writer lock: component states not yet durable.
        ("mirror:before-blobs", false),
        ("mirror:before-state", false),
        // state.json renamed, the mirror record not yet written.
        ("mirror:before-record", true),
    ];
    for (n, (point, committed)) in points.into_iter().enumerate() {
        // Each round, the upstream has a new package to fetch.
        up.add("main", &Deb::new("mirrored", &format!("{}", n + 1)));
        up.publish("stable", &Publish::default());
        let before = mirror_state(&t, "up");
        let out = run(t
            .halo()
            .args(["mirror", "update", "up"])
            .env("HALO_FAILPOINT", point));
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{point} not hit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_after_crash(&t, point);
        let crashed = mirror_state(&t, "up");
        // gc between an interrupted update and the next keeps what it
        // downloaded (the pending list).
        t.ok(&["gc"]);
        up.clear_requests();
        t.ok(&["mirror", "update", "up"]);
        let after = mirror_state(&t, "up");
        assert_ne!(after, before, "{point}: the rerun did not update");
        let expected = if committed { &after } else { &before };
        assert_eq!(&crashed, expected, "{point}: the mirror is half updated");
        if point != "mirror:after-pending" {
            let pool: Vec<_> = up
                .requests()
                .into_iter()
                .filter(|(p, _)| p.starts_with("/pool/"))
                .collect();
            assert!(pool.is_empty(), "{point}: fetched again: {pool:?}");
        }
        t.assert_sound();
    }
}
