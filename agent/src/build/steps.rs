//! The steps of a build (checkout, root, build-deps, test, build, publish) as
//! they ran: outcome, time and output, for the JUnit report and `--json`.

use std::time::Instant;

use serde::Serialize;

use crate::junit::{Case, Outcome, Suite};

/// The steps in the order they run; each appears in every report, skipped
/// when an earlier one stopped the build.
pub const STEPS: [&str; 6] = ["checkout", "root", "build-deps", "test", "build", "publish"];

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub name: &'static str,
    /// `passed`, `failed`, `error` or `skipped`.
    pub result: &'static str,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip)]
    pub outcome: Outcome,
    #[serde(skip)]
    pub output: String,
}

/// Records steps as a build goes.
#[derive(Debug)]
pub struct Steps {
    source: String,
    started: jiff::Timestamp,
    current: Option<(&'static str, Instant)>,
    pub done: Vec<StepRecord>,
}

impl Steps {
    pub fn new(source: &str) -> Self {
        Self {
            source: source.to_string(),
            started: jiff::Timestamp::now(),
            current: None,
            done: Vec::new(),
        }
    }

    pub fn start(&mut self, name: &'static str) {
        tracing::info!(source = self.source, step = name, "step");
        self.current = Some((name, Instant::now()));
    }

    /// Ends the current step.
    pub fn finish(&mut self, outcome: Outcome, output: String) {
        let Some((name, t)) = self.current.take() else {
            return;
        };
        let (result, message) = match &outcome {
            Outcome::Passed => ("passed", None),
            Outcome::Failed { message, .. } => ("failed", Some(message.clone())),
            Outcome::Error { message, .. } => ("error", Some(message.clone())),
            Outcome::Skipped { message } => ("skipped", Some(message.clone())),
        };
        self.done.push(StepRecord {
            name,
            result,
            seconds: t.elapsed().as_secs_f64(),
            message,
            outcome,
            output,
        });
    }

    pub fn pass(&mut self, output: String) {
        self.finish(Outcome::Passed, output);
    }

    /// A step that did not need to run (no `test` configured, say).
    pub fn skip(&mut self, name: &'static str, why: &str) {
        self.start(name);
        self.finish(
            Outcome::Skipped {
                message: why.to_string(),
            },
            String::new(),
        );
    }

    /// The JUnit suite: every step, those never reached as skipped.
    pub fn to_suite(&self) -> Suite {
        let mut cases: Vec<Case> = self
            .done
            .iter()
            .map(|s| Case {
                name: s.name.to_string(),
                classname: format!("halo.build.{}", self.source),
                time: s.seconds,
                outcome: s.outcome.clone(),
                system_out: s.output.clone(),
            })
            .collect();
        for name in STEPS {
            if !self.done.iter().any(|s| s.name == name) {
                cases.push(Case {
                    name: name.to_string(),
                    classname: format!("halo.build.{}", self.source),
                    time: 0.0,
                    outcome: Outcome::Skipped {
                        message: "not reached".into(),
                    },
                    system_out: String::new(),
                });
            }
        }
        cases.sort_by_key(|c| STEPS.iter().position(|s| *s == c.name));
        Suite {
            name: format!("halo build {}", self.source),
            timestamp: Some(self.started.to_string()),
            cases,
        }
    }
}
