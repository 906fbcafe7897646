//! A rollback holds, and a hold stops everything but a forced promote
//! (issue 18, item 1), through the real `halo` binary: after `halo channel
//! rollback trusty`, idle agent cycles make no snapshot and run no
//! acceptance; the content rolled back does not return to stable through
//! acceptance, only by force; different content that passes does move it.
//! A held channel refuses the agent, `accept`, `build` and plain promotes,
//! naming the hold; a forced promote says it overrides it; `channel list`
//! and the history show holds and releases.

#![allow(clippy::unwrap_used)]

use fs_err as fs;
use halo_tests::{run, Deb, TestStore};

/// A gated store whose configuration has one passing acceptance test.
fn gated_with_a_passing_test() -> TestStore {
    let t = TestStore::gated();
    fs::write(
        t.store().join("halo.toml"),
        "[[acceptance.test]]\nname = \"ok\"\ncommand = \"true\"\n",
    )
    .unwrap();
    t
}

/// Imports `pkg` `version`, snapshots, promotes to trusty-unstable.
fn new_content(t: &TestStore, version: &str) -> String {
    t.import(
        "trusty",
        &[Deb::new("pkg", version).build(&t.path(&format!("in/{version}")))],
    );
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    id
}

/// `halo ARGS`: (exit code, stdout, stderr).
fn halo(t: &TestStore, args: &[&str]) -> (i32, String, String) {
    let out = run(t.halo().args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn snapshots(t: &TestStore) -> String {
    t.ok(&["snapshot", "list"])
}

fn history(t: &TestStore, channel: &str) -> Vec<serde_json::Value> {
    let h: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "channel", "history", channel])).unwrap();
    h.as_array().unwrap().clone()
}

