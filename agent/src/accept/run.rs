//! EDGE: runs acceptance tests, one `sh -c` each, with the run's
//! environment on top of the inherited one (Jenkins' variables pass
//! through), output streamed with the test's name and kept for the report,
//! a hung test killed with its whole process group.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::config::TestConfig;
use crate::junit::{Case, Outcome, Suite};
use crate::process;

/// How many lines of a failing test's output its JUnit failure carries.
const TAIL_LINES: usize = 40;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TestResult {
    pub name: String,
    pub passed: bool,
    pub seconds: f64,
    /// "exit status 1", "timed out after 60 s and was killed".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(skip)]
    pub tail: String,
    #[serde(skip)]
    pub output: String,
}

/// Runs every test (all of them, even after a failure: the report says
/// everything that is wrong at once).
pub fn run_tests(
    tests: &[TestConfig],
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Vec<TestResult> {
    tests.iter().map(|t| run_test(t, env, timeout)).collect()
}

fn run_test(test: &TestConfig, env: &BTreeMap<String, String>, timeout: Duration) -> TestResult {
    eprintln!("halo: test {}: {}", test.name, test.command);
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&test.command).envs(env);
    if let Some(repo) = env.get("HALO_REPO") {
        cmd.current_dir(repo);
    }
    let started = Instant::now();
    let prefix = format!("[{}] ", test.name);
    let outcome = process::stream(cmd, Some(timeout), &mut |line| eprintln!("{prefix}{line}"));
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(s) => {
            let failure = (!s.success()).then(|| s.describe(Some(timeout)));
            eprintln!(
                "halo: test {}: {} ({seconds:.1} s)",
                test.name,
                failure
                    .as_deref()
                    .map_or("passed".to_string(), |f| format!("FAILED, {f}"))
            );
            TestResult {
                name: test.name.clone(),
                passed: failure.is_none(),
                seconds,
                failure,
                tail: s.output.tail(TAIL_LINES),
                output: s.output.text(),
            }
        }
        Err(e) => TestResult {
            name: test.name.clone(),
            passed: false,
            seconds,
            failure: Some(repofs::error_chain(&e)),
            tail: String::new(),
            output: String::new(),
        },
    }
}

/// The JUnit suite of one run.
pub fn to_suite(
    name: &str,
    classname: &str,
    started: jiff::Timestamp,
    results: &[TestResult],
) -> Suite {
    Suite {
        name: name.to_string(),
        timestamp: Some(started.to_string()),
        cases: results
            .iter()
            .map(|r| Case {
                name: r.name.clone(),
                classname: classname.to_string(),
                time: r.seconds,
                outcome: match &r.failure {
                    None => Outcome::Passed,
                    Some(f) => Outcome::Failed {
                        message: f.clone(),
                        detail: r.tail.clone(),
                    },
                },
                system_out: r.output.clone(),
            })
            .collect(),
    }
}
