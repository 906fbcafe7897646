//! Writers that must not wait for each other (issue 12, item 3): a mirror
//! update downloads without the store's writer lock, so an import and a
//! promotion complete while its download is still in flight, and the
//! mirror then commits both its own state and nothing of theirs is lost.
//! A writer that must wait says so, and `--wait-timeout` gives up with
//! exit 75 ("busy") and nothing changed.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use fs_err as fs;
use halo_tests::mount::wait_until;
use halo_tests::upstream::{Publish, Upstream};
use halo_tests::{run, Deb, TestStore};

const DIST: &str = "stable";

#[test]
fn an_import_and_a_promotion_complete_while_a_mirror_downloads() {
    let up = Upstream::new();
    let held = up.add("main", &Deb::new("slow", "1.0"));
    up.publish(DIST, &Publish::default());
    let t = TestStore::new();
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[[mirror]]\nname = \"up\"\nurl = \"{}\"\ndists = [\"{DIST}\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"{}\"\n",
            up.url(),
            up.keyring().display()
        ),
    )
    .unwrap();
    t.import("trusty", &[Deb::new("base", "1").build(&t.path("in/0"))]);
    let first = t.snapshot();
    // The pool file's answer is held until the test lets it go.
    let path = format!("/{held}");
    up.faults(&format!(r#"[{{"path": "{path}", "kind": "hold"}}]"#));
    let mut mirror = t
        .halo()
        .args(["mirror", "update", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        "the mirror to be downloading",
        Duration::from_secs(30),
        || up.requests().iter().any(|(p, _)| p == &path),
    );
    // Meanwhile: a hotfix import, a snapshot and an urgent promotion.
    let out = run(t
        .halo()
        .args([
            "--wait-timeout",
            "10",
            "import",
            "--archive",
            "rustedhalo",
            "--dist",
            "trusty",
            "--component",
            "main",
        ])
        .arg(Deb::new("hotfix", "1").build(&t.path("in/1"))));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hotfix = t.snapshot();
    let out = run(t.halo().args([
        "--wait-timeout",
        "10",
        "promote",
        "--to",
        "trusty-unstable",
        "--snapshot",
        &hotfix,
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.channel("trusty-unstable"), hotfix);
    assert!(
        mirror.try_wait().unwrap().is_none(),
        "the mirror finished before the test let it: nothing was concurrent"
    );
    up.release_held();
    let status = mirror.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(mirror.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    // Both landed: the next snapshot has the mirror and the hotfix.
    let last = t.snapshot();
    assert!(last > hotfix && hotfix > first);
    let show = t.ok(&["snapshot", "show", &last]);
    assert!(
        show.contains("slow") && show.contains("hotfix") && show.contains("base"),
        "{show}"
    );
    t.assert_sound();
}

#[test]
fn a_writer_that_waits_too_long_gives_up_with_exit_75_and_changes_nothing() {
    let t = TestStore::new();
    // Another writer holds the store's lock (flock(1), as halo's own lock).
    let mut holder = Command::new("flock")
        .arg(t.store().join("lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    wait_until("the lock to be held", Duration::from_secs(10), || {
        !Command::new("flock")
            .args(["-n"])
            .arg(t.store().join("lock"))
            .arg("true")
            .status()
            .unwrap()
            .success()
    });
    let before = t.fingerprint();
    let out = run(t
        .halo()
        .args([
            "--wait-timeout",
            "0.3",
            "import",
            "--archive",
            "rustedhalo",
            "--dist",
            "trusty",
            "--component",
            "main",
        ])
        .arg(Deb::new("late", "1").build(&t.path("in"))));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("waiting for another writer"),
        "it says it waits: {stderr}"
    );
    assert!(stderr.lines().last().unwrap().contains("busy"), "{stderr}");
    assert_eq!(t.fingerprint(), before);
    holder.kill().unwrap();
    holder.wait().unwrap();
}
