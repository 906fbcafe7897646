//! The agent's cycle without Jenkins (`halo agent --once`), against the
//! real binaries, git, dpkg-buildpackage and python's junitparser: a
//! rejected snapshot and a failed build make the cycle fail (exit 1) and
//! say so in the line, the JSON and the JUnit; a snapshot judged once is
//! not judged again; `halo status` shows the verdict and why stable did
//! not move. Issue 18, items 2, 4 and 9.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use fs_err as fs;
use halo_tests::build::example_repo;
use halo_tests::{run, Deb, TestStore};

/// `halo [--json] agent --once ARGS`: (exit code, stdout, stderr).
fn once(t: &TestStore, json: bool, args: &[&str]) -> (i32, String, String) {
    let mut cmd = t.halo();
    if json {
        cmd.arg("--json");
    }
    let out = run(cmd.args(["agent", "--once"]).args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The cycle's JSON report: one object on one line.
fn report(stdout: &str) -> serde_json::Value {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line per cycle: {stdout}");
    serde_json::from_str(lines[0]).unwrap()
}

/// `name|result|message` per testcase, as python's junitparser reads it.
fn junitparser(file: &Path) -> Vec<String> {
    halo_tests::junitparser(file)
        .into_iter()
        .map(|l| {
            l.split_once('|')
                .map_or(l.clone(), |(_, rest)| rest.to_string())
        })
        .collect()
}

fn freezes(t: &TestStore) -> usize {
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "accept", "--status"])).unwrap();
    status["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "freeze")
        .count()
}

#[test]
fn issue_18_a_rejected_snapshot_fails_the_cycle_in_its_line_json_and_junit_and_is_not_judged_again()
{
    let t = TestStore::gated();
    let junit = t.root().join("cycle-junit.xml");
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[agent]\njunit = \"{}\"\n\n[[acceptance.test]]\nname = \"ok\"\ncommand = \"true\"\n\n\
             [[acceptance.test]]\nname = \"smoke\"\ncommand = \"echo the smoke test broke >&2; exit 3\"\n",
            junit.display()
        ),
    )
    .unwrap();
    t.import("trusty", &[Deb::new("app", "1.0").build(&t.path("in"))]);

    let (code, stdout, stderr) = once(&t, true, &[]);
    assert_eq!(
        code, 1,
        "a rejection is the content's fault: {stdout}\n{stderr}"
    );
    let r = report(&stdout);
    let id = r["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(r["snapshot"]["new"], true, "{r}");
    assert_eq!(r["unstable_at"], id.as_str(), "{r}");
    assert_eq!(r["verdict"], "rejected", "{r}");
    assert_eq!(r["exit_code"], 1, "{r}");
    assert_eq!(r["acceptance"]["status"], "ran", "{r}");
    assert_eq!(r["acceptance"]["testing"], id.as_str(), "{r}");
    assert_eq!(
        r["acceptance"]["failed"],
        serde_json::json!(["smoke"]),
        "{r}"
    );
    assert_eq!(r["stable"]["moved"], false, "{r}");
    let line = r["line"].as_str().unwrap();
    assert!(
        line.contains(&format!(
            "acceptance REJECTED {id}: 1 of 2 failed (smoke); trusty not moved: acceptance rejected {id}"
        )),
        "{line}"
    );
    // The line reaches the log (stderr) too: a failed cycle is loud.
    assert!(stderr.contains(line), "{stderr}");
    assert!(stderr.contains("[smoke] the smoke test broke"), "{stderr}");
    assert_eq!(
        junitparser(&junit),
        [
            "snapshot|passed|",
            "ok|passed|",
            "smoke|Failure|exit status 3"
        ]
    );
    assert_eq!(t.channel("trusty"), "-");
    assert_eq!(t.channel("trusty-testing"), id);

    // Nothing changed: no snapshot, no second run of acceptance.
    let (code, stdout, stderr) = once(&t, false, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "no new snapshot (nothing changed since snapshot {id}); nothing to judge: {id} was judged before: rejected; \
             trusty not moved: acceptance rejected {id} before"
        )),
        "{stdout}"
    );
    assert_eq!(freezes(&t), 1, "acceptance ran once");

    // One screen says what happened.
    let status = t.ok(&["status"]);
    assert!(
        status.contains(&format!("last verdict: {id} rejected"))
            && status.contains("failed: smoke"),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "trusty: not moved: acceptance rejected {id} before"
        )),
        "{status}"
    );
    let json: serde_json::Value = serde_json::from_str(&t.ok(&["--json", "status"])).unwrap();
    assert_eq!(json["last_verdict"]["verdict"], "rejected", "{json}");
    let unstable = json["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "trusty-unstable")
        .unwrap();
    assert_eq!(unstable["snapshot"], id.as_str());
    assert!(unstable["age"].is_string(), "{unstable}");
    t.assert_sound();
}

#[test]
fn issue_18_a_passing_snapshot_moves_stable_once() {
    let t = TestStore::gated();
    fs::write(
        t.store().join("halo.toml"),
        "[[acceptance.test]]\nname = \"ok\"\ncommand = \"test -n \\\"$HALO_SNAPSHOT\\\"\"\n",
    )
    .unwrap();
    t.import("trusty", &[Deb::new("app", "1.0").build(&t.path("in"))]);
    let (code, stdout, stderr) = once(&t, true, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let r = report(&stdout);
    let id = r["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(r["verdict"], "passed", "{r}");
    assert_eq!(r["stable"]["moved"], true, "{r}");
    assert!(
        r["line"].as_str().unwrap().ends_with(&format!(
            "acceptance passed {id}: 1 tests; trusty: - -> {id} (exit 0)"
        )),
        "{r}"
    );
    assert_eq!(t.channel("trusty"), id);
    let (code, stdout, _) = once(&t, false, &[]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&format!("nothing to judge: trusty is at {id} already")),
        "{stdout}"
    );
    assert_eq!(freezes(&t), 1);
}

#[test]
fn issue_18_a_failed_build_is_named_in_the_cycle_line_and_fails_the_cycle() {
    let t = TestStore::gated();
    let repo = example_repo(&t);
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[[source]]\nname = \"halo-hello\"\ngit = \"{}\"\narchive = \"rustedhalo\"\ndist = \"trusty\"\n\
             component = \"main\"\ntest = \"echo the unit tests fail; exit 1\"\n",
            repo.display()
        ),
    )
    .unwrap();
    let junit = t.root().join("j.xml");
    let (code, stdout, stderr) = once(&t, false, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let line = stdout.lines().last().unwrap();
    assert!(
        line.starts_with("cycle: builds: halo-hello FAILED (") && line.contains("exit status 1"),
        "{line}"
    );
    assert!(line.ends_with("(exit 1)"), "{line}");
    let cases = junitparser(&junit);
    assert!(
        cases.iter().any(|c| c.contains("|Failure|")),
        "the failing step is in the JUnit: {cases:?}"
    );
}
