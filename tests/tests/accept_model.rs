//! The promotion guarantee, tested as a model: seeded random interleavings
//! of imports, snapshots, promotions, acceptance runs that pass and fail,
//! promotions attempted during runs, forced promotions, rollbacks, several
//! processes at once, and SIGKILL of any of them at random moments. Then,
//! from the channel histories and the run log alone:
//!
//! 1. stable only ever took snapshots that passed an acceptance run for it,
//!    or were forced with a reason, or that it held before (rollbacks);
//! 2. testing never moved while a run that completed held its lease, except
//!    by that run or by force;
//! 3. whenever stable was accepted at a snapshot, testing pointed at it;
//! 4. every channel's pointer is the last move of its history, and fsck is
//!    clean.
//!
//! A failure prints the seed; `HALO_MODEL_SEED=<seed>` replays it and
//! `HALO_MODEL_STEPS=<n>` runs longer.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use halo_tests::{bin, Deb, TestStore};

/// xorshift64*: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap_or_else(|e| panic!("bad time {s:?}: {e}"))
}

/// Starts one random operation; imports take the next new package, so
/// every import makes a new snapshot.
fn spawn(t: &TestStore, rng: &mut Rng, debs: &[std::path::PathBuf], next: &mut usize) -> Child {
    let h = format!("{} --store {}", bin("halo").display(), t.store().display());
    let script = match rng.below(8) {
        0 | 1 => {
            let deb = &debs[*next % debs.len()];
            *next += 1;
            format!(
                "{h} import --archive rustedhalo --dist trusty --component main {} && \
                 id=$({h} snapshot create | tail -n1) && {h} promote --to trusty-unstable --snapshot $id",
                deb.display()
            )
        }
        2 | 3 => format!(
            "{h} accept --lease-minutes 0.01 --test ok='sleep 0.0{}'",
            rng.below(9)
        ),
        4 => format!("{h} accept --lease-minutes 0.01 --test bad='exit 1'"),
        5 => format!("{h} promote --to trusty-testing --from trusty-unstable"),
        6 => format!("{h} promote --to trusty --from trusty-unstable"),
        _ => match rng.below(3) {
            0 => format!(
                "{h} promote --to trusty --from trusty-unstable --force --reason model-forced"
            ),
            1 => format!("{h} channel rollback trusty"),
            _ => format!("{h} promote --to trusty --from trusty-testing"),
        },
    };
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn history(t: &TestStore, channel: &str) -> Vec<serde_json::Value> {
    let text = t.ok(&["--json", "channel", "history", channel]);
    serde_json::from_str::<serde_json::Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn stable_only_ever_holds_accepted_forced_or_earlier_snapshots() {
    let seed: u64 = std::env::var("HALO_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let steps: usize = std::env::var("HALO_MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    eprintln!("accept model: HALO_MODEL_SEED={seed} HALO_MODEL_STEPS={steps}");
    let mut rng = Rng(seed);
    let t = TestStore::gated();
    let debs: Vec<_> = (1..=60)
        .map(|v| Deb::new("model-pkg", &v.to_string()).build(&t.path(&format!("in/{v}"))))
        .collect();
    let mut killed = 0;
    let mut next = 0;
    let mut done = 0;
    while done < steps {
        let n = 1 + rng.below(3) as usize;
        let mut children: Vec<Child> = (0..n)
            .map(|_| spawn(&t, &mut rng, &debs, &mut next))
            .collect();
        if rng.below(4) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(120)));
            let victim = rng.below(n as u64) as usize;
            // SIGKILL the shell's whole process group would need setsid; the
            // shell itself and the halo it runs: kill every process whose
            // parent is the shell.
            let pid = children[victim].id();
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &pid.to_string()])
                .status();
            let _ = children[victim].kill();
            killed += 1;
        }
        for c in &mut children {
            let _ = c.wait();
        }
        done += n;
    }
    eprintln!("accept model: {done} operations, {killed} kills");

    let events: Vec<serde_json::Value> = {
        let text = t.ok(&["--json", "accept", "--status"]);
        // --status shows the last 20; read the whole log for the check.
        let _ = text;
        let raw =
            fs_err::read_to_string(t.store().join("acceptance/runs.jsonl")).unwrap_or_default();
        raw.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let passed = |snap: &str| {
        events
            .iter()
            .any(|e| e["event"] == "pass" && e["channel"] == "trusty" && e["snapshot"] == snap)
    };
    let stable = history(&t, "trusty");
    let testing = history(&t, "trusty-testing");
    let ctx = format!("(seed {seed})");

    // 1. What stable took.
    let mut held: Vec<String> = Vec::new();
    for e in &stable {
        // A move back in time lands on a re-dated copy: judge its content.
        let to = e["restores"]
            .as_str()
            .unwrap_or_else(|| e["to"].as_str().unwrap());
        let forced = e["forced"] == true;
        let ok = match e["action"].as_str().unwrap() {
            "accept" => passed(to),
            "promote" | "rollback" => {
                passed(to)
                    || held.iter().any(|h| h == to)
                    || (forced && e["reason"].as_str().is_some_and(|r| !r.is_empty()))
            }
            other => panic!("stable moved by {other} {ctx}: {e}"),
        };
        assert!(ok, "stable took {to} without acceptance {ctx}: {e}");
        held.push(to.to_string());
        held.push(e["to"].as_str().unwrap().to_string());
    }

    // 2. Testing during completed runs.
    let mut runs: HashMap<String, (jiff::Timestamp, jiff::Timestamp)> = HashMap::new();
    for e in &events {
        let run = e["run"].as_str().unwrap().to_string();
        let when = ts(e["when"].as_str().unwrap());
        let entry = runs.entry(run).or_insert((when, when));
        match e["event"].as_str().unwrap() {
            "freeze" => entry.0 = when,
            "fail" | "promote" | "pass" => entry.1 = when,
            _ => {}
        }
    }
    for e in &testing {
        if e["forced"] == true {
            continue;
        }
        let when = ts(e["when"].as_str().unwrap());
        for (run, (start, end)) in &runs {
            if start < end && when > *start && when < *end {
                assert_eq!(
                    e["run"].as_str(),
                    Some(run.as_str()),
                    "testing moved during run {run} {ctx}: {e}"
                );
            }
        }
    }

    // 3. Stable accepted at S only while testing pointed at S.
    for e in stable.iter().filter(|e| e["action"] == "accept") {
        let when = ts(e["when"].as_str().unwrap());
        let at = testing
            .iter()
            .rev()
            .find(|m| ts(m["when"].as_str().unwrap()) <= when)
            .map(|m| m["to"].as_str().unwrap().to_string());
        assert_eq!(
            at.as_deref(),
            e["to"].as_str(),
            "stable accepted what testing did not hold {ctx}: {e}"
        );
    }

    // 4. Pointers agree with histories; the store is sound.
    for (channel, h) in [("trusty", &stable), ("trusty-testing", &testing)] {
        let last = h
            .last()
            .map_or("-".to_string(), |e| e["to"].as_str().unwrap().to_string());
        assert_eq!(t.channel(channel), last, "{channel} {ctx}");
    }
    let fsck = halo_tests::run(t.halo().arg("fsck"));
    assert!(
        fsck.status.success(),
        "fsck {ctx}: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    eprintln!(
        "accept model: stable moved {} times, testing {} times, {} run events",
        stable.len(),
        testing.len(),
        events.len()
    );
}
