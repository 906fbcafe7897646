//! JUnit XML as Jenkins' junit plugin reads it: `<testsuites>` holding one
//! `<testsuite>` per build or system, a `<testcase>` per step or test with
//! `classname` and `time`, `<failure message=..>` with the tail of the
//! failing step's output, `<skipped/>`, and `<system-out>`. PURE: values in,
//! a string out.
//!
//! XML 1.0 cannot carry most control characters even escaped, and build
//! logs are full of them (colour codes): they become U+FFFD.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

#[derive(Debug, Clone, Default)]
pub struct Suite {
    pub name: String,
    /// RFC 3339 start time, when known.
    pub timestamp: Option<String>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub classname: String,
    /// Seconds.
    pub time: f64,
    pub outcome: Outcome,
    /// The step's captured output (stdout and stderr merged).
    pub system_out: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// The thing under test failed (a test, a build).
    Failed {
        message: String,
        detail: String,
    },
    /// It could not run (setup, infrastructure).
    Error {
        message: String,
        detail: String,
    },
    Skipped {
        message: String,
    },
}

impl Suite {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.outcome)).count()
    }

    fn time(&self) -> f64 {
        self.cases.iter().map(|c| c.time).sum()
    }
}

/// Replaces what XML 1.0 cannot hold.
fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

fn secs(t: f64) -> String {
    format!("{t:.3}")
}

type W = Writer<Vec<u8>>;

fn start(w: &mut W, name: &str, attrs: &[(&str, String)]) -> std::io::Result<()> {
    let mut e = BytesStart::new(name);
    for (k, v) in attrs {
        e.push_attribute((*k, xml_safe(v).as_str()));
    }
    w.write_event(Event::Start(e))
}

fn end(w: &mut W, name: &str) -> std::io::Result<()> {
    w.write_event(Event::End(BytesEnd::new(name)))
}

fn text(w: &mut W, t: &str) -> std::io::Result<()> {
    w.write_event(Event::Text(BytesText::new(&xml_safe(t))))
}

fn empty(w: &mut W, name: &str, attrs: &[(&str, String)]) -> std::io::Result<()> {
    let mut e = BytesStart::new(name);
    for (k, v) in attrs {
        e.push_attribute((*k, xml_safe(v).as_str()));
    }
    w.write_event(Event::Empty(e))
}

fn write_case(w: &mut W, c: &Case) -> std::io::Result<()> {
    let attrs = [
        ("name", c.name.clone()),
        ("classname", c.classname.clone()),
        ("time", secs(c.time)),
    ];
    start(w, "testcase", &attrs)?;
    match &c.outcome {
        Outcome::Passed => {}
        Outcome::Failed { message, detail } | Outcome::Error { message, detail } => {
            let tag = if matches!(c.outcome, Outcome::Failed { .. }) {
                "failure"
            } else {
                "error"
            };
            start(w, tag, &[("message", message.clone())])?;
            text(w, detail)?;
            end(w, tag)?;
        }
        Outcome::Skipped { message } => empty(w, "skipped", &[("message", message.clone())])?,
    }
    if !c.system_out.is_empty() {
        start(w, "system-out", &[])?;
        text(w, &c.system_out)?;
        end(w, "system-out")?;
    }
    end(w, "testcase")
}

fn write_all(w: &mut W, suites: &[Suite]) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let total = |f: fn(&Outcome) -> bool| suites.iter().map(|s| s.count(f)).sum::<usize>();
    start(
        w,
        "testsuites",
        &[
            ("tests", total(|_| true).to_string()),
            (
                "failures",
                total(|o| matches!(o, Outcome::Failed { .. })).to_string(),
            ),
            (
                "errors",
                total(|o| matches!(o, Outcome::Error { .. })).to_string(),
            ),
            ("time", secs(suites.iter().map(Suite::time).sum())),
        ],
    )?;
    for s in suites {
        let mut attrs = vec![
            ("name", s.name.clone()),
            ("tests", s.cases.len().to_string()),
            (
                "failures",
                s.count(|o| matches!(o, Outcome::Failed { .. })).to_string(),
            ),
            (
                "errors",
                s.count(|o| matches!(o, Outcome::Error { .. })).to_string(),
            ),
            (
                "skipped",
                s.count(|o| matches!(o, Outcome::Skipped { .. }))
                    .to_string(),
            ),
            ("time", secs(s.time())),
        ];
        if let Some(t) = &s.timestamp {
            attrs.push(("timestamp", t.clone()));
        }
        start(w, "testsuite", &attrs)?;
        for c in &s.cases {
            write_case(w, c)?;
        }
        end(w, "testsuite")?;
    }
    end(w, "testsuites")
}

/// The JUnit document for `suites`.
pub fn render_junit(suites: &[Suite]) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // invariant: writing into a Vec cannot fail.
    let _ = write_all(&mut w, suites);
    // Test output and failure messages quote URLs: no credential in them
    // reaches a Jenkins page.
    let mut out = crate::redact::redact_urls(&String::from_utf8_lossy(&w.into_inner()));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, outcome: Outcome) -> Case {
        Case {
            name: name.into(),
            classname: "halo.build.hello".into(),
            time: 1.5,
            outcome,
            system_out: format!("output of {name} <&>\u{1b}[31m"),
        }
    }

    #[test]
    fn renders_counts_failures_and_escapes() {
        let suite = Suite {
            name: "hello".into(),
            timestamp: Some("2026-12-05T10:00:00Z".into()),
            cases: vec![
                case("checkout", Outcome::Passed),
                case(
                    "test",
                    Outcome::Failed {
                        message: "make test: exit status 2".into(),
                        detail: "FAIL: 1 != 2".into(),
                    },
                ),
                case(
                    "build",
                    Outcome::Skipped {
                        message: "an earlier step failed".into(),
                    },
                ),
            ],
        };
        let xml = render_junit(&[suite]);
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{xml}"
        );
        assert!(
            xml.contains("<testsuites tests=\"3\" failures=\"1\" errors=\"0\" time=\"4.500\">"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<testsuite name=\"hello\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"make test: exit status 2\">FAIL: 1 != 2</failure>"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"an earlier step failed\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("output of test &lt;&amp;&gt;\u{FFFD}[31m"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1b}'));
    }
}
