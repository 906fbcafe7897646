//! The acceptance gate through the real `halo` binary: a run freezes
//! testing, tests exactly that snapshot and promotes exactly it; failures,
//! concurrent promotions and second runs change nothing they must not;
//! a dead run's lease is taken over; stable takes only accepted snapshots;
//! the JUnit report is read by a real JUnit consumer; HALO_REPO is an APT
//! tree the real apt reads with the store's key.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use fs_err as fs;
use halo_tests::{bin, ok, run, Deb, TestStore};

/// A gated store (as `halo init` makes it) with trusty-unstable at a
/// snapshot holding `accept-pkg 1`; returns (store, that snapshot).
fn store_with_unstable() -> (TestStore, String) {
    let t = TestStore::gated();
    t.import(
        "trusty",
        &[Deb::new("accept-pkg", "1").build(&t.path("in/1"))],
    );
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    (t, id)
}

/// `halo accept ARGS` with the given tests: (exit code, stdout, stderr).
fn accept(t: &TestStore, args: &[&str]) -> (i32, String, String) {
    let out = run(t.halo().arg("accept").args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn halo_cmd(t: &TestStore) -> String {
    format!("{} --store {}", bin("halo").display(), t.store().display())
}

fn history_json(t: &TestStore, channel: &str) -> serde_json::Value {
    serde_json::from_str(&t.ok(&["--json", "channel", "history", channel])).unwrap()
}

/// Reads a JUnit file with python's junitparser (a real JUnit consumer):
/// one line per testcase, `name result message`.
fn junitparser(file: &Path) -> String {
    let script = r#"
import sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        msg = case.result[0].message if case.result else ""
        print(case.name, case.classname, ",".join(kinds) or "passed", msg, sep="|")
"#;
    let out = run(Command::new("python3").arg("-c").arg(script).arg(file));
    assert!(
        out.status.success(),
        "junitparser could not read {}: {} (pip install -r tests/requirements.txt)",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_passing_run_promotes_exactly_the_frozen_snapshot_while_unstable_moves_on() {
    let (t, a) = store_with_unstable();
    let newer = t.path("in/2");
    Deb::new("accept-pkg", "2").build(&newer);
    // During the run a new build lands in unstable.
    let during = format!(
        "{h} import --archive rustedhalo --dist trusty --component main {deb} && \
         id=$({h} snapshot create | tail -n1) && {h} promote --to trusty-unstable --snapshot $id && \
         test \"$HALO_SNAPSHOT\" = {a} && test \"$HALO_CHANNEL\" = trusty-testing && test -d \"$HALO_REPO\"",
        h = halo_cmd(&t),
        deb = newer.join("accept-pkg_2_all.deb").display(),
    );
    let junit = t.root().join("accept.xml");
    let (code, stdout, stderr) = accept(
        &t,
        &[
            "--test",
            &format!("new-build-lands={during}"),
            "--test",
            "second=echo all good",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("accepted {a}")), "{stdout}");
    let b = t.channel("trusty-unstable");
    assert_ne!(b, a, "unstable moved during the run");
    assert_eq!(t.channel("trusty-testing"), a);
    assert_eq!(t.channel("trusty"), a, "stable got exactly what was tested");
    let cases = junitparser(&junit);
    assert_eq!(cases.lines().count(), 2, "{cases}");
    assert!(
        cases.contains("new-build-lands|halo.accept.trusty-testing|passed"),
        "{cases}"
    );
    // The history says who moved stable, how and why.
    let h = history_json(&t, "trusty");
    let last = h.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "accept");
    assert!(
        last["reason"].as_str().unwrap().contains("passed 2 tests"),
        "{last}"
    );
    let f = history_json(&t, "trusty-testing");
    assert_eq!(f.as_array().unwrap().last().unwrap()["action"], "freeze");
    // The lease is gone and the run is in the log.
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "accept", "--status"])).unwrap();
    assert_eq!(status["lease"], serde_json::Value::Null);
    let events: Vec<_> = status["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["freeze", "pass", "promote"]);
    t.assert_sound();
}

#[test]
fn a_failing_test_leaves_stable_untouched_and_exits_1() {
    let (t, a) = store_with_unstable();
    let junit = t.root().join("accept.xml");
    let stable_history = t.ok(&["channel", "history", "trusty"]);
    let (code, stdout, stderr) = accept(
        &t,
        &[
            "--test",
            "ok=true",
            "--test",
            "smoke=echo 'dpkg: error processing package accept-pkg'; exit 4",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("rejected {a}")) && stdout.contains("smoke"),
        "{stdout}"
    );
    assert!(
        stderr.contains("[smoke] dpkg: error processing package"),
        "streamed: {stderr}"
    );
    assert_eq!(t.channel("trusty"), "-");
    assert_eq!(t.ok(&["channel", "history", "trusty"]), stable_history);
    let cases = junitparser(&junit);
    assert!(
        cases.contains("ok|halo.accept.trusty-testing|passed"),
        "{cases}"
    );
    assert!(
        cases.contains("smoke|halo.accept.trusty-testing|Failure|exit status 4"),
        "{cases}"
    );
    let xml = fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("dpkg: error processing package accept-pkg"),
        "{xml}"
    );
    // Testing stays frozen at what was tested, for whoever investigates.
    assert_eq!(t.channel("trusty-testing"), a);
}