#[test]
fn issue_18_a_rollback_holds_through_idle_agent_cycles() {
    let t = gated_with_a_passing_test();
    let a = new_content(&t, "1");
    t.ok(&["accept"]);
    assert_eq!(t.channel("trusty"), a);
    let b = new_content(&t, "2");
    t.ok(&["accept"]);
    assert_eq!(t.channel("trusty"), b);

    t.ok(&[
        "channel",
        "rollback",
        "trusty",
        "--reason",
        "pkg 2 breaks nova",
    ]);
    let rolled_back = t.channel("trusty");
    assert_ne!(rolled_back, b);
    let rollback = history(&t, "trusty").last().unwrap().clone();
    assert_eq!(rollback["restores"], a.as_str(), "{rollback}");
    assert!(rollback["withdraws"].is_string(), "{rollback}");

    // Nothing built, nothing mirrored: three idle cycles change nothing.
    let before = snapshots(&t);
    for cycle in 1..=3 {
        let (code, out, err) = halo(&t, &["agent", "--once"]);
        assert_eq!(code, 0, "cycle {cycle}: {out}\n{err}");
        assert!(!out.contains("(new)"), "cycle {cycle}: {out}");
        assert_eq!(
            t.channel("trusty"),
            rolled_back,
            "cycle {cycle}: {out}\n{err}"
        );
    }
    assert_eq!(snapshots(&t), before, "idle cycles made no snapshot");

    // A snapshot with no change is the snapshot of the working state, not
    // a new one, and not the rollback's re-dated copy.
    let out = t.ok(&["--json", "snapshot", "create"]);
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["new"], false, "{created}");
    assert_eq!(created["id"], b.as_str(), "{created}");

    // The rolled-back content does not come back through acceptance: the
    // tests pass, stable refuses and says why.
    let (code, out, err) = halo(&t, &["accept"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("rolled back out of trusty") && err.contains("pkg 2 breaks nova"),
        "{err}"
    );
    assert_eq!(t.channel("trusty"), rolled_back);

    // Different content that passes moves stable on.
    let c = new_content(&t, "3");
    let (code, out, err) = halo(&t, &["agent", "--once"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(t.channel("trusty"), c, "{out}\n{err}");

    // The rolled-back content returns only by force, with a reason.
    let (code, _, err) = halo(&t, &["promote", "--to", "trusty", "--snapshot", &b]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rolled back out of trusty"), "{err}");
    t.ok(&[
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &b,
        "--force",
        "--reason",
        "nova fixed on its side",
    ]);
    assert!(history(&t, "trusty").last().unwrap()["forced"] == true);
    t.assert_sound();
}

#[test]
fn a_held_channel_is_moved_by_nothing_but_a_forced_promote() {
    let t = gated_with_a_passing_test();
    let a = new_content(&t, "1");
    t.ok(&["accept"]);
    assert_eq!(t.channel("trusty"), a);

    let out = t.ok(&["channel", "hold", "trusty", "--reason", "incident 42"]);
    assert!(out.contains("incident 42"), "{out}");
    let list = t.ok(&["channel", "list"]);
    let line = list.lines().find(|l| l.starts_with("trusty\t")).unwrap();
    assert!(
        line.contains("held by") && line.contains("incident 42"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "channel", "list"])).unwrap();
    let trusty = json
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "trusty")
        .unwrap();
    assert_eq!(trusty["hold"]["reason"], "incident 42", "{trusty}");
    // Holding twice is refused; the hold is in the history.
    let (code, _, err) = halo(&t, &["channel", "hold", "trusty", "--reason", "again"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already held"), "{err}");
    let last = history(&t, "trusty").last().unwrap().clone();
    assert_eq!(last["action"], "hold", "{last}");
    assert_eq!(last["reason"], "incident 42", "{last}");

    // New content: the agent cycle, accept and a plain promote leave stable.
    let b = new_content(&t, "2");
    let (code, out, err) = halo(&t, &["agent", "--once"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The cycle's line says why stable did not move.
    assert!(
        out.contains("held by") && out.contains("incident 42"),
        "{out}\n{err}"
    );
    assert_eq!(t.channel("trusty"), a);
    let (code, _, err) = halo(&t, &["accept"]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("trusty is held by") && err.contains("incident 42"),
        "{err}"
    );
    assert_eq!(t.channel("trusty"), a);
    let (code, _, err) = halo(&t, &["promote", "--to", "trusty", "--snapshot", &b]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("incident 42"), "{err}");
    assert_eq!(t.channel("trusty"), a);

    // A forced promote moves it, says it overrides the hold, and records it;
    // the hold stays.
    let out = t.ok(&[
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &b,
        "--force",
        "--reason",
        "hotfix for incident 42",
    ]);
    assert!(out.contains("overrides its hold"), "{out}");
    assert_eq!(t.channel("trusty"), b);
    let last = history(&t, "trusty").last().unwrap().clone();
    assert_eq!(last["forced"], true, "{last}");
    assert_eq!(last["overrode_hold"]["reason"], "incident 42", "{last}");
    assert!(t.ok(&["channel", "list"]).contains("incident 42"));
    // Nor does a rollback move it, unless forced.
    let (code, _, err) = halo(&t, &["channel", "rollback", "trusty", "--reason", "x"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("incident 42"), "{err}");
    assert_eq!(t.channel("trusty"), b);

    // Released: it moves again, and the history says who released it.
    t.ok(&[
        "channel",
        "release",
        "trusty",
        "--reason",
        "incident closed",
    ]);
    assert!(!t.ok(&["channel", "list"]).contains("held by"));
    let last = history(&t, "trusty").last().unwrap().clone();
    assert_eq!(last["action"], "release", "{last}");
    assert_eq!(last["reason"], "incident closed", "{last}");
    let (code, _, err) = halo(&t, &["channel", "release", "trusty"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not held"), "{err}");
    let c = new_content(&t, "3");
    t.ok(&["accept"]);
    assert_eq!(t.channel("trusty"), c);
    // A rollback goes past the hold and release entries to the last move.
    t.ok(&["channel", "rollback", "trusty", "--reason", "back"]);
    assert_eq!(
        history(&t, "trusty").last().unwrap()["restores"],
        b.as_str()
    );
    t.assert_sound();
}

#[test]
fn a_held_unstable_channel_refuses_a_build() {
    let t = TestStore::new();
    let tree = t.root().join("hello");
    halo_tests::build::copy_example(&tree);
    halo_tests::need_tool("dpkg-buildpackage", "dpkg-dev");
    let id = new_content(&t, "1");
    assert_eq!(t.channel("trusty-unstable"), id);
    t.ok(&[
        "channel",
        "hold",
        "trusty-unstable",
        "--reason",
        "freeze for release",
    ]);
    let before = snapshots(&t);
    let out = run(t.halo().args([
        "build",
        "--path",
        tree.to_str().unwrap(),
        "--channel",
        "trusty-unstable",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("trusty-unstable is held by") && err.contains("freeze for release"),
        "{err}"
    );
    assert_eq!(snapshots(&t), before, "nothing was built or published");
    assert_eq!(t.channel("trusty-unstable"), id);
}
