//! A crashed acceptance run does not block the gate (issue 18, item 6),
//! through the real `halo` binary: after `kill -9` of `halo accept`, the
//! next run on the same host takes its lease over at once (not after the
//! lease's 120 minutes) and the run log says so; what the dead run left in
//! `STORE/work` is reported by `halo fsck` (a leftover, not damage) and
//! removed by `halo gc`, which never touches a live run's directories. A
//! lease held from another host still expires by time only.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fs_err as fs;
use halo_tests::{run, Deb, TestStore};

fn store_with_unstable() -> (TestStore, String) {
    let t = TestStore::gated();
    t.import(
        "trusty",
        &[Deb::new("crash-pkg", "1").build(&t.path("in/1"))],
    );
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    (t, id)
}

fn halo(t: &TestStore, args: &[&str]) -> (i32, String, String) {
    let out = run(t.halo().args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..600 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} never happened");
}

/// The directories (not claims) in `STORE/work`.
fn work_dirs(t: &TestStore) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(t.store().join("work")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn fsck_json(t: &TestStore) -> serde_json::Value {
    let (code, out, err) = halo(t, &["--json", "fsck"]);
    assert_eq!(code, 0, "a leftover is not damage: {out}\n{err}");
    serde_json::from_str(&out).unwrap()
}

fn kill_pid_in(file: &Path) {
    if let Ok(pid) = fs::read_to_string(file) {
        let _ = run(std::process::Command::new("kill").args(["-9", pid.trim()]));
    }
}

#[test]
fn issue_18_after_kill_9_of_accept_the_next_run_takes_over_at_once_and_gc_removes_its_leftovers() {
    let (t, a) = store_with_unstable();
    let pidfile = t.root().join("test.pid");
    let slow = format!("slow=echo $$ > {} && exec sleep 60", pidfile.display());
    // The default lease: 120 minutes.
    let mut first = t
        .halo()
        .args(["accept", "--test", &slow])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lease_file = t.store().join("channels/trusty-testing.lease");
    wait_for("the run taking its lease and starting its test", || {
        lease_file.exists() && pidfile.exists()
    });
    let exports = work_dirs(&t);
    assert_eq!(exports.len(), 1, "the run's export: {exports:?}");

    // While it runs: a second run is refused, gc leaves its export alone,
    // fsck sees no leftover.
    let (code, _, err) = halo(&t, &["accept", "--test", "x=true"]);
    assert_eq!(code, 2, "a live run's lease holds: {err}");
    assert!(err.contains("is held by acceptance run"), "{err}");
    let (code, out, err) = halo(&t, &["gc"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(work_dirs(&t), exports, "gc spared the live run: {out}");
    assert_eq!(fsck_json(&t)["leftovers"].as_array().unwrap().len(), 0);

    // kill -9: nothing of the run's own cleanup happens.
    first.kill().unwrap();
    first.wait().unwrap();
    kill_pid_in(&pidfile);
    assert!(lease_file.exists(), "the dead run's lease is still there");

    // Immediately, the next run proceeds, and says whose lease it took.
    let (code, out, err) = halo(&t, &["accept", "--test", "x=true"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("taken over: its holder is gone"),
        "{out}\n{err}"
    );
    assert_eq!(t.channel("trusty"), a);
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "accept", "--status"])).unwrap();
    let takeover = status["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "lease-taken-over")
        .unwrap_or_else(|| panic!("no takeover in the run log: {status}"))
        .clone();
    assert!(
        takeover["detail"]
            .as_str()
            .unwrap()
            .contains("its holder is gone"),
        "{takeover}"
    );

    // The dead run's export is a leftover: fsck reports it (exit 0), gc
    // removes it and its claim.
    assert_eq!(
        work_dirs(&t),
        exports,
        "the second run cleaned up after itself"
    );
    let report = fsck_json(&t);
    let leftovers = report["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 1, "{report}");
    assert_eq!(
        leftovers[0]["path"].as_str().map(PathBuf::from).as_ref(),
        Some(&exports[0])
    );
    let (_, text, _) = halo(&t, &["fsck"]);
    assert!(
        text.contains("LEFTOVER") && text.contains("gc removes it"),
        "{text}"
    );
    let (code, out, err) = halo(&t, &["gc"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("removed leftover"), "{out}");
    assert!(work_dirs(&t).is_empty(), "{:?}", work_dirs(&t));
    let left: Vec<_> = fs::read_dir(t.store().join("work"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "claims removed too: {left:?}");
    assert_eq!(fsck_json(&t)["leftovers"].as_array().unwrap().len(), 0);
    t.assert_sound();
}

#[test]
fn a_lease_held_from_another_host_still_expires_by_time_only() {
    let (t, _) = store_with_unstable();
    let now = jiff::Timestamp::now().as_millisecond();
    // A run on another host, pid 1 there: this host cannot tell it died.
    let lease = serde_json::json!({
        "run": "elsewhere-run",
        "holder": {"host": "another-host.example.org", "pid": 1, "user": "jenkins",
                   "boot_id": "00000000-0000-0000-0000-000000000000", "started": 1},
        "acquired_ms": now,
        "expires_ms": now + 3_000,
    });
    fs::write(
        t.store().join("channels/trusty-testing.lease"),
        serde_json::to_vec(&lease).unwrap(),
    )
    .unwrap();
    let (code, _, err) = halo(&t, &["accept", "--test", "x=true"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("elsewhere-run"), "{err}");
    std::thread::sleep(Duration::from_millis(3_100));
    let (code, out, err) = halo(&t, &["accept", "--test", "x=true"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("taken over: it expired"), "{out}");
}