#[test]
fn promotions_to_testing_and_a_second_run_are_refused_during_a_run() {
    let (t, a) = store_with_unstable();
    let h = halo_cmd(&t);
    let log = t.root().join("during.log");
    let during = format!(
        "set -u; {h} promote --to trusty-testing --snapshot {a} --expect none >>{log} 2>&1; echo promote=$? >>{log}; \
         {h} accept --test x=true >>{log} 2>&1; echo accept=$? >>{log}; exit 0",
        log = log.display()
    );
    let (code, stdout, stderr) = accept(&t, &["--test", &format!("during={during}")]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let text = fs::read_to_string(&log).unwrap();
    // A held channel is the surroundings' state, not bad input: exit 2.
    assert!(text.contains("promote=2"), "{text}");
    assert!(text.contains("accept=2"), "{text}");
    assert!(
        text.matches("is held by acceptance run").count() == 2 && text.contains(" pid "),
        "both refusals name the holder: {text}"
    );
    assert_eq!(t.channel("trusty"), a);

    // --force overrides and is recorded; the run then cannot promote what
    // it tested, because testing moved under it: exit 2, stable unchanged.
    t.import(
        "trusty",
        &[Deb::new("accept-pkg", "3").build(&t.path("in/3"))],
    );
    let c = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &c]);
    let during = format!(
        "{h} promote --to trusty-testing --snapshot {a} --force --reason 'hotfix test' >/dev/null"
    );
    let (code, stdout, stderr) = accept(&t, &["--test", &format!("forced={during}")]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let line = stderr.lines().last().unwrap();
    assert!(
        line.contains("trusty-testing moved during the run"),
        "{line}"
    );
    assert_eq!(t.channel("trusty"), a);
    let hist = history_json(&t, "trusty-testing");
    let forced = hist
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["forced"] == true)
        .unwrap();
    assert_eq!(forced["reason"], "hotfix test");
    t.assert_sound();
}

