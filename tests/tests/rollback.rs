//! A rollback (or any move of a channel to an older snapshot) must reach
//! clients that already updated: apt refuses a Release whose Date is older
//! than the one it has, so the move makes a new snapshot with the old
//! content, re-dated and re-signed. Checked with the real apt through an
//! export and through the repofs mount: after the rollback `apt-get update`
//! offers the old version and `apt-get install --allow-downgrades` goes back.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use fs_err as fs;
use halo_tests::mount::Mount;
use halo_tests::{Apt, Deb, TestStore};

/// Two snapshots: A holds rb 1.0, B rb 1.0 and 2.0.
fn two_snapshots(t: &TestStore) -> (String, String) {
    t.import("trusty", &[Deb::new("rb", "1.0").build(&t.path("in/1"))]);
    let a = t.snapshot();
    t.import("trusty", &[Deb::new("rb", "2.0").build(&t.path("in/2"))]);
    let b = t.snapshot();
    (a, b)
}

/// apt with rb 2.0 installed, reading `repo`.
fn apt_with_rb2(t: &TestStore, name: &str, repo: &Path) -> Apt {
    let apt = Apt::new(
        &t.root().join(name),
        &format!(
            "deb [signed-by={}] file:{} trusty main\n",
            t.store().join("keys/repo.gpg").display(),
            repo.display()
        ),
    );
    fs::write(
        apt.dir.join("status"),
        "Package: rb\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: t <t@example.org>\nArchitecture: all\nVersion: 2.0\nDescription: installed\n\n",
    )
    .unwrap();
    apt
}

/// The versions of rb the repository offers (not the installed one).
fn offered(apt: &Apt) -> Vec<String> {
    let out = halo_tests::ok(apt.command("apt-cache").args(["madison", "rb"]));
    out.lines()
        .filter(|l| l.contains("Packages"))
        .filter_map(|l| l.split('|').nth(1).map(|v| v.trim().to_string()))
        .collect()
}

fn downgrade_plan(apt: &Apt) -> String {
    halo_tests::ok(apt.command("apt-get").args([
        "install",
        "-s",
        "-y",
        "--allow-downgrades",
        "rb=1.0",
    ]))
}

#[test]
fn a_rollback_reaches_a_client_that_already_updated_through_an_export() {
    let t = TestStore::new();
    let (a, b) = two_snapshots(&t);
    t.ok(&["promote", "--to", "trusty", "--snapshot", &a]);
    t.ok(&["promote", "--to", "trusty", "--snapshot", &b]);
    // The client reads one path, re-exported after every move.
    let export = t.root().join("www");
    let export_channel = || {
        let _ = fs::remove_dir_all(&export);
        t.ok(&["export", "--channel", "trusty", export.to_str().unwrap()]);
    };
    export_channel();
    let apt = apt_with_rb2(&t, "apt", &export.join("rustedhalo"));
    apt.update();
    assert_eq!(offered(&apt), ["2.0", "1.0"]);
    // Sleep past the second: apt compares Release dates to the second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = t.ok(&["channel", "rollback", "trusty", "--reason", "bad rb 2.0"]);
    assert!(out.contains(&format!("restores {a}")), "{out}");
    let now = t.channel("trusty");
    assert_ne!(now, a, "a re-dated copy, not A itself");
    assert!(now > b, "the copy is the newest snapshot");
    export_channel();
    apt.update();
    assert_eq!(offered(&apt), ["1.0"], "the client sees the rollback");
    let plan = downgrade_plan(&apt);
    assert!(plan.contains("Inst rb [2.0] (1.0"), "{plan}");
    // The copy holds exactly A's packages; the history says what it restores.
    let diff = t.ok(&["snapshot", "diff", &a, &now]);
    assert!(!diff.contains("rb"), "{diff}");
    let h: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "channel", "history", "trusty"])).unwrap();
    let last = h.as_array().unwrap().last().unwrap();
    assert_eq!(last["restores"], a.as_str(), "{last}");
    assert_eq!(last["action"], "rollback");
    t.assert_sound();
}

#[test]
fn a_rollback_reaches_a_client_of_the_mount() {
    let t = TestStore::new();
    let (a, b) = two_snapshots(&t);
    t.ok(&["promote", "--to", "trusty", "--snapshot", &a]);
    t.ok(&["promote", "--to", "trusty", "--snapshot", &b]);
    let m = Mount::start(&t.store(), &t.root().join("mnt"), "allow_other");
    let apt = apt_with_rb2(&t, "apt", &m.dir.join("channels/trusty/rustedhalo"));
    apt.update();
    assert_eq!(offered(&apt), ["2.0", "1.0"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // A promotion of an older snapshot is a rollback for clients too.
    t.ok(&[
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &a,
        "--reason",
        "back to A",
    ]);
    halo_tests::mount::wait_until(
        "the mount to show the move",
        std::time::Duration::from_secs(10),
        || {
            fs::read_link(m.dir.join("channels/trusty.snapshot"))
                .map(|l| !l.to_string_lossy().contains(&b))
                .unwrap_or(false)
        },
    );
    apt.update();
    assert_eq!(offered(&apt), ["1.0"]);
    assert!(downgrade_plan(&apt).contains("Inst rb [2.0] (1.0"));
    // Back to B: older than the copy the channel holds now, so B gets a
    // re-dated copy too, and the client follows.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = t.ok(&["promote", "--to", "trusty", "--snapshot", &b]);
    assert!(out.contains(&format!("restores {b}")), "{out}");
    let now = t.channel("trusty");
    halo_tests::mount::wait_until(
        "the mount to show the move",
        std::time::Duration::from_secs(10),
        || {
            fs::read_link(m.dir.join("channels/trusty.snapshot"))
                .map(|l| l.to_string_lossy().contains(&now))
                .unwrap_or(false)
        },
    );
    apt.update();
    assert_eq!(offered(&apt), ["2.0", "1.0"]);
    drop(m);
    t.assert_sound();
}
