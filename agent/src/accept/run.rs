//! EDGE: runs acceptance tests, one `sh -c` each, with the run's
//! environment on top of the inherited one (Jenkins' variables pass
//! through), output streamed with the test's name and kept for the report,
//! a hung test killed with its whole process group. A system's steps
//! (`accept::system`) run through the same [`run_step`].

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::config::TestConfig;
use crate::junit::{Case, Outcome, Suite};
use crate::output;
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
    /// Not run, and why ("bootstrap failed"): neither passed nor failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip)]
    pub tail: String,
    #[serde(skip)]
    pub output: String,
}

impl TestResult {
    /// It ran and failed (a skipped test did not run).
    pub fn failed(&self) -> bool {
        !self.passed && self.skipped.is_none()
    }

    /// A test that could not run because of what came before it.
    pub fn skipped(name: &str, why: &str) -> Self {
        Self {
            name: name.to_string(),
            passed: false,
            seconds: 0.0,
            failure: None,
            skipped: Some(why.to_string()),
            tail: String::new(),
            output: String::new(),
        }
    }

    /// A step that failed before anything ran (its setup).
    pub fn refused(name: &str, why: String) -> Self {
        Self {
            name: name.to_string(),
            passed: false,
            seconds: 0.0,
            failure: Some(why.clone()),
            skipped: None,
            tail: why.clone(),
            output: why,
        }
    }
}

/// Runs every test (all of them, even after a failure: the report says
/// everything that is wrong at once).
pub fn run_tests(
    tests: &[TestConfig],
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Vec<TestResult> {
    tests
        .iter()
        .map(|t| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(&t.command).envs(env);
            if let Some(repo) = env.get("HALO_REPO") {
                cmd.current_dir(repo);
            }
            let step = Step {
                name: &t.name,
                title: &format!("test {}", t.name),
                prefix: &format!("[{}] ", t.name),
                what: &t.command,
            };
            run_step(&step, cmd, timeout)
        })
        .collect()
}

/// How a step is named where it runs.
pub struct Step<'a> {
    /// The testcase: `smoke`, `install`.
    pub name: &'a str,
    /// In the progress lines: `test smoke`, `system web: install`.
    pub title: &'a str,
    /// Before each line of its output: `[smoke] `.
    pub prefix: &'a str,
    /// What it runs, for the progress line.
    pub what: &'a str,
}

/// Runs `cmd` streamed (each line printed with the step's prefix, and
/// kept) and killed with its process group after `timeout`.
pub fn run_step(step: &Step<'_>, cmd: Command, timeout: Duration) -> TestResult {
    let _ = output::error_line(&format!("{}: {}", step.title, step.what));
    let started = Instant::now();
    let outcome = process::stream(cmd, Some(timeout), &mut |line| {
        output::stderr_line(&format!("{}{line}", step.prefix));
    });
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(s) => {
            let failure = (!s.success()).then(|| s.describe(Some(timeout)));
            let _ = output::error_line(&format!(
                "{}: {} ({seconds:.1} s)",
                step.title,
                failure
                    .as_deref()
                    .map_or("passed".to_string(), |f| format!("FAILED, {f}"))
            ));
            TestResult {
                name: step.name.to_string(),
                passed: failure.is_none(),
                seconds,
                failure,
                skipped: None,
                tail: s.output.tail(TAIL_LINES),
                output: s.output.text(),
            }
        }
        Err(e) => TestResult {
            seconds,
            ..TestResult::refused(step.name, repofs::error_chain(&e))
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
                outcome: match (&r.failure, &r.skipped) {
                    (Some(f), _) => Outcome::Failed {
                        message: f.clone(),
                        detail: r.tail.clone(),
                    },
                    (None, Some(why)) => Outcome::Skipped {
                        message: why.clone(),
                    },
                    (None, None) => Outcome::Passed,
                },
                system_out: r.output.clone(),
            })
            .collect(),
    }
}