#[test]
fn the_lease_of_a_killed_run_is_taken_over_after_it_expires() {
    let (t, a) = store_with_unstable();
    let mut first = t
        .halo()
        .args([
            "accept",
            "--lease-minutes",
            "0.05",
            "--test",
            "hang=sleep 20",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lease_file = t.store().join("channels/trusty-testing.lease");
    // Wait (bounded) for the run to hold the lease.
    for _ in 0..600 {
        if lease_file.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(lease_file.exists(), "the first run never took the lease");
    let (code, _, stderr) = accept(&t, &["--test", "x=true"]);
    assert_eq!(code, 2, "a live lease refuses a second run: {stderr}");
    first.kill().unwrap();
    first.wait().unwrap();
    // The dead run stops renewing; its 3 s lease runs out.
    let mut live = true;
    for _ in 0..300 {
        let s: serde_json::Value =
            serde_json::from_str(&t.ok(&["--json", "accept", "--status"])).unwrap();
        live = s["lease_live"].as_bool().unwrap();
        if !live {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!live, "the lease never expired");
    let (code, stdout, stderr) = accept(&t, &["--test", "x=true"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(t.channel("trusty"), a);
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "accept", "--status"])).unwrap();
    let taken = status["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "lease-taken-over");
    assert!(taken, "{status}");
    t.assert_sound();
}

#[test]
fn stable_takes_only_accepted_snapshots_unless_forced_with_a_reason() {
    let (t, a) = store_with_unstable();
    let out = run(t
        .halo()
        .args(["promote", "--to", "trusty", "--snapshot", &a]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only takes snapshots that passed acceptance") && err.lines().count() == 1,
        "{err}"
    );
    let out = run(t
        .halo()
        .args(["promote", "--to", "trusty", "--snapshot", &a, "--force"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force needs a --reason"));
    assert_eq!(t.channel("trusty"), "-");
    t.ok(&[
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &a,
        "--force",
        "--reason",
        "emergency",
    ]);
    assert_eq!(t.channel("trusty"), a);
    // An accepted snapshot goes in without force; going back to one that
    // stable held before is a rollback and needs none either.
    t.import(
        "trusty",
        &[Deb::new("accept-pkg", "2").build(&t.path("in/2"))],
    );
    let b = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &b]);
    let (code, _, stderr) = accept(&t, &["--test", "x=true"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(t.channel("trusty"), b);
    // Going back lands on re-dated copies (so clients follow); the
    // history says whose content each one is.
    t.ok(&["channel", "rollback", "trusty"]);
    assert_ne!(t.channel("trusty"), b);
    // What was rolled back out of stable comes back only by force
    // (issue 18): b's content is withdrawn.
    let out = run(t
        .halo()
        .args(["promote", "--to", "trusty", "--snapshot", &b]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rolled back out of trusty"));
    t.ok(&[
        "promote",
        "--to",
        "trusty",
        "--snapshot",
        &b,
        "--force",
        "--reason",
        "b is fine",
    ]);
    let h = history_json(&t, "trusty");
    let content: Vec<_> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["restores"]
                .as_str()
                .or(e["to"].as_str())
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(content, [a.clone(), b.clone(), a.clone(), b.clone()]);
    let actions: Vec<_> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["forced"] == true,
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("promote".to_string(), true),
            ("accept".into(), false),
            ("rollback".into(), false),
            ("promote".into(), true)
        ]
    );
}

#[test]
fn halo_repo_is_an_apt_tree_the_real_apt_reads_with_the_store_key() {
    let (t, _) = store_with_unstable();
    let apt = t.root().join("apt");
    let script = format!(
        "set -e; d={d}; mkdir -p $d/lists/partial $d/cache/archives/partial; : > $d/status; \
         echo \"deb [signed-by=$HALO_KEYRING] file:$HALO_REPO/rustedhalo trusty main\" > $d/sources.list; \
         o=\"-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$d/lists \
         -o Dir::Cache=$d/cache -o Dir::State::status=$d/status -o Debug::NoLocking=1 -o APT::Sandbox::User=root \
         -o Acquire::Languages=none -o APT::Architecture=amd64\"; \
         apt-get $o update 2>&1 | tee $d/update.log; ! grep -q '^[WE]:' $d/update.log; \
         apt-cache $o policy accept-pkg | grep -q 'Candidate: 1'",
        d = apt.display()
    );
    let (code, stdout, stderr) = accept(&t, &["--test", &format!("apt={script}")]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let log = fs::read_to_string(apt.join("update.log")).unwrap();
    assert!(log.contains("InRelease"), "{log}");
    // The export made for the run is gone.
    assert!(!fs::read_dir(t.store().join("work")).unwrap().any(|_| true));
}

#[test]
fn gate_tests_a_channel_without_moving_anything() {
    let (t, a) = store_with_unstable();
    let before = t.ok(&["channel", "list"]);
    let junit = t.root().join("gate.xml");
    let out = run(t.halo().args([
        "gate",
        "--test",
        "ok=test -n \"$HALO_SNAPSHOT\"",
        "--junit",
        junit.to_str().unwrap(),
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains(&format!("trusty-unstable ({a}): 1 tests passed")));
    let out = run(t.halo().args(["gate", "--test", "bad=exit 1"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(t.ok(&["channel", "list"]), before);
    assert!(junitparser(&junit).contains("ok|halo.gate.trusty-unstable|passed"));
    // No tests at all is the installation's problem: exit 2.
    let out = run(t.halo().arg("gate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no acceptance tests"));
    let _ = ok;
}

/// Issue 20 item 5: `--test` cannot talk the gate around. A promoting run
/// runs every configured test, and command-line tests add to them: a
/// configured failing test rejects the run whatever passing test the
/// command line brings, and a flag cannot take a configured test's name.
/// The history and the run log say exactly which checks ran.
#[test]
fn command_line_tests_add_to_the_configured_ones_and_the_history_names_them() {
    let (t, a) = store_with_unstable();
    fs::write(
        t.store().join("halo.toml"),
        "[[acceptance.test]]\nname = \"real\"\ncommand = \"false\"\n",
    )
    .unwrap();
    let stable_history = t.ok(&["channel", "history", "trusty"]);
    let (code, stdout, stderr) = accept(&t, &["--test", "x=true"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("rejected {a}")) && stdout.contains("real"),
        "{stdout}"
    );
    assert_eq!(t.channel("trusty"), "-", "trusty unchanged");
    assert_eq!(t.ok(&["channel", "history", "trusty"]), stable_history);
    // A flag may not replace the configured test by taking its name.
    let (code, stdout, stderr) = accept(&t, &["--test", "real=true"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("--test real: a configured"), "{stderr}");
    assert_eq!(t.channel("trusty"), "-");
    // The run log says what ran.
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "accept", "--status"])).unwrap();
    let fail = status["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "fail")
        .unwrap()
        .clone();
    assert!(
        fail["detail"]
            .as_str()
            .unwrap()
            .contains("checks: tests real, x; systems none"),
        "{fail}"
    );
    // Configured and added tests passing: promoted, and the history names both.
    fs::write(
        t.store().join("halo.toml"),
        "[[acceptance.test]]\nname = \"real\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = t_accept_json(&t, &["--test", "x=true"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["checks"], "tests real, x; systems none", "{report}");
    assert_eq!(t.channel("trusty"), a);
    let h = history_json(&t, "trusty");
    let last = h.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "accept");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("passed 2 tests (tests real, x; systems none)"),
        "{last}"
    );
}

/// `halo --json accept ARGS`: (exit code, stdout, stderr).
fn t_accept_json(t: &TestStore, args: &[&str]) -> (i32, String, String) {
    let out = run(t.halo().args(["--json", "accept"]).args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
