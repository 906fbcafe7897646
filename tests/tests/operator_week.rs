//! Issue 18's operator week, with the docs' own commands against the real
//! binaries, on one gated store: the agent (`halo agent --once`, no
//! Jenkins) refreshes and accepts; the operator rolls back, holds and
//! releases; a broken release is rejected and says so. What each day
//! checks is what the issue found broken: a rollback that did not hold, a
//! rejection reported as success, a snapshot judged again and again.
//! (A crashed run is tests/crashed_run.rs; failing mirrors with
//! credentials and a partial upstream are tests/mirror.rs; the Jenkins
//! double stopped is tests/jenkins.rs.)

#![allow(clippy::unwrap_used)]

use fs_err as fs;
use halo_tests::{run, Deb, TestStore};

/// `halo --json agent --once`: (exit code, the cycle's report).
fn cycle(t: &TestStore) -> (i32, serde_json::Value) {
    let out = run(t.halo().args(["--json", "agent", "--once"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report =
        serde_json::from_str(stdout.lines().next().unwrap_or("null")).unwrap_or_else(|e| {
            panic!(
                "no cycle report ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (out.status.code().unwrap_or(-1), report)
}

fn release(t: &TestStore, version: &str) {
    let deb = Deb::new("app", version).build(&t.path(&format!("in-{version}")));
    t.import("trusty", &[deb]);
}

#[test]
fn an_operator_week() {
    let t = TestStore::gated();
    let junit = t.root().join("cycle.xml");
    // The smoke test rejects app 4.0, whatever else the snapshot holds.
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[agent]\njunit = \"{}\"\n\n[[acceptance.test]]\nname = \"smoke\"\n\
             command = \"! find \\\"$HALO_REPO/\\\" -name 'app_4.0*' | grep -q .\"\n",
            junit.display()
        ),
    )
    .unwrap();

    // Monday and Tuesday: two releases, each accepted into stable.
    release(&t, "1.0");
    let (code, r) = cycle(&t);
    assert_eq!(code, 0, "{r}");
    let s1 = r["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(t.channel("trusty"), s1, "{r}");
    release(&t, "2.0");
    let (code, r) = cycle(&t);
    assert_eq!(code, 0, "{r}");
    let s2 = r["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(t.channel("trusty"), s2, "{r}");

    // Wednesday: 2.0 is bad in production. The rollback holds through
    // three idle cycles: no new snapshot, no acceptance, stable stays.
    t.ok(&[
        "channel",
        "rollback",
        "trusty",
        "--reason",
        "2.0 breaks logins",
    ]);
    let rolled = t.channel("trusty");
    assert_ne!(rolled, s2);
    assert_eq!(
        t.channel_content("trusty"),
        s1,
        "a re-dated copy of 1.0's snapshot"
    );
    for _ in 0..3 {
        let (code, r) = cycle(&t);
        assert_eq!(code, 0, "{r}");
        assert_eq!(r["snapshot"]["new"], false, "nothing changed: {r}");
        assert_eq!(r["stable"]["moved"], false, "{r}");
        assert_eq!(t.channel("trusty"), rolled, "{r}");
    }

    // Thursday: a change freeze. The agent refreshes unstable but stable
    // is held; released, the waiting snapshot is judged and promoted.
    t.ok(&["channel", "hold", "trusty", "--reason", "change freeze"]);
    assert!(t.ok(&["channel", "list"]).contains("change freeze"));
    release(&t, "3.0");
    let (code, r) = cycle(&t);
    assert_eq!(code, 0, "{r}");
    let s3 = r["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(t.channel("trusty-unstable"), s3, "{r}");
    assert_eq!(t.channel("trusty"), rolled, "held: {r}");
    assert!(
        r["line"].as_str().unwrap().contains("change freeze"),
        "the line says why: {r}"
    );
    t.ok(&["channel", "release", "trusty", "--reason", "freeze over"]);
    let (code, r) = cycle(&t);
    assert_eq!(code, 0, "{r}");
    assert_eq!(t.channel("trusty"), s3, "{r}");

    // Friday: 4.0 fails the smoke test. The cycle fails and says so in
    // its line and JUnit; stable stays; the next cycle does not judge the
    // same snapshot again.
    release(&t, "4.0");
    let (code, r) = cycle(&t);
    assert_eq!(code, 1, "a rejection is not a success: {r}");
    assert_eq!(r["verdict"], "rejected", "{r}");
    let line = r["line"].as_str().unwrap();
    assert!(
        line.contains("REJECTED") && line.contains("smoke"),
        "{line}"
    );
    assert_eq!(t.channel("trusty"), s3);
    let xml = fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("smoke") && xml.contains("<failure"), "{xml}");
    let (code, r) = cycle(&t);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["acceptance"]["status"], "nothing-to-judge", "{r}");
    assert_eq!(t.channel("trusty"), s3);

    // The weekend: one screen says where everything is and why.
    let status = t.ok(&["status"]);
    assert!(
        status.contains(&s3) && status.contains("rejected"),
        "{status}"
    );
    t.assert_sound();
}
